//! Checking what a kernel's `recvmsg` returned against the script's
//! msghdr, as packetdrill checks it (see [`super`]), and showing it.

use super::{
    CmsgData, CmsgReturn, CmsgSpec, ExtErr, MsgCall, MsgReturn, IPV6_RECVERR, IP_RECVERR,
    SCM_TIMESTAMPING, SOL_IP, SOL_IPV6, SOL_SOCKET,
};
use crate::run::target::{CallReturn, SocketCall};

/// Compares a `recvmsg`'s returned `msg_flags` and control messages with
/// the script's, as packetdrill does; `Err` is (expected, actual), naming
/// the field. A timestamp may be off by `tol.0` µs either way, and later by
/// `tol.1` more: on a real clock the event that caused it (an injected ACK)
/// may itself have happened that late.
pub fn check(call: &SocketCall, got: &CallReturn, tol: (u64, u64)) -> Result<(), (String, String)> {
    let SocketCall::Msg(
        m @ MsgCall::Recv {
            msg_flags, control, ..
        },
    ) = call
    else {
        return Ok(());
    };
    let Some(r) = got.msg.as_deref() else {
        // Made as a plain read (a target without recvmsg); only a call
        // with nothing else to compare is ever made so.
        return match m.portable() {
            Some(_) => Ok(()),
            None => Err(("a msghdr back".into(), "none".into())),
        };
    };
    if r.flags != *msg_flags {
        return Err((
            format!("msg_flags={}", show_flags(*msg_flags)),
            format!("msg_flags={}", show_flags(r.flags)),
        ));
    }
    for (i, (want, got)) in control.iter().zip(&r.cmsgs).enumerate() {
        cmsg_eq(i, want, got, r.origin_realtime_us, tol)?;
    }
    if r.cmsgs.len() != control.len() {
        let n = control.len().min(r.cmsgs.len());
        return Err((
            format!("{} control messages", control.len()),
            if r.cmsgs.len() > n {
                format!("received more than {n}")
            } else {
                format!("received only {n}")
            },
        ));
    }
    Ok(())
}

fn cmsg_eq(
    i: usize,
    want: &CmsgSpec,
    got: &CmsgReturn,
    origin: Option<i64>,
    tol: (u64, u64),
) -> Result<(), (String, String)> {
    let differ = |field: &str, w: String, g: String| {
        Err((
            format!("cmsg {i} {field}={w}"),
            format!("cmsg {i} {field}={g}"),
        ))
    };
    if (want.level, want.kind) != (got.level, got.kind) {
        return differ(
            "level/type",
            format!("{}/{}", want.level, want.kind),
            format!("{}/{}", got.level, got.kind),
        );
    }
    if want.cmsg_len() != got.len {
        return differ("len", want.cmsg_len().to_string(), got.len.to_string());
    }
    let recverr = matches!(
        (got.level, got.kind),
        (SOL_IP, IP_RECVERR) | (SOL_IPV6, IPV6_RECVERR)
    );
    match &want.data {
        CmsgData::ExtErr(w) if recverr => {
            let Some(g) = ExtErr::from_bytes(&got.data) else {
                return differ("data", "sock_extended_err".into(), "short".into());
            };
            for ((field, wv), (_, gv)) in w.fields().iter().zip(g.fields()) {
                if *wv != gv {
                    return differ(field, wv.to_string(), gv.to_string());
                }
            }
            Ok(())
        }
        CmsgData::Timestamping { sec, nsec }
            if (got.level, got.kind) == (SOL_SOCKET, SCM_TIMESTAMPING) =>
        {
            timestamp_eq(i, *sec, *nsec, got, origin, tol)
        }
        CmsgData::Int(w) => match int_payload(&got.data) {
            Some(g) if g == *w => Ok(()),
            Some(g) => differ("data", w.to_string(), g.to_string()),
            None => differ("data", w.to_string(), hex(&got.data)),
        },
        _ => {
            let w = want_bytes(want);
            let n = got.data.len().min(w.len());
            if got.data[..n] != w[..n] {
                return differ("data", hex(&w[..n]), hex(&got.data[..n]));
            }
            Ok(())
        }
    }
}

/// The payload the script's message stands for, for an octet comparison.
fn want_bytes(want: &CmsgSpec) -> Vec<u8> {
    let mut b = vec![0u8; want.data_len()];
    match &want.data {
        CmsgData::Int(v) => b[..4].copy_from_slice(&v.to_ne_bytes()),
        CmsgData::Timestamping { sec, nsec } => {
            b[..8].copy_from_slice(&sec.to_ne_bytes());
            b[8..16].copy_from_slice(&nsec.to_ne_bytes());
        }
        CmsgData::ExtErr(e) => {
            b[..4].copy_from_slice(&e.errno.to_ne_bytes());
            b[4..7].copy_from_slice(&[e.origin, e.kind, e.code]);
            b[8..12].copy_from_slice(&e.info.to_ne_bytes());
            b[12..16].copy_from_slice(&e.data.to_ne_bytes());
        }
    }
    b
}

