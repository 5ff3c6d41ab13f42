//! Live plumbing: namespace lifecycle and the TUN path end to end
//! (docs/architecture.md, "Scripts and the runner" — live targets — and "Bad input").
//!
//! Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN), /dev/net/tun and iproute2.
//! Where `live::available()` fails, every test prints `skipped: <reason>` and
//! passes. The tests take a common lock: they count namespaces, so they must
//! not interleave.

use std::net::{Ipv4Addr, Ipv6Addr, TcpListener};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tcp_harness::live::{self, LiveError, LiveNet, Netns};

/// Environment variable that turns `child_process_helper` into a namespace holder.
const CHILD_ENV: &str = "TCPCONFORM_LIVE_NETNS_CHILD";

fn ns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// No `tcpconform-*` namespace of this process, or of any dead process, remains.
fn assert_no_leftovers() {
    let own = std::process::id().to_string();
    for name in live::list_namespaces().unwrap() {
        let pid = name
            .strip_prefix(live::NAME_PREFIX)
            .and_then(|r| r.split_once('-'))
            .map(|(p, _)| p.to_string());
        let Some(pid) = pid else { continue };
        assert_ne!(pid, own, "namespace {name} of this process leaked");
        let alive = pid.parse().map(pid_alive).unwrap_or(false);
        assert!(
            alive,
            "namespace {name} of dead process {pid} was not reaped"
        );
    }
}

// ---------------------------------------------------------------------------
// Hand-built packets (RFC 791 header, RFC 9293 3.1 header and checksum).

fn checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    for data in chunks {
        for pair in data.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            sum += hi | pair.get(1).copied().map(u32::from).unwrap_or(0);
        }
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A TCP header (+ MSS option when SYN is set) with a zero checksum field.
fn tcp_header(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8) -> Vec<u8> {
    let syn = flags & 0x02 != 0;
    let mut t = Vec::with_capacity(24);
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.push(if syn { 6 << 4 } else { 5 << 4 });
    t.push(flags);
    t.extend_from_slice(&65535u16.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    if syn {
        t.extend_from_slice(&[2, 4, 0x05, 0xb4]); // MSS 1460
    }
    t
}

fn ipv4_tcp(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
) -> Vec<u8> {
    let mut tcp = tcp_header(sport, dport, seq, ack, flags);
    let len = tcp.len() as u16;
    let pseudo = [
        &src.octets()[..],
        &dst.octets()[..],
        &[0, 6],
        &len.to_be_bytes()[..],
    ]
    .concat();
    let c = checksum(&[&pseudo, &tcp]);
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&(20 + len).to_be_bytes());
    ip.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, 6, 0, 0]); // id, DF, TTL 64, TCP
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let c = checksum(&[&ip]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&tcp);
    ip
}

fn ipv6_tcp(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16, seq: u32, flags: u8) -> Vec<u8> {
    let mut tcp = tcp_header(sport, dport, seq, 0, flags);
    let len = tcp.len() as u32;
    let pseudo = [
        &src.octets()[..],
        &dst.octets()[..],
        &len.to_be_bytes()[..],
        &[0, 0, 0, 6],
    ]
    .concat();
    let c = checksum(&[&pseudo, &tcp]);
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend_from_slice(&(len as u16).to_be_bytes());
    ip.extend_from_slice(&[6, 64]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    ip.extend_from_slice(&tcp);
    ip
}

/// A parsed TCP segment: (sport, dport, seq, ack, flags).
type Seg = (u16, u16, u32, u32, u8);

fn parse_tcp(tcp: &[u8]) -> Seg {
    let u16_at = |o: usize| u16::from_be_bytes([tcp[o], tcp[o + 1]]);
    let u32_at = |o: usize| u32::from_be_bytes([tcp[o], tcp[o + 1], tcp[o + 2], tcp[o + 3]]);
    (u16_at(0), u16_at(2), u32_at(4), u32_at(8), tcp[13])
}

/// Reads from `tun` until a TCP segment to `dport` arrives (other packets are
/// skipped), bounded by two seconds.
fn expect_tcp(tun: &live::Tun, dport: u16) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(2);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Some(p) = tun.recv_timeout(left).unwrap() else {
            break;
        };
        let (proto, off) = match p[0] >> 4 {
            4 => (p[9], usize::from(p[0] & 0xf) * 4),
            6 => (p[6], 40),
            _ => continue,
        };
        if proto == 6 && p.len() >= off + 20 && parse_tcp(&p[off..]).1 == dport {
            return p;
        }
    }
    panic!(
        "no TCP segment to port {dport} on {} within 2 s",
        tun.name()
    );
}

// ---------------------------------------------------------------------------

