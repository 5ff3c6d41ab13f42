//! SACK between two own endpoints (RFC 2018, RFC 6675), through the public
//! API: the option is negotiated only when both SYNs carry it, a receiver
//! reports the data it holds beyond a hole (the newest arrival first), and
//! a sender repairs several holes of one window in one round trip each
//! way, without a retransmission timeout, where NewReno needs a round
//! trip per hole. With RACK-TLP (RFC 8985) a lost retransmission and a
//! lost tail are repaired without a timeout too; the probe goes out once
//! an episode, also during SACK recovery (a departure from §7.2 that
//! `Conn::tlp_schedule` explains), and a probe that only replaced a lost
//! ACK draws no congestion response (§7.4.2).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tcp_stack::packet::{parse, Segment};
use tcp_stack::{Config, Endpoint, Handle, Instant};

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
const MSS: usize = 1460;

fn endpoint(addr: IpAddr, secret: u8, sack: bool, rack: bool) -> Endpoint {
    let mut c = Config::new(vec![addr]);
    c.secret = [secret; 32];
    c.sack = sack;
    c.rack = rack;
    c.log_transitions = true;
    c.recv_buf = 256 * 1024;
    c.send_buf = 256 * 1024;
    Endpoint::new(c).unwrap_or_else(|e| panic!("{e}"))
}

/// Two endpoints, a connection from A to B, and what crossed the wire.
struct Pair {
    a: Endpoint,
    b: Endpoint,
    now: Instant,
    conn: Handle,
    peer: Option<Handle>,
    listener: Handle,
    /// Every segment A sent, in order.
    a_sent: Vec<Segment>,
    /// Every segment B sent, in order.
    b_sent: Vec<Segment>,
    /// The virtual time each of `b_sent` went out at.
    b_sent_at: Vec<Instant>,
    /// Data segments of A (by offset of their first octet from the
    /// first data octet) to drop the first time they are sent.
    drop_once: HashSet<u32>,
    /// Data segments of A to drop the first two times they are sent (the
    /// retransmission is lost too).
    drop_twice: HashSet<u32>,
    /// B's pure ACKs to drop: by the offset they acknowledge (as above),
    /// how many of them.
    drop_acks: HashMap<u32, u32>,
    /// How often each data offset was sent.
    sends: HashMap<u32, u32>,
    /// The virtual times each data offset was sent at.
    sent_at: HashMap<u32, Vec<Instant>>,
    a_iss: Option<u32>,
    /// Rounds that moved packets (each is one round trip).
    rounds: u32,
    /// Retransmission timeouts A took (its `SYNC.RTO` rows).
    rtos: usize,
}

impl Pair {
    fn new(sack_a: bool, sack_b: bool) -> Pair {
        Pair::with_rack(sack_a, sack_b, false)
    }

    /// A pair whose sender A runs RACK-TLP or not.
    fn with_rack(sack_a: bool, sack_b: bool, rack: bool) -> Pair {
        let mut a = endpoint(A, 1, sack_a, rack);
        let mut b = endpoint(B, 2, sack_b, false);
        let now = Instant::from_micros(1_000_000);
        let listener = b.listen(now, Some(B), 80, 4).expect("listen");
        let conn = a
            .connect(now, SocketAddr::new(A, 0), SocketAddr::new(B, 80))
            .expect("connect");
        let mut p = Pair {
            a,
            b,
            now,
            conn,
            peer: None,
            listener,
            a_sent: Vec::new(),
            b_sent: Vec::new(),
            b_sent_at: Vec::new(),
            drop_once: HashSet::new(),
            drop_twice: HashSet::new(),
            drop_acks: HashMap::new(),
            sends: HashMap::new(),
            sent_at: HashMap::new(),
            a_iss: None,
            rounds: 0,
            rtos: 0,
        };
        p.settle();
        p
    }

