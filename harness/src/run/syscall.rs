//! Resolving a script's system call into a [`SocketCall`], and checking a
//! call's return against the script's expectation.
//!
//! The accepted forms follow packetdrill's conventions: `...` stands for
//! "whatever the call needs" (addresses, buffers, lengths), option values
//! are written `[1]` or `{l_onoff=1, l_linger=0}`, and the expected result
//! is `= N` or `= -1 ERRNO`. Anything else is an unsupported construct,
//! reported with its location rather than guessed at.

use super::target::{pollbits, CallReturn, Fd, How, OptValue, SockOpt, SocketCall, O_NONBLOCK};
use crate::script::{Expr, SyscallSpec};

/// Resolves `spec` into a call; `Err` names what is unsupported.
pub fn resolve(spec: &SyscallSpec) -> Result<SocketCall, String> {
    let a = &spec.args;
    let name = spec.name.as_str();
    let fd = || fd_arg(name, a);
    if let Some(c) = super::epoll::resolve(spec) {
        return c.map(SocketCall::Epoll);
    }
    if let Some(c) = super::pointers::resolve(spec) {
        return c.map(SocketCall::Pointer);
    }
    if let Some(c) = super::files::resolve(spec) {
        return c.map(SocketCall::File);
    }
    Ok(match name {
        "socket" => socket_call(name, a)?,
        "bind" => {
            want_args(name, a, 3)?;
            SocketCall::Bind { fd: fd()? }
        }
        "listen" => {
            want_args(name, a, 2)?;
            SocketCall::Listen {
                fd: fd()?,
                backlog: int_arg(name, &a[1])?,
            }
        }
        "accept" | "accept4" => {
            want_args(name, a, if name == "accept" { 3 } else { 4 })?;
            SocketCall::Accept { fd: fd()? }
        }
        "connect" => {
            want_args(name, a, 3)?;
            SocketCall::Connect { fd: fd()? }
        }
        "write" | "send" | "sendto" => send_call(name, a)?,
        "read" | "recv" => {
            if a.len() != if name == "read" { 3 } else { 4 } {
                return Err(format!("{name}: wrong number of arguments"));
            }
            if let Some(flags) = a.get(3) {
                if !matches!(flags, Expr::Int(0) | Expr::Ellipsis) {
                    return Err(format!("{name}: flags `{flags}` are not supported"));
                }
            }
            SocketCall::Read {
                fd: fd()?,
                len: len_arg(name, &a[2])?,
            }
        }
        "close" => {
            want_args(name, a, 1)?;
            SocketCall::Close { fd: fd()? }
        }
        "shutdown" => {
            want_args(name, a, 2)?;
            let how = match &a[1] {
                Expr::Ident(s) if s == "SHUT_RD" => How::Read,
                Expr::Ident(s) if s == "SHUT_WR" => How::Write,
                Expr::Ident(s) if s == "SHUT_RDWR" => How::Both,
                Expr::Int(0) => How::Read,
                Expr::Int(1) => How::Write,
                Expr::Int(2) => How::Both,
                other => return Err(format!("shutdown: unknown mode `{other}`")),
            };
            SocketCall::Shutdown { fd: fd()?, how }
        }
        "setsockopt" => setsockopt_call(name, a)?,
        "getsockopt" => {
            want_args(name, a, 5)?;
            SocketCall::GetSockOpt {
                fd: fd()?,
                opt: sockopt(name, &a[1], &a[2])?,
            }
        }
        "fcntl" => match a.get(1) {
            Some(Expr::Ident(c)) if c == "F_GETFL" && a.len() == 2 => {
                SocketCall::GetFl { fd: fd()? }
            }
            Some(Expr::Ident(c)) if c == "F_SETFL" && a.len() == 3 => SocketCall::SetFl {
                fd: fd()?,
                flags: flag_value(name, &a[2])?,
            },
            _ => return Err("fcntl: only F_GETFL and F_SETFL are supported".into()),
        },
        "poll" => poll_call(name, a)?,
        "sendmsg" | "recvmsg" => super::msg::resolve(name, a, fd()?)?,
        other => return Err(format!("system call `{other}` is not supported")),
    })
}

