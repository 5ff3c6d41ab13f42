//! packetdrill's segment and timestamp flags (its `config.c` options, on
//! the command line or a script's header lines), with packetdrill's
//! meanings (`run_packet.c`):
//!
//! - `--mss=N`: injected TCP segments are marked as received in N-octet
//!   segments (the GSO size of packetdrill's TUN writes), so the stack
//!   sizes its receive MSS estimate from N; needs the device (`linux`
//!   under `--packetdrill`), not applicable elsewhere.
//! - `--strict_segments`: outbound segments are compared one by one, never
//!   merged up to a line's length.
//! - `--tcp_ts_tick_usecs=U`: outbound TSvals are checked: relative to the
//!   first one of the connection (live and script), a TSval may differ from
//!   the script's by at most the event's tolerance counted in ticks of U µs
//!   (RFC 7323 5.4: a clock between 1 ms and 1 s per tick).
//! - `--tcp_ts_ecr_scaled`: an injected TSecr that names no TSval the
//!   stack sent is moved by the same baseline (script TSval → live TSval).

use super::{Field, Runner, Stop};
use crate::run::wire::WireSegment;
use crate::script::{PacketSpec, Script};

/// The flags in force.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PdFlags {
    /// `--mss`.
    pub mss: Option<u16>,
    /// `--strict_segments`.
    pub strict_segments: bool,
    /// `--tcp_ts_tick_usecs` (0 or absent: TSvals are not checked).
    pub ts_tick_usecs: Option<u32>,
    /// `--tcp_ts_ecr_scaled`.
    pub ts_ecr_scaled: bool,
}

impl PdFlags {
    /// Whether `name` is one of these flags.
    pub fn is_flag(name: &str) -> bool {
        matches!(
            name,
            "mss" | "strict_segments" | "tcp_ts_tick_usecs" | "tcp_ts_ecr_scaled"
        )
    }

    /// Sets flag `name` from its value as written; a bad value is an error
    /// naming it (packetdrill's ranges).
    pub fn set(&mut self, name: &str, value: Option<&str>) -> Result<(), String> {
        let number = |max: u64| -> Result<u64, String> {
            value
                .and_then(|v| v.trim_matches('"').parse::<u64>().ok())
                .filter(|n| *n <= max)
                .ok_or_else(|| {
                    format!(
                        "--{name}={}: expected a number up to {max}",
                        value.unwrap_or("")
                    )
                })
        };
        match name {
            "mss" => {
                let n = number(u64::from(u16::MAX))?;
                if n == 0 {
                    return Err("--mss=0: the MSS must be positive".into());
                }
                self.mss = Some(n as u16);
            }
            "tcp_ts_tick_usecs" => {
                let n = number(1_000_000)?;
                self.ts_tick_usecs = (n > 0).then_some(n as u32);
            }
            "strict_segments" => self.strict_segments = true,
            "tcp_ts_ecr_scaled" => self.ts_ecr_scaled = true,
            _ => return Err(format!("--{name} is not a packetdrill segment flag")),
        }
        Ok(())
    }

    /// These flags, with a script header's where these give none.
    pub fn or_script(self, script: PdFlags) -> PdFlags {
        PdFlags {
            mss: self.mss.or(script.mss),
            strict_segments: self.strict_segments || script.strict_segments,
            ts_tick_usecs: self.ts_tick_usecs.or(script.ts_tick_usecs),
            ts_ecr_scaled: self.ts_ecr_scaled || script.ts_ecr_scaled,
        }
    }
}

