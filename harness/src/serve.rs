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

use crate::impair::{Impairment, Rng};
use crate::live::{check_addresses, LiveError, LiveNet, Netns, OWN_V4};
use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tcp_spec::{Profile, State};
use tcp_stack::{Config, Endpoint, Error as StackError, Handle, Instant, Shutdown};

/// The default port.
pub const DEFAULT_PORT: u16 = 8080;
/// The longest the event loop sleeps before looking at commands and the
/// stop flag.
pub const MAX_WAIT: Duration = Duration::from_millis(5);
/// Default send and receive buffer per connection (the window scale
/// option lets the stack advertise all of it, RFC 7323).
pub const DEFAULT_BUFFER: usize = 1 << 20;
/// Echo stops reading while this much is waiting to be echoed (the peer's
/// window closes instead: flow control, not memory, absorbs a slow reader).
const ECHO_BACKLOG: usize = 256 * 1024;
/// Longest HTTP request head accepted.
const MAX_REQUEST: usize = 8 * 1024;
/// Chunk read from a served file at a time.
const FILE_CHUNK: usize = 64 * 1024;
/// Packets read from `tun1` in one batch before the stack gets to answer.
const MAX_BATCH: usize = 64;
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
    /// Send buffer per connection, octets (bounds the data in flight).
    pub send_buf: usize,
    /// Receive buffer per connection, octets (the window the stack offers).
    pub recv_buf: usize,
    /// Optional observer of what server connections receive.
    pub tap: Option<Tap>,
}

