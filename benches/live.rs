//! Placeholder: live benchmarks (suite on linux, own stack over TUN) arrive next.
fn main() {}
