//! Live targets' network plumbing: namespaces and TUN devices (docs/architecture.md,
//! "Scripts and the runner" — live targets — and "Bad input").
//!
//! Live targets run only inside a network namespace that the harness creates
//! and removes itself; nothing ever leaves it. Inside, [`LiveNet::setup`]
//! builds the fixed topology:
//!
//! ```text
//!   scripted peer 192.0.2.2 / 2001:db8::2
//!        │ (packets injected into / read from the tun0 descriptor)
//!      tun0 ── kernel under test 192.0.2.1/24, 2001:db8::1/64
//!        │      ip_forward=1, IPv6 forwarding=1
//!      tun1 ── route to the own stack 198.51.100.1/32, 2001:db8:1::1/128
//!        │ (packets read from / written to the tun1 descriptor)
//!   own stack 198.51.100.1 / 2001:db8:1::1
//! ```
//!
//! IPv6 autoconfiguration noise is off on both devices (no link-local address,
//! no router solicitations, no DAD, no RA processing), so the only packets on
//! the devices are the ones a test causes. Set-up returns only once the
//! kernel's IPv6 address is assigned and has its local route (the kernel
//! finishes a new address asynchronously; see `settle.rs`).
//!
//! Entry points fail with one clear sentence when the environment cannot run
//! live targets (not root, no `/dev/net/tun`, no `ip`): see [`available`].

mod bell;
mod cleanup;
mod error;
mod ip;
mod netns;
mod settle;
mod setup_gate;
mod sysctl;
pub mod testing;
mod tun;
pub mod vnet;

use std::net::{Ipv4Addr, Ipv6Addr};

pub use bell::{Bell, Woken};
pub(crate) use cleanup::temp_area;
pub(crate) use cleanup::{kill_group, register_group};
pub use cleanup::{list_namespaces, reap_stale, NAME_PREFIX};
pub use error::{LiveError, Result};
pub use ip::{sanitise_process_path, sanitised_path};
pub use netns::{Netns, NsThread};
pub use setup_gate::set_rank as set_setup_rank;
pub(crate) use tun::check_addresses;
pub use tun::Tun;

/// The scripted peer (RFC 5737 TEST-NET-1), reached through `tun0`.
pub const PEER_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// The kernel under test, the address of `tun0`.
pub const KERNEL_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The own stack (RFC 5737 TEST-NET-2), routed through `tun1`.
pub const OWN_V4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// The scripted peer over IPv6 (RFC 3849), reached through `tun0`.
pub const PEER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
/// The kernel under test over IPv6, the address of `tun0`.
pub const KERNEL_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
/// The own stack over IPv6, routed through `tun1`.
pub const OWN_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);

/// Name of the kernel-side device.
pub const TUN_KERNEL: &str = "tun0";
/// Name of the own-stack device.
pub const TUN_OWN: &str = "tun1";

/// CAP_NET_ADMIN and CAP_SYS_ADMIN bit numbers (linux/capability.h).
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;

/// Checks that this process can run live targets: it has CAP_NET_ADMIN and
/// CAP_SYS_ADMIN (root has both), `/dev/net/tun` exists and opens, and the
/// iproute2 `ip` tool is installed. Cheap enough to call before every
/// namespace; [`Netns::create`] does.
pub fn available() -> Result<()> {
    if !has_capabilities()? {
        return Err(LiveError::NotPrivileged);
    }
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(LiveError::NoTunDevice),
        Err(e) => return Err(LiveError::TunUnusable(e)),
    }
    ip::ip_path()?;
    Ok(())
}

/// Checks that `name = value` is a namespace-local sysctl this harness
/// would write (the rules of [`Netns::apply_sysctl`]) without writing it:
/// targets that hand sysctls to a foreign process ask first.
pub fn check_sysctl(name: &str, value: &str) -> Result<()> {
    sysctl::check(name, value).map(|_| ())
}

/// Nice value of the threads that keep a live script's time (the runner,
/// the `tun0` reader, the socket worker, the own stack's event loop).
const LIVE_NICE: libc::c_int = -10;

/// Raises the calling thread's CPU weight (nice [`LIVE_NICE`]) so that
/// on a machine busy with other work it wakes on time for the script's
/// next event: these threads sleep almost always, and lateness is what
/// fails a live script. Without the privilege (CAP_SYS_NICE) the thread
/// keeps its priority; nothing else changes.
pub fn boost_current_thread() {
    set_thread_nice(LIVE_NICE);
}

/// Nice value of in-memory work beside live scripts (`check`'s smoltcp
/// diffs): it yields to everything else on the machine.
const BACKGROUND_NICE: libc::c_int = 10;

/// Lowers the calling thread's CPU weight (nice [`BACKGROUND_NICE`]) for
/// work that runs beside live scripts and has no timing of its own.
pub fn lower_current_thread() {
    set_thread_nice(BACKGROUND_NICE);
}

/// Sets the calling thread's nice value (threads and processes it starts
/// inherit it); failures are ignored (see [`boost_current_thread`]).
fn set_thread_nice(nice: libc::c_int) {
    // SAFETY: gettid has no preconditions; setpriority changes only the
    // nice value of the thread it names (the calling one).
    unsafe {
        let tid = libc::gettid();
        let _ = libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice);
    }
}

/// Held while a namespace is set up: scripts already running beside it
/// (`--jobs`) see one set-up's `ip` processes at a time, not a burst; the
/// earliest job in the schedule goes first (`setup_gate.rs`).
static SETUP: setup_gate::Gate = setup_gate::Gate::new();

