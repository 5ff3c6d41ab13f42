//! The smoltcp side of the in-memory bulk-transfer benchmark: two smoltcp
//! interfaces joined by in-memory queues, checksums computed and verified
//! (smoltcp's own `Loopback` device skips checksums, which would flatter it).

use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{self, ChecksumCapabilities, Device, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

type Queue = Rc<RefCell<VecDeque<Vec<u8>>>>;

/// Packets the bulk transfers have sent (both directions), for the
/// profiling mode's count.
pub static PACKETS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One end of an in-memory link: receives from `rx`, transmits into `tx`.
struct Link {
    rx: Queue,
    tx: Queue,
    mtu: usize,
}

struct Rx(Vec<u8>);
struct Tx(Queue);

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for Tx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0; len];
        let r = f(&mut buf);
        PACKETS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.0.borrow_mut().push_back(buf);
        r
    }
}

impl Device for Link {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx;

    fn receive(&mut self, _t: Instant) -> Option<(Rx, Tx)> {
        let pkt = self.rx.borrow_mut().pop_front()?;
        Some((Rx(pkt), Tx(self.tx.clone())))
    }

    fn transmit(&mut self, _t: Instant) -> Option<Tx> {
        Some(Tx(self.tx.clone()))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = self.mtu;
        caps.checksum = ChecksumCapabilities::default(); // compute and verify
        caps
    }
}

/// Moves `total` bytes from a client socket to a server socket over a
/// 1500-byte-MTU in-memory link (MSS 1460); returns the bytes received.
pub fn bulk(total: usize) -> usize {
    let (ab, ba): (Queue, Queue) = Default::default();
    let mut dev_a = Link {
        rx: ba.clone(),
        tx: ab.clone(),
        mtu: 1500,
    };
    let mut dev_b = Link {
        rx: ab,
        tx: ba,
        mtu: 1500,
    };
    let now = Instant::from_millis(0);
    let mut iface_a = Interface::new(Config::new(HardwareAddress::Ip), &mut dev_a, now);
    let mut iface_b = Interface::new(Config::new(HardwareAddress::Ip), &mut dev_b, now);
    iface_a.update_ip_addrs(|a| {
        let _ = a.push(IpCidr::new(IpAddress::v4(192, 0, 2, 1), 24));
    });
    iface_b.update_ip_addrs(|a| {
        let _ = a.push(IpCidr::new(IpAddress::v4(192, 0, 2, 2), 24));
    });
    let sock = || {
        tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; 256 * 1024]),
            tcp::SocketBuffer::new(vec![0; 256 * 1024]),
        )
    };
    let mut set_a = SocketSet::new(vec![]);
    let mut set_b = SocketSet::new(vec![]);
    let client = set_a.add(sock());
    let server = set_b.add(sock());
    let _ = set_b.get_mut::<tcp::Socket>(server).listen(5001);
    let _ = set_a.get_mut::<tcp::Socket>(client).connect(
        iface_a.context(),
        (IpAddress::v4(192, 0, 2, 2), 5001),
        49152,
    );
    let chunk = vec![0xa5u8; 64 * 1024];
    let (mut sent, mut received) = (0usize, 0usize);
    let mut t = 0i64;
    let mut idle = 0;
    while received < total && idle < 1000 {
        let now = Instant::from_micros(t);
        t += 10;
        iface_a.poll(now, &mut dev_a, &mut set_a);
        iface_b.poll(now, &mut dev_b, &mut set_b);
        let c = set_a.get_mut::<tcp::Socket>(client);
        if c.can_send() && sent < total {
            let n = c
                .send_slice(&chunk[..chunk.len().min(total - sent)])
                .unwrap_or(0);
            sent += n;
        }
        let s = set_b.get_mut::<tcp::Socket>(server);
        let before = received;
        while s.can_recv() {
            let n = s.recv(|buf| (buf.len(), buf.len())).unwrap_or(0);
            if n == 0 {
                break;
            }
            received += n;
        }
        idle = if received == before { idle + 1 } else { 0 };
    }
    received
}
