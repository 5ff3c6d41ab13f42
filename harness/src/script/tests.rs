//! Unit tests of the script parser.

use super::*;
use proptest::prelude::*;

const SAMPLE: &str = "// passive open, write, close
--tolerance_usecs=4000
0   socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0  setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0  bind(3, ..., ...) = 0
+0  listen(3, 1) = 0
+0  < S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>
+0  > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 7>
+.1 < . 1:1(0) ack 1 win 257
+0  accept(3, ..., ...) = 4
+0  write(4, ..., 1000) = 1000
+0  > P. 1:1001(1000) ack 1
+.01 < . 1:1(0) ack 1001 win 257
+0  close(4) = 0
+0  > F. 1001:1001(0) ack 1
+0...0.300 read(4, ..., 100) = 0
0.1~0.2 > . 1:1(0) ack 2
`sysctl -q net.ipv4.tcp_rto_min_us=1000000`
";

const FIXTURES: [(&str, &str); 4] = [
    (
        "passive_open_close.pkt",
        include_str!("testdata/passive_open_close.pkt"),
    ),
    (
        "active_open_refused.pkt",
        include_str!("testdata/active_open_refused.pkt"),
    ),
    ("rto_backoff.pkt", include_str!("testdata/rto_backoff.pkt")),
    (
        "sack_half_close.pkt",
        include_str!("testdata/sack_half_close.pkt"),
    ),
];

fn rel(usecs: u64) -> TimeSpec {
    TimeSpec::At(TimePoint {
        relative: true,
        usecs,
    })
}

fn err(text: &str) -> ScriptError {
    match parse("t.pkt", text) {
        Ok(s) => panic!("expected an error for {text:?}, parsed {s:?}"),
        Err(e) => e,
    }
}

fn one_event(text: &str) -> Event {
    let s = parse("t.pkt", text).unwrap();
    assert_eq!(s.events.len(), 1, "{s:?}");
    s.events.into_iter().next().unwrap()
}

fn packet(text: &str) -> PacketSpec {
    match one_event(text).kind {
        EventKind::Packet(p) => p,
        k => panic!("not a packet: {k:?}"),
    }
}

fn syscall(text: &str) -> SyscallSpec {
    match one_event(text).kind {
        EventKind::Syscall(s) => s,
        k => panic!("not a syscall: {k:?}"),
    }
}

fn assert_round_trip(path: &str, text: &str) {
    let first = parse(path, text).unwrap();
    let printed = first.to_string();
    let second = parse("printed", &printed).unwrap_or_else(|e| panic!("{e}\n---\n{printed}"));
    assert!(
        first.eq_ignoring_locations(&second),
        "{printed}\n{first:#?}\n{second:#?}"
    );
    assert_eq!(printed, second.to_string());
}

