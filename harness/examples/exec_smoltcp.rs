//! smoltcp 0.14 as an exec target: the other side of docs/exec-protocol.md
//! (version 1), written against the protocol only.
//!
//! tcpconform starts it inside the target's namespace
//! (`--target exec:/path/to/exec_smoltcp`); it drives a smoltcp `Interface`
//! on the TUN device it is handed as descriptor `$TCPCONFORM_TUN_FD`, at
//! `$TCPCONFORM_ADDR`, on its own clock (`std::time::Instant`), and answers
//! one JSON line per request on stdin. A script's `listen(fd, n)` makes `n`
//! smoltcp sockets listen on the port (smoltcp has no accept queue: a
//! listening socket becomes the connection), `accept` hands out one that
//! got past SYN-RECEIVED and puts a fresh listener in its place.
//!
//! What smoltcp has no counterpart for is answered *not applicable*:
//! `TCP_MAXSEG` (the MSS follows the interface MTU) and every sysctl.

use serde_json::{json, Value};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Medium, TunTapInterface};
use smoltcp::socket::tcp::{self, RecvError, State};
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, IpEndpoint, Ipv4Address, Ipv6Address};
use std::collections::BTreeMap;
use std::io::{Read, Write};

const O_RDWR: i64 = 0x2;
const O_NONBLOCK: i64 = 0x800;
const POLLIN: i64 = 0x1;
const POLLOUT: i64 = 0x4;
const POLLERR: i64 = 0x8;
const POLLHUP: i64 = 0x10;
const POLLNVAL: i64 = 0x20;
const POLLRDNORM: i64 = 0x40;
const POLLWRNORM: i64 = 0x100;
const POLLRDHUP: i64 = 0x2000;
const DEFAULT_BUF: usize = 64 * 1024;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| die(&format!("{name} is not set")))
}

fn die(why: &str) -> ! {
    eprintln!("exec_smoltcp: {why}");
    std::process::exit(2)
}

/// A script file descriptor.
enum Kind {
    Fresh,
    /// Listening sockets (one per backlog slot).
    Listener(Vec<SocketHandle>),
    Conn(Conn),
}

struct Conn {
    h: SocketHandle,
    connecting: bool,
    /// The peer's FIN arrived (reads return 0).
    fin: bool,
    /// The connection ended without our close or the peer's FIN.
    reset: bool,
    /// `SO_ERROR`, cleared when read.
    error: Option<&'static str>,
    closed_by_us: bool,
}

impl Conn {
    fn new(h: SocketHandle, connecting: bool) -> Conn {
        Conn {
            h,
            connecting,
            fin: false,
            reset: false,
            error: None,
            closed_by_us: false,
        }
    }
}

struct Fd {
    kind: Kind,
    nonblock: bool,
    opts: BTreeMap<String, Value>,
    /// `(len, sent)` of a blocking write that is pending.
    written: Option<(usize, usize)>,
}

impl Fd {
    fn new(kind: Kind) -> Fd {
        Fd {
            kind,
            nonblock: false,
            opts: BTreeMap::new(),
            written: None,
        }
    }

    fn buf(&self, opt: &str) -> usize {
        self.opts
            .get(opt)
            .and_then(Value::as_u64)
            .map_or(DEFAULT_BUF, |v| (v as usize).clamp(1024, 1 << 20))
    }
}

struct Stack {
    iface: Interface,
    dev: TunTapInterface,
    sockets: SocketSet<'static>,
    fds: BTreeMap<i64, Fd>,
    local: IpEndpoint,
    peer: IpEndpoint,
    mtu: usize,
    start: std::time::Instant,
}

/// A call that cannot complete now: `e` on a non-blocking socket, else
/// `would_block` (the harness asks again).
fn block(fd: &Fd, e: &str) -> Value {
    if fd.nonblock {
        err(e)
    } else {
        json!({"would_block": true})
    }
}

fn err(e: &str) -> Value {
    json!({"ret": -1, "errno": e})
}

fn ok(v: impl Into<Value>) -> Value {
    json!({"ret": v.into()})
}

