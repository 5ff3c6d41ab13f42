//! TUN devices inside a harness-owned namespace (docs/architecture.md, "Scripts and the
//! runner": targets inject inbound packets and collect outbound packets over
//! TUN).
//!
//! A [`Tun`] can only be made by [`super::Netns::open_tun`], on a thread inside
//! that namespace, so the device always lives in a namespace this process
//! created. It keeps the namespace's name alive until it is dropped. Reads are
//! non-blocking with a bounded wait ([`Tun::recv_timeout`], `poll(2)`), and
//! [`Tun::send`] refuses packets whose addresses are outside the documentation
//! ranges (RFC 5737 192.0.2.0/24 and 198.51.100.0/24, RFC 3849 2001:db8::/32).
//!
//! Devices are never made persistent (`TUNSETPERSIST`): a non-persistent TUN
//! device disappears when its descriptor closes (also at process exit, even
//! after SIGKILL), and its descriptor pins the namespace, so the device can
//! never outlive it. A persistent one would instead be moved into the host's
//! namespace when its namespace is destroyed.
//!
//! The `tun-tap` crate opens plain devices (`tun1`); `tun0` is opened by
//! hand with `IFF_VNET_HDR`, which that crate cannot ask for, as
//! packetdrill opens its device:
//! every packet crosses it behind a virtio-net header ([`super::vnet`]),
//! which [`Tun::send`] adds and the reads strip (completing a partial
//! checksum), so callers see plain IP packets either way. Segmentation and
//! checksum offload stay off until [`Tun::set_offload`] switches them on;
//! until then the kernel segments and checksums as for any device.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::{AsRawFd, FromRawFd, IntoRawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tun_tap::{Iface, Mode};

use super::error::{LiveError, Result};
use super::netns::NsInner;
use super::vnet::{self, VnetHdr};

/// Largest packet a TUN read can return: an IPv6 header and the largest
/// payload its 16-bit length allows (an IPv4 packet is smaller).
pub const MAX_PACKET: usize = 40 + 65_535;

/// The offload packetdrill switches on for its device: checksums and TCP
/// segmentation for IPv4, IPv6 and ECN (`TUNSETOFFLOAD`).
const OFFLOAD_FLAGS: libc::c_uint =
    libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6 | libc::TUN_F_TSO_ECN;

/// A layer-3 TUN device without packet-info header, in a harness-owned namespace.
#[derive(Debug)]
pub struct Tun {
    file: File,
    name: String,
    /// Opened with `IFF_VNET_HDR`: packets cross behind a virtio-net header.
    vnet: bool,
    /// Keeps `/run/netns/<name>` until the device is closed.
    ns: Arc<NsInner>,
}

/// `struct ifreq` as `TUNSETIFF` reads it: the name, then the flags.
#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

