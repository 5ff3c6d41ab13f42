//! The script language: packetdrill syntax parsed into a typed, located tree.
//!
//! Scripts are written in [packetdrill]'s syntax so that existing scripts and
//! habits carry over; packetdrill is the reference whenever this module's
//! behaviour is in doubt. A script looks like:
//!
//! ```text
//! --tolerance_usecs=4000
//! `sysctl -q net.ipv4.tcp_rto_min_us=1000000`
//! 0   socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
//! +0  bind(3, ..., ...) = 0
//! +0  listen(3, 1) = 0
//! +0  < S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>
//! +0  > S. 0:0(0) ack 1 <...>
//! +.1 < . 1:1(0) ack 1 win 257
//! +0  accept(3, ..., ...) = 4
//! ```
//!
//! [`parse`] turns text into a [`Script`]; every event keeps its line and
//! column. Anything the parser does not support, or that is malformed, is a
//! [`ScriptError`] naming `path:line:col` and the construct — never a panic
//! and never a silently skipped line. `Display` on the tree prints valid
//! script text again (used for trace ladders).
//!
//! [packetdrill]: https://github.com/google/packetdrill

mod ast;
mod lexer;
mod parser;
mod shell;
mod source;
#[cfg(test)]
mod tests;
mod timeline;

pub use ast::{
    hex, CodeBlock, Direction, Ecn, Event, EventKind, Expr, IcmpSpec, IpVersion, Opt, PacketSpec,
    Script, ScriptOption, ShellCommand, SyscallSpec, TcpFlags, TcpOpt, TimePoint, TimeSpec,
    MICROS_PER_SEC,
};
pub use parser::MAX_NESTING;
pub use shell::parse_sysctls;
pub use source::{read_script, MAX_SCRIPT_BYTES};
pub use timeline::check_timeline;

/// A script that cannot be parsed: where, and what is wrong.
///
/// Displays as `path:line:col: message`; lines and columns are 1-based and
/// columns count characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}:{col}: {message}")]
pub struct ScriptError {
    /// The path given to [`parse`].
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub col: usize,
    /// What is wrong, naming the construct.
    pub message: String,
}

/// Parse script `text` (read from `path`, used only in errors) into a [`Script`].
pub fn parse(path: &str, text: &str) -> Result<Script, ScriptError> {
    parse_with_defines(path, text, &Defines::new())
}

/// packetdrill's `-D name=value` definitions (`--define`): each word `name`
/// in a script reads as `value` (a number, `"string"`, `` `command` `` or
/// word).
pub type Defines = std::collections::BTreeMap<String, String>;

/// [`parse`] with `-D` definitions substituted for words.
pub fn parse_with_defines(
    path: &str,
    text: &str,
    defines: &Defines,
) -> Result<Script, ScriptError> {
    parser::parse_script(text, defines.clone()).map_err(|d| ScriptError {
        path: path.to_string(),
        line: d.line,
        col: d.col,
        message: d.message,
    })
}
