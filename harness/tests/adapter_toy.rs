//! The adapter trait (`tcp_harness::run::adapter::Stack`) with a toy stack
//! written here: passive open, one connection, RST handling — once as the
//! RFC asks (RFC 5961 3.2: only a RST at RCV.NXT resets, any other RST in
//! the window draws a challenge ACK) and once deliberately broken (any RST
//! in the window resets). `diff` must pass the first and report the second
//! as a MUST-violation of row SYNC.RST.challenge, on the line that shows it.

use std::net::SocketAddr;
use tcp_harness::run::adapter::{AdapterTarget, CallError, SocketStatus, Stack};
use tcp_harness::run::diff::{self, Class, DiffOptions};
use tcp_harness::run::target::{How, Micros, OptValue, SockOpt, Target};
use tcp_harness::run::wire::{self, Outgoing, WireSegment};
use tcp_harness::run::{run_text, suite, RunOptions};
use tcp_harness::script::TcpFlags;
use tcp_spec::{Profile, State};

const ISS: u32 = 1_000_000;
const LISTENER: u32 = 0;
const CONN: u32 = 1;

/// One listener, at most one connection.
struct Toy {
    /// Breaks RFC 5961 3.2: every RST in the window resets.
    broken: bool,
    state: State,
    peer: Option<WireSegment>,
    rcv_nxt: u32,
    accepted: bool,
    error: Option<&'static str>,
    out: Vec<Vec<u8>>,
}

impl Toy {
    fn new(broken: bool) -> Toy {
        Toy {
            broken,
            state: State::Closed,
            peer: None,
            rcv_nxt: 0,
            accepted: false,
            error: None,
            out: Vec::new(),
        }
    }

    /// Sends `<SEQ=seq><ACK=RCV.NXT><CTL=flags>` to the peer.
    fn send(&mut self, seq: u32, flags: TcpFlags) {
        let Some(p) = &self.peer else { return };
        let built = wire::build(&Outgoing {
            src: p.dst,
            dst: p.src,
            src_port: p.dst_port,
            dst_port: p.src_port,
            seq,
            ack: self.rcv_nxt,
            flags,
            win: 65535,
            urg: 0,
            options: &[],
            payload_len: 0,
            ecn: 0,
        });
        if let Ok(b) = built {
            self.out.push(b);
        }
    }
}

fn flags(syn: bool) -> TcpFlags {
    TcpFlags {
        syn,
        ack: true,
        ..TcpFlags::default()
    }
}

impl Stack for Toy {
    type Handle = u32;

