//! The exec line protocol, version 1: one JSON object per line on the
//! foreign process's stdin (a request per socket call) and stdout (one
//! answer per request). `docs/exec-protocol.md` is the reference; this
//! module encodes requests and validates answers, so a process that prints
//! anything else is caught with what it printed.
//!
//! The calls are the script's socket calls as the runner resolved them
//! ([`SocketCall`]), with the names, constants and errno names scripts use
//! (`SHUT_WR`, `SO_LINGER`, `EAGAIN`, …), and the flag values of Linux
//! (`O_NONBLOCK` = 0x800, `POLLIN` = 1, …).

use super::super::target::{CallReturn, How, OptValue, SockOpt, SocketCall};
use serde_json::{json, Map, Value};

/// The protocol version this harness speaks (the `v` of the hello line and
/// of `TCPCONFORM_PROTOCOL`).
pub const VERSION: u64 = 1;

/// Longest line accepted from the process.
pub const MAX_LINE: usize = 64 * 1024;

/// Every errno name of Linux (and the aliases scripts write), so an answer's
/// name can be checked and kept as the `&'static str` a [`CallReturn`]
/// holds. `EUNKNOWN` is what the `linux` target reports for an errno without
/// a name.
const ERRNO_NAMES: [&str; 134] = [
    "E2BIG",
    "EACCES",
    "EADDRINUSE",
    "EADDRNOTAVAIL",
    "EADV",
    "EAFNOSUPPORT",
    "EAGAIN",
    "EALREADY",
    "EBADE",
    "EBADF",
    "EBADFD",
    "EBADMSG",
    "EBADR",
    "EBADRQC",
    "EBADSLT",
    "EBFONT",
    "EBUSY",
    "ECANCELED",
    "ECHILD",
    "ECHRNG",
    "ECOMM",
    "ECONNABORTED",
    "ECONNREFUSED",
    "ECONNRESET",
    "EDEADLK",
    "EDEADLOCK",
    "EDESTADDRREQ",
    "EDOM",
    "EDOTDOT",
    "EDQUOT",
    "EEXIST",
    "EFAULT",
    "EFBIG",
    "EHOSTDOWN",
    "EHOSTUNREACH",
    "EIDRM",
    "EILSEQ",
    "EINPROGRESS",
    "EINTR",
    "EINVAL",
    "EIO",
    "EISCONN",
    "EISDIR",
    "EISNAM",
    "EKEYEXPIRED",
    "EKEYREJECTED",
    "EKEYREVOKED",
    "EL2HLT",
    "EL2NSYNC",
    "EL3HLT",
    "EL3RST",
    "ELIBACC",
    "ELIBBAD",
    "ELIBEXEC",
    "ELIBMAX",
    "ELIBSCN",
    "ELNRNG",
    "ELOOP",
    "EMEDIUMTYPE",
    "EMFILE",
    "EMLINK",
    "EMSGSIZE",
    "EMULTIHOP",
    "ENAMETOOLONG",
    "ENAVAIL",
    "ENETDOWN",
    "ENETRESET",
    "ENETUNREACH",
    "ENFILE",
    "ENOANO",
    "ENOBUFS",
    "ENOCSI",
    "ENODATA",
    "ENODEV",
    "ENOENT",
    "ENOEXEC",
    "ENOKEY",
    "ENOLCK",
    "ENOLINK",
    "ENOMEDIUM",
    "ENOMEM",
    "ENOMSG",
    "ENONET",
    "ENOPKG",
    "ENOPROTOOPT",
    "ENOSPC",
    "ENOSR",
    "ENOSTR",
    "ENOSYS",
    "ENOTBLK",
    "ENOTCONN",
    "ENOTDIR",
    "ENOTEMPTY",
    "ENOTNAM",
    "ENOTRECOVERABLE",
    "ENOTSOCK",
    "ENOTSUP",
    "ENOTTY",
    "ENOTUNIQ",
    "ENXIO",
    "EOPNOTSUPP",
    "EOVERFLOW",
    "EOWNERDEAD",
    "EPERM",
    "EPFNOSUPPORT",
    "EPIPE",
    "EPROTO",
    "EPROTONOSUPPORT",
    "EPROTOTYPE",
    "ERANGE",
    "EREMCHG",
    "EREMOTE",
    "EREMOTEIO",
    "ERESTART",
    "ERFKILL",
    "EROFS",
    "ESHUTDOWN",
    "ESOCKTNOSUPPORT",
    "ESPIPE",
    "ESRCH",
    "ESRMNT",
    "ESTALE",
    "ESTRPIPE",
    "ETIME",
    "ETIMEDOUT",
    "ETOOMANYREFS",
    "ETXTBSY",
    "EUCLEAN",
    "EUNATCH",
    "EUNKNOWN",
    "EUSERS",
    "EWOULDBLOCK",
    "EXDEV",
    "EXFULL",
];

