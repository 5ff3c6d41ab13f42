//! `ioctl`, `open` + `sendfile` and `pipe` + `splice` with packetdrill's
//! syntax and meaning (issue 10):
//!
//! - `ioctl(fd, SIOCINQ, [N])`: the command with a pointer to an int; the
//!   int the kernel writes is compared with `N` (`ioctl(fd, cmd)` passes
//!   no argument).
//! - `open("path", flags) = N`: the new descriptor is the script's `N`. A
//!   path under `/tmp/` names the same file in the target's own temporary
//!   directory (shell lines see that directory as `/tmp`, see
//!   [`super::linux::run_shell`]); a relative path is relative to the
//!   script's directory, as packetdrill runs from there. Writing is allowed
//!   in the temporary directory only.
//! - `sendfile(out, in, [offset], count)`.
//! - `pipe([r, w]) = 0`: the two new descriptors are the script's `r`, `w`.
//! - `splice(in, NULL, out, NULL, len, flags)`: offsets `NULL` (or 0);
//!   packetdrill passes any other number as a pointer, which the harness
//!   does not (it could point into the harness itself).
//!
//! Only a kernel has these: every other target answers them not applicable
//! ([`super::target::SocketCall::kernel_only`]).

use super::live_fds::{errno_result, LiveFds};
use super::target::{CallOutcome, CallReturn, Fd, OptValue};
use crate::script::{Expr, SyscallSpec};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// `ioctl` requests by name (Linux values: SIOCINQ is FIONREAD, SIOCOUTQ
/// is TIOCOUTQ).
const IOCTLS: &[(&str, u64)] = &[
    ("SIOCINQ", 0x541B),
    ("FIONREAD", 0x541B),
    ("SIOCOUTQ", 0x5411),
    ("TIOCOUTQ", 0x5411),
    ("SIOCOUTQNSD", 0x894B),
];

/// `open` flags by name (Linux, x86-64 and most others).
const OPEN_FLAGS: &[(&str, i64)] = &[
    ("O_RDONLY", 0),
    ("O_WRONLY", 1),
    ("O_RDWR", 2),
    ("O_CREAT", 0x40),
    ("O_EXCL", 0x80),
    ("O_TRUNC", 0x200),
    ("O_APPEND", 0x400),
    ("O_NONBLOCK", 0x800),
];

/// Flags that write to (or create) a file.
const WRITING: i64 = 1 | 2 | 0x40 | 0x200 | 0x400;

/// A file, pipe or ioctl call, resolved from the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileCall {
    /// `ioctl(fd, request[, [value]])`; `int_arg` whether an int is passed.
    Ioctl { fd: Fd, request: u64, int_arg: bool },
    /// `open(path, flags)`; `path` as the script wrote it until the runner
    /// places it ([`place_paths`]): a relative one joined to the script's
    /// directory, `in_script_dir` then set (opened as it is, even when that
    /// directory is itself under `/tmp`).
    Open {
        path: PathBuf,
        flags: i64,
        in_script_dir: bool,
    },
    /// `sendfile(out, in, [offset], count)`.
    SendFile {
        out: Fd,
        input: Fd,
        offset: i64,
        count: usize,
    },
    /// `pipe([r, w])`: the script's numbers for the two ends.
    Pipe { script: [Fd; 2] },
    /// `splice(in, NULL, out, NULL, len, flags)`.
    Splice {
        input: Fd,
        out: Fd,
        len: usize,
        flags: u32,
    },
}

impl FileCall {
    /// The call's name as scripts write it.
    pub fn name(&self) -> &'static str {
        match self {
            FileCall::Ioctl { .. } => "ioctl",
            FileCall::Open { .. } => "open",
            FileCall::SendFile { .. } => "sendfile",
            FileCall::Pipe { .. } => "pipe",
            FileCall::Splice { .. } => "splice",
        }
    }

    /// The call with every descriptor it names replaced by `f(fd)` (a
    /// pipe's are new: the runner records them, [`record_fds`]).
    pub fn map_fds(&mut self, f: &dyn Fn(Fd) -> Fd) {
        match self {
            FileCall::Ioctl { fd, .. } => *fd = f(*fd),
            FileCall::SendFile { out, input, .. } | FileCall::Splice { input, out, .. } => {
                *out = f(*out);
                *input = f(*input);
            }
            FileCall::Open { .. } | FileCall::Pipe { .. } => {}
        }
    }
}

