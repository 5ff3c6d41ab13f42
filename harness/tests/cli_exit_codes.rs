//! The exit-code contract (README, every command's `--help`): 0 success,
//! 1 a verdict, 2 usage or input, 3 environment. The codes are literals
//! here on purpose: a change of the table must change this test.

mod support;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};
use support::{scratch, show};

/// The prefix of this test's scratch directories.
const SCRATCH: &str = "exit";

const OK: i32 = 0;
const VERDICT: i32 = 1;
const USAGE: i32 = 2;
const ENVIRONMENT: i32 = 3;

fn tcpconform(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tcpconform"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run tcpconform: {e}"))
}

/// Runs tcpconform like [`tcpconform`], but a run still going after a
/// minute (a FIFO blocking its open) is killed and reported as a hang.
fn tcpconform_unless_hung(args: &[&str], dir: &Path) -> Output {
    let files = (dir.join("stdout"), dir.join("stderr"));
    let (Ok(out), Ok(err)) = (
        std::fs::File::create(&files.0),
        std::fs::File::create(&files.1),
    ) else {
        panic!("cannot create output files in {}", dir.display());
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_tcpconform"))
        .args(args)
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run tcpconform: {e}"));
    let started = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > std::time::Duration::from_secs(60) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("tcpconform {args:?} hangs");
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(20)),
            Err(e) => panic!("waiting for tcpconform: {e}"),
        }
    };
    let read = |p: &Path| std::fs::read(p).unwrap_or_default();
    Output {
        status,
        stdout: read(&files.0),
        stderr: read(&files.1),
    }
}

fn suite_script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../specs/scripts")
        .join(name)
        .display()
        .to_string()
}

fn write(dir: &Path, name: &str, body: &[u8]) -> String {
    let p = dir.join(name);
    if let Err(e) = std::fs::write(&p, body) {
        panic!("{}: {e}", p.display());
    }
    p.display().to_string()
}

const SOCKET: &str = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n";

#[test]
fn every_help_ends_with_the_exit_code_table() {
    let commands: [&[&str]; 8] = [
        &["--help"],
        &["spec", "--help"],
        &["run", "--help"],
        &["check", "--help"],
        &["coverage", "--help"],
        &["diff", "--help"],
        &["serve", "--help"],
        &["timers", "--help"],
    ];
    for args in commands {
        let o = tcpconform(args);
        assert_eq!(o.status.code(), Some(OK), "{args:?}: {}", show(&o));
        let help = String::from_utf8_lossy(&o.stdout);
        for line in [
            "Exit codes:",
            "  0    success",
            "  1    verdict",
            "  2    usage or input",
            "  3    environment",
        ] {
            assert!(help.contains(line), "{args:?} lacks {line:?}:\n{help}");
        }
    }
}

