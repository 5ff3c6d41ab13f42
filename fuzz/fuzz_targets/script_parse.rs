//! Arbitrary text into the script parser: it must never panic or hang.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tcp_harness::fuzzing::script_parse(data);
});
