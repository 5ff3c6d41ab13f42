//! The script runner: plays packetdrill-syntax scripts against a target
//! and records what happened.
//!
//! - [`target`]: the [`Target`] trait every system under test implements
//!   (inject a packet, collect sent packets, make a socket call, advance
//!   time), and the typed [`SocketCall`]s.
//! - [`adapter`]: the [`adapter::Stack`] trait any in-process Rust stack
//!   implements, and the generic [`adapter::AdapterTarget`] around it.
//! - [`own`]: target `own`, the own stack through the adapter.
//! - [`smoltcp_target`]: target `smoltcp`, smoltcp 0.14 through the adapter.
//! - [`runner`]: packetdrill semantics — times, tolerance, ISN-relative
//!   numbering, blocking calls, strict mode.
//! - [`trace`]: the record of a run, as a ladder diagram and as pcap.
//! - [`syscall`], [`wire`]: script calls to [`SocketCall`]s; packets to and
//!   from bytes; [`msg`]: `sendmsg`/`recvmsg` and their control messages;
//!   [`icmp`]: the ICMP messages of `icmp` lines.
//! - [`registry`]: every target by name ([`registry::TargetName`]).
//! - [`suite`]: finding scripts, running several, the summary table.
//! - [`coverage`]: which table rows a set of runs took (the state × event
//!   matrix of `tcpconform coverage`).
//! - [`linux`], [`own_tun`]: the live targets, in namespaces the harness
//!   creates; [`peer_tap`]: their shared reader of `tun0` and script clock.
//! - [`exec`]: a foreign process behind `tun1` (`exec:CMD`), driven over
//!   a line protocol (docs/exec-protocol.md).
//! - [`tfo_cookie`]: Linux's fast-open cookies, mapped between the
//!   script's addresses and the harness's.
//! - [`diff`]: several targets compared, divergences classified against
//!   the table's profiles.
//! - [`parallel`]: live scripts side by side (`--jobs`), suites split
//!   across machines (`--shard`); [`phases`]: where `check`'s wall time
//!   goes (`TCPCONFORM_TIMINGS`).

pub mod adapter;
pub mod blocking;
pub mod code;
pub mod coverage;
pub mod diff;
pub mod epoll;
pub mod exec;
pub mod files;
pub mod icmp;
pub mod linux;
pub mod live_fds;
pub mod msg;
pub mod ns_shell;
pub mod own;
pub mod own_tun;
pub mod parallel;
pub mod pdcompat;
pub mod pdmap;
pub mod peer_tap;
pub mod phases;
pub mod pointers;
pub mod registry;
pub mod runner;
pub mod smoltcp_target;
pub mod suite;
pub mod syscall;
pub mod target;
pub mod tfo_cookie;
pub mod trace;
pub mod wire;

pub use coverage::Coverage;
pub use own::OwnTarget;
pub use registry::TargetName;
pub use runner::{
    run_script, run_text, Failure, Outcome, RunOptions, RunReport, DEFAULT_TOLERANCE_USECS,
    DRAIN_USECS,
};
pub use suite::{discover, run_file, Summary};
pub use target::{CallOutcome, CallReturn, SocketCall, SysctlOutcome, Target, TargetError};
pub use trace::{Behaviour, Trace, TraceEntry, TraceKind};
