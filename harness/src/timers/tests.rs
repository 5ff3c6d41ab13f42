//! The probes against the own stack: the fingerprint of the unmodified
//! stack conforms (over 20 seeds), and every seeded bug is flagged by the
//! check named for it.

use super::estimate::{fingerprint, Estimate, Judging};
use super::*;
use crate::verdict::Class;
use tcp_spec::Spec;

fn spec() -> &'static Spec {
    match Spec::bundled() {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

fn judging() -> Judging<'static> {
    Judging {
        rfc: &spec().profile(Profile::Rfc9293).params,
        tol: 0.002,
        resolution: 1e-6,
        rel: 0.0,
    }
}

fn print(fp: &[Estimate]) -> String {
    fp.iter()
        .map(|e| format!("{}: {:?} {}\n", e.name, e.value, e.class))
        .collect()
}

fn fp(faults: Faults, seed: u64) -> Vec<Estimate> {
    let obs = match probe_own(Profile::Rfc9293, faults, seed) {
        Ok(o) => o,
        Err(e) => panic!("probe: {e}"),
    };
    fingerprint(&obs, judging())
}

fn get<'a>(fp: &'a [Estimate], name: &str) -> &'a Estimate {
    match fp.iter().find(|e| e.name == name) {
        Some(e) => e,
        None => panic!("no estimate {name} in\n{}", print(fp)),
    }
}

#[test]
fn own_stack_fingerprint_conforms_over_20_seeds() {
    for seed in 0..20 {
        let fp = fp(Faults::default(), seed);
        let bad: Vec<&Estimate> = fp.iter().filter(|e| e.class != Class::Conforms).collect();
        assert!(bad.is_empty(), "seed {seed}:\n{}", print(&fp));
        for (name, want) in [
            ("SRTT gain alpha", 0.125),
            ("RTTVAR gain beta", 0.25),
            ("K", 4.0),
        ] {
            let v = get(&fp, name).value.unwrap_or(f64::NAN);
            assert!((v - want).abs() <= 0.1 * want, "seed {seed}: {name} = {v}");
        }
    }
}

#[test]
fn own_stack_exact_parameters() {
    let fp = fp(Faults::default(), 7);
    for (name, want) in [
        ("initial RTO", 1.0),
        ("min RTO", 1.0),
        ("backoff factor", 2.0),
        ("max RTO (cap)", 60.0),
        ("SYN give-up time", 183.0),
        ("delayed-ACK timeout", 0.2),
        ("persist: backoff factor", 2.0),
        ("trimmed to RCV.WND", 600.0),
    ] {
        let v = get(&fp, name).value.unwrap_or(f64::NAN);
        assert!(
            (v - want).abs() < 1e-3,
            "{name} = {v}, want {want}\n{}",
            print(&fp)
        );
    }
}

/// Seeds one bug and returns the classes of the named checks.
fn flagged(faults: Faults, check: &str) -> (Class, String) {
    let fp = fp(faults, 3);
    (get(&fp, check).class, print(&fp))
}

#[test]
fn srtt_gain_bug_is_flagged_by_the_alpha_estimate() {
    let f = Faults {
        srtt_gain_quarter: true,
        ..Faults::default()
    };
    let (c, all) = flagged(f, "SRTT gain alpha");
    assert_eq!(c, Class::MustViolation, "{all}");
    let fp = fp(f, 3);
    let a = get(&fp, "SRTT gain alpha").value.unwrap_or(0.0);
    assert!((a - 0.25).abs() < 0.025, "{a}");
}

#[test]
fn rttvar_gain_bug_is_flagged_by_the_beta_estimate() {
    let f = Faults {
        rttvar_gain_eighth: true,
        ..Faults::default()
    };
    let (c, all) = flagged(f, "RTTVAR gain beta");
    assert_eq!(c, Class::MustViolation, "{all}");
}

