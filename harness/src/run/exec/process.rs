//! The foreign process of an exec target: started with `/bin/sh -c CMD`
//! inside the target's namespace, spoken to over its stdin and stdout, and
//! always killed (with everything it started) when the target goes.
//!
//! - **Where it runs.** The child enters the namespace (`setns(2)` on the
//!   namespace file) before `exec`, and the harness checks afterwards that
//!   `/proc/<pid>/ns/net` is that namespace, so a foreign program never
//!   runs in the host's network namespace.
//! - **What it gets.** Stdin, stdout and stderr are pipes; the TUN device is
//!   descriptor 3; every other descriptor of the harness is closed. The
//!   environment is empty except a fixed `PATH` ([`SAFE_PATH`]) and the
//!   variables the target passes (`TCPCONFORM_*`, docs/exec-protocol.md).
//! - **How it ends.** Dropping a [`Process`] closes its stdin (a polite
//!   process exits on end of input), waits [`EXIT_GRACE`], then kills its
//!   whole process group with SIGKILL and reaps it. The child also gets
//!   SIGKILL if the harness thread that started it dies
//!   (`PR_SET_PDEATHSIG`), so a harness killed outright does not leave it
//!   holding the TUN device, and SIGINT/SIGTERM of the harness kill its
//!   whole group ([`crate::live`]'s signal clean-up).

use super::protocol::{shown, MAX_LINE};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The only `PATH` the foreign process sees.
pub const SAFE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The descriptor number of the TUN device in the child.
pub const TUN_FD: RawFd = 3;
/// How long a process may take to exit after its stdin closed.
pub const EXIT_GRACE: Duration = Duration::from_millis(300);
/// How much of the process's stderr is kept for error messages.
const STDERR_TAIL: usize = 2048;
/// How long to wait for an exit status after stdout closed.
const EXIT_STATUS_WAIT: Duration = Duration::from_millis(500);

/// What the stdout reader hands over.
enum Line {
    Text(String),
    TooLong,
    Eof,
    Failed(String),
}

/// A running foreign process.
#[derive(Debug)]
pub struct Process {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<LineMsg>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

/// [`Line`] behind a Debug-able wrapper.
struct LineMsg(Line);

impl std::fmt::Debug for LineMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Line")
    }
}

