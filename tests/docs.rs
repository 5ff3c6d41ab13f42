//! Every document the code or the README names exists in the repository:
//! a `*.md` path in a Rust source or doc comment, and every relative link
//! of README.md and docs/*.md.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Rust sources of the workspace (build output and fuzz artefacts aside).
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if p.is_dir() {
            if !matches!(name.as_str(), "target" | ".git" | "artifacts" | "corpus") {
                sources(&p, out);
            }
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
}

/// `*.md` paths in a text: runs of path characters ending in `.md`.
fn md_names(text: &str) -> Vec<String> {
    let is_path = |c: char| c.is_ascii_alphanumeric() || "_-./".contains(c);
    let mut out = Vec::new();
    for (i, _) in text.match_indices(".md") {
        let after = text[i + 3..].chars().next();
        if after.is_some_and(is_path) {
            continue;
        }
        let start = text[..i]
            .char_indices()
            .rev()
            .take_while(|(_, c)| is_path(*c))
            .last()
            .map_or(i, |(j, _)| j);
        let name = &text[start..i + 3];
        if name.len() > 3 && !name.starts_with("//") {
            out.push(name.trim_start_matches("./").to_string());
        }
    }
    out
}

#[test]
fn every_document_a_source_names_exists() {
    let mut files = Vec::new();
    sources(&root(), &mut files);
    assert!(files.len() > 50, "found only {} sources", files.len());
    let mut missing = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for name in md_names(&text) {
            let found = root().join(&name).exists()
                || root().join("docs").join(&name).exists()
                || f.parent().is_some_and(|d| d.join(&name).exists());
            if !found {
                missing.push(format!("{}: {name}", f.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "named but absent:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_relative_link_of_the_docs_resolves() {
    let mut docs = vec![root().join("README.md")];
    if let Ok(entries) = std::fs::read_dir(root().join("docs")) {
        docs.extend(
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "md")),
        );
    }
    let mut missing = Vec::new();
    for d in &docs {
        let text = std::fs::read_to_string(d).unwrap_or_default();
        for (i, _) in text.match_indices("](") {
            let rest = &text[i + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = rest[..end].split('#').next().unwrap_or("");
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let base = d.parent().unwrap_or(&root()).to_path_buf();
            if !base.join(target).exists() {
                missing.push(format!("{}: {target}", d.display()));
            }
        }
    }
    assert!(missing.is_empty(), "broken links:\n{}", missing.join("\n"));
}

#[test]
fn the_md_scanner_finds_paths_and_skips_urls() {
    let names = md_names("see docs/architecture.md, README.md and https://x.org/a.md; also a.mdx");
    assert_eq!(names, vec!["docs/architecture.md", "README.md"]);
}
