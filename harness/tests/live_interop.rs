//! Interoperability of the own stack with the Linux kernel's TCP over TUN
//! (`tcpconform serve`, docs/architecture.md "Scripts and the runner" — live targets).
//!
//! Inside a namespace the harness creates, the kernel's own TCP client
//! (`std::net::TcpStream` opened by a thread that entered the namespace)
//! uploads 16 MiB to the own stack (discard; echo) and downloads 16 MiB from
//! it (HTTP; echo), without impairment and — discard upload, HTTP download —
//! with `loss=0.02,reorder=0.02,dup=0.01,seed=7` at the TUN boundary; and
//! the own stack as a client exchanges 16 MiB each way with a kernel
//! listener on 192.0.2.1 (4 MiB each way under the same impairment). In
//! every case the SHA-256 of what arrived equals that of what was sent.
//! Impaired runs are real-time, so their packet order (and hence which
//! packets the seeded impairment hits) varies from run to run.
//!
//! Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN), /dev/net/tun and iproute2;
//! otherwise every test prints `skipped: <reason>` and passes. Live tests
//! run one at a time; every wait is bounded; each test checks that no
//! namespace of this process is left.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tcp_harness::impair::{Impairment, Rng};
use tcp_harness::live::{self, KERNEL_V4};
use tcp_harness::serve::{serve, ServeHandle, ServeMode, ServeOptions, ServeStats};

/// 16 MiB, the size of every transfer.
const SIZE: usize = 16 << 20;
/// Each way, for the own stack as a client under impairment (both
/// directions at once; the 16 MiB runs of the kernel client cover the
/// full size under impairment).
const IMPAIRED_CLIENT_SIZE: usize = 4 << 20;
/// The impairment of the impaired runs.
const IMPAIR: &str = "loss=0.02,reorder=0.02,dup=0.01,seed=7";
/// Bound on any one socket operation of the kernel side.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on one whole transfer.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(40);

/// `n` reproducible pseudo-random octets.
fn data(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        v.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    v.truncate(n);
    v
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha(d: &[u8]) -> String {
    hex(&Sha256::digest(d))
}

fn impairment(on: bool) -> Option<Impairment> {
    on.then(|| IMPAIR.parse().unwrap())
}

/// Impaired runs use the stack's `linux` profile (200 ms minimum RTO) and
/// a 64 KiB send buffer: the own stack repairs one lost segment per fast
/// retransmit or RTO (no SACK, no NewReno partial-ACK repair, no go-back-N
/// after an RTO), and Karn's rule keeps the backed-off RTO until a fresh
/// sample, so with 2 % loss a 1 MiB flight holds many holes, each costing
/// a doubled RTO: 16 MiB would take minutes under rfc9293's 1 s minimum.
/// The receive window stays 1 MiB (the kernel sender recovers well).
fn tune(opts: &mut ServeOptions) {
    if opts.impair.is_some() {
        opts.profile = tcp_spec::Profile::Linux;
        opts.send_buf = 65535;
    }
}

fn label(impaired: bool) -> &'static str {
    if impaired {
        IMPAIR
    } else {
        "no impairment"
    }
}

