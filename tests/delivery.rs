//! *Reliable delivery*: two own endpoints over a simulated network with a
//! seeded impairment model (loss, duplication, reordering, delay, payload
//! corruption that the checksum must catch) exchange arbitrary byte streams
//! in both directions and half-close. Both sides must receive exactly the
//! bytes sent, in order, and both connections must reach CLOSED or
//! TIME-WAIT within a bounded virtual time. Each case draws SACK on or off
//! for both ends (RFC 2018, RFC 6675), and with SACK, RACK-TLP on or off
//! (RFC 8985).

use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use tcp_harness::impair::Impairment;
use tcp_harness::sim;
use tcp_spec::{Profile, State};
use tcp_stack::{Config, Endpoint, Handle, Instant, Shutdown};

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

/// One side's progress.
#[derive(Default)]
struct Side {
    conn: Option<Handle>,
    sent: usize,
    shut: bool,
    received: Vec<u8>,
    eof: bool,
}

/// SACK and RACK-TLP choices of one exchange.
#[derive(Clone, Copy, Debug)]
struct Recovery {
    sack: bool,
    rack: bool,
}

fn endpoint(addr: IpAddr, profile: Profile, secret: u8, buf: usize, r: Recovery) -> Endpoint {
    let mut c = Config::new(vec![addr]);
    c.profile = profile;
    c.sack = r.sack;
    c.rack = r.rack;
    c.secret = [secret; 32];
    c.recv_buf = buf;
    c.send_buf = buf;
    match Endpoint::new(c) {
        Ok(e) => e,
        Err(e) => panic!("endpoint: {e}"),
    }
}

/// Moves data for one side: send what fits, read what arrived, half-close
/// when everything is handed over. Errors here are test failures.
fn pump(ep: &mut Endpoint, now: Instant, side: &mut Side, data: &[u8]) -> Result<(), String> {
    let Some(h) = side.conn else { return Ok(()) };
    while side.sent < data.len() {
        match ep.send(now, h, &data[side.sent..]) {
            Ok(0) | Err(tcp_stack::Error::WouldBlock) => break,
            Ok(n) => side.sent += n,
            Err(e) => return Err(format!("send: {e}")),
        }
    }
    let connecting = ep
        .status(h)
        .is_ok_and(|s| matches!(s.state, State::SynSent | State::SynReceived));
    if side.sent == data.len() && !side.shut && !connecting {
        ep.shutdown(now, h, Shutdown::Write)
            .map_err(|e| format!("shutdown: {e}"))?;
        side.shut = true;
    }
    let mut buf = [0u8; 8192];
    while !side.eof {
        match ep.recv(now, h, &mut buf) {
            Ok(0) => side.eof = true,
            Ok(n) => side.received.extend_from_slice(&buf[..n]),
            Err(tcp_stack::Error::WouldBlock) => break,
            Err(e) => return Err(format!("recv: {e}")),
        }
    }
    Ok(())
}

fn finished(ep: &Endpoint, side: &Side) -> bool {
    side.eof
        && side.shut
        && side
            .conn
            .and_then(|h| ep.status(h).ok())
            .is_none_or(|s| matches!(s.state, State::TimeWait | State::Closed))
}

