//! `sendmsg`/`recvmsg` with packetdrill's struct syntax: the typed
//! [`MsgCall`] a script's `struct msghdr` resolves to, and the comparison of
//! what a kernel returned with what the script expects.
//!
//! The script writes `{msg_name(...)=..., msg_iov(N)=[{..., len}, ...],
//! msg_flags=F, msg_control=[{cmsg_level=.., cmsg_type=.., cmsg_data=..}]}`.
//! As packetdrill does, `recvmsg` gets a control buffer exactly as large as
//! the control messages the script lists, the call's `msg_flags` are
//! preset to the script's (the kernel writes them back only on success),
//! and then `msg_flags` must be equal and the control messages equal one by
//! one: level, type and length always; the data by kind — the fields of a
//! `sock_extended_err` (`IP_RECVERR`: zerocopy completions, timestamps;
//! not its offender address), the first `scm_timestamping` time within the
//! tolerance (a zero time is not compared), any other payload octet by
//! octet (`TCP_CM_INQ`'s int). Only kernels make these calls: elsewhere a
//! plain `sendmsg` is a write and a plain `recvmsg` a read
//! ([`MsgCall::portable`]), anything else is not applicable.

use super::target::{Fd, SocketCall};
use crate::script::Expr;

/// `MSG_FASTOPEN`: data on the SYN (RFC 7413), to the address given.
pub const MSG_FASTOPEN: i64 = 0x2000_0000;
/// `MSG_ERRQUEUE`: read the socket's error queue (never blocks).
pub const MSG_ERRQUEUE: i64 = 0x2000;
/// `MSG_DONTWAIT`
pub const MSG_DONTWAIT: i64 = 0x40;

/// `SOL_IP`, `SOL_SOCKET`, `SOL_IPV6` as Linux numbers them.
const SOL_IP: i32 = 0;
const SOL_SOCKET: i32 = 1;
const SOL_IPV6: i32 = 41;
/// `IP_RECVERR`, `IPV6_RECVERR`, `SCM_TIMESTAMPING`.
const IP_RECVERR: i32 = 11;
const IPV6_RECVERR: i32 = 25;
const SCM_TIMESTAMPING: i32 = 37;
/// `sizeof(struct cmsghdr)` on a 64-bit Linux: `cmsg_len`, level, type.
pub const CMSG_HDR: usize = 16;

/// The named values a control message may be written with (Linux's
/// include/uapi/linux/{errqueue,net_tstamp,in,in6,tcp}.h).
const SYMBOLS: &[(&str, i64)] = &[
    ("SOL_IP", 0),
    ("IPPROTO_IP", 0),
    ("SOL_SOCKET", 1),
    ("SOL_TCP", 6),
    ("IPPROTO_TCP", 6),
    ("SOL_IPV6", 41),
    ("IPPROTO_IPV6", 41),
    ("IP_RECVERR", 11),
    ("IPV6_RECVERR", 25),
    ("TCP_CM_INQ", 36),
    ("SCM_TIMESTAMPING", 37),
    ("SCM_TIMESTAMPING_OPT_STATS", 54),
    ("SO_EE_ORIGIN_NONE", 0),
    ("SO_EE_ORIGIN_LOCAL", 1),
    ("SO_EE_ORIGIN_ICMP", 2),
    ("SO_EE_ORIGIN_ICMP6", 3),
    ("SO_EE_ORIGIN_TXSTATUS", 4),
    ("SO_EE_ORIGIN_TIMESTAMPING", 4),
    ("SO_EE_ORIGIN_ZEROCOPY", 5),
    ("SO_EE_ORIGIN_TXTIME", 6),
    ("SO_EE_CODE_ZEROCOPY_COPIED", 1),
    ("SCM_TSTAMP_SND", 0),
    ("SCM_TSTAMP_SCHED", 1),
    ("SCM_TSTAMP_ACK", 2),
    ("ENOMSG", 42),
];

