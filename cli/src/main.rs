//! `boundflow`: the command line.
//!
//! - `boundflow check --config-dir DIR [--env ENV] [--backends LIST] [--format text|json]`:
//!   loads the configuration as the application would and shows every channel with the source
//!   of each value, or every error with file, line and fix. Exit 0 valid, 1 invalid, 2 usage.
//! - `boundflow size --rate R --processing-time T [--safety S]`, or `--snapshot FILE
//!   [--config-dir DIR --env ENV]`: the guide's sizing formula, or capacity suggestions.
//! - `boundflow demo [--duration 10s] [--config-dir DIR --env ENV]`: a small pipeline on the
//!   built-in `demo` preset, a live view (or a line per channel every second when stdout is not
//!   a terminal), and a checked summary; `--metrics-addr` serves Prometheus `/metrics`.
//! - `boundflow bench [--capacity N --producers N --mode blocking|async --message-size BYTES]`:
//!   raw backend against boundflow over it, throughput and CPU per message, and a recommendation.
#![forbid(unsafe_code)]

mod bench;
mod check;
mod demo;
mod live_view;
mod serve_metrics;
mod size;

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
    /// Run a small pipeline on the built-in `demo` preset and watch backpressure happen: a live
    /// view on a terminal (else a line per channel every second), then a summary whose counts
    /// are checked.
    Demo(DemoArgs),
    /// A quick grid for one workload: each raw backend against boundflow over it, throughput
    /// and CPU per message with their ratios, and which backend to pick if one clearly wins.
    Bench(BenchArgs),
    /// Size a channel: the guide's formula (`--rate`, `--processing-time`, `--safety`), or
    /// suggestions from a registry snapshot, printed as the TOML lines to change.
    Size(SizeArgs),
}

/// `boundflow bench`'s flags.
#[derive(Debug, clap::Args)]
struct BenchArgs {
    /// Channel capacity.
    #[arg(long, default_value_t = 64, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    capacity: usize,
    /// Producer threads (blocking) or tasks (async); one consumer.
    #[arg(long, default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    producers: usize,
    /// Plain threads with blocking calls, or tasks on a two-worker tokio runtime.
    #[arg(long, value_enum, default_value_t = Mode::Blocking)]
    mode: Mode,
    /// Message size in bytes: 8, 64, 256, 1024 or 4096.
    #[arg(long, default_value_t = 8, value_parser = message_size)]
    message_size: usize,
    /// Messages per run, split between the producers.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    messages: u64,
    /// Rounds; each runs raw and boundflow back to back.
    #[arg(long, default_value_t = 5, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100))]
    rounds: usize,
    /// The backends to measure, comma-separated (default: all four).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "LIST",
        default_value = "tokio,flume,crossbeam,async_channel",
        value_parser = clap::builder::PossibleValuesParser::new(bench::BACKENDS)
    )]
    backends: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// How `bench` drives the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Plain threads, blocking sends and receives.
    Blocking,
    /// Tokio tasks, `send().await` and `recv().await`.
    Async,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Blocking => "blocking",
            Mode::Async => "async",
        }
    }
}

fn message_size(text: &str) -> Result<usize, String> {
    text.parse::<usize>()
        .ok()
        .filter(|n| boundflow_workloads::MESSAGE_SIZES.contains(n))
        .ok_or_else(|| {
            format!(
                "the message sizes are {:?} bytes",
                boundflow_workloads::MESSAGE_SIZES
            )
        })
}

/// `boundflow size`'s flags.
#[derive(Debug, clap::Args)]
struct SizeArgs {
    /// Peak messages per second.
    #[arg(long)]
    rate: Option<f64>,
    /// The consumer's average processing time per message: `50ms`, `2s`.
    #[arg(long, value_parser = demo::parse_duration)]
    processing_time: Option<std::time::Duration>,
    /// The burst factor (the guide suggests 2 to 5).
    #[arg(long, default_value_t = 3.0)]
    safety: f64,
    /// A registry snapshot (`Registry::snapshot().to_json()`) to suggest capacities from.
    #[arg(long, value_name = "FILE")]
    snapshot: Option<PathBuf>,
    /// The utilisation the high-water mark should stay under, in percent.
    #[arg(long, default_value_t = 70.0)]
    target_utilisation: f64,
    /// The configuration directory, to print the exact file and key to change.
    #[arg(long, value_name = "DIR")]
    config_dir: Option<PathBuf>,
    /// Its environment: the one the snapshot came from (default: `BOUNDFLOW_ENV`; needed when
    /// the directory has environments).
    #[arg(long = "env", value_name = "ENV", value_parser = environment_name)]
    environment: Option<String>,
}

/// `boundflow demo`'s flags.
#[derive(Debug, clap::Args)]
struct DemoArgs {
    /// A configuration directory instead of the built-in presets.
    #[arg(long, value_name = "DIR")]
    config_dir: Option<PathBuf>,
    /// The environment (default: `demo` for the built-in presets; with `--config-dir`,
    /// `BOUNDFLOW_ENV`, else the base).
    #[arg(long = "env", value_name = "ENV", value_parser = environment_name)]
    environment: Option<String>,
    /// How long to run: `10s`, `500ms`, `2m`.
    #[arg(long, default_value = "10s", value_parser = demo::parse_duration)]
    duration: std::time::Duration,
    /// Serve Prometheus `/metrics` here while the demo runs (`127.0.0.1:0` picks a free port;
    /// the address bound is printed).
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// Print a line per channel every second even on a terminal (the default when stdout is
    /// not one).
    #[arg(long)]
    plain: bool,
}

/// `boundflow check`'s flags.
#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// The configuration directory: `base/mpsc_channels.toml` and
    /// `environments/<env>/mpsc_channels.toml`.
    #[arg(long, value_name = "DIR")]
    config_dir: PathBuf,
    /// The environment to check, a directory name under `environments/` (default:
    /// `BOUNDFLOW_ENV`; without either, every environment in the directory).
    #[arg(long = "env", value_name = "ENV", value_parser = environment_name)]
    environment: Option<String>,
    /// The backends the application is built with, comma-separated (default: all).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    backends: Option<Vec<String>>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// `--env`: one directory under `environments/`, not a path (a usage error, exit 2).
fn environment_name(text: &str) -> Result<String, String> {
    boundflow::config::environment_name(text).map(|()| text.to_owned())
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
        Command::Bench(args) => match bench::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("error: {message}");
                ExitCode::FAILURE
            }
        },
        Command::Size(args) => match size::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("error: {message}");
                ExitCode::from(2)
            }
        },
        Command::Demo(args) => match demo::run(&args) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(message) => {
                eprintln!("error: {message}");
                ExitCode::FAILURE
            }
        },
    }
}
