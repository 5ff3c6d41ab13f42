//! Target `own-tun`: the own stack (`tcp-stack`) driving `tun1` in real
//! time, inside a namespace the harness creates (docs/architecture.md, "Scripts and
//! the runner" — live targets).
//!
//! A script's packets cross the kernel exactly as for the `linux` target:
//!
//! ```text
//!   runner ──inject──▶ tun0 ──kernel forwards──▶ tun1 ──▶ event loop ──▶ own stack
//!   runner ◀──reader── tun0 ◀──kernel forwards── tun1 ◀── event loop ◀── own stack
//! ```
//!
//! - **The stack and its socket calls** are the `own` target's: an
//!   [`OwnTarget`] (the own stack plus the mapping of script socket calls
//!   onto its API) is reused unchanged as the core of this target. Its
//!   virtual clock is simply driven with real time: before every packet,
//!   call or timer the core is advanced to the real µs since the script
//!   started ([`OwnTarget`]'s `advance` fires every timer due by then, at
//!   its exact deadline). No code is duplicated and nothing in `own.rs`
//!   changed, so `own` and `own-tun` can only differ in timing.
//! - **The event loop** is a thread that reads `tun1`, hands each packet to
//!   the core and writes what the stack sends back into `tun1`, under one
//!   lock shared with the runner's socket calls. Between packets it sleeps
//!   until the stack's next timer (the adapter's [`Stack::next_timer`],
//!   the own stack's `Endpoint::poll_timeout`), so an idle script costs no
//!   CPU and a timer fires at its deadline rather than at the next poll;
//!   the runner rings a [`Bell`] after each socket call (which may arm or
//!   move a timer) and at stop, ending the sleep early.
//! - **A reader thread** takes what comes out of `tun0` (the stack's
//!   packets after the kernel forwarded them) and stamps it with the time it
//!   was read, as the `linux` target does; what the stack sent during an
//!   injection or a call is read and stamped when it returns
//!   ([`PeerTap::sync`]), so a reader waiting for a CPU does not make it late.
//! - **Injection is synchronous**, as on `linux` (where the kernel has
//!   processed a packet when the `tun0` write returns): after writing into
//!   `tun0`, [`Target::inject`] waits (at most [`INJECT_WAIT`]) until the
//!   event loop has handed a packet from `tun1` to the stack, so a
//!   non-blocking `read` right after an injected segment sees its data on
//!   all three targets.
//!
//! # Addresses
//!
//! Scripts address the stack as 192.0.2.1 ([`LOCAL_ADDR`]) on `own` and
//! `linux`; in the namespace the own stack is 198.51.100.1
//! ([`OWN_V4`]), reached through `tun1` by forwarding. The choice made here:
//! **the script, the trace and the stack all keep seeing 192.0.2.1, and the
//! wire inside the namespace carries 198.51.100.1.** The target translates
//! at both boundaries — a one-to-one address rewrite (a static NAT):
//!
//! - into `tun0`: destination 192.0.2.1 → 198.51.100.1 (so the kernel
//!   forwards the packet to `tun1` instead of taking it itself);
//! - out of `tun1` into the stack: destination 198.51.100.1 → 192.0.2.1;
//! - from the stack into `tun1`: source 192.0.2.1 → 198.51.100.1;
//! - out of `tun0` to the runner: source 198.51.100.1 → 192.0.2.1.
//!
//! Checksums are updated incrementally (RFC 1624, eqn. 3) for the IPv4
//! header and, when the packet is an unfragmented TCP segment, the TCP
//! checksum (whose pseudo-header covers the addresses, RFC 9293 3.1). An
//! incremental update keeps a *wrong* checksum exactly as wrong, so a
//! script or fuzzer that injects a corrupted segment still reaches the
//! stack corrupted. The one visible trace of the crossing is the TTL, which
//! the kernel's forwarding decrements in each direction (63 instead of 64);
//! nothing compares it.