/// A `sendmsg` or `recvmsg`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MsgCall {
    /// `sendmsg(fd, {..., msg_iov(N)=[...], msg_flags=0}, flags)`: the
    /// iovec's lengths as written (zero-length entries kept).
    Send { fd: Fd, iov: Vec<usize>, flags: i64 },
    /// `recvmsg(fd, {...}, flags)`: the iovec's lengths, the `msg_flags`
    /// and control messages the script expects back.
    Recv {
        fd: Fd,
        iov: Vec<usize>,
        flags: i64,
        msg_flags: i64,
        control: Vec<CmsgSpec>,
    },
}

impl MsgCall {
    /// The call's name as scripts write it.
    pub fn name(&self) -> &'static str {
        match self {
            MsgCall::Send { .. } => "sendmsg",
            MsgCall::Recv { .. } => "recvmsg",
        }
    }

    /// The socket, to rewrite.
    pub fn fd_mut(&mut self) -> &mut Fd {
        match self {
            MsgCall::Send { fd, .. } | MsgCall::Recv { fd, .. } => fd,
        }
    }

    /// The same call on a target without a kernel's socket API: a
    /// `sendmsg` without flags is a write of the iovec's total, a
    /// `recvmsg` without flags, control messages or `msg_flags` a read
    /// (RFC 9293 3.10.2–3: SEND and RECEIVE see only the octets).
    pub fn portable(&self) -> Option<SocketCall> {
        match self {
            MsgCall::Send { fd, iov, flags: 0 } => Some(SocketCall::Write {
                fd: *fd,
                len: iov.iter().sum(),
            }),
            MsgCall::Recv {
                fd,
                iov,
                flags: 0,
                msg_flags: 0,
                control,
            } if control.is_empty() => Some(SocketCall::Read {
                fd: *fd,
                len: iov.iter().sum(),
            }),
            _ => None,
        }
    }

    /// Why only a kernel can make it (see [`SocketCall::kernel_only`]).
    pub fn kernel_only(&self) -> Option<String> {
        if self.portable().is_some() {
            return None;
        }
        Some(match self {
            MsgCall::Send { flags, .. } => format!("no sendmsg with flags {}", show_flags(*flags)),
            MsgCall::Recv { .. } => {
                "no recvmsg with flags, msg_flags or control messages (error queue, cmsgs)".into()
            }
        })
    }

    /// The size of the control buffer packetdrill passes: the space of
    /// each expected control message.
    pub fn control_len(&self) -> usize {
        match self {
            MsgCall::Recv { control, .. } => control.iter().map(CmsgSpec::space).sum(),
            MsgCall::Send { .. } => 0,
        }
    }
}

/// One control message the script lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmsgSpec {
    pub level: i32,
    pub kind: i32,
    pub data: CmsgData,
}

/// What `cmsg_data=` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmsgData {
    /// An int (`TCP_CM_INQ`'s bytes in the receive queue).
    Int(i32),
    /// `{scm_sec=S, scm_nsec=N}`: the first of `scm_timestamping`'s three
    /// times, script time (0 = not compared).
    Timestamping { sec: i64, nsec: i64 },
    /// `{ee_errno=.., ee_origin=.., ee_type=.., ee_code=.., ee_info=..,
    /// ee_data=..}`: a `struct sock_extended_err`.
    ExtErr(ExtErr),
}

/// The compared fields of `struct sock_extended_err`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtErr {
    pub errno: u32,
    pub origin: u8,
    pub kind: u8,
    pub code: u8,
    pub info: u32,
    pub data: u32,
}

impl ExtErr {
    /// The fields from the struct's 16 octets (native order).
    fn from_bytes(b: &[u8]) -> Option<ExtErr> {
        let u32_at = |i: usize| Some(u32::from_ne_bytes(b.get(i..i + 4)?.try_into().ok()?));
        Some(ExtErr {
            errno: u32_at(0)?,
            origin: *b.get(4)?,
            kind: *b.get(5)?,
            code: *b.get(6)?,
            info: u32_at(8)?,
            data: u32_at(12)?,
        })
    }

