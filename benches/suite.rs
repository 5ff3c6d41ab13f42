//! Placeholder: the virtual-time suite benchmark (issue 4) is written next.
fn main() {}
