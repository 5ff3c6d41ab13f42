//! `tcpconform serve`: the own stack as a real server on `tun1`, inside a
//! network namespace the harness creates (docs/architecture.md, "Scripts and the
//! runner" — live targets; the impairment model of [`crate::impair`]).
//!
//! [`serve`] sets up the namespace of [`crate::live::LiveNet`] and starts
//! one event-loop thread that owns a [`tcp_stack::Endpoint`] configured as
//! 198.51.100.1 ([`OWN_V4`]), listening on one port (8080 by default):
//!
//! - [`ServeMode::Echo`] sends back what arrives, and closes after the
//!   peer's FIN once everything is echoed;
//! - [`ServeMode::Http`] answers minimal HTTP/1.0 `GET` requests with the
//!   files of one directory (no path outside it, no `..`), then closes;
//! - [`ServeMode::Discard`] reads and drops everything (RFC 863 style), and
//!   closes after the peer's FIN.
//!
//! Anything in the namespace reaches the server at 198.51.100.1:port: the
//! kernel routes that address to `tun1`, whose other end is the event
//! loop. The kernel's own TCP (192.0.2.1) is the natural client — a thread
//! that entered the namespace ([`ServeHandle::netns`]) uses plain
//! `std::net` sockets. The stack can also be a client itself
//! ([`ServeHandle::connect`]), e.g. towards a kernel listener on 192.0.2.1.
//!
//! **Impairment** ([`ServeOptions::impair`]) is applied by the harness at the
//! TUN boundary, in both directions, with [`Impairment::apply`] and two
//! seeded [`Rng`]s (one per direction, so each direction is reproducible on
//! its own): a packet read from `tun1` may be dropped, duplicated, corrupted
//! or delayed before the stack sees it, and a packet the stack sends may be
//! treated the same before it is written to `tun1`. Delays (the base delay
//! and the extra delay of a reordered packet) are honoured with a timer
//! queue in the event loop, so later packets overtake a reordered one.
//!
//! The stack's clock is real: µs since the server started, as
//! [`tcp_stack::Instant`]. The event loop sleeps in `tun1` until a packet
//! arrives, the stack's next timer, the next delayed packet, or at most
//! [`MAX_WAIT`] (to notice commands and stop requests).
//!
//! Modules: `event_loop` (packets, the impairment, timers, commands),
//! `apps` (echo, discard, HTTP and the own-stack client on one
//! connection each), `http` (requests, the served directory's
//! containment), `cli` (the `tcpconform serve` command).

mod apps;
mod cli;
mod event_loop;
mod http;

pub use cli::run_cli;

use crate::impair::{Impairment, Rng};
use crate::live::{LiveError, LiveNet, Netns, OWN_V4};
use event_loop::{Impair, Server};
use std::fmt;
use std::net::{IpAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tcp_spec::Profile;
use tcp_stack::{Config, Endpoint, Instant};

/// The default port.
pub const DEFAULT_PORT: u16 = 8080;
/// The longest the event loop sleeps before looking at commands and the
/// stop flag.
pub const MAX_WAIT: Duration = Duration::from_millis(5);
/// Default send and receive buffer per connection (the window scale
/// option lets the stack advertise all of it, RFC 7323).
pub const DEFAULT_BUFFER: usize = 1 << 20;
/// Bound on waiting for the event loop to end when the handle is dropped.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// What the server does with a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServeMode {
    /// Echo everything back.
    Echo,
    /// Serve the files of this directory over HTTP/1.0 `GET`.
    Http(PathBuf),
    /// Read and drop everything.
    Discard,
}

impl fmt::Display for ServeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeMode::Echo => write!(f, "echo"),
            ServeMode::Http(dir) => write!(f, "http {}", dir.display()),
            ServeMode::Discard => write!(f, "discard"),
        }
    }
}

/// Called with every chunk a server connection receives: the connection
/// number (from 1) and the octets; an empty slice marks the end of that
/// connection's stream. Lets a caller check what arrived (e.g. hash it)
/// without the server keeping it.
pub type Tap = Box<dyn FnMut(u64, &[u8]) + Send>;

