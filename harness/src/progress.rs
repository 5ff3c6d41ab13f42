//! A one-line progress indicator for runs of many scripts: `[12/51] linux
//! specs/scripts/karn.pkt`, redrawn in place on standard error when that is
//! a terminal, silent otherwise (pipes, CI logs, `--format json` consumers).

use std::io::{IsTerminal, Write};

/// Progress over `total` items; draws only on a terminal.
pub struct Progress {
    total: usize,
    done: usize,
    live: bool,
}

impl Progress {
    /// Progress over `total` items, drawn when standard error is a
    /// terminal and there is more than one item.
    pub fn new(total: usize) -> Progress {
        Progress {
            total,
            done: 0,
            live: total > 1 && std::io::stderr().is_terminal(),
        }
    }

    /// Announces the next item (`what`, e.g. `own specs/scripts/x.pkt`).
    pub fn next(&mut self, what: &str) {
        self.done += 1;
        if self.live {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{}", line(self.done, self.total, what));
            let _ = err.flush();
        }
    }

    /// Clears the line, before the report is printed.
    pub fn finish(&mut self) {
        if self.live {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.live = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The text of the progress line: a 20-cell bar, the count and the item,
/// cut to 100 characters.
pub fn line(done: usize, total: usize, what: &str) -> String {
    let total = total.max(1);
    let done = done.min(total);
    let cells = done * 20 / total;
    let bar: String = "#".repeat(cells) + &".".repeat(20 - cells);
    let s = format!("[{bar}] {done}/{total} {what}");
    s.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::line;

    #[test]
    fn the_bar_fills_with_the_count() {
        assert_eq!(line(0, 4, "a"), "[....................] 0/4 a");
        assert_eq!(line(1, 4, "b"), "[#####...............] 1/4 b");
        assert_eq!(line(4, 4, "c"), "[####################] 4/4 c");
        // Never more than full, never a division by zero.
        assert_eq!(line(9, 4, "d"), "[####################] 4/4 d");
        assert!(line(1, 0, "e").starts_with("[####################] 1/1"));
        assert_eq!(line(1, 2, &"x".repeat(500)).chars().count(), 100);
    }
}