impl Stack {
    fn new() -> Stack {
        let fd: i32 = env("TCPCONFORM_TUN_FD")
            .parse()
            .unwrap_or_else(|_| die("bad TUN fd"));
        let mtu: usize = env("TCPCONFORM_MTU").parse().unwrap_or(1500);
        let addr: IpAddress = env("TCPCONFORM_ADDR")
            .parse()
            .unwrap_or_else(|_| die("bad address"));
        let port: u16 = env("TCPCONFORM_PORT")
            .parse()
            .unwrap_or_else(|_| die("bad port"));
        let peer: IpAddress = env("TCPCONFORM_PEER_ADDR")
            .parse()
            .unwrap_or_else(|_| die("bad peer"));
        let peer_port: u16 = env("TCPCONFORM_PEER_PORT")
            .parse()
            .unwrap_or_else(|_| die("bad port"));
        let mut dev = TunTapInterface::from_fd(fd, Medium::Ip, mtu)
            .unwrap_or_else(|e| die(&format!("TUN descriptor {fd}: {e}")));
        let start = std::time::Instant::now();
        let mut config = Config::new(HardwareAddress::Ip);
        config.random_seed = 0x7463_70c0;
        let mut iface = Interface::new(config, &mut dev, Instant::from_micros(0));
        // The peer is off-link: a default route (the gateway is never
        // contacted on an IP-medium device).
        iface.update_ip_addrs(|a| {
            let prefix = if matches!(addr, IpAddress::Ipv4(_)) {
                24
            } else {
                64
            };
            a.push(IpCidr::new(addr, prefix))
                .unwrap_or_else(|_| die("address table full"));
        });
        let routed = match addr {
            IpAddress::Ipv4(a) => {
                let o = a.octets();
                iface
                    .routes_mut()
                    .add_default_ipv4_route(Ipv4Address::new(o[0], o[1], o[2], 254))
            }
            IpAddress::Ipv6(a) => {
                let mut o = a.octets();
                o[15] = 0xfe;
                iface
                    .routes_mut()
                    .add_default_ipv6_route(Ipv6Address::from(o))
            }
        };
        routed.unwrap_or_else(|_| die("route table full"));
        Stack {
            iface,
            dev,
            sockets: SocketSet::new(vec![]),
            fds: BTreeMap::new(),
            local: IpEndpoint::new(addr, port),
            peer: IpEndpoint::new(peer, peer_port),
            mtu,
            start,
        }
    }

    fn now(&self) -> Instant {
        Instant::from_micros(self.start.elapsed().as_micros() as i64)
    }

    /// Runs the interface (every packet queued on the device, timers,
    /// output) and notes what happened to each connection.
    fn poll(&mut self) {
        let now = self.now();
        self.iface.poll(now, &mut self.dev, &mut self.sockets);
        for fd in self.fds.values_mut() {
            let Kind::Conn(c) = &mut fd.kind else {
                continue;
            };
            let state = self.sockets.get::<tcp::Socket>(c.h).state();
            match state {
                State::CloseWait | State::LastAck | State::Closing | State::TimeWait => {
                    c.fin = true
                }
                State::Closed if !c.closed_by_us && !c.fin && !c.reset => {
                    c.reset = true;
                    c.error = Some(if c.connecting {
                        "ECONNREFUSED"
                    } else {
                        "ECONNRESET"
                    });
                }
                _ => {}
            }
        }
    }

    fn new_socket(&mut self, fd: &Fd) -> SocketHandle {
        let rx = tcp::SocketBuffer::new(vec![0; fd.buf("SO_RCVBUF")]);
        let tx = tcp::SocketBuffer::new(vec![0; fd.buf("SO_SNDBUF")]);
        let mut s = tcp::Socket::new(rx, tx);
        if let Some(v) = fd.opts.get("TCP_NODELAY").and_then(Value::as_i64) {
            s.set_nagle_enabled(v == 0);
        }
        self.sockets.add(s)
    }

    fn listener(&mut self, fd: &Fd) -> Option<SocketHandle> {
        let h = self.new_socket(fd);
        match self
            .sockets
            .get_mut::<tcp::Socket>(h)
            .listen(self.local.port)
        {
            Ok(()) => Some(h),
            Err(_) => {
                self.sockets.remove(h);
                None
            }
        }
    }

    fn lowest_free(&self) -> i64 {
        (3..).find(|n| !self.fds.contains_key(n)).unwrap_or(3)
    }

