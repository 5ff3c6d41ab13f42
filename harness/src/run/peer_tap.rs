//! The scripted peer's end of `tun0` on a real clock, shared by the live
//! targets `linux` and `own-tun`: a reader thread takes every packet that
//! comes out of `tun0` and stamps it with the time it was read (so the
//! stamps do not depend on when the runner next looks), and the runner's
//! thread files the IPv4 TCP ones as the target's outbound packets.
//!
//! A reader thread that waits for a CPU stamps late: a packet the kernel
//! sent while processing an injected segment could then carry a time after
//! the script's next call and be taken for that call's answer (the
//! immediate ACK of `ipv6/passive_data_close.pkt` stamped after the
//! `write` it preceded). So after every injection and call the runner's
//! thread reads what is already queued itself ([`PeerTap::sync`]), stamping
//! it no later than the moment the operation returned; a lock keeps the
//! two readers in the order the kernel queued the packets.

use super::target::{CallOutcome, Micros, OptValue, SocketCall, TargetError};
use crate::live::LiveNet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the reader thread waits on `tun0` before checking for stop.
const READ_SLICE: Duration = Duration::from_millis(20);
/// While a call is blocked, [`PeerTap::wait`] returns at least this often,
/// so the runner retries the call promptly when a timer (not a packet)
/// makes it complete.
pub const BLOCKED_SLICE: Duration = Duration::from_millis(1);
/// `IPPROTO_TCP` in the IPv4 protocol field.
pub const PROTO_TCP: u8 = 6;

/// Whether a live target's runner is waiting on a call after `outcome`: it
/// would block, or it was a `poll` that found nothing. [`PeerTap::wait`]
/// then returns every [`BLOCKED_SLICE`] so the call is made again soon.
pub fn blocked_after(outcome: &CallOutcome, call: &SocketCall) -> bool {
    match (outcome, call) {
        (CallOutcome::WouldBlock, _) => true,
        (CallOutcome::Done(ret), c) if c.wait_ms().is_some() => ret.ret == Ok(0),
        _ => false,
    }
}

/// The longest a `close` may now linger, in seconds, if `call` sets
/// `SO_LINGER` on (capped at an hour): a live target's reply timeout
/// grows by it, since such a close blocks that long.
pub fn linger_secs(call: &SocketCall) -> Option<u64> {
    match call {
        SocketCall::SetSockOpt {
            value: OptValue::Linger { onoff: true, secs },
            ..
        } => Some(u64::try_from(*secs).unwrap_or(0).min(3600)),
        _ => None,
    }
}

/// What the reader hands over: a packet and when it was read.
type Packet = Result<(Instant, Vec<u8>), String>;

/// A live script's time zero, set by the first thing that reads it, so the
/// namespace set-up (tens of ms) does not count. Cloned handles share it.
#[derive(Debug, Clone, Default)]
pub struct ScriptClock(Arc<OnceLock<Instant>>);

impl ScriptClock {
    /// Time zero, fixing it now if nothing has yet.
    pub fn origin(&self) -> Instant {
        *self.0.get_or_init(Instant::now)
    }

    /// Whether time zero is fixed (the script has started).
    pub fn started(&self) -> bool {
        self.0.get().is_some()
    }

    /// µs from time zero to `at` (0 before it).
    pub fn micros_at(&self, at: Instant) -> Micros {
        let d = at.saturating_duration_since(self.origin());
        u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
    }

    /// µs since time zero.
    pub fn now(&self) -> Micros {
        self.micros_at(Instant::now())
    }
}

/// The reader of `tun0` and the packets it has filed.
#[derive(Debug)]
pub struct PeerTap {
    clock: ScriptClock,
    /// Applied to every filed packet (e.g. `own-tun`'s address rewrite).
    fix: fn(&mut Vec<u8>),
    out: Vec<(Micros, Vec<u8>)>,
    ignored: usize,
    packets: Receiver<Packet>,
    reader: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    broken: Option<String>,
    net: Arc<LiveNet>,
    /// Held while reading `tun0` and handing the packets over, by the
    /// reader thread and by [`PeerTap::sync`].
    gate: Arc<Mutex<()>>,
}

impl PeerTap {
    /// Starts the reader thread on `net`'s `tun0`.
    pub fn start(
        net: &Arc<LiveNet>,
        clock: ScriptClock,
        fix: fn(&mut Vec<u8>),
    ) -> Result<PeerTap, TargetError> {
        // The runner's thread (this one) and the reader keep the script's
        // time: they wake first on a busy machine.
        crate::live::boost_current_thread();
        let stop = Arc::new(AtomicBool::new(false));
        let gate = Arc::new(Mutex::new(()));
        let (tx, packets) = mpsc::channel();
        let reader = {
            let (net, stop, gate) = (Arc::clone(net), Arc::clone(&stop), Arc::clone(&gate));
            std::thread::Builder::new()
                .name(format!("{}-tun0", net.netns().name()))
                .spawn(move || read_tun0(&net, &stop, &gate, &tx))
                .map_err(|e| TargetError::Setup(format!("cannot start the tun0 reader: {e}")))?
        };
        Ok(PeerTap {
            clock,
            fix,
            out: Vec::new(),
            ignored: 0,
            packets,
            reader: Some(reader),
            stop,
            broken: None,
            net: Arc::clone(net),
            gate,
        })
    }