use super::adapter::Stack;
use super::own::{OwnTarget, LOCAL_ADDR, LOCAL_ADDR6};
use super::peer_tap::{blocked_after, PeerTap, ScriptClock, PROTO_TCP};
use super::target::{
    CallOutcome, Micros, SocketCall, SysctlOutcome, Target, TargetError, TargetTransition,
};
use crate::live::{Bell, LiveNet, OWN_V4, OWN_V6};
use crate::script::IpVersion;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;
use tcp_spec::Profile;

/// The longest the event loop sleeps with no timer armed (a bound only:
/// packets, calls and stop end the sleep at once).
pub const IDLE_WAIT: Duration = Duration::from_millis(100);
/// The sleep when the stack's next timer is already due on its own clock
/// (armed at the instant the core has reached: it fires once the clock
/// moves on), so a timer that never clears cannot make the loop spin.
const DUE_WAIT: Duration = Duration::from_micros(100);
/// Lateness allowed for every event on top of the script's tolerance: the
/// stack's timers fire at their exact deadline on its clock, but the event
/// loop wakes for them a little late (the kernel's timer slack, then a
/// wait for a CPU), and on a busy 2-core machine the loop and the `tun0`
/// reader may each wait for a CPU. Independent of the gap (the stack's
/// clock does not drift); well below the 40 ms of a delayed ACK, so
/// "immediate" and "delayed" stay distinguishable.
pub const SLACK: Duration = Duration::from_millis(10);
/// Bound on waiting, after an injection, for the event loop to hand a
/// packet to the stack. The kernel forwards inside the `tun0` write, so
/// this is only reached when the kernel dropped the packet (e.g. a
/// malformed IPv4 header).
pub const INJECT_WAIT: Duration = Duration::from_millis(20);
/// Bound on one round of timers in the core (a timer that never clears
/// must not hold the event loop).
const MAX_TIMER_STEPS: usize = 10_000;

/// The state shared by the runner's thread and the event loop.
#[derive(Debug)]
struct Core {
    own: OwnTarget,
}

impl Core {
    /// Advances the core's clock to `now`, firing every timer due by then.
    fn sync(&mut self, now: Micros) {
        for _ in 0..MAX_TIMER_STEPS {
            if self.own.now() >= now {
                return;
            }
            // The own target's `advance` cannot fail.
            if self.own.advance(now).is_err() {
                return;
            }
        }
    }

    /// How long the event loop may sleep from script time `now` before the
    /// stack's next timer is due (see [`IDLE_WAIT`], [`DUE_WAIT`]).
    fn sleep_from(&self, now: Micros) -> Duration {
        match self.own.stack().next_timer() {
            None => IDLE_WAIT,
            Some(t) if t <= self.own.now() => DUE_WAIT,
            Some(t) => Duration::from_micros(t.saturating_sub(now)).min(IDLE_WAIT),
        }
    }

    /// Writes everything the stack sent into `tun1`, as 198.51.100.1.
    fn flush(&mut self, net: &LiveNet) -> Result<(), String> {
        for (_, mut p) in self.own.take_outbound() {
            to_wire(&mut p, Field::Src);
            net.tun1()
                .send(&p)
                .map_err(|e| format!("writing the stack's packet to tun1: {e}"))?;
        }
        Ok(())
    }
}

/// The clock and counters both threads share.
#[derive(Debug)]
struct Shared {
    /// Time zero of the script: set by the first thing the runner does.
    clock: ScriptClock,
    /// Packets the event loop has handed from `tun1` to the stack.
    arrived: Mutex<u64>,
    arrived_cv: Condvar,
    /// The event loop's fatal error, if any.
    failed: Mutex<Option<String>>,
    stop: AtomicBool,
    /// Ends the event loop's sleep: after a socket call and at stop.
    bell: Bell,
}

impl Shared {
    fn now(&self) -> Micros {
        self.clock.now()
    }

    fn arrived(&self) -> MutexGuard<'_, u64> {
        self.arrived.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn failure(&self) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn fail(&self, why: String) {
        let mut f = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        f.get_or_insert(why);
    }
}

