//! The `linux` worker's `sendmsg` and `recvmsg` ([`crate::run::msg`]):
//! real calls with the script's iovec, flags and control buffer, on the
//! worker's non-blocking sockets with the script's blocking semantics.

use super::{
    active_local, done, errno, errno_return, payload_byte, send_flags, would_block, RawAddr, Sock,
    WRITE_CHUNK,
};
use crate::run::msg::{self, MsgCall, MsgReturn, MSG_DONTWAIT, MSG_ERRQUEUE, MSG_FASTOPEN};
use crate::run::peer_tap::ScriptClock;
use crate::run::target::{CallOutcome, CallReturn, TargetError};
use std::net::SocketAddr;
use std::os::fd::RawFd;

/// Octets left unused after each iovec entry's buffer, so that no two
/// entries are contiguous in memory. Under `MSG_ZEROCOPY` the kernel
/// coalesces contiguous user memory into one page fragment of the skb;
/// packetdrill's entries are separate allocations, one fragment each, and
/// the scripts count fragments (`MAX_SKB_FRAGS`).
const IOV_GAP: usize = 64;

/// Makes `sendmsg`/`recvmsg` on `sock`.
pub(super) fn call(
    sock: &mut Sock,
    m: &MsgCall,
    local: SocketAddr,
    peer: SocketAddr,
    active: &mut u16,
) -> Result<CallOutcome, TargetError> {
    match m {
        MsgCall::Send { iov, flags, .. } => {
            // packetdrill names the peer in msg_name; TCP reads it only
            // with MSG_FASTOPEN (RFC 7413 data on the SYN), and then an
            // unbound socket binds like `connect`.
            let fastopen = flags & MSG_FASTOPEN != 0;
            let from = (fastopen && !sock.bound).then(|| active_local(local, active));
            send_flags(sock, iov, *flags, fastopen.then_some(peer), from)
        }
        MsgCall::Recv {
            iov,
            flags,
            msg_flags,
            ..
        } => recv(sock, iov, *flags, *msg_flags, m.control_len()),
    }
}

/// One `sendmsg(2)` of what is left of `iov` after `from` octets (at most
/// [`WRITE_CHUNK`]; zero-length entries kept where they stand), the data
/// `A..Z` by stream offset; returns the syscall's result.
pub(super) fn send_piece(
    raw: RawFd,
    iov: &[usize],
    from: usize,
    flags: libc::c_int,
    addr: Option<&RawAddr>,
) -> isize {
    send_upto(raw, iov, from, WRITE_CHUNK, flags, addr)
}

/// [`send_piece`] of at most `budget` octets: a blocking call
/// ([`crate::run::blocking`]) sends the whole of `iov` in one `sendmsg`.
pub(crate) fn send_upto(
    raw: RawFd,
    iov: &[usize],
    from: usize,
    budget: usize,
    flags: libc::c_int,
    addr: Option<&RawAddr>,
) -> isize {
    let mut pieces = Vec::new();
    let (mut off, mut budget) = (0usize, budget);
    for &l in iov {
        let end = off + l;
        if end > from || (l == 0 && off >= from) {
            let start = off.max(from);
            let take = (end - start).min(budget);
            pieces.push((start, take));
            budget -= take;
            if budget == 0 {
                break;
            }
        }
        off = end;
    }
    let mut buf = Vec::new();
    let mut at = Vec::with_capacity(pieces.len());
    for &(start, take) in &pieces {
        at.push(buf.len());
        buf.extend((start..start + take).map(payload_byte));
        buf.resize(buf.len() + IOV_GAP, 0);
    }
    let mut iovecs: Vec<libc::iovec> = pieces
        .iter()
        .zip(&at)
        .map(|(&(_, take), &i)| libc::iovec {
            iov_base: buf[i..].as_mut_ptr().cast(),
            iov_len: take,
        })
        .collect();
    // SAFETY: all-zero is a valid msghdr (null pointers, zero lengths).
    let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
    if let Some(a) = addr {
        let (p, l) = a.as_ptr_len();
        mh.msg_name = p as *mut libc::c_void;
        mh.msg_namelen = l;
    }
    mh.msg_iov = iovecs.as_mut_ptr();
    mh.msg_iovlen = iovecs.len();
    // SAFETY: every iovec points into `buf` for its length, `msg_name`
    // is null or a live address of `msg_namelen` octets; all outlive the
    // call, which only reads them.
    unsafe { libc::sendmsg(raw, &mh, flags) }
}

/// `recvmsg` into an iovec of the script's lengths and a control buffer of
/// `control_len` octets, `msg_flags` preset to the script's as packetdrill
/// does (the kernel writes them back only on success). An empty queue
/// blocks a blocking socket's call, never an error-queue read.
fn recv(
    sock: &Sock,
    iov: &[usize],
    flags: i64,
    msg_flags: i64,
    control_len: usize,
) -> Result<CallOutcome, TargetError> {
    let mut buf = vec![0u8; iov.iter().sum()];
    let mut iovecs = Vec::with_capacity(iov.len());
    let mut at = 0;
    for &l in iov {
        iovecs.push(libc::iovec {
            iov_base: buf[at..].as_mut_ptr().cast(),
            iov_len: l,
        });
        at += l;
    }
    let mut control = vec![0u64; control_len.div_ceil(8)];
    // SAFETY: all-zero is a valid sockaddr_storage and msghdr.
    let mut name: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
    mh.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
    mh.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    mh.msg_iov = iovecs.as_mut_ptr();
    mh.msg_iovlen = iovecs.len();
    if control_len > 0 {
        mh.msg_control = control.as_mut_ptr().cast();
        mh.msg_controllen = control_len;
    }
    mh.msg_flags = libc::c_int::try_from(msg_flags).unwrap_or(0);
    let Ok(cflags) = libc::c_int::try_from(flags) else {
        return done(CallReturn::err("EINVAL").with_note(format!("flags {flags:#x}")));
    };
    // SAFETY: the iovecs point into `buf` for their lengths, the control
    // buffer is 8-aligned and `msg_controllen` long, the name buffer
    // `msg_namelen` long; all outlive the call.
    let n = unsafe { libc::recvmsg(sock.raw(), &mut mh, cflags) };
    let ret = if n >= 0 {
        CallReturn::ok(i64::try_from(n).unwrap_or(i64::MAX))
    } else {
        let e = errno();
        if e == libc::EAGAIN && flags & (MSG_DONTWAIT | MSG_ERRQUEUE) == 0 {
            return would_block(sock, e);
        }
        errno_return(e)
    };
    let bytes: Vec<u8> = control
        .iter()
        .flat_map(|w| w.to_ne_bytes())
        .take(mh.msg_controllen.min(control_len))
        .collect();
    done(CallReturn {
        msg: Some(Box::new(MsgReturn {
            flags: i64::from(mh.msg_flags),
            cmsgs: msg::parse_control(&bytes),
            origin_realtime_us: None,
        })),
        ..ret
    })
}

/// Gives a returned msghdr the wall-clock time of script time zero (for
/// `SCM_TIMESTAMPING`).
pub(super) fn stamp_origin(r: &mut CallOutcome, clock: &ScriptClock) {
    if let CallOutcome::Done(ret) = r {
        msg::set_origin(ret, clock.origin());
    }
}