/// The static copy of an errno name, if it is one.
pub fn errno_name(name: &str) -> Option<&'static str> {
    ERRNO_NAMES.iter().copied().find(|n| *n == name)
}

/// What the process answered to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The call returned.
    Done(CallReturn),
    /// The script's socket is blocking and the call cannot complete yet.
    WouldBlock,
    /// The process cannot make this call (or apply this sysctl): why.
    NotApplicable(String),
}

fn how_name(how: How) -> &'static str {
    match how {
        How::Read => "SHUT_RD",
        How::Write => "SHUT_WR",
        How::Both => "SHUT_RDWR",
    }
}

fn opt_value(v: OptValue) -> Value {
    match v {
        OptValue::Int(i) => json!(i),
        OptValue::Linger { onoff, secs } => json!({"l_onoff": i64::from(onoff), "l_linger": secs}),
        OptValue::Errno(e) => e.map_or(json!(0), |e| json!(e)),
    }
}

/// The request line (without the newline) for `call`.
pub fn request(id: u64, call: &SocketCall) -> String {
    let mut m = Map::new();
    m.insert("id".into(), json!(id));
    m.insert("call".into(), json!(call.name()));
    if let Some(fd) = call.fd() {
        m.insert("fd".into(), json!(fd));
    }
    let mut put = |k: &str, v: Value| {
        m.insert(k.into(), v);
    };
    match call {
        SocketCall::Listen { backlog, .. } => put("backlog", json!(backlog)),
        SocketCall::Write { len, .. } | SocketCall::Read { len, .. } => put("len", json!(len)),
        SocketCall::Shutdown { how, .. } => put("how", json!(how_name(*how))),
        SocketCall::SetSockOpt { opt, value, .. } => {
            put("opt", json!(opt.name()));
            put("value", opt_value(*value));
        }
        SocketCall::GetSockOpt { opt, .. } => put("opt", json!(opt.name())),
        // Never sent: `ExecTarget::call` answers them not applicable.
        SocketCall::Send { len, flags, .. } => {
            put("len", json!(len));
            put("flags", json!(flags));
        }
        SocketCall::TcpInfo { .. }
        | SocketCall::Msg(_)
        | SocketCall::Epoll(_)
        | SocketCall::Pointer(_)
        | SocketCall::File(_) => {}
        SocketCall::GetFl { .. } => put("cmd", json!("F_GETFL")),
        SocketCall::SetFl { flags, .. } => {
            put("cmd", json!("F_SETFL"));
            put("flags", json!(flags));
        }
        SocketCall::Poll { fds, timeout_ms } => {
            let fds: Vec<Value> = fds
                .iter()
                .map(|(fd, ev)| json!({"fd": fd, "events": ev}))
                .collect();
            put("fds", Value::Array(fds));
            put("timeout_ms", json!(timeout_ms));
        }
        SocketCall::Socket
        | SocketCall::Bind { .. }
        | SocketCall::Accept { .. }
        | SocketCall::Connect { .. }
        | SocketCall::Close { .. } => {}
    }
    Value::Object(m).to_string()
}

/// The request line for a backtick `sysctl name=value`.
pub fn sysctl_request(id: u64, name: &str, value: &str) -> String {
    json!({"id": id, "call": "sysctl", "name": name, "value": value}).to_string()
}

/// A line shown in an error: at most 200 characters, escaped.
pub fn shown(line: &str) -> String {
    let mut s: String = line.chars().take(200).collect();
    if s.len() < line.len() {
        s.push('…');
    }
    format!("{s:?}")
}

fn object(line: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(format!("printed {} (not a JSON object)", shown(line))),
        Err(e) => Err(format!("printed {} (not JSON: {e})", shown(line))),
    }
}