/// A TCP connection of the kernel to the own stack, opened by a thread
/// inside the server's namespace (the socket stays there).
fn kernel_connect(h: &ServeHandle) -> TcpStream {
    let addr = SocketAddr::V4(h.address());
    let s = h
        .netns()
        .run_in(move || TcpStream::connect_timeout(&addr, Duration::from_secs(5)))
        .unwrap()
        .unwrap_or_else(|e| panic!("kernel connect to {addr}: {e}"));
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// Reads until EOF; panics on a timeout or error.
fn read_all(mut s: &TcpStream) -> Vec<u8> {
    let mut v = Vec::new();
    s.read_to_end(&mut v)
        .unwrap_or_else(|e| panic!("reading after {} octets: {e}", v.len()));
    v
}

/// Stops the server, checks that the namespace went with it, prints the
/// counters.
fn finish(h: ServeHandle, what: &str) -> ServeStats {
    let ns = h.netns_name().to_string();
    let stats = h.stop().unwrap();
    println!("{what}: {stats}");
    assert!(!live::list_namespaces().unwrap().contains(&ns));
    live::testing::assert_no_namespace_of_ours();
    stats
}

/// The state a tap fills in: the running digest, the octets, whether the
/// stream ended.
#[derive(Default)]
struct Tapped {
    hash: Sha256,
    len: usize,
    ended: bool,
}

fn upload_to_discard(impaired: bool) {
    let tapped = Arc::new(Mutex::new(Tapped::default()));
    let mut opts = ServeOptions::new(ServeMode::Discard);
    opts.impair = impairment(impaired);
    tune(&mut opts);
    let t = Arc::clone(&tapped);
    opts.tap = Some(Box::new(move |_conn, chunk| {
        let mut t = t.lock().unwrap();
        if chunk.is_empty() {
            t.ended = true;
        } else {
            t.hash.update(chunk);
            t.len += chunk.len();
        }
    }));
    let h = serve(opts).unwrap();
    let sent = data(SIZE, 1);
    let started = Instant::now();
    let s = kernel_connect(&h);
    (&s).write_all(&sent).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    // The server closes after our FIN: EOF means it has read everything.
    assert!(read_all(&s).is_empty(), "discard sends nothing");
    let secs = started.elapsed().as_secs_f64();
    let (len, digest, ended) = {
        let mut t = tapped.lock().unwrap();
        let digest = hex(&std::mem::take(&mut t.hash).finalize());
        (t.len, digest, t.ended)
    };
    println!(
        "kernel -> own discard, {}: {len} octets in {secs:.2} s ({:.0} Mbit/s), sha256 sent {} arrived {digest}",
        label(impaired),
        SIZE as f64 * 8.0 / secs / 1e6,
        sha(&sent)
    );
    drop(s);
    let stats = finish(h, "discard");
    assert!(ended, "the stream ended at the server");
    assert_eq!(len, SIZE);
    assert_eq!(digest, sha(&sent));
    if impaired {
        assert!(
            stats.impair_dropped > 0 && stats.impair_duplicated > 0,
            "{stats}"
        );
    }
}

fn echo_both_ways(impaired: bool) {
    let mut opts = ServeOptions::new(ServeMode::Echo);
    opts.impair = impairment(impaired);
    tune(&mut opts);
    let h = serve(opts).unwrap();
    let sent = data(SIZE, 2);
    let started = Instant::now();
    let s = kernel_connect(&h);
    let back = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            (&s).write_all(&sent)?;
            s.shutdown(Shutdown::Write)
        });
        let back = read_all(&s);
        writer.join().unwrap().unwrap();
        back
    });
    let secs = started.elapsed().as_secs_f64();
    println!(
        "kernel <-> own echo, {}: {} octets each way in {secs:.2} s, sha256 sent {} echoed {}",
        label(impaired),
        back.len(),
        sha(&sent),
        sha(&back)
    );
    drop(s);
    finish(h, "echo");
    assert_eq!(back.len(), SIZE);
    assert_eq!(sha(&back), sha(&sent));
}

