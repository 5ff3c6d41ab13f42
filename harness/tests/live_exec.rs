//! Target `exec:CMD` end to end (docs/exec-protocol.md): foreign processes
//! behind `tun1` in a namespace the harness creates.
//!
//! - A process that crashes, hangs or prints garbage gives an error at the
//!   script line being played, naming the request and what the process
//!   did; afterwards the process is gone, the namespace is removed and no
//!   TUN device is left in it (checked through a descriptor of the
//!   namespace kept open across the drop).
//! - The Python kernel shim (`harness/examples/exec_kernel.py`) agrees with
//!   `--target linux` on every bundled script of the short tier (own
//!   timeline ≤ 30 s, as `check` runs live targets): same outcome, same
//!   failing line.
//! - The smoltcp example (`harness/examples/exec_smoltcp.rs`) runs the same
//!   scripts to verdicts: passed, failed or not applicable, never an error.
//!
//! Needs root, /dev/net/tun and iproute2; elsewhere the tests print
//! `skipped: <reason>` and pass — except under `CI=true`, where a missing
//! privilege fails them.

use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tcp_harness::live;
use tcp_harness::run::exec::{ExecSpec, ExecTarget};
use tcp_harness::run::linux::LinuxTarget;
use tcp_harness::run::suite::{discover, run_with_retries, LIVE_RETRIES};
use tcp_harness::run::{run_text, Outcome, RunOptions, RunReport, Target};
use tcp_spec::Profile;

/// The live lock, or `None` (skipped) where live targets cannot run; under
/// `CI=true` a missing privilege is a failure.
fn guard() -> Option<std::sync::MutexGuard<'static, ()>> {
    if std::env::var("CI").as_deref() == Ok("true") {
        if let Err(e) = live::available() {
            panic!("CI=true but live targets cannot run here: {e}");
        }
    }
    live::testing::guard()
}

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> String {
    let p = manifest().join("tests/fixtures/exec").join(name);
    format!("sh {}", p.display())
}

fn spec(cmd: &str, timeout: Duration) -> ExecSpec {
    ExecSpec {
        name: None,
        cmd: cmd.to_string(),
        timeout,
        profile: None,
    }
}