impl ServeOptions {
    /// `mode` on port 8080, no impairment, profile rfc9293, 1 MiB buffers.
    pub fn new(mode: ServeMode) -> ServeOptions {
        ServeOptions {
            mode,
            port: DEFAULT_PORT,
            impair: None,
            profile: Profile::Rfc9293,
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
        ServeMode::Http(dir) => Some(http_root(dir)?),
        _ => None,
    };
    crate::live::available()?;
    let mut config = Config::new(vec![IpAddr::V4(OWN_V4)]);
    config.profile = opts.profile;
    config.recv_buf = opts.recv_buf;
    config.send_buf = opts.send_buf;
    config.secret = random_secret();
    // A server runs for as long as it is left: no observer log to grow.
    config.log_transitions = false;
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
        delayed: BinaryHeap::new(),
        seq: 0,
        stats: ServeStats::default(),
        tap: opts.tap,
        commands: command_rx,
        next_conn: 1,
        scratch: vec![0u8; FILE_CHUNK],
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

/// Entry point for `tcpconform serve [--echo | --http DIR | --discard]
/// [--impair SPEC] [--port N]`: serves until `duration` passes (or, with
/// `None`, until SIGINT/SIGTERM, whose handler removes the namespace and
/// exits with 130/143), printing how to reach the server and, at the end,
/// its counters. Errors are one sentence for the user.
pub fn run_cli(
    mode: ServeMode,
    impair: Option<&str>,
    port: Option<u16>,
    duration: Option<Duration>,
) -> Result<(), String> {
    let mut opts = ServeOptions::new(mode);
    if let Some(spec) = impair {
        opts.impair = Some(spec.parse::<Impairment>().map_err(|e| e.to_string())?);
    }
    if let Some(p) = port {
        opts.port = p;
    }
    let mode = opts.mode.clone();
    let imp = opts.impair;
    let handle = serve(opts).map_err(|e| e.to_string())?;
    let addr = handle.address();
    println!(
        "serving {mode} on {addr} (the own stack on tun1) in network namespace {}",
        handle.netns_name()
    );
    match imp {
        Some(i) => println!("impairment at the TUN boundary, both directions: {i}"),
        None => println!("no impairment"),
    }
    let example = match &mode {
        ServeMode::Http(_) => format!("curl http://{addr}/"),
        ServeMode::Echo => format!("nc {} {}", addr.ip(), addr.port()),
        ServeMode::Discard => format!(
            "dd if=/dev/zero bs=1M count=100 | nc -N {} {}",
            addr.ip(),
            addr.port()
        ),
    };
    println!(
        "reach it from the namespace: ip netns exec {} {example}",
        handle.netns_name()
    );
    match duration {
        Some(d) => println!("stopping after {:.1} s", d.as_secs_f64()),
        None => println!("press Ctrl-C to stop (the namespace is removed)"),
    }
    let started = std::time::Instant::now();
    loop {
        if let Some(why) = handle.failure() {
            return Err(format!("serve: the event loop failed: {why}"));
        }
        let left = match duration {
            Some(d) => match d.checked_sub(started.elapsed()) {
                Some(l) if !l.is_zero() => l,
                _ => break,
            },
            None => Duration::from_millis(200),
        };
        std::thread::sleep(left.min(Duration::from_millis(200)));
    }
    let stats = handle.stop().map_err(|e| e.to_string())?;
    println!("{stats}");
    Ok(())
}

// ----- the event loop -----------------------------------------------------------

/// The impairment and one generator per direction.
struct Impair {
    imp: Impairment,
    inbound: Rng,
    outbound: Rng,
}

/// Which way a delayed packet travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    /// From `tun1` to the stack.
    In,
    /// From the stack to `tun1`.
    Out,
}

/// A packet held back by the impairment until `due`.
#[derive(Debug)]
struct Delayed {
    due: u64,
    seq: u64,
    dir: Dir,
    bytes: Vec<u8>,
}

impl PartialEq for Delayed {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for Delayed {}
impl PartialOrd for Delayed {
    fn partial_cmp(&self, o: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}
impl Ord for Delayed {
    /// Reversed, so the max-heap pops the earliest (then first queued).
    fn cmp(&self, o: &Self) -> CmpOrdering {
        (o.due, o.seq).cmp(&(self.due, self.seq))
    }
}

/// What a connection does.
enum App {
    Echo {
        pending: Vec<u8>,
        off: usize,
        eof: bool,
    },
    Discard,
    Http {
        request: Vec<u8>,
        /// The response head, then the file in chunks.
        pending: Vec<u8>,
        off: usize,
        body: Option<File>,
        responded: bool,
    },
    Client {
        upload: Vec<u8>,
        off: usize,
        fin_sent: bool,
        received: Vec<u8>,
        deadline: Instant,
        reply: SyncSender<Result<Vec<u8>, String>>,
    },
}

struct Conn {
    h: Handle,
    id: u64,
    app: App,
}

/// What became of a connection after some progress.
enum Progress {
    /// Still running.
    Open,
    /// Finished: the handle was closed (the stack completes the close).
    Closed,
    /// Failed with this reason: the handle was aborted.
    Failed(String),
}

struct Server {
    net: Arc<LiveNet>,
    ep: Endpoint,
    start: std::time::Instant,
    listener: Handle,
    mode: ServeMode,
    /// The HTTP directory, canonical (symlinks resolved), for the
    /// containment check of every served path.
    root: PathBuf,
    conns: Vec<Conn>,
    impair: Option<Impair>,
    delayed: BinaryHeap<Delayed>,
    seq: u64,
    stats: ServeStats,
    tap: Option<Tap>,
    commands: Receiver<Command>,
    next_conn: u64,
    scratch: Vec<u8>,
}

impl Server {
    fn now(&self) -> Instant {
        Instant::from_micros(tcp_stack::time::duration_micros(self.start.elapsed()))
    }

