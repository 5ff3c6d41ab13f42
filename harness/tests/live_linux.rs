use tcp_harness::run::linux::LinuxTarget;
use tcp_harness::run::{run_text, RunOptions, TraceKind};

#[test]
fn explore() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../specs/scripts/passive_close.pkt"
    ))
    .unwrap();
    for _ in 0..8 {
        let mut t = LinuxTarget::new().unwrap();
        let r = run_text("pc", &text, &mut t, &RunOptions::default());
        let mut fin_in = 0;
        for e in &r.trace.entries {
            match &e.kind {
                TraceKind::PacketIn { text, .. } if text.contains("F.") => fin_in = e.at,
                TraceKind::PacketOut { text, .. }
                    if text.contains("ack 2") && !text.contains("F.") =>
                {
                    println!("{} fin-ack delay {} us", r.outcome, e.at - fin_in)
                }
                _ => {}
            }
        }
    }
}