    fn name(&self) -> &'static str {
        "toy"
    }

    fn deliver(&mut self, _now: Micros, packet: &[u8]) -> Result<(), String> {
        let Ok(seg) = wire::decode(packet) else {
            return Ok(());
        };
        match self.state {
            State::Listen if seg.flags.syn && !seg.flags.ack => {
                self.rcv_nxt = seg.seq.wrapping_add(1);
                self.peer = Some(seg);
                self.state = State::SynReceived;
                self.send(ISS, flags(true));
            }
            State::SynReceived if seg.flags.ack && seg.ack == ISS.wrapping_add(1) => {
                self.state = State::Established;
            }
            State::Established if seg.flags.rst => {
                let offset = seg.seq.wrapping_sub(self.rcv_nxt);
                if offset == 0 || (self.broken && offset < 65535) {
                    self.state = State::Closed;
                    self.error = Some("ECONNRESET");
                } else if offset < 65535 {
                    self.send(ISS.wrapping_add(1), flags(false));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn transmit(&mut self, _now: Micros) -> Option<Vec<u8>> {
        self.out.pop()
    }

    fn next_timer(&self) -> Option<Micros> {
        None
    }

    fn on_timer(&mut self, _now: Micros) {}

    fn listen(&mut self, _: Micros, _: SocketAddr, _: usize) -> Result<u32, CallError> {
        self.state = State::Listen;
        Ok(LISTENER)
    }

    fn accept(&mut self, _: Micros, _: u32) -> Result<Option<u32>, CallError> {
        let ready = self.state != State::Listen && self.state != State::SynReceived;
        if ready && !self.accepted {
            self.accepted = true;
            return Ok(Some(CONN));
        }
        Ok(None)
    }

    fn connect(&mut self, _: Micros, _: SocketAddr, _: SocketAddr) -> Result<u32, CallError> {
        Err(CallError::NotApplicable("the toy only listens".into()))
    }

    fn send(&mut self, _: Micros, _: u32, _: &[u8]) -> Result<usize, CallError> {
        Err(CallError::NotApplicable("the toy sends no data".into()))
    }

    fn recv(&mut self, _: Micros, _: u32, _: &mut [u8]) -> Result<usize, CallError> {
        match self.error.take() {
            Some(e) => Err(CallError::Errno(e)),
            None => Err(CallError::WouldBlock),
        }
    }

    fn shutdown(&mut self, _: Micros, _: u32, _: How) -> Result<(), CallError> {
        Err(CallError::NotApplicable("the toy cannot close".into()))
    }

    fn close(&mut self, _: Micros, _: u32) -> Result<(), CallError> {
        Ok(())
    }

    fn abort(&mut self, _: Micros, _: u32) -> Result<(), CallError> {
        Ok(())
    }

    fn status(&mut self, h: u32) -> Result<SocketStatus, &'static str> {
        if h != CONN {
            return Err("EBADF");
        }
        Ok(SocketStatus {
            state: self.state,
            readable: 0,
            fin_received: false,
            writable: false,
            error: self.error.is_some(),
        })
    }

    fn take_error(&mut self, _: u32) -> Option<&'static str> {
        self.error.take()
    }

    fn set_option(&mut self, _: SockOpt, _: OptValue) -> Option<String> {
        None
    }

    fn get_option(&self, _: SockOpt) -> OptValue {
        OptValue::Int(0)
    }
}

/// A RST inside the window draws a challenge ACK (line 9); the RST at
/// RCV.NXT resets (line 10).
const SCRIPT: &str = "\
0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    bind(3, ..., ...) = 0
+0    listen(3, 1) = 0
+0    < S 0:0(0) win 65535 <mss 1460>
+0    > S. 0:0(0) ack 1 <...>
+.1   < . 1:1(0) ack 1 win 65535
+0    accept(3, ..., ...) = 4
+.1   < R 100:100(0) win 0
+0    > . 1:1(0) ack 1
+.1   < R 1:1(0) win 0
+0    read(4, ..., 100) = -1 ECONNRESET (Connection reset by peer)
";

/// `diff` of own and the toy (`broken` or not) on [`SCRIPT`].
fn diff_toy(broken: bool) -> diff::ScriptDiff {
    let opts = DiffOptions {
        targets: vec!["own".into(), "toy".into()],
        profile: Profile::Rfc9293,
        ..DiffOptions::default()
    };
    let mut make = |name: &str, p: Profile| -> Result<Box<dyn Target>, String> {
        match name {
            "toy" => Ok(Box::new(AdapterTarget::from_stack(Toy::new(broken)))),
            other => suite::make_target(other, p),
        }
    };
    diff::diff_text("toy.pkt", SCRIPT, &opts, &mut make)
}

#[test]
fn a_conforming_toy_stack_passes_through_the_adapter() {
    let mut t = AdapterTarget::from_stack(Toy::new(false));
    let r = run_text("toy.pkt", SCRIPT, &mut t, &RunOptions::default());
    assert!(r.passed(), "{}", r.details());
    // Only the sender's choices differ from own (the toy sends no MSS).
    let d = diff_toy(false);
    assert!(
        d.divergences.iter().all(|x| x.class == Class::Allowed),
        "{}",
        d.text()
    );
}

#[test]
fn a_broken_toy_stack_is_reported_as_a_must_violation() {
    let d = diff_toy(true);
    let found = d
        .divergences
        .iter()
        .find(|x| x.target == "toy" && x.line == 9)
        .unwrap_or_else(|| panic!("no divergence of the toy at line 9:\n{}", d.text()));
    assert_eq!(found.class, Class::MustViolation, "{}", d.text());
    assert_eq!(
        found.rows.first().map(String::as_str),
        Some("SYNC.RST.challenge")
    );
    assert!(d.worst().is_some_and(Class::departs));
}

#[test]
fn a_call_the_stack_cannot_make_is_not_applicable_with_its_line() {
    let script = format!("{SCRIPT}+0    write(4, ..., 10) = 10\n");
    let mut t = AdapterTarget::from_stack(Toy::new(false));
    let r = run_text("toy.pkt", &script, &mut t, &RunOptions::default());
    assert!(r.not_applicable(), "{}", r.details());
    let why = r.details();
    assert!(
        why.contains("toy.pkt:12:") && why.contains("the toy sends no data"),
        "{why}"
    );
}