/// Resolves `ioctl`, `open`, `sendfile`, `pipe`, `splice`; `None` for any
/// other name.
pub fn resolve(spec: &SyscallSpec) -> Option<Result<FileCall, String>> {
    let name = spec.name.as_str();
    let a = &spec.args;
    let arity = |n: usize| {
        (a.len() == n)
            .then_some(())
            .ok_or_else(|| format!("{name}: expected {n} arguments, found {}", a.len()))
    };
    let int = |e: &Expr| match e {
        Expr::Int(i) => Ok(*i),
        other => Err(format!("{name}: expected a number, found `{other}`")),
    };
    let count = |e: &Expr| {
        int(e).and_then(|n| {
            usize::try_from(n)
                .ok()
                .filter(|n| *n <= 16 << 20)
                .ok_or_else(|| format!("{name}: length {n} out of range (0..=16 MiB)"))
        })
    };
    Some(match name {
        "ioctl" => ioctl(name, a),
        "open" => arity(2).and_then(|()| match &a[0] {
            Expr::Str(p) => Ok(FileCall::Open {
                path: PathBuf::from(p),
                flags: open_flags(name, &a[1])?,
                in_script_dir: false,
            }),
            other => Err(format!("{name}: the path must be a string, not `{other}`")),
        }),
        "sendfile" => arity(4).and_then(|()| {
            Ok(FileCall::SendFile {
                out: int(&a[0])?,
                input: int(&a[1])?,
                offset: bracketed(name, &a[2])?,
                count: count(&a[3])?,
            })
        }),
        "pipe" => arity(1).and_then(|()| match &a[0] {
            Expr::List(v) if v.len() == 2 => Ok(FileCall::Pipe {
                script: [int(&v[0])?, int(&v[1])?],
            }),
            other => Err(format!("{name}: expected [r, w], found `{other}`")),
        }),
        "splice" => arity(6).and_then(|()| {
            for off in [&a[1], &a[3]] {
                if !matches!(off, Expr::Int(0)) && !matches!(off, Expr::Ident(s) if s == "NULL") {
                    return Err(format!(
                        "{name}: offset `{off}` (not NULL) is not supported"
                    ));
                }
            }
            Ok(FileCall::Splice {
                input: int(&a[0])?,
                out: int(&a[2])?,
                len: count(&a[4])?,
                flags: u32::try_from(int(&a[5])?)
                    .map_err(|_| format!("{name}: flags out of range"))?,
            })
        }),
        _ => return None,
    })
}

fn ioctl(name: &str, a: &[Expr]) -> Result<FileCall, String> {
    if a.len() != 2 && a.len() != 3 {
        return Err(format!(
            "{name}: expected 2 or 3 arguments, found {}",
            a.len()
        ));
    }
    let request = match &a[1] {
        Expr::Ident(s) => IOCTLS
            .iter()
            .find(|(n, _)| n == s)
            .map(|(_, v)| *v)
            .ok_or_else(|| format!("{name}: request {s} is not supported"))?,
        Expr::Int(i) => {
            u64::try_from(*i).map_err(|_| format!("{name}: request {i} out of range"))?
        }
        other => return Err(format!("{name}: expected a request, found `{other}`")),
    };
    if let Some(v) = a.get(2) {
        bracketed(name, v)?;
    }
    Ok(FileCall::Ioctl {
        fd: match &a[0] {
            Expr::Int(i) => *i,
            other => return Err(format!("{name}: expected a descriptor, found `{other}`")),
        },
        request,
        int_arg: a.len() == 3,
    })
}

/// `[N]`.
fn bracketed(name: &str, e: &Expr) -> Result<i64, String> {
    match e {
        Expr::List(v) if v.len() == 1 => match &v[0] {
            Expr::Int(i) => Ok(*i),
            other => Err(format!("{name}: expected [N], found `[{other}]`")),
        },
        other => Err(format!("{name}: expected [N], found `{other}`")),
    }
}

