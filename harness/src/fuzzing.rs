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
