//! The `tcpconform` command-line tool.

use std::process::ExitCode;

fn main() -> ExitCode {
    tcp_harness::cli::main()
}
