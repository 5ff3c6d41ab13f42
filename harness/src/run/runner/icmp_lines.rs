//! The runner's `icmp` lines (see [`crate::run::icmp`] for the packets).
//!
//! `< icmp ...` injects an ICMP error quoting the connection under test:
//! the stack's address and port as the quoted source, the peer's as the
//! quoted destination, and the bracket's start relative to the stack's
//! ISN as the quoted sequence number (packetdrill's mapping). A target
//! that takes TCP segments only makes the script not applicable there.
//! `> icmp ...` expects the target to send an ICMP message of that type
//! and code, within the line's window; like packetdrill, only the type
//! and code are compared.

use super::{fmt_time, window_text, Failure, Mismatch, Runner, Sent, Stop, Window};
use crate::run::icmp::{self, Quoted};
use crate::run::target::{Micros, TargetError};
use crate::run::trace::TraceKind;
use crate::script::{Direction, Event, EventKind, IcmpSpec, Script};

/// Whether any line of `script` expects an outbound ICMP message.
pub(super) fn expects_icmp(script: &Script) -> bool {
    script
        .events
        .iter()
        .any(|e| matches!(&e.kind, EventKind::Icmp(i) if i.dir == Direction::Outbound))
}

/// An ICMP message the target sent, as the trace and failures show it.
pub(super) fn show((ty, code): (u8, u8)) -> String {
    format!("> icmp type_{ty} code_{code}")
}

impl Runner<'_> {
    /// An ICMP message no line waits for: into the trace only.
    pub(super) fn icmp_to_trace(&mut self, at: Micros, bytes: Vec<u8>) {
        let text = icmp::decode(&bytes).map(show).unwrap_or_default();
        self.trace.push(at, TraceKind::PacketOut { text, bytes });
    }

    /// `< icmp ...` at time `t`.
    pub(super) fn icmp_in(&mut self, e: &Event, spec: &IcmpSpec, t: Micros) -> Result<(), Stop> {
        self.advance_watching(t)?;
        self.check_unexpected(e.line, e.col, None)?;
        let (local, peer) = self.target.addresses();
        let (start, len) = spec.seq.map_or((0, 0), |(s, _, l)| (s, l));
        let quoted = Quoted {
            stack: (local.ip(), self.stack_port.unwrap_or(local.port())),
            peer: (peer.ip(), self.pd.peer_port(peer.port())),
            seq: self.stack_isn.unwrap_or(0).wrapping_add(start),
            payload_len: len,
        };
        let bytes = icmp::build(spec, &quoted).map_err(|message| Stop::Error {
            line: e.line,
            col: e.col,
            message,
        })?;
        let now = self.target.now();
        self.trace.push(
            now,
            TraceKind::PacketIn {
                text: spec.to_string(),
                bytes: bytes.clone(),
            },
        );
        let name = self.target.name();
        self.target.inject_icmp(&bytes).map_err(|err| match err {
            TargetError::NotApplicable(why) => Stop::NotApplicable {
                line: e.line,
                col: e.col,
                message: format!("`{spec}`: not applicable on {name}: {why}"),
            },
            other => Stop::from(other),
        })?;
        self.pump();
        self.retry_pending()
    }

    /// `> icmp ...` within `w`: when the message was sent.
    pub(super) fn icmp_out(
        &mut self,
        e: &Event,
        spec: &IcmpSpec,
        w: Window,
    ) -> Result<Micros, Stop> {
        let (local, _) = self.target.addresses();
        let want = icmp::type_code(spec, local.is_ipv6()).map_err(|message| Stop::Error {
            line: e.line,
            col: e.col,
            message,
        })?;
        self.wait_packet(w.hi)?;
        if self.queue.is_empty() {
            self.wait_packet(w.hi.saturating_add(w.tolerance))?;
        }
        let fail = |mismatch: Mismatch, message: String, sent: Option<&Sent>| {
            Stop::Fail(Box::new(Failure {
                line: e.line,
                col: e.col,
                message,
                expected: Some(spec.to_string()),
                actual: Some(sent.map_or("no packet".into(), |s| s.text.clone())),
                mismatch,
                window: Some(w),
                expected_packet: None,
                actual_packet: sent.and_then(|s| s.spec.clone()),
                call: None,
            }))
        };
        let Some(sent) = self.queue.pop_front() else {
            return Err(fail(
                Mismatch::NotSent,
                format!(
                    "expected ICMP message not sent by {} (scripted {})",
                    fmt_time(w.hi),
                    window_text(w.lo, w.hi)
                ),
                None,
            ));
        };
        if sent.icmp != Some(want) {
            let message = format!(
                "outbound packet differs: {} where the script expects ICMP type {} code {}",
                sent.text, want.0, want.1
            );
            let at = sent.at;
            return Err(fail(
                Mismatch::Differs {
                    at,
                    fields: vec![super::Field::Icmp],
                },
                message,
                Some(&sent),
            ));
        }
        let timing = if sent.at > w.hi {
            Some(Mismatch::Late { at: sent.at })
        } else if sent.at < w.lo {
            Some(Mismatch::Early { at: sent.at })
        } else {
            None
        };
        if let Some(m) = timing {
            let message = format!(
                "ICMP message sent at {} (scripted {})",
                fmt_time(sent.at),
                window_text(w.lo, w.hi)
            );
            return Err(fail(m, message, Some(&sent)));
        }
        Ok(sent.at)
    }
}