impl Runner<'_> {
    /// Before the first event: under `--packetdrill`, packetdrill's device
    /// (offload, `--mss`); a GSO size the target cannot apply makes the
    /// script not applicable; without `--packetdrill`, `--mss` is a warning.
    pub(super) fn device(&mut self, script: &Script) -> Result<(), Stop> {
        let (line, col) = script
            .options
            .iter()
            .find(|o| matches!(&o.opt, crate::script::Opt::Other { name, .. } if name == "mss"))
            .map_or((1, 1), |o| (o.line, o.col));
        if !self.packetdrill {
            if let Some(m) = self.flags.mss {
                self.warn_at(
                    true,
                    format!("--mss={m} takes effect with --packetdrill (packetdrill's device)"),
                );
            }
            return Ok(());
        }
        let name = self.target.name();
        self.target
            .packetdrill_device(self.flags.mss)
            .map_err(|e| Stop::setup(e, name, line, col))
    }

    /// The live TSecr to inject for a script TSecr: the TSval the stack
    /// sent on the line that named it; else, with `--tcp_ts_ecr_scaled`,
    /// moved by the connection's baseline; else as written.
    pub(super) fn live_ecr(&self, ecr: u32) -> u32 {
        if let Some(v) = self.ts_vals.get(&ecr) {
            return *v;
        }
        match self.first_ts {
            Some((isn, script, live))
                if self.flags.ts_ecr_scaled && Some(isn) == self.stack_isn =>
            {
                ecr.wrapping_sub(script).wrapping_add(live)
            }
            _ => ecr,
        }
    }

    /// `--tcp_ts_tick_usecs`: the TSval of `seg`, moved to script space by
    /// the connection's first TSval, against the line's; the tolerance is
    /// the larger of the absolute one and the relative one of the time
    /// since the start (`script_t`), in ticks.
    pub(super) fn ts_tick_check(
        &mut self,
        p: &PacketSpec,
        seg: &WireSegment,
        script_t: u64,
    ) -> Option<(Field, String)> {
        let want = p.options.as_deref().and_then(super::timestamp)?.0;
        let live = super::timestamp(&seg.options)?.0;
        let isn = self.stack_isn.unwrap_or(0);
        let (_, s0, l0) = match self.first_ts {
            Some(f) if f.0 == isn => f,
            _ => *self.first_ts.insert((isn, want, live)),
        };
        let tick = u64::from(self.flags.ts_tick_usecs?);
        let mapped = s0.wrapping_add(live.wrapping_sub(l0));
        let off = u64::from((mapped.wrapping_sub(want) as i32).unsigned_abs());
        let tol = self.tol.max(script_t * self.tol_percent / 100);
        (off * tick > tol).then(|| {
            (
                Field::Options,
                format!(
                    "TSval {mapped} != expected {want}: {off} ticks of {tick} µs exceed the tolerance of {tol} µs"
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::PdFlags;

    #[test]
    fn flags_parse_with_packetdrill_ranges_and_the_command_line_wins() {
        let mut f = PdFlags::default();
        f.set("mss", Some("1000")).unwrap();
        f.set("tcp_ts_tick_usecs", Some("1000")).unwrap();
        f.set("strict_segments", None).unwrap();
        assert_eq!(f.mss, Some(1000));
        assert_eq!(f.ts_tick_usecs, Some(1000));
        assert!(f.strict_segments && !f.ts_ecr_scaled);
        assert!(f.set("mss", Some("0")).is_err());
        assert!(f.set("mss", Some("70000")).is_err());
        assert!(f.set("tcp_ts_tick_usecs", Some("1000001")).is_err());
        assert!(f.set("tcp_ts_tick_usecs", None).is_err());
        let mut zero = PdFlags::default();
        zero.set("tcp_ts_tick_usecs", Some("0")).unwrap();
        assert_eq!(zero.ts_tick_usecs, None, "0 disables the check");
        let cli = PdFlags {
            mss: Some(1460),
            ..PdFlags::default()
        };
        let merged = cli.or_script(f);
        assert_eq!(merged.mss, Some(1460));
        assert_eq!(merged.ts_tick_usecs, Some(1000));
        assert!(merged.strict_segments);
        assert!(PdFlags::is_flag("tcp_ts_ecr_scaled") && !PdFlags::is_flag("mtu"));
    }
}
