//! The `linux` worker's descriptor table as the calls in their own modules
//! ([`super::epoll`], [`super::pointers`], [`super::files`]) see it: script-visible numbers
//! for the worker's real descriptors, and libc results as script returns.

use super::target::{CallReturn, Fd};
use std::os::fd::{OwnedFd, RawFd};

/// The worker's descriptors by the number the runner knows them by.
pub trait LiveFds {
    /// The real descriptor behind number `fd`, if open.
    fn raw(&self, fd: Fd) -> Option<RawFd>;
    /// Whether the script left `fd` blocking (the real one never blocks).
    fn blocking(&self, fd: Fd) -> bool;
    /// Takes ownership of a new descriptor; returns its number (the lowest
    /// free one, as a kernel numbers descriptors).
    fn adopt(&mut self, fd: OwnedFd) -> Fd;
    /// The scripted peer's address (where `...` sends).
    fn peer(&self) -> std::net::SocketAddr;
    /// The target's temporary directory, the script's `/tmp`
    /// ([`super::files::TempArea`]).
    fn temp_dir(&self) -> std::path::PathBuf;
}

/// A libc return `rc` as the script sees it: `-1` with the thread's errno
/// when negative, else the value.
pub fn errno_result(rc: i64) -> CallReturn {
    if rc < 0 {
        super::linux::last_err()
    } else {
        CallReturn::ok(rc)
    }
}
