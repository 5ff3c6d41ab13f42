//! `%{ ... }%` blocks: packetdrill's Python code events.
//!
//! packetdrill semantics: when a block's time comes, the runner takes
//! `getsockopt(TCP_INFO)` of the socket under test (the socket most
//! recently created by `socket` or returned by `accept`) and keeps the
//! values with the block. After the last event every block runs, in order,
//! in one `python3` program, each preceded by its `tcpi_*` assignments and
//! by the symbolic names packetdrill defines (`TCP_CA_Open`,
//! `TCPI_OPT_SACK`, ...). A block that raises fails the script at its line.

use std::io::Write;
use std::process::{Command, Stdio};

/// `tcpi_*` names and their values, in `struct tcp_info` order.
pub type TcpInfo = Vec<(&'static str, u64)>;

/// How each field of Linux's `struct tcp_info` (include/uapi/linux/tcp.h)
/// is laid out: name, byte offset, width in bytes. The two wscale nibbles
/// and the app-limited bit share bytes 6 and 7 and are decoded apart.
const LAYOUT: &[(&str, usize, usize)] = &[
    ("tcpi_state", 0, 1),
    ("tcpi_ca_state", 1, 1),
    ("tcpi_retransmits", 2, 1),
    ("tcpi_probes", 3, 1),
    ("tcpi_backoff", 4, 1),
    ("tcpi_options", 5, 1),
    ("tcpi_rto", 8, 4),
    ("tcpi_ato", 12, 4),
    ("tcpi_snd_mss", 16, 4),
    ("tcpi_rcv_mss", 20, 4),
    ("tcpi_unacked", 24, 4),
    ("tcpi_sacked", 28, 4),
    ("tcpi_lost", 32, 4),
    ("tcpi_retrans", 36, 4),
    ("tcpi_fackets", 40, 4),
    ("tcpi_last_data_sent", 44, 4),
    ("tcpi_last_ack_sent", 48, 4),
    ("tcpi_last_data_recv", 52, 4),
    ("tcpi_last_ack_recv", 56, 4),
    ("tcpi_pmtu", 60, 4),
    ("tcpi_rcv_ssthresh", 64, 4),
    ("tcpi_rtt", 68, 4),
    ("tcpi_rttvar", 72, 4),
    ("tcpi_snd_ssthresh", 76, 4),
    ("tcpi_snd_cwnd", 80, 4),
    ("tcpi_advmss", 84, 4),
    ("tcpi_reordering", 88, 4),
    ("tcpi_rcv_rtt", 92, 4),
    ("tcpi_rcv_space", 96, 4),
    ("tcpi_total_retrans", 100, 4),
    ("tcpi_pacing_rate", 104, 8),
    ("tcpi_max_pacing_rate", 112, 8),
    ("tcpi_bytes_acked", 120, 8),
    ("tcpi_bytes_received", 128, 8),
    ("tcpi_segs_out", 136, 4),
    ("tcpi_segs_in", 140, 4),
    ("tcpi_notsent_bytes", 144, 4),
    ("tcpi_min_rtt", 148, 4),
    ("tcpi_data_segs_in", 152, 4),
    ("tcpi_data_segs_out", 156, 4),
    ("tcpi_delivery_rate", 160, 8),
    ("tcpi_busy_time", 168, 8),
    ("tcpi_rwnd_limited", 176, 8),
    ("tcpi_sndbuf_limited", 184, 8),
    ("tcpi_delivered", 192, 4),
    ("tcpi_delivered_ce", 196, 4),
    ("tcpi_bytes_sent", 200, 8),
    ("tcpi_bytes_retrans", 208, 8),
    ("tcpi_dsack_dups", 216, 4),
    ("tcpi_reord_seen", 220, 4),
    ("tcpi_rcv_ooopack", 224, 4),
    ("tcpi_snd_wnd", 228, 4),
    ("tcpi_rcv_wnd", 232, 4),
    ("tcpi_rehash", 236, 4),
    ("tcpi_total_rto", 240, 2),
    ("tcpi_total_rto_recoveries", 242, 2),
    ("tcpi_total_rto_time", 244, 4),
];

/// Decodes what `getsockopt(TCP_INFO)` wrote (`bytes`, as long as the
/// kernel returned); fields past the end read 0, as in packetdrill, whose
/// buffer starts zeroed. Native byte order.
pub fn decode_tcp_info(bytes: &[u8]) -> TcpInfo {
    let byte = |i: usize| u64::from(bytes.get(i).copied().unwrap_or(0));
    let mut out: TcpInfo = LAYOUT
        .iter()
        .map(|&(name, off, width)| {
            let v = bytes
                .get(off..off + width)
                .map(|b| {
                    let mut le = [0u8; 8];
                    if cfg!(target_endian = "little") {
                        le[..width].copy_from_slice(b);
                        u64::from_le_bytes(le)
                    } else {
                        le[8 - width..].copy_from_slice(b);
                        u64::from_be_bytes(le)
                    }
                })
                .unwrap_or(0);
            (name, v)
        })
        .collect();
    out.push(("tcpi_snd_wscale", byte(6) & 0x0f));
    out.push(("tcpi_rcv_wscale", byte(6) >> 4));
    out.push(("tcpi_delivery_rate_app_limited", byte(7) & 1));
    out
}

/// Symbolic names packetdrill defines for Python code (Linux values of
/// `TCP_*` states, `TCP_CA_*` congestion states, `TCPI_OPT_*` bits).
const SYMBOLS: &[(&str, u64)] = &[
    ("TCP_ESTABLISHED", 1),
    ("TCP_SYN_SENT", 2),
    ("TCP_SYN_RECV", 3),
    ("TCP_FIN_WAIT1", 4),
    ("TCP_FIN_WAIT2", 5),
    ("TCP_TIME_WAIT", 6),
    ("TCP_CLOSE", 7),
    ("TCP_CLOSE_WAIT", 8),
    ("TCP_LAST_ACK", 9),
    ("TCP_LISTEN", 10),
    ("TCP_CLOSING", 11),
    ("TCP_CA_Open", 0),
    ("TCP_CA_Disorder", 1),
    ("TCP_CA_CWR", 2),
    ("TCP_CA_Recovery", 3),
    ("TCP_CA_Loss", 4),
    ("TCPI_OPT_TIMESTAMPS", 1),
    ("TCPI_OPT_SACK", 2),
    ("TCPI_OPT_WSCALE", 4),
    ("TCPI_OPT_ECN", 8),
    ("TCPI_OPT_ECN_SEEN", 16),
    ("TCPI_OPT_SYN_DATA", 32),
    ("TCPI_OPT_USEC_TS", 64),
    ("TCPI_OPT_TFO_CHILD", 128),
];

/// One block with the values taken when its time came.
#[derive(Debug, Clone)]
pub struct Fragment {
    /// Script line of the block.
    pub line: usize,
    /// Its column.
    pub col: usize,
    /// The `tcpi_*` values.
    pub info: TcpInfo,
    /// The code.
    pub code: String,
}

/// The block that failed and what Python printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeFailure {
    /// Line and column of the failing block (the first block when Python
    /// could not even start).
    pub line: usize,
    /// Column.
    pub col: usize,
    /// The last lines of Python's error output.
    pub message: String,
}

