//! A doorbell for a thread that sleeps on a TUN device: an `eventfd(2)`
//! another thread rings to end the sleep early, and the sleep itself,
//! `ppoll(2)` on the device and the bell with a timeout in nanoseconds
//! (`poll(2)` rounds up to whole milliseconds, too coarse for a timer
//! deadline on a real clock).
//!
//! `own-tun`'s event loop sleeps until the earlier of the own stack's next
//! timer, a packet on `tun1` and a ring from the runner's thread after a
//! socket call (which may arm or move a timer) or at stop.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::error::{LiveError, Result};

/// A level-triggered wake-up: rung by any thread, cleared by the sleeper.
#[derive(Debug)]
pub struct Bell {
    fd: OwnedFd,
}

/// What ended a [`Bell::sleep`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Woken {
    /// The watched descriptor is readable.
    pub readable: bool,
    /// The bell was rung (and is now cleared).
    pub rung: bool,
}

impl Bell {
    /// A new, silent bell (a non-blocking, close-on-exec eventfd).
    pub fn new() -> Result<Bell> {
        // SAFETY: eventfd takes no pointers; the flags are valid.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(LiveError::io(
                "creating an eventfd",
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: `fd` was just returned by eventfd and is owned by no one else.
        Ok(Bell {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Rings: the current or next [`Bell::sleep`] returns at once.
    pub fn ring(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our eventfd. A full
        // counter (EAGAIN) already means "rung", so the result is ignored.
        let _ = unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
    }

    /// Sleeps until `watched` is readable, the bell rings or `timeout`
    /// passes (to the nanosecond, as the kernel's timers allow); clears the
    /// bell if it rang. An interrupted sleep returns as a timeout would.
    pub fn sleep(&self, watched: RawFd, timeout: Duration) -> Result<Woken> {
        let mut fds = [
            libc::pollfd {
                fd: watched,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let ts = libc::timespec {
            tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: `fds` is an array of two live pollfds and the count is 2;
        // `ts` is a live timespec; a null signal mask keeps the thread's.
        let rc = unsafe { libc::ppoll(fds.as_mut_ptr(), 2, &ts, std::ptr::null()) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                return Ok(Woken::default());
            }
            return Err(LiveError::io("waiting on a TUN device", e));
        }
        let woken = Woken {
            readable: fds[0].revents != 0,
            rung: fds[1].revents & libc::POLLIN != 0,
        };
        if woken.rung {
            let mut count: u64 = 0;
            // SAFETY: reads 8 bytes into a live u64 from our eventfd, which
            // resets its counter; EAGAIN (another sleeper cleared it) is fine.
            let _ = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    (&mut count as *mut u64).cast(),
                    std::mem::size_of::<u64>(),
                )
            };
        }
        Ok(woken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A descriptor that never becomes readable: the read end of a pipe
    /// whose write end stays open and silent.
    fn silent() -> (OwnedFd, OwnedFd) {
        let mut p = [0; 2];
        // SAFETY: `p` has room for the two descriptors pipe writes.
        assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
        // SAFETY: both were just created by pipe and are owned only here.
        unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) }
    }

    #[test]
    fn a_ring_ends_the_sleep_and_is_cleared() {
        let bell = Arc::new(Bell::new().unwrap());
        let (r, _w) = silent();
        // Rung before the sleep: it returns at once, then the bell is quiet.
        bell.ring();
        bell.ring();
        let w = bell.sleep(r.as_raw_fd(), Duration::from_secs(30)).unwrap();
        assert_eq!(
            w,
            Woken {
                readable: false,
                rung: true
            }
        );
        let w = bell.sleep(r.as_raw_fd(), Duration::ZERO).unwrap();
        assert_eq!(w, Woken::default(), "cleared by the sleep that saw it");
        // Rung from another thread during a long sleep.
        let other = Arc::clone(&bell);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            other.ring();
        });
        let w = bell.sleep(r.as_raw_fd(), Duration::from_secs(30)).unwrap();
        t.join().unwrap();
        assert!(w.rung && !w.readable);
    }

    #[test]
    fn a_readable_descriptor_ends_the_sleep() {
        let bell = Bell::new().unwrap();
        let (r, w) = silent();
        // SAFETY: writes one byte from a live buffer to the pipe.
        assert_eq!(
            unsafe { libc::write(w.as_raw_fd(), b"x".as_ptr().cast(), 1) },
            1
        );
        let woken = bell.sleep(r.as_raw_fd(), Duration::from_secs(30)).unwrap();
        assert!(woken.readable && !woken.rung);
    }

    #[test]
    fn a_timeout_ends_the_sleep_with_nothing() {
        let bell = Bell::new().unwrap();
        let (r, _w) = silent();
        let w = bell
            .sleep(r.as_raw_fd(), Duration::from_micros(300))
            .unwrap();
        assert_eq!(w, Woken::default());
    }
}