/// The own stack behind `tun1`, reached through the kernel, on a real
/// clock.
///
/// Dropping it stops its threads and removes the namespace.
#[derive(Debug)]
pub struct OwnTunTarget {
    core: Arc<Mutex<Core>>,
    shared: Arc<Shared>,
    /// The scripted peer's end of `tun0`: the stack's packets, forwarded.
    tap: PeerTap,
    event_loop: Option<JoinHandle<()>>,
    /// The last call would block (or was a `poll` that found nothing).
    blocked: bool,
    /// Last field: dropped after the threads are gone.
    net: Arc<LiveNet>,
}

impl OwnTunTarget {
    /// Creates the namespace, the TUN devices, the event loop on `tun1` and
    /// the `tun0` reader; the stack follows `profile`. Fails with one
    /// sentence (as [`TargetError::Setup`]) when this process cannot run
    /// live targets: not root, no `/dev/net/tun`, no `ip` tool.
    pub fn new(profile: Profile) -> Result<OwnTunTarget, TargetError> {
        crate::live::available().map_err(|e| TargetError::Setup(e.to_string()))?;
        let net = LiveNet::setup().map_err(|e| TargetError::Setup(e.to_string()))?;
        let net = Arc::new(net);
        net.drain().map_err(|e| TargetError::Setup(e.to_string()))?;

        let core = Arc::new(Mutex::new(Core {
            own: OwnTarget::new(profile),
        }));
        let bell = Bell::new().map_err(|e| TargetError::Setup(e.to_string()))?;
        let shared = Arc::new(Shared {
            clock: ScriptClock::default(),
            arrived: Mutex::new(0),
            arrived_cv: Condvar::new(),
            failed: Mutex::new(None),
            stop: AtomicBool::new(false),
            bell,
        });
        let event_loop = {
            let (net, core, shared) = (Arc::clone(&net), Arc::clone(&core), Arc::clone(&shared));
            std::thread::Builder::new()
                .name(format!("{}-tun1", net.netns().name()))
                .spawn(move || run_event_loop(&net, &core, &shared))
                .map_err(|e| TargetError::Setup(format!("cannot start the tun1 event loop: {e}")))?
        };
        // The runner sees the stack as 192.0.2.1 (see "Addresses").
        let to_script = |p: &mut Vec<u8>| {
            to_script(p, Field::Src);
        };
        let tap = match PeerTap::start(&net, shared.clock.clone(), to_script) {
            Ok(t) => t,
            Err(e) => {
                shared.stop.store(true, Ordering::Relaxed);
                shared.bell.ring();
                let _ = event_loop.join();
                return Err(e);
            }
        };
        Ok(OwnTunTarget {
            core,
            shared,
            tap,
            event_loop: Some(event_loop),
            blocked: false,
            net,
        })
    }

    /// The namespace the target runs in.
    pub fn netns_name(&self) -> &str {
        self.net.netns().name()
    }

    /// Packets read from `tun0` that were not IPv4 TCP and so were not
    /// handed to the runner (e.g. ICMP the kernel generated).
    pub fn ignored_packets(&self) -> usize {
        self.tap.ignored()
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check(&self) -> Result<(), TargetError> {
        match self.shared.failure() {
            Some(why) => Err(TargetError::Io(why)),
            None => Ok(()),
        }
    }
}

impl Drop for OwnTunTarget {
    fn drop(&mut self) {
        // Both bounded: the reader checks its stop flag every 20 ms, the
        // event loop wakes at the bell.
        self.tap.stop();
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.bell.ring();
        if let Some(l) = self.event_loop.take() {
            let _ = l.join();
        }
    }
}

impl Target for OwnTunTarget {
    fn name(&self) -> &'static str {
        "own-tun"
    }

    fn is_virtual(&self) -> bool {
        false
    }

    fn now(&self) -> Micros {
        self.shared.now()
    }

    /// The `own` target's addresses: the translation to 198.51.100.1
    /// happens inside the target (see the module documentation).
    fn addresses(&self) -> (SocketAddr, SocketAddr) {
        self.lock().own.addresses()
    }