#[test]
fn a_pass_exits_0_and_a_failure_1() {
    let o = tcpconform(&["run", &suite_script("passive_open.pkt")]);
    assert_eq!(o.status.code(), Some(OK), "{}", show(&o));
    let d = scratch(SCRATCH, "verdict");
    let bad = write(
        &d,
        "bad.pkt",
        format!("{SOCKET}+0 close(3) = -1 EBADF\n").as_bytes(),
    );
    let o = tcpconform(&["run", &bad]);
    assert_eq!(o.status.code(), Some(VERDICT), "{}", show(&o));
    // `check` on a suite with that failing script fails too.
    let o = tcpconform(&[
        "check",
        "--no-live",
        "--no-smoltcp",
        "--suite",
        &d.display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(VERDICT), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("FAILED"),
        "{}",
        show(&o)
    );
    let _ = std::fs::remove_dir_all(&d);
    // smoltcp takes an in-window RST without a challenge ACK (RFC 5961
    // 3.2): a departure, so diff's verdict is 1.
    let o = tcpconform(&[
        "diff",
        "--targets",
        "own,smoltcp",
        &suite_script("challenge_ack_rst.pkt"),
    ]);
    assert_eq!(o.status.code(), Some(VERDICT), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("MUST-violation"),
        "{}",
        show(&o)
    );
}

#[test]
fn bad_arguments_exit_2() {
    let p = suite_script("passive_open.pkt");
    for args in [
        vec!["run"],
        vec!["run", "--json", &p],
        vec!["run", "--tap", &p],
        vec!["diff", "--markdown", "--targets", "own,smoltcp", &p],
        vec!["run", "--format", "dot", &p],
        vec!["run", "--target", "nope", &p],
        vec!["run", "/nonexistent/dir"],
        vec!["coverage", "/nonexistent/dir"],
        vec!["serve", "--echo", "--impair", "loss=7"],
    ] {
        let o = tcpconform(&args);
        assert_eq!(o.status.code(), Some(USAGE), "{args:?}: {}", show(&o));
    }
}

/// Each bad script exits 2 from run, diff and coverage, its located reason
/// on standard error (and not on standard output).
#[test]
fn a_bad_script_exits_2_with_its_location_on_stderr() {
    let d = scratch(SCRATCH, "input");
    let cases: Vec<(String, String)> = vec![
        (
            write(
                &d,
                "syntax.pkt",
                format!("{SOCKET}+0 bind(3, ..., ...\n").as_bytes(),
            ),
            ":3:1: expected `,` or `)`".into(),
        ),
        (
            write(
                &d,
                "utf8.pkt",
                b"0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 \xff\n",
            ),
            ":2:4: not UTF-8 (byte 0xff)".into(),
        ),
        (
            write(&d, "empty.pkt", b"// nothing to run\n"),
            ":1:1: the script has no events".into(),
        ),
        (
            write(
                &d,
                "accept.pkt",
                format!("{SOCKET}+0 accept(3) = 4\n").as_bytes(),
            ),
            ":2:1: accept: expected 3 arguments, found 1".into(),
        ),
        (
            write(
                &d,
                "backwards.pkt",
                format!("{SOCKET}1 bind(3, ..., ...) = 0\n0.5 listen(3, 1) = 0\n").as_bytes(),
            ),
            ":3:1: absolute time 0.5 is before the previous event's time 1 s".into(),
        ),
    ];
    for (path, reason) in &cases {
        let want = format!("{path}{reason}");
        for cmd in [
            vec!["run", path.as_str()],
            vec!["diff", "--targets", "own,smoltcp", path.as_str()],
            vec!["coverage", path.as_str()],
        ] {
            let o = tcpconform(&cmd);
            assert_eq!(o.status.code(), Some(USAGE), "{cmd:?}: {}", show(&o));
            assert!(
                String::from_utf8_lossy(&o.stderr).contains(&want),
                "{cmd:?}: no {want:?} on stderr: {}",
                show(&o)
            );
            if cmd[0] != "diff" {
                // diff's report names the error too; run and coverage
                // print only the table on stdout.
                assert!(
                    !String::from_utf8_lossy(&o.stdout).contains(&want),
                    "{cmd:?}: {}",
                    show(&o)
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// A FIFO named `*.pkt` and a symlink to /dev/zero are refused at once (a
/// FIFO would block the open, /dev/zero be read until memory runs out); a
/// 100 MiB file is refused by its size.
#[test]
fn non_regular_and_oversized_scripts_exit_2() {
    let d = scratch(SCRATCH, "files");
    let fifo = d.join("fifo.pkt");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap_or_default();
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let zero = d.join("zero.pkt");
    if let Err(e) = std::os::unix::fs::symlink("/dev/zero", &zero) {
        panic!("{e}");
    }
    let out = scratch(SCRATCH, "files-out");
    let big = d.join("big.pkt");
    if let Err(e) = std::fs::File::create(&big).and_then(|f| f.set_len(100 << 20)) {
        panic!("{e}");
    }
    for (p, why) in [
        (&fifo, "is a FIFO"),
        (&zero, "is a character device"),
        (&big, "a script may have at most 4 MiB"),
    ] {
        let p = p.display().to_string();
        for cmd in [
            vec!["run", p.as_str()],
            vec!["diff", "--targets", "own,smoltcp", p.as_str()],
            vec!["coverage", p.as_str()],
        ] {
            let o = tcpconform_unless_hung(&cmd, &out);
            assert_eq!(o.status.code(), Some(USAGE), "{cmd:?}: {}", show(&o));
            assert!(
                String::from_utf8_lossy(&o.stderr).contains(why),
                "{cmd:?}: {}",
                show(&o)
            );
        }
    }
    // A directory holding the FIFO: found by the walk, refused the same way.
    let o = tcpconform_unless_hung(&["run", &d.display().to_string()], &out);
    assert_eq!(o.status.code(), Some(USAGE), "{}", show(&o));
    let _ = std::fs::remove_dir_all(&d);
    let _ = std::fs::remove_dir_all(&out);
}

/// Output that cannot be written and a missing privilege are the
/// environment's fault: 3.
#[test]
fn environment_errors_exit_3() {
    let p = suite_script("passive_open.pkt");
    let o = tcpconform(&["run", "--pcap", "/proc/tcpconform-cannot-be-here", &p]);
    assert_eq!(o.status.code(), Some(ENVIRONMENT), "{}", show(&o));
    // Without privileges (as root: dropped to nobody for the child).
    for args in [
        vec!["run", "--target", "linux", p.as_str()],
        vec!["diff", "--targets", "own,linux", p.as_str()],
        vec!["timers", "--targets", "linux", "--quick"],
        vec!["serve", "--echo", "--duration", "1"],
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tcpconform"));
        cmd.args(&args);
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            cmd.uid(65534).gid(65534).current_dir("/");
        }
        let o = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run tcpconform: {e}"));
        assert_eq!(o.status.code(), Some(ENVIRONMENT), "{args:?}: {}", show(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("root"), "{args:?}: {}", show(&o));
    }
}