impl Tun {
    /// Opens `/dev/net/tun` as `ifname`; must run on a thread inside `ns`.
    /// `vnet`: with a virtio-net header on every packet (`IFF_VNET_HDR`).
    pub(crate) fn open(ns: Arc<NsInner>, ifname: &str, vnet: bool) -> Result<Tun> {
        if ifname.is_empty()
            || ifname.len() > 15
            || !ifname
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(LiveError::Io {
                action: format!("creating TUN device `{ifname}`"),
                source: std::io::Error::new(
                    ErrorKind::InvalidInput,
                    "interface names are 1-15 letters, digits, `_` or `-`",
                ),
            });
        }
        ns.check_current_thread()?;
        let what = || format!("creating TUN device {ifname} in namespace {}", ns.name());
        let not_found = |e: std::io::Error| {
            if e.kind() == ErrorKind::NotFound {
                LiveError::NoTunDevice
            } else {
                LiveError::io(what(), e)
            }
        };
        let file = if vnet {
            let file = open_vnet(ifname).map_err(not_found)?;
            // No offload until asked (see the module documentation).
            set_offload_flags(&file, 0).map_err(|e| LiveError::io(what(), e))?;
            file
        } else {
            open_plain(ifname).map_err(not_found)?
        };
        let name = ifname.to_string();
        Ok(Tun {
            file,
            name,
            vnet,
            ns,
        })
    }

    /// Switches packetdrill's segmentation and checksum offload on or off
    /// (`TUNSETOFFLOAD`): with it on, the kernel hands this device TCP
    /// super-segments and leaves checksums partial, as to a NIC with TSO.
    /// Only a device opened with a virtio-net header can.
    pub fn set_offload(&self, on: bool) -> Result<()> {
        let action = || format!("setting segmentation offload on {}", self.name);
        if !self.vnet {
            return Err(LiveError::io(
                action(),
                std::io::Error::new(ErrorKind::Unsupported, "opened without IFF_VNET_HDR"),
            ));
        }
        let flags = if on { OFFLOAD_FLAGS } else { 0 };
        set_offload_flags(&self.file, flags).map_err(|e| LiveError::io(action(), e))
    }

    /// The open descriptor of the device (non-blocking), e.g. to hand it
    /// to a process started inside the namespace; it stays owned by `self`.
    pub fn raw_fd(&self) -> std::os::unix::io::RawFd {
        self.file.as_raw_fd()
    }

    /// The interface name (`tun0`, `tun1`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace the device lives in.
    pub fn netns_name(&self) -> &str {
        self.ns.name()
    }

    /// Injects one IP packet: the kernel sees it arrive on this device.
    ///
    /// Packets with a parseable IPv4/IPv6 header whose source or destination
    /// lies outside 192.0.2.0/24, 198.51.100.0/24 and 2001:db8::/32 are refused
    /// with [`LiveError::ForbiddenAddress`]. Packets too short or too malformed
    /// to have addresses are passed on (the kernel drops them; fuzzing needs
    /// to be able to send them).
    pub fn send(&self, packet: &[u8]) -> Result<()> {
        self.send_gso(packet, None)
    }

    /// [`Tun::send`], a TCP packet marked as received in `gso_mss`-octet
    /// segments (packetdrill's `--mss`) on a device with a virtio-net
    /// header; `None` or a plain device: as it is.
    pub fn send_gso(&self, packet: &[u8], gso_mss: Option<u16>) -> Result<()> {
        check_addresses(packet)?;
        let hdr = VnetHdr::for_injection(packet, gso_mss).to_bytes();
        let head: &[u8] = if self.vnet { &hdr } else { &[] };
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            match write_two(&self.file, head, packet) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                    self.poll(libc::POLLOUT, Duration::from_millis(10))?;
                }
                Err(e) => {
                    return Err(LiveError::io(
                        format!("writing a packet to {}", self.name()),
                        e,
                    ))
                }
            }
        }
    }

    /// Reads one packet the kernel sent out of this device, waiting at most
    /// `timeout`; `Ok(None)` when nothing arrived in time.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Vec<u8>>> {
        thread_local! {
            // One read buffer per thread, reused: a fresh 64 KiB buffer per
            // packet cost more than the packet (zeroing, and page faults
            // when the allocator hands the memory back each time).
            static SCRATCH: std::cell::RefCell<Vec<u8>> =
                std::cell::RefCell::new(vec![0u8; MAX_PACKET]);
        }
        SCRATCH.with(|scratch| {
            let mut buf = scratch.borrow_mut();
            Ok(self
                .recv_into(&mut buf, timeout)?
                .map(|n| buf[..n].to_vec()))
        })
    }

    /// Reads one packet into `buf` (which should hold [`MAX_PACKET`]
    /// octets), waiting at most `timeout`; its length, or `Ok(None)` when
    /// nothing arrived in time.
    pub fn recv_into(&self, buf: &mut [u8], timeout: Duration) -> Result<Option<usize>> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.read_one(buf) {
                Ok(n) => return Ok(Some(n)),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => {
                    return Err(LiveError::io(
                        format!("reading a packet from {}", self.name()),
                        e,
                    ))
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            self.poll(libc::POLLIN, deadline - now)?;
        }
    }

    /// One read into `buf`; with a virtio-net header, through a scratch
    /// buffer, the header stripped and a partial checksum completed.
    fn read_one(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.vnet {
            return (&self.file).read(buf);
        }
        thread_local! {
            static RAW: std::cell::RefCell<Vec<u8>> =
                std::cell::RefCell::new(vec![0u8; vnet::HDR_LEN + MAX_PACKET]);
        }
        RAW.with(|raw| {
            let mut raw = raw.borrow_mut();
            let n = (&self.file).read(&mut raw)?;
            let Some((hdr, _)) = VnetHdr::split(&raw[..n]) else {
                return Ok(0);
            };
            let packet = &mut raw[vnet::HDR_LEN..n];
            // A checksum the kernel left to the device is finished here;
            // one whose offsets do not fit is left for the decoder.
            let _ = vnet::complete_checksum(&hdr, packet);
            let len = packet.len().min(buf.len());
            buf[..len].copy_from_slice(&packet[..len]);
            Ok(len)
        })
    }

    /// Reads a batch: waits at most `wait` for a first packet, then takes
    /// whatever else is already queued, up to `max` packets in all, without
    /// waiting again; appends them to `out` and returns how many. An event
    /// loop hands the whole batch to its stack before the stack answers, so
    /// a burst costs one round of output rather than one per packet.
    pub fn recv_batch(&self, wait: Duration, max: usize, out: &mut Vec<Vec<u8>>) -> Result<usize> {
        let mut n = 0;
        let mut timeout = wait;
        while n < max {
            match self.recv_timeout(timeout)? {
                Some(p) => out.push(p),
                None => break,
            }
            n += 1;
            timeout = Duration::ZERO;
        }
        Ok(n)
    }

    /// Waits up to `timeout` until a packet is queued for reading (or the
    /// wait is interrupted), without reading it.
    pub fn wait_readable(&self, timeout: Duration) -> Result<()> {
        self.poll(libc::POLLIN, timeout)
    }

    /// Discards every packet already queued; returns how many were dropped.
    pub fn drain(&self) -> Result<usize> {
        let mut n = 0;
        while self.recv_timeout(Duration::ZERO)?.is_some() {
            n += 1;
        }
        Ok(n)
    }

    /// Waits up to `timeout` (rounded up to whole ms) for `events`.
    fn poll(&self, events: libc::c_short, timeout: Duration) -> Result<()> {
        let mut pfd = libc::pollfd {
            fd: self.file.as_raw_fd(),
            events,
            revents: 0,
        };
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        // SAFETY: `pfd` is one live pollfd and the count passed is 1.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != ErrorKind::Interrupted {
                return Err(LiveError::io(format!("polling {}", self.name()), e));
            }
        }
        Ok(())
    }
}

