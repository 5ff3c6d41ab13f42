//! Live input hygiene (root; under `CI=true` a missing privilege fails):
//! helper programs are never found through relative `PATH` entries, and a
//! host-global sysctl makes a script not applicable with the right reason.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::{scratch, show};
use tcp_harness::live::testing::{assert_no_namespace_of_ours, guard};

const SCRATCH: &str = "hyg";

fn write(dir: &Path, name: &str, body: &str, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    let r = std::fs::write(&p, body)
        .and_then(|()| std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)));
    if let Err(e) = r {
        panic!("{}: {e}", p.display());
    }
    p
}

/// `./ip`, `./mount` and `./env` in the working directory (which is also
/// the script's directory, where backtick commands run) with
/// `PATH=":$PATH"`: none of them may run; the real ones do.
#[test]
fn a_relative_path_entry_never_runs_a_program_from_the_working_directory() {
    let Some(_lock) = guard() else { return };
    let d = scratch(SCRATCH, "path");
    let marker = d.join("ran");
    let fake = format!("#!/bin/sh\ntouch '{}'\nexit 1\n", marker.display());
    for name in ["ip", "mount", "env"] {
        write(&d, name, &fake, 0o755);
    }
    let script = write(
        &d,
        "shell.pkt",
        "0 `env true`\n+0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 close(3) = 0\n",
        0o644,
    );
    let path = std::env::var("PATH").unwrap_or_default();
    let o = Command::new(env!("CARGO_BIN_EXE_tcpconform"))
        .args(["run", "--target", "linux", "shell.pkt"])
        .current_dir(&d)
        .env("PATH", format!(":{path}"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run tcpconform: {e}"));
    assert!(
        !marker.exists(),
        "a program in the working directory ran: {}",
        show(&o)
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{} ({})",
        show(&o),
        script.display()
    );
    let _ = std::fs::remove_dir_all(&d);
    assert_no_namespace_of_ours();
}

/// `net.core.rmem_max` is visible in a namespace but read-only there: the
/// script is not applicable because the key is host-wide — not a
/// permission problem to fix by running as root (we are root).
#[test]
fn a_host_global_sysctl_makes_the_script_not_applicable() {
    let Some(_lock) = guard() else { return };
    let d = scratch(SCRATCH, "sysctl");
    let script = write(
        &d,
        "rmem.pkt",
        "0 `sysctl -q net.core.rmem_max=4194304`\n\
         +0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 close(3) = 0\n",
        0o644,
    );
    let o = Command::new(env!("CARGO_BIN_EXE_tcpconform"))
        .args(["run", "--target", "linux"])
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run tcpconform: {e}"));
    let t = show(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(
        t.contains(&format!("{}:1:1: ", script.display())) && t.contains("not per-namespace"),
        "{t}"
    );
    assert!(t.contains("not applicable"), "{t}");
    assert!(!t.contains("run as root"), "{t}");
    let _ = std::fs::remove_dir_all(&d);
    assert_no_namespace_of_ours();
}
