//! Reading this repository's Rust sources as text: the lines outside
//! `#[cfg(test)]` modules, which `spec --where` searches for row ids, and
//! the functions among them, which the function-length check measures
//! (`harness/tests/function_length.rs`).

/// The lines of `src` outside `#[cfg(test)]` modules, with their 1-based
/// numbers. A `#[cfg(test)] mod name;` line (the module in its own file)
/// is left out by itself; a `#[cfg(test)] mod name { … }` block is left out
/// up to its closing brace (braces are counted outside strings, character
/// literals and `//` comments).
pub fn non_test_lines(src: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut cfg_test = false;
    // Brace depth inside a skipped test module (None: not in one).
    let mut skipping: Option<i64> = None;
    for (i, line) in src.lines().enumerate() {
        let t = line.trim_start();
        if let Some(depth) = skipping.as_mut() {
            *depth += brace_balance(line);
            if *depth <= 0 {
                skipping = None;
            }
            continue;
        }
        if t.starts_with("#[cfg(test)]") {
            cfg_test = true;
            continue;
        }
        if cfg_test && t.starts_with("#[") {
            continue;
        }
        if cfg_test && is_mod_line(t) {
            cfg_test = false;
            let depth = brace_balance(line);
            if depth > 0 {
                skipping = Some(depth);
            }
            continue;
        }
        cfg_test = false;
        out.push((i + 1, line));
    }
    out
}

/// A function of a source file and its length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FnSpan {
    pub name: String,
    /// The line of `fn`, 1-based.
    pub line: usize,
    /// Lines from `fn` to the closing brace, both counted.
    pub lines: usize,
}

/// Every function with a body outside `#[cfg(test)]` modules of `src`
/// (nested ones too), found by their `fn` line and the brace that closes
/// the body.
pub fn functions(src: &str) -> Vec<FnSpan> {
    // Open functions: name, first line, depth at `fn`, body opened yet.
    let mut open: Vec<(String, usize, i64, bool)> = Vec::new();
    let mut out = Vec::new();
    let mut depth = 0i64;
    for (n, line) in non_test_lines(src) {
        if let Some(name) = fn_name(line) {
            open.push((name, n, depth, false));
        }
        let (opens, closes) = braces(line);
        depth += opens - closes;
        if let Some(top) = open.last_mut() {
            // The body has begun once a brace opens on or after `fn`.
            top.3 |= opens > 0;
        }
        while let Some(top) = open.last() {
            if top.3 && depth <= top.2 {
                out.push(FnSpan {
                    name: top.0.clone(),
                    line: top.1,
                    lines: n + 1 - top.1,
                });
                open.pop();
            } else if !top.3 && line.trim_end().ends_with(';') {
                // A declaration without a body (a trait's).
                open.pop();
            } else {
                break;
            }
        }
    }
    out
}

/// The name of the function a line begins, if it does.
fn fn_name(line: &str) -> Option<String> {
    let mut t = line.trim_start();
    if t.starts_with("//") {
        return None;
    }
    for prefix in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "const ",
        "async ",
        "unsafe ",
        "extern \"C\" ",
    ] {
        t = t.strip_prefix(prefix).unwrap_or(t);
    }
    let rest = t.strip_prefix("fn ")?;
    let name: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

fn is_mod_line(t: &str) -> bool {
    let t = t.strip_prefix("pub ").unwrap_or(t);
    let t = t.strip_prefix("pub(crate) ").unwrap_or(t);
    t.starts_with("mod ")
}

/// `{` minus `}` on a line, outside string and character literals and
/// `//` comments.
pub fn brace_balance(line: &str) -> i64 {
    let (opens, closes) = braces(line);
    opens - closes
}

/// How many `{` and `}` a line has outside string and character literals
/// and `//` comments.
fn braces(line: &str) -> (i64, i64) {
    let (mut opens, mut closes) = (0, 0);
    let mut in_str = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (in_str, c) {
            (true, '\\') => {
                chars.next();
            }
            (true, '"') => in_str = false,
            (true, _) => {}
            (false, '"') => in_str = true,
            (false, '/') if chars.peek() == Some(&'/') => break,
            // A character literal such as '{' or '\'' (not a lifetime).
            (false, '\'') => {
                let rest: String = chars.clone().take(3).collect();
                if rest.starts_with('\\') {
                    chars.next();
                    chars.next();
                    chars.next();
                } else if rest.chars().nth(1) == Some('\'') {
                    chars.next();
                    chars.next();
                }
            }
            (false, '{') => opens += 1,
            (false, '}') => closes += 1,
            _ => {}
        }
    }
    (opens, closes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_modules_are_left_out_and_the_rest_is_numbered() {
        let src = "fn a() {\n    let s = \"}\";\n}\n#[cfg(test)]\nmod tests {\n    fn t() { x('{'); }\n}\nfn b() {}\n#[cfg(test)]\nmod more;\nfn c() {}\n";
        let kept: Vec<(usize, &str)> = non_test_lines(src);
        let numbers: Vec<usize> = kept.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [1, 2, 3, 8, 11]);
        assert_eq!(kept[3].1, "fn b() {}");
    }

    #[test]
    fn functions_are_measured_from_fn_to_their_closing_brace() {
        let src = "trait T {\n    fn decl(&self);\n}\npub fn a(\n    x: u8,\n) -> u8 {\n    fn inner() {}\n    x\n}\nimpl S {\n    pub(crate) fn b(&self) { }\n}\n#[cfg(test)]\nmod tests {\n    fn t() {\n    }\n}\n";
        let f = functions(src);
        let got: Vec<(&str, usize, usize)> = f
            .iter()
            .map(|s| (s.name.as_str(), s.line, s.lines))
            .collect();
        assert_eq!(got, [("inner", 7, 1), ("a", 4, 6), ("b", 11, 1)]);
    }

    #[test]
    fn braces_in_strings_chars_and_comments_do_not_count() {
        assert_eq!(brace_balance(r#"let s = "{{"; // {"#), 0);
        assert_eq!(brace_balance("match c { '{' => 1, '\\'' => 2,"), 1);
        assert_eq!(brace_balance("fn f<'a>(x: &'a str) {"), 1);
    }
}