/// The stack's timers and loss recovery in `serve`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ServeTimers {
    /// What deployed stacks run: a 200 ms minimum RTO (Linux's
    /// `TCP_RTO_MIN`, in place of RFC 6298 §2.4's 1 s, a SHOULD) and SACK
    /// with RFC 6675 loss recovery and RACK-TLP (RFC 8985), so that most
    /// losses, lost retransmissions and lost tails included, are repaired
    /// within a round trip or two, and a timeout costs 200 ms, not 1 s.
    #[default]
    Realistic,
    /// The profile's own values (RFC 6298's 1 s minimum RTO), NewReno
    /// recovery without SACK: the stack as the conformance suite runs it.
    Rfc,
}

impl ServeTimers {
    /// Applies the choice to a stack configuration.
    pub fn configure(self, config: &mut Config) {
        match self {
            ServeTimers::Realistic => {
                config.rto_min_us = Some(REALISTIC_RTO_MIN_US);
                config.sack = true;
                config.rack = true;
            }
            ServeTimers::Rfc => {
                config.rto_min_us = None;
                config.sack = false;
                config.rack = false;
            }
        }
    }
}

/// The minimum RTO of [`ServeTimers::Realistic`]: 200 ms, Linux's
/// `TCP_RTO_MIN` (HZ/5).
pub const REALISTIC_RTO_MIN_US: u64 = 200_000;

/// How to serve.
pub struct ServeOptions {
    /// Echo, HTTP or discard.
    pub mode: ServeMode,
    /// The port on 198.51.100.1 (not 0).
    pub port: u16,
    /// Impairment at the TUN boundary, both directions; `None` passes every
    /// packet at once and unchanged.
    pub impair: Option<Impairment>,
    /// The stack's profile (timers, RFC 5961, …).
    pub profile: Profile,
    /// Realistic timers with SACK (the default), or the profile's.
    pub timers: ServeTimers,
    /// Send buffer per connection, octets (bounds the data in flight).
    pub send_buf: usize,
    /// Receive buffer per connection, octets (the window the stack offers).
    pub recv_buf: usize,
    /// Optional observer of what server connections receive.
    pub tap: Option<Tap>,
}

impl ServeOptions {
    /// `mode` on port 8080, no impairment, profile rfc9293 with realistic
    /// timers and SACK ([`ServeTimers::Realistic`]), 1 MiB buffers.
    pub fn new(mode: ServeMode) -> ServeOptions {
        ServeOptions {
            mode,
            port: DEFAULT_PORT,
            impair: None,
            profile: Profile::Rfc9293,
            timers: ServeTimers::Realistic,
            send_buf: DEFAULT_BUFFER,
            recv_buf: DEFAULT_BUFFER,
            tap: None,
        }
    }
}

impl fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeOptions")
            .field("mode", &self.mode)
            .field("port", &self.port)
            .field("impair", &self.impair)
            .field("timers", &self.timers)
            .field("profile", &self.profile)
            .field("send_buf", &self.send_buf)
            .field("recv_buf", &self.recv_buf)
            .field("tap", &self.tap.as_ref().map(|_| "…"))
            .finish()
    }
}

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The namespace or the devices could not be set up (or used).
    #[error(transparent)]
    Live(#[from] LiveError),
    /// The options are unusable.
    #[error("cannot serve: {0}")]
    Options(String),
    /// The own stack refused its configuration or a call.
    #[error("own stack: {0}")]
    Stack(String),
    /// The event loop stopped with an error.
    #[error("the server's event loop failed: {0}")]
    Loop(String),
    /// A bounded wait expired.
    #[error("{0} did not finish within {1:?}")]
    Timeout(String, Duration),
    /// A client connection of the own stack failed.
    #[error("own-stack client connection failed: {0}")]
    Client(String),
}

/// Counters of a running server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServeStats {
    /// Packets read from `tun1`.
    pub packets_in: u64,
    /// Packets written to `tun1`.
    pub packets_out: u64,
    /// Packets the impairment dropped (both directions).
    pub impair_dropped: u64,
    /// Extra copies the impairment made.
    pub impair_duplicated: u64,
    /// Packets the impairment corrupted (one flipped bit; the receiver's
    /// checksum must catch it).
    pub impair_corrupted: u64,
    /// Server connections accepted.
    pub accepted: u64,
    /// Connections (server or client) that ended with an error.
    pub failed: u64,
    /// Octets received by all connections.
    pub bytes_received: u64,
    /// Octets the stack accepted for sending on all connections.
    pub bytes_sent: u64,
    /// Packets the stack dropped (bad checksum, foreign, malformed).
    pub stack_dropped: u64,
    /// Fast retransmits the stack made.
    pub fast_retransmits: u64,
    /// Expiries of the stack's retransmission timer (RFC 6298 §5.4).
    pub timeouts: u64,
    /// Loss recovery episodes the stack entered (RFC 6675 §5).
    pub recoveries: u64,
    /// Tail loss probes the stack sent (RFC 8985 §7.3).
    pub loss_probes: u64,
    /// Packets refused at the TUN boundary and dropped, either direction:
    /// an address outside the documentation ranges (a foreign client, or a
    /// bit the impairment flipped in an address), or a packet the device
    /// rejects as malformed. Never fatal to the server.
    pub refused: u64,
    /// Half-open connections the stack deleted to admit a new SYN into a
    /// full backlog (a SYN flood; RFC 4987 §3.4).
    pub half_open_evicted: u64,
}