    /// One round: A's packets to B (minus the chosen losses), then B's to
    /// A. Returns whether anything moved.
    fn round(&mut self) -> bool {
        let mut moved = false;
        while let Some(pkt) = self.a.poll_transmit(self.now) {
            moved = true;
            let seg = parse(&pkt, |x| x == B).expect("A sends well-formed packets");
            if seg.flags.syn {
                self.a_iss = Some(seg.seq.0);
            }
            let off = seg
                .seq
                .0
                .wrapping_sub(self.a_iss.unwrap_or(0).wrapping_add(1));
            let mut nth = 0;
            if !seg.payload.is_empty() {
                let n = self.sends.entry(off).or_insert(0);
                *n += 1;
                nth = *n;
                self.sent_at.entry(off).or_default().push(self.now);
            }
            self.a_sent.push(seg.clone());
            let dropped = (nth == 1 && self.drop_once.contains(&off))
                || ((nth == 1 || nth == 2) && self.drop_twice.contains(&off));
            if dropped {
                continue;
            }
            self.b.handle_packet(self.now, &pkt);
        }
        while let Some(pkt) = self.b.poll_transmit(self.now) {
            moved = true;
            let seg = parse(&pkt, |x| x == A).expect("B sends well-formed packets");
            let acked = seg
                .ack
                .0
                .wrapping_sub(self.a_iss.unwrap_or(0).wrapping_add(1));
            let left = self.drop_acks.get_mut(&acked).filter(|n| **n > 0);
            let drop = seg.payload.is_empty() && left.map(|n| *n -= 1).is_some();
            self.b_sent.push(seg);
            self.b_sent_at.push(self.now);
            if drop {
                continue;
            }
            self.a.handle_packet(self.now, &pkt);
        }
        if self.peer.is_none() {
            self.peer = self.b.accept(self.listener).ok().map(|(h, _)| h);
        }
        self.rtos += self
            .a
            .drain_transitions()
            .iter()
            .filter(|t| t.row == "SYNC.RTO")
            .count();
        drop(self.b.drain_transitions());
        moved
    }

    /// Moves packets until nothing moves; then lets the clock reach the
    /// next timer and goes on, until `done` or a minute of virtual time.
    fn run(&mut self, mut done: impl FnMut(&mut Pair) -> bool) {
        let limit = self.now.plus_micros(60_000_000);
        while !done(self) && self.now < limit {
            if self.round() {
                self.rounds += 1;
                continue;
            }
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let Some(t) = next else { break };
            self.now = self.now.max(t);
            self.a.handle_timeout(self.now);
            self.b.handle_timeout(self.now);
        }
    }

    fn settle(&mut self) {
        while self.round() {}
    }