    fn fields(&self) -> [(&'static str, u32); 6] {
        [
            ("ee_errno", self.errno),
            ("ee_origin", u32::from(self.origin)),
            ("ee_type", u32::from(self.kind)),
            ("ee_code", u32::from(self.code)),
            ("ee_info", self.info),
            ("ee_data", self.data),
        ]
    }
}

impl CmsgSpec {
    /// The payload length the kernel gives this kind of message: an int; three
    /// timespecs; the extended error followed by the offender's address
    /// (`sockaddr_in` for `SOL_IP`, else `sockaddr_in6`).
    pub fn data_len(&self) -> usize {
        match self.data {
            CmsgData::Int(_) => 4,
            CmsgData::Timestamping { .. } => 48,
            CmsgData::ExtErr(_) if self.level == SOL_IP => 16 + 16,
            CmsgData::ExtErr(_) => 16 + 28,
        }
    }

    /// `CMSG_LEN`.
    pub fn cmsg_len(&self) -> usize {
        CMSG_HDR + self.data_len()
    }

    /// `CMSG_SPACE`.
    pub fn space(&self) -> usize {
        CMSG_HDR + align8(self.data_len())
    }
}

pub fn align8(n: usize) -> usize {
    (n + 7) & !7
}

/// What a kernel's `recvmsg` returned besides the count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgReturn {
    /// `msg_flags` after the call.
    pub flags: i64,
    /// The control messages, in order.
    pub cmsgs: Vec<CmsgReturn>,
    /// Wall-clock time (µs since the epoch) of script time zero, for
    /// `SCM_TIMESTAMPING` (set by the target, which owns the clock).
    pub origin_realtime_us: Option<i64>,
}

/// One control message as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmsgReturn {
    pub level: i32,
    pub kind: i32,
    /// `cmsg_len`.
    pub len: usize,
    /// The payload (`cmsg_len` minus the header).
    pub data: Vec<u8>,
}

/// Splits a control buffer the kernel filled (`msg_controllen` octets)
/// into messages, stopping where `CMSG_NXTHDR` would: at a header with a
/// zero or overlong length.
pub fn parse_control(buf: &[u8]) -> Vec<CmsgReturn> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + CMSG_HDR <= buf.len() {
        let h = &buf[off..off + CMSG_HDR];
        let len = usize::from_ne_bytes(h[0..8].try_into().unwrap_or([0; 8]));
        if len < CMSG_HDR || off + len > buf.len() {
            break;
        }
        out.push(CmsgReturn {
            level: i32::from_ne_bytes(h[8..12].try_into().unwrap_or([0; 4])),
            kind: i32::from_ne_bytes(h[12..16].try_into().unwrap_or([0; 4])),
            len,
            data: buf[off + CMSG_HDR..off + len].to_vec(),
        });
        off += align8(len);
    }
    out
}

// ----- resolving the script's syntax -------------------------------------

/// `sendmsg(fd, msghdr, flags)` or `recvmsg(fd, msghdr, flags)`.
pub fn resolve(name: &str, a: &[Expr], fd: Fd) -> Result<SocketCall, String> {
    if a.len() != 3 {
        return Err(format!("{name}: expected 3 arguments, found {}", a.len()));
    }
    let h = msghdr(name, &a[1])?;
    let flags = super::syscall::msg_flags(name, &a[2])?;
    Ok(SocketCall::Msg(if name == "sendmsg" {
        if h.flags != 0 {
            return Err("sendmsg ignores msg_flags field in msghdr".into());
        }
        if !h.control.is_empty() {
            return Err("sendmsg: control messages are not supported".into());
        }
        MsgCall::Send {
            fd,
            iov: h.iov,
            flags,
        }
    } else {
        MsgCall::Recv {
            fd,
            iov: h.iov,
            flags,
            msg_flags: h.flags,
            control: h.control,
        }
    }))
}

struct Hdr {
    iov: Vec<usize>,
    flags: i64,
    control: Vec<CmsgSpec>,
}

