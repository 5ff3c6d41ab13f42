//! The own stack's side of the in-memory benchmarks: two endpoints passing
//! packets to each other directly (no impairment), MSS 1460, checksums
//! computed on output and verified on input.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tcp_stack::{Config, Endpoint, Instant};

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

/// Packets the bulk transfers have passed between the endpoints (both
/// directions), for the profiling mode's count.
pub static PACKETS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn endpoint(addr: IpAddr, secret: u8, log: bool) -> Endpoint {
    let mut c = Config::new(vec![addr]);
    c.log_transitions = log;
    c.secret = [secret; 32];
    c.recv_buf = 256 * 1024;
    c.send_buf = 256 * 1024;
    Endpoint::new(c).unwrap_or_else(|e| panic!("{e}"))
}

/// Moves `total` bytes from A to B; returns the bytes received. With
/// `log`, both endpoints keep the observer log of transitions and the loop
/// drains it every round, as the conformance harness does.
pub fn bulk(total: usize, log: bool) -> usize {
    let mut a = endpoint(A, 1, log);
    let mut b = endpoint(B, 2, log);
    let mut now = Instant::from_micros(1_000_000);
    let l = b
        .listen(now, Some(B), 5001, 4)
        .unwrap_or_else(|e| panic!("{e}"));
    let ha = a
        .connect(now, SocketAddr::new(A, 0), SocketAddr::new(B, 5001))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut hb = None;
    let chunk = vec![0xa5u8; 64 * 1024];
    let (mut sent, mut received) = (0usize, 0usize);
    let mut idle = 0;
    while received < total && idle < 1000 {
        let mut moved = false;
        while let Some(p) = a.poll_transmit(now) {
            PACKETS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            b.handle_packet(now, &p);
            a.recycle(p);
            moved = true;
        }
        while let Some(p) = b.poll_transmit(now) {
            PACKETS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            a.handle_packet(now, &p);
            b.recycle(p);
            moved = true;
        }
        if hb.is_none() {
            hb = b.accept(l).ok().map(|(h, _)| h);
        }
        if sent < total {
            if let Ok(n) = a.send(now, ha, &chunk[..chunk.len().min(total - sent)]) {
                sent += n;
                moved |= n > 0;
            }
        }
        if let Some(h) = hb {
            // Read in place, as the smoltcp side does (`recv` with a
            // closure): no copy into a reader's buffer on either side.
            while let Ok(n) = b.recv_with(now, h, |d| d.len()) {
                if n == 0 {
                    break;
                }
                received += n;
                moved = true;
            }
        }
        if log {
            drop((a.drain_transitions(), b.drain_transitions()));
        }
        if moved {
            idle = 0;
        } else {
            idle += 1;
            // Nothing to do: let the clock reach the next timer (delayed ACK).
            if let Some(t) = [a.poll_timeout(), b.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
            {
                now = now.max(t);
                a.handle_timeout(now);
                b.handle_timeout(now);
            }
        }
    }
    received
}

/// An endpoint in ESTABLISHED and `n` in-order full-sized data segments
/// from its peer, ready to be handed in.
pub fn inbound_segments(n: usize) -> (Endpoint, tcp_stack::Handle, Vec<Vec<u8>>, Instant) {
    use tcp_stack::packet::{build, Flags, Segment, TcpOptions};
    use tcp_stack::SeqNum;
    let mut b = endpoint(B, 2, false);
    let now = Instant::from_micros(1_000_000);
    let l = b
        .listen(now, Some(B), 5001, 4)
        .unwrap_or_else(|e| panic!("{e}"));
    let seg = |seq: u32, ack: u32, flags: Flags, payload: usize| {
        build(&Segment {
            src: A,
            dst: B,
            src_port: 40000,
            dst_port: 5001,
            seq: SeqNum(seq),
            ack: SeqNum(ack),
            flags,
            window: 65535,
            options: TcpOptions {
                mss: flags.syn.then_some(1460),
                ..TcpOptions::default()
            },
            payload: vec![0x5a; payload],
        })
        .unwrap_or_else(|e| panic!("{e:?}"))
    };
    let syn = Flags {
        syn: true,
        ..Flags::default()
    };
    b.handle_packet(now, &seg(1000, 0, syn, 0));
    let synack = b.poll_transmit(now).unwrap_or_default();
    let iss = u32::from_be_bytes([synack[24], synack[25], synack[26], synack[27]]);
    let ack = Flags {
        ack: true,
        ..Flags::default()
    };
    b.handle_packet(now, &seg(1001, iss.wrapping_add(1), ack, 0));
    let (h, _) = b.accept(l).unwrap_or_else(|e| panic!("{e}"));
    let data = Flags {
        ack: true,
        psh: true,
        ..Flags::default()
    };
    let pkts = (0..n)
        .map(|i| seg(1001 + (i as u32) * 1460, iss.wrapping_add(1), data, 1460))
        .collect();
    while b.poll_transmit(now).is_some() {}
    (b, h, pkts, now)
}