/// The TUN devices inside the namespace `ns` (an open descriptor of it),
/// as `ip -o link show type tun` lists them there.
fn tun_devices_in(ns: &File) -> String {
    let fd = ns.as_raw_fd();
    let mut c = Command::new("ip");
    c.args(["-o", "link", "show", "type", "tun"]);
    // SAFETY: setns(2) in the child before exec, on a descriptor open in it.
    unsafe {
        c.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = c.output().expect("ip runs");
    assert!(out.status.success(), "ip: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pid_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

/// Runs `text` on an exec target for `cmd`, then checks that the process,
/// the namespace and the TUN devices are gone.
fn run_exec(label: &str, text: &str, cmd: &str, timeout: Duration) -> RunReport {
    let mut target = ExecTarget::new(spec(cmd, timeout)).expect("exec target");
    let name = target.netns_name().to_string();
    let ns = File::open(Path::new("/run/netns").join(&name)).expect("namespace file");
    assert!(
        tun_devices_in(&ns).contains("tun1"),
        "tun1 exists while the target lives"
    );
    let report = run_text(label, text, &mut target, &RunOptions::default());
    println!("--- {label}: {}\n{}", report.outcome, report.details());
    let pid = target.pid();
    drop(target);
    if let Some(pid) = pid {
        assert!(!pid_alive(pid), "process {pid} killed with the target");
    }
    assert!(
        !live::list_namespaces().unwrap().contains(&name),
        "namespace {name} removed with the target"
    );
    let left = tun_devices_in(&ns);
    assert!(left.trim().is_empty(), "TUN devices left in {name}: {left}");
    live::testing::assert_no_namespace_of_ours();
    report
}

const SCRIPT: &str = "\
// passive open, calls from line 3
0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    bind(3, ..., ...) = 0
+0    listen(3, 1) = 0
";

fn error_of(r: &RunReport) -> String {
    match &r.outcome {
        Outcome::Error(e) => e.clone(),
        other => panic!("expected an error, got {other}"),
    }
}

#[test]
fn a_crashing_process_gives_a_located_error() {
    let Some(_g) = guard() else { return };
    let r = run_exec(
        "crash.pkt",
        SCRIPT,
        &fixture("crash.sh"),
        Duration::from_secs(5),
    );
    let e = error_of(&r);
    assert!(e.starts_with("crash.pkt:2:1: `socket("), "{e}");
    assert!(e.contains("exited with status 3"), "{e}");
    assert!(
        e.contains(r#""call":"socket""#),
        "the request is named: {e}"
    );
    assert!(
        e.contains("crash.sh: giving up"),
        "its stderr is quoted: {e}"
    );
}

#[test]
fn a_hanging_process_times_out_with_a_located_error() {
    let Some(_g) = guard() else { return };
    let r = run_exec(
        "hang.pkt",
        SCRIPT,
        &fixture("hang.sh"),
        Duration::from_millis(500),
    );
    let e = error_of(&r);
    assert!(e.starts_with("hang.pkt:2:1: `socket("), "{e}");
    assert!(
        e.contains("gave no answer within 0.5 s (still running)"),
        "{e}"
    );
}

#[test]
fn a_process_printing_garbage_gives_a_located_error() {
    let Some(_g) = guard() else { return };
    let r = run_exec(
        "garbage.pkt",
        SCRIPT,
        &fixture("garbage.sh"),
        Duration::from_secs(5),
    );
    let e = error_of(&r);
    assert!(e.starts_with("garbage.pkt:2:1: `socket("), "{e}");
    assert!(
        e.contains(r#"printed "Segmentation fault (not really)" (not JSON"#),
        "{e}"
    );
    // Another protocol version is refused before the first step; a
    // packets-only script is located at its first packet.
    let packets = "0 < S 0:0(0) win 65535 <mss 1460>\n+0 > R. 0:0(0) ack 1 win 0\n";
    let r = run_exec(
        "v2.pkt",
        packets,
        &fixture("old_version.sh"),
        Duration::from_secs(5),
    );
    let e = error_of(&r);
    assert!(e.starts_with("v2.pkt:1:1: "), "{e}");
    assert!(e.contains("speaks protocol version 2"), "{e}");
}

#[test]
fn the_cli_reports_a_crash_and_leaves_no_namespace() {
    let Some(_g) = guard() else { return };
    let script = manifest().join("../specs/scripts/passive_open.pkt");
    let child = Command::new(env!("CARGO_BIN_EXE_tcpconform"))
        .args(["run", "--exec-timeout", "2", "--target"])
        .arg(format!("exec:{}", fixture("crash.sh")))
        .arg(&script)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tcpconform runs");
    let prefix = format!("{}{}-", live::NAME_PREFIX, child.id());
    let done = child.wait_with_output().unwrap();
    // The located error is on standard error.
    let out = String::from_utf8_lossy(&done.stderr);
    println!("{}{out}", String::from_utf8_lossy(&done.stdout));
    assert_eq!(
        done.status.code(),
        Some(3),
        "a target process that dies is an environment error"
    );
    assert!(out.contains("passive_open.pkt:8:1: `socket("), "{out}");
    assert!(out.contains("exited with status 3"), "{out}");
    let left: Vec<String> = live::list_namespaces()
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(
        left.is_empty(),
        "namespaces of the run left behind: {left:?}"
    );
}

/// The bundled scripts `own` runs in at most 30 s of its virtual time (the
/// tier `check` runs on live targets).
fn short_tier() -> Vec<PathBuf> {
    let scripts = discover(&[manifest().join("../specs/scripts")]).unwrap();
    scripts
        .into_iter()
        .filter_map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let mut own = tcp_harness::run::OwnTarget::new(Profile::Rfc9293);
            let r = run_text("own", &text, &mut own, &RunOptions::default());
            (r.end_time <= 30_000_000).then_some(p)
        })
        .collect()
}

/// The verdict of a run: outcome and, for a failure, its line.
fn verdict(r: &RunReport) -> String {
    match &r.outcome {
        Outcome::Passed => "passed".into(),
        Outcome::Failed(f) => format!("failed at line {}", f.line),
        Outcome::NotApplicable(_) => "not applicable".into(),
        Outcome::Error(e) => format!("error: {e}"),
    }
}

fn on_linux(path: &Path) -> RunReport {
    let opts = RunOptions::default();
    run_with_retries(path, 1 + LIVE_RETRIES, &opts, || {
        LinuxTarget::new()
            .map(|t| Box::new(t) as Box<dyn Target>)
            .map_err(|e| e.to_string())
    })
    .unwrap()
}

fn on_exec(path: &Path, cmd: &str) -> RunReport {
    let opts = RunOptions::default();
    run_with_retries(path, 1 + LIVE_RETRIES, &opts, || {
        ExecTarget::new(spec(cmd, Duration::from_secs(5)))
            .map(|t| Box::new(t) as Box<dyn Target>)
            .map_err(|e| e.to_string())
    })
    .unwrap()
}

#[test]
fn the_kernel_shim_agrees_with_the_linux_target() {
    let Some(_g) = guard() else { return };
    let shim = format!(
        "python3 {}",
        manifest().join("examples/exec_kernel.py").display()
    );
    let tier = short_tier();
    assert!(
        tier.len() >= 40,
        "the short tier has {} scripts",
        tier.len()
    );
    let mut differ = Vec::new();
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for path in &tier {
        // Real time on a loaded machine: a disagreement is run once more on
        // both before it counts.
        let mut disagreement = None;
        for _ in 0..2 {
            let (l, e) = (verdict(&on_linux(path)), verdict(&on_exec(path, &shim)));
            if l == e {
                disagreement = None;
                let kind = l.split(" at").next().unwrap_or_default().to_string();
                *counts.entry(kind).or_default() += 1;
                break;
            }
            disagreement = Some(format!("{}: linux {l}, exec {e}", path.display()));
        }
        differ.extend(disagreement);
    }
    println!("{} scripts, verdicts: {counts:?}", tier.len());
    assert!(
        differ.is_empty(),
        "the kernel shim and linux disagree:\n{}",
        differ.join("\n")
    );
    live::testing::assert_no_namespace_of_ours();
}

/// The smoltcp example, built for this test's profile.
fn smoltcp_example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_string(),
        Some(p) => p.to_string(),
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "-q",
            "-p",
            "tcp-harness",
            "--example",
            "exec_smoltcp",
            "--profile",
        ])
        .arg(&profile)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the smoltcp example");
    profile_dir.join("examples/exec_smoltcp")
}