fn open_flags(name: &str, e: &Expr) -> Result<i64, String> {
    match e {
        Expr::Int(i) => Ok(*i),
        Expr::Ident(s) => OPEN_FLAGS
            .iter()
            .find(|(n, _)| n == s)
            .map(|(_, v)| *v)
            .ok_or_else(|| format!("{name}: flag {s} is not supported")),
        Expr::BitOr(parts) => parts
            .iter()
            .try_fold(0, |acc, p| Ok(acc | open_flags(name, p)?)),
        other => Err(format!("{name}: expected flags, found `{other}`")),
    }
}

/// Places an `open`'s relative path in the script's directory `dir` (the
/// runner's half: packetdrill runs in the script's directory).
pub fn place_paths(call: &mut super::target::SocketCall, dir: &Path) {
    if let super::target::SocketCall::File(FileCall::Open {
        path,
        in_script_dir,
        ..
    }) = call
    {
        if path.is_relative() {
            *path = dir.join(&*path);
            *in_script_dir = true;
        }
    }
}

/// Records a `pipe`'s two new descriptors (the script's numbers for the
/// target's, returned in [`CallReturn::revents`]) in the runner's map.
pub fn record_fds(call: &super::target::SocketCall, r: &CallReturn, fds: &mut BTreeMap<Fd, Fd>) {
    if let (super::target::SocketCall::File(FileCall::Pipe { script }), Ok(_), [a, b]) =
        (call, r.ret, r.revents.as_slice())
    {
        fds.insert(script[0], *a);
        fds.insert(script[1], *b);
    }
}

/// Compares the int an `ioctl` wrote with the script's `[N]`.
pub fn check(spec: &SyscallSpec, got: &CallReturn) -> Result<(), (String, String)> {
    if spec.name != "ioctl" || got.ret.is_err() {
        return Ok(());
    }
    let (Some(Ok(want)), Some(OptValue::Int(v))) =
        (spec.args.get(2).map(|e| bracketed("ioctl", e)), got.value)
    else {
        return Ok(());
    };
    if want != v {
        return Err((format!("value [{want}]"), format!("value [{v}]")));
    }
    Ok(())
}

// ----- on a live kernel ------------------------------------------------------

/// A live target's own temporary directory, `<tmpdir>/<namespace>.tmp`
/// (mode 0700): what scripts call `/tmp`. Removed with everything in it
/// when dropped.
#[derive(Debug)]
pub struct TempArea(PathBuf);

