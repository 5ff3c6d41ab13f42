//! Backtick commands inside a test namespace, entered directly (issue 10):
//! the shell is forked from the harness and, before it runs, joins the
//! namespace's network namespace and a private mount namespace where
//! `/proc/sys` is read-only except `/proc/sys/net` (the namespace's own
//! entries), `/sys` is the namespace's and `/tmp` is the target's own
//! temporary directory. No `ip netns exec` and no `mount` processes: a
//! command costs what packetdrill's `system()` costs, so a `+0` event after
//! it is not tens of milliseconds late (Linux starts a user timeout from
//! the first probe after the next write, e.g.).

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;

/// What the child needs, prepared before the fork (the child only makes
/// system calls: nothing is allocated after the fork).
struct Mounts {
    tmp: CString,
    slash_tmp: CString,
    proc_sys: CString,
    proc_sys_net: CString,
    sys: CString,
    sysfs: CString,
    root: CString,
}

/// A [`std::process::Command`] for `/bin/sh -c cmd` that enters namespace
/// `netns` (by its `/run/netns` name) as described above.
pub fn command(netns: &str, cmd: &str, tmp: &Path) -> std::io::Result<std::process::Command> {
    let ns = std::fs::File::open(Path::new("/run/netns").join(netns))?;
    let c = |s: &[u8]| {
        CString::new(s).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    };
    let m = Mounts {
        tmp: c(tmp.as_os_str().as_encoded_bytes())?,
        slash_tmp: c(b"/tmp")?,
        proc_sys: c(b"/proc/sys")?,
        proc_sys_net: c(b"/proc/sys/net")?,
        sys: c(b"/sys")?,
        sysfs: c(b"sysfs")?,
        root: c(b"/")?,
    };
    let mut command = std::process::Command::new("/bin/sh");
    command.args(["-c", cmd]);
    // SAFETY: the closure makes only system calls (setns, unshare, mount,
    // umount2) on values prepared before the fork; it allocates nothing.
    unsafe {
        command.pre_exec(move || enter(ns.as_raw_fd(), &m));
    }
    Ok(command)
}

/// In the forked child: the network namespace, then the mounts.
fn enter(ns: std::os::fd::RawFd, m: &Mounts) -> std::io::Result<()> {
    let check = |rc: libc::c_int| {
        if rc < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    let null = std::ptr::null();
    // SAFETY (every call): system calls on NUL-terminated strings that live
    // in `m` for the child's whole life; null pointers where allowed.
    unsafe {
        check(libc::setns(ns, libc::CLONE_NEWNET))?;
        check(libc::unshare(libc::CLONE_NEWNS))?;
        // Nothing mounted here propagates back to the host.
        check(libc::mount(
            null,
            m.root.as_ptr(),
            null,
            libc::MS_REC | libc::MS_SLAVE,
            null.cast(),
        ))?;
        check(libc::mount(
            m.tmp.as_ptr(),
            m.slash_tmp.as_ptr(),
            null,
            libc::MS_BIND,
            null.cast(),
        ))?;
        check(libc::mount(
            m.proc_sys.as_ptr(),
            m.proc_sys.as_ptr(),
            null,
            libc::MS_BIND,
            null.cast(),
        ))?;
        let ro = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY;
        check(libc::mount(
            null,
            m.proc_sys.as_ptr(),
            null,
            ro,
            null.cast(),
        ))?;
        check(libc::mount(
            m.proc_sys_net.as_ptr(),
            m.proc_sys_net.as_ptr(),
            null,
            libc::MS_BIND,
            null.cast(),
        ))?;
        let rw = libc::MS_REMOUNT | libc::MS_BIND;
        check(libc::mount(
            null,
            m.proc_sys_net.as_ptr(),
            null,
            rw,
            null.cast(),
        ))?;
        // The namespace's /sys (its devices), as `ip netns exec` gives.
        if libc::umount2(m.sys.as_ptr(), libc::MNT_DETACH) == 0 {
            check(libc::mount(
                m.sysfs.as_ptr(),
                m.sys.as_ptr(),
                m.sysfs.as_ptr(),
                0,
                null.cast(),
            ))?;
        }
    }
    Ok(())
}