#[test]
fn k_bug_is_flagged_by_the_k_estimate() {
    let f = Faults {
        rto_k_two: true,
        ..Faults::default()
    };
    let (c, all) = flagged(f, "K");
    assert_eq!(c, Class::MustViolation, "{all}");
}

#[test]
fn kept_backoff_is_flagged_by_the_recompute_check() {
    let f = Faults {
        keep_backoff_after_sample: true,
        ..Faults::default()
    };
    let (c, all) = flagged(f, "RTO recomputed after back-off");
    assert_eq!(c, Class::MustViolation, "{all}");
}

#[test]
fn timer_only_delayed_ack_is_flagged_by_the_every_second_segment_check() {
    let f = Faults {
        no_ack_every_second_segment: true,
        ..Faults::default()
    };
    let (c, all) = flagged(f, "ACK every 2nd full segment");
    assert_eq!(c, Class::ShouldDeviation, "{all}");
}

#[test]
fn fixed_isn_is_flagged_by_both_isn_checks() {
    let f = Faults {
        fixed_isn: true,
        ..Faults::default()
    };
    let (c, all) = flagged(f, "ISN clock (same 4-tuple)");
    assert_eq!(c, Class::MustViolation, "{all}");
    let (c, all) = flagged(f, "ISN unguessable (new 4-tuples)");
    assert_eq!(c, Class::ShouldDeviation, "{all}");
}

#[test]
fn untrimmed_data_is_flagged_by_the_trimming_check() {
    let f = Faults {
        accept_beyond_window: true,
        ..Faults::default()
    };
    let (c, all) = flagged(f, "trimmed to RCV.WND");
    assert_eq!(c, Class::Deviation, "{all}");
}

/// A probe's packets written as a pcap and read back: the trace checker
/// finds no departure on the unmodified stack and flags the K = 2 bug, on
/// the same scenarios.
#[test]
fn trace_checker_on_probe_pcaps() {
    use crate::pcap::{read, PcapWriter};
    use std::time::Duration;
    let cfg = tcp_spec::rto::RtoConfig::RFC6298;
    let departures = |faults: Faults| -> usize {
        let setup = probe::StackSetup::new(Profile::Rfc9293, faults, 5);
        let mut n = 0;
        for sc in scenarios::rto_scenarios(5, 4, 9) {
            let o = match scenarios::run_rto(setup, &sc) {
                Ok(o) => o,
                Err(e) => panic!("{e}"),
            };
            let mut w = match PcapWriter::new(Vec::new()) {
                Ok(w) => w,
                Err(e) => panic!("{e}"),
            };
            for l in &o.log {
                if let Err(e) = w.write_packet(Duration::from_micros(l.at), &l.bytes) {
                    panic!("{e}");
                }
            }
            let bytes = match w.finish() {
                Ok(b) => b,
                Err(e) => panic!("{e}"),
            };
            let packets = match read(&bytes[..]) {
                Ok(p) => p,
                Err(e) => panic!("{e}"),
            };
            let reports = trace::analyse(&packets, cfg, 0, 0.002, 0.0);
            assert!(reports.iter().any(|r| !r.resends.is_empty()), "{}", sc.name);
            n += reports.iter().map(|r| r.departures()).sum::<usize>();
        }
        n
    };
    assert_eq!(departures(Faults::default()), 0);
    let bug = Faults {
        rto_k_two: true,
        ..Faults::default()
    };
    assert!(departures(bug) > 3);
}

#[test]
fn timer_targets_are_the_registrys_own_smoltcp_and_linux() {
    for p in TimerTarget::ALL {
        let name = p.target().as_str().to_string();
        assert_eq!(TimerTarget::parse(&name), Some(p), "{name}");
        assert!(TimerTarget::names().contains(&name));
    }
    assert_eq!(TimerTarget::parse(" linux "), Some(TimerTarget::Linux));
    // Registry targets without a timer prober, and names of none.
    for other in ["own-tun", "exec:/bin/true", "nope", ""] {
        assert_eq!(TimerTarget::parse(other), None, "{other}");
    }
}
