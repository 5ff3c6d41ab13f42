//! `tcpconform timers` against this machine's kernel (the quick plan, one
//! namespace per scenario, in real time): the fingerprint shows the linux
//! profile's documented values (the table's Linux rows, with their
//! sources), the tool makes no claim its observations cannot carry, and
//! the trace checker reads a pcap of the kernel's connections the way the
//! probe did.
//!
//! Needs root; where live targets cannot run, `live::testing::guard`
//! skips (and fails under `CI=true`).

use std::time::Duration;
use tcp_harness::live;
use tcp_harness::pcap::{read, PcapWriter};
use tcp_harness::timers::estimate::Estimate;
use tcp_harness::timers::report::TargetReport;
use tcp_harness::timers::scenarios::Family;
use tcp_harness::timers::{linux, trace, Plan, TimerTarget};
use tcp_harness::verdict::Class;
use tcp_spec::rto::{syn_give_up, RtoConfig};
use tcp_spec::{Profile, Spec};

fn spec() -> &'static Spec {
    Spec::bundled().unwrap_or_else(|e| panic!("{e}"))
}

fn get<'a>(r: &'a TargetReport, name: &str) -> &'a Estimate {
    r.fingerprint
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no estimate {name}"))
}

#[test]
fn kernel_fingerprint_and_pcap() {
    let Some(_g) = live::testing::guard() else {
        return;
    };
    let params = &spec().profile(Profile::Linux).params;
    let cfg = RtoConfig::from_params(params);
    let linear = params.syn_linear_timeouts.value;
    let plan = Plan::quick();
    let obs = linux::probe(Profile::Linux, 1, &plan, |l| println!("{l}"))
        .unwrap_or_else(|e| panic!("probe: {e}"));
    live::testing::assert_no_namespace_of_ours();
    assert!(obs.failed.is_empty(), "{:?}", obs.failed);
    let r = TimerTarget::Linux
        .judge(spec(), obs.clone(), None)
        .unwrap_or_else(|e| panic!("{e}"));
    for e in &r.fingerprint {
        println!("{:<32} {:?} {} {}", e.name, e.value, e.class, e.note);
    }
    // The kernel's timer wheel fires late by up to 1/8, never early.
    let near = |v: f64, want: f64| v >= want - 0.03 && v <= want * 1.125 + 0.03;

    // The profile's RTO floor, a SHOULD below RFC 6298's 1 s.
    let min = get(&r, "min RTO");
    let floor = params.rto_min_ms.value as f64 / 1000.0;
    assert!(min.value.is_some_and(|v| near(v, floor + 0.01)), "{min:?}");
    assert_eq!(min.class, Class::departure(tcp_spec::Level::Should));
    // The initial RTO and the doubling per expiry conform.
    for name in ["initial RTO", "backoff factor", "persist: backoff factor"] {
        assert_eq!(get(&r, name).class, Class::Conforms, "{name}");
    }
    // Linear SYN timeouts and the give-up time the profile documents.
    let give_up = get(&r, "SYN give-up time");
    let want = syn_give_up(cfg, params.syn_retries.value, linear);
    assert!(
        give_up.value.is_some_and(|v| near(v, want)),
        "{give_up:?} vs {want}"
    );
    assert!(give_up.class.departs(), "{give_up:?}");
    // Every SYN and SYN-ACK retransmission where the linux model puts it.
    for sc in r
        .scenarios
        .iter()
        .filter(|s| matches!(s.family, Family::Syn | Family::SynAck))
    {
        assert!(!sc.points.is_empty(), "{}", sc.name);
        for p in &sc.points {
            assert!(near(p.observed, p.predicted), "{}: {p:?}", sc.name);
        }
    }
    // The gains are claimed only where the RFC model explains the times.
    for name in ["SRTT gain alpha", "RTTVAR gain beta", "K"] {
        let e = get(&r, name);
        assert!(
            e.class == Class::Inconclusive || !e.note.contains("no claim"),
            "{e:?}"
        );
    }
    // No cap in the quick plan: not estimated, not claimed.
    assert_eq!(get(&r, "max RTO (cap)").class, Class::Inconclusive);

    // A pcap of the kernel's SYN and minimum-RTO connections: the trace
    // checker finds the same retransmissions and no departure from the
    // linux model.
    for family in [Family::Syn, Family::MinRto] {
        let o = obs
            .outcomes
            .iter()
            .find(|o| o.family == family)
            .unwrap_or_else(|| panic!("no {family:?} outcome"));
        let mut w = PcapWriter::new(Vec::new()).unwrap_or_else(|e| panic!("{e}"));
        for l in &o.log {
            w.write_packet(Duration::from_micros(l.at), &l.bytes)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let bytes = w.finish().unwrap_or_else(|e| panic!("{e}"));
        let packets = read(&bytes[..]).unwrap_or_else(|e| panic!("{e}"));
        let reports = trace::analyse(&packets, cfg, linear, 0.03, 0.125);
        let resends: usize = reports.iter().map(|s| s.resends.len()).sum();
        assert_eq!(resends, o.flow.resends.len(), "{family:?}");
        assert!(resends > 0, "{family:?}");
        let departs: usize = reports.iter().map(|s| s.departures()).sum();
        assert_eq!(departs, 0, "{family:?}: {}", trace::text(&reports));
    }
}
