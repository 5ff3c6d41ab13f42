//! `epoll_create`, `epoll_ctl` and `epoll_wait` with packetdrill's syntax
//! and meaning (issue 10; epoll(7)).
//!
//! - `epoll_create(size) = N`: the script's `N` names the new epoll
//!   descriptor from then on, mapped like a socket's.
//! - `epoll_ctl(epfd, EPOLL_CTL_ADD|MOD|DEL, fd, {events=.., fd=fd})`: the
//!   struct's data is `fd=` (which must be the call's `fd`, as packetdrill
//!   insists), `ptr=`, `u32=` or `u64=`.
//! - `epoll_wait(epfd, {events=.., fd=..}, maxevents, timeout) = n`: the
//!   count is compared, then the *first* returned event's mask and data
//!   with the struct (no event: mask 0 and data 0), as packetdrill compares
//!   them. A data `fd` is the script's number for the descriptor.
//!
//! Only a kernel has epoll: in-process and foreign targets answer these
//! calls not applicable ([`super::target::SocketCall::kernel_only`]). On
//! `linux` ([`run_live`]) the worker registers its own number for a
//! descriptor as the event's data, and the runner maps the number a wait
//! returns back to the script's ([`to_script_fds`]).

use super::live_fds::{errno_result, LiveFds};
use super::target::{CallOutcome, CallReturn, Fd};
use crate::script::{Expr, SyscallSpec};
use std::collections::BTreeMap;

/// Linux `EPOLL*` event bits (include/uapi/linux/eventpoll.h).
const EVENT_BITS: &[(&str, u32)] = &[
    ("EPOLLIN", 0x1),
    ("EPOLLPRI", 0x2),
    ("EPOLLOUT", 0x4),
    ("EPOLLERR", 0x8),
    ("EPOLLHUP", 0x10),
    ("EPOLLRDNORM", 0x40),
    ("EPOLLRDBAND", 0x80),
    ("EPOLLWRNORM", 0x100),
    ("EPOLLWRBAND", 0x200),
    ("EPOLLMSG", 0x400),
    ("EPOLLRDHUP", 0x2000),
    ("EPOLLEXCLUSIVE", 1 << 28),
    ("EPOLLWAKEUP", 1 << 29),
    ("EPOLLONESHOT", 1 << 30),
    ("EPOLLET", 1 << 31),
];

/// `EPOLL_CTL_*` operations.
const CTL_OPS: &[(&str, i32)] = &[
    ("EPOLL_CTL_ADD", 1),
    ("EPOLL_CTL_DEL", 2),
    ("EPOLL_CTL_MOD", 3),
];

/// Most events one `epoll_wait` may ask for here.
const MAX_EVENTS: i32 = 4096;

/// The data word of an `epoll_event`, as the script's struct names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpollData {
    /// `fd=N`: a descriptor (the script's number, mapped to the target's).
    Fd(Fd),
    /// `ptr=N`
    Ptr(u64),
    /// `u32=N`
    U32(u32),
    /// `u64=N`
    U64(u64),
}

impl EpollData {
    /// The 64-bit data word the kernel stores (a descriptor in its low 32
    /// bits, as `data.fd` is laid out on little- and big-endian alike
    /// through the union's first member).
    fn word(self) -> u64 {
        match self {
            EpollData::Fd(fd) => u64::from(fd as u32),
            EpollData::Ptr(v) | EpollData::U64(v) => v,
            EpollData::U32(v) => u64::from(v),
        }
    }

    /// The same kind of data holding `word`.
    fn like(self, word: u64) -> EpollData {
        match self {
            EpollData::Fd(_) => EpollData::Fd(Fd::from(word as u32 as i32)),
            EpollData::Ptr(_) => EpollData::Ptr(word),
            EpollData::U32(_) => EpollData::U32(word as u32),
            EpollData::U64(_) => EpollData::U64(word),
        }
    }
}

/// One epoll call, resolved from the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EpollCall {
    /// `epoll_create(size)`.
    Create { size: i64 },
    /// `epoll_ctl(epfd, op, fd, {events, data})`.
    Ctl {
        epfd: Fd,
        op: i32,
        fd: Fd,
        events: u32,
        data: EpollData,
    },
    /// `epoll_wait(epfd, {..}, maxevents, timeout)`; `want` is the kind of
    /// data the script's struct compares (its value is not passed).
    Wait {
        epfd: Fd,
        want: EpollData,
        max: i32,
        timeout_ms: i64,
    },
}

