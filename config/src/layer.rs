//! One layer of configuration (a file, a string or the environment variables) read into flat
//! settings: the table path under `[mpsc_channels]`, the key, the value and its source.

use std::sync::Arc;

use toml::de::{DeTable, DeValue};

use crate::error::{ConfigError, ErrorKind};
use crate::source::Source;

/// A value as written, before it is checked against what its key expects.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Integer(i64),
    Float(f64),
    Bool(bool),
    String(String),
    /// A TOML type no key takes (array, datetime, inline table where a value belongs).
    Other(&'static str),
}

impl Value {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Bool(_) => "a boolean",
            Value::String(_) => "a string",
            Value::Other(name) => name,
        }
    }
}

/// One `key = value` line.
#[derive(Debug, Clone)]
pub(crate) struct Setting {
    /// The table path under `mpsc_channels`, e.g. `["worker", "step_processor"]`.
    pub(crate) table: Vec<String>,
    pub(crate) key: String,
    pub(crate) value: Value,
    pub(crate) source: Source,
}

impl Setting {
    /// The full key path as written, for error messages.
    pub(crate) fn key_path(&self) -> String {
        let mut path = String::from("mpsc_channels");
        for segment in self.table.iter().chain(std::iter::once(&self.key)) {
            path.push('.');
            path.push_str(segment);
        }
        path
    }
}

/// One TOML document read into settings.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    /// Under `[mpsc_channels]`, table paths relative to it.
    pub(crate) inside: Vec<Setting>,
    /// Anywhere else (the guide's anti-pattern 5: a table that misses the prefix), with full
    /// table paths.
    pub(crate) outside: Vec<Setting>,
}

/// Reads one TOML document (`path` names it in sources) into settings.
pub(crate) fn parse_toml(path: &str, text: &str) -> Result<Parsed, ConfigError> {
    let path: Arc<str> = Arc::from(path);
    let line_of = |offset: usize| {
        let end = offset.min(text.len());
        text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    };
    let document = DeTable::parse(text).map_err(|err| {
        let line = err.span().map(|span| line_of(span.start));
        let message = err.message().trim().to_owned();
        // toml's error names no key: the line it points at does.
        let (key, first) = line.map(|line| key_at(text, line)).unwrap_or_default();
        let fix = match first {
            _ if !message.starts_with("duplicate key") => {
                "correct the TOML syntax at that line".to_owned()
            }
            Some(first) => format!("remove one of the two (the first is at line {first})"),
            None => "remove one of the two".to_owned(),
        };
        ConfigError {
            kind: ErrorKind::InvalidToml,
            file: path.to_string(),
            line,
            key,
            message,
            fix,
        }
    })?;
    let mut parsed = Parsed::default();
    for (key, value) in document.get_ref().iter() {
        let name = key.get_ref().to_string();
        match value.get_ref() {
            DeValue::Table(table) if name == "mpsc_channels" => {
                walk(table, &mut Vec::new(), &path, &line_of, &mut parsed.inside);
            }
            DeValue::Table(table) => {
                walk(table, &mut vec![name], &path, &line_of, &mut parsed.outside);
            }
            _ => parsed.outside.push(Setting {
                table: Vec::new(),
                key: name,
                value: Value::Other("a value outside any table"),
                source: Source::File {
                    path: Arc::clone(&path),
                    line: line_of(key.span().start),
                },
            }),
        }
    }
    Ok(parsed)
}

/// The key (or table header) written on 1-based `line`, as a full path, and the earlier line
/// that writes the same one, if any: what a TOML error at that line is about.
pub(crate) fn key_at(text: &str, line: usize) -> (String, Option<usize>) {
    let lines: Vec<&str> = text.lines().collect();
    let Some(here) = line.checked_sub(1).and_then(|i| lines.get(i)) else {
        return (String::new(), None);
    };
    let before = &lines[..line - 1];
    if let Some(table) = header(here) {
        let first = before.iter().position(|l| header(l) == Some(table));
        return (table.to_owned(), first.map(|i| i + 1));
    }
    let Some(key) = written_key(here) else {
        return (String::new(), None);
    };
    // The table this line is in starts at the last header above it.
    let start = before.iter().rposition(|l| header(l).is_some());
    let table = start.and_then(|i| header(lines[i]));
    let first = before
        .iter()
        .enumerate()
        .skip(start.unwrap_or(0))
        .find(|(_, l)| written_key(l) == Some(key))
        .map(|(i, _)| i + 1);
    let path = match table {
        Some(table) => format!("{table}.{key}"),
        None => key.to_owned(),
    };
    (path, first)
}

