//! Checks over the whole layer that no single key can make: tables outside `[mpsc_channels]`,
//! a table of both kinds, one name defined twice, and "did you mean" for a misspelt key.

use std::collections::BTreeMap;

use crate::error::{ConfigError, ErrorKind};
use crate::layer::Setting;
use crate::source::Source;

/// The candidate closest to `word` by edit distance, if it is close enough to be a typo (at
/// most 2 edits, and at most a third of the word).
pub(crate) fn suggest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 2);
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(word, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min()
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

pub(crate) fn located(
    kind: ErrorKind,
    source: &Source,
    key: &str,
    message: String,
    fix: String,
) -> ConfigError {
    let (file, line) = match source {
        Source::File { path, line } => (path.to_string(), Some(*line)),
        other => (other.to_string(), None),
    };
    ConfigError {
        kind,
        file,
        line,
        key: key.to_owned(),
        message,
        fix,
    }
}

/// Settings outside `[mpsc_channels]`: each table is an error, spelling out the table it was
/// probably meant to be when it looks like channel configuration.
pub(crate) fn outside_tables(outside: &[Setting]) -> Vec<ConfigError> {
    let mut first_of_table: BTreeMap<String, &Setting> = BTreeMap::new();
    let mut looks_like_channels: BTreeMap<String, bool> = BTreeMap::new();
    for setting in outside {
        let table = setting.table.join(".");
        first_of_table.entry(table.clone()).or_insert(setting);
        let channel_key = setting.key == "buffer_size" || setting.key.ends_with("_buffer_size");
        *looks_like_channels.entry(table).or_default() |= channel_key;
    }
    first_of_table
        .into_iter()
        .map(|(table, setting)| {
            let shown = if table.is_empty() { setting.key.clone() } else { table.clone() };
            let (message, fix) = if looks_like_channels.get(&table).copied().unwrap_or(false) {
                (
                    format!("table [{shown}] is outside [mpsc_channels], so it defines no channel"),
                    format!("use [mpsc_channels.{shown}]"),
                )
            } else {
                (
                    format!("`{shown}` is outside [mpsc_channels]: this file holds only channel configuration"),
                    "move it under [mpsc_channels.…] or into your application's own configuration".to_owned(),
                )
            };
            located(ErrorKind::WrongPrefix, &setting.source, &shown, message, fix)
        })
        .collect()
}

/// A table with `buffer_size` (a channel) that also has `<purpose>_buffer_size` keys (a
/// component): each such key is an error.
pub(crate) fn both_kinds(settings: &[Setting]) -> Vec<ConfigError> {
    let channel_tables: Vec<&Vec<String>> = settings
        .iter()
        .filter(|s| s.key == "buffer_size")
        .map(|s| &s.table)
        .collect();
    settings
        .iter()
        .filter(|s| s.key.ends_with("_buffer_size") && channel_tables.contains(&&s.table))
        .map(|s| {
            let table = s.table.join(".");
            located(
                ErrorKind::Conflict,
                &s.source,
                &s.key_path(),
                format!("[mpsc_channels.{table}] is a channel table (it has buffer_size) and a component table (it has {})", s.key),
                format!(
                    "move {} to its own channel table [mpsc_channels.{table}.{}] or move buffer_size up to the component",
                    s.key,
                    s.key.trim_end_matches("_buffer_size")
                ),
            )
        })
        .collect()
}