/// `socket(AF_INET, SOCK_STREAM, IPPROTO_TCP)`, each argument also `...`.
fn socket_call(name: &str, a: &[Expr]) -> Result<SocketCall, String> {
    want_args(name, a, 3)?;
    match &a[1] {
        Expr::Ellipsis => {}
        Expr::Ident(s) if s == "SOCK_STREAM" => {}
        other => return Err(format!("socket: only SOCK_STREAM sockets, not `{other}`")),
    }
    match &a[2] {
        Expr::Ellipsis | Expr::Int(0) => {}
        Expr::Ident(s) if s == "IPPROTO_TCP" => {}
        other => return Err(format!("socket: only IPPROTO_TCP, not `{other}`")),
    }
    match &a[0] {
        Expr::Ellipsis => {}
        Expr::Ident(s) if s == "AF_INET" => {}
        other => return Err(format!("socket: only AF_INET (or ...), not `{other}`")),
    }
    Ok(SocketCall::Socket)
}

/// `setsockopt(fd, level, name, value, len)`: an `[int]` value, or the
/// `{l_onoff=.., l_linger=..}` struct of `SO_LINGER`.
fn setsockopt_call(name: &str, a: &[Expr]) -> Result<SocketCall, String> {
    want_args(name, a, 5)?;
    let opt = sockopt(name, &a[1], &a[2])?;
    let value = match (opt, &a[3]) {
        (SockOpt::Linger, Expr::Struct(fields)) => {
            let get = |k: &str| {
                fields
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| int_arg(name, v))
                    .transpose()
            };
            OptValue::Linger {
                onoff: get("l_onoff")?.unwrap_or(0) != 0,
                secs: get("l_linger")?.unwrap_or(0),
            }
        }
        (SockOpt::Linger, other) => {
            return Err(format!(
                "setsockopt SO_LINGER: expected {{l_onoff=.., l_linger=..}}, not `{other}`"
            ))
        }
        (SockOpt::Error, _) => return Err("setsockopt: SO_ERROR is read-only".into()),
        (_, v) => OptValue::Int(pointer_int(name, v)?),
    };
    Ok(SocketCall::SetSockOpt {
        fd: fd_arg(name, a)?,
        opt,
        value,
    })
}

/// `poll([{fd=.., events=..}, ...], nfds, timeout_ms)`.
fn poll_call(name: &str, a: &[Expr]) -> Result<SocketCall, String> {
    want_args(name, a, 3)?;
    let Expr::List(entries) = &a[0] else {
        return Err("poll: the first argument must be [{fd=.., events=..}, ...]".into());
    };
    let mut fds = Vec::new();
    for e in entries {
        let Expr::Struct(fields) = e else {
            return Err(format!(
                "poll: entry `{e}` is not a {{fd=.., events=..}} struct"
            ));
        };
        let field = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v);
        let fd = match field("fd") {
            Some(v) => int_arg(name, v)?,
            None => return Err("poll: entry without fd".into()),
        };
        let events = match field("events") {
            Some(v) => flag_value(name, v)?,
            None => 0,
        };
        fds.push((fd, events));
    }
    Ok(SocketCall::Poll {
        fds,
        timeout_ms: int_arg(name, &a[2])?,
    })
}

/// `write(fd, ..., len)`, `send(fd, ..., len, flags)` or
/// `sendto(fd, ..., len, flags, addr, addrlen)`: a plain write without flags.
fn send_call(name: &str, a: &[Expr]) -> Result<SocketCall, String> {
    let want = match name {
        "write" => 3,
        "send" => 4,
        _ => 6,
    };
    if a.len() != want {
        return Err(format!("{name}: wrong number of arguments"));
    }
    buffer_arg(name, &a[1])?;
    let fd = fd_arg(name, a)?;
    let len = len_arg(name, &a[2])?;
    let flags = match a.get(3) {
        None | Some(Expr::Ellipsis) => 0,
        Some(f) => msg_flags(name, f)?,
    };
    Ok(if flags == 0 && name != "sendto" {
        SocketCall::Write { fd, len }
    } else {
        SocketCall::Send {
            fd,
            len,
            flags,
            to_peer: name == "sendto" && !matches!(&a[4], Expr::Ident(n) if n == "NULL"),
        }
    })
}

