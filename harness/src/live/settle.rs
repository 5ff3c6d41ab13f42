//! Waiting for the kernel's IPv6 address to be usable before the first
//! packet (docs/architecture.md, "The live network").
//!
//! An IPv6 address added with `nodad` is not usable when `ip` returns: the
//! kernel finishes it on its address-configuration work queue, which clears
//! the tentative flag and only then installs the address's local route
//! (RFC 4862 §5.4: an address is not assigned until duplicate address
//! detection is done or skipped). Until that work item runs, a packet to
//! 2001:db8::1 is not local; with forwarding on, the kernel routes it back
//! out of `tun0` — the scripted peer then reads its own SYN as the
//! kernel's answer. On a loaded machine the work item can lag the batch by
//! milliseconds, so [`wait_ipv6_settled`] polls until both the address and
//! its local route are in place.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use super::error::{LiveError, Result};
use super::netns::Netns;

/// Bound on waiting for the address to settle.
pub(crate) const SETTLE_TIMEOUT: Duration = Duration::from_secs(2);

/// `IFA_F_TENTATIVE` (linux/if_addr.h).
const IFA_F_TENTATIVE: u32 = 0x40;

/// The address as `/proc/net` prints it: 32 hex digits, no colons.
fn proc_hex(addr: Ipv6Addr) -> String {
    addr.octets().iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `/proc/net/if_inet6` text lists `addr` on `dev` without the
/// tentative flag. Columns: address, ifindex, prefix length, scope, flags,
/// device name (all hex but the name).
pub(crate) fn address_assigned(if_inet6: &str, addr: Ipv6Addr, dev: &str) -> bool {
    let hex = proc_hex(addr);
    if_inet6.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() == 6
            && f[0] == hex
            && f[5] == dev
            && u32::from_str_radix(f[4], 16).is_ok_and(|flags| flags & IFA_F_TENTATIVE == 0)
    })
}

/// Whether `/proc/net/ipv6_route` text (every table, the local one
/// included) has the /128 route of `addr`. Columns start with destination
/// and its prefix length in hex.
pub(crate) fn local_route(ipv6_route: &str, addr: Ipv6Addr) -> bool {
    let hex = proc_hex(addr);
    ipv6_route.lines().any(|l| {
        let mut f = l.split_whitespace();
        f.next() == Some(hex.as_str()) && f.next() == Some("80")
    })
}

/// Waits (at most [`SETTLE_TIMEOUT`]) until `addr` is assigned to `dev`
/// in `netns` and has its local route, so the kernel answers a packet to
/// it instead of forwarding it.
pub(crate) fn wait_ipv6_settled(netns: &Netns, addr: Ipv6Addr, dev: &str) -> Result<()> {
    netns.run_in(move || {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        let mut pause = Duration::from_micros(100);
        loop {
            let read = |p: &str| {
                std::fs::read_to_string(p).map_err(|e| LiveError::io(format!("reading {p}"), e))
            };
            // /proc/thread-self/net is the calling thread's namespace.
            let addrs = read("/proc/thread-self/net/if_inet6")?;
            let routes = read("/proc/thread-self/net/ipv6_route")?;
            if address_assigned(&addrs, addr, dev) && local_route(&routes, addr) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(LiveError::Timeout {
                    action: format!("the IPv6 address {addr} on {dev} becoming usable"),
                    timeout: SETTLE_TIMEOUT,
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(2));
        }
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    const KERNEL: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

    /// `/proc/net/if_inet6` as the kernel prints it: flags 0x82 (permanent,
    /// nodad) once settled, 0xc2 while still tentative.
    #[test]
    fn tentative_addresses_are_not_assigned() {
        let settled = "20010db8000000000000000000000001 02 40 00 82     tun0\n";
        let tentative = "20010db8000000000000000000000001 02 40 00 c2     tun0\n";
        assert!(address_assigned(settled, KERNEL, "tun0"));
        assert!(!address_assigned(tentative, KERNEL, "tun0"));
        assert!(!address_assigned(settled, KERNEL, "tun1"));
        assert!(!address_assigned("", KERNEL, "tun0"));
    }

    /// The local route is the /128 (0x80) entry; the /64 prefix route of
    /// the same network does not count.
    #[test]
    fn only_the_host_route_is_the_local_route() {
        let prefix = "20010db8000000000000000000000000 40 00000000000000000000000000000000 00 \
                      00000000000000000000000000000000 00000100 00000001 00000000 00000001     tun0\n";
        let local = "20010db8000000000000000000000001 80 00000000000000000000000000000000 00 \
                     00000000000000000000000000000000 00000000 00000002 00000000 80200001     tun0\n";
        assert!(!local_route(prefix, KERNEL));
        assert!(local_route(&format!("{prefix}{local}"), KERNEL));
    }
}
