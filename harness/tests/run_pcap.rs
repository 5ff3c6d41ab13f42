//! `tcpconform run --pcap DIR` over the whole suite: every pcap file is a
//! well-formed LINKTYPE_RAW capture and every packet in it parses as
//! IPv4/IPv6 + TCP with correct IP header and TCP checksums — checked twice,
//! with the own stack's parser and with tshark (installed by `.ci/setup`),
//! which must report every checksum good and nothing malformed.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/scripts")
}

fn u32_at(b: &[u8], at: usize, le: bool) -> Option<u32> {
    let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(if le {
        u32::from_le_bytes(s)
    } else {
        u32::from_be_bytes(s)
    })
}

/// The packets of a pcap file, or what is wrong with it.
fn packets(bytes: &[u8]) -> Result<Vec<&[u8]>, String> {
    let magic = u32_at(bytes, 0, true).ok_or("no header")?;
    let le = match magic {
        0xa1b2_c3d4 | 0xa1b2_3c4d => true,
        0xd4c3_b2a1 | 0x4d3c_b2a1 => false,
        m => return Err(format!("bad magic {m:#x}")),
    };
    let linktype = u32_at(bytes, 20, le).ok_or("short header")?;
    if linktype != 101 {
        return Err(format!("linktype {linktype}, expected 101 (RAW)"));
    }
    let mut out = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        let incl = u32_at(bytes, at + 8, le).ok_or("short record header")? as usize;
        let orig = u32_at(bytes, at + 12, le).ok_or("short record header")? as usize;
        if incl != orig {
            return Err(format!("truncated record at {at}"));
        }
        let data = bytes
            .get(at + 16..at + 16 + incl)
            .ok_or(format!("record at {at} runs past the end"))?;
        out.push(data);
        at += 16 + incl;
    }
    Ok(out)
}

/// Runs the whole suite with `--pcap` into a fresh directory; returns it
/// and its files, one per script (sorted).
fn suite_pcaps(tag: &str) -> (PathBuf, Vec<PathBuf>) {
    let dir = std::env::temp_dir().join(format!("tcpconform-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = match Command::new(env!("CARGO_BIN_EXE_tcpconform"))
        .arg("run")
        .arg("--pcap")
        .arg(&dir)
        .arg(suite_dir())
        .output()
    {
        Ok(o) => o,
        Err(e) => panic!("cannot run tcpconform: {e}"),
    };
    // Scripts with known deviations fail (exit 1); errors would be 2.
    assert_ne!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scripts = match tcp_harness::run::discover(&[suite_dir()]) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => panic!("{}: {e}", dir.display()),
    };
    files.sort();
    assert_eq!(files.len(), scripts.len(), "one pcap per script");
    (dir, files)
}

#[test]
fn suite_pcaps_hold_only_valid_tcp_packets() {
    let (dir, files) = suite_pcaps("pcap");
    let mut total = 0usize;
    let mut bad = Vec::new();
    for f in &files {
        let bytes = match std::fs::read(f) {
            Ok(b) => b,
            Err(e) => panic!("{}: {e}", f.display()),
        };
        let pkts = match packets(&bytes) {
            Ok(p) => p,
            Err(e) => {
                bad.push(format!("{}: {e}", f.display()));
                continue;
            }
        };
        for (i, p) in pkts.iter().enumerate() {
            total += 1;
            // Both directions are in the file: accept any destination.
            let any = |_: IpAddr| true;
            if let Err(e) = tcp_stack::packet::parse(p, any) {
                bad.push(format!("{} packet {}: {e:?}", f.display(), i + 1));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(total > 200, "only {total} packets in the suite's pcaps");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// tshark's verdict on every packet of a capture: one line per frame with
/// the IP and TCP checksum status (1 good, 0 bad, empty for IPv6, which
/// has no header checksum) and whether the dissector found it malformed.
fn tshark_verdicts(file: &Path) -> Vec<String> {
    let out = match Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-o", "ip.check_checksum:TRUE"])
        .args(["-o", "tcp.check_checksum:TRUE"])
        // Per-packet validity is the point, not stream reassembly: tshark
        // 4.0 flags a byte-identical fast retransmission that lands inside
        // a half-reassembled stream as "New fragment overlaps old data"
        // (checked by hand on fast_retransmit.pcap, frames 5 and 12).
        .args(["-o", "tcp.desegment_tcp_streams:FALSE"])
        .args(["-T", "fields", "-E", "separator=;"])
        .args(["-e", "frame.number", "-e", "ip.checksum.status"])
        .args(["-e", "tcp.checksum.status", "-e", "_ws.malformed"])
        .output()
    {
        Ok(o) => o,
        Err(e) => panic!("tshark is not installed (bash .ci/setup installs it): {e}"),
    };
    assert!(
        out.status.success(),
        "tshark -r {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A frame tshark accepts: TCP checksum good, IP checksum good or absent
/// (IPv6), nothing malformed.
fn tshark_accepts(verdict: &str) -> bool {
    let fields: Vec<&str> = verdict.split(';').collect();
    matches!(fields.as_slice(), [_, "1" | "", "1", ""])
}

#[test]
fn tshark_reads_suite_pcaps_without_warnings() {
    let (dir, files) = suite_pcaps("tshark");
    let mut total = 0usize;
    let mut bad = Vec::new();
    for f in &files {
        let expected = match std::fs::read(f)
            .map_err(|e| e.to_string())
            .and_then(|b| packets(&b).map(|p| p.len()))
        {
            Ok(n) => n,
            Err(e) => panic!("{}: {e}", f.display()),
        };
        let verdicts = tshark_verdicts(f);
        if verdicts.len() != expected {
            bad.push(format!(
                "{}: tshark read {} of {expected} packets",
                f.display(),
                verdicts.len()
            ));
        }
        total += verdicts.len();
        bad.extend(
            verdicts
                .iter()
                .filter(|v| !tshark_accepts(v))
                .map(|v| format!("{}: frame/ip/tcp/malformed = {v}", f.display())),
        );
    }
    // The check itself must be able to fail: a copy of a capture with one
    // byte of TCP payload or header flipped is reported as a bad checksum.
    let victim = &files[0];
    let mut bytes = match std::fs::read(victim) {
        Ok(b) => b,
        Err(e) => panic!("{}: {e}", victim.display()),
    };
    // First record: 24-byte file header + 16-byte record header + 20-byte
    // IPv4 header; byte 4 of the TCP header is the sequence number.
    bytes[24 + 16 + 20 + 4] ^= 0xff;
    let corrupt = dir.join("corrupt.pcap");
    if let Err(e) = std::fs::write(&corrupt, &bytes) {
        panic!("{}: {e}", corrupt.display());
    }
    let corrupt_verdicts = tshark_verdicts(&corrupt);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        !tshark_accepts(&corrupt_verdicts[0]),
        "tshark did not flag a corrupted checksum: {corrupt_verdicts:?}"
    );
    assert!(total > 200, "tshark read only {total} packets");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
