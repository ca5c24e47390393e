//! Loads a configuration directory and prints every error (or the channels):
//! `cargo run -p boundflow-config --example check_dir -- DIR ENV`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "config/presets".to_owned());
    let mut loader = boundflow_config::Loader::from_dir(&dir);
    if let Some(env) = args.next() {
        loader = loader.environment(env);
    }
    match loader.load() {
        Ok(config) => {
            for channel in &config.channels {
                println!(
                    "{} {} ({})",
                    channel.name, channel.capacity.value, channel.capacity.source
                );
            }
            for warning in &config.warnings {
                println!("warning: {warning}");
            }
            std::process::ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            std::process::ExitCode::FAILURE
        }
    }
}