/// Checks the process's first line, `{"v": 1, "hello": "..."}`; returns the
/// text after `hello` (what the implementation calls itself).
pub fn parse_hello(line: &str) -> Result<String, String> {
    let m = object(line).map_err(|e| format!("{e} instead of the hello line"))?;
    let Some(hello) = m.get("hello").and_then(Value::as_str) else {
        return Err(format!(
            "printed {} instead of the hello line {{\"v\": {VERSION}, \"hello\": \"...\"}}",
            shown(line)
        ));
    };
    match m.get("v").and_then(Value::as_u64) {
        Some(VERSION) => Ok(hello.to_string()),
        Some(v) => Err(format!(
            "speaks protocol version {v}; this harness speaks version {VERSION}"
        )),
        None => Err(format!(
            "printed a hello line without a protocol version \"v\": {}",
            shown(line)
        )),
    }
}

/// Validates the answer `line` to request `id`; `call` is the socket call
/// asked (`None` for a sysctl), whose result fields are checked.
pub fn parse_answer(line: &str, id: u64, call: Option<&SocketCall>) -> Result<Answer, String> {
    let m = object(line)?;
    let bad = |why: &str| Err(format!("answered {}: {why}", shown(line)));
    match m.get("id").and_then(Value::as_u64) {
        Some(got) if got == id => {}
        Some(got) => return bad(&format!("id {got}, but the request was id {id}")),
        None => return bad("no numeric \"id\""),
    }
    if let Some(why) = m.get("not_applicable") {
        return match why.as_str() {
            Some(w) if !w.trim().is_empty() => Ok(Answer::NotApplicable(w.to_string())),
            _ => bad("\"not_applicable\" must be a non-empty reason"),
        };
    }
    if m.get("would_block") == Some(&Value::Bool(true)) {
        return Ok(Answer::WouldBlock);
    }
    let Some(ret) = m.get("ret") else {
        return bad("none of \"ret\", \"would_block\": true, \"not_applicable\"");
    };
    let Some(ret) = ret.as_i64() else {
        return bad("\"ret\" is not an integer");
    };
    let mut r = match (ret, m.get("errno")) {
        (-1, Some(Value::String(e))) => match errno_name(e) {
            Some(e) => CallReturn::err(e),
            None => return bad(&format!("unknown errno name `{e}`")),
        },
        (-1, _) => return bad("\"ret\": -1 needs an \"errno\" name"),
        (r, None) if r >= 0 => CallReturn::ok(r),
        (r, Some(_)) if r >= 0 => return bad("\"errno\" goes with \"ret\": -1 only"),
        _ => return bad("\"ret\" must be -1 or not negative"),
    };
    if let Some(note) = m.get("note").and_then(Value::as_str) {
        r.note = Some(note.to_string());
    }
    if r.ret.is_ok() {
        fill_results(&m, call, &mut r).map_err(|why| format!("answered {}: {why}", shown(line)))?;
    }
    Ok(Answer::Done(r))
}

/// Reads what `getsockopt` and `poll` write back.
fn fill_results(
    m: &Map<String, Value>,
    call: Option<&SocketCall>,
    r: &mut CallReturn,
) -> Result<(), String> {
    match call {
        Some(SocketCall::GetSockOpt { opt, .. }) => {
            let v = m.get("value").ok_or("getsockopt needs a \"value\"")?;
            r.value = Some(read_value(*opt, v)?);
        }
        Some(SocketCall::Poll { fds, .. }) => {
            let revents = m
                .get("revents")
                .and_then(Value::as_array)
                .ok_or("poll needs \"revents\", one integer per entry")?;
            if revents.len() != fds.len() {
                return Err(format!(
                    "poll asked about {} entries, \"revents\" has {}",
                    fds.len(),
                    revents.len()
                ));
            }
            r.revents = revents
                .iter()
                .map(|v| v.as_i64().ok_or("\"revents\" entries must be integers"))
                .collect::<Result<_, _>>()?;
        }
        _ => {}
    }
    Ok(())
}