#[test]
fn sample_script_parses() {
    let s = parse("sample.pkt", SAMPLE).unwrap();
    assert_eq!(s.options.len(), 1);
    assert_eq!(s.options[0].opt, Opt::ToleranceUsecs(4000));
    assert_eq!((s.options[0].line, s.options[0].col), (2, 1));
    assert_eq!(s.tolerance_usecs(), Some(4000));
    assert_eq!(s.events.len(), 16);

    let e0 = &s.events[0];
    assert_eq!((e0.line, e0.col), (3, 1));
    assert_eq!(
        e0.time,
        TimeSpec::At(TimePoint {
            relative: false,
            usecs: 0
        })
    );
    assert_eq!(
        e0.kind,
        EventKind::Syscall(SyscallSpec {
            name: "socket".into(),
            args: vec![
                Expr::Ellipsis,
                Expr::Ident("SOCK_STREAM".into()),
                Expr::Ident("IPPROTO_TCP".into())
            ],
            result: 3,
            errno: None,
            note: None,
        })
    );
    let EventKind::Syscall(sso) = &s.events[1].kind else {
        panic!()
    };
    assert_eq!(sso.args[3], Expr::List(vec![Expr::Int(1)]));

    let EventKind::Packet(syn) = &s.events[4].kind else {
        panic!()
    };
    assert_eq!(syn.dir, Direction::Inbound);
    assert_eq!(
        syn.flags,
        TcpFlags {
            syn: true,
            ..TcpFlags::default()
        }
    );
    assert_eq!(syn.seq, Some((0, 0, 0)));
    assert_eq!(syn.win, Some(32792));
    assert_eq!(
        syn.options,
        Some(vec![
            TcpOpt::Mss(1000),
            TcpOpt::SackPermitted,
            TcpOpt::Nop,
            TcpOpt::Nop,
            TcpOpt::Nop,
            TcpOpt::WScale(7)
        ])
    );
    let EventKind::Packet(synack) = &s.events[5].kind else {
        panic!()
    };
    assert_eq!(synack.dir, Direction::Outbound);
    assert!(synack.flags.syn && synack.flags.ack && !synack.flags.fin);
    assert_eq!(synack.ack, Some(1));
    assert_eq!(synack.win, None);

    assert_eq!(s.events[6].time, rel(100_000));
    assert_eq!((s.events[6].line, s.events[6].col), (9, 1));
    let EventKind::Packet(data) = &s.events[9].kind else {
        panic!()
    };
    assert_eq!(data.seq, Some((1, 1001, 1000)));
    assert!(data.flags.psh && data.flags.ack);
    assert_eq!(data.options, Some(vec![]));
    assert_eq!(s.events[10].time, rel(10_000));

    assert_eq!(
        s.events[13].time,
        TimeSpec::Blocking {
            start: TimePoint {
                relative: true,
                usecs: 0
            },
            end: TimePoint {
                relative: false,
                usecs: 300_000
            },
        }
    );
    assert_eq!(
        s.events[14].time,
        TimeSpec::Range {
            start: TimePoint {
                relative: false,
                usecs: 100_000
            },
            end: TimePoint {
                relative: false,
                usecs: 200_000
            },
        }
    );
    assert_eq!(s.events[14].line, 17);
    let shell = &s.events.last().unwrap();
    assert_eq!(shell.time, TimeSpec::Unspecified);
    assert_eq!(shell.line, 18);
    let EventKind::Shell(cmd) = &shell.kind else {
        panic!()
    };
    assert_eq!(cmd.cmd, "sysctl -q net.ipv4.tcp_rto_min_us=1000000");
    assert_eq!(
        cmd.sysctls(),
        Some(vec![("net.ipv4.tcp_rto_min_us".into(), "1000000".into())])
    );
}

#[test]
fn fixtures_parse_and_round_trip() {
    for (name, text) in FIXTURES {
        let s = parse(name, text).unwrap_or_else(|e| panic!("{e}"));
        assert!(!s.events.is_empty(), "{name}");
        assert_round_trip(name, text);
    }
    assert_round_trip("sample.pkt", SAMPLE);
}

