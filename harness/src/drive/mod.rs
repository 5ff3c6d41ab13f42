//! Driving the own stack from the outside: concrete segments for abstract
//! events, preambles that bring a connection into any state, and the checks
//! of a transition against the table. Shared by the property suites and the
//! `segment_input` fuzz target.

pub mod check;
pub mod concretize;
pub mod exercise;
pub mod preambles;
pub mod rig;
pub mod walk;
