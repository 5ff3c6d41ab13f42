//! The event loop of `serve`: packets from `tun1` through the address
//! guard and the impairment into the stack, the stack's timers, the
//! caller's commands, the applications, and the stack's packets back
//! through the impairment to `tun1`.

use super::apps::{App, Client, Conn, Progress};
use super::{Command, ServeMode, ServeStats, Shared, Tap, MAX_WAIT};
use crate::delay::DelayQueue;
use crate::impair::{Impairment, Rng};
use crate::live::{check_addresses, LiveError, LiveNet, OWN_V4};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::Duration;
use tcp_stack::{Endpoint, Handle, Instant};

/// Packets read from `tun1` in one batch before the stack gets to answer.
const MAX_BATCH: usize = 64;

/// The impairment and one generator per direction.
pub(super) struct Impair {
    pub(super) imp: Impairment,
    pub(super) inbound: Rng,
    pub(super) outbound: Rng,
}

/// Which way a delayed packet travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dir {
    /// From `tun1` to the stack.
    In,
    /// From the stack to `tun1`.
    Out,
}

/// The event loop's state: the stack, its listener, the connections and
/// their applications, the impairment and its delayed packets, counters.
pub(super) struct Server {
    pub(super) net: Arc<LiveNet>,
    pub(super) ep: Endpoint,
    pub(super) start: std::time::Instant,
    pub(super) listener: Handle,
    pub(super) mode: ServeMode,
    /// The HTTP directory, canonical (symlinks resolved), for the
    /// containment check of every served path.
    pub(super) root: PathBuf,
    pub(super) conns: Vec<Conn>,
    pub(super) impair: Option<Impair>,
    pub(super) delayed: DelayQueue<(Dir, Vec<u8>)>,
    pub(super) stats: ServeStats,
    pub(super) tap: Option<Tap>,
    pub(super) commands: Receiver<Command>,
    pub(super) next_conn: u64,
    pub(super) scratch: Vec<u8>,
}

impl Server {
    fn now(&self) -> Instant {
        Instant::from_micros(tcp_stack::time::duration_micros(self.start.elapsed()))
    }

    pub(super) fn run(&mut self, shared: &Shared) -> Result<(), String> {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while !shared.stop.load(Ordering::Relaxed) {
            let wait = self.wait();
            batch.clear();
            self.net
                .tun1()
                .recv_batch(wait, MAX_BATCH, &mut batch)
                .map_err(|e| format!("reading tun1: {e}"))?;
            let now = self.now();
            for p in batch.drain(..) {
                self.stats.packets_in += 1;
                self.inbound(now, p);
            }
            self.step(now)?;
            *shared.stats.lock().unwrap_or_else(|e| e.into_inner()) = self.stats;
        }
        // Stopping: connections still open are aborted (their RSTs go out).
        let now = self.now();
        for c in std::mem::take(&mut self.conns) {
            let _ = self.ep.abort(now, c.h);
            if let App::Client(x) = c.app {
                let _ = x.reply.try_send(Err("the server stopped".into()));
            }
        }
        self.transmit(now)?;
        Ok(())
    }

    /// How long to sleep in `tun1`: until the stack's next timer or the
    /// next delayed packet, at most [`MAX_WAIT`].
    fn wait(&self) -> Duration {
        let now = self.now().as_micros();
        let next = [
            self.ep.poll_timeout().map(Instant::as_micros),
            self.delayed.next_due(),
        ]
        .into_iter()
        .flatten()
        .min();
        match next {
            Some(t) => Duration::from_micros(t.saturating_sub(now)).min(MAX_WAIT),
            None => MAX_WAIT,
        }
    }

    /// Everything that is due: delayed packets, timers, commands, the
    /// applications, and the stack's output.
    fn step(&mut self, now: Instant) -> Result<(), String> {
        while let Some((dir, bytes)) = self.delayed.pop_due(now.as_micros()) {
            match dir {
                Dir::In => self.ep.handle_packet(now, &bytes),
                Dir::Out => self.write_tun(&bytes)?,
            }
        }
        if self.ep.poll_timeout().is_some_and(|t| t <= now) {
            self.ep.handle_timeout(now);
        }
        self.commands(now);
        self.accept();
        self.progress(now);
        self.transmit(now)?;
        let s = self.ep.stats();
        self.stats.stack_dropped = s.dropped();
        self.stats.fast_retransmits = s.fast_retransmits;
        self.stats.timeouts = s.timeouts;
        self.stats.recoveries = s.recoveries;
        self.stats.loss_probes = s.loss_probes;
        self.stats.half_open_evicted = s.half_open_evicted;
        Ok(())
    }

