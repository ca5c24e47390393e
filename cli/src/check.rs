//! `boundflow check`: load, then show every channel and where each value came from.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use boundflow::config::{BackendInfo, ChannelSettings, Config, ConfigErrors, Loader, Source};
use serde::Serialize;
use serde_json::{Value, json};

use crate::{CheckArgs, Format};

/// Exit status for usage errors (what clap uses too).
const USAGE: u8 = 2;

pub(crate) fn run(args: &CheckArgs) -> ExitCode {
    let backends = match backends(args.backends.as_deref()) {
        Ok(backends) => backends,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(USAGE);
        }
    };
    // One environment if one is chosen; otherwise every one present (one JSON document each,
    // inside `{"environments": [...]}`).
    let chosen = args
        .environment
        .clone()
        .or_else(|| std::env::var("BOUNDFLOW_ENV").ok());
    let single = chosen.is_some();
    let environments: Vec<Option<String>> = match chosen {
        Some(environment) => vec![Some(environment)],
        None => every_environment(&args.config_dir),
    };
    let mut valid = true;
    let mut documents = Vec::new();
    let mut text = String::new();
    for environment in &environments {
        let mut loader = Loader::from_dir(&args.config_dir).backends(backends.clone());
        if let Some(environment) = environment {
            loader = loader.environment(environment.clone());
        }
        let loaded = loader.load();
        if let Err(errors) = &loaded {
            valid = false;
            eprintln!(
                "{}: {} error(s)\n{errors}",
                label(environment.as_deref()),
                errors.0.len()
            );
        }
        match args.format {
            Format::Json => documents.push(document(environment.as_deref(), &loaded)),
            Format::Text => {
                if let Ok(config) = &loaded {
                    table(&mut text, environment.as_deref(), config);
                }
            }
        }
    }
    match args.format {
        Format::Json => {
            let out = if single {
                documents.pop().unwrap_or(Value::Null)
            } else {
                json!({ "environments": documents })
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&out).unwrap_or_else(|_| "null".into())
            );
        }
        Format::Text => print!("{text}"),
    }
    if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The backends to check against: all by default, or those named (each must exist).
fn backends(names: Option<&[String]>) -> Result<Vec<BackendInfo>, String> {
    let all = boundflow::compiled_backends();
    let Some(names) = names else {
        return Ok(all);
    };
    names
        .iter()
        .map(|name| {
            all.iter()
                .find(|backend| backend.ident == name.trim())
                .cloned()
                .ok_or_else(|| {
                    let known: Vec<&str> = all.iter().map(|b| b.ident).collect();
                    format!(
                        "--backends: no backend `{name}`; use some of {}",
                        known.join(", ")
                    )
                })
        })
        .collect()
}

/// Every `environments/<env>` directory, sorted; the base alone if there is none.
fn every_environment(dir: &Path) -> Vec<Option<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("environments"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.path().is_dir())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    names.sort();
    if names.is_empty() {
        vec![None]
    } else {
        names.into_iter().map(Some).collect()
    }
}

fn label(environment: Option<&str>) -> String {
    environment.map_or_else(|| "base".to_owned(), |env| format!("environment `{env}`"))
}

/// The JSON shape one environment gets (documented in the README).
#[derive(Serialize)]
struct ChannelJson<'a> {
    name: &'a str,
    capacity: usize,
    backend: &'a str,
    overflow: &'a str,
    send_timeout_ms: Option<u64>,
    sources: Sources,
}

#[derive(Serialize)]
struct Sources {
    capacity: Source,
    backend: Source,
    overflow: Source,
    send_timeout_ms: Option<Source>,
}

fn channel_json(channel: &ChannelSettings) -> ChannelJson<'_> {
    ChannelJson {
        name: &channel.name,
        capacity: channel.capacity.value,
        backend: &channel.backend.value,
        overflow: &channel.overflow.value,
        send_timeout_ms: channel.send_timeout_ms.as_ref().map(|t| t.value),
        sources: Sources {
            capacity: channel.capacity.source.clone(),
            backend: channel.backend.source.clone(),
            overflow: channel.overflow.source.clone(),
            send_timeout_ms: channel.send_timeout_ms.as_ref().map(|t| t.source.clone()),
        },
    }
}

fn document(environment: Option<&str>, loaded: &Result<Config, ConfigErrors>) -> Value {
    match loaded {
        Ok(config) => json!({
            "environment": environment,
            "channels": config.channels.iter().map(channel_json).collect::<Vec<_>>(),
            "warnings": config.warnings,
        }),
        Err(errors) => json!({
            "environment": environment,
            "errors": errors.0,
            "warnings": [],
        }),
    }
}

fn table(out: &mut String, environment: Option<&str>, config: &Config) {
    let _ = writeln!(
        out,
        "{} — {} channel(s)\n",
        label(environment),
        config.channels.len()
    );
    let _ = writeln!(
        out,
        "{:<44} {:>9}  {:<14} {:<12} {:>10}",
        "channel", "capacity", "backend", "overflow", "timeout"
    );
    for channel in &config.channels {
        let timeout = channel
            .send_timeout_ms
            .as_ref()
            .map_or_else(|| "-".to_owned(), |t| format!("{} ms", t.value));
        let _ = writeln!(
            out,
            "{:<44} {:>9}  {:<14} {:<12} {:>10}",
            channel.name,
            channel.capacity.value,
            channel.backend.value,
            channel.overflow.value,
            timeout
        );
        let mut sources = format!(
            "capacity {}, backend {}, overflow {}",
            channel.capacity.source, channel.backend.source, channel.overflow.source
        );
        if let Some(timeout) = &channel.send_timeout_ms {
            let _ = write!(sources, ", timeout {}", timeout.source);
        }
        let _ = writeln!(out, "    from: {sources}");
    }
    if config.warnings.is_empty() {
        let _ = writeln!(out, "\nno warnings\n");
    } else {
        let _ = writeln!(out, "\n{} warning(s):", config.warnings.len());
        for warning in &config.warnings {
            let _ = writeln!(out, "  {warning}");
        }
        out.push('\n');
    }
}