#[test]
fn the_smoltcp_example_runs_the_suite_to_verdicts() {
    let Some(_g) = guard() else { return };
    let bin = smoltcp_example();
    let cmd = bin.display().to_string();
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    let mut errors = Vec::new();
    for path in short_tier() {
        let r = on_exec(&path, &cmd);
        let v = match &r.outcome {
            Outcome::Passed => "passed",
            Outcome::Failed(_) => "failed",
            Outcome::NotApplicable(_) => "not applicable",
            Outcome::Error(e) => {
                errors.push(e.clone());
                "error"
            }
        };
        *counts.entry(v).or_default() += 1;
    }
    println!("smoltcp via exec: {counts:?}");
    assert!(errors.is_empty(), "errors:\n{}", errors.join("\n"));
    assert!(counts.get("passed").copied().unwrap_or(0) > 0, "{counts:?}");
    live::testing::assert_no_namespace_of_ours();
}

/// Whether `pid` runs (a zombie has ended).
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// The processes in the namespace behind `ns` whose command is `comm`.
fn processes_in(ns: &File, comm: &str) -> Vec<u32> {
    use std::os::unix::fs::MetadataExt;
    let want = ns.metadata().unwrap();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let same_ns = std::fs::metadata(format!("/proc/{pid}/ns/net"))
            .is_ok_and(|m| (m.dev(), m.ino()) == (want.dev(), want.ino()));
        let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if same_ns && name.trim() == comm {
            found.push(pid);
        }
    }
    found
}

#[test]
fn sigterm_of_the_harness_kills_the_process_group_and_the_namespace() {
    let Some(_g) = guard() else { return };
    let script = manifest().join("../specs/scripts/passive_open.pkt");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tcpconform"))
        .args(["run", "--exec-timeout", "60", "--target"])
        .arg(format!("exec:{}", fixture("hang.sh")))
        .arg(&script)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tcpconform runs");
    let prefix = format!("{}{}-", live::NAME_PREFIX, child.id());
    // The hanging fixture's `sleep`, a grandchild of the harness holding
    // the TUN device, inside the run's namespace.
    let mut found = None;
    for _ in 0..1000 {
        let ns = live::list_namespaces()
            .unwrap()
            .into_iter()
            .find(|n| n.starts_with(&prefix));
        if let Some(ns) = ns.and_then(|n| File::open(Path::new("/run/netns").join(n)).ok()) {
            let sleeps = processes_in(&ns, "sleep");
            if !sleeps.is_empty() {
                found = Some((ns, sleeps));
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let Some((ns, sleeps)) = found else {
        let _ = child.kill();
        panic!("the fixture's sleep never ran in the run's namespace");
    };
    // SAFETY: signals the child this test started.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "exit 128 + SIGTERM");
    for pid in sleeps {
        for _ in 0..200 {
            if !running(pid) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!running(pid), "the process group's sleep {pid} was killed");
    }
    let left = tun_devices_in(&ns);
    assert!(left.trim().is_empty(), "TUN devices left: {left}");
    assert!(
        !live::list_namespaces()
            .unwrap()
            .iter()
            .any(|n| n.starts_with(&prefix)),
        "the run's namespace was removed"
    );
}