impl TempArea {
    /// Creates the directory for namespace `netns`.
    pub fn create(netns: &str) -> std::io::Result<TempArea> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = crate::live::temp_area(netns);
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(TempArea(dir))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempArea {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Makes `call` on the live kernel with the worker's descriptors; `/tmp/`
/// paths go to the target's temporary directory ([`TempArea`]).
pub fn run_live(call: &FileCall, fds: &mut dyn LiveFds) -> CallOutcome {
    let tmp = fds.temp_dir();
    let raw = |fd: Fd| fds.raw(fd);
    let r = match call {
        FileCall::Ioctl {
            fd,
            request,
            int_arg,
        } => {
            let Some(raw) = raw(*fd) else {
                return ebadf();
            };
            let mut v: libc::c_int = 0;
            // SAFETY: `v` is a live int the request writes into; without
            // `int_arg` no argument is passed.
            let rc = unsafe {
                if *int_arg {
                    libc::ioctl(raw, *request as _, &mut v as *mut libc::c_int)
                } else {
                    libc::ioctl(raw, *request as _)
                }
            };
            let mut r = errno_result(rc.into());
            if rc >= 0 && *int_arg {
                r.value = Some(OptValue::Int(i64::from(v)));
            }
            r
        }
        FileCall::Open {
            path,
            flags,
            in_script_dir,
        } => open(path, *in_script_dir, *flags, fds, &tmp),
        FileCall::SendFile {
            out,
            input,
            offset,
            count,
        } => {
            let (Some(o), Some(i)) = (raw(*out), raw(*input)) else {
                return ebadf();
            };
            let mut off: libc::off_t = *offset;
            // SAFETY: `off` is a live offset the kernel updates.
            let rc = unsafe { libc::sendfile(o, i, &mut off, *count) };
            return blocking(errno_result(rc as i64), fds.blocking(*out));
        }
        FileCall::Pipe { .. } => pipe(fds),
        FileCall::Splice {
            input,
            out,
            len,
            flags,
        } => {
            let (Some(i), Some(o)) = (raw(*input), raw(*out)) else {
                return ebadf();
            };
            let script_blocking = fds.blocking(*input);
            let null = std::ptr::null_mut();
            let rc = briefly_blocking(i, script_blocking, || {
                // SAFETY: null offsets (the descriptors' own positions).
                unsafe { libc::splice(i, null, o, null, *len, *flags) }
            });
            return blocking(errno_result(rc as i64), script_blocking);
        }
    };
    CallOutcome::Done(r)
}

/// Runs `f` with socket `raw` blocking but with a 1 ms receive timeout when
/// the script keeps it blocking: a blocking read takes paths a
/// non-blocking one does not (Linux's `tcp_splice_read` returns 0 on an
/// urgent byte it cannot pass only when it may wait), while the worker
/// never waits long (a timeout answers `EAGAIN` and the runner makes the
/// call again). Not a socket, or not blocking: `f` as is.
fn briefly_blocking(
    raw: std::os::fd::RawFd,
    script_blocking: bool,
    f: impl FnOnce() -> isize,
) -> isize {
    const TICK: libc::timeval = libc::timeval {
        tv_sec: 0,
        tv_usec: 1000,
    };
    let tv_len = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
    let mut old = TICK;
    let mut len = tv_len;
    // SAFETY: `old`/`len` are live and writable; a descriptor the worker owns.
    let is_sock = script_blocking
        && unsafe {
            libc::getsockopt(
                raw,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&mut old as *mut libc::timeval).cast(),
                &mut len,
            )
        } == 0;
    if !is_sock {
        return f();
    }
    // SAFETY (the four calls): plain fcntl/setsockopt on the worker's own
    // descriptor with live values of the lengths passed.
    let fl = unsafe { libc::fcntl(raw, libc::F_GETFL) };
    unsafe {
        libc::setsockopt(
            raw,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&TICK as *const libc::timeval).cast(),
            tv_len,
        );
        libc::fcntl(raw, libc::F_SETFL, fl & !libc::O_NONBLOCK);
    }
    let rc = f();
    let e = std::io::Error::last_os_error();
    unsafe {
        libc::fcntl(raw, libc::F_SETFL, fl);
        libc::setsockopt(
            raw,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&old as *const libc::timeval).cast(),
            tv_len,
        );
    }
    if rc < 0 {
        // The restoring calls must not hide the call's errno.
        // SAFETY: errno is this thread's.
        unsafe { *libc::__errno_location() = e.raw_os_error().unwrap_or(0) };
    }
    rc
}

fn ebadf() -> CallOutcome {
    CallOutcome::Done(CallReturn::err("EBADF"))
}

/// `EAGAIN` on a descriptor the script keeps blocking: the call waits.
fn blocking(r: CallReturn, script_blocking: bool) -> CallOutcome {
    if r.ret == Err("EAGAIN") && script_blocking {
        CallOutcome::WouldBlock
    } else {
        CallOutcome::Done(r)
    }
}

/// Where `path` is opened: `/tmp/...` in `tmp`, a path placed in the
/// script's directory as it is; writing only in `tmp`.
fn placed(path: &Path, in_script_dir: bool, flags: i64, tmp: &Path) -> Result<PathBuf, String> {
    if path.components().any(|c| c == Component::ParentDir) && flags & WRITING != 0 {
        return Err(format!(
            "open: `{}` has `..` and opens for writing",
            path.display()
        ));
    }
    let under_tmp = if in_script_dir {
        None
    } else {
        path.strip_prefix("/tmp").ok()
    };
    match under_tmp {
        Some(rest) if !rest.as_os_str().is_empty() => Ok(tmp.join(rest)),
        _ if flags & WRITING != 0 => Err(format!(
            "open: `{}` opens for writing outside /tmp (the target's temporary directory)",
            path.display()
        )),
        _ => Ok(path.to_path_buf()),
    }
}