/// The field's name without packetdrill's length suffix (`msg_iov(3)`).
fn field_base(key: &str) -> &str {
    key.split('(').next().unwrap_or(key)
}

fn msghdr(name: &str, e: &Expr) -> Result<Hdr, String> {
    let Expr::Struct(fields) = e else {
        return Err(format!(
            "{name}: the message must be {{msg_name(...)=..., msg_iov(N)=[...], msg_flags=..}}, not `{e}`"
        ));
    };
    let mut h = Hdr {
        iov: Vec::new(),
        flags: 0,
        control: Vec::new(),
    };
    let mut iovlen = None;
    for (key, v) in fields {
        match field_base(key) {
            "msg_name" | "msg_namelen" => {}
            "msg_iov" => {
                h.iov = iovec(name, v)?;
                iovlen = key
                    .strip_prefix("msg_iov(")
                    .and_then(|s| s.strip_suffix(')'))
                    .map(|n| n.parse::<usize>().map_err(|_| format!("{name}: `{key}`")))
                    .transpose()?;
            }
            "msg_flags" => h.flags = super::syscall::msg_flags(name, v)?,
            "msg_control" => h.control = control(name, v)?,
            other => return Err(format!("{name}: unknown msghdr field `{other}`")),
        }
    }
    if let Some(n) = iovlen {
        if n != h.iov.len() {
            return Err(format!(
                "{name}: msg_iovlen {n} does not match {}-element iovec array",
                h.iov.len()
            ));
        }
    }
    Ok(h)
}

/// `[{..., len}, ...]` (or `{iov_base=..., iov_len=len}`): the lengths.
fn iovec(name: &str, e: &Expr) -> Result<Vec<usize>, String> {
    let Expr::List(items) = e else {
        return Err(format!("{name}: msg_iov must be a list, not `{e}`"));
    };
    items
        .iter()
        .map(|it| {
            let len = match it {
                Expr::Struct(f) => match f.as_slice() {
                    [(_, Expr::Ellipsis), (k, Expr::Int(n))] if k.is_empty() || k == "iov_len" => {
                        *n
                    }
                    _ => return Err(format!("{name}: iovec `{it}` is not {{..., len}}")),
                },
                other => return Err(format!("{name}: iovec `{other}` is not {{..., len}}")),
            };
            usize::try_from(len)
                .ok()
                .filter(|n| *n <= 16 << 20)
                .ok_or_else(|| format!("{name}: iovec length {len} out of range (0..=16 MiB)"))
        })
        .collect()
}

fn control(name: &str, e: &Expr) -> Result<Vec<CmsgSpec>, String> {
    let Expr::List(items) = e else {
        return Err(format!("{name}: msg_control must be a list, not `{e}`"));
    };
    items.iter().map(|it| cmsg(name, it)).collect()
}

fn cmsg(name: &str, e: &Expr) -> Result<CmsgSpec, String> {
    let fields = struct_fields(name, e, &["cmsg_level", "cmsg_type", "cmsg_data"])?;
    let level = int32(name, fields[0])?;
    let kind = int32(name, fields[1])?;
    let data = match fields[2] {
        Expr::Struct(f) if f.first().is_some_and(|(k, _)| k == "scm_sec") => {
            let v = struct_fields(name, fields[2], &["scm_sec", "scm_nsec"])?;
            CmsgData::Timestamping {
                sec: value(name, v[0])?,
                nsec: value(name, v[1])?,
            }
        }
        Expr::Struct(_) => {
            let v = struct_fields(
                name,
                fields[2],
                &[
                    "ee_errno",
                    "ee_origin",
                    "ee_type",
                    "ee_code",
                    "ee_info",
                    "ee_data",
                ],
            )?;
            // packetdrill reads errno, info and data as 32-bit, the rest as 8-bit.
            let byte = |x: &Expr| value(name, x).map(|n| n as u8);
            let word = |x: &Expr| value(name, x).map(|n| n as u32);
            CmsgData::ExtErr(ExtErr {
                errno: word(v[0])?,
                origin: byte(v[1])?,
                kind: byte(v[2])?,
                code: byte(v[3])?,
                info: word(v[4])?,
                data: word(v[5])?,
            })
        }
        Expr::List(_) => {
            return Err(format!(
                "{name}: SCM_TIMESTAMPING_OPT_STATS lists are not supported"
            ))
        }
        other => CmsgData::Int(int32(name, other)?),
    };
    Ok(CmsgSpec { level, kind, data })
}