    fn handle(&mut self, req: &Value) -> Value {
        let call = req["call"].as_str().unwrap_or("");
        match call {
            "socket" => {
                let fd = self.lowest_free();
                self.fds.insert(fd, Fd::new(Kind::Fresh));
                return ok(fd);
            }
            "poll" => return self.poll_call(req),
            "sysctl" => {
                return json!({"not_applicable": format!(
                    "smoltcp has no counterpart for sysctl {}", req["name"].as_str().unwrap_or("?"))})
            }
            _ => {}
        }
        let n = req["fd"].as_i64().unwrap_or(-1);
        let Some(mut fd) = self.fds.remove(&n) else {
            return err("EBADF");
        };
        let answer = self.on_fd(call, n, &mut fd, req);
        if call != "close" {
            self.fds.insert(n, fd);
        }
        answer
    }

    /// A call on one descriptor (taken out of the table meanwhile).
    fn on_fd(&mut self, call: &str, n: i64, fd: &mut Fd, req: &Value) -> Value {
        match call {
            "bind" => ok(0),
            "listen" => {
                if let Kind::Fresh = fd.kind {
                    let slots = req["backlog"].as_i64().unwrap_or(1).clamp(1, 16);
                    let pool: Option<Vec<_>> = (0..slots).map(|_| self.listener(fd)).collect();
                    let Some(pool) = pool else {
                        return err("EADDRINUSE");
                    };
                    fd.kind = Kind::Listener(pool);
                }
                ok(0)
            }
            "accept" => self.accept(n, fd),
            "connect" => self.connect(fd),
            "write" => self.write(fd, req["len"].as_u64().unwrap_or(0) as usize),
            "read" => self.read(fd, req["len"].as_u64().unwrap_or(0) as usize),
            "close" => {
                let linger0 = fd
                    .opts
                    .get("SO_LINGER")
                    .is_some_and(|l| l["l_onoff"] != 0 && l["l_linger"] == 0);
                match &mut fd.kind {
                    Kind::Fresh => {}
                    Kind::Listener(pool) => {
                        for h in pool.drain(..) {
                            self.sockets.get_mut::<tcp::Socket>(h).abort();
                        }
                    }
                    Kind::Conn(c) => {
                        let s = self.sockets.get_mut::<tcp::Socket>(c.h);
                        if linger0 {
                            s.abort()
                        } else {
                            s.close()
                        }
                    }
                }
                ok(0)
            }
            "shutdown" => {
                let Kind::Conn(c) = &mut fd.kind else {
                    return err("ENOTCONN");
                };
                if req["how"] != "SHUT_RD" {
                    c.closed_by_us = true;
                    self.sockets.get_mut::<tcp::Socket>(c.h).close();
                }
                ok(0)
            }
            "setsockopt" => self.setsockopt(fd, req),
            "getsockopt" => self.getsockopt(fd, req),
            "fcntl" if req["cmd"] == "F_GETFL" => {
                ok(O_RDWR | if fd.nonblock { O_NONBLOCK } else { 0 })
            }
            "fcntl" => {
                fd.nonblock = req["flags"].as_i64().unwrap_or(0) & O_NONBLOCK != 0;
                ok(0)
            }
            other => {
                json!({"not_applicable": format!("exec_smoltcp does not know the call `{other}`")})
            }
        }
    }

    /// An established connection from the listener `n`'s pool, replaced by
    /// a fresh listening socket.
    fn accept(&mut self, n: i64, fd: &mut Fd) -> Value {
        let Kind::Listener(pool) = &mut fd.kind else {
            return err("EINVAL");
        };
        let ready = pool.iter().position(|h| {
            !matches!(
                self.sockets.get::<tcp::Socket>(*h).state(),
                State::Listen | State::SynReceived
            )
        });
        let Some(i) = ready else {
            return block(fd, "EAGAIN");
        };
        let h = pool.remove(i);
        if let Some(l) = self.listener(fd) {
            if let Kind::Listener(pool) = &mut fd.kind {
                pool.push(l);
            }
        }
        // The listener is out of the table meanwhile: skip its number.
        let new = (3..)
            .find(|k| *k != n && !self.fds.contains_key(k))
            .unwrap_or(n + 1);
        self.fds
            .insert(new, Fd::new(Kind::Conn(Conn::new(h, false))));
        ok(new)
    }