    /// The core's: an IPv6 script's stack is 2001:db8::1 in the script and
    /// 2001:db8:1::1 on the wire, translated like the IPv4 addresses.
    fn set_ip_version(&mut self, v: IpVersion) -> Result<(), TargetError> {
        self.lock().own.set_ip_version(v)
    }

    /// Sleeps until `until` or until a packet comes out of `tun0`,
    /// whichever comes first ([`PeerTap::wait`]).
    fn advance(&mut self, until: Micros) -> Result<Micros, TargetError> {
        self.check()?;
        self.tap.wait(until, self.blocked)
    }

    /// Writes the packet into `tun0` (as addressed to 198.51.100.1) and
    /// waits until the event loop has handed it to the stack.
    fn inject(&mut self, packet: &[u8]) -> Result<(), TargetError> {
        self.check()?;
        self.shared.clock.origin();
        let mut p = packet.to_vec();
        to_wire(&mut p, Field::Dst);
        let before = *self.shared.arrived();
        self.net
            .tun0()
            .send(&p)
            .map_err(|e| TargetError::Io(e.to_string()))?;
        let guard = self.shared.arrived();
        // A timeout is not an error: the kernel may have dropped the packet.
        let _ = self
            .shared
            .arrived_cv
            .wait_timeout_while(guard, INJECT_WAIT, |n| *n <= before);
        self.check()?;
        // The stack answered before its packet was counted: stamp what the
        // kernel forwarded of that answer now, not when the reader wakes.
        self.tap.sync()
    }

    fn take_outbound(&mut self) -> Vec<(Micros, Vec<u8>)> {
        // A reader failure surfaces at the next `advance`.
        self.tap.take_outbound()
    }

    /// The `own` target's socket-call mapping, at the real time now; what
    /// the call makes the stack send goes into `tun1` at once.
    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, TargetError> {
        self.check()?;
        let now = self.now();
        let net = Arc::clone(&self.net);
        let r = {
            let mut core = self.lock();
            core.sync(now);
            let r = core.own.call(call);
            core.flush(&net).map_err(TargetError::Io)?;
            r
        };
        // The call may have armed or moved a timer: the event loop looks
        // again at the stack's next one.
        self.shared.bell.ring();
        let r = r?;
        // What the call made the stack send is stamped before the next
        // event (see `PeerTap::sync`).
        self.tap.sync()?;
        self.blocked = blocked_after(&r, call);
        Ok(r)
    }

    /// As on `own`: the knobs that map onto the stack's configuration.
    fn sysctl(&mut self, name: &str, value: &str) -> SysctlOutcome {
        self.lock().own.sysctl(name, value)
    }

    fn take_transitions(&mut self) -> Vec<TargetTransition> {
        self.lock().own.take_transitions()
    }

    /// A flat [`SLACK`]: the stack's timers do not drift with the gap.
    fn timing_slack(&self, gap: Duration) -> Duration {
        let _ = gap;
        SLACK
    }
}

/// The event loop: packets from `tun1` into the stack, timers, and the
/// stack's packets back into `tun1`, until `stop`. It sleeps until the
/// earliest of a packet on `tun1`, the stack's next timer and the bell.
fn run_event_loop(net: &LiveNet, core: &Mutex<Core>, shared: &Shared) {
    crate::live::boost_current_thread();
    let lock = || core.lock().unwrap_or_else(|e| e.into_inner());
    let mut batch = Vec::new();
    while !shared.stop.load(Ordering::Relaxed) {
        // No timer runs before the script's time zero.
        let sleep = if shared.clock.started() {
            lock().sleep_from(shared.now())
        } else {
            IDLE_WAIT
        };
        let read = shared.bell.sleep(net.tun1().raw_fd(), sleep).and_then(|_| {
            net.tun1()
                .recv_batch(Duration::ZERO, usize::MAX, &mut batch)
        });
        if let Err(e) = read {
            shared.fail(format!("reading tun1: {e}"));
            return;
        }
        if batch.is_empty() && !shared.clock.started() {
            continue;
        }
        // Fire due timers, then hand over the packets (if any).
        let n = batch.len() as u64;
        {
            let now = shared.now();
            let mut c = lock();
            c.sync(now);
            for mut p in batch.drain(..) {
                to_script(&mut p, Field::Dst);
                // The own target's `inject` cannot fail.
                let _ = c.own.inject(&p);
            }
            if let Err(why) = c.flush(net) {
                shared.fail(why);
                return;
            }
        }
        if n > 0 {
            *shared.arrived() += n;
            shared.arrived_cv.notify_all();
        }
    }
}