/// The values of `keys`, in that order, from a `{k=v, ...}` struct that
/// has exactly those fields.
fn struct_fields<'e>(name: &str, e: &'e Expr, keys: &[&str]) -> Result<Vec<&'e Expr>, String> {
    let Expr::Struct(f) = e else {
        return Err(format!("{name}: expected {{{}=..}}, not `{e}`", keys[0]));
    };
    if f.len() != keys.len() || f.iter().zip(keys).any(|((k, _), want)| k != want) {
        return Err(format!(
            "{name}: expected the fields {} in `{e}`",
            keys.join(", ")
        ));
    }
    Ok(f.iter().map(|(_, v)| v).collect())
}

/// A number, a named constant (or errno), or `A|B`.
fn value(name: &str, e: &Expr) -> Result<i64, String> {
    use super::syscall::{named_value, table};
    named_value(
        e,
        &|s| table(SYMBOLS, s).or_else(|| errno_value(s)),
        &|x| match x {
            Expr::Ident(s) => format!("{name}: unknown symbol `{s}`"),
            other => format!("{name}: expected a number, found `{other}`"),
        },
    )
}

fn int32(name: &str, e: &Expr) -> Result<i32, String> {
    let v = value(name, e)?;
    i32::try_from(v).map_err(|_| format!("{name}: {v} does not fit a 32-bit int"))
}

/// The number of an errno name the harness knows.
fn errno_value(s: &str) -> Option<i64> {
    (1..200)
        .find(|e| super::linux::errno_name(*e) == Some(s))
        .map(i64::from)
}

