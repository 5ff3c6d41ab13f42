//! `tcpconform serve` as a user runs it: the binary serves a directory over
//! HTTP with the own stack on tun1, curl inside the printed namespace
//! downloads a file (SHA-256 compared) and gets a 404 for a missing one,
//! bash's /dev/tcp gets its line echoed by `serve --echo`, and SIGINT stops
//! the server and removes its namespace. Bad arguments exit 2 with a reason.
//!
//! The live parts need root, /dev/net/tun, iproute2 and curl (installed by
//! `.ci/setup`); without privileges they print `skipped: <reason>`.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tcp_harness::live;

fn tcpconform() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tcpconform"))
}

/// A running `tcpconform serve`, its namespace and address; killed (and
/// its namespace therefore reaped by the next run) if the test panics.
struct Server {
    child: Child,
    netns: String,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `tcpconform serve ARGS` and reads its banner: `serving MODE on
/// ADDR (…) in network namespace NAME`.
fn start(args: &[&str]) -> Server {
    let mut child = match tcpconform()
        .arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("cannot start tcpconform serve: {e}"),
    };
    let stdout = child.stdout.take().expect("piped stdout");
    let banner = first_line(stdout);
    let Some(banner) = banner else {
        let _ = child.kill();
        let out = child.wait_with_output().ok();
        let err = out.map(|o| String::from_utf8_lossy(&o.stderr).into_owned());
        panic!("serve printed no banner; stderr: {err:?}");
    };
    let words: Vec<&str> = banner.split_whitespace().collect();
    let after = |w: &str| words.iter().position(|x| *x == w).map(|i| words[i + 1]);
    match (after("on"), after("namespace")) {
        (Some(addr), Some(ns)) => Server {
            netns: ns.to_string(),
            addr: addr.to_string(),
            child,
        },
        _ => panic!("unexpected banner: {banner}"),
    }
}

/// The first line of the server's output, waiting at most 20 s; the rest
/// is drained in the background so the server never blocks on a pipe.
fn first_line(stdout: ChildStdout) -> Option<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = tx.send(lines.next().and_then(Result::ok));
        for _ in lines {}
    });
    rx.recv_timeout(Duration::from_secs(20)).ok().flatten()
}

/// Runs `cmd…` inside the namespace; returns (success, stdout).
fn in_netns(ns: &str, cmd: &[&str]) -> (bool, Vec<u8>) {
    match Command::new("ip")
        .args(["netns", "exec", ns])
        .args(cmd)
        .stderr(Stdio::inherit())
        .output()
    {
        Ok(o) => (o.status.success(), o.stdout),
        Err(e) => panic!("ip netns exec: {e}"),
    }
}

fn namespace_exists(ns: &str) -> bool {
    live::list_namespaces().unwrap().iter().any(|n| n == ns)
}

/// Sends SIGINT and waits (bounded) for the server to exit.
fn interrupt(mut server: Server) -> Option<i32> {
    let pid = server.child.id().to_string();
    let sent = Command::new("kill").args(["-INT", &pid]).status();
    assert!(matches!(sent, Ok(s) if s.success()), "kill -INT {pid}");
    for _ in 0..200 {
        if let Ok(Some(status)) = server.child.try_wait() {
            return Some(status.code().unwrap_or(-1));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn http_serves_a_file_to_curl_and_sigint_removes_the_namespace() {
    let Some(_guard) = live::testing::guard() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("tcpconform-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // 3 MiB of varied bytes: many segments, windows and ACKs.
    let body: Vec<u8> = (0u32..3 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(dir.join("blob.bin"), &body).unwrap();

    let server = start(&["--http", dir.to_str().unwrap()]);
    assert!(namespace_exists(&server.netns), "{} missing", server.netns);
    let url = format!("http://{}/blob.bin", server.addr);
    let (ok, got) = in_netns(&server.netns, &["curl", "-sS", "--max-time", "30", &url]);
    assert!(ok, "curl {url} failed");
    assert_eq!(got.len(), body.len());
    assert_eq!(Sha256::digest(&got), Sha256::digest(&body));

    let missing = format!("http://{}/missing", server.addr);
    let fmt = "%{http_code}";
    let (_, code) = in_netns(
        &server.netns,
        &[
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            fmt,
            "--max-time",
            "10",
            &missing,
        ],
    );
    assert_eq!(String::from_utf8_lossy(&code), "404");

    let ns = server.netns.clone();
    let code = interrupt(server);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, Some(130), "serve should exit 130 on SIGINT");
    assert!(!namespace_exists(&ns), "{ns} left behind after SIGINT");
}

#[test]
fn echo_returns_a_line_to_a_kernel_client_under_impairment() {
    let Some(_guard) = live::testing::guard() else {
        return;
    };
    let server = start(&["--echo", "--impair", "loss=0.1,dup=0.1,seed=3"]);
    let (ip, port) = server.addr.rsplit_once(':').expect("ip:port");
    let script = format!(
        "exec 3<>/dev/tcp/{ip}/{port}; printf 'hello, tun\\n' >&3; \
         read -t 20 -r line <&3; printf '%s' \"$line\""
    );
    let (ok, got) = in_netns(&server.netns, &["bash", "-c", &script]);
    assert!(ok, "bash /dev/tcp client failed");
    assert_eq!(String::from_utf8_lossy(&got), "hello, tun");
    let ns = server.netns.clone();
    assert_eq!(interrupt(server), Some(130));
    assert!(!namespace_exists(&ns), "{ns} left behind after SIGINT");
}

#[test]
fn bad_arguments_exit_2_with_a_reason() {
    let cases: &[(&[&str], &str)] = &[
        (&["serve"], "required"),
        (&["serve", "--echo", "--discard"], "cannot be used with"),
        (
            &["serve", "--echo", "--impair", "loss=2"],
            "between 0 and 1",
        ),
        (&["serve", "--echo", "--impair", "jitter=1"], "jitter"),
        (&["serve", "--echo", "--duration=-1"], "positive number"),
        (&["serve", "--http", "/nonexistent/dir"], "/nonexistent/dir"),
    ];
    for (args, needle) in cases {
        let out = tcpconform().args(*args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err:?} lacks {needle:?}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