fn http_download(impaired: bool) {
    let dir = std::env::temp_dir().join(format!(
        "tcpconform-interop-{}-{}",
        std::process::id(),
        u8::from(impaired)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = data(SIZE, 3);
    std::fs::write(dir.join("big.bin"), &file).unwrap();
    let mut opts = ServeOptions::new(ServeMode::Http(dir.clone()));
    opts.impair = impairment(impaired);
    tune(&mut opts);
    let h = serve(opts).unwrap();
    let started = Instant::now();
    let s = kernel_connect(&h);
    (&s).write_all(b"GET /big.bin HTTP/1.0\r\nHost: 198.51.100.1\r\n\r\n")
        .unwrap();
    let resp = read_all(&s);
    let secs = started.elapsed().as_secs_f64();
    drop(s);
    finish(h, "http");
    let _ = std::fs::remove_dir_all(&dir);
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&resp[..split]).to_string();
    let body = &resp[split + 4..];
    println!(
        "own -> kernel http GET, {}: {} octets in {secs:.2} s ({:.0} Mbit/s), sha256 file {} arrived {}",
        label(impaired),
        body.len(),
        body.len() as f64 * 8.0 / secs / 1e6,
        sha(&file),
        sha(body)
    );
    assert!(head.starts_with("HTTP/1.0 200 OK"), "{head}");
    assert!(head.contains(&format!("Content-Length: {SIZE}")), "{head}");
    assert_eq!(body.len(), SIZE);
    assert_eq!(sha(body), sha(&file));
}

/// The own stack connects to a kernel listener on 192.0.2.1 and both send
/// 16 MiB at the same time; each side half-closes when done.
fn own_client_to_kernel(impaired: bool, size: usize) {
    let mut opts = ServeOptions::new(ServeMode::Discard);
    opts.impair = impairment(impaired);
    tune(&mut opts);
    let h = serve(opts).unwrap();
    let listen_at = SocketAddr::V4(SocketAddrV4::new(KERNEL_V4, 9000));
    let listener = h
        .netns()
        .run_in(move || TcpListener::bind(listen_at))
        .unwrap()
        .unwrap();
    listener.set_nonblocking(true).unwrap();
    let from_own = data(size, 4);
    let from_kernel = data(size, 5);
    let started = Instant::now();
    let (at_kernel, at_own) = std::thread::scope(|scope| {
        let kernel = scope.spawn(|| {
            let deadline = Instant::now() + Duration::from_secs(10);
            let conn = loop {
                match listener.accept() {
                    Ok((c, _)) => break c,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        assert!(
                            Instant::now() < deadline,
                            "no connection from the own stack"
                        );
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            };
            conn.set_nonblocking(false).unwrap();
            conn.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            conn.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
            std::thread::scope(|inner| {
                let w = inner.spawn(|| {
                    (&conn).write_all(&from_kernel)?;
                    conn.shutdown(Shutdown::Write)
                });
                let got = read_all(&conn);
                w.join().unwrap().unwrap();
                got
            })
        });
        let at_own = h.connect(
            match listen_at {
                SocketAddr::V4(a) => a,
                SocketAddr::V6(_) => unreachable!(),
            },
            from_own.clone(),
            TRANSFER_TIMEOUT,
        );
        (kernel.join().unwrap(), at_own)
    });
    let secs = started.elapsed().as_secs_f64();
    let at_own = at_own.unwrap_or_else(|e| panic!("own client: {e}"));
    println!(
        "own client <-> kernel listener, {}: {} / {} octets in {secs:.2} s; \
         sha256 own->kernel sent {} arrived {}; kernel->own sent {} arrived {}",
        label(impaired),
        at_kernel.len(),
        at_own.len(),
        sha(&from_own),
        sha(&at_kernel),
        sha(&from_kernel),
        sha(&at_own)
    );
    drop(listener);
    finish(h, "own client");
    assert_eq!(at_kernel.len(), size);
    assert_eq!(at_own.len(), size);
    assert_eq!(sha(&at_kernel), sha(&from_own));
    assert_eq!(sha(&at_own), sha(&from_kernel));
}

#[test]
fn kernel_uploads_to_discard() {
    let Some(_g) = live::testing::guard() else {
        return;
    };
    upload_to_discard(false);
}

#[test]
fn kernel_uploads_to_discard_impaired() {
    let Some(_g) = live::testing::guard() else {
        return;
    };
    upload_to_discard(true);
}

#[test]
fn kernel_echoes_both_ways() {
    let Some(_g) = live::testing::guard() else {
        return;
    };
    echo_both_ways(false);
}

#[test]
fn kernel_downloads_over_http() {
    let Some(_g) = live::testing::guard() else {
        return;
    };
    http_download(false);
}

#[test]
fn kernel_downloads_over_http_impaired() {
    let Some(_g) = live::testing::guard() else {
        return;
    };
    http_download(true);
}

#[test]
fn own_client_exchanges_with_kernel_listener() {
    let Some(_g) = live::testing::guard() else {
        return;
    };
    own_client_to_kernel(false, SIZE);
}

#[test]
fn own_client_exchanges_with_kernel_listener_impaired() {
    let Some(_g) = live::testing::guard() else {
        return;
    };
    own_client_to_kernel(true, IMPAIRED_CLIENT_SIZE);
}

#[test]
fn http_errors_and_missing_files() {
    let Some(_g) = live::testing::guard() else {
        return;
    };
    let dir: PathBuf =
        std::env::temp_dir().join(format!("tcpconform-interop-{}-e", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), b"<p>own stack</p>\n").unwrap();
    let h = serve(ServeOptions::new(ServeMode::Http(dir.clone()))).unwrap();
    for (req, want) in [
        ("GET / HTTP/1.0\r\n\r\n", "HTTP/1.0 200 OK"),
        ("GET /../../etc/passwd HTTP/1.0\r\n\r\n", "HTTP/1.0 404"),
        ("DELETE / HTTP/1.0\r\n\r\n", "HTTP/1.0 405"),
    ] {
        let s = kernel_connect(&h);
        (&s).write_all(req.as_bytes()).unwrap();
        let resp = String::from_utf8_lossy(&read_all(&s)).to_string();
        assert!(resp.starts_with(want), "{req:?}: {resp}");
    }
    finish(h, "http errors");
    let _ = std::fs::remove_dir_all(&dir);
}
