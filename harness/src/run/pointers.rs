//! Calls whose pointer arguments the script writes itself, passed as
//! packetdrill passes them (issue 10): a `NULL` buffer (`write(4, NULL,
//! 1000)`, `recv(4, NULL, 1000, 0)`, ...) reaches the kernel as a null
//! pointer with the script's length, so the kernel answers `EFAULT` (or
//! whatever it answers); `sendto(..., AF_UNSPEC, ...)` passes a zeroed
//! `sockaddr_storage` whose family is `AF_UNSPEC`, as packetdrill does, so
//! a fast-open `sendto` is refused with `EOPNOTSUPP`.
//!
//! Only a kernel's system call interface can take a raw pointer: every
//! other target answers these calls not applicable
//! ([`super::target::SocketCall::kernel_only`]).

use super::live_fds::{errno_result, LiveFds};
use super::target::{CallOutcome, CallReturn, Fd};
use crate::script::{Expr, SyscallSpec};
use std::net::SocketAddr;

/// Which call carries the pointers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufOp {
    Write,
    Send,
    SendTo,
    Read,
    Recv,
    RecvFrom,
}

impl BufOp {
    fn by_name(name: &str) -> Option<(BufOp, usize)> {
        Some(match name {
            "write" => (BufOp::Write, 3),
            "send" => (BufOp::Send, 4),
            "sendto" => (BufOp::SendTo, 6),
            "read" => (BufOp::Read, 3),
            "recv" => (BufOp::Recv, 4),
            "recvfrom" => (BufOp::RecvFrom, 6),
            _ => return None,
        })
    }

    /// The call's name as scripts write it.
    pub fn name(self) -> &'static str {
        match self {
            BufOp::Write => "write",
            BufOp::Send => "send",
            BufOp::SendTo => "sendto",
            BufOp::Read => "read",
            BufOp::Recv => "recv",
            BufOp::RecvFrom => "recvfrom",
        }
    }
}

/// A read or write with a `NULL` buffer or an `AF_UNSPEC` address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointerCall {
    pub op: BufOp,
    pub fd: Fd,
    /// The buffer is `NULL` (else the harness's data, as for `...`).
    pub null_buf: bool,
    pub len: usize,
    /// Linux `MSG_*` bits.
    pub flags: i64,
    /// `sendto`'s address is `AF_UNSPEC` (else the scripted peer's).
    pub unspec: bool,
}

/// Resolves a read or write whose buffer is `NULL` or whose `sendto`
/// address is `AF_UNSPEC`; `None` for anything else (the plain forms).
pub fn resolve(spec: &SyscallSpec) -> Option<Result<PointerCall, String>> {
    let name = spec.name.as_str();
    let (op, arity) = BufOp::by_name(name)?;
    let a = &spec.args;
    let null_buf = matches!(a.get(1), Some(Expr::Ident(s)) if s == "NULL");
    let unspec =
        op == BufOp::SendTo && matches!(a.get(4), Some(Expr::Ident(s)) if s == "AF_UNSPEC");
    if !null_buf && !unspec {
        return None;
    }
    Some(resolve_args(name, op, arity, a, null_buf, unspec))
}

fn resolve_args(
    name: &str,
    op: BufOp,
    arity: usize,
    a: &[Expr],
    null_buf: bool,
    unspec: bool,
) -> Result<PointerCall, String> {
    if a.len() != arity {
        return Err(format!(
            "{name}: expected {arity} arguments, found {}",
            a.len()
        ));
    }
    let int = |e: &Expr| match e {
        Expr::Int(i) => Ok(*i),
        other => Err(format!("{name}: expected a number, found `{other}`")),
    };
    if !null_buf && !matches!(a[1], Expr::Ellipsis) {
        return Err(format!("{name}: buffer `{}` is not supported", a[1]));
    }
    let len = usize::try_from(int(&a[2])?)
        .ok()
        .filter(|n| *n <= 16 << 20)
        .ok_or_else(|| format!("{name}: length {} out of range (0..=16 MiB)", a[2]))?;
    let flags = match a.get(3) {
        None | Some(Expr::Ellipsis) => 0,
        Some(f) => super::syscall::msg_flags(name, f)?,
    };
    Ok(PointerCall {
        op,
        fd: int(&a[0])?,
        null_buf,
        len,
        flags,
        unspec,
    })
}