impl Process {
    /// Starts `/bin/sh -c cmd` inside the namespace of `netns` (its
    /// `/run/netns` file), with `tun` as descriptor 3 and `env` added to
    /// the fixed `PATH`.
    pub fn spawn(
        cmd: &str,
        env: &[(String, String)],
        netns: &File,
        tun: RawFd,
    ) -> Result<Process, String> {
        let ns_fd = netns.as_raw_fd();
        let mut c = Command::new("/bin/sh");
        c.arg("-c")
            .arg(cmd)
            .env_clear()
            .env("PATH", SAFE_PATH)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: the closure runs in the child between fork and exec and
        // makes only async-signal-safe system calls (setns, prctl, dup2,
        // fcntl, close_range) on descriptors that are open in the child.
        unsafe {
            c.pre_exec(move || child_setup(ns_fd, tun));
        }
        let mut child = c
            .spawn()
            .map_err(|e| format!("cannot start `/bin/sh -c {cmd}`: {e}"))?;
        // SIGINT/SIGTERM of the harness kill the group too.
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            crate::live::register_group(pid);
        }
        // The child is in the namespace, or it is killed now.
        if let Err(why) = same_netns(child.id(), netns) {
            kill_group(&mut child);
            return Err(why);
        }
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            kill_group(&mut child);
            return Err("the child's pipes were not set up".into());
        };
        let (tx, lines) = mpsc::channel();
        let tail = Arc::new(Mutex::new(Vec::new()));
        // Neither reader is joined: a grandchild that escaped the process
        // group may keep a pipe open; the threads end with the pipes.
        let spawned = std::thread::Builder::new()
            .name("exec-stdout".into())
            .spawn(move || read_lines(stdout, &tx))
            .and_then(|_| {
                let tail = Arc::clone(&tail);
                std::thread::Builder::new()
                    .name("exec-stderr".into())
                    .spawn(move || read_tail(stderr, &tail))
            });
        if let Err(e) = spawned {
            kill_group(&mut child);
            return Err(format!("cannot start the reader threads: {e}"));
        }
        Ok(Process {
            child,
            stdin: Some(stdin),
            lines,
            stderr: tail,
        })
    }

    /// The process id (also its process group).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes one line (a newline is added).
    pub fn send(&mut self, line: &str) -> Result<(), String> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err("its stdin is closed".into());
        };
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        match stdin.write_all(&buf).and_then(|()| stdin.flush()) {
            Ok(()) => Ok(()),
            Err(e) => Err(format!("could not be written to ({e}): it {}", self.gone())),
        }
    }

    /// The next line, waiting at most `timeout`; `Err` says what the
    /// process did instead.
    pub fn recv(&mut self, timeout: Duration) -> Result<String, String> {
        match self.lines.recv_timeout(timeout) {
            Ok(LineMsg(line)) => self.line(line),
            Err(RecvTimeoutError::Timeout) => Err(match self.exit_status() {
                Some(s) => format!("{s} without answering"),
                None => format!(
                    "gave no answer within {:.1} s (still running)",
                    timeout.as_secs_f64()
                ),
            }),
            Err(RecvTimeoutError::Disconnected) => Err(self.gone()),
        }
    }

    /// Fails when the process has exited or printed something nobody asked
    /// for (checked while no request is outstanding).
    pub fn check(&mut self) -> Result<(), String> {
        match self.lines.try_recv() {
            Ok(LineMsg(Line::Text(s))) => {
                return Err(format!(
                    "printed {} while no request was pending",
                    shown(&s)
                ))
            }
            Ok(LineMsg(other)) => return self.line(other).map(|_| ()),
            Err(TryRecvError::Disconnected) => return Err(self.gone()),
            Err(TryRecvError::Empty) => {}
        }
        match self.exit_status() {
            Some(s) => Err(format!("{s} while the script was running")),
            None => Ok(()),
        }
    }

    fn line(&mut self, line: Line) -> Result<String, String> {
        match line {
            Line::Text(s) => Ok(s),
            Line::TooLong => Err(format!("printed a line longer than {MAX_LINE} bytes")),
            Line::Eof => Err(self.gone()),
            Line::Failed(e) => Err(format!("could not be read from: {e}")),
        }
    }

    /// What became of a process whose stdout closed.
    fn gone(&mut self) -> String {
        let deadline = Instant::now() + EXIT_STATUS_WAIT;
        loop {
            if let Some(s) = self.exit_status() {
                return format!("closed its stdout and {s}");
            }
            if Instant::now() >= deadline {
                return "closed its stdout (still running)".into();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// `exited with status N` / `was killed by signal N (SIGx)` once the
    /// process has ended; the zombie is not reaped, so the process group id
    /// stays reserved until [`Drop`] kills the group.
    fn exit_status(&self) -> Option<String> {
        let pid = libc::id_t::try_from(self.child.id()).ok()?;
        // SAFETY: siginfo_t is plain old data; all-zero is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a live, writable siginfo_t; WNOWAIT leaves the
        // child waitable, WNOHANG makes the call return at once.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: waitid filled `info` (or left it zeroed: si_pid 0).
        let (who, status) = unsafe { (info.si_pid(), info.si_status()) };
        if rc != 0 || who == 0 {
            return None;
        }
        Some(if info.si_code == libc::CLD_EXITED {
            format!("exited with status {status}")
        } else {
            format!("was killed by signal {status}{}", signal_name(status))
        })
    }

    /// The end of what the process wrote to stderr, for error messages
    /// (empty when it wrote nothing).
    pub fn stderr_tail(&self) -> String {
        let buf = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&buf).trim().to_string()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // End of input first: a polite process exits by itself.
        self.stdin = None;
        let deadline = Instant::now() + EXIT_GRACE;
        while self.exit_status().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        kill_group(&mut self.child);
    }
}

/// SIGKILL to the child's process group (its helpers too; it was started
/// with `process_group(0)`), then reaps the child.
fn kill_group(child: &mut Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        crate::live::kill_group(pid);
    }
    let _ = child.wait();
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGSEGV => " (SIGSEGV)",
        libc::SIGABRT => " (SIGABRT)",
        libc::SIGKILL => " (SIGKILL)",
        libc::SIGTERM => " (SIGTERM)",
        libc::SIGBUS => " (SIGBUS)",
        libc::SIGILL => " (SIGILL)",
        libc::SIGFPE => " (SIGFPE)",
        libc::SIGPIPE => " (SIGPIPE)",
        libc::SIGINT => " (SIGINT)",
        _ => "",
    }
}