/// The Python program: a hook that names the failing block's script line,
/// then per block its values, its line marker and its code.
pub fn program(path: &str, fragments: &[Fragment]) -> String {
    let mut s = String::from(
        "import sys, traceback\n\
         _line = 0\n\
         def _hook(kind, value, tb):\n\
         \x20   sys.stderr.write('TCPCONFORM-LINE %d\\n' % _line)\n\
         \x20   traceback.print_exception(kind, value, tb)\n\
         sys.excepthook = _hook\n",
    );
    s.push_str(&format!("_file = {path:?}\n"));
    for (name, v) in SYMBOLS {
        s.push_str(&format!("{name} = {v}\n"));
    }
    for f in fragments {
        s.push('\n');
        for (name, v) in &f.info {
            s.push_str(&format!("{name} = {v}\n"));
        }
        s.push_str(&format!("_line = {}\n{}\n", f.line, f.code));
    }
    s
}

/// Runs all blocks in one `python3` (packetdrill runs them after the
/// script). `Ok(())` when it exits 0.
pub fn execute(path: &str, fragments: &[Fragment]) -> Result<(), CodeFailure> {
    let Some(first) = fragments.first() else {
        return Ok(());
    };
    let fail = |line, col, message: String| CodeFailure { line, col, message };
    let mut child = Command::new("python3")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(first.line, first.col, format!("cannot start python3: {e}")))?;
    let text = program(path, fragments);
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| fail(first.line, first.col, format!("writing to python3: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail(first.line, first.col, format!("python3: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find_map(|l| l.strip_prefix("TCPCONFORM-LINE ")?.trim().parse().ok())
        .unwrap_or(first.line);
    let col = fragments
        .iter()
        .find(|f| f.line == line)
        .map_or(first.col, |f| f.col);
    let tail: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("TCPCONFORM-LINE") && !l.trim().is_empty())
        .collect();
    let tail = tail[tail.len().saturating_sub(2)..].join(" | ");
    Err(fail(
        line,
        col,
        format!("Python block failed ({}): {tail}", out.status),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(line: usize, code: &str, cwnd: u64) -> Fragment {
        let mut bytes = vec![0u8; 104];
        bytes[80..84].copy_from_slice(&(cwnd as u32).to_ne_bytes());
        Fragment {
            line,
            col: 1,
            info: decode_tcp_info(&bytes),
            code: code.into(),
        }
    }

    #[test]
    fn tcp_info_fields_decode_at_their_offsets() {
        let mut b = vec![0u8; 248];
        b[0] = 1;
        b[6] = 0x87;
        b[80..84].copy_from_slice(&10u32.to_ne_bytes());
        b[240..242].copy_from_slice(&3u16.to_ne_bytes());
        let info = decode_tcp_info(&b);
        let get = |n: &str| info.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
        assert_eq!(get("tcpi_state"), Some(1));
        assert_eq!(get("tcpi_snd_cwnd"), Some(10));
        assert_eq!(get("tcpi_snd_wscale"), Some(7));
        assert_eq!(get("tcpi_rcv_wscale"), Some(8));
        assert_eq!(get("tcpi_total_rto"), Some(3));
        // Past what the kernel returned: 0.
        assert_eq!(get("tcpi_rehash"), Some(0));
        assert_eq!(
            decode_tcp_info(&b[..100])
                .iter()
                .find(|(k, _)| *k == "tcpi_pacing_rate")
                .map(|(_, v)| *v),
            Some(0)
        );
    }

    #[test]
    fn a_failing_assertion_names_its_block() {
        if Command::new("python3").arg("-c").arg("0").output().is_err() {
            eprintln!("skipped: no python3");
            return;
        }
        let ok = [frag(5, "assert tcpi_snd_cwnd == 10", 10)];
        assert_eq!(execute("x.pkt", &ok), Ok(()));
        let bad = [
            frag(5, "assert tcpi_snd_cwnd == 10", 10),
            frag(9, "assert tcpi_snd_cwnd == 10, tcpi_snd_cwnd", 7),
        ];
        let e = execute("x.pkt", &bad).unwrap_err();
        assert_eq!(e.line, 9);
        assert!(e.message.contains("AssertionError: 7"), "{}", e.message);
        let syms = [frag(3, "assert TCP_CA_Loss == 4 and TCPI_OPT_SACK == 2", 0)];
        assert_eq!(execute("x.pkt", &syms), Ok(()));
    }
}