    /// Sends `data` from A and reads it at B; returns what B read.
    fn transfer(&mut self, data: &[u8]) -> Vec<u8> {
        let sent = self.a.send(self.now, self.conn, data).expect("send");
        assert_eq!(sent, data.len(), "the send buffer takes it all");
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let want = data.len();
        self.run(|p| {
            if let Some(h) = p.peer {
                while let Ok(n) = p.b.recv(p.now, h, &mut buf) {
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
            }
            got.len() >= want
        });
        got
    }
}

fn stream(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn sack_permitted_is_used_only_when_both_syns_carry_it() {
    for (sa, sb) in [(true, true), (true, false), (false, true), (false, false)] {
        let mut p = Pair::new(sa, sb);
        let syn = p.a_sent.iter().find(|s| s.flags.syn).expect("a SYN");
        let synack = p.b_sent.iter().find(|s| s.flags.syn).expect("a SYN-ACK");
        assert_eq!(syn.options.sack_permitted, sa, "SYN of A (sack {sa})");
        assert_eq!(
            synack.options.sack_permitted,
            sa && sb,
            "SYN-ACK ({sa}, {sb})"
        );
        // A hole: B holds later data. Blocks only when both permit SACK.
        p.drop_once.insert(0);
        let data = stream(8 * MSS);
        assert_eq!(p.transfer(&data), data);
        let blocks = p.b_sent.iter().any(|s| !s.options.sack_blocks.is_empty());
        assert_eq!(blocks, sa && sb, "SACK blocks on B's ACKs ({sa}, {sb})");
        let a_blocks = p.a_sent.iter().any(|s| !s.options.sack_blocks.is_empty());
        assert!(!a_blocks, "A received nothing out of order");
    }
}

#[test]
fn blocks_report_the_held_data_newest_first() {
    let mut p = Pair::new(true, true);
    let m = MSS as u32;
    // Segments 1 and 4 (of 0..10) are lost: B holds 2..4 and 5..10.
    p.drop_once.extend([m, 4 * m]);
    let data = stream(10 * MSS);
    assert_eq!(p.transfer(&data), data);
    let base = p.a_iss.expect("A's ISS").wrapping_add(1);
    let rel = |s: tcp_stack::SeqNum| s.0.wrapping_sub(base);
    let with_blocks: Vec<&Segment> = p
        .b_sent
        .iter()
        .filter(|s| !s.options.sack_blocks.is_empty())
        .collect();
    assert!(!with_blocks.is_empty());
    for s in &with_blocks {
        let blocks = s.options.sack_blocks.as_slice();
        for (l, r) in blocks {
            // Every block lies beyond the cumulative ACK and is not empty.
            assert!(rel(*l) > rel(s.ack) && rel(*r) > rel(*l), "{blocks:?}");
        }
    }
    // The ACK of segment 5 (the first after the second hole) names the
    // run 5.. first and repeats the run 2..4 after it.
    let after_second_hole = with_blocks
        .iter()
        .find(|s| s.options.sack_blocks.len() == 2)
        .expect("an ACK with two blocks");
    let b: Vec<(u32, u32)> = after_second_hole
        .options
        .sack_blocks
        .as_slice()
        .iter()
        .map(|(l, r)| (rel(*l), rel(*r)))
        .collect();
    assert_eq!(b[0].0, 5 * m, "newest first: {b:?}");
    assert_eq!(b[1], (2 * m, 4 * m), "the earlier run repeated: {b:?}");
}

/// Rounds and timeouts to move 40 segments with three of the first
/// window's lost.
fn lossy_window(sack: bool) -> (u32, usize, Vec<u8>, Vec<u8>) {
    let mut p = Pair::new(sack, sack);
    let m = MSS as u32;
    let data = stream(40 * MSS);
    // Grow the window first, so the losses fall in one large flight.
    let warm = stream(60 * MSS);
    assert_eq!(p.transfer(&warm), warm);
    let base = 60 * m;
    p.drop_once
        .extend([base + 3 * m, base + 6 * m, base + 9 * m]);
    p.rounds = 0;
    let got = p.transfer(&data);
    (p.rounds, p.rtos, got, data)
}

#[test]
fn three_losses_in_one_window_are_repaired_without_a_timeout() {
    let (sack_rounds, sack_rtos, got, data) = lossy_window(true);
    assert!(got == data, "SACK: the stream arrives intact");
    assert_eq!(sack_rtos, 0, "SACK recovery needs no timeout");
    let (reno_rounds, _, got, data) = lossy_window(false);
    assert!(got == data, "NewReno: the stream arrives intact");
    assert!(
        sack_rounds < reno_rounds,
        "SACK repairs the holes together ({sack_rounds} rounds), NewReno one per round trip ({reno_rounds})"
    );
}

/// A warmed-up RACK (or not) pair that then sends `segments` segments,
/// dropping as set up by `drops`; returns the pair after the transfer.
fn rack_transfer(rack: bool, segments: usize, drops: impl FnOnce(&mut Pair, u32)) -> Pair {
    let mut p = Pair::with_rack(true, true, rack);
    let warm = stream(60 * MSS);
    assert_eq!(p.transfer(&warm), warm);
    drops(&mut p, 60 * MSS as u32);
    p.rtos = 0;
    let data = stream(segments * MSS);
    assert!(p.transfer(&data) == data, "the stream arrives intact");
    p
}

#[test]
fn rack_repairs_a_lost_retransmission_without_a_timeout() {
    // Segments 3 and 10 of the last flight are lost, and so is the first
    // retransmission of segment 3. No new data follows, so only RACK's
    // rule (the retransmission of 10, sent later, was delivered) finds the
    // second loss before the timer (RFC 8985 §6.2).
    let m = MSS as u32;
    let drops = |p: &mut Pair, base: u32| {
        p.drop_twice.insert(base + 3 * m);
        p.drop_once.insert(base + 10 * m);
    };
    let p = rack_transfer(true, 20, drops);
    assert_eq!(p.rtos, 0, "RACK repairs it without a timeout");
    let stats = p.a.stats();
    assert!(stats.rack_lost >= 1, "RACK marked it lost: {stats:?}");
    assert_eq!(p.sends.get(&(63 * m)), Some(&3), "sent three times");
    // The same losses without RACK wait for the retransmission timer: the
    // scenario needs the rule.
    let p = rack_transfer(false, 20, drops);
    assert!(p.rtos >= 1, "without RACK a timeout repairs it");
}

#[test]
fn a_lost_tail_is_probed_at_the_pto_not_repaired_by_the_timeout() {
    let m = MSS as u32;
    let last = |p: &mut Pair, base: u32| {
        p.drop_once.insert(base + 9 * m);
    };
    let p = rack_transfer(true, 10, last);
    assert_eq!(p.rtos, 0, "the probe repairs the tail");
    assert_eq!(p.a.stats().loss_probes, 1, "one probe");
    // It went out one PTO after the last ACK (RFC 8985 §7.2 restarts it
    // on every ACK of new data): two SRTTs plus the worst-case delayed
    // ACK, as one segment was in flight.
    let st = p.a.status(p.conn).expect("status");
    let times = p.sent_at.get(&(69 * m)).expect("the tail was sent");
    assert_eq!(times.len(), 2, "the tail and its probe");
    let last_ack = p
        .b_sent_at
        .iter()
        .filter(|t| **t < times[1])
        .max()
        .expect("B acknowledged the rest");
    let waited = times[1].as_micros() - last_ack.as_micros();
    let srtt = st.srtt_us.expect("an RTT was measured");
    assert_eq!(waited, 2 * srtt + 200_000, "PTO");
    assert!(waited < st.rto_us, "before the RTO would have fired");
    // RACK off: the retransmission timer repairs it, and no probe.
    let p = rack_transfer(false, 10, last);
    assert_eq!((p.rtos, p.a.stats().loss_probes), (1, 0));
}

#[test]
fn no_second_probe_in_one_episode() {
    // The tail and its probe are both lost: §7.2 allows one probe until
    // the episode ends, so the RTO repairs it.
    let m = MSS as u32;
    let p = rack_transfer(true, 10, |p, base| {
        p.drop_twice.insert(base + 9 * m);
    });
    assert_eq!((p.rtos, p.a.stats().loss_probes), (1, 1));
}

#[test]
fn a_tail_lost_in_recovery_is_probed_not_left_to_the_timer() {
    // Segment 2 of the last flight is lost and starts SACK recovery; the
    // last segment (11) is lost too, and so is its retransmission during
    // recovery: no later delivery is left for RACK to learn from. The
    // probe also runs in SACK recovery (a departure from RFC 8985 §7.2's
    // SHOULD, see `tlp_schedule`): it sends the last segment a third time
    // and recovery ends without the timer. (Before that change, and with
    // the same drops, the retransmission timer repaired it.)
    let m = MSS as u32;
    let p = rack_transfer(true, 12, |p, base| {
        p.drop_twice.insert(base + 2 * m);
        p.drop_twice.insert(base + 11 * m);
    });
    let stats = p.a.stats();
    assert_eq!(p.rtos, 0, "repaired without a timeout: {stats:?}");
    assert_eq!(stats.loss_probes, 1, "{stats:?}");
    assert!(stats.recoveries >= 1, "{stats:?}");
    assert_eq!(
        p.sends.get(&(71 * m)),
        Some(&3),
        "the tail sent three times"
    );
}

#[test]
fn a_probe_that_replaced_a_lost_ack_draws_no_congestion_response() {
    // Every data segment arrives; B's ACK of the last two is lost, and so
    // is the window update that follows the read. The probe sends the
    // last segment again and B's duplicate ACK reaches
    // exactly the probe's end: nothing says a segment was lost, so the
    // episode ends without halving cwnd (RFC 8985 §7.4.2 responds only
    // when the ACK goes beyond the probe without a D-SACK).
    let m = MSS as u32;
    let mut before = None;
    let mut p = rack_transfer(true, 10, |p, base| {
        p.drop_acks.insert(base + 10 * m, 2);
        before = Some(p.a.status(p.conn).expect("status").ssthresh);
    });
    let conn = p.conn;
    p.run(|p| {
        let st = p.a.status(conn).expect("status");
        st.snd_una == st.snd_nxt
    });
    let st = p.a.status(conn).expect("status");
    assert_eq!(st.snd_una, st.snd_nxt, "everything acknowledged");
    assert_eq!((p.rtos, p.a.stats().loss_probes), (0, 1));
    assert_eq!(Some(st.ssthresh), before, "no congestion response");
}

#[test]
fn no_probe_when_recovery_repairs_the_tail_first() {
    // A hole early in the flight starts recovery; the lost last segment
    // is then repaired by recovery (the rescue retransmission or RACK)
    // before a probe timeout passes, so no probe goes out.
    let m = MSS as u32;
    let p = rack_transfer(true, 12, |p, base| {
        p.drop_once.insert(base + 2 * m);
        p.drop_once.insert(base + 11 * m);
    });
    let stats = p.a.stats();
    assert_eq!(p.rtos, 0);
    assert_eq!(stats.loss_probes, 0, "{stats:?}");
    assert!(stats.recoveries >= 1, "{stats:?}");
}