/// A plain TUN device (no packet-info header) opened by the `tun-tap`
/// crate, made non-blocking; its descriptor is taken over as a `File`.
fn open_plain(ifname: &str) -> std::io::Result<File> {
    let iface = Iface::without_packet_info(ifname, Mode::Tun)?;
    // SAFETY: `into_raw_fd` hands over the only owner of an open
    // descriptor, which the `File` now owns alone.
    let file = unsafe { File::from_raw_fd(iface.into_raw_fd()) };
    let fd = file.as_raw_fd();
    // SAFETY: F_GETFL/F_SETFL on the descriptor `file` owns; no memory is
    // passed, and F_SETFL only adds O_NONBLOCK.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(file)
}

/// A TUN device with `IFF_VNET_HDR`, which `tun-tap` cannot ask for:
/// `TUNSETIFF` by hand, non-blocking and close-on-exec.
fn open_vnet(ifname: &str) -> std::io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open("/dev/net/tun")?;
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: (libc::IFF_TUN | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as libc::c_short,
        _pad: [0; 22],
    };
    for (d, s) in req.name.iter_mut().zip(ifname.bytes()) {
        *d = s as libc::c_char;
    }
    // SAFETY: TUNSETIFF reads and writes one `struct ifreq`; `req` is a
    // live, writable value of its layout (name, flags, padding).
    if unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut req) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(file)
}