    fn read(&mut self, fd: &mut Fd, len: usize) -> Value {
        let Kind::Conn(c) = &mut fd.kind else {
            return err("ENOTCONN");
        };
        let mut buf = vec![0u8; len];
        let s = self.sockets.get_mut::<tcp::Socket>(c.h);
        match s.recv_slice(&mut buf) {
            Ok(0) if !buf.is_empty() && !c.fin => {
                if c.reset {
                    err("ECONNRESET")
                } else {
                    block(fd, "EAGAIN")
                }
            }
            Ok(got) => ok(got as i64),
            Err(RecvError::Finished) => ok(0),
            Err(RecvError::InvalidState) if c.fin => ok(0),
            Err(RecvError::InvalidState) if c.reset => err("ECONNRESET"),
            Err(RecvError::InvalidState) => block(fd, "EAGAIN"),
        }
    }

    fn connect(&mut self, fd: &mut Fd) -> Value {
        match &mut fd.kind {
            Kind::Fresh => {
                let h = self.new_socket(fd);
                let cx = self.iface.context();
                let s = self.sockets.get_mut::<tcp::Socket>(h);
                if s.connect(cx, self.peer, self.local).is_err() {
                    self.sockets.remove(h);
                    return err("EADDRNOTAVAIL");
                }
                fd.kind = Kind::Conn(Conn::new(h, true));
                if fd.nonblock {
                    err("EINPROGRESS")
                } else {
                    json!({"would_block": true})
                }
            }
            Kind::Conn(c) if c.connecting => {
                if c.reset {
                    c.connecting = false;
                    return err(c.error.take().unwrap_or("ECONNREFUSED"));
                }
                match self.sockets.get::<tcp::Socket>(c.h).state() {
                    State::SynSent | State::SynReceived if fd.nonblock => err("EALREADY"),
                    State::SynSent | State::SynReceived => json!({"would_block": true}),
                    _ => {
                        c.connecting = false;
                        ok(0)
                    }
                }
            }
            Kind::Conn(_) => err("EISCONN"),
            Kind::Listener(_) => err("EINVAL"),
        }
    }

    fn write(&mut self, fd: &mut Fd, len: usize) -> Value {
        let Kind::Conn(c) = &fd.kind else {
            return err("ENOTCONN");
        };
        let h = c.h;
        if c.reset {
            return err("EPIPE");
        }
        let mut sent = match fd.written.take() {
            Some((l, s)) if l == len => s,
            _ => 0,
        };
        let s = self.sockets.get_mut::<tcp::Socket>(h);
        if !s.may_send() && !matches!(s.state(), State::SynSent | State::SynReceived) {
            return err("EPIPE");
        }
        let data: Vec<u8> = (sent..len).map(|i| b'A' + (i % 26) as u8).collect();
        sent += s.send_slice(&data).unwrap_or(0);
        if sent >= len {
            return ok(len as i64);
        }
        if fd.nonblock {
            return if sent > 0 {
                ok(sent as i64)
            } else {
                err("EAGAIN")
            };
        }
        fd.written = Some((len, sent));
        json!({"would_block": true})
    }

    fn setsockopt(&mut self, fd: &mut Fd, req: &Value) -> Value {
        let opt = req["opt"].as_str().unwrap_or("");
        if opt == "TCP_MAXSEG" {
            return json!({"not_applicable": "smoltcp announces the MSS of the interface MTU; it has no per-socket MSS"});
        }
        fd.opts.insert(opt.to_string(), req["value"].clone());
        let mut r = ok(0);
        match (&fd.kind, opt) {
            (Kind::Conn(c), "TCP_NODELAY") => {
                let on = req["value"].as_i64().unwrap_or(0) != 0;
                self.sockets
                    .get_mut::<tcp::Socket>(c.h)
                    .set_nagle_enabled(!on);
            }
            (Kind::Fresh, _) | (_, "SO_LINGER") | (_, "SO_REUSEADDR") => {}
            (_, _) => r["note"] = json!(format!("{opt} set after the socket exists: not applied")),
        }
        r
    }