impl EpollCall {
    /// The call's name as scripts write it.
    pub fn name(&self) -> &'static str {
        match self {
            EpollCall::Create { .. } => "epoll_create",
            EpollCall::Ctl { .. } => "epoll_ctl",
            EpollCall::Wait { .. } => "epoll_wait",
        }
    }

    /// The call with every descriptor it names replaced by `f(fd)`.
    pub fn map_fds(&mut self, f: &dyn Fn(Fd) -> Fd) {
        match self {
            EpollCall::Create { .. } => {}
            EpollCall::Ctl { epfd, fd, data, .. } => {
                *epfd = f(*epfd);
                *fd = f(*fd);
                if let EpollData::Fd(d) = data {
                    *d = f(*d);
                }
            }
            EpollCall::Wait { epfd, .. } => *epfd = f(*epfd),
        }
    }

    /// An `epoll_wait`'s timeout: the runner waits that long for a ready
    /// event, as for `poll`.
    pub fn timeout_ms(&self) -> Option<i64> {
        match self {
            EpollCall::Wait { timeout_ms, .. } => Some(*timeout_ms),
            _ => None,
        }
    }
}

/// Resolves an `epoll_*` call; `None` for any other name.
pub fn resolve(spec: &SyscallSpec) -> Option<Result<EpollCall, String>> {
    let name = spec.name.as_str();
    let a = &spec.args;
    let arity = |n: usize| {
        if a.len() == n {
            Ok(())
        } else {
            Err(format!("{name}: expected {n} arguments, found {}", a.len()))
        }
    };
    Some(match name {
        "epoll_create" | "epoll_create1" => arity(1).and_then(|()| {
            Ok(EpollCall::Create {
                size: int(name, &a[0])?,
            })
        }),
        "epoll_ctl" => arity(4).and_then(|()| ctl(name, a)),
        "epoll_wait" => arity(4).and_then(|()| {
            let max = i32::try_from(int(name, &a[2])?)
                .ok()
                .filter(|m| *m <= MAX_EVENTS)
                .ok_or_else(|| format!("{name}: maxevents out of range (..={MAX_EVENTS})"))?;
            Ok(EpollCall::Wait {
                epfd: int(name, &a[0])?,
                want: event(name, &a[1])?.1,
                max,
                timeout_ms: int(name, &a[3])?,
            })
        }),
        _ => return None,
    })
}

fn ctl(name: &str, a: &[Expr]) -> Result<EpollCall, String> {
    let op = match &a[1] {
        Expr::Ident(s) => CTL_OPS
            .iter()
            .find(|(n, _)| n == s)
            .map(|(_, v)| *v)
            .ok_or_else(|| format!("{name}: unknown operation `{s}`"))?,
        other => i32::try_from(int(name, other)?)
            .map_err(|_| format!("{name}: operation `{other}` out of range"))?,
    };
    let fd = int(name, &a[2])?;
    let (events, data) = event(name, &a[3])?;
    if matches!(data, EpollData::Fd(d) if d != fd) {
        return Err(format!(
            "{name}: the event's fd must be the call's fd ({fd}), as packetdrill requires"
        ));
    }
    Ok(EpollCall::Ctl {
        epfd: int(name, &a[0])?,
        op,
        fd,
        events,
        data,
    })
}

/// `{events=.., fd=N | ptr=N | u32=N | u64=N}`.
fn event(name: &str, e: &Expr) -> Result<(u32, EpollData), String> {
    let Expr::Struct(fields) = e else {
        return Err(format!(
            "{name}: expected an event {{events=.., fd=..}}, found `{e}`"
        ));
    };
    let field = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v);
    let events = match field("events") {
        Some(v) => event_bits(name, v)?,
        None => return Err(format!("{name}: the event has no `events`")),
    };
    let data = if let Some(v) = field("fd") {
        EpollData::Fd(int(name, v)?)
    } else if let Some(v) = field("ptr") {
        EpollData::Ptr(int(name, v)? as u64)
    } else if let Some(v) = field("u32") {
        EpollData::U32(int(name, v)? as u32)
    } else if let Some(v) = field("u64") {
        EpollData::U64(int(name, v)? as u64)
    } else {
        return Err(format!(
            "{name}: the event needs one of fd=, ptr=, u32=, u64="
        ));
    };
    Ok((events, data))
}