    fn run(&mut self, shared: &Shared) -> Result<(), String> {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while !shared.stop.load(Ordering::Relaxed) {
            let wait = self.wait();
            batch.clear();
            match self.net.tun1().recv_timeout(wait) {
                Ok(Some(p)) => batch.push(p),
                Ok(None) => {}
                Err(e) => return Err(format!("reading tun1: {e}")),
            }
            while !batch.is_empty() && batch.len() < MAX_BATCH {
                match self.net.tun1().recv_timeout(Duration::ZERO) {
                    Ok(Some(p)) => batch.push(p),
                    Ok(None) => break,
                    Err(e) => return Err(format!("reading tun1: {e}")),
                }
            }
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
            if let App::Client { reply, .. } = c.app {
                let _ = reply.try_send(Err("the server stopped".into()));
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
            self.delayed.peek().map(|d| d.due),
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
        while self
            .delayed
            .peek()
            .is_some_and(|d| d.due <= now.as_micros())
        {
            let Some(d) = self.delayed.pop() else { break };
            match d.dir {
                Dir::In => self.ep.handle_packet(now, &d.bytes),
                Dir::Out => self.write_tun(&d.bytes)?,
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
            self.seq += 1;
            self.delayed.push(Delayed {
                due: (now + delay).as_micros(),
                seq: self.seq,
                dir,
                bytes,
            });
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
                                app: App::Client {
                                    upload,
                                    off: 0,
                                    fin_sent: false,
                                    received: Vec::new(),
                                    deadline,
                                    reply,
                                },
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
            let app = match self.mode {
                ServeMode::Echo => App::Echo {
                    pending: Vec::new(),
                    off: 0,
                    eof: false,
                },
                ServeMode::Discard => App::Discard,
                ServeMode::Http(_) => App::Http {
                    request: Vec::new(),
                    pending: Vec::new(),
                    off: 0,
                    body: None,
                    responded: false,
                },
            };
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
                    if !matches!(c.app, App::Client { .. }) {
                        self.tapped(c.id, &[]);
                    }
                    false
                }
                Progress::Failed(why) => {
                    self.stats.failed += 1;
                    let _ = self.ep.abort(now, c.h);
                    if let App::Client { reply, .. } = &c.app {
                        let _ = reply.try_send(Err(why));
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

    fn progress_one(&mut self, now: Instant, c: &mut Conn) -> Progress {
        let h = c.h;
        match &mut c.app {
            App::Discard => loop {
                match self.ep.recv(now, h, &mut self.scratch) {
                    Ok(0) => return self.close(now, h),
                    Ok(n) => {
                        self.stats.bytes_received += n as u64;
                        if let Some(tap) = self.tap.as_mut() {
                            tap(c.id, &self.scratch[..n]);
                        }
                    }
                    Err(StackError::WouldBlock) => return Progress::Open,
                    Err(e) => return Progress::Failed(e.to_string()),
                }
            },
            App::Echo { pending, off, eof } => loop {
                if let Err(e) = push(&mut self.ep, now, h, pending, off, &mut self.stats) {
                    return Progress::Failed(e);
                }
                if *eof {
                    if pending.is_empty() {
                        return self.close(now, h);
                    }
                    return Progress::Open;
                }
                if pending.len() - *off >= ECHO_BACKLOG {
                    return Progress::Open;
                }
                match self.ep.recv(now, h, &mut self.scratch) {
                    Ok(0) => *eof = true,
                    Ok(n) => {
                        self.stats.bytes_received += n as u64;
                        let data = &self.scratch[..n];
                        if let Some(tap) = self.tap.as_mut() {
                            tap(c.id, data);
                        }
                        pending.extend_from_slice(data);
                    }
                    Err(StackError::WouldBlock) => return Progress::Open,
                    Err(e) => return Progress::Failed(e.to_string()),
                }
            },
            App::Http {
                request,
                pending,
                off,
                body,
                responded,
            } => {
                // Read (and after the head, drop) whatever the client sends.
                loop {
                    match self.ep.recv(now, h, &mut self.scratch) {
                        Ok(0) => {
                            if !*responded {
                                // The client closed before a whole request.
                                return self.close(now, h);
                            }
                            break;
                        }
                        Ok(n) => {
                            self.stats.bytes_received += n as u64;
                            let data = &self.scratch[..n];
                            if let Some(tap) = self.tap.as_mut() {
                                tap(c.id, data);
                            }
                            if !*responded && request.len() < MAX_REQUEST + 4 {
                                request.extend_from_slice(data);
                            }
                        }
                        Err(StackError::WouldBlock) => break,
                        Err(e) => return Progress::Failed(e.to_string()),
                    }
                }
                if !*responded {
                    match http_response(&self.root, request) {
                        Some((head, file)) => {
                            *pending = head;
                            *off = 0;
                            *body = file;
                            *responded = true;
                        }
                        None => return Progress::Open,
                    }
                }
                loop {
                    if let Err(e) = push(&mut self.ep, now, h, pending, off, &mut self.stats) {
                        return Progress::Failed(e);
                    }
                    if !pending.is_empty() {
                        return Progress::Open;
                    }
                    let Some(file) = body.as_mut() else {
                        return self.close(now, h);
                    };
                    self.scratch.resize(FILE_CHUNK, 0);
                    match file.read(&mut self.scratch) {
                        Ok(0) => *body = None,
                        Ok(n) => pending.extend_from_slice(&self.scratch[..n]),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Progress::Failed(format!("reading the file: {e}")),
                    }
                }
            }
            App::Client {
                upload,
                off,
                fin_sent,
                received,
                deadline,
                reply,
            } => {
                if now >= *deadline {
                    return Progress::Failed("timed out".into());
                }
                let st = match self.ep.status(h) {
                    Ok(s) => s,
                    Err(e) => return Progress::Failed(e.to_string()),
                };
                if let Some(e) = st.error {
                    return Progress::Failed(e.to_string());
                }
                if matches!(st.state, State::SynSent | State::SynReceived) {
                    return Progress::Open;
                }
                while *off < upload.len() {
                    match self.ep.send(now, h, &upload[*off..]) {
                        Ok(0) | Err(StackError::WouldBlock) => break,
                        Ok(n) => {
                            *off += n;
                            self.stats.bytes_sent += n as u64;
                        }
                        Err(e) => return Progress::Failed(e.to_string()),
                    }
                }
                if *off == upload.len() && !*fin_sent {
                    if let Err(e) = self.ep.shutdown(now, h, Shutdown::Write) {
                        return Progress::Failed(e.to_string());
                    }
                    *fin_sent = true;
                }
                loop {
                    match self.ep.recv(now, h, &mut self.scratch) {
                        Ok(0) => {
                            if !*fin_sent {
                                // The peer finished first: keep sending.
                                break;
                            }
                            let _ = reply.try_send(Ok(std::mem::take(received)));
                            return self.close(now, h);
                        }
                        Ok(n) => {
                            self.stats.bytes_received += n as u64;
                            received.extend_from_slice(&self.scratch[..n]);
                        }
                        Err(StackError::WouldBlock) => break,
                        Err(e) => return Progress::Failed(e.to_string()),
                    }
                }
                Progress::Open
            }
        }
    }

    fn close(&mut self, now: Instant, h: Handle) -> Progress {
        match self.ep.close(now, h) {
            Ok(()) => Progress::Closed,
            Err(e) => Progress::Failed(format!("close: {e}")),
        }
    }
}

/// Sends as much of `pending[*off..]` as the stack takes; clears the buffer
/// once all of it is taken.
fn push(
    ep: &mut Endpoint,
    now: Instant,
    h: Handle,
    pending: &mut Vec<u8>,
    off: &mut usize,
    stats: &mut ServeStats,
) -> Result<(), String> {
    while *off < pending.len() {
        match ep.send(now, h, &pending[*off..]) {
            Ok(0) | Err(StackError::WouldBlock) => break,
            Ok(n) => {
                *off += n;
                stats.bytes_sent += n as u64;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    if *off >= pending.len() {
        pending.clear();
        *off = 0;
    }
    Ok(())
}

/// The answer to an HTTP/1.0 request once its head is complete: the
/// response head (with a small body for errors) and the file to send after
/// it. `None` while the head is incomplete.
fn http_response(dir: &Path, request: &[u8]) -> Option<(Vec<u8>, Option<File>)> {
    let end = request.windows(4).position(|w| w == b"\r\n\r\n");
    let head = match end {
        Some(e) => &request[..e],
        None if request.len() > MAX_REQUEST => {
            return Some(error_response(431, "Request Header Fields Too Large"))
        }
        None => return None,
    };
    let line = head.split(|b| *b == b'\n').next().unwrap_or(&[]);
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target, version) = (parts.next(), parts.next(), parts.next());
    let (Some(method), Some(target)) = (method, target) else {
        return Some(error_response(400, "Bad Request"));
    };
    if !version.is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Some(error_response(400, "Bad Request"));
    }
    if method != "GET" {
        return Some(error_response(405, "Method Not Allowed"));
    }
    let Some(path) = resolve(dir, target) else {
        return Some(error_response(404, "Not Found"));
    };
    let (file, len) = match open_regular(dir, &path) {
        Ok(f) => f,
        Err(Refusal::Missing) => return Some(error_response(404, "Not Found")),
        Err(Refusal::NotRegular) => return Some(error_response(403, "Forbidden")),
    };
    let head = format!(
        "HTTP/1.0 200 OK\r\nContent-Length: {len}\r\nContent-Type: {}\r\nConnection: close\r\nServer: tcpconform-own-stack\r\n\r\n",
        content_type(&path)
    );
    Some((head.into_bytes(), Some(file)))
}

/// Why a path is not served.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// Missing, unreadable, or (after resolving symlinks) outside the
    /// served directory: answered as if it did not exist.
    Missing,
    /// A FIFO, device, socket or directory: never opened for reading
    /// (a FIFO would block the event loop until a writer appears).
    NotRegular,
}

/// The served directory as the containment check sees it: canonical, and
/// a directory.
fn http_root(dir: &Path) -> Result<PathBuf, ServeError> {
    let root = std::fs::canonicalize(dir)
        .map_err(|e| ServeError::Options(format!("{}: {e}", dir.display())))?;
    if !root.is_dir() {
        return Err(ServeError::Options(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    Ok(root)
}

/// Opens `path` for serving when it is a regular file inside `root`
/// (canonical): symlinks are resolved first and the result must stay
/// under `root`; the open itself neither follows a symlink swapped in
/// since (`O_NOFOLLOW`) nor waits for a FIFO's writer (`O_NONBLOCK`), and
/// anything but a regular file is refused after `fstat`.
fn open_regular(root: &Path, path: &Path) -> Result<(File, u64), Refusal> {
    use std::os::unix::fs::OpenOptionsExt;
    let real = std::fs::canonicalize(path).map_err(|_| Refusal::Missing)?;
    if !real.starts_with(root) {
        return Err(Refusal::Missing);
    }
    let meta = std::fs::symlink_metadata(&real).map_err(|_| Refusal::Missing)?;
    if !meta.file_type().is_file() {
        return Err(Refusal::NotRegular);
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(&real)
        .map_err(|_| Refusal::Missing)?;
    match file.metadata() {
        Ok(m) if m.file_type().is_file() => Ok((file, m.len())),
        Ok(_) => Err(Refusal::NotRegular),
        Err(_) => Err(Refusal::Missing),
    }
}

fn error_response(code: u16, reason: &str) -> (Vec<u8>, Option<File>) {
    let body = format!("{code} {reason}\n");
    let head = format!(
        "HTTP/1.0 {code} {reason}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    (head.into_bytes(), None)
}

/// The file a request target names under `dir`: `/` is `index.html`; query
/// strings are ignored; `%XX` escapes are decoded; anything that could leave
/// `dir` (`..`, absolute components, NUL) is refused.
fn resolve(dir: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next()?;
    let rel = path.strip_prefix('/')?;
    let decoded = percent_decode(rel)?;
    let mut out = dir.to_path_buf();
    for comp in Path::new(&decoded).components() {
        match comp {
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if out.is_dir() {
        out.push("index.html");
    }
    Some(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    if out.contains(&0) {
        return None;
    }
    String::from_utf8(out).ok()
}

fn content_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()) {
        Some("html" | "htm") => "text/html",
        Some("txt") => "text/plain",
        Some("json") => "application/json",
        Some("css") => "text/css",
        Some("js") => "text/javascript",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

/// 32 random octets for the ISN secret (RFC 6528 §3), from the kernel;
/// the time and pid as a fallback (ISNs are then merely hard to guess).
fn random_secret() -> [u8; 32] {
    let mut s = [0u8; 32];
    let ok = File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut s))
        .is_ok();
    if !ok {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let mut rng = Rng::new((t as u64) ^ u64::from(std::process::id()).rotate_left(32));
        for chunk in s.chunks_mut(8) {
            chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("tcpconform-serve-unit-{}", std::process::id()));
        let _ = std::fs::create_dir_all(d.join("sub"));
        let _ = std::fs::write(d.join("index.html"), b"<p>hi</p>");
        let _ = std::fs::write(d.join("sub/a b.txt"), b"x");
        d
    }

    fn status(r: &(Vec<u8>, Option<File>)) -> String {
        let s = String::from_utf8_lossy(&r.0);
        s.lines().next().unwrap_or("").to_string()
    }

    #[test]
    fn http_requests() {
        let d = http_root(&dir()).unwrap();
        assert!(
            http_response(&d, b"GET / HTTP/1.0\r\n").is_none(),
            "incomplete"
        );
        let ok = http_response(&d, b"GET / HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!(status(&ok), "HTTP/1.0 200 OK");
        assert!(String::from_utf8_lossy(&ok.0).contains("Content-Length: 9\r\n"));
        assert!(ok.1.is_some());
        let sub = http_response(&d, b"GET /sub/a%20b.txt?x=1 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(status(&sub), "HTTP/1.0 200 OK");
        for (req, code) in [
            (&b"GET /../etc/passwd HTTP/1.0\r\n\r\n"[..], "404"),
            (b"GET /sub/../../x HTTP/1.0\r\n\r\n", "404"),
            (b"GET /%2e%2e/x HTTP/1.0\r\n\r\n", "404"),
            (b"GET /missing HTTP/1.0\r\n\r\n", "404"),
            (b"GET /a%00 HTTP/1.0\r\n\r\n", "404"),
            (b"POST / HTTP/1.0\r\n\r\n", "405"),
            (b"GET\r\n\r\n", "400"),
            (b"GET / SPDY\r\n\r\n", "400"),
            (b"\r\n\r\n", "400"),
        ] {
            let r = http_response(&d, req).unwrap();
            assert!(
                status(&r).contains(code),
                "{:?}: {}",
                String::from_utf8_lossy(req),
                status(&r)
            );
            assert!(r.1.is_none());
        }
        let huge = vec![b'a'; MAX_REQUEST + 1];
        assert!(status(&http_response(&d, &huge).unwrap()).contains("431"));
    }

    /// A directory with a symlink out of it, a symlink inside it, a FIFO
    /// and a symlink to a device.
    fn hostile_dir() -> (PathBuf, PathBuf) {
        let base = std::env::temp_dir().join(format!(
            "tcpconform-serve-hostile-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&base);
        let (d, outside) = (base.join("www"), base.join("secret.txt"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(&outside, b"not for clients").unwrap();
        std::fs::write(d.join("ok.txt"), b"fine").unwrap();
        std::os::unix::fs::symlink(&outside, d.join("secret")).unwrap();
        std::os::unix::fs::symlink("ok.txt", d.join("alias.txt")).unwrap();
        std::os::unix::fs::symlink(&base, d.join("up")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", d.join("zero")).unwrap();
        let fifo = std::ffi::CString::new(d.join("pipe").into_os_string().into_encoded_bytes())
            .unwrap();
        // SAFETY: `fifo` is a NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        (http_root(&d).unwrap(), base)
    }

    #[test]
    fn http_never_leaves_the_directory_nor_blocks_on_a_fifo() {
        let (d, base) = hostile_dir();
        // Answered on another thread: opening the FIFO for reading would
        // block until a writer appears, which must not happen.
        let (tx, rx) = mpsc::channel();
        let root = d.clone();
        std::thread::spawn(move || {
            for (req, code) in [
                ("/ok.txt", "200"),
                ("/alias.txt", "200"),
                ("/secret", "404"),
                ("/up/secret.txt", "404"),
                ("/zero", "404"),
                ("/pipe", "403"),
            ] {
                let head = format!("GET {req} HTTP/1.0\r\n\r\n");
                let r = http_response(&root, head.as_bytes()).unwrap();
                let _ = tx.send((req, code, status(&r), r.1.is_some()));
            }
        });
        for _ in 0..6 {
            let (req, code, got, body) = rx
                .recv_timeout(Duration::from_secs(10))
                .expect("a request blocked the server");
            assert!(got.contains(code), "{req}: {got}");
            assert_eq!(body, code == "200", "{req}");
        }
        let _ = std::fs::remove_dir_all(base);
    }

    #[test]
    fn delayed_packets_pop_earliest_first() {
        let mut h = BinaryHeap::new();
        for (due, seq) in [(5, 1), (3, 2), (5, 0), (1, 3)] {
            h.push(Delayed {
                due,
                seq,
                dir: Dir::In,
                bytes: Vec::new(),
            });
        }
        let order: Vec<(u64, u64)> =
            std::iter::from_fn(|| h.pop().map(|d| (d.due, d.seq))).collect();
        assert_eq!(order, vec![(1, 3), (3, 2), (5, 0), (5, 1)]);
    }

    #[test]
    fn bad_options_are_refused_before_any_namespace() {
        let mut o = ServeOptions::new(ServeMode::Discard);
        o.port = 0;
        assert!(matches!(serve(o), Err(ServeError::Options(_))));
        let o = ServeOptions::new(ServeMode::Http(PathBuf::from("/nonexistent/tcpconform")));
        assert!(matches!(serve(o), Err(ServeError::Options(_))));
        assert!(run_cli(ServeMode::Echo, Some("loss=2"), None, None)
            .unwrap_err()
            .contains("between 0 and 1"));
    }
}