/// In the child before exec: enter the namespace, die with the parent
/// thread, put the TUN device on descriptor 3 and close every descriptor
/// above it.
fn child_setup(ns_fd: RawFd, tun: RawFd) -> std::io::Result<()> {
    let last_err = std::io::Error::last_os_error;
    // SAFETY (all calls below): plain system calls on descriptors open in
    // this (child) process; no memory is shared with the parent.
    unsafe {
        if libc::setns(ns_fd, libc::CLONE_NEWNET) != 0 {
            return Err(last_err());
        }
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
            return Err(last_err());
        }
        if tun == TUN_FD {
            if libc::fcntl(TUN_FD, libc::F_SETFD, 0) != 0 {
                return Err(last_err());
            }
        } else if libc::dup2(tun, TUN_FD) < 0 {
            return Err(last_err());
        }
        // Failure (a kernel without close_range) leaves descriptors that
        // are closed on exec anyway, or that die with the child.
        libc::close_range(4, libc::c_uint::MAX, 0);
    }
    Ok(())
}

/// Fails unless process `pid` is in the namespace of `netns`.
fn same_netns(pid: u32, netns: &File) -> Result<(), String> {
    let want = netns
        .metadata()
        .map_err(|e| format!("inspecting the namespace file: {e}"))?;
    let path = format!("/proc/{pid}/ns/net");
    let got = std::fs::metadata(&path).map_err(|e| format!("reading {path}: {e}"))?;
    if (got.dev(), got.ino()) == (want.dev(), want.ino()) {
        Ok(())
    } else {
        Err(format!(
            "the process (pid {pid}) is not in the target's namespace; it was killed"
        ))
    }
}

/// The stdout reader: one message per line, then end of file.
fn read_lines(stdout: std::process::ChildStdout, tx: &mpsc::Sender<LineMsg>) {
    let mut r = BufReader::new(stdout);
    loop {
        let mut buf = Vec::new();
        let limit = u64::try_from(MAX_LINE).unwrap_or(u64::MAX) + 1;
        let msg = match r.by_ref().take(limit).read_until(b'\n', &mut buf) {
            Ok(0) => Line::Eof,
            Ok(_) if buf.last() == Some(&b'\n') => {
                buf.pop();
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
                Line::Text(String::from_utf8_lossy(&buf).into_owned())
            }
            // The last line without a newline, then end of file.
            Ok(n) if n <= MAX_LINE => Line::Text(String::from_utf8_lossy(&buf).into_owned()),
            Ok(_) => Line::TooLong,
            Err(e) => Line::Failed(e.to_string()),
        };
        let last = !matches!(msg, Line::Text(_));
        if tx.send(LineMsg(msg)).is_err() || last {
            return;
        }
    }
}

/// The stderr reader: keeps the last [`STDERR_TAIL`] bytes.
fn read_tail(mut stderr: std::process::ChildStderr, tail: &Mutex<Vec<u8>>) {
    let mut chunk = [0u8; 4096];
    loop {
        match stderr.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
                t.extend_from_slice(&chunk[..n]);
                let excess = t.len().saturating_sub(STDERR_TAIL);
                t.drain(..excess);
            }
        }
    }
}
