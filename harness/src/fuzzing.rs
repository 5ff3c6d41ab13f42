//! Entry points of the fuzz targets (`fuzz/fuzz_targets/*.rs` are thin shims
//! over these), kept in the library so that `cargo test` replays committed
//! corpora and minimized reproducers through exactly the same code.

/// `script_parse`: arbitrary bytes, read as text, into the script parser.
/// The parser must return a script or a located error — never panic — and a
/// parsed script must print back to text that parses to the same script.
pub fn script_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(script) = crate::script::parse("fuzz.pkt", &text) {
        let printed = script.to_string();
        match crate::script::parse("fuzz-printed.pkt", &printed) {
            Ok(again) => assert!(
                again.eq_ignoring_locations(&script),
                "printing changed the script:\n{printed}"
            ),
            Err(e) => panic!("printed script does not parse: {e}\n{printed}"),
        }
    }
}

/// `segment_input`: bytes become a walk (a preamble to any state, then
/// arbitrary segments, malformed packets, calls and pauses) through the own
/// stack; any failed oracle is a panic the fuzzer reports.
pub fn segment_input(data: &[u8]) {
    use arbitrary::{Arbitrary, Unstructured};
    let mut u = Unstructured::new(data);
    let Ok(input) = crate::drive::walk::WalkInput::arbitrary(&mut u) else {
        return;
    };
    if let Err(failure) = crate::drive::walk::run(&input) {
        panic!("segment_input oracle failed: {failure}\ninput: {input:?}");
    }
}

/// Searches random inputs for `segment_input` seeds: the first input (in a
/// seeded pseudo-random sequence) that reaches each table row, by row id.
/// Used to (re)generate `corpus/segment_input/`.
pub fn segment_input_seeds(
    tries: usize,
    seed: u64,
) -> std::collections::BTreeMap<&'static str, Vec<u8>> {
    use arbitrary::{Arbitrary, Unstructured};
    let mut rng = crate::impair::Rng::new(seed);
    let mut found = std::collections::BTreeMap::new();
    for _ in 0..tries {
        let len = 16 + rng.below(240) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        let Ok(input) = crate::drive::walk::WalkInput::arbitrary(&mut Unstructured::new(&bytes))
        else {
            continue;
        };
        if let Ok(rows) = crate::drive::walk::run(&input) {
            for row in rows {
                found.entry(row).or_insert_with(|| bytes.clone());
            }
        }
    }
    found
}

/// The table rows (by id) that `segment_input` walks reach from `inputs`,
/// preambles included: what a fuzzing run's corpus covers of the table.
pub fn segment_input_rows<'a>(
    inputs: impl IntoIterator<Item = &'a [u8]>,
) -> std::collections::BTreeSet<&'static str> {
    use arbitrary::{Arbitrary, Unstructured};
    let mut rows = std::collections::BTreeSet::new();
    for bytes in inputs {
        let Ok(input) = crate::drive::walk::WalkInput::arbitrary(&mut Unstructured::new(bytes))
        else {
            continue;
        };
        rows.extend(crate::drive::walk::run(&input).unwrap_or_default());
    }
    rows
}