#[test]
fn fixture_details() {
    let s = parse("a", FIXTURES[1].1).unwrap();
    let EventKind::Syscall(connect) = &s.events[3].kind else {
        panic!()
    };
    assert_eq!(connect.result, -1);
    assert_eq!(connect.errno.as_deref(), Some("EINPROGRESS"));
    assert_eq!(connect.note.as_deref(), Some("Operation now in progress"));
    let EventKind::Packet(syn) = &s.events[4].kind else {
        panic!()
    };
    assert_eq!(syn.options, None);
    let EventKind::Syscall(fcntl) = &s.events[2].kind else {
        panic!()
    };
    assert_eq!(
        fcntl.args[2],
        Expr::BitOr(vec![
            Expr::Ident("O_RDWR".into()),
            Expr::Ident("O_NONBLOCK".into())
        ])
    );
    let EventKind::Syscall(poll) = &s.events[6].kind else {
        panic!()
    };
    let Expr::List(items) = &poll.args[0] else {
        panic!()
    };
    let Expr::Struct(fields) = &items[0] else {
        panic!()
    };
    assert_eq!(fields[0], ("fd".into(), Expr::Int(3)));
    assert_eq!(fields[1].0, "events");

    let s = parse("r", FIXTURES[2].1).unwrap();
    let EventKind::Shell(sh) = &s.events[0].kind else {
        panic!()
    };
    assert_eq!(
        sh.sysctls().unwrap(),
        vec![
            ("net.ipv4.tcp_rto_min_us".to_string(), "1000000".to_string()),
            ("net.ipv4.tcp_timestamps".to_string(), "1".to_string())
        ]
    );
    let EventKind::Packet(syn) = &s.events[5].kind else {
        panic!()
    };
    assert!(syn
        .options
        .as_ref()
        .unwrap()
        .contains(&TcpOpt::Timestamp { val: 100, ecr: 0 }));
    assert_eq!(
        s.events[11].time,
        TimeSpec::Range {
            start: TimePoint {
                relative: true,
                usecs: 1_000_000
            },
            end: TimePoint {
                relative: true,
                usecs: 1_200_000
            },
        }
    );

    let s = parse("s", FIXTURES[3].1).unwrap();
    let EventKind::Packet(p) = &s.events[9].kind else {
        panic!()
    };
    assert_eq!(
        p.options,
        Some(vec![
            TcpOpt::Nop,
            TcpOpt::Nop,
            TcpOpt::Sack(vec![(1001, 2001)])
        ])
    );
    assert_eq!(s.ip_version(), Some(IpVersion::V4));
}

#[test]
fn packet_forms() {
    let p = packet("+0 < . ack 1 win 257");
    assert_eq!(p.seq, None);
    assert_eq!(p.ack, Some(1));
    let p = packet("+0 > - 5:5(0)");
    assert!(p.flags.is_empty());
    let p = packet("+0 < SEW 0:0(0) win 10 urg 3");
    assert!(p.flags.syn && p.flags.ece && p.flags.cwr);
    assert_eq!(p.urg, Some(3));
    let p = packet("+0 > S.E 0:0(0) ack 1 <...>");
    assert!(p.flags.syn && p.flags.ack && p.flags.ece);
    assert_eq!(p.to_string(), "> S.E 0:0(0) ack 1 <...>");
    let p = packet("+0 < FP. 1:11(10) ack 1 win 100 <eol>");
    assert_eq!(p.to_string(), "< FP. 1:11(10) ack 1 win 100 <eol>");
    let p = packet("* > R 1:1(0)");
    assert!(p.flags.rst);
    let p = packet("+0 < . 4294967000:4:(300)".replace(":(", "(").as_str());
    assert_eq!(p.seq, Some((4294967000, 4, 300)));
    let p = packet("+0 < . 1:1(0) ack 1 win 257 <sack 1:2 3:4,TS val 4294967295 ecr 0>");
    assert_eq!(
        p.options,
        Some(vec![
            TcpOpt::Sack(vec![(1, 2), (3, 4)]),
            TcpOpt::Timestamp {
                val: u32::MAX,
                ecr: 0
            }
        ])
    );
}

