//! Checks of a parsed script as a whole, before it runs: it has at least
//! one event, and no absolute time goes back before the previous event's
//! (packetdrill refuses both; a script that expects nothing passes on any
//! target and so says nothing).

use super::{Script, TimeSpec};

/// The first problem of `script`'s timeline as `(line, col, reason)`.
pub fn check_timeline(script: &Script) -> Result<(), (usize, usize, String)> {
    if script.events.is_empty() {
        return Err((
            1,
            1,
            "the script has no events: it would pass on any target".into(),
        ));
    }
    // The scripted time of the previous event; `*` and an unspecified
    // time keep it.
    let mut prev = 0u64;
    for e in &script.events {
        let start = match e.time {
            TimeSpec::At(p)
            | TimeSpec::Range { start: p, .. }
            | TimeSpec::Blocking { start: p, .. } => p,
            TimeSpec::Unspecified | TimeSpec::Any => continue,
        };
        if !start.relative && start.usecs < prev {
            return Err((
                e.line,
                e.col,
                format!(
                    "absolute time {start} is before the previous event's time {} s",
                    super::TimePoint {
                        relative: false,
                        usecs: prev
                    }
                ),
            ));
        }
        prev = if start.relative {
            prev.saturating_add(start.usecs)
        } else {
            start.usecs
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<(), (usize, usize, String)> {
        match crate::script::parse("t.pkt", text) {
            Ok(s) => check_timeline(&s),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_script_without_events_is_refused() {
        let e = check("// only a comment\n--tolerance_usecs=4000\n");
        assert_eq!(e.map_err(|e| (e.0, e.1)), Err((1, 1)));
    }

    #[test]
    fn an_absolute_time_before_the_previous_one_is_located() {
        let text = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
                    1 bind(3, ..., ...) = 0\n\
                    0.5 listen(3, 1) = 0\n";
        let e = check(text);
        assert_eq!(
            e,
            Err((
                3,
                1,
                "absolute time 0.5 is before the previous event's time 1 s".into()
            ))
        );
    }

    #[test]
    fn relative_and_equal_times_are_fine() {
        let text = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
                    +1 bind(3, ..., ...) = 0\n\
                    1 listen(3, 1) = 0\n\
                    * > S 0:0(0) <...>\n\
                    +0.5 close(3) = 0\n";
        assert_eq!(check(text), Ok(()));
    }
}
