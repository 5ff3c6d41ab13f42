//! Arbitrary segments, user calls and time steps into the own stack, from
//! any starting state; oracles: no panic, stack invariants, and agreement of
//! every transition with the spec table (`tcp_spec::step`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tcp_harness::fuzzing::segment_input(data);
});