/// `EPOLLIN|EPOLLET` or a number.
fn event_bits(name: &str, e: &Expr) -> Result<u32, String> {
    match e {
        Expr::Int(i) => u32::try_from(*i).map_err(|_| format!("{name}: events {i} out of range")),
        Expr::Ident(s) => EVENT_BITS
            .iter()
            .find(|(n, _)| n == s)
            .map(|(_, v)| *v)
            .ok_or_else(|| format!("{name}: unknown event `{s}`")),
        Expr::BitOr(parts) => parts
            .iter()
            .try_fold(0u32, |acc, p| Ok(acc | event_bits(name, p)?)),
        other => Err(format!("{name}: expected events, found `{other}`")),
    }
}

fn int(name: &str, e: &Expr) -> Result<i64, String> {
    match e {
        Expr::Int(i) => Ok(*i),
        other => Err(format!("{name}: expected a number, found `{other}`")),
    }
}

/// `EPOLLIN|EPOLLOUT` style rendering of an event mask.
fn show_events(bits: u32) -> String {
    let mut parts: Vec<String> = EVENT_BITS
        .iter()
        .filter(|(_, b)| bits & b != 0)
        .map(|(n, _)| n.to_string())
        .collect();
    let known = EVENT_BITS.iter().fold(0, |a, (_, b)| a | b);
    if bits & !known != 0 {
        parts.push(format!("{:#x}", bits & !known));
    }
    if parts.is_empty() {
        "0".into()
    } else {
        parts.join("|")
    }
}

/// What an `epoll_wait` returned, in [`CallReturn::revents`]: the first
/// event's mask and data word (both 0 when none came).
fn first_event(r: &CallReturn) -> (u32, u64) {
    let mask = r.revents.first().copied().unwrap_or(0) as u32;
    let word = r.revents.get(1).copied().unwrap_or(0) as u64;
    (mask, word)
}

/// The runner's half of the descriptor mapping: a data `fd` a wait
/// returned (the target's number) becomes the script's, through `fds`
/// (script → target): the script's expected descriptor when that is the
/// one the target returned (packetdrill compares the live numbers), else
/// any script number for it (the mismatch's message).
pub fn to_script_fds(spec: &SyscallSpec, r: &mut CallReturn, fds: &BTreeMap<Fd, Fd>) {
    if spec.name != "epoll_wait" {
        return;
    }
    let Some(Ok((_, EpollData::Fd(want)))) = spec.args.get(1).map(|e| event(&spec.name, e)) else {
        return;
    };
    let (mask, word) = first_event(r);
    let target = Fd::from(word as u32 as i32);
    let script = if fds.get(&want) == Some(&target) {
        want
    } else if let Some((s, _)) = fds.iter().find(|(_, t)| **t == target) {
        *s
    } else {
        return;
    };
    r.revents = vec![i64::from(mask), i64::from(script as u32)];
}

/// Compares an `epoll_wait`'s first event with the script's struct;
/// `Err` is the mismatch as (expected, actual). Other calls pass.
pub fn check(spec: &SyscallSpec, got: &CallReturn) -> Result<(), (String, String)> {
    if spec.name != "epoll_wait" || got.ret.is_err() {
        return Ok(());
    }
    let Some(Ok((want_mask, want_data))) = spec.args.get(1).map(|e| event("epoll_wait", e)) else {
        return Ok(());
    };
    let (mask, word) = first_event(got);
    if mask != want_mask {
        return Err((
            format!("events={}", show_events(want_mask)),
            format!("events={}", show_events(mask)),
        ));
    }
    let got_data = want_data.like(word);
    if got_data.word() != want_data.word() {
        return Err((format!("data {want_data:?}"), format!("data {got_data:?}")));
    }
    Ok(())
}

// ----- on a live kernel ------------------------------------------------------

/// Makes `call` on the live kernel, with the worker's descriptors `fds`.
pub fn run_live(call: &EpollCall, fds: &mut dyn LiveFds) -> CallOutcome {
    CallOutcome::Done(match call {
        EpollCall::Create { size } => create(*size, fds),
        EpollCall::Ctl {
            epfd,
            op,
            fd,
            events,
            data,
        } => {
            let (Some(ep), Some(raw)) = (fds.raw(*epfd), fds.raw(*fd)) else {
                return CallOutcome::Done(CallReturn::err("EBADF"));
            };
            let mut ev = libc::epoll_event {
                events: *events,
                u64: data.word(),
            };
            // SAFETY: `ev` is a live epoll_event; both descriptors are the
            // worker's own.
            errno_result(unsafe { libc::epoll_ctl(ep, *op, raw, &mut ev) }.into())
        }
        EpollCall::Wait { epfd, max, .. } => wait(fds.raw(*epfd), *max),
    })
}