#[test]
fn syscall_forms() {
    let s = syscall(r#"+0 setsockopt(3, SOL_SOCKET, SO_LINGER, {l_onoff=1, l_linger=0}, 8) = 0"#);
    assert_eq!(
        s.args[3],
        Expr::Struct(vec![
            ("l_onoff".into(), Expr::Int(1)),
            ("l_linger".into(), Expr::Int(0))
        ])
    );
    let s =
        syscall(r#"+0 foo("a\"b", -5, 0x10, htons(8080), [], {}) = -9223372036854775808 EAGAIN"#);
    assert_eq!(s.args[0], Expr::Str("a\"b".into()));
    assert_eq!(s.args[1], Expr::Int(-5));
    assert_eq!(s.args[2], Expr::Int(16));
    assert_eq!(
        s.args[3],
        Expr::Call {
            name: "htons".into(),
            args: vec![Expr::Int(8080)]
        }
    );
    assert_eq!(s.result, i64::MIN);
    assert_eq!(s.errno.as_deref(), Some("EAGAIN"));
    let s = syscall("+0 getsockopt(4, SOL_SOCKET, SO_ERROR, [ECONNREFUSED], [4]) = 0");
    assert_eq!(
        s.args[3],
        Expr::List(vec![Expr::Ident("ECONNREFUSED".into())])
    );
    let s = syscall("+0 shutdown(4, SHUT_WR) = 0");
    assert_eq!(s.to_string(), "shutdown(4, SHUT_WR) = 0");
    let s = syscall("+0 read(4, ..., 10) = -1 EAGAIN (Resource (temporarily) unavailable)");
    assert_eq!(
        s.note.as_deref(),
        Some("Resource (temporarily) unavailable")
    );
    // Arguments may span lines.
    let s = syscall("+0 setsockopt(3, SOL_SOCKET,\n     SO_REUSEADDR, [1], 4) = 0");
    assert_eq!(s.args.len(), 5);
}

#[test]
fn options_and_shell() {
    let s = parse(
        "o",
        "--ip_version=ipv4-mapped-ipv6 --mtu=1500\n--verbose\n--local_ip=\"192.0.2.1\"\n`echo hi`\n+0 `true`\n",
    )
    .unwrap();
    assert_eq!(s.ip_version(), Some(IpVersion::V4MappedV6));
    assert_eq!(
        s.options[1].opt,
        Opt::Other {
            name: "mtu".into(),
            value: Some("1500".into())
        }
    );
    assert_eq!((s.options[1].line, s.options[1].col), (1, 31));
    assert_eq!(
        s.options[2].opt,
        Opt::Other {
            name: "verbose".into(),
            value: None
        }
    );
    assert_eq!(
        s.options[3].opt,
        Opt::Other {
            name: "local_ip".into(),
            value: Some("\"192.0.2.1\"".into())
        }
    );
    assert_eq!(s.events.len(), 2);
    assert_eq!(s.events[1].time, rel(0));
    let EventKind::Shell(sh) = &s.events[0].kind else {
        panic!()
    };
    assert_eq!(sh.sysctls(), None);
    assert_round_trip("o", "--ip_version=ipv6\n--x=a/b\n`echo \\` x`\n");
}

#[test]
fn sysctl_helper() {
    assert_eq!(
        parse_sysctls(
            "sysctl -q net.ipv4.tcp_rmem=\"4096 87380 6291456\" && /sbin/sysctl -qw a.b=1;"
        ),
        Some(vec![
            ("net.ipv4.tcp_rmem".into(), "4096 87380 6291456".into()),
            ("a.b".into(), "1".into())
        ])
    );
    assert_eq!(
        parse_sysctls("sysctl -w a=1 b=2"),
        Some(vec![("a".into(), "1".into()), ("b".into(), "2".into())])
    );
    assert_eq!(parse_sysctls("sysctl -n net.ipv4.tcp_rto_min_us"), None);
    assert_eq!(parse_sysctls("sysctl a=1; echo x"), None);
    assert_eq!(parse_sysctls("sysctl a=$X"), None);
    assert_eq!(parse_sysctls(""), None);
    assert_eq!(parse_sysctls("sysctl 'a=1"), None);
}

#[test]
fn times() {
    assert_eq!(
        one_event("1.5 close(3) = 0").time,
        TimeSpec::At(TimePoint {
            relative: false,
            usecs: 1_500_000
        })
    );
    assert_eq!(one_event("+.000001 close(3) = 0").time, rel(1));
    assert_eq!(one_event("+2. close(3) = 0").time, rel(2_000_000));
    assert_eq!(one_event("+0.1000000 close(3) = 0").time, rel(100_000));
    assert_eq!(one_event("* > . 1:1(0)").time, TimeSpec::Any);
    assert_eq!(
        one_event("+1.25 close(3) = 0").to_string(),
        "+1.25 close(3) = 0"
    );
    assert_eq!(
        one_event("+0...+.1 read(4, ..., 1) = 1").to_string(),
        "+0...+0.1 read(4, ..., 1) = 1"
    );
}

fn check_err(text: &str, line: usize, col: usize, needle: &str) {
    let e = err(text);
    assert_eq!((e.line, e.col), (line, col), "{e}");
    assert!(e.message.contains(needle), "{e}");
    assert_eq!(e.to_string(), format!("t.pkt:{line}:{col}: {}", e.message));
}

#[test]
fn errors_have_exact_locations() {
    // Unknown flag.
    check_err(
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < SX 0:0(0) win 1000\n",
        2,
        7,
        "unknown TCP flag `X`",
    );
    check_err("+0 < ack 1", 1, 6, "unknown TCP flag `a`");
    check_err("+0 < SS 0:0(0)", 1, 7, "duplicate TCP flag `S`");
    check_err("+0 < S- 0:0(0)", 1, 7, "cannot be combined");
    // Bad TCP option.
    check_err(
        "+0 < S 0:0(0) win 1000 <mss 1000,foo 3>",
        1,
        34,
        "unsupported TCP option `foo`",
    );
    check_err(
        "+0 < S 0:0(0) <mss 70000>",
        1,
        20,
        "MSS `70000` is out of range",
    );
    check_err("+0 < S 0:0(0) <TS val 1>", 1, 24, "expected `ecr`");
    check_err("+0 < S 0:0(0) <>", 1, 15, "empty TCP option list");
    check_err("+0 < S 0:0(0) <nop nop>", 1, 20, "expected `,` or `>`");
    // Unterminated comment.
    check_err(
        "0 close(3) = 0\n  /* never ends\n",
        2,
        3,
        "unterminated `/*` comment",
    );
    // Unterminated code block, located at its `%{`; a `}` alone does not end it.
    check_err(
        "0 close(3) = 0\n +0 %{ x = {1: 2} \n",
        2,
        5,
        "unterminated `%{` code block",
    );
    // Missing `=` result.
    check_err("+0 close(4)\n", 1, 12, "missing `= result`");
    check_err("+0 close(4) 0\n", 1, 13, "missing `= result`");
    check_err("+0 close(4) =\n", 1, 14, "expected an integer result");
    // Garbage.
    check_err("+0 close(4) = 0 garbage", 1, 17, "expected an errno name");
    check_err("%%%", 1, 1, "unexpected character '%'");
    check_err("+0 close(4) = 0\nfoo bar", 2, 1, "expected a time");
    check_err(
        "+0 < S 0:0(0) win 10 junk",
        1,
        22,
        "unexpected `junk` in packet",
    );
    check_err(
        "+0 close(4) = 0 EBADF (x) y",
        1,
        27,
        "each event must start on its own line",
    );
    check_err("+0\nclose(4) = 0", 1, 1, "not followed by an event");
    check_err(
        "+0 < S 0:0(0)\n--tolerance_usecs=1",
        2,
        1,
        "must come before the first event",
    );
    // Numbers.
    check_err(
        "+0 < S 0:0(0) win 99999999999999999999999",
        1,
        19,
        "window `99999999999999999999999` is out of range",
    );
    check_err("+0 < S 0:0(0) win 65536", 1, 19, "out of range");
    check_err("+0 < S 0:5000000000(0)", 1, 10, "sequence number");
    check_err(
        "+0 < . 1:1001(999) ack 1",
        1,
        8,
        "inconsistent sequence range",
    );
    check_err("+99999999999999999 close(3) = 0", 1, 2, "too large");
    check_err(
        "+0.0000001 close(3) = 0",
        1,
        2,
        "finer than one microsecond",
    );
    check_err("+0 f(99999999999999999999) = 0", 1, 6, "out of range");
    check_err("+0 f(1) = 99999999999999999999", 1, 11, "out of range");
    check_err("+0 f(12abc) = 0", 1, 6, "malformed number");
    // Unterminated things.
    check_err("+0 f(\"abc) = 0", 1, 6, "unterminated string");
    check_err("+0 `echo", 1, 4, "unterminated backtick");
    check_err(
        "+0 f(1) = -1 EIO (never closed",
        1,
        18,
        "unterminated `(` note",
    );
    check_err("+0 f([1, 2) = 0", 1, 11, "expected `,` or `]`");
    check_err("+0 f(1", 1, 7, "expected `,` or `)`");
    // Unsupported constructs.
    check_err("+0 < udp(1000)", 1, 6, "only TCP packets");
    check_err("+0 < [ect01] S 0:0(0)", 1, 6, "only be used with outbound");
    check_err("+0 < [bogus] S 0:0(0)", 1, 7, "expected an ECN annotation");
    check_err("+0 < (tos 0x2) S 0:0(0)", 1, 6, "not supported");
    check_err("+0 < S 0:0(0) <md5 0011>", 1, 16, "16 octets");
    check_err("+0 < S 0:0(0) <FO abc>", 1, 19, "odd number");
    check_err("+0 %{ assert 1", 1, 4, "unterminated `%{`");
    check_err("+0 f(\"\\x4\") = 0", 1, 7, "two hex digits");
    check_err("+0 < icmp", 1, 6, "expected an ICMP type");
    check_err("+0 < icmp unreachable [1:2(5)]", 1, 24, "inconsistent");
    check_err("+0...1 < S 0:0(0)", 1, 1, "only allowed for system calls");
    check_err("--ip_version=ipv5", 1, 14, "unknown `--ip_version`");
    check_err("--tolerance_usecs=abc", 1, 19, "whole number");
    check_err("--tolerance_usecs", 1, 1, "needs a value");
    check_err("+0 < S 0:0(0) ack 1 ack 2", 1, 21, "duplicate `ack`");
    check_err("0.2~0.1 > S 0:0(0)", 1, 4, "ends before it starts");
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let text = format!("+0 f({}) = 0", "[".repeat(100_000));
    let e = err(&text);
    assert!(e.message.contains("nesting deeper than"), "{e}");
    assert_eq!(e.col, 5 + MAX_NESTING + 1);
    let ok = format!(
        "+0 f({}1{}) = 0",
        "[".repeat(MAX_NESTING),
        "]".repeat(MAX_NESTING)
    );
    assert_round_trip("deep", &ok);
    let calls = format!("+0 f({}) = 0", "g(".repeat(1000));
    assert!(err(&calls).message.contains("nesting"));
}

#[test]
fn odd_input_never_panics() {
    for text in [
        "",
        "\0",
        "\u{feff}0 close(3) = 0",
        "é",
        "+",
        "+.",
        "..",
        "...",
        "-",
        "--",
        "--=1",
        "`",
        "/*",
        "/",
        "//",
        "0x",
        "+0x10 close(3) = 0",
        "0 <",
        "0 > S",
        "0 > S 1",
        "0 > S 1:",
        "0 > S 1:2(",
        "0 > S 1:2(1",
        "0 f(",
        "0 f(1) = -",
        "0 f(1) = 0 E",
        "0 f(1) = 0 (",
        "0 f({a=",
        "0 f({a})",
        "0 f(\"\\q\")",
        "\r\n\t",
    ] {
        let _ = parse("odd", text);
    }
}

#[test]
fn leading_bom_is_ignored() {
    let e = one_event("\u{feff}0 close(3) = 0");
    assert_eq!((e.line, e.col), (1, 1));
    check_err("0 close(3) = 0\n\u{feff}", 2, 1, "unexpected character");
}

#[test]
fn comments_and_blank_lines() {
    let s = parse(
        "c",
        "/* header\n spanning */\n\n// note\n+0 close(3) = 0 // trailing\n/* a */ +0 /* b */ close(4) /* c */ = 0\n",
    )
    .unwrap();
    assert_eq!(s.events.len(), 2);
    assert_eq!((s.events[0].line, s.events[0].col), (5, 1));
    assert_eq!((s.events[1].line, s.events[1].col), (6, 9));
}

/// Apply `edits` (position, kind, char) to `base`, character-wise.
fn mutate(base: &str, edits: &[(usize, u8, char)]) -> String {
    let mut chars: Vec<char> = base.chars().collect();
    for &(pos, kind, c) in edits {
        let n = chars.len();
        let at = if n == 0 { 0 } else { pos % (n + 1) };
        match kind % 5 {
            0 => chars.insert(at, c),
            1 if at < n => {
                chars.remove(at);
            }
            2 if at < n => chars[at] = c,
            3 => {
                let end = (at + (pos % 17)).min(n);
                let dup: Vec<char> = chars[at..end].to_vec();
                chars.splice(at..at, dup);
            }
            _ => chars.truncate(at.max(n.saturating_sub(pos % 7))),
        }
    }
    chars.into_iter().collect()
}

fn check_any(text: &str) -> Result<(), TestCaseError> {
    if let Ok(s) = parse("fuzz", text) {
        let printed = s.to_string();
        match parse("printed", &printed) {
            Ok(again) => prop_assert!(s.eq_ignoring_locations(&again), "{text:?}\n{printed}"),
            Err(e) => prop_assert!(
                false,
                "printed form does not parse: {e}\n{text:?}\n{printed}"
            ),
        }
    }
    Ok(())
}

fn script_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => proptest::sample::select(
            " \n\t+-.,:;<>()[]{}=|~*`\"/\\0123456789SFRPUEWackwinurgmssTSvalecr_xé".chars().collect::<Vec<_>>()
        ),
        1 => any::<char>(),
    ]
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        check_any(&text)?;
    }

    #[test]
    fn script_alphabet_strings_never_panic(chars in proptest::collection::vec(script_char(), 0..200)) {
        let text: String = chars.into_iter().collect();
        check_any(&text)?;
    }

    #[test]
    fn mutated_sample_never_panics(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), script_char()), 0..8),
        which in 0usize..5,
    ) {
        let base = if which == 4 { SAMPLE } else { FIXTURES[which].1 };
        check_any(&mutate(base, &edits))?;
    }
}