#[test]
fn kernel_answers_syn_over_tun_and_forwards_to_tun1() {
    let Some(_g) = live::testing::guard() else {
        return;
    };
    let net = LiveNet::setup().unwrap();

    // No autoconfiguration noise on either device.
    if let Some(p) = net.tun0().recv_timeout(Duration::from_millis(250)).unwrap() {
        panic!("unexpected packet on tun0: {p:02x?}");
    }
    if let Some(p) = net.tun1().recv_timeout(Duration::ZERO).unwrap() {
        panic!("unexpected packet on tun1: {p:02x?}");
    }

    // IPv4: SYN from the peer to a kernel listener, SYN-ACK back on tun0.
    let listener = net
        .run_in(|| TcpListener::bind((live::KERNEL_V4, 5000)))
        .unwrap()
        .unwrap();
    let syn = ipv4_tcp(live::PEER_V4, live::KERNEL_V4, 40000, 5000, 1000, 0, 0x02);
    net.tun0().send(&syn).unwrap();
    let p = expect_tcp(net.tun0(), 40000);
    assert_eq!(checksum(&[&p[..20]]), 0, "IPv4 header checksum");
    assert_eq!(&p[12..16], &live::KERNEL_V4.octets());
    assert_eq!(&p[16..20], &live::PEER_V4.octets());
    let tcp_len = (p.len() - 20) as u16;
    let pseudo = [&p[12..20], &[0, 6], &tcp_len.to_be_bytes()[..]].concat();
    assert_eq!(checksum(&[&pseudo, &p[20..]]), 0, "TCP checksum");
    let (sport, _, _, ack, flags) = parse_tcp(&p[20..]);
    assert_eq!(
        (sport, flags & 0x3f, ack),
        (5000, 0x12, 1001),
        "SYN-ACK acking ISN+1"
    );
    drop(listener);

    // IPv6: the same over 2001:db8::/32.
    let listener6 = net
        .run_in(|| TcpListener::bind((live::KERNEL_V6, 5001)))
        .unwrap()
        .unwrap();
    let syn6 = ipv6_tcp(live::PEER_V6, live::KERNEL_V6, 40001, 5001, 7, 0x02);
    net.tun0().send(&syn6).unwrap();
    let p6 = expect_tcp(net.tun0(), 40001);
    let (_, _, _, ack6, flags6) = parse_tcp(&p6[40..]);
    assert_eq!((flags6 & 0x3f, ack6), (0x12, 8), "IPv6 SYN-ACK");
    drop(listener6);

    // Forwarding tun0 -> tun1 (to the own stack) and back.
    let fwd = ipv4_tcp(live::PEER_V4, live::OWN_V4, 40002, 80, 5, 0, 0x02);
    net.tun0().send(&fwd).unwrap();
    let out = expect_tcp(net.tun1(), 80);
    assert_eq!(&out[16..20], &live::OWN_V4.octets());
    assert_eq!(out[8], 63, "TTL decremented once by forwarding");
    assert_eq!(&out[20..], &fwd[20..], "TCP segment forwarded unchanged");
    let back = ipv4_tcp(live::OWN_V4, live::PEER_V4, 80, 40002, 9, 6, 0x12);
    net.tun1().send(&back).unwrap();
    let got = expect_tcp(net.tun0(), 40002);
    assert_eq!(&got[20..], &back[20..]);
    let fwd6 = ipv6_tcp(live::PEER_V6, live::OWN_V6, 40003, 81, 5, 0x02);
    net.tun0().send(&fwd6).unwrap();
    let out6 = expect_tcp(net.tun1(), 81);
    assert_eq!(out6[7], 63, "hop limit decremented once");

    // Forbidden addresses never reach the device.
    let bad = ipv4_tcp(live::PEER_V4, Ipv4Addr::new(8, 8, 8, 8), 1, 2, 0, 0, 0x02);
    assert!(matches!(
        net.tun0().send(&bad),
        Err(LiveError::ForbiddenAddress { .. })
    ));

    let name = net.netns().name().to_owned();
    drop(net);
    assert!(!ns_exists(&name));
    assert_no_leftovers();
}

#[test]
fn sysctls_apply_inside_the_namespace_only() {
    let Some(_g) = live::testing::guard() else {
        return;
    };
    let net = LiveNet::setup().unwrap();
    assert_eq!(net.netns().read_sysctl("net.ipv4.ip_forward").unwrap(), "1");
    assert_eq!(
        net.netns()
            .read_sysctl("net.ipv6.conf.tun0.accept_ra")
            .unwrap(),
        "0"
    );
    let host_rto = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_syn_retries").unwrap();
    let new = if host_rto.trim() == "3" { "4" } else { "3" };
    net.apply_sysctl("net.ipv4.tcp_syn_retries", new).unwrap();
    assert_eq!(
        net.netns().read_sysctl("net.ipv4.tcp_syn_retries").unwrap(),
        new
    );
    let host_after = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_syn_retries").unwrap();
    assert_eq!(host_rto, host_after, "the host's value is untouched");
    let err = net.apply_sysctl("kernel.panic", "1").unwrap_err();
    assert!(
        matches!(err, LiveError::SysctlNotNamespaced { .. }),
        "{err}"
    );
    let err = net
        .apply_sysctl("net.ipv4.tcp_no_such_knob", "1")
        .unwrap_err();
    assert!(matches!(err, LiveError::SysctlUnknown { .. }), "{err}");
    drop(net);
    assert_no_leftovers();
}