/// Makes the call on the live kernel with the worker's descriptors (a
/// `sendto` with `...` passes the scripted peer's address).
pub fn run_live(c: &PointerCall, fds: &mut dyn LiveFds) -> CallOutcome {
    let peer = fds.peer();
    let Some(raw) = fds.raw(c.fd) else {
        return CallOutcome::Done(CallReturn::err("EBADF"));
    };
    let mut data: Vec<u8> = if c.null_buf {
        Vec::new()
    } else {
        (0..c.len).map(|i| b'A' + (i % 26) as u8).collect()
    };
    let buf: *mut libc::c_void = if c.null_buf {
        std::ptr::null_mut()
    } else {
        data.as_mut_ptr().cast()
    };
    let flags = libc::c_int::try_from(c.flags).unwrap_or(-1);
    // SAFETY (every call below): `buf` is null — the point of the call; the
    // kernel checks it and answers EFAULT — or a live buffer of `c.len`
    // octets; address pointers are live values of the lengths passed.
    let rc = match c.op {
        BufOp::Write => unsafe { libc::write(raw, buf, c.len) },
        BufOp::Read => unsafe { libc::read(raw, buf, c.len) },
        BufOp::Send => unsafe { libc::send(raw, buf, c.len, flags | libc::MSG_NOSIGNAL) },
        BufOp::Recv => unsafe { libc::recv(raw, buf, c.len, flags) },
        BufOp::SendTo => send_to(raw, buf, c, flags, peer),
        BufOp::RecvFrom => {
            // SAFETY: all-zero is a valid sockaddr_storage.
            let mut from: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            let mut flen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            unsafe {
                libc::recvfrom(
                    raw,
                    buf,
                    c.len,
                    flags,
                    (&mut from as *mut libc::sockaddr_storage).cast(),
                    &mut flen,
                )
            }
        }
    };
    let r = errno_result(rc as i64);
    if r.ret == Err("EAGAIN") && fds.blocking(c.fd) && c.flags & 0x40 == 0 {
        return CallOutcome::WouldBlock;
    }
    CallOutcome::Done(r)
}

/// `sendto` to `peer`, or to a zeroed address of family `AF_UNSPEC` and
/// `sockaddr_storage`'s length, as packetdrill passes `AF_UNSPEC`.
fn send_to(
    raw: std::os::fd::RawFd,
    buf: *mut libc::c_void,
    c: &PointerCall,
    flags: libc::c_int,
    peer: SocketAddr,
) -> isize {
    let flags = flags | libc::MSG_NOSIGNAL;
    if c.unspec {
        // SAFETY: all-zero is a valid sockaddr_storage (family AF_UNSPEC).
        let sa: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: see `run_live`; `sa` is live for `len` octets.
        return unsafe {
            libc::sendto(
                raw,
                buf,
                c.len,
                flags,
                (&sa as *const libc::sockaddr_storage).cast(),
                len,
            )
        };
    }
    let sa = super::linux::RawAddr::new(peer);
    let (ptr, len) = sa.as_ptr_len();
    // SAFETY: see `run_live`; `ptr` is live for `len` octets.
    unsafe { libc::sendto(raw, buf, c.len, flags, ptr, len) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(text: &str) -> Option<Result<PointerCall, String>> {
        let script = crate::script::parse("t.pkt", text).expect("parses");
        match &script.events[0].kind {
            crate::script::EventKind::Syscall(s) => resolve(s),
            _ => panic!("not a call"),
        }
    }

    #[test]
    fn null_buffers_and_af_unspec_resolve_plain_forms_do_not() {
        let c = resolved("0 recv(4, NULL, 1000, 0) = -1 EFAULT")
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.op, c.null_buf, c.len, c.unspec),
            (BufOp::Recv, true, 1000, false)
        );
        let c = resolved("0 sendto(3, ..., 0, MSG_FASTOPEN, AF_UNSPEC, ...) = -1 EOPNOTSUPP")
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.op, c.null_buf, c.flags, c.unspec),
            (BufOp::SendTo, false, 0x2000_0000, true)
        );
        assert!(resolved("0 write(4, ..., 10) = 10").is_none());
        assert!(resolved("0 write(4, NULL) = -1").unwrap().is_err());
    }
}