/// `TUNSETOFFLOAD` with `flags`.
fn set_offload_flags(file: &File, flags: libc::c_uint) -> std::io::Result<()> {
    // SAFETY: TUNSETOFFLOAD takes its flags by value; no memory is passed.
    let rc = unsafe {
        libc::ioctl(
            file.as_raw_fd(),
            libc::TUNSETOFFLOAD,
            flags as libc::c_ulong,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Writes `head` and `packet` as one packet (`writev(2)`).
fn write_two(file: &File, head: &[u8], packet: &[u8]) -> std::io::Result<usize> {
    if head.is_empty() {
        return (&*file).write(packet);
    }
    let iov = [
        libc::iovec {
            iov_base: head.as_ptr() as *mut libc::c_void,
            iov_len: head.len(),
        },
        libc::iovec {
            iov_base: packet.as_ptr() as *mut libc::c_void,
            iov_len: packet.len(),
        },
    ];
    // SAFETY: both iovecs describe live slices that outlive the call;
    // writev only reads them.
    let n = unsafe { libc::writev(file.as_raw_fd(), iov.as_ptr(), 2) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Whether an IPv4 address is in 192.0.2.0/24 or 198.51.100.0/24 (RFC 5737).
fn v4_allowed(a: Ipv4Addr) -> bool {
    let o = a.octets();
    matches!(o, [192, 0, 2, _] | [198, 51, 100, _])
}

/// Whether an IPv6 address is in 2001:db8::/32 (RFC 3849).
fn v6_allowed(a: Ipv6Addr) -> bool {
    let s = a.segments();
    s[0] == 0x2001 && s[1] == 0x0db8
}

/// Refuses packets that name addresses outside the documentation ranges.
pub(crate) fn check_addresses(p: &[u8]) -> Result<()> {
    let forbidden = |src: String, dst: String| Err(LiveError::ForbiddenAddress { src, dst });
    match p.first().map(|b| b >> 4) {
        Some(4) if p.len() >= 20 => {
            let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
            let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
            if v4_allowed(src) && v4_allowed(dst) {
                Ok(())
            } else {
                forbidden(src.to_string(), dst.to_string())
            }
        }
        Some(6) if p.len() >= 40 => {
            let addr = |o: usize| {
                let mut b = [0u8; 16];
                b.copy_from_slice(&p[o..o + 16]);
                Ipv6Addr::from(b)
            };
            let (src, dst) = (addr(8), addr(24));
            if v6_allowed(src) && v6_allowed(dst) {
                Ok(())
            } else {
                forbidden(src.to_string(), dst.to_string())
            }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut p = vec![0u8; 20];
        p[0] = 0x45;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&dst);
        p
    }

    #[test]
    fn documentation_addresses_pass() {
        assert!(check_addresses(&v4([192, 0, 2, 2], [192, 0, 2, 1])).is_ok());
        assert!(check_addresses(&v4([192, 0, 2, 2], [198, 51, 100, 1])).is_ok());
        let mut p6 = vec![0u8; 40];
        p6[0] = 0x60;
        p6[8..10].copy_from_slice(&[0x20, 0x01]);
        p6[10..12].copy_from_slice(&[0x0d, 0xb8]);
        p6[24..26].copy_from_slice(&[0x20, 0x01]);
        p6[26..28].copy_from_slice(&[0x0d, 0xb8]);
        assert!(check_addresses(&p6).is_ok());
        p6[24] = 0xfe;
        assert!(matches!(
            check_addresses(&p6),
            Err(LiveError::ForbiddenAddress { .. })
        ));
    }

    #[test]
    fn other_addresses_are_refused() {
        for (s, d) in [
            ([192, 0, 2, 2], [8, 8, 8, 8]),
            ([10, 0, 0, 1], [192, 0, 2, 1]),
        ] {
            assert!(matches!(
                check_addresses(&v4(s, d)),
                Err(LiveError::ForbiddenAddress { .. })
            ));
        }
    }

    #[test]
    fn unparseable_packets_pass_through() {
        assert!(check_addresses(&[]).is_ok());
        assert!(check_addresses(&[0x45, 0, 0]).is_ok());
        assert!(check_addresses(&[0x00; 30]).is_ok());
    }
}
