//! Helpers shared by the CLI integration tests (`mod support;`).

use std::path::PathBuf;
use std::process::Output;

/// A child's exit status, standard output and standard error, for
/// assertion messages.
pub fn show(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}stderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A fresh, empty directory `tcpconform-<test>-<pid>-<name>` for a test's
/// files.
pub fn scratch(test: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tcpconform-{test}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    if let Err(e) = std::fs::create_dir_all(&d) {
        panic!("{}: {e}", d.display());
    }
    d
}