/// Which address field to rewrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The source address.
    Src,
    /// The destination address.
    Dst,
}

/// The script's address of the stack and its address on the namespace's
/// wire, per IP version (see "Addresses").
const NAT: [(IpAddr, IpAddr); 2] = [
    (IpAddr::V4(LOCAL_ADDR), IpAddr::V4(OWN_V4)),
    (IpAddr::V6(LOCAL_ADDR6), IpAddr::V6(OWN_V6)),
];

/// Script address → wire address in `field` (IPv4 or IPv6).
pub(crate) fn to_wire(p: &mut [u8], field: Field) {
    for (script, wire) in NAT {
        if rewrite(p, field, script, wire) {
            return;
        }
    }
}

/// Wire address → script address in `field` (IPv4 or IPv6).
pub(crate) fn to_script(p: &mut [u8], field: Field) {
    for (script, wire) in NAT {
        if rewrite(p, field, wire, script) {
            return;
        }
    }
}

/// Rewrites a packet's source or destination address from `from` to `to`
/// (both of the packet's IP version), updating the IPv4 header checksum
/// and, for an unfragmented TCP segment, the TCP checksum incrementally
/// (RFC 1624 eqn. 3; the pseudo-header covers the addresses, RFC 9293 3.1,
/// RFC 8200 8.1), so a wrong checksum stays exactly as wrong. Packets of
/// another version, too short, or not carrying `from` in that field are
/// left alone. Returns whether the packet was changed.
pub fn rewrite(p: &mut [u8], field: Field, from: IpAddr, to: IpAddr) -> bool {
    let Some(&first) = p.first() else {
        return false;
    };
    // The address field's offset, and the TCP header's for an unfragmented
    // TCP segment.
    let (at, tcp) = match (first >> 4, from, to) {
        (4, IpAddr::V4(_), IpAddr::V4(_)) => {
            let ihl = usize::from(first & 0x0f) * 4;
            if ihl < 20 || p.len() < ihl {
                return false;
            }
            let fragment = u16::from_be_bytes([p[6], p[7]]) & 0x1fff != 0;
            let tcp = (p[9] == PROTO_TCP && !fragment).then_some(ihl);
            (if field == Field::Src { 12 } else { 16 }, tcp)
        }
        (6, IpAddr::V6(_), IpAddr::V6(_)) if p.len() >= 40 => {
            let tcp = (p[6] == PROTO_TCP).then_some(40);
            (if field == Field::Src { 8 } else { 24 }, tcp)
        }
        _ => return false,
    };
    let (old, new) = (octets(from), octets(to));
    if p[at..at + old.len()] != old[..] {
        return false;
    }
    p[at..at + new.len()].copy_from_slice(&new);
    if first >> 4 == 4 {
        update_checksum(p, 10, &old, &new);
    }
    if let Some(t) = tcp.filter(|t| p.len() >= t + 18) {
        update_checksum(p, t + 16, &old, &new);
    }
    true
}