/// Runs one exchange; returns the virtual time it took.
fn exchange(
    profile: Profile,
    sack: Recovery,
    imp: Impairment,
    a_data: &[u8],
    b_data: &[u8],
    buf: usize,
) -> Result<Duration, String> {
    let mut net = sim::net(imp);
    let a = net.add(endpoint(A, profile, 1, buf, sack), vec![A]);
    let b = net.add(endpoint(B, profile, 2, buf, sack), vec![B]);
    let start = net.now;
    let listener = {
        let now = net.now;
        let ep = net.eps.get_mut(b).ok_or("no node b")?;
        ep.listen(now, Some(B), 8080, 4)
            .map_err(|e| format!("listen: {e}"))?
    };
    let mut sa = Side::default();
    let mut sb = Side::default();
    {
        let now = net.now;
        let ep = net.eps.get_mut(a).ok_or("no node a")?;
        sa.conn = Some(
            ep.connect(now, SocketAddr::new(A, 0), SocketAddr::new(B, 8080))
                .map_err(|e| format!("connect: {e}"))?,
        );
    }
    let mut failure = None;
    let limit = start.plus_micros(3_600 * 1_000_000);
    let done = net.run_until(limit, |net| {
        let now = net.now;
        let mut step = || -> Result<bool, String> {
            let ea = net.eps.get_mut(a).ok_or("no node a")?;
            pump(ea, now, &mut sa, a_data)?;
            let a_done = finished(ea, &sa);
            let eb = net.eps.get_mut(b).ok_or("no node b")?;
            if sb.conn.is_none() {
                if let Ok((h, _)) = eb.accept(listener) {
                    sb.conn = Some(h);
                }
            }
            pump(eb, now, &mut sb, b_data)?;
            Ok(a_done && finished(eb, &sb))
        };
        match step() {
            Ok(d) => d,
            Err(e) => {
                failure = Some(e);
                true
            }
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    let took = Duration::from_micros(net.now.as_micros().saturating_sub(start.as_micros()));
    if !done {
        if std::env::var_os("DELIVERY_DEBUG").is_some() {
            for (n, side) in [(a, &sa), (b, &sb)] {
                if let (Some(ep), Some(h)) = (net.eps.get_mut(n), side.conn) {
                    eprintln!("node {n}: {:?} timer {:?}", ep.status(h), ep.poll_timeout());
                }
            }
        }
        return Err(format!(
            "not finished after {took:?} of virtual time: a sent {}/{} got {} (eof {}), b sent {}/{} got {} (eof {})",
            sa.sent,
            a_data.len(),
            sa.received.len(),
            sa.eof,
            sb.sent,
            b_data.len(),
            sb.received.len(),
            sb.eof
        ));
    }
    if sb.received != a_data {
        return Err(format!(
            "b received {} bytes, a sent {}: streams differ",
            sb.received.len(),
            a_data.len()
        ));
    }
    if sa.received != b_data {
        return Err(format!(
            "a received {} bytes, b sent {}: streams differ",
            sa.received.len(),
            b_data.len()
        ));
    }
    Ok(took)
}

fn stream(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn clean_network_bulk_both_ways() {
    let a = stream(300_000, 1);
    let b = stream(120_000, 2);
    for (sack, rack) in [(false, false), (true, false), (true, true)] {
        let r = Recovery { sack, rack };
        let took = exchange(Profile::Rfc9293, r, Impairment::none(), &a, &b, 65535);
        assert!(took.is_ok(), "{r:?}: {took:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn impaired_exchange_delivers_exactly(
        profile in prop_oneof![Just(Profile::Rfc9293), Just(Profile::Rfc793), Just(Profile::Linux)],
        sack in any::<bool>(),
        rack in any::<bool>(),
        a_len in 0usize..60_000,
        b_len in 0usize..60_000,
        loss in 0.0f64..0.15,
        dup in 0.0f64..0.1,
        reorder in 0.0f64..0.2,
        corrupt in 0.0f64..0.05,
        delay_ms in 1u64..50,
        buf in prop_oneof![Just(65535usize), 2048usize..65535],
        seed in any::<u64>(),
    ) {
        let imp = Impairment {
            loss, dup, reorder, corrupt,
            delay: Duration::from_millis(delay_ms),
            reorder_delay: Duration::from_millis(delay_ms * 3),
            seed,
        };
        let a = stream(a_len, seed as u8);
        let b = stream(b_len, (seed >> 8) as u8);
        let r = Recovery { sack, rack: sack && rack };
        if let Err(e) = exchange(profile, r, imp, &a, &b, buf) {
            return Err(TestCaseError::fail(format!("{profile} {r:?} {imp}: {e}")));
        }
    }
}
