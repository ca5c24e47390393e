//! Loads the shipped presets for an environment (argument, else `BOUNDFLOW_ENV`, else `test`)
//! and prints every channel with its backend, capacity, policy and where each value came from.
//!
//! The presets' base puts one channel on flume (the `demo` environment also uses crossbeam
//! and async-channel: `--all-features`); a backend the build lacks is a load error naming its
//! cargo feature.
//!
//! ```sh
//! cargo run --features config,flume --example configured_channels -- production
//! BOUNDFLOW__MPSC_CHANNELS__ORCHESTRATION__COMMAND_BUFFER_SIZE=42 cargo run --features config,flume --example configured_channels
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr)]

use boundflow::config::{Loader, presets};

fn main() -> std::process::ExitCode {
    let environment = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("BOUNDFLOW_ENV").ok())
        .unwrap_or_else(|| "test".to_owned());
    let loaded = Loader::from_dir(presets::dir())
        .environment(environment.as_str())
        .backends(boundflow::compiled_backends())
        .load();
    let config = match loaded {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("environment {environment}");
    for channel in &config.channels {
        println!(
            "{:<42} {:>6} from {:<60} backend {:<13} ({}) policy {:<11} ({})",
            channel.name,
            channel.capacity.value,
            channel.capacity.source.to_string(),
            channel.backend.value,
            channel.backend.source,
            channel.overflow.value,
            channel.overflow.source,
        );
    }
    for shadow in &config.shadowed {
        println!(
            "{} set by {} (shadows {})",
            shadow.key, shadow.variable, shadow.shadowed
        );
    }
    std::process::ExitCode::SUCCESS
}