fn create(size: i64, fds: &mut dyn LiveFds) -> CallReturn {
    let Ok(size) = libc::c_int::try_from(size) else {
        return CallReturn::err("EINVAL");
    };
    // SAFETY: plain syscall; the result is checked before use.
    let raw = unsafe { libc::epoll_create(size) };
    if raw < 0 {
        return errno_result(-1);
    }
    // SAFETY: `raw` is a fresh descriptor nothing else owns.
    let owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
    CallReturn::ok(fds.adopt(owned))
}

/// `epoll_wait` with a zero timeout (the runner waits for the script's
/// timeout itself and makes the call again).
fn wait(ep: Option<std::os::fd::RawFd>, max: i32) -> CallReturn {
    let Some(ep) = ep else {
        return CallReturn::err("EBADF");
    };
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; max.max(1) as usize];
    // SAFETY: `events` holds at least `max` entries when `max` > 0; a
    // non-positive `max` is the kernel's to refuse (EINVAL).
    let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), max, 0) };
    if n < 0 {
        return errno_result(-1);
    }
    let mut r = CallReturn::ok(i64::from(n));
    let (mask, word) = if n > 0 {
        (events[0].events, events[0].u64)
    } else {
        (0, 0)
    };
    r.revents = vec![i64::from(mask), word as i64];
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> SyscallSpec {
        let script = crate::script::parse("t.pkt", text).expect("parses");
        match &script.events[0].kind {
            crate::script::EventKind::Syscall(s) => s.clone(),
            _ => panic!("not a call"),
        }
    }

    #[test]
    fn resolves_packetdrill_epoll_syntax() {
        let c = resolve(&spec(
            "0 epoll_ctl(5, EPOLL_CTL_ADD, 4, {events=EPOLLOUT|EPOLLIN|EPOLLET, fd=4}) = 0",
        ));
        assert_eq!(
            c,
            Some(Ok(EpollCall::Ctl {
                epfd: 5,
                op: 1,
                fd: 4,
                events: 0x8000_0005,
                data: EpollData::Fd(4)
            }))
        );
        let w = resolve(&spec("0 epoll_wait(5, {events=0, ptr=0}, 1, 0) = 0"));
        assert_eq!(
            w,
            Some(Ok(EpollCall::Wait {
                epfd: 5,
                want: EpollData::Ptr(0),
                max: 1,
                timeout_ms: 0
            }))
        );
        let bad = resolve(&spec(
            "0 epoll_ctl(5, EPOLL_CTL_ADD, 4, {events=EPOLLIN, fd=3}) = 0",
        ));
        assert!(matches!(bad, Some(Err(m)) if m.contains("must be the call's fd")));
        assert!(resolve(&spec("0 close(3) = 0")).is_none());
    }

    #[test]
    fn compares_the_first_event() {
        let s = spec("0 epoll_wait(5, {events=EPOLLIN|EPOLLOUT, fd=4}, 1, 0) = 1");
        let mut r = CallReturn::ok(1);
        r.revents = vec![0x5, 4];
        assert_eq!(check(&s, &r), Ok(()));
        r.revents = vec![0x4, 4];
        assert_eq!(
            check(&s, &r),
            Err(("events=EPOLLIN|EPOLLOUT".into(), "events=EPOLLOUT".into()))
        );
        r.revents = vec![0x5, 7];
        assert!(check(&s, &r).is_err());
        // The target's 9 is the script's 4 (and the closed 3's before).
        r.revents = vec![0x5, 9];
        to_script_fds(&s, &mut r, &BTreeMap::from([(3, 9), (4, 9), (5, 5)]));
        assert_eq!(check(&s, &r), Ok(()));
        r.revents = vec![0x5, 5];
        to_script_fds(&s, &mut r, &BTreeMap::from([(3, 9), (4, 9), (5, 5)]));
        assert!(check(&s, &r).is_err());
    }
}
