//! `tcp-spec`: the table-driven specification of TCP that tcpconform tests
//! against.
//!
//! - [`model`]: states and the classified events of RFC 9293 §3.10.
//! - [`row`]: one transition row, read from `specs/table/*.toml`.
//! - [`spec`]: the loaded table, its consistency checks and [`step`], the
//!   reference model every test and fuzzer asks.
//! - [`profile`]: `rfc793`, `rfc9293` (default) and `linux`, with their
//!   parameters and sources.
//! - [`level`]: requirement levels (MUST/SHOULD/MAY) and stack mechanisms.
//! - [`rto`]: the RFC 6298 retransmission-timeout model.
//! - [`render`]: text, JSON and Graphviz renderings of the table.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod level;
pub mod model;
pub mod profile;
pub mod render;
pub mod row;
pub mod rto;
pub mod spec;

pub use level::{Level, Mechanism};
pub use model::{AckClass, Event, SegmentEvent, SeqClass, State, Timeout, UserCall};
pub use profile::{ParamValues, Params, Profile, ProfileInfo, UnknownProfile};
pub use row::{Ctl, EventPattern, Next, Row, Template};
pub use spec::{step, LoadError, Problem, Spec, StepError};