/// The buffer argument: `...` (the harness's data). A `NULL` or other
/// pointer packetdrill would pass as is cannot be passed here.
fn buffer_arg(name: &str, e: &Expr) -> Result<(), String> {
    match e {
        Expr::Ellipsis => Ok(()),
        other => Err(format!(
            "{name}: buffer `{other}` (not `...`) is not supported"
        )),
    }
}

/// Linux `MSG_*` values (include/linux/socket.h).
pub(crate) const MSG_FLAGS: &[(&str, i64)] = &[
    ("MSG_OOB", 0x1),
    ("MSG_PEEK", 0x2),
    ("MSG_DONTROUTE", 0x4),
    ("MSG_CTRUNC", 0x8),
    ("MSG_TRUNC", 0x20),
    ("MSG_DONTWAIT", 0x40),
    ("MSG_EOR", 0x80),
    ("MSG_WAITALL", 0x100),
    ("MSG_ERRQUEUE", 0x2000),
    ("MSG_NOSIGNAL", 0x4000),
    ("MSG_MORE", 0x8000),
    ("MSG_FASTOPEN", 0x2000_0000),
    ("MSG_ZEROCOPY", 0x400_0000),
];

/// `MSG_A|MSG_B` or a number.
pub(super) fn msg_flags(name: &str, e: &Expr) -> Result<i64, String> {
    named_value(e, &|s| table(MSG_FLAGS, s), &|x| {
        format!("{name}: flags `{x}` are not supported")
    })
}

/// A number, a name `lookup` knows, or `A|B` of them; `bad` words the
/// error for anything else.
pub(super) fn named_value(
    e: &Expr,
    lookup: &dyn Fn(&str) -> Option<i64>,
    bad: &dyn Fn(&Expr) -> String,
) -> Result<i64, String> {
    match e {
        Expr::Int(i) => Ok(*i),
        Expr::Ident(s) => lookup(s).ok_or_else(|| bad(e)),
        Expr::BitOr(parts) => parts
            .iter()
            .try_fold(0i64, |acc, p| Ok(acc | named_value(p, lookup, bad)?)),
        other => Err(bad(other)),
    }
}

