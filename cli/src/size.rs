//! `boundflow size`: the guide's sizing formula, and capacity suggestions from a registry
//! snapshot (`Registry::snapshot().to_json()`), printed as the TOML lines to change.

use std::path::Path;

use boundflow::config::{Loader, Source};
use serde_json::Value;

use crate::SizeArgs;

pub(crate) fn run(args: &SizeArgs) -> Result<(), String> {
    if let (Some(rate), Some(processing)) = (args.rate, args.processing_time) {
        let minimum = (rate * processing.as_secs_f64() * args.safety).ceil();
        println!(
            "buffer_size = peak_rate x processing_time x safety = {rate} x {:.3} s x {} = {minimum}",
            processing.as_secs_f64(),
            args.safety
        );
    } else if args.rate.is_some() || args.processing_time.is_some() {
        return Err("--rate and --processing-time go together".into());
    }
    if let Some(path) = &args.snapshot {
        suggest(args, path)?;
    } else if args.rate.is_none() {
        return Err("give --rate and --processing-time, or --snapshot FILE".into());
    }
    Ok(())
}

/// The capacity a channel should have: doubled if sends found it full (check again after the
/// next observation period), else grown to keep its high-water mark under the target
/// utilisation, in steps of capacity x 2^k; `None` if it is big enough.
pub(crate) fn suggested(
    capacity: u64,
    high_water: u64,
    full_events: u64,
    target: f64,
) -> Option<u64> {
    if full_events > 0 {
        return Some(capacity.saturating_mul(2));
    }
    let needed = (high_water as f64 * 100.0 / target).ceil() as u64;
    if needed <= capacity {
        return None;
    }
    let mut grown = capacity.max(1);
    while grown < needed {
        grown = grown.saturating_mul(2);
    }
    Some(grown)
}

fn suggest(args: &SizeArgs, path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|err| format!("{}: {err}", path.display()))?;
    let snapshot: Value = serde_json::from_str(&text)
        .map_err(|err| format!("{}: not a snapshot: {err}", path.display()))?;
    let channels = snapshot["channels"]
        .as_array()
        .ok_or_else(|| format!("{}: no \"channels\" list", path.display()))?;
    let config = match &args.config_dir {
        Some(dir) => {
            let mut loader = Loader::from_dir(dir).backends(boundflow::compiled_backends());
            match &args.environment {
                Some(env) => loader = loader.environment(env.clone()),
                None => refuse_base_alone(dir)?,
            }
            Some(loader.load().map_err(|errors| errors.to_string())?)
        }
        None => None,
    };
    // A suggestion above the loader's limit would not load.
    let limit = config
        .as_ref()
        .map_or(boundflow::DEFAULT_MAX_CAPACITY, |c| {
            c.defaults.max_capacity.value
        }) as u64;
    let mut changes = 0;
    let mut at_limit = 0;
    for channel in channels {
        let name = channel["name"].as_str().unwrap_or("?");
        let capacity = channel["capacity"].as_u64().unwrap_or(0);
        let high_water = channel["stats"]["high_water_mark"].as_u64().unwrap_or(0);
        let full = channel["stats"]["full_events"].as_u64().unwrap_or(0);
        let Some(new) = suggested(capacity, high_water, full, args.target_utilisation) else {
            println!(
                "# {name}: capacity {capacity} is enough (high-water mark {high_water}, no full events)"
            );
            continue;
        };
        if capacity >= limit {
            at_limit += 1;
            println!(
                "# {name}: capacity {capacity} is at max_capacity {limit} and would need {new}: \
                 add consumers or make them faster (or raise max_capacity in the defaults table)"
            );
            continue;
        }
        let capped = new > limit;
        let new = new.min(limit);
        changes += 1;
        let why = if full > 0 {
            format!(
                "{full} sends found it full: doubled; check again after the next observation period"
            )
        } else {
            format!(
                "high-water mark {high_water} is over {}% of {capacity}",
                args.target_utilisation
            )
        };
        let why = if capped {
            format!("{why}; capped at max_capacity {limit}")
        } else {
            why
        };
        let place = config
            .as_ref()
            .and_then(|c| c.channel(name))
            .map(|settings| toml_location(&settings.capacity.source));
        match place {
            Some(Some((file, table, key))) => {
                println!(
                    "# {name}: {capacity} -> {new} ({why})\n# in {file}\n{table}\n{key} = {new}\n"
                );
            }
            _ => println!(
                "# {name}: {capacity} -> {new} ({why})\n{}\n",
                generic_key(name, new)
            ),
        }
    }
    if changes == 0 && at_limit == 0 {
        println!("no channel needs a change");
    }
    Ok(())
}

/// Without `--env` (nor `BOUNDFLOW_ENV`), only the base would be read: in a directory with
/// environments, the lines printed could name base values that the snapshot's environment
/// overrides, and editing them would change nothing.
fn refuse_base_alone(dir: &Path) -> Result<(), String> {
    if std::env::var_os("BOUNDFLOW_ENV").is_some_and(|env| !env.is_empty()) {
        return Ok(());
    }
    let mut environments: Vec<String> = std::fs::read_dir(dir.join("environments"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.path().join("mpsc_channels.toml").is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    if environments.is_empty() {
        return Ok(());
    }
    environments.sort();
    Err(format!(
        "{} has environments ({}): give --env ENV, the environment the snapshot came from, so \
         each line names the layer that sets that size",
        dir.display(),
        environments.join(", ")
    ))
}

/// The file, table header and key of a value set in a file (read back from its line).
fn toml_location(source: &Source) -> Option<(String, String, String)> {
    let Source::File { path, line } = source else {
        return None;
    };
    let text = std::fs::read_to_string(path.as_ref()).ok()?;
    let lines: Vec<&str> = text.lines().collect();
    let key = lines
        .get(line.checked_sub(1)?)?
        .split('=')
        .next()?
        .trim()
        .to_owned();
    let table = lines[..*line]
        .iter()
        .rev()
        .find(|l| l.trim_start().starts_with('['))?
        .split('#')
        .next()?
        .trim()
        .to_owned();
    Some((path.to_string(), table, key))
}

/// The guide's spelling when no configuration was given: `<purpose>_buffer_size` in its
/// component's table.
fn generic_key(name: &str, capacity: u64) -> String {
    match name.rsplit_once('.') {
        Some((component, purpose)) => {
            format!("[mpsc_channels.{component}]\n{purpose}_buffer_size = {capacity}")
        }
        None => format!("[mpsc_channels.{name}]\nbuffer_size = {capacity}"),
    }
}

#[cfg(test)]
mod tests {
    use super::suggested;

    #[test]
    fn suggestions_follow_the_rule() {
        assert_eq!(suggested(100, 50, 0, 70.0), None, "50 is under 70% of 100");
        assert_eq!(
            suggested(100, 90, 0, 70.0),
            Some(200),
            "90 / 0.7 = 129 -> 100 x 2"
        );
        assert_eq!(
            suggested(100, 300, 0, 70.0),
            Some(800),
            "300 / 0.7 = 429 -> 100 x 8"
        );
        assert_eq!(
            suggested(100, 10, 3, 70.0),
            Some(200),
            "full events double it"
        );
    }
}