fn read_value(opt: SockOpt, v: &Value) -> Result<OptValue, String> {
    match opt {
        SockOpt::Linger => {
            let field = |k: &str| v.get(k).and_then(Value::as_i64);
            match (field("l_onoff"), field("l_linger")) {
                (Some(on), Some(secs)) => Ok(OptValue::Linger {
                    onoff: on != 0,
                    secs,
                }),
                _ => Err("SO_LINGER's value is {\"l_onoff\": N, \"l_linger\": N}".into()),
            }
        }
        SockOpt::Error => match v {
            Value::Number(n) if n.as_i64() == Some(0) => Ok(OptValue::Errno(None)),
            Value::String(e) => errno_name(e)
                .map(|e| OptValue::Errno(Some(e)))
                .ok_or_else(|| format!("unknown errno name `{e}` for SO_ERROR")),
            _ => Err("SO_ERROR's value is 0 or an errno name".into()),
        },
        _ => v
            .as_i64()
            .map(OptValue::Int)
            .ok_or_else(|| format!("{}'s value must be an integer", opt.name())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_the_scripts_names() {
        let r = request(
            4,
            &SocketCall::Shutdown {
                fd: 4,
                how: How::Write,
            },
        );
        assert_eq!(r, r#"{"call":"shutdown","fd":4,"how":"SHUT_WR","id":4}"#);
        let r = request(
            5,
            &SocketCall::SetSockOpt {
                fd: 3,
                opt: SockOpt::Linger,
                value: OptValue::Linger {
                    onoff: true,
                    secs: 0,
                },
            },
        );
        let v: Value = serde_json::from_str(&r).unwrap();
        assert_eq!(v["opt"], "SO_LINGER");
        assert_eq!(v["value"]["l_onoff"], 1);
        let r = request(
            6,
            &SocketCall::Poll {
                fds: vec![(3, 1)],
                timeout_ms: 100,
            },
        );
        let v: Value = serde_json::from_str(&r).unwrap();
        assert_eq!(v["fds"][0]["events"], 1);
        assert!(v.get("fd").is_none());
    }

    #[test]
    fn answers_are_validated() {
        let read = SocketCall::Read { fd: 4, len: 10 };
        assert_eq!(
            parse_answer(r#"{"id":3,"ret":10}"#, 3, Some(&read)),
            Ok(Answer::Done(CallReturn::ok(10)))
        );
        assert_eq!(
            parse_answer(r#"{"id":3,"ret":-1,"errno":"ECONNRESET"}"#, 3, Some(&read)),
            Ok(Answer::Done(CallReturn::err("ECONNRESET")))
        );
        assert_eq!(
            parse_answer(r#"{"id":3,"would_block":true}"#, 3, Some(&read)),
            Ok(Answer::WouldBlock)
        );
        assert_eq!(
            parse_answer(r#"{"id":3,"not_applicable":"no such API"}"#, 3, Some(&read)),
            Ok(Answer::NotApplicable("no such API".into()))
        );
        for bad in [
            "hello",
            "[1]",
            r#"{"id":2,"ret":0}"#,
            r#"{"ret":0}"#,
            r#"{"id":3,"ret":-1}"#,
            r#"{"id":3,"ret":-1,"errno":"EFOO"}"#,
            r#"{"id":3,"ret":-2}"#,
            r#"{"id":3,"ret":1,"errno":"EIO"}"#,
            r#"{"id":3}"#,
            r#"{"id":3,"not_applicable":""}"#,
        ] {
            let e = parse_answer(bad, 3, Some(&read)).unwrap_err();
            assert!(
                e.contains("printed") || e.contains("answered"),
                "{bad}: {e}"
            );
        }
        let poll = SocketCall::Poll {
            fds: vec![(3, 1), (4, 4)],
            timeout_ms: 0,
        };
        let Ok(Answer::Done(r)) =
            parse_answer(r#"{"id":1,"ret":1,"revents":[1,0]}"#, 1, Some(&poll))
        else {
            panic!("a valid poll answer")
        };
        assert_eq!(r.revents, vec![1, 0]);
        assert!(parse_answer(r#"{"id":1,"ret":1,"revents":[1]}"#, 1, Some(&poll)).is_err());
        let get = SocketCall::GetSockOpt {
            fd: 3,
            opt: SockOpt::Error,
        };
        let Ok(Answer::Done(r)) =
            parse_answer(r#"{"id":1,"ret":0,"value":"ECONNREFUSED"}"#, 1, Some(&get))
        else {
            panic!("a valid getsockopt answer")
        };
        assert_eq!(r.value, Some(OptValue::Errno(Some("ECONNREFUSED"))));
    }

    #[test]
    fn the_hello_line_carries_the_version() {
        assert_eq!(parse_hello(r#"{"v":1,"hello":"toy"}"#), Ok("toy".into()));
        assert!(parse_hello(r#"{"v":2,"hello":"toy"}"#)
            .unwrap_err()
            .contains("version 2"));
        assert!(parse_hello(r#"{"hello":"toy"}"#).is_err());
        assert!(parse_hello("Segmentation fault")
            .unwrap_err()
            .contains("not JSON"));
    }
}