/// The value of `name` in a `(name, value)` table.
pub(super) fn table(t: &[(&str, i64)], name: &str) -> Option<i64> {
    t.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

fn want_args(name: &str, a: &[Expr], n: usize) -> Result<(), String> {
    if a.len() == n {
        Ok(())
    } else {
        Err(format!("{name}: expected {n} arguments, found {}", a.len()))
    }
}

fn fd_arg(name: &str, a: &[Expr]) -> Result<Fd, String> {
    match a.first() {
        Some(Expr::Int(i)) => Ok(*i),
        Some(other) => Err(format!(
            "{name}: the file descriptor must be a number, not `{other}`"
        )),
        None => Err(format!("{name}: missing file descriptor")),
    }
}

fn int_arg(name: &str, e: &Expr) -> Result<i64, String> {
    match e {
        Expr::Int(i) => Ok(*i),
        other => Err(format!("{name}: expected a number, found `{other}`")),
    }
}

fn len_arg(name: &str, e: &Expr) -> Result<usize, String> {
    let n = int_arg(name, e)?;
    usize::try_from(n)
        .ok()
        .filter(|n| *n <= 16 << 20)
        .ok_or_else(|| format!("{name}: length {n} out of range (0..=16 MiB)"))
}

/// `[v]` (packetdrill's pointer-to-int) or a bare number; `v` may be one
/// of the few constants option values are written with, or `A|B` of them.
fn pointer_int(name: &str, e: &Expr) -> Result<i64, String> {
    match e {
        Expr::List(items) if items.len() == 1 => option_value(name, &items[0]),
        Expr::Int(i) => Ok(*i),
        other => Err(format!("{name}: expected [N], found `{other}`")),
    }
}

/// An option value: a number, a constant, or `A|B` of them (the
/// `SOF_TIMESTAMPING_*` bits of include/uapi/linux/net_tstamp.h).
fn option_value(name: &str, e: &Expr) -> Result<i64, String> {
    const VALUES: &[(&str, i64)] = &[
        ("IP_PMTUDISC_DONT", 0),
        ("IP_PMTUDISC_WANT", 1),
        ("IP_PMTUDISC_DO", 2),
        ("IP_PMTUDISC_PROBE", 3),
        ("SOF_TIMESTAMPING_TX_HARDWARE", 1 << 0),
        ("SOF_TIMESTAMPING_TX_SOFTWARE", 1 << 1),
        ("SOF_TIMESTAMPING_RX_HARDWARE", 1 << 2),
        ("SOF_TIMESTAMPING_RX_SOFTWARE", 1 << 3),
        ("SOF_TIMESTAMPING_SOFTWARE", 1 << 4),
        ("SOF_TIMESTAMPING_SYS_HARDWARE", 1 << 5),
        ("SOF_TIMESTAMPING_RAW_HARDWARE", 1 << 6),
        ("SOF_TIMESTAMPING_OPT_ID", 1 << 7),
        ("SOF_TIMESTAMPING_TX_SCHED", 1 << 8),
        ("SOF_TIMESTAMPING_TX_ACK", 1 << 9),
        ("SOF_TIMESTAMPING_OPT_CMSG", 1 << 10),
        ("SOF_TIMESTAMPING_OPT_TSONLY", 1 << 11),
        ("SOF_TIMESTAMPING_OPT_STATS", 1 << 12),
        ("SOF_TIMESTAMPING_OPT_PKTINFO", 1 << 13),
        ("SOF_TIMESTAMPING_OPT_TX_SWHW", 1 << 14),
    ];
    named_value(e, &|s| table(VALUES, s), &|x| match x {
        Expr::Ident(s) => format!("{name}: value `{s}` is not supported"),
        other => format!("{name}: expected a number, found `{other}`"),
    })
}

fn sockopt(name: &str, level: &Expr, opt: &Expr) -> Result<SockOpt, String> {
    let (Expr::Ident(level), Expr::Ident(opt)) = (level, opt) else {
        return Err(format!(
            "{name}: level and option must be names like SOL_SOCKET, SO_RCVBUF"
        ));
    };
    let o = match opt.as_str() {
        "SO_REUSEADDR" => SockOpt::ReuseAddr,
        "SO_RCVBUF" => SockOpt::RcvBuf,
        "SO_SNDBUF" => SockOpt::SndBuf,
        "SO_LINGER" => SockOpt::Linger,
        "SO_ERROR" => SockOpt::Error,
        "TCP_NODELAY" => SockOpt::NoDelay,
        "TCP_MAXSEG" => SockOpt::MaxSeg,
        other => match KERNEL_OPTS.iter().find(|(n, _, _)| *n == other) {
            Some(&(c_name, lvl, opt)) => {
                if level_arg(level) != lvl {
                    return Err(format!(
                        "{name}: option {c_name} does not belong to level {level}"
                    ));
                }
                return Ok(SockOpt::Kernel {
                    level: lvl,
                    name: opt,
                    c_name,
                });
            }
            None => return Err(format!("{name}: option {other} is not supported")),
        },
    };
    let want_tcp = matches!(o, SockOpt::NoDelay | SockOpt::MaxSeg);
    let ok = match level.as_str() {
        "SOL_SOCKET" => !want_tcp,
        "IPPROTO_TCP" | "SOL_TCP" => want_tcp,
        _ => false,
    };
    if !ok {
        return Err(format!(
            "{name}: option {opt} does not belong to level {level}"
        ));
    }
    Ok(o)
}

/// Integer options of Linux taken by name: (name, level, number); numbers from include/uapi/linux/{tcp,in}.h and asm/socket.h.
const KERNEL_OPTS: &[(&str, i32, i32)] = &[
    ("TCP_CORK", 6, 3),
    ("TCP_KEEPIDLE", 6, 4),
    ("TCP_KEEPINTVL", 6, 5),
    ("TCP_KEEPCNT", 6, 6),
    ("TCP_SYNCNT", 6, 7),
    ("TCP_WINDOW_CLAMP", 6, 10),
    ("TCP_QUICKACK", 6, 12),
    ("TCP_USER_TIMEOUT", 6, 18),
    ("TCP_FASTOPEN", 6, 23),
    ("TCP_NOTSENT_LOWAT", 6, 25),
    ("TCP_FASTOPEN_CONNECT", 6, 30),
    ("TCP_INQ", 6, 36),
    ("SO_KEEPALIVE", 1, 9),
    ("SO_PRIORITY", 1, 12),
    ("SO_RCVLOWAT", 1, 18),
    ("SO_MARK", 1, 36),
    ("SO_ZEROCOPY", 1, 60),
    ("SO_TIMESTAMPING", 1, 37),
    ("IP_TOS", 0, 1),
    ("IP_MTU_DISCOVER", 0, 10),
    ("IP_RECVERR", 0, 11),
    ("IP_FREEBIND", 0, 15),
];

/// The level a script names, as a number (`-1` when unknown).
fn level_arg(level: &str) -> i32 {
    match level {
        "SOL_SOCKET" => 1,
        "SOL_TCP" | "IPPROTO_TCP" => 6,
        "SOL_IP" | "IPPROTO_IP" => 0,
        _ => -1,
    }
}

/// A flag expression: numbers, `O_*`/`POLL*` names, or `A|B`.
fn flag_value(name: &str, e: &Expr) -> Result<i64, String> {
    match e {
        Expr::Int(i) => Ok(*i),
        Expr::Ident(s) => match s.as_str() {
            "O_RDWR" => Ok(super::target::O_RDWR),
            "O_RDONLY" => Ok(0),
            "O_WRONLY" => Ok(1),
            "O_NONBLOCK" => Ok(O_NONBLOCK),
            s => pollbits::by_name(s).ok_or_else(|| format!("{name}: unknown flag `{s}`")),
        },
        Expr::BitOr(parts) => parts
            .iter()
            .try_fold(0i64, |acc, p| Ok(acc | flag_value(name, p)?)),
        other => Err(format!("{name}: expected flags, found `{other}`")),
    }
}

/// Compares a completed call with the script's expectation; `Err` is the
/// mismatch as (expected, actual).
pub fn check(spec: &SyscallSpec, got: &CallReturn) -> Result<(), (String, String)> {
    let expected_ret = match (&spec.errno, spec.result) {
        (Some(e), r) => format!("{r} {e}"),
        (None, r) => format!("{r}"),
    };
    let actual_ret = got.to_string();
    let ret_ok = match (&got.ret, &spec.errno) {
        // packetdrill: `= -1` without an errno accepts any errno.
        (Err(_), None) => spec.result == -1,
        (Ok(v), None) => *v == spec.result,
        (Err(e), Some(want)) => spec.result == -1 && e == want,
        _ => false,
    };
    if !ret_ok {
        return Err((expected_ret, actual_ret));
    }
    super::epoll::check(spec, got)?;
    super::files::check(spec, got)?;
    // Values the call writes back, compared when the script gives them.
    if spec.name == "getsockopt" {
        if let (Some(Expr::List(items)), Some(v)) = (spec.args.get(3), got.value) {
            if let [want] = items.as_slice() {
                if !value_matches(want, v) {
                    return Err((
                        format!("value [{want}]"),
                        format!("value [{}]", show_value(v)),
                    ));
                }
            }
        }
    }
    if spec.name == "poll" {
        if let Some(Expr::List(entries)) = spec.args.first() {
            for (i, e) in entries.iter().enumerate() {
                let Expr::Struct(fields) = e else { continue };
                let Some((_, want)) = fields.iter().find(|(n, _)| n == "revents") else {
                    continue;
                };
                let Ok(want_bits) = flag_value("poll", want) else {
                    continue;
                };
                let got_bits = got.revents.get(i).copied().unwrap_or(0);
                if want_bits != got_bits {
                    return Err((
                        format!("revents={} for entry {i}", show_poll(want_bits)),
                        format!("revents={}", show_poll(got_bits)),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn value_matches(want: &Expr, got: OptValue) -> bool {
    match (want, got) {
        (Expr::Ellipsis, _) => true,
        (Expr::Int(w), OptValue::Int(g)) => *w == g,
        (Expr::Int(0), OptValue::Errno(None)) => true,
        (Expr::Ident(w), OptValue::Errno(Some(g))) => w == g,
        (Expr::Struct(fields), OptValue::Linger { onoff, secs }) => {
            fields.iter().all(|(k, v)| match (k.as_str(), v) {
                ("l_onoff", Expr::Int(i)) => (*i != 0) == onoff,
                ("l_linger", Expr::Int(i)) => *i == secs,
                _ => true,
            })
        }
        _ => false,
    }
}

pub fn show_value(v: OptValue) -> String {
    match v {
        OptValue::Int(i) => i.to_string(),
        OptValue::Errno(None) => "0".into(),
        OptValue::Errno(Some(e)) => e.into(),
        OptValue::Linger { onoff, secs } => {
            format!("{{l_onoff={}, l_linger={secs}}}", i64::from(onoff))
        }
    }
}

/// `POLLIN|POLLOUT` style rendering of poll bits.
pub fn show_poll(bits: i64) -> String {
    const NAMES: [&str; 11] = [
        "POLLIN",
        "POLLPRI",
        "POLLOUT",
        "POLLERR",
        "POLLHUP",
        "POLLNVAL",
        "POLLRDNORM",
        "POLLRDBAND",
        "POLLWRNORM",
        "POLLWRBAND",
        "POLLRDHUP",
    ];
    let mut parts: Vec<String> = NAMES
        .iter()
        .filter_map(|n| {
            pollbits::by_name(n)
                .filter(|b| bits & b != 0)
                .map(|_| n.to_string())
        })
        .collect();
    let known = NAMES
        .iter()
        .filter_map(|n| pollbits::by_name(n))
        .fold(0, |a, b| a | b);
    if bits & !known != 0 {
        parts.push(format!("{:#x}", bits & !known));
    }
    if parts.is_empty() {
        "0".into()
    } else {
        parts.join("|")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(text: &str) -> Result<SocketCall, String> {
        let script = crate::script::parse("t.pkt", text).map_err(|e| e.to_string())?;
        match script.events.first().map(|e| &e.kind) {
            Some(crate::script::EventKind::Syscall(s)) => resolve(s),
            _ => Err("not a syscall".into()),
        }
    }

    #[test]
    fn resolves_common_calls() {
        assert_eq!(
            call("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3"),
            Ok(SocketCall::Socket)
        );
        assert_eq!(
            call("0 write(4, ..., 10) = 10"),
            Ok(SocketCall::Write { fd: 4, len: 10 })
        );
        assert_eq!(
            call("0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0"),
            Ok(SocketCall::SetFl {
                fd: 3,
                flags: 0x802
            })
        );
        assert_eq!(
            call("0 setsockopt(4, SOL_SOCKET, SO_LINGER, {l_onoff=1, l_linger=0}, 8) = 0"),
            Ok(SocketCall::SetSockOpt {
                fd: 4,
                opt: SockOpt::Linger,
                value: OptValue::Linger {
                    onoff: true,
                    secs: 0
                }
            })
        );
        assert!(call("0 sendmsg(4, ..., 0) = 1").is_err());
        assert!(call("0 setsockopt(3, SOL_SOCKET, TCP_NODELAY, [1], 4) = 0").is_err());
    }
}
