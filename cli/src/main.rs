//! `boundflow`: the command line.
//!
//! - `boundflow check --config-dir DIR [--env ENV] [--backends LIST] [--format text|json]`:
//!   loads the configuration as the application would and shows every channel with the source
//!   of each value, or every error with file, line and fix. Exit 0 valid, 1 invalid, 2 usage.
#![forbid(unsafe_code)]

mod check;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Bounded, configured, monitored channels: check configuration before deploying.
#[derive(Debug, Parser)]
#[command(name = "boundflow", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load a channel configuration as the application would: every channel with its backend,
    /// capacity, policy, timeout and the source of each value, then warnings; or every error
    /// with file, line, key and fix.
    Check(CheckArgs),
}

/// `boundflow check`'s flags.
#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// The configuration directory: `base/mpsc_channels.toml` and
    /// `environments/<env>/mpsc_channels.toml`.
    #[arg(long, value_name = "DIR")]
    config_dir: PathBuf,
    /// The environment to check (default: `BOUNDFLOW_ENV`; without either, every environment
    /// in the directory).
    #[arg(long = "env", value_name = "ENV")]
    environment: Option<String>,
    /// The backends the application is built with, comma-separated (default: all).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    backends: Option<Vec<String>>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// How `check` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A table for people.
    Text,
    /// One JSON document on stdout (the shape is in the README).
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => check::run(&args),
    }
}