fn octets(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') for the 16-bit words of `old`
/// replaced by those of `new`, on the checksum at `p[at..at + 2]`.
fn update_checksum(p: &mut [u8], at: usize, old: &[u8], new: &[u8]) {
    let Some(field) = p.get_mut(at..at + 2) else {
        return;
    };
    let hc = u16::from_be_bytes([field[0], field[1]]);
    let mut sum = u64::from(!hc);
    for w in old.chunks_exact(2) {
        sum += u64::from(!u16::from_be_bytes([w[0], w[1]]));
    }
    for w in new.chunks_exact(2) {
        sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    let folded = !tcp_stack::checksum::fold(sum);
    field.copy_from_slice(&folded.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::own::{REMOTE_ADDR, REMOTE_ADDR6};
    use crate::run::wire::{build, Outgoing};
    use crate::script::{TcpFlags, TcpOpt};
    use std::net::Ipv4Addr;

    fn packet(src: impl Into<IpAddr>, dst: impl Into<IpAddr>, seq: u32, len: u32) -> Vec<u8> {
        let opts = [TcpOpt::Mss(1460)];
        build(&Outgoing {
            src: src.into(),
            dst: dst.into(),
            src_port: 40000,
            dst_port: 8080,
            seq,
            ack: seq.rotate_left(7),
            flags: TcpFlags {
                syn: true,
                ..TcpFlags::default()
            },
            win: 65535,
            urg: 0,
            options: &opts,
            payload_len: len,
            ecn: 0,
        })
        .expect("a small packet builds")
    }

    #[test]
    fn rewrite_matches_a_fresh_build() {
        for (i, len) in [0u32, 1, 2, 3, 100, 1000].into_iter().enumerate() {
            let seq = 0x1234_5678u32.wrapping_mul(i as u32 + 1);
            for (local, remote, own) in [
                (
                    IpAddr::from(LOCAL_ADDR),
                    IpAddr::from(REMOTE_ADDR),
                    IpAddr::from(OWN_V4),
                ),
                (LOCAL_ADDR6.into(), REMOTE_ADDR6.into(), OWN_V6.into()),
            ] {
                let mut p = packet(remote, local, seq, len);
                to_wire(&mut p, Field::Dst);
                assert_eq!(p, packet(remote, own, seq, len), "len {len}");
                to_script(&mut p, Field::Dst);
                assert_eq!(p, packet(remote, local, seq, len));
                let mut q = packet(local, remote, seq, len);
                to_wire(&mut q, Field::Src);
                assert_eq!(q, packet(own, remote, seq, len));
            }
        }
    }

    /// The ones'-complement sum over the TCP pseudo-header and segment:
    /// 0xffff for a correct checksum, anything else is the error.
    fn tcp_residual(p: &[u8]) -> u16 {
        use tcp_stack::checksum::{add, fold, pseudo_header};
        let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
        let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
        let sum = pseudo_header(src.into(), dst.into(), p.len() - 20);
        fold(add(sum, &p[20..]))
    }

    #[test]
    fn a_wrong_checksum_stays_exactly_as_wrong() {
        let good = packet(REMOTE_ADDR, LOCAL_ADDR, 7, 10);
        assert_eq!(tcp_residual(&good), 0xffff);
        let mut p = good.clone();
        p[37] ^= 0x55;
        let before = tcp_residual(&p);
        assert_ne!(before, 0xffff);
        assert!(rewrite(
            &mut p,
            Field::Dst,
            LOCAL_ADDR.into(),
            OWN_V4.into()
        ));
        assert_eq!(tcp_residual(&p), before, "the same error after the rewrite");
    }

    #[test]
    fn other_packets_are_left_alone() {
        let mut p = packet(REMOTE_ADDR, LOCAL_ADDR, 1, 0);
        let orig = p.clone();
        assert!(!rewrite(
            &mut p,
            Field::Src,
            LOCAL_ADDR.into(),
            OWN_V4.into()
        ));
        assert_eq!(p, orig);
        // Another IP version than the addresses: untouched.
        assert!(!rewrite(
            &mut p,
            Field::Dst,
            LOCAL_ADDR6.into(),
            OWN_V6.into()
        ));
        assert_eq!(p, orig);
        for mut junk in [
            vec![],
            vec![0x45],
            vec![0x60; 40],
            vec![0x4f; 30],
            vec![0x60; 39],
        ] {
            let before = junk.clone();
            to_wire(&mut junk, Field::Dst);
            to_script(&mut junk, Field::Src);
            assert_eq!(junk, before);
        }
    }
}