    fn getsockopt(&mut self, fd: &mut Fd, req: &Value) -> Value {
        let opt = req["opt"].as_str().unwrap_or("");
        let value = match opt {
            "SO_ERROR" => match &mut fd.kind {
                Kind::Conn(c) => c.error.take().map_or(json!(0), |e| json!(e)),
                _ => json!(0),
            },
            "SO_LINGER" => fd
                .opts
                .get(opt)
                .cloned()
                .unwrap_or(json!({"l_onoff": 0, "l_linger": 0})),
            "SO_RCVBUF" | "SO_SNDBUF" => json!(fd.buf(opt)),
            "TCP_MAXSEG" => json!(self.mtu as i64 - 40),
            "TCP_NODELAY" => {
                let nagle = match &fd.kind {
                    Kind::Conn(c) => self.sockets.get::<tcp::Socket>(c.h).nagle_enabled(),
                    _ => fd.opts.get(opt).and_then(Value::as_i64).unwrap_or(0) == 0,
                };
                json!(i64::from(!nagle))
            }
            _ => fd.opts.get(opt).cloned().unwrap_or(json!(0)),
        };
        json!({"ret": 0, "value": value})
    }

    fn revents(&self, fd: Option<&Fd>) -> i64 {
        let Some(fd) = fd else { return POLLNVAL };
        match &fd.kind {
            Kind::Fresh => POLLOUT | POLLHUP,
            Kind::Listener(pool) => {
                let ready = pool.iter().any(|h| {
                    !matches!(
                        self.sockets.get::<tcp::Socket>(*h).state(),
                        State::Listen | State::SynReceived
                    )
                });
                if ready {
                    POLLIN | POLLRDNORM
                } else {
                    0
                }
            }
            Kind::Conn(c) => {
                let s = self.sockets.get::<tcp::Socket>(c.h);
                let mut r = 0;
                if s.can_recv() || c.fin {
                    r |= POLLIN | POLLRDNORM;
                }
                if c.fin {
                    r |= POLLRDHUP;
                }
                if s.can_send() && !c.connecting {
                    r |= POLLOUT | POLLWRNORM;
                }
                if c.reset {
                    r |= POLLIN | POLLRDNORM | POLLERR | POLLHUP | POLLRDHUP;
                }
                r
            }
        }
    }

    fn poll_call(&self, req: &Value) -> Value {
        let entries = req["fds"].as_array().cloned().unwrap_or_default();
        let revents: Vec<i64> = entries
            .iter()
            .map(|e| {
                let all = self.revents(self.fds.get(&e["fd"].as_i64().unwrap_or(-1)));
                all & (e["events"].as_i64().unwrap_or(0) | POLLERR | POLLHUP | POLLNVAL)
            })
            .collect();
        let ready = revents.iter().filter(|r| **r != 0).count();
        json!({"ret": ready, "revents": revents})
    }
}

/// Waits until stdin or the TUN device is readable, or `timeout` (ms)
/// passes.
fn wait(tun: i32, timeout_ms: i32) {
    let mut fds = [
        libc::pollfd {
            fd: 0,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: tun,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // SAFETY: `fds` is a live array of two pollfd entries.
    unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout_ms) };
}

fn main() {
    if env("TCPCONFORM_PROTOCOL") != "1" {
        die("this program speaks protocol version 1");
    }
    let tun: i32 = env("TCPCONFORM_TUN_FD").parse().unwrap_or(3);
    let mut stack = Stack::new();
    let mut out = std::io::stdout().lock();
    let hello = json!({"v": 1, "hello": "exec_smoltcp: smoltcp 0.14"});
    writeln!(out, "{hello}")
        .and_then(|()| out.flush())
        .unwrap_or_else(|_| die("stdout closed"));
    let mut stdin = std::io::stdin().lock();
    // SAFETY: F_SETFL on our own stdin; only adds O_NONBLOCK.
    unsafe {
        libc::fcntl(
            0,
            libc::F_SETFL,
            libc::fcntl(0, libc::F_GETFL) | libc::O_NONBLOCK,
        )
    };
    let mut pending = Vec::new();
    loop {
        stack.poll();
        let delay = stack.iface.poll_delay(stack.now(), &stack.sockets);
        let ms = delay.map_or(100, |d| (d.total_micros().div_ceil(1000)).min(100) as i32);
        wait(tun, ms);
        let mut chunk = [0u8; 4096];
        match stdin.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => die(&format!("reading stdin: {e}")),
        }
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let req: Value =
                serde_json::from_slice(&line).unwrap_or_else(|e| die(&format!("bad request: {e}")));
            // Every packet injected before the request is on the device.
            stack.poll();
            let mut answer = stack.handle(&req);
            stack.poll();
            answer["id"] = req["id"].clone();
            writeln!(out, "{answer}")
                .and_then(|()| out.flush())
                .unwrap_or_else(|_| die("stdout closed"));
        }
    }
}