#[test]
fn namespace_is_removed_on_drop_and_setup_time_is_reported() {
    let Some(_g) = live::testing::guard() else {
        return;
    };
    const N: u32 = 5;
    let start = Instant::now();
    for _ in 0..N {
        let net = LiveNet::setup().unwrap();
        let name = net.netns().name().to_owned();
        assert!(ns_exists(&name));
        drop(net);
        assert!(!ns_exists(&name), "{name} still exists after drop");
    }
    let per = start.elapsed() / N;
    println!(
        "per-namespace create + tun0/tun1 setup + teardown: {:.1} ms",
        per.as_secs_f64() * 1e3
    );
    assert_no_leftovers();
}

#[test]
fn namespace_is_removed_after_a_panic_in_run_in() {
    let Some(_g) = live::testing::guard() else {
        return;
    };
    let mut name = String::new();
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let ns = Netns::create().unwrap();
        name = ns.name().to_owned();
        ns.run_in(|| panic!("deliberate panic inside the namespace"))
            .unwrap();
    }));
    assert!(result.is_err(), "the panic propagates out of run_in");
    assert!(!name.is_empty());
    assert!(!ns_exists(&name), "{name} survived the panic");
    assert_no_leftovers();
}

#[test]
fn worker_thread_lives_inside_the_namespace() {
    let Some(_g) = live::testing::guard() else {
        return;
    };
    let ns = Netns::create().unwrap();
    let outside = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
    let worker = ns
        .spawn(|| std::fs::read_link("/proc/thread-self/ns/net").map(|p| p.display().to_string()))
        .unwrap();
    let inside = worker.join().unwrap().unwrap();
    assert_ne!(inside, outside.display().to_string());
    drop(ns);
    assert_no_leftovers();
}

#[test]
fn stale_namespace_of_a_dead_pid_is_reaped() {
    let Some(_g) = live::testing::guard() else {
        return;
    };
    let pid = (999_999..1_000_100).find(|&p| !pid_alive(p)).unwrap();
    let stale = format!("tcpconform-{pid}-0");
    let st = Command::new("ip")
        .args(["netns", "add", &stale])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(ns_exists(&stale));
    let ns = Netns::create().unwrap();
    assert!(!ns_exists(&stale), "{stale} was not reaped by create()");
    drop(ns);
    assert_no_leftovers();
}

/// Re-runs this test binary as a child that creates a namespace and sleeps.
fn spawn_child() -> (Child, String) {
    let exe = std::env::current_exe().unwrap();
    let child = Command::new(exe)
        .args([
            "child_process_helper",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let name = format!("tcpconform-{}-0", child.id());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ns_exists(&name) {
        assert!(Instant::now() < deadline, "child never created {name}");
        std::thread::sleep(Duration::from_millis(5));
    }
    (child, name)
}

fn wait_bounded(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("child did not exit within 5 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn sigint_and_sigterm_remove_the_namespace() {
    let Some(_g) = live::testing::guard() else {
        return;
    };
    for (sig, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let (mut child, name) = spawn_child();
        // SAFETY: sending a signal to our own child process.
        assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
        let status = wait_bounded(&mut child);
        assert_eq!(status.code(), Some(code), "exit status after signal {sig}");
        assert!(!ns_exists(&name), "{name} survived signal {sig}");
    }
    assert_no_leftovers();
}

#[test]
fn sigkill_leaves_a_stale_namespace_that_the_next_create_reaps() {
    let Some(_g) = live::testing::guard() else {
        return;
    };
    let (mut child, name) = spawn_child();
    child.kill().unwrap(); // SIGKILL
    let status = wait_bounded(&mut child);
    assert_eq!(status.code(), None, "killed by a signal");
    assert!(
        ns_exists(&name),
        "SIGKILL cannot be caught, so {name} is left behind"
    );
    let ns = Netns::create().unwrap();
    assert!(!ns_exists(&name), "{name} was not reaped");
    drop(ns);
    assert_no_leftovers();
}

/// Not a test on its own: with `TCPCONFORM_LIVE_NETNS_CHILD` set it creates a
/// namespace and sleeps, so the tests above can signal it.
#[test]
fn child_process_helper() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let ns = Netns::create().unwrap();
    std::thread::sleep(Duration::from_secs(10));
    drop(ns);
}
