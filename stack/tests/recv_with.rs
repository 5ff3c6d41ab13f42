//! `Endpoint::recv_with` reads the receive queue in place: the same octets
//! in the same order as `recv`, what the closure leaves stays queued, and
//! the end of the stream is `Ok(0)`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tcp_stack::{Config, Endpoint, Error, Instant, Shutdown};

mod common;
use common::pump;

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

#[test]
fn reads_in_place_what_recv_would_copy() {
    let mk = |ip, s| {
        let mut c = Config::new(vec![ip]);
        c.secret = [s; 32];
        Endpoint::new(c).expect("endpoint")
    };
    let (mut a, mut b) = (mk(A, 1), mk(B, 2));
    let now = Instant::from_millis(1);
    let l = b.listen(now, Some(B), 80, 4).expect("listen");
    let h = a
        .connect(now, SocketAddr::new(A, 0), SocketAddr::new(B, 80))
        .expect("connect");
    pump(&mut a, &mut b, now);
    let (peer, _) = b.accept(l).expect("accept");
    assert_eq!(
        b.recv_with(now, peer, |_| unreachable!("nothing to show")),
        Err(Error::WouldBlock)
    );
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let mut sent = 0;
    let mut got = Vec::new();
    while got.len() < data.len() {
        if sent < data.len() {
            sent += a.send(now, h, &data[sent..]).unwrap_or(0);
            if sent == data.len() {
                a.shutdown(now, h, Shutdown::Write).expect("shutdown");
            }
        }
        pump(&mut a, &mut b, now);
        // Take at most 1000 octets a call: the rest stays queued.
        while let Ok(n) = b.recv_with(now, peer, |d| {
            let n = d.len().min(1000);
            got.extend_from_slice(&d[..n]);
            n
        }) {
            if n == 0 {
                break; // end of stream
            }
            assert!(n <= 1000, "{n}");
        }
    }
    assert_eq!(got, data);
    pump(&mut a, &mut b, now);
    assert_eq!(b.recv_with(now, peer, |d| d.len()), Ok(0), "end of stream");
}