fn open(
    path: &Path,
    in_script_dir: bool,
    flags: i64,
    fds: &mut dyn LiveFds,
    tmp: &Path,
) -> CallReturn {
    let path = match placed(path, in_script_dir, flags, tmp) {
        Ok(p) => p,
        Err(why) => return CallReturn::err("EACCES").with_note(why),
    };
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return CallReturn::err("EINVAL").with_note("open: the path has a NUL");
    };
    let Ok(flags) = libc::c_int::try_from(flags) else {
        return CallReturn::err("EINVAL");
    };
    // SAFETY: `c` is a live NUL-terminated path.
    let raw = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, 0o600) };
    if raw < 0 {
        return errno_result(-1);
    }
    // SAFETY: `raw` is a fresh descriptor nothing else owns.
    let owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
    CallReturn::ok(fds.adopt(owned))
}

fn pipe(fds: &mut dyn LiveFds) -> CallReturn {
    let mut p = [0 as libc::c_int; 2];
    // SAFETY: `p` is a live array of two ints; the ends are non-blocking,
    // like every real descriptor of the worker.
    if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } < 0 {
        return errno_result(-1);
    }
    // SAFETY: two fresh descriptors nothing else owns.
    let [r, w] =
        p.map(|fd| unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
    let r = fds.adopt(r);
    let w = fds.adopt(w);
    let mut ret = CallReturn::ok(0);
    ret.revents = vec![r, w];
    ret
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(text: &str) -> Result<FileCall, String> {
        let script = crate::script::parse("t.pkt", text).expect("parses");
        match &script.events[0].kind {
            crate::script::EventKind::Syscall(s) => resolve(s).expect("a file call"),
            _ => panic!("not a call"),
        }
    }

    #[test]
    fn resolves_packetdrill_forms() {
        assert_eq!(
            resolved("0 ioctl(4, SIOCINQ, [1000]) = 0"),
            Ok(FileCall::Ioctl {
                fd: 4,
                request: 0x541B,
                int_arg: true
            })
        );
        assert_eq!(
            resolved("0 pipe([5, 6]) = 0"),
            Ok(FileCall::Pipe { script: [5, 6] })
        );
        assert_eq!(
            resolved("0 splice(4, NULL, 6, NULL, 99, 0) = 99"),
            Ok(FileCall::Splice {
                input: 4,
                out: 6,
                len: 99,
                flags: 0
            })
        );
        assert!(resolved("0 splice(4, 8, 6, NULL, 99, 0) = 99").is_err());
        assert_eq!(
            resolved("0 sendfile(4, 5, [0], 5) = 5"),
            Ok(FileCall::SendFile {
                out: 4,
                input: 5,
                offset: 0,
                count: 5
            })
        );
    }

    #[test]
    fn tmp_paths_go_to_the_temporary_directory_and_writes_stay_there() {
        let tmp = Path::new("/run/x.tmp");
        assert_eq!(
            placed(Path::new("/tmp/f"), false, 0x41, tmp),
            Ok(PathBuf::from("/run/x.tmp/f"))
        );
        assert!(placed(Path::new("/etc/passwd"), false, 1, tmp).is_err());
        assert!(placed(Path::new("/tmp/../etc/x"), false, 1, tmp).is_err());
        assert_eq!(
            placed(Path::new("/etc/hostname"), false, 0, tmp),
            Ok(PathBuf::from("/etc/hostname"))
        );
        // A script that lives under /tmp (a CI clone there) opens its own
        // files where they are, and may not write there.
        let mut call = super::super::target::SocketCall::File(FileCall::Open {
            path: PathBuf::from("data.bin"),
            flags: 0,
            in_script_dir: false,
        });
        place_paths(&mut call, Path::new("/tmp/ci/scripts"));
        let super::super::target::SocketCall::File(FileCall::Open {
            path,
            in_script_dir,
            ..
        }) = &call
        else {
            panic!("still an open: {call:?}")
        };
        assert_eq!(
            placed(path, *in_script_dir, 0, tmp),
            Ok(PathBuf::from("/tmp/ci/scripts/data.bin"))
        );
        assert!(placed(path, *in_script_dir, 1, tmp).is_err());
    }
}