/// Issue 10: packetdrill's corpus syntax beyond TCP packets and plain calls.
#[test]
fn packetdrill_corpus_forms() {
    let e = one_event("+.005 %{\nassert tcpi_snd_cwnd == 10, tcpi_snd_cwnd\n}%");
    assert_eq!(
        e.kind,
        EventKind::Code(CodeBlock {
            code: "assert tcpi_snd_cwnd == 10, tcpi_snd_cwnd".into()
        })
    );
    let untimed = parse("t.pkt", "%{ x = 1 }%\n").unwrap();
    assert!(matches!(untimed.events[0].kind, EventKind::Code(_)));
    let p = packet("+0 < S 0:10(10) win 32792 <mss 1460,FO abcd1234,nop,nop,FOEXP,md5 000102030405060708090a0b0c0d0e0f>");
    let opts = p.options.unwrap();
    assert_eq!(
        opts[1],
        TcpOpt::FastOpen {
            exp: false,
            cookie: vec![0xab, 0xcd, 0x12, 0x34]
        }
    );
    assert_eq!(
        opts[4],
        TcpOpt::FastOpen {
            exp: true,
            cookie: vec![]
        }
    );
    assert_eq!(opts[5], TcpOpt::Md5((0u8..16).collect()));
    // A cookie of digits only, and one starting with digits.
    let p = packet("+0 < S 0:0(0) <FO 12345678,FO 3021b9d8>");
    assert_eq!(
        p.options.unwrap()[1],
        TcpOpt::FastOpen {
            exp: false,
            cookie: vec![0x30, 0x21, 0xb9, 0xd8]
        }
    );
    let p = packet("+0 > [ect0] P. 1:1001(1000) ack 1");
    assert_eq!(p.ecn, Some(Ecn::Ect0));
    let p = packet("+0 < [noecn] E. 1:1(0) ack 1 win 320");
    assert_eq!((p.ecn, p.flags.ece), (Some(Ecn::NoEcn), true));
    let e = one_event("+.01 < icmp unreachable frag_needed mtu 840 [0:1000(1000)]");
    assert_eq!(
        e.kind,
        EventKind::Icmp(IcmpSpec {
            dir: Direction::Inbound,
            icmp_type: "unreachable".into(),
            code: Some("frag_needed".into()),
            mtu: Some(840),
            seq: Some((0, 1000, 1000)),
        })
    );
    // recvmsg's struct syntax: length suffixes and unnamed iovec fields.
    let s = syscall(
        "+0 recvmsg(4, {msg_name(...)=..., msg_iov(1)=[{...,0}], msg_flags=MSG_ERRQUEUE,\n\
         msg_control=[{cmsg_level=SOL_IP, cmsg_type=IP_RECVERR, cmsg_data={ee_errno=0}}]}, MSG_ERRQUEUE) = 0",
    );
    let Expr::Struct(fields) = &s.args[1] else {
        panic!("{s:?}")
    };
    assert_eq!(fields[0].0, "msg_name(...)");
    assert_eq!(fields[1].0, "msg_iov(1)");
    assert_eq!(
        fields[1].1,
        Expr::List(vec![Expr::Struct(vec![
            (String::new(), Expr::Ellipsis),
            (String::new(), Expr::Int(0))
        ])])
    );
    // `\x` escapes give the octets.
    let s = syscall("+0 setsockopt(3, SOL_TCP, TCP_FASTOPEN_KEY, \"\\xf7\\x63a\", 3) = 0");
    assert_eq!(s.args[3], Expr::Str("\u{f7}\u{63}a".into()));
    for text in [
        "+.005 %{ assert tcpi_ca_state == TCP_CA_Open }%\n",
        "+0 < S 0:10(10) win 1 <mss 1460,FOEXP 00abaaabe8e954c2,FO>\n",
        "+0 > [ect01] . 1:1(0) ack 1\n",
        "+0 < icmp unreachable host_unreachable [0:10(10)]\n",
        "+0 setsockopt(3, SOL_TCP, TCP_FASTOPEN_KEY, \"\\xf7\\x00\\x1f\", 3) = 0\n",
        "+0 sendmsg(4, {msg_name(...)=..., msg_iov(2)=[{..., 1}, {..., 2}], msg_flags=0}, 0) = 3\n",
    ] {
        assert_round_trip("t.pkt", text);
    }
}