/// An int payload (exactly four octets).
fn int_payload(b: &[u8]) -> Option<i32> {
    b.try_into().ok().map(i32::from_ne_bytes)
}

/// The software time (the first of three) against the script's time,
/// both from script time zero: equal within the tolerance, as packetdrill
/// compares them (plus the lateness allowed for a real clock).
fn timestamp_eq(
    i: usize,
    sec: i64,
    nsec: i64,
    got: &CmsgReturn,
    origin: Option<i64>,
    tol: (u64, u64),
) -> Result<(), (String, String)> {
    if sec == 0 && nsec == 0 {
        return Ok(());
    }
    let want_us = sec.saturating_mul(1_000_000).saturating_add(nsec / 1000);
    let at = |k: usize| {
        got.data
            .get(k..k + 8)
            .and_then(|b| b.try_into().ok())
            .map(i64::from_ne_bytes)
    };
    let (Some(gs), Some(gn), Some(origin)) = (at(0), at(8), origin) else {
        return Err((
            format!("cmsg {i} timestamp {}", show_us(want_us)),
            "no usable timestamp".into(),
        ));
    };
    let got_us = gs
        .saturating_mul(1_000_000)
        .saturating_add(gn / 1000)
        .saturating_sub(origin);
    let late = tol.0.saturating_add(tol.1);
    let off = got_us.saturating_sub(want_us);
    if (off < 0 && off.unsigned_abs() > tol.0) || (off > 0 && off.unsigned_abs() > late) {
        return Err((
            format!("cmsg {i} timestamp {}", show_us(want_us)),
            format!("cmsg {i} timestamp {}", show_us(got_us)),
        ));
    }
    Ok(())
}

fn show_us(us: i64) -> String {
    format!("{:.6} s", us as f64 / 1e6)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `MSG_A|MSG_B` rendering of flag bits.
pub fn show_flags(bits: i64) -> String {
    const NAMES: &[(&str, i64)] = crate::run::syscall::MSG_FLAGS;
    let mut parts: Vec<String> = NAMES
        .iter()
        .filter(|(_, b)| bits & b != 0)
        .map(|(n, _)| n.to_string())
        .collect();
    let rest = NAMES.iter().fold(bits, |a, (_, b)| a & !b);
    if rest != 0 {
        parts.push(format!("{rest:#x}"));
    }
    if parts.is_empty() {
        "0".into()
    } else {
        parts.join("|")
    }
}

/// What came back, for the trace and failures: ` [msg_flags=..; cmsg
/// level/type=payload, ...]`.
pub fn show_return(r: &MsgReturn) -> String {
    let cmsgs: Vec<String> = r
        .cmsgs
        .iter()
        .map(|c| {
            let data = match (c.level, c.kind) {
                (SOL_IP, IP_RECVERR) | (SOL_IPV6, IPV6_RECVERR) => {
                    match ExtErr::from_bytes(&c.data) {
                        Some(e) => {
                            let f: Vec<String> =
                                e.fields().iter().map(|(k, v)| format!("{k}={v}")).collect();
                            format!("{{{}}}", f.join(", "))
                        }
                        None => hex(&c.data),
                    }
                }
                (SOL_SOCKET, SCM_TIMESTAMPING) => {
                    let t = |k: usize| {
                        c.data
                            .get(k..k + 8)
                            .and_then(|b| b.try_into().ok())
                            .map_or(0, i64::from_ne_bytes)
                    };
                    let us = t(0).saturating_mul(1_000_000).saturating_add(t(8) / 1000);
                    match r.origin_realtime_us {
                        Some(o) => format!("{{script time {}}}", show_us(us.saturating_sub(o))),
                        None => format!("{{{}.{:09}}}", t(0), t(8)),
                    }
                }
                _ => int_payload(&c.data).map_or_else(|| hex(&c.data), |v| v.to_string()),
            };
            format!("{}/{} len {}: {data}", c.level, c.kind, c.len)
        })
        .collect();
    format!(
        " [msg_flags={}; cmsgs: {}]",
        show_flags(r.flags),
        if cmsgs.is_empty() {
            "none".into()
        } else {
            cmsgs.join(", ")
        }
    )
}

/// Sets the wall-clock time of script time zero on a returned msghdr.
pub fn set_origin(r: &mut CallReturn, origin: std::time::Instant) {
    if let Some(m) = r.msg.as_mut() {
        let since = i64::try_from(origin.elapsed().as_micros()).unwrap_or(i64::MAX);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        m.origin_realtime_us = Some(now.saturating_sub(since));
    }
}