/// Reads the effective capability set from `/proc/self/status`.
fn has_capabilities() -> Result<bool> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| LiveError::io("reading /proc/self/status", e))?;
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok());
    Ok(match eff {
        Some(bits) => bits & (1 << CAP_NET_ADMIN) != 0 && bits & (1 << CAP_SYS_ADMIN) != 0,
        None => {
            // SAFETY: geteuid has no preconditions and cannot fail.
            let euid = unsafe { libc::geteuid() };
            euid == 0
        }
    })
}

/// Sysctls applied before the devices exist, so the devices inherit them from
/// `default` (IPv6 per-device settings are copied from `default` at creation).
const BASELINE_SYSCTLS: [(&str, &str); 16] = [
    ("net.ipv4.ip_forward", "1"),
    ("net.ipv4.conf.all.rp_filter", "0"),
    ("net.ipv4.conf.default.rp_filter", "0"),
    ("net.ipv4.conf.all.send_redirects", "0"),
    ("net.ipv4.conf.default.send_redirects", "0"),
    ("net.ipv6.conf.all.accept_ra", "0"),
    ("net.ipv6.conf.default.accept_ra", "0"),
    ("net.ipv6.conf.all.autoconf", "0"),
    ("net.ipv6.conf.default.autoconf", "0"),
    ("net.ipv6.conf.all.dad_transmits", "0"),
    ("net.ipv6.conf.default.dad_transmits", "0"),
    ("net.ipv6.conf.all.accept_dad", "0"),
    ("net.ipv6.conf.default.accept_dad", "0"),
    ("net.ipv6.conf.all.router_solicitations", "0"),
    ("net.ipv6.conf.default.router_solicitations", "0"),
    // 1 = IN6_ADDR_GEN_MODE_NONE: no link-local address, hence no MLD for it.
    ("net.ipv6.conf.default.addr_gen_mode", "1"),
];

/// Address and route configuration, fed to `ip -n <ns> -batch -`. Multicast
/// is switched off on the TUN devices before IPv6 forwarding is enabled, so
/// the kernel joins no all-routers group and sends no MLD reports.
const IP_BATCH: &str = "\
link set lo up
addr add 192.0.2.1/24 dev tun0
addr add 2001:db8::1/64 dev tun0 nodad
link set tun0 multicast off up
link set tun1 multicast off up
route add 198.51.100.1/32 dev tun1
route add 2001:db8:1::1/128 dev tun1
";

/// A configured namespace with the kernel-side and own-stack TUN devices.
///
/// Dropping it closes both devices and removes the namespace.
#[derive(Debug)]
pub struct LiveNet {
    // Field order is drop order: devices first, then the namespace.
    tun0: Tun,
    tun1: Tun,
    netns: Netns,
}

impl LiveNet {
    /// Creates a fresh namespace and sets up the topology described in the
    /// module documentation.
    pub fn setup() -> Result<LiveNet> {
        // Set-up (and the `ip` processes it starts) runs at normal
        // priority, one at a time: it must not delay running scripts.
        set_thread_nice(0);
        let asked = std::time::Instant::now();
        let _one_at_a_time = SETUP.enter();
        let got = std::time::Instant::now();
        let net = LiveNet::setup_in(Netns::create()?);
        if crate::run::phases::enabled() {
            let ms = crate::run::phases::ms;
            eprintln!(
                "timing: set-up waited {:.1} ms, took {:.1} ms",
                ms(got - asked),
                ms(got.elapsed())
            );
        }
        net
    }

    /// Sets up the topology in `netns` (which must not have TUN devices named
    /// `tun0`/`tun1` yet).
    pub fn setup_in(netns: Netns) -> Result<LiveNet> {
        netns.apply_sysctls(&BASELINE_SYSCTLS)?;
        let tun0 = netns.open_tun_vnet(TUN_KERNEL)?;
        let tun1 = netns.open_tun(TUN_OWN)?;
        ip::run_ip(&["-n", netns.name(), "-batch", "-"], Some(IP_BATCH))?;
        netns.apply_sysctl("net.ipv6.conf.all.forwarding", "1")?;
        // The IPv6 address is finished asynchronously: until then a packet
        // to it would be forwarded back out of tun0 (see `settle`).
        settle::wait_ipv6_settled(&netns, KERNEL_V6, TUN_KERNEL)?;
        Ok(LiveNet { tun0, tun1, netns })
    }

    /// The namespace.
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// `tun0`: the scripted peer's side of the kernel under test.
    pub fn tun0(&self) -> &Tun {
        &self.tun0
    }

    /// `tun1`: the own stack's device.
    pub fn tun1(&self) -> &Tun {
        &self.tun1
    }

    /// Sets a namespace-local sysctl (see [`Netns::apply_sysctl`]).
    pub fn apply_sysctl(&self, name: &str, value: &str) -> Result<()> {
        self.netns.apply_sysctl(name, value)
    }

    /// Runs `f` on a thread inside the namespace (see [`Netns::run_in`]).
    pub fn run_in<F, R>(&self, f: F) -> Result<R>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        self.netns.run_in(f)
    }

    /// Drops packets already queued on both devices; returns how many.
    pub fn drain(&self) -> Result<usize> {
        Ok(self.tun0.drain()? + self.tun1.drain()?)
    }
}
