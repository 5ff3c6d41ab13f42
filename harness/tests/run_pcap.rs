//! `tcpconform run --pcap DIR` over the whole suite: every pcap file is a
//! well-formed LINKTYPE_RAW capture and every packet in it parses as
//! IPv4/IPv6 + TCP with correct IP header and TCP checksums (checked with
//! the own stack's parser, which verifies both; tshark is not needed).

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

#[test]
fn suite_pcaps_hold_only_valid_tcp_packets() {
    let dir = std::env::temp_dir().join(format!("tcpconform-pcap-{}", std::process::id()));
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
