//! Command-line interface: argument parsing and the subcommands.
//!
//! Exit codes: 0 success, 1 a check failed, 2 usage or input errors.

use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::process::ExitCode;
use tcp_spec::{render, Profile, Spec};

/// TCP conformance fuzzer and test harness.
#[derive(Debug, Parser)]
#[command(name = "tcpconform", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the transition table of the specification.
    Spec(SpecArgs),
}

/// Output formats of `tcpconform spec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SpecFormat {
    /// An aligned text table, one row per line.
    Text,
    /// Everything, with stable field names, for tools.
    Json,
    /// A Graphviz state diagram (`| dot -Tsvg`).
    Dot,
}

#[derive(Debug, clap::Args)]
pub struct SpecArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = SpecFormat::Text)]
    pub format: SpecFormat,
    /// Profile: rfc793, rfc9293 (default) or linux. JSON without --profile
    /// lists all profiles.
    #[arg(long)]
    pub profile: Option<Profile>,
}

/// Runs the tool and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tcpconform: {e}");
            ExitCode::from(2)
        }
    }
}

/// Errors the binary reports with context.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("the specification table does not load: {0}")]
    Spec(#[from] tcp_spec::LoadError),
    #[error("cannot write output: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot encode JSON: {0}")]
    Json(#[from] serde_json::Error),
}

fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Spec(args) => spec(args),
    }
}

fn spec(args: SpecArgs) -> Result<ExitCode, CliError> {
    let spec = Spec::bundled()?;
    let out = match args.format {
        SpecFormat::Text => render::text(spec, args.profile.unwrap_or_default()),
        SpecFormat::Json => {
            let mut s = serde_json::to_string_pretty(&render::json(spec, args.profile))?;
            s.push('\n');
            s
        }
        SpecFormat::Dot => render::dot(spec, args.profile.unwrap_or_default()),
    };
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(out.as_bytes()) {
        // A closed pipe (`| head`) is not an error worth reporting.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other?,
    }
    Ok(ExitCode::SUCCESS)
}