impl fmt::Display for ServeStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} packets in, {} out; impairment dropped {}, duplicated {}, corrupted {}; \
             {} connections accepted, {} failed; {} octets received, {} sent; \
             stack dropped {} packets, {} fast retransmits; \
             {} packets refused at the TUN boundary, {} half-open connections evicted",
            self.packets_in,
            self.packets_out,
            self.impair_dropped,
            self.impair_duplicated,
            self.impair_corrupted,
            self.accepted,
            self.failed,
            self.bytes_received,
            self.bytes_sent,
            self.stack_dropped,
            self.fast_retransmits,
            self.refused,
            self.half_open_evicted
        )
    }
}

/// A request to the event loop.
enum Command {
    /// Open a connection to `remote`, send `upload`, half-close, read until
    /// the peer's FIN; answer with what arrived.
    Connect {
        remote: SocketAddrV4,
        upload: Vec<u8>,
        deadline: Instant,
        reply: SyncSender<Result<Vec<u8>, String>>,
    },
}

/// State shared with the event loop.
#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    stats: Mutex<ServeStats>,
    failed: Mutex<Option<String>>,
}

impl Shared {
    fn failure(&self) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A running server. Dropping it (or [`ServeHandle::stop`]) stops the event
/// loop and removes the namespace.
#[derive(Debug)]
pub struct ServeHandle {
    shared: Arc<Shared>,
    commands: Option<mpsc::Sender<Command>>,
    event_loop: Option<JoinHandle<()>>,
    addr: SocketAddrV4,
    start: std::time::Instant,
    /// Last field: dropped after the thread is gone.
    net: Arc<LiveNet>,
}

/// Starts serving: a fresh namespace, the own stack on `tun1` as
/// 198.51.100.1, listening on `opts.port`.
pub fn serve(opts: ServeOptions) -> Result<ServeHandle, ServeError> {
    if opts.port == 0 {
        return Err(ServeError::Options("port 0 cannot be served".into()));
    }
    if opts.send_buf == 0 || opts.recv_buf == 0 {
        return Err(ServeError::Options(
            "buffers must be at least 1 octet".into(),
        ));
    }
    let root = match &opts.mode {
        ServeMode::Http(dir) => Some(http::http_root(dir)?),
        _ => None,
    };
    crate::live::available()?;
    let mut config = Config::new(vec![IpAddr::V4(OWN_V4)]);
    config.profile = opts.profile;
    opts.timers.configure(&mut config);
    config.recv_buf = opts.recv_buf;
    config.send_buf = opts.send_buf;
    let mut ep = Endpoint::new(config).map_err(|e| ServeError::Stack(e.to_string()))?;
    let listener = ep
        .listen(Instant::ZERO, None, opts.port, 128)
        .map_err(|e| ServeError::Stack(format!("listen on port {}: {e}", opts.port)))?;

    let net = Arc::new(LiveNet::setup()?);
    net.drain()?;
    let shared = Arc::new(Shared::default());
    let (commands, command_rx) = mpsc::channel();
    let start = std::time::Instant::now();
    let impair = opts.impair.map(|imp| Impair {
        imp,
        inbound: Rng::new(imp.seed),
        outbound: Rng::new(imp.seed ^ 0x6f75_7462_6f75_6e64 /* "outbound" */),
    });
    let mut server = Server {
        net: Arc::clone(&net),
        ep,
        start,
        listener,
        mode: opts.mode,
        root: root.unwrap_or_default(),
        conns: Vec::new(),
        impair,
        delayed: crate::delay::DelayQueue::new(),
        stats: ServeStats::default(),
        tap: opts.tap,
        commands: command_rx,
        next_conn: 1,
        scratch: vec![0u8; apps::FILE_CHUNK],
    };
    let event_loop = {
        let shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name(format!("{}-serve", net.netns().name()))
            .spawn(move || {
                if let Err(why) = server.run(&shared) {
                    let mut f = shared.failed.lock().unwrap_or_else(|e| e.into_inner());
                    f.get_or_insert(why);
                }
            })
            .map_err(|e| ServeError::Loop(format!("cannot start the event loop: {e}")))?
    };
    Ok(ServeHandle {
        shared,
        commands: Some(commands),
        event_loop: Some(event_loop),
        addr: SocketAddrV4::new(OWN_V4, opts.port),
        start,
        net,
    })
}

impl ServeHandle {
    /// Where the server listens: 198.51.100.1:port, inside the namespace.
    pub fn address(&self) -> SocketAddrV4 {
        self.addr
    }