    /// A packet read from `tun1`: through the address guard and the
    /// impairment into the stack. A packet from or to an address outside
    /// the documentation ranges is dropped and counted before the stack
    /// sees it: its answer could not be sent anyway, and the stack keeps no
    /// state for it.
    fn inbound(&mut self, now: Instant, p: Vec<u8>) {
        if check_addresses(&p).is_err() {
            self.stats.refused += 1;
            return;
        }
        let Some(imp) = self.impair.as_mut() else {
            self.ep.handle_packet(now, &p);
            return;
        };
        let copies = imp.imp.apply(&mut imp.inbound, &p);
        self.impaired(now, Dir::In, &p, copies);
    }

    /// Files the copies the impairment made of `orig`.
    fn impaired(&mut self, now: Instant, dir: Dir, orig: &[u8], copies: Vec<(Duration, Vec<u8>)>) {
        match copies.len() {
            0 => self.stats.impair_dropped += 1,
            1 => {}
            n => self.stats.impair_duplicated += n as u64 - 1,
        }
        for (delay, bytes) in copies {
            if bytes != orig {
                self.stats.impair_corrupted += 1;
            }
            self.delayed.push((now + delay).as_micros(), (dir, bytes));
        }
    }

    /// Everything the stack wants to send: through the impairment to `tun1`.
    fn transmit(&mut self, now: Instant) -> Result<(), String> {
        while let Some(p) = self.ep.poll_transmit(now) {
            match self.impair.as_mut() {
                None => self.write_tun(&p)?,
                Some(imp) => {
                    let copies = imp.imp.apply(&mut imp.outbound, &p);
                    self.impaired(now, Dir::Out, &p, copies);
                }
            }
            self.ep.recycle(p);
        }
        Ok(())
    }

    /// Writes one packet to `tun1`. The address guard's refusal (an
    /// address the impairment corrupted, or a reply to a foreign client)
    /// and the device's rejection of a malformed packet drop that packet
    /// and count it; only a failing device ends the event loop.
    fn write_tun(&mut self, p: &[u8]) -> Result<(), String> {
        match self.net.tun1().send(p) {
            Ok(()) => {
                self.stats.packets_out += 1;
                Ok(())
            }
            Err(LiveError::ForbiddenAddress { .. }) => {
                self.stats.refused += 1;
                Ok(())
            }
            Err(LiveError::Io { source, .. }) if source.raw_os_error() == Some(libc::EINVAL) => {
                self.stats.refused += 1;
                Ok(())
            }
            Err(e) => Err(format!("writing to tun1: {e}")),
        }
    }

    fn commands(&mut self, now: Instant) {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Connect {
                    remote,
                    upload,
                    deadline,
                    reply,
                }) => {
                    let local = SocketAddr::new(IpAddr::V4(OWN_V4), 0);
                    match self.ep.connect(now, local, SocketAddr::V4(remote)) {
                        Ok(h) => {
                            let id = self.next_conn;
                            self.next_conn += 1;
                            self.conns.push(Conn {
                                h,
                                id,
                                app: App::Client(Client {
                                    upload,
                                    off: 0,
                                    fin_sent: false,
                                    received: Vec::new(),
                                    deadline,
                                    reply,
                                }),
                            });
                        }
                        Err(e) => {
                            let _ = reply.try_send(Err(format!("connect to {remote}: {e}")));
                        }
                    }
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
            }
        }
    }

    /// Takes new connections from the listener.
    fn accept(&mut self) {
        while let Ok((h, _)) = self.ep.accept(self.listener) {
            self.stats.accepted += 1;
            let id = self.next_conn;
            self.next_conn += 1;
            let app = App::server(&self.mode);
            self.conns.push(Conn { h, id, app });
        }
    }

    /// Lets every connection's application move data.
    fn progress(&mut self, now: Instant) {
        let mut conns = std::mem::take(&mut self.conns);
        conns.retain_mut(|c| {
            let p = self.progress_one(now, c);
            match p {
                Progress::Open => true,
                Progress::Closed => {
                    if !matches!(c.app, App::Client(_)) {
                        self.tapped(c.id, &[]);
                    }
                    false
                }
                Progress::Failed(why) => {
                    self.stats.failed += 1;
                    let _ = self.ep.abort(now, c.h);
                    if let App::Client(x) = &c.app {
                        let _ = x.reply.try_send(Err(why));
                    } else {
                        self.tapped(c.id, &[]);
                    }
                    false
                }
            }
        });
        // Connections opened while iterating (none today) would be in self.conns.
        conns.append(&mut self.conns);
        self.conns = conns;
    }

    fn tapped(&mut self, id: u64, data: &[u8]) {
        if let Some(tap) = self.tap.as_mut() {
            tap(id, data);
        }
    }
}