mod check;
pub use check::{check, set_origin, show_flags, show_return};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::target::CallReturn;

    /// The call the first event of `text` resolves to.
    fn call(text: &str) -> Result<SocketCall, String> {
        let script = crate::script::parse("t.pkt", text).map_err(|e| e.to_string())?;
        match script.events.first().map(|e| &e.kind) {
            Some(crate::script::EventKind::Syscall(s)) => super::super::syscall::resolve(s),
            _ => Err("not a syscall".into()),
        }
    }

    const ZC: &str = "0 recvmsg(4, {msg_name(...)=..., msg_iov(1)=[{...,0}], \
        msg_flags=MSG_ERRQUEUE, msg_control=[{cmsg_level=SOL_IP, cmsg_type=IP_RECVERR, \
        cmsg_data={ee_errno=0, ee_origin=SO_EE_ORIGIN_ZEROCOPY, ee_type=0, \
        ee_code=SO_EE_CODE_ZEROCOPY_COPIED, ee_info=1, ee_data=3}}]}, MSG_ERRQUEUE) = 0";

    const TS: &str = "0 recvmsg(3, {msg_name(...)=..., msg_iov(1)=[{...,0}], \
        msg_flags=MSG_ERRQUEUE|MSG_TRUNC, msg_control=[{cmsg_level=SOL_SOCKET, \
        cmsg_type=SCM_TIMESTAMPING, cmsg_data={scm_sec=0,scm_nsec=20000000}}, \
        {cmsg_level=SOL_IP, cmsg_type=IP_RECVERR, cmsg_data={ee_errno=ENOMSG, \
        ee_origin=SO_EE_ORIGIN_TIMESTAMPING, ee_type=0, ee_code=0, \
        ee_info=SCM_TSTAMP_ACK, ee_data=10999}}]}, MSG_ERRQUEUE) = 0";

    #[test]
    fn sendmsg_struct_syntax_resolves_to_iovec_lengths_and_flags() {
        assert_eq!(
            call(
                "0 sendmsg(4, {msg_name(...)=..., msg_iov(3)=[{..., 100}, {..., 0}, {...,195}], \
                 msg_flags=0}, MSG_MORE|MSG_ZEROCOPY) = 295"
            ),
            Ok(SocketCall::Msg(MsgCall::Send {
                fd: 4,
                iov: vec![100, 0, 195],
                flags: 0x8000 | 0x400_0000,
            }))
        );
        let e =
            call("0 sendmsg(4, {msg_name(...)=..., msg_iov(2)=[{..., 1}], msg_flags=0}, 0) = 1");
        assert!(e.unwrap_err().contains("msg_iovlen 2 does not match 1"));
        let e = call(
            "0 sendmsg(4, {msg_name(...)=..., msg_iov(1)=[{..., 1}], msg_flags=MSG_EOR}, 0) = 1",
        );
        assert!(e.unwrap_err().contains("ignores msg_flags"));
        let e = call(
            "0 sendmsg(4, {msg_name(...)=..., msg_iov(1)=[{..., 1}], msg_flags=0}, MSG_BOGUS) = 1",
        );
        assert!(e.unwrap_err().ends_with("are not supported"));
        let e = call("0 sendmsg(4, {msg_iov(1)=[{..., -1}], msg_flags=0}, 0) = 1");
        assert!(e.unwrap_err().contains("out of range"));
    }

    #[test]
    fn recvmsg_struct_syntax_resolves_nested_control_messages() {
        let Ok(SocketCall::Msg(m)) = call(TS) else {
            panic!("{:?}", call(TS))
        };
        let MsgCall::Recv {
            fd,
            iov,
            flags,
            msg_flags,
            control,
        } = &m
        else {
            panic!("{m:?}")
        };
        assert_eq!((*fd, iov.as_slice(), *flags), (3, &[0usize][..], 0x2000));
        assert_eq!(*msg_flags, 0x2000 | 0x20);
        assert_eq!(
            control[0],
            CmsgSpec {
                level: 1,
                kind: 37,
                data: CmsgData::Timestamping {
                    sec: 0,
                    nsec: 20_000_000
                }
            }
        );
        assert_eq!(
            control[1].data,
            CmsgData::ExtErr(ExtErr {
                errno: 42,
                origin: 4,
                kind: 0,
                code: 0,
                info: 2,
                data: 10999
            })
        );
        // packetdrill's buffer: CMSG_SPACE of three timespecs and of the
        // extended error with its sockaddr_in.
        assert_eq!(m.control_len(), 64 + 48);
        assert_eq!((control[0].cmsg_len(), control[1].cmsg_len()), (64, 48));
        let inq = "0 recvmsg(3, {msg_name(...)=..., msg_iov(1)=[{..., 1000}], msg_flags=0, \
            msg_control=[{cmsg_level=SOL_TCP, cmsg_type=TCP_CM_INQ, cmsg_data=9000}]}, 0) = 1000";
        let Ok(SocketCall::Msg(m)) = call(inq) else {
            panic!()
        };
        assert_eq!(m.control_len(), 24);
        let e = call(&inq.replace("cmsg_data=9000", "cmsg_data=NOPE"));
        assert!(e.unwrap_err().contains("unknown symbol `NOPE`"));
        let e = call(&inq.replace("cmsg_type=", "cmsg_kind="));
        assert!(e.unwrap_err().contains("expected the fields"));
    }

    #[test]
    fn only_plain_calls_are_portable() {
        let plain = MsgCall::Send {
            fd: 4,
            iov: vec![0, 40, 0, 20],
            flags: 0,
        };
        assert_eq!(plain.portable(), Some(SocketCall::Write { fd: 4, len: 60 }));
        assert_eq!(SocketCall::Msg(plain).kernel_only(), None);
        let more = MsgCall::Send {
            fd: 4,
            iov: vec![1],
            flags: 0x8000,
        };
        assert!(more.kernel_only().unwrap().contains("MSG_MORE"));
        let Ok(SocketCall::Msg(zc)) = call(ZC) else {
            panic!()
        };
        assert_eq!(zc.portable(), None);
        assert!(zc.kernel_only().is_some());
        let read = MsgCall::Recv {
            fd: 4,
            iov: vec![10, 20],
            flags: 0,
            msg_flags: 0,
            control: Vec::new(),
        };
        assert_eq!(read.portable(), Some(SocketCall::Read { fd: 4, len: 30 }));
    }

    /// A control buffer as the kernel lays it out.
    fn cmsg_bytes(level: i32, kind: i32, data: &[u8]) -> Vec<u8> {
        let len = CMSG_HDR + data.len();
        let mut b = Vec::new();
        b.extend(len.to_ne_bytes());
        b.extend(level.to_ne_bytes());
        b.extend(kind.to_ne_bytes());
        b.extend(data);
        b.resize(align8(b.len()), 0);
        b
    }

    fn ext_err(origin: u8, code: u8, info: u32, data: u32) -> Vec<u8> {
        let mut d = vec![0u8; 32];
        d[4] = origin;
        d[6] = code;
        d[8..12].copy_from_slice(&info.to_ne_bytes());
        d[12..16].copy_from_slice(&data.to_ne_bytes());
        d
    }

    fn returned(flags: i64, buf: &[u8]) -> CallReturn {
        CallReturn {
            msg: Some(Box::new(MsgReturn {
                flags,
                cmsgs: parse_control(buf),
                origin_realtime_us: Some(1_000_000_000),
            })),
            ..CallReturn::ok(0)
        }
    }

    #[test]
    fn control_buffers_split_where_cmsg_nxthdr_would() {
        let mut b = cmsg_bytes(6, 36, &7i32.to_ne_bytes());
        b.extend(cmsg_bytes(0, 11, &ext_err(5, 1, 0, 0)));
        let c = parse_control(&b);
        assert_eq!(c.len(), 2);
        assert_eq!(
            (c[0].level, c[0].kind, c[0].len, c[0].data.len()),
            (6, 36, 20, 4)
        );
        assert_eq!((c[1].len, c[1].data.len()), (48, 32));
        // A zeroed buffer (a failed call) holds none; a header claiming
        // more than the buffer ends the walk.
        assert!(parse_control(&[0u8; 48]).is_empty());
        assert_eq!(parse_control(&b[..b.len() - 8]).len(), 1);
    }

    #[test]
    fn returned_messages_are_compared_field_by_field() {
        let Ok(c) = call(ZC) else { panic!() };
        let ok = cmsg_bytes(0, 11, &ext_err(5, 1, 1, 3));
        assert_eq!(check(&c, &returned(0x2000, &ok), (4000, 0)), Ok(()));
        let e = check(
            &c,
            &returned(0x2000, &cmsg_bytes(0, 11, &ext_err(5, 1, 1, 2))),
            (4000, 0),
        );
        assert_eq!(
            e,
            Err(("cmsg 0 ee_data=3".into(), "cmsg 0 ee_data=2".into()))
        );
        let e = check(
            &c,
            &returned(0x2000, &cmsg_bytes(0, 11, &ext_err(5, 0, 1, 3))),
            (4000, 0),
        );
        assert_eq!(e.unwrap_err().1, "cmsg 0 ee_code=0");
        let e = check(&c, &returned(0x2000 | 0x20, &ok), (4000, 0));
        assert_eq!(e.unwrap_err().1, "msg_flags=MSG_TRUNC|MSG_ERRQUEUE");
        let e = check(&c, &returned(0x2000, &[]), (4000, 0));
        assert_eq!(e.unwrap_err().1, "received only 0");
        let mut two = ok.clone();
        two.extend(cmsg_bytes(0, 11, &ext_err(5, 1, 4, 4)));
        assert_eq!(
            check(&c, &returned(0x2000, &two), (4000, 0)).unwrap_err().1,
            "received more than 1"
        );
        let e = check(
            &c,
            &returned(0x2000, &cmsg_bytes(1, 11, &ext_err(5, 1, 1, 3))),
            (4000, 0),
        );
        assert_eq!(e.unwrap_err().1, "cmsg 0 level/type=1/11");
        // A kernel call that brought nothing back is a mismatch too.
        assert!(check(&c, &CallReturn::ok(0), (4000, 0)).is_err());
    }

    #[test]
    fn timestamps_compare_in_script_time_within_the_tolerance() {
        let Ok(c) = call(TS) else { panic!() };
        // Script time zero is 1000 s after the epoch (see `returned`).
        let at = |us: i64| {
            let (s, ns) = (us / 1_000_000, (us % 1_000_000) * 1000);
            let mut d = Vec::new();
            d.extend(s.to_ne_bytes());
            d.extend(ns.to_ne_bytes());
            d.resize(48, 0);
            let mut b = cmsg_bytes(1, 37, &d);
            let mut e = ext_err(4, 0, 2, 10999);
            e[..4].copy_from_slice(&42u32.to_ne_bytes());
            b.extend(cmsg_bytes(0, 11, &e));
            returned(0x2000 | 0x20, &b)
        };
        let t0 = 1_000_000_000;
        assert_eq!(check(&c, &at(t0 + 20_000), (4000, 0)), Ok(()));
        assert_eq!(check(&c, &at(t0 + 16_500), (4000, 0)), Ok(()));
        assert!(check(&c, &at(t0 + 15_000), (4000, 0)).is_err());
        assert!(check(&c, &at(t0 + 25_000), (4000, 0)).is_err());
        // Later by the lateness of the event that caused it.
        assert_eq!(check(&c, &at(t0 + 25_000), (4000, 2000)), Ok(()));
        assert!(check(&c, &at(t0 + 15_000), (4000, 2000)).is_err());
        let e = check(&c, &at(t0 + 30_000), (4000, 0)).unwrap_err();
        assert_eq!(e.1, "cmsg 0 timestamp 0.030000 s");
        // A zero time in the script is not compared.
        let zero = TS.replace("scm_nsec=20000000", "scm_nsec=0");
        let Ok(z) = call(&zero) else { panic!() };
        assert_eq!(check(&z, &at(t0 + 99_000), (4000, 0)), Ok(()));
    }

    #[test]
    fn timestamping_option_values_are_or_ed_names() {
        use super::super::target::{OptValue, SockOpt};
        let c = call(
            "0 setsockopt(3, SOL_SOCKET, SO_TIMESTAMPING, \
             [SOF_TIMESTAMPING_TX_ACK | SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_ID], 4) = 0",
        );
        assert_eq!(
            c,
            Ok(SocketCall::SetSockOpt {
                fd: 3,
                opt: SockOpt::Kernel {
                    level: 1,
                    name: 37,
                    c_name: "SO_TIMESTAMPING"
                },
                value: OptValue::Int(0x200 | 0x10 | 0x80)
            })
        );
    }

    #[test]
    fn int_control_data_compares_as_an_int() {
        let inq = "0 recvmsg(3, {msg_name(...)=..., msg_iov(1)=[{..., 1000}], msg_flags=0, \
            msg_control=[{cmsg_level=SOL_TCP, cmsg_type=TCP_CM_INQ, cmsg_data=9000}]}, 0) = 1000";
        let Ok(c) = call(inq) else { panic!() };
        let got = |v: i32| returned(0, &cmsg_bytes(6, 36, &v.to_ne_bytes()));
        assert_eq!(check(&c, &got(9000), (4000, 0)), Ok(()));
        assert_eq!(
            check(&c, &got(8999), (4000, 0)),
            Err(("cmsg 0 data=9000".into(), "cmsg 0 data=8999".into()))
        );
        assert!(show_return(got(8999).msg.as_deref().unwrap()).contains("6/36 len 20: 8999"));
    }
}