/// `-D name=value`: a defined word reads as its value, typed as packetdrill
/// types it (number, hex word, string, word).
#[test]
fn defines_substitute_words() {
    let mut d = Defines::new();
    d.insert("TFO_COOKIE".into(), "3021b9d889017eeb".into());
    d.insert("CODE".into(), "host_unreachable".into());
    d.insert("N".into(), "0x10".into());
    d.insert("STR".into(), "\"hi\"".into());
    let s = parse_with_defines(
        "t.pkt",
        "+0 < S 0:0(0) <FOEXP TFO_COOKIE>\n+0 < icmp unreachable CODE\n+0 f(N, STR) = 0\n",
        &d,
    )
    .unwrap();
    let EventKind::Packet(p) = &s.events[0].kind else {
        panic!()
    };
    assert_eq!(
        p.options.as_ref().unwrap()[0],
        TcpOpt::FastOpen {
            exp: true,
            cookie: vec![0x30, 0x21, 0xb9, 0xd8, 0x89, 0x01, 0x7e, 0xeb]
        }
    );
    let EventKind::Icmp(i) = &s.events[1].kind else {
        panic!()
    };
    assert_eq!(i.code.as_deref(), Some("host_unreachable"));
    let EventKind::Syscall(c) = &s.events[2].kind else {
        panic!()
    };
    assert_eq!(c.args, vec![Expr::Int(16), Expr::Str("hi".into())]);
    // Without the definition the word stays a word.
    assert!(parse("t.pkt", "+0 < S 0:0(0) <FOEXP TFO_COOKIE>\n").is_err());
}
