//! `boundflow check`: load, then show every channel and where each value came from.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use boundflow::config::{
    BackendInfo, ChannelSettings, Config, ConfigError, ConfigErrors, ErrorKind, Loader, Source,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::{CheckArgs, Format};

/// Exit status for usage errors (what clap uses too).
const USAGE: u8 = 2;

pub(crate) fn run(args: &CheckArgs) -> ExitCode {
    let backends = match backends(args.backends.as_deref()) {
        Ok(backends) => backends,
        Err(message) => {
            report(&format!("error: {message}"));
            return ExitCode::from(USAGE);
        }
    };
    // One environment if one is chosen; otherwise every one present (one JSON document each,
    // inside `{"environments": [...]}`). An empty BOUNDFLOW_ENV is unset, as for the loader.
    let chosen = args.environment.clone().or_else(|| {
        std::env::var("BOUNDFLOW_ENV")
            .ok()
            .filter(|env| !env.is_empty())
    });
    let single = chosen.is_some();
    let environments: Vec<Environment> = match chosen {
        Some(environment) => vec![Environment::Named(environment)],
        None => every_environment(&args.config_dir),
    };
    let mut valid = true;
    let mut documents = Vec::new();
    let mut text = String::new();
    for environment in &environments {
        let loaded = match environment {
            Environment::Base => Loader::from_dir(&args.config_dir)
                .backends(backends.clone())
                .load(),
            Environment::Named(name) => Loader::from_dir(&args.config_dir)
                .backends(backends.clone())
                .environment(name.clone())
                .load(),
            Environment::Unnamable(dir) => Err(unnamable(dir)),
        };
        let name = environment.name();
        if let Err(errors) = &loaded {
            valid = false;
            report(&format!(
                "{}: {} error(s)\n{errors}",
                label(name.as_deref()),
                errors.0.len()
            ));
        }
        match args.format {
            Format::Json => documents.push(document(name.as_deref(), &loaded)),
            Format::Text => {
                if let Ok(config) = &loaded {
                    table(&mut text, name.as_deref(), config);
                }
            }
        }
    }
    if args.format == Format::Json {
        let out = if single {
            documents.pop().unwrap_or(Value::Null)
        } else {
            json!({ "environments": documents })
        };
        text = serde_json::to_string_pretty(&out).unwrap_or_else(|_| "null".into());
        text.push('\n');
    }
    let status = if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => status,
        // The reader stopped reading (`boundflow check … | head`): nothing is wrong with the
        // configuration, so its status stands.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => status,
        Err(err) => {
            report(&format!("error: cannot write the result to stdout: {err}"));
            ExitCode::FAILURE
        }
    }
}

/// Writes a line for people to stderr; if even that fails, there is no one left to tell.
fn report(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
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

/// What one run checks.
enum Environment {
    /// The base alone (there is no environment directory).
    Base,
    Named(String),
    /// A directory under `environments/` whose name is not UTF-8: no `--env` or
    /// `BOUNDFLOW_ENV` can name it, so it is reported rather than skipped.
    Unnamable(PathBuf),
}

impl Environment {
    fn name(&self) -> Option<String> {
        match self {
            Environment::Base => None,
            Environment::Named(name) => Some(name.clone()),
            Environment::Unnamable(dir) => Some(
                dir.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            ),
        }
    }
}

/// Every `environments/<env>` directory, sorted, but hidden ones (`.old`); the base alone if
/// there is none.
fn every_environment(dir: &Path) -> Vec<Environment> {
    let mut names = Vec::new();
    let mut unnamable = Vec::new();
    let entries = std::fs::read_dir(dir.join("environments"))
        .into_iter()
        .flatten()
        .flatten();
    for entry in entries.filter(|entry| entry.path().is_dir()) {
        match entry.file_name().into_string() {
            Ok(name) if name.starts_with('.') => {}
            Ok(name) => names.push(name),
            Err(_) => unnamable.push(entry.path()),
        }
    }
    if names.is_empty() && unnamable.is_empty() {
        return vec![Environment::Base];
    }
    names.sort();
    unnamable.sort();
    let named = names.into_iter().map(Environment::Named);
    named
        .chain(unnamable.into_iter().map(Environment::Unnamable))
        .collect()
}

/// The error of an environment directory whose name is not UTF-8.
fn unnamable(dir: &Path) -> ConfigErrors {
    ConfigErrors(vec![ConfigError {
        kind: ErrorKind::InvalidEnvironment,
        file: dir.display().to_string(),
        line: None,
        // No key names an environment: it is the loader's argument or BOUNDFLOW_ENV.
        key: String::new(),
        message: "the directory's name is not valid UTF-8, so no environment name can select it"
            .to_owned(),
        fix: "rename the directory to a UTF-8 name".to_owned(),
    }])
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
