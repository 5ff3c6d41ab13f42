//! Real blocking writes on the `linux` target (issue 10), as packetdrill
//! makes them: a `write`/`send`/`sendto` on a socket the script keeps
//! blocking runs as one blocking system call on a helper thread, so the
//! kernel sees what it sees under packetdrill — a writer waiting inside
//! `sendmsg` (`sk_write_pending`), which makes Linux delay the ACK of a
//! SYN-ACK (`tcp_rcv_synsent_state_process`) and a fast-open `sendto`
//! wait for the handshake before sending the rest.
//!
//! The worker stays free: it starts the call, waits [`FIRST_WAIT`] for a
//! quick return and otherwise answers [`CallOutcome::WouldBlock`]; the
//! runner makes the same call again while time passes, and the answer is
//! whatever the helper has returned by then (packetdrill's blocking-call
//! semantics: the line's time is the call's start, `...` its end).
//!
//! The helper works on a duplicate of the descriptor and makes the shared
//! open file blocking for the call only (the worker's descriptors are
//! otherwise non-blocking). A call still blocked when its socket goes
//! (the target is dropped) is woken by `shutdown`, so no thread is left
//! behind in the kernel.

use super::live_fds::errno_result;
use super::target::{CallOutcome, CallReturn};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

/// How long the worker waits for a blocking call to return at once.
const FIRST_WAIT: Duration = Duration::from_millis(2);

/// A blocking write under way on a helper thread.
#[derive(Debug)]
pub struct InFlight {
    /// The call's length: a retry of the same call asks for this one.
    len: usize,
    done: Receiver<CallReturn>,
    /// The helper's descriptor, to wake it with `shutdown` if it must end.
    fd: Arc<OwnedFd>,
    /// The helper's answer has been taken.
    answered: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // Still blocked (its answer neither taken nor sent): wake it.
        if !self.answered && matches!(self.done.try_recv(), Err(mpsc::TryRecvError::Empty)) {
            // SAFETY: plain syscall on a descriptor this value co-owns.
            unsafe { libc::shutdown(self.fd.as_raw_fd(), libc::SHUT_RDWR) };
        }
    }
}

/// A write of `len` octets of `data(i)` with `flags` on socket `raw`, to
/// `to` when given, as one blocking call; `pending` holds it while it
/// blocks. Made again (the runner's retry), it answers from the helper.
pub fn send(
    pending: &mut Option<InFlight>,
    raw: RawFd,
    iov: &[usize],
    flags: libc::c_int,
    to: Option<SocketAddr>,
) -> CallOutcome {
    let len: usize = iov.iter().sum();
    if let Some(p) = pending.take() {
        return poll(pending, p, len);
    }
    // SAFETY: duplicates a descriptor the worker owns; checked below.
    let dup = unsafe { libc::fcntl(raw, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return CallOutcome::Done(errno_result(-1));
    }
    // SAFETY: `dup` is a fresh descriptor nothing else owns.
    let fd = Arc::new(unsafe { OwnedFd::from_raw_fd(dup) });
    let (tx, done) = mpsc::channel();
    let helper_fd = Arc::clone(&fd);
    let iov = iov.to_vec();
    let spawned = std::thread::Builder::new()
        .name("tcpconform-blocking".into())
        .spawn(move || {
            let _ = tx.send(blocking_send(helper_fd.as_raw_fd(), &iov, flags, to));
        });
    if let Err(e) = spawned {
        return CallOutcome::Done(
            CallReturn::err("EAGAIN").with_note(format!("no helper thread: {e}")),
        );
    }
    let p = InFlight {
        len,
        done,
        fd,
        answered: false,
    };
    poll(pending, p, len)
}

/// The helper's answer if it has one (waiting [`FIRST_WAIT`]), else the
/// call stays pending.
fn poll(pending: &mut Option<InFlight>, mut p: InFlight, len: usize) -> CallOutcome {
    if p.len != len {
        *pending = Some(p);
        return CallOutcome::WouldBlock;
    }
    match p.done.recv_timeout(FIRST_WAIT) {
        Ok(r) => {
            p.answered = true;
            CallOutcome::Done(r)
        }
        Err(RecvTimeoutError::Timeout) => {
            *pending = Some(p);
            CallOutcome::WouldBlock
        }
        Err(RecvTimeoutError::Disconnected) => CallOutcome::Done(
            CallReturn::err("EINTR").with_note("the blocking call's helper ended"),
        ),
    }
}

/// One blocking `sendmsg` of the whole of `iov` on `fd` (the open file
/// made blocking for it).
fn blocking_send(
    fd: RawFd,
    iov: &[usize],
    flags: libc::c_int,
    to: Option<SocketAddr>,
) -> CallReturn {
    // SAFETY (both fcntl calls): flags of a descriptor this thread holds.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    unsafe { libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK) };
    let addr = to.map(super::linux::RawAddr::new);
    let n = super::linux::msg_io::send_upto(
        fd,
        iov,
        0,
        usize::MAX,
        flags | libc::MSG_NOSIGNAL,
        addr.as_ref(),
    );
    let r = errno_result(n as i64);
    // SAFETY: as above; the worker's descriptors are non-blocking again.
    unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) };
    r
}