    /// The namespace: run kernel-side clients in it with [`Netns::run_in`]
    /// or [`Netns::spawn`].
    pub fn netns(&self) -> &Netns {
        self.net.netns()
    }

    /// The namespace's name (for `ip netns exec <name> …`).
    pub fn netns_name(&self) -> &str {
        self.net.netns().name()
    }

    /// The counters so far.
    pub fn stats(&self) -> ServeStats {
        *self.shared.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The event loop's error, if it stopped with one.
    pub fn failure(&self) -> Option<String> {
        self.shared.failure()
    }

    /// The own stack as a client: connects from 198.51.100.1 to `remote`
    /// (e.g. a kernel listener on 192.0.2.1 in the namespace), sends
    /// `upload`, half-closes (FIN) and reads until the peer's FIN; returns
    /// what arrived. Fails when the connection fails or `timeout` passes
    /// (the connection is then aborted).
    pub fn connect(
        &self,
        remote: SocketAddrV4,
        upload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, ServeError> {
        if let Some(why) = self.failure() {
            return Err(ServeError::Loop(why));
        }
        let Some(commands) = &self.commands else {
            return Err(ServeError::Loop("the event loop is gone".into()));
        };
        let (reply, answer) = mpsc::sync_channel(1);
        let elapsed = tcp_stack::time::duration_micros(self.start.elapsed());
        let deadline = Instant::from_micros(elapsed) + timeout;
        commands
            .send(Command::Connect {
                remote,
                upload,
                deadline,
                reply,
            })
            .map_err(|_| ServeError::Loop("the event loop is gone".into()))?;
        // The loop answers by the deadline; the margin covers its wake-ups.
        match answer.recv_timeout(timeout + Duration::from_secs(1)) {
            Ok(Ok(data)) => Ok(data),
            Ok(Err(why)) => Err(ServeError::Client(why)),
            Err(RecvTimeoutError::Timeout) => Err(ServeError::Timeout(
                format!("the own-stack connection to {remote}"),
                timeout,
            )),
            Err(RecvTimeoutError::Disconnected) => Err(ServeError::Loop(
                self.failure()
                    .unwrap_or_else(|| "the event loop is gone".into()),
            )),
        }
    }

    /// Stops the server, removes the namespace and returns the final
    /// counters (or the event loop's error).
    pub fn stop(mut self) -> Result<ServeStats, ServeError> {
        self.halt()?;
        if let Some(why) = self.failure() {
            return Err(ServeError::Loop(why));
        }
        Ok(self.stats())
    }

    fn halt(&mut self) -> Result<(), ServeError> {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.commands = None;
        if let Some(l) = self.event_loop.take() {
            let deadline = std::time::Instant::now() + STOP_TIMEOUT;
            while !l.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            if !l.is_finished() {
                return Err(ServeError::Timeout(
                    "stopping the event loop".into(),
                    STOP_TIMEOUT,
                ));
            }
            if l.join().is_err() {
                return Err(ServeError::Loop("the event loop panicked".into()));
            }
        }
        Ok(())
    }
}

impl Drop for ServeHandle {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_options_are_refused_before_any_namespace() {
        let mut o = ServeOptions::new(ServeMode::Discard);
        o.port = 0;
        assert!(matches!(serve(o), Err(ServeError::Options(_))));
        let o = ServeOptions::new(ServeMode::Http(PathBuf::from("/nonexistent/tcpconform")));
        assert!(matches!(serve(o), Err(ServeError::Options(_))));
        assert!(run_cli(
            ServeMode::Echo,
            Some("loss=2"),
            None,
            None,
            ServeTimers::default()
        )
        .unwrap_err()
        .contains("between 0 and 1"));
    }
}