    /// Packets read from `tun0` that were neither TCP nor ICMP and so were
    /// not handed to the runner (e.g. IPv6 neighbour discovery).
    pub fn ignored(&self) -> usize {
        self.ignored
    }

    /// The reader's failure, once it has failed: the target is unusable.
    pub fn broken(&self) -> Option<&str> {
        self.broken.as_deref()
    }

    /// Sleeps until `until` (µs on the script clock) or until a packet comes
    /// out of `tun0`, whichever comes first — at most [`BLOCKED_SLICE`]
    /// when `blocked`. Real time cannot stop exactly at `until`: the
    /// returned time may be a little past it.
    pub fn wait(&mut self, until: Micros, blocked: bool) -> Result<Micros, TargetError> {
        if let Some(why) = &self.broken {
            return Err(TargetError::Io(why.clone()));
        }
        let now = self.clock.now();
        if until <= now {
            return Ok(now);
        }
        let mut wait = Duration::from_micros(until - now);
        if blocked {
            wait = wait.min(BLOCKED_SLICE);
        }
        match self.packets.recv_timeout(wait) {
            Ok(item) => {
                self.file(item)?;
                self.collect()?;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Err(TargetError::Io("the tun0 reader stopped".into()))
            }
        }
        Ok(self.clock.now())
    }

    /// Everything filed so far, oldest first. A reader failure surfaces at
    /// the next [`PeerTap::wait`].
    pub fn take_outbound(&mut self) -> Vec<(Micros, Vec<u8>)> {
        let _ = self.collect();
        std::mem::take(&mut self.out)
    }

    /// Files every packet already queued on `tun0`: those the reader has
    /// handed over first, then the rest read here and stamped now. Called
    /// right after an injection or a call returns, it stamps what the
    /// kernel sent during it no later than that, whatever the reader
    /// thread's scheduling (see the module documentation).
    pub fn sync(&mut self) -> Result<(), TargetError> {
        if let Some(why) = &self.broken {
            return Err(TargetError::Io(why.clone()));
        }
        let gate = Arc::clone(&self.gate);
        let _held = gate.lock().unwrap_or_else(|e| e.into_inner());
        self.collect()?;
        let now = Instant::now();
        loop {
            match self.net.tun0().recv_timeout(Duration::ZERO) {
                Ok(Some(p)) => self.file(Ok((now, p)))?,
                Ok(None) => return Ok(()),
                Err(e) => return self.file(Err(e.to_string())),
            }
        }
    }

    /// Stops the reader and waits for it (bounded: it checks every
    /// [`READ_SLICE`]).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }

    /// Files one item from the reader.
    fn file(&mut self, item: Packet) -> Result<(), TargetError> {
        let (at, mut bytes) = match item {
            Ok(p) => p,
            Err(why) => {
                let why = format!("reading tun0: {why}");
                self.broken = Some(why.clone());
                return Err(TargetError::Io(why));
            }
        };
        // IPv4 with protocol TCP, or IPv6 with next header TCP.
        let is_tcp = match bytes.first().map(|b| b >> 4) {
            Some(4) => bytes.get(9) == Some(&PROTO_TCP),
            Some(6) => bytes.get(6) == Some(&PROTO_TCP),
            _ => false,
        };
        // ICMP goes to the runner unchanged (it queues it only for a
        // script's `> icmp` lines); IPv6 neighbour discovery and multicast
        // listener messages are the link's own.
        let is_icmp = match super::icmp::decode(&bytes) {
            Some((ty, _)) => bytes[0] >> 4 == 4 || !super::icmp::is_v6_housekeeping(ty),
            None => false,
        };
        if is_tcp {
            (self.fix)(&mut bytes);
            self.out.push((self.clock.micros_at(at), bytes));
        } else if is_icmp {
            self.out.push((self.clock.micros_at(at), bytes));
        } else {
            self.ignored += 1;
        }
        Ok(())
    }

    /// Files everything the reader has handed over so far.
    fn collect(&mut self) -> Result<(), TargetError> {
        loop {
            match self.packets.try_recv() {
                Ok(item) => self.file(item)?,
                Err(TryRecvError::Empty) => return Ok(()),
                Err(TryRecvError::Disconnected) => {
                    return Err(TargetError::Io("the tun0 reader stopped".into()))
                }
            }
        }
    }
}

impl Drop for PeerTap {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The reader thread: everything the kernel sends out of `tun0`, stamped.
/// It waits for a packet without the gate and reads under it, so
/// [`PeerTap::sync`] never waits for a read slice.
fn read_tun0(net: &LiveNet, stop: &AtomicBool, gate: &Mutex<()>, tx: &Sender<Packet>) {
    crate::live::boost_current_thread();
    while !stop.load(Ordering::Relaxed) {
        if let Err(e) = net.tun0().wait_readable(READ_SLICE) {
            let _ = tx.send(Err(e.to_string()));
            return;
        }
        let _held = gate.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match net.tun0().recv_timeout(Duration::ZERO) {
                Ok(Some(p)) => {
                    if tx.send(Ok((Instant::now(), p))).is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            }
        }
    }
}