/// `a.b` of a `[a.b]` or `[[a.b]]` line.
fn header(line: &str) -> Option<&str> {
    let inner = line.trim_start().strip_prefix('[')?.trim_start_matches('[');
    inner.find(']').map(|end| inner[..end].trim())
}

/// `k` of a `k = value` line.
fn written_key(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    if trimmed.starts_with(['#', '[']) {
        return None;
    }
    let (key, _) = trimmed.split_once('=')?;
    Some(key.trim()).filter(|key| !key.is_empty())
}

fn walk(
    table: &DeTable<'_>,
    at: &mut Vec<String>,
    path: &Arc<str>,
    line_of: &dyn Fn(usize) -> usize,
    out: &mut Vec<Setting>,
) {
    for (key, value) in table.iter() {
        let key_name = key.get_ref().to_string();
        let source = Source::File {
            path: Arc::clone(path),
            line: line_of(key.span().start),
        };
        let value = match value.get_ref() {
            DeValue::Table(inner) => {
                at.push(key_name);
                walk(inner, at, path, line_of, out);
                at.pop();
                continue;
            }
            DeValue::Integer(int) => parse_integer(int.as_str(), int.radix())
                .map_or(Value::Other("an integer out of range"), Value::Integer),
            DeValue::Float(float) => float
                .as_str()
                .replace('_', "")
                .parse()
                .map_or(Value::Other("a float"), Value::Float),
            DeValue::Boolean(b) => Value::Bool(*b),
            DeValue::String(s) => Value::String(s.to_string()),
            DeValue::Datetime(_) => Value::Other("a datetime"),
            DeValue::Array(_) => Value::Other("an array"),
        };
        out.push(Setting {
            table: at.clone(),
            key: key_name,
            value,
            source,
        });
    }
}

fn parse_integer(digits: &str, radix: u32) -> Option<i64> {
    let cleaned = digits.replace('_', "");
    let unprefixed = cleaned
        .strip_prefix("0x")
        .or_else(|| cleaned.strip_prefix("0o"))
        .or_else(|| cleaned.strip_prefix("0b"))
        .unwrap_or(&cleaned);
    i64::from_str_radix(unprefixed, radix).ok()
}

/// Reads the variables named `<prefix>__MPSC_CHANNELS__<TABLE>__…__<KEY>` into settings. A
/// variable's value is typed the way TOML would read it (integer, float, boolean, else string).
pub(crate) fn parse_variables<'a>(
    prefix: &str,
    variables: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<Setting> {
    let head = format!("{prefix}__MPSC_CHANNELS__");
    let mut settings: Vec<Setting> = variables
        .into_iter()
        .filter_map(|(name, raw)| {
            let rest = name.strip_prefix(&head)?;
            let mut segments: Vec<String> = rest.split("__").map(str::to_lowercase).collect();
            let key = segments.pop()?;
            if key.is_empty() {
                return None;
            }
            Some(Setting {
                table: segments,
                key,
                value: typed(raw),
                source: Source::Env {
                    variable: name.to_owned(),
                },
            })
        })
        .collect();
    // Deterministic order whatever the environment's.
    settings.sort_by_key(|setting| setting.source.to_string());
    settings
}

fn typed(raw: &str) -> Value {
    let trimmed = raw.trim();
    if let Ok(int) = trimmed.replace('_', "").parse::<i64>() {
        return Value::Integer(int);
    }
    if let Ok(float) = trimmed.parse::<f64>() {
        return Value::Float(float);
    }
    match trimmed {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(trimmed.trim_matches('"').to_owned()),
    }
}
