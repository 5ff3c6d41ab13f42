//! Recognising `sysctl` assignments in backtick commands.
//!
//! Linux packetdrill scripts commonly set kernel knobs with lines like
//! `` `sysctl -q net.ipv4.tcp_rto_min_us=1000000` ``. The harness applies
//! those inside the test namespace (and may map them onto profile settings
//! for the own stack), so it needs them as `(name, value)` pairs rather than
//! as opaque shell text.

use super::ast::ShellCommand;

impl ShellCommand {
    /// The `(name, value)` assignments if this command consists only of
    /// `sysctl [-q] [-w] [-e] name=value...` commands separated by `;`, `&&`
    /// or newlines; `None` if any part is something else (or nothing is
    /// assigned). See [`parse_sysctls`].
    pub fn sysctls(&self) -> Option<Vec<(String, String)>> {
        parse_sysctls(&self.cmd)
    }
}

/// Recognise `sysctl [-q] [-w] [-e] name=value [name=value...]`, possibly
/// several commands separated by `;`, `&&` or newlines, into `(name, value)`
/// pairs in order. Single and double quotes and backslash escapes are honoured
/// as a POSIX shell would for plain words; anything needing real shell
/// semantics (`$`, pipes, redirections, other commands, reading a value with
/// `sysctl -n`) makes the result `None`. Names are returned as written (dots
/// or slashes).
pub fn parse_sysctls(cmd: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    for command in split_commands(cmd)? {
        if command.is_empty() {
            continue;
        }
        let mut words = command.iter();
        let program = words.next()?;
        if program != "sysctl" && !program.ends_with("/sysctl") {
            return None;
        }
        let mut assigned = false;
        for w in words {
            if let Some(flags) = w.strip_prefix('-') {
                if assigned
                    || flags.is_empty()
                    || !flags.chars().all(|c| matches!(c, 'q' | 'w' | 'e'))
                {
                    return None;
                }
                continue;
            }
            let (name, value) = w.split_once('=')?;
            let name_ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '_' | '-'));
            if !name_ok {
                return None;
            }
            out.push((name.to_string(), value.to_string()));
            assigned = true;
        }
        if !assigned {
            return None;
        }
    }
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}

/// Split into commands (on `;`, `&&`, newline outside quotes), each a list of
/// words with quotes removed. `None` on shell syntax we do not interpret.
fn split_commands(cmd: &str) -> Option<Vec<Vec<String>>> {
    let mut commands = vec![Vec::new()];
    let mut word: Option<String> = None;
    let mut chars = cmd.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => push_word(&mut commands, &mut word),
            ';' | '\n' => {
                push_word(&mut commands, &mut word);
                commands.push(Vec::new());
            }
            '&' if chars.peek() == Some(&'&') => {
                chars.next();
                push_word(&mut commands, &mut word);
                commands.push(Vec::new());
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => w.push(c),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\') => w.push(c),
                            c => {
                                w.push('\\');
                                w.push(c);
                            }
                        },
                        '$' | '`' => return None,
                        c => w.push(c),
                    }
                }
            }
            '\\' => {
                let c = chars.next()?;
                word.get_or_insert_with(String::new).push(c);
            }
            '$' | '`' | '|' | '&' | '<' | '>' | '(' | ')' | '*' | '?' | '[' | '#' | '~' => {
                return None
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    push_word(&mut commands, &mut word);
    Some(commands)
}

fn push_word(commands: &mut [Vec<String>], word: &mut Option<String>) {
    if let (Some(w), Some(last)) = (word.take(), commands.last_mut()) {
        last.push(w);
    }
}
