//! Which key means what (DESIGN.md's grammar): every layer's settings classified onto a
//! channel's field or a default, with the errors for keys that set nothing.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{ConfigError, ErrorKind};
use crate::layer::{Parsed, Setting, Value};
use crate::source::Source;
use crate::validate::{both_kinds, located, outside_tables, suggest};

/// A channel's keys: the name in a channel table, and the suffix in a component table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Field {
    BufferSize,
    SendTimeoutMs,
    Backend,
    Overflow,
    RetryMaxAttempts,
    RetryInitialBackoffMs,
    RetryMaxBackoffMs,
    WaitStrategy,
}

impl Field {
    pub(crate) const ALL: [Field; 8] = [
        Field::BufferSize,
        Field::SendTimeoutMs,
        Field::Backend,
        Field::Overflow,
        Field::RetryMaxAttempts,
        Field::RetryInitialBackoffMs,
        Field::RetryMaxBackoffMs,
        Field::WaitStrategy,
    ];

    /// The key in a channel table (`[mpsc_channels.x.y]` with `buffer_size`).
    pub(crate) fn table_key(self) -> &'static str {
        match self {
            Field::BufferSize => "buffer_size",
            Field::SendTimeoutMs => "send_timeout_ms",
            Field::Backend => "backend",
            Field::Overflow => "overflow",
            Field::RetryMaxAttempts => "retry_max_attempts",
            Field::RetryInitialBackoffMs => "retry_initial_backoff_ms",
            Field::RetryMaxBackoffMs => "retry_max_backoff_ms",
            Field::WaitStrategy => "wait_strategy",
        }
    }

    /// The smallest value of an integer field (a capacity or a timeout of 0 would never let a
    /// send through; a pause of 0 is no pause).
    pub(crate) fn min(self) -> i64 {
        match self {
            Field::RetryInitialBackoffMs | Field::RetryMaxBackoffMs => 0,
            _ => 1,
        }
    }

    /// The largest value of an integer field.
    pub(crate) fn max(self) -> i64 {
        match self {
            Field::RetryMaxAttempts => i64::from(u32::MAX),
            _ => i64::MAX,
        }
    }

    /// What the field is, in a sentence ("policy `block` never reads …").
    pub(crate) fn what(self) -> &'static str {
        match self {
            Field::SendTimeoutMs => "a send timeout",
            Field::RetryMaxAttempts | Field::RetryInitialBackoffMs | Field::RetryMaxBackoffMs => {
                "a retry setting"
            }
            _ => "this setting",
        }
    }

    /// The suffix after `<purpose>` in a component table.
    pub(crate) fn suffix(self) -> &'static str {
        match self {
            Field::SendTimeoutMs => "_timeout_ms",
            other => match other.table_key() {
                "buffer_size" => "_buffer_size",
                "backend" => "_backend",
                "overflow" => "_overflow",
                "retry_max_attempts" => "_retry_max_attempts",
                "retry_initial_backoff_ms" => "_retry_initial_backoff_ms",
                "retry_max_backoff_ms" => "_retry_max_backoff_ms",
                _ => "_wait_strategy",
            },
        }
    }
}

/// The keys of `[mpsc_channels.overflow_policy]` (with `metrics.` for its `metrics` table).
pub(crate) const DEFAULT_KEYS: [&str; 13] = [
    "log_warning_threshold",
    "recover_threshold",
    "drop_policy",
    "backend",
    "log_reminder_interval_seconds",
    "max_capacity",
    "send_timeout_ms",
    "retry_max_attempts",
    "retry_initial_backoff_ms",
    "retry_max_backoff_ms",
    "wait_strategy",
    "metrics.enabled",
    "metrics.saturation_check_interval_seconds",
];

/// What a setting sets.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Target {
    Channel(String, Field),
    Default(&'static str),
}

/// Which layer a value came from; later layers win.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Layer {
    Base,
    Overlay,
    Variables,
    Code,
}

/// A value as one layer wrote it, before it is checked.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub(crate) value: Value,
    pub(crate) source: Source,
    /// The key as written, `mpsc_channels.<table>.<key>`: what an error about it names.
    pub(crate) key: String,
    pub(crate) layer: Layer,
}

impl Candidate {
    pub(crate) fn new(setting: Setting, layer: Layer) -> Self {
        Candidate {
            key: setting.key_path(),
            value: setting.value,
            source: setting.source,
            layer,
        }
    }
}

/// The settings of every layer, in precedence order.
#[derive(Debug, Default)]
pub(crate) struct Layers {
    /// The base file's name, once it has been read: until then no channel is known, so no key
    /// can be said to name an undefined one.
    pub(crate) base_file: Option<String>,
    /// Channel names the base defines (a `buffer_size` key).
    pub(crate) base_channels: BTreeSet<String>,
    /// Table paths the base uses as channel tables.
    pub(crate) channel_tables: BTreeSet<String>,
    pub(crate) channels: BTreeMap<(String, Field), Vec<Candidate>>,
    pub(crate) defaults: BTreeMap<&'static str, Vec<Candidate>>,
    pub(crate) errors: Vec<ConfigError>,
    /// Advice, and (in lenient mode) unknown keys.
    pub(crate) warnings: Vec<ConfigError>,
    /// Unknown keys are warnings, not errors (rolling a newer config out to an older binary).
    pub(crate) lenient: bool,
    /// Whether an environment's overlay was read: then the base is shared with other
    /// environments, and a default in it that this one does not read is no mistake.
    pub(crate) overlay_read: bool,
}

impl Layers {
    /// Adds the base layer (read from `path`): it defines the channels.
    pub(crate) fn add_base(&mut self, path: &str, parsed: Parsed) {
        self.base_file = Some(path.to_owned());
        let settings = self.structural_checks(parsed);
        for setting in &settings {
            if setting.key == "buffer_size"
                && setting.table.first().map(String::as_str) != Some("overflow_policy")
            {
                self.channel_tables.insert(setting.table.join("."));
            }
        }
        // Every definition first: a channel's other keys may come before its buffer size.
        for setting in &settings {
            if let Some(Target::Channel(name, Field::BufferSize)) = self.classify(setting) {
                self.base_channels.insert(name);
            }
        }
        self.add_layer(settings, Layer::Base);
    }

    /// Adds an overlay file: it may only change what the base defines.
    pub(crate) fn add_overlay_file(&mut self, parsed: Parsed) {
        self.overlay_read = true;
        let settings = self.structural_checks(parsed);
        self.add_layer(settings, Layer::Overlay);
    }

    /// Reports tables outside `[mpsc_channels]` and tables of both kinds; returns the settings
    /// left to classify.
    fn structural_checks(&mut self, parsed: Parsed) -> Vec<Setting> {
        self.errors.extend(outside_tables(&parsed.outside));
        let conflicts = both_kinds(&parsed.inside);
        let conflicting: Vec<String> = conflicts.iter().map(|e| e.key.clone()).collect();
        self.errors.extend(conflicts);
        parsed
            .inside
            .into_iter()
            .filter(|s| !conflicting.contains(&s.key_path()))
            .collect()
    }

    /// Adds one layer's settings; outside the base, they may only change what the base defines.
    pub(crate) fn add_layer(&mut self, settings: Vec<Setting>, layer: Layer) {
        for setting in settings {
            let setting = if layer == Layer::Variables {
                self.base_spelling(setting)
            } else {
                setting
            };
            self.add_classified(setting, layer);
        }
    }

    /// A variable's segments are read lowercased (variables are written in capitals), so a
    /// base that spells a table or purpose with capitals (`[mpsc_channels.Billing]`) is
    /// matched whatever the case: every channel can be overridden. An ambiguous spelling
    /// (`Billing` and `billing` both in the base) is left as read.
    fn base_spelling(&self, mut setting: Setting) -> Setting {
        let unique = |lower: &str, spellings: &mut dyn Iterator<Item = &str>| {
            let mut found = spellings.filter(|s| s.to_lowercase() == lower);
            match (found.next(), found.next()) {
                (Some(one), None) => Some(one.to_owned()),
                _ => None,
            }
        };
        let tables = self.base_channels.iter().flat_map(|name| {
            let parent = name.rsplit_once('.').map(|(parent, _)| parent);
            std::iter::once(name.as_str()).chain(parent)
        });
        let tables: BTreeSet<&str> = tables.collect();
        if let Some(table) = unique(&setting.table.join("."), &mut tables.iter().copied()) {
            setting.table = table.split('.').map(str::to_owned).collect();
        }
        let table = setting.table.join(".");
        if self.channel_tables.contains(&table) {
            return setting;
        }
        let field = Field::ALL
            .into_iter()
            .filter(|field| setting.key.ends_with(field.suffix()))
            .max_by_key(|field| field.suffix().len());
        if let Some(field) = field {
            let purpose = &setting.key[..setting.key.len() - field.suffix().len()];
            let mut purposes = self.base_channels.iter().filter_map(|name| {
                let (parent, purpose) = name.rsplit_once('.').unwrap_or(("", name));
                (parent == table).then_some(purpose)
            });
            if let Some(purpose) = unique(purpose, &mut purposes) {
                setting.key = format!("{purpose}{}", field.suffix());
            }
        }
        setting
    }

    /// Adds a value set in code for one channel's field (by its channel-table key).
    pub(crate) fn add_code(&mut self, channel: &str, key: &str, value: Value) {
        let mut table: Vec<String> = channel.split('.').map(str::to_owned).collect();
        let purpose = table.pop().unwrap_or_default();
        let key = if self.channel_tables.contains(channel) {
            table.push(purpose);
            key.to_owned()
        } else {
            let suffix = Field::ALL
                .iter()
                .find(|field| field.table_key() == key)
                .map_or(key, |field| field.suffix());
            format!("{purpose}{}", suffix)
        };
        let setting = Setting {
            table,
            key,
            value,
            source: Source::Code,
        };
        self.add_layer(vec![setting], Layer::Code);
    }

    fn add_classified(&mut self, setting: Setting, layer: Layer) {
        match self.classify(&setting) {
            Some(Target::Default(key)) => self
                .defaults
                .entry(key)
                .or_default()
                .push(Candidate::new(setting, layer)),
            Some(Target::Channel(name, field)) => {
                if self.base_file.is_some() && !self.base_channels.contains(&name) {
                    let error = self.undefined_channel(&setting, &name, layer);
                    self.errors.push(error);
                    return;
                }
                let candidate = Candidate::new(setting, layer);
                let candidates = self.channels.entry((name.clone(), field)).or_default();
                // One layer sets a field once (code may set it again: the last call wins, as
                // in any builder). Both forms can name the same field, which TOML cannot see.
                let twice = candidates
                    .iter()
                    .find(|c| c.layer == candidate.layer && c.layer != Layer::Code);
                match twice {
                    Some(other) => self.errors.push(set_twice(&name, field, other, &candidate)),
                    None => candidates.push(candidate),
                }
            }
            None => {
                let unknown = located(
                    ErrorKind::UnknownKey,
                    &setting.source,
                    &setting.key_path(),
                    "boundflow does not know this key".to_owned(),
                    self.unknown_key_fix(&setting),
                );
                if self.lenient {
                    self.warnings.push(unknown);
                } else {
                    self.errors.push(unknown);
                }
            }
        }
    }

    /// A key that sets a channel no buffer size in the base defines: a typo in the base or in
    /// an overlay, a base table without `buffer_size`, or a channel the base lacks.
    fn undefined_channel(&self, setting: &Setting, name: &str, layer: Layer) -> ConfigError {
        let table = setting.table.join(".");
        let table_form = name == table;
        let in_base = layer == Layer::Base;
        let message = match (table_form, in_base) {
            (true, true) => format!(
                "[mpsc_channels.{table}] has no buffer_size, so it is no channel and `{}` sets nothing",
                setting.key
            ),
            (false, true) => format!(
                "`{}` sets channel `{name}`, which no buffer size in this file defines",
                setting.key
            ),
            (_, false) => format!("channel `{name}` is not defined in the base configuration"),
        };
        let only_base = if in_base {
            "A key only sets a channel that a buffer size defines."
        } else {
            "An overlay or variable only changes channels the base defines."
        };
        // `<purpose>_send_timeout_ms` mixes the two forms: a component's timeout key is
        // `<purpose>_timeout_ms`.
        let send_timeout = setting
            .key
            .strip_suffix("_send_timeout_ms")
            .filter(|purpose| self.base_channels.contains(&join(&table, purpose)))
            .map(|purpose| format!("{purpose}_timeout_ms"));
        let near = suggest(name, self.base_channels.iter().map(String::as_str));
        let fix = match (send_timeout, near) {
            (Some(key), _) => format!(
                "did you mean `{key}`? A component table's send timeout is <purpose>_timeout_ms"
            ),
            (None, Some(near)) => {
                let key = Field::ALL
                    .iter()
                    .find(|field| {
                        setting.key.ends_with(field.suffix()) || setting.key == field.table_key()
                    })
                    .map(|field| near_key(near, field, &self.channel_tables));
                match key {
                    Some(key) => {
                        format!("did you mean channel `{near}` (key `{key}`)? {only_base}")
                    }
                    None => format!("did you mean channel `{near}`? {only_base}"),
                }
            }
            (None, None) if table_form && in_base => format!(
                "add `buffer_size = <capacity>` to [mpsc_channels.{table}] to define channel `{table}`, or move `{}` to the table of the channel it is for",
                setting.key
            ),
            (None, None) if in_base => {
                let purpose = name.rsplit('.').next().unwrap_or(name);
                format!(
                    "add `{purpose}_buffer_size = <capacity>` to define channel `{name}`, or correct the key. {only_base}"
                )
            }
            (None, None) => format!(
                "define it (its buffer size) in base/mpsc_channels.toml, or correct the name. {only_base}"
            ),
        };
        located(
            ErrorKind::UnknownChannel,
            &setting.source,
            &setting.key_path(),
            message,
            fix,
        )
    }

    /// "Did you mean …" for a key no rule takes, else the keys that table takes.
    fn unknown_key_fix(&self, setting: &Setting) -> String {
        let table = setting.table.join(".");
        let candidates: Vec<String> =
            if setting.table.first().map(String::as_str) == Some("overflow_policy") {
                let prefix = setting.table[1..].join(".");
                DEFAULT_KEYS
                    .iter()
                    .filter_map(|k| {
                        if prefix.is_empty() {
                            Some((*k).to_owned())
                        } else {
                            k.strip_prefix(&format!("{prefix}.")).map(str::to_owned)
                        }
                    })
                    .collect()
            } else if self.channel_tables.contains(&table) {
                Field::ALL
                    .iter()
                    .map(|f| f.table_key().to_owned())
                    .collect()
            } else {
                let purposes = self.base_channels.iter().filter_map(|name| {
                    let (parent, purpose) = name.rsplit_once('.').unwrap_or(("", name));
                    (parent == table).then_some(purpose)
                });
                purposes
                    .flat_map(|purpose| {
                        Field::ALL
                            .iter()
                            .map(move |f| format!("{purpose}{}", f.suffix()))
                    })
                    .collect()
            };
        match suggest(&setting.key, candidates.iter().map(String::as_str)) {
            Some(near) => format!("did you mean `{near}`?"),
            None => known_keys_hint(setting),
        }
    }

    fn classify(&self, setting: &Setting) -> Option<Target> {
        if setting.table.first().map(String::as_str) == Some("overflow_policy") {
            let mut key = setting.table[1..].join(".");
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(&setting.key);
            return DEFAULT_KEYS
                .iter()
                .find(|known| **known == key)
                .map(|known| Target::Default(known));
        }
        let table = setting.table.join(".");
        let table_key = Field::ALL
            .into_iter()
            .find(|field| field.table_key() == setting.key);
        if setting.key == "buffer_size" || self.channel_tables.contains(&table) {
            return (!table.is_empty()).then_some(Target::Channel(table, table_key?));
        }
        let component = Field::ALL
            .into_iter()
            .filter(|field| setting.key.ends_with(field.suffix()))
            .max_by_key(|field| field.suffix().len())
            .and_then(|field| {
                let purpose = &setting.key[..setting.key.len() - field.suffix().len()];
                (!purpose.is_empty()).then(|| (join(&table, purpose), field))
            });
        match (component, table_key) {
            (Some((name, field)), _) if self.base_channels.contains(&name) => {
                Some(Target::Channel(name, field))
            }
            // A channel table's key in a table without `buffer_size`: meant for channel `table`
            // (one the base defines by a component key, or none).
            (_, Some(field)) if !table.is_empty() => Some(Target::Channel(table, field)),
            (component, _) => component.map(|(name, field)| Target::Channel(name, field)),
        }
    }
}

/// The error for one layer setting `field` of channel `name` twice (once per form, or by two
/// variables), at the later of the two lines.
fn set_twice(name: &str, field: Field, a: &Candidate, b: &Candidate) -> ConfigError {
    let line = |c: &Candidate| match c.source {
        Source::File { line, .. } => line,
        _ => 0,
    };
    let (first, here) = if line(a) <= line(b) { (a, b) } else { (b, a) };
    // Only the base defines channels; an overlay or variable sizes them.
    let message = if field == Field::BufferSize && here.layer == Layer::Base {
        format!(
            "channel `{name}` is defined twice: here and at {}",
            first.source
        )
    } else {
        format!(
            "channel `{name}`'s {} is set twice in one layer: here and at {}",
            field.table_key(),
            first.source
        )
    };
    let purpose = name.rsplit('.').next().unwrap_or(name);
    let fix = match here.source {
        Source::Env { .. } => "unset one of the two variables".to_owned(),
        _ => format!(
            "keep one: either the component key {purpose}{} or the channel table's {}",
            field.suffix(),
            field.table_key()
        ),
    };
    located(ErrorKind::Conflict, &here.source, &here.key, message, fix)
}

/// `table.purpose`, or `purpose` at the top.
pub(crate) fn join(table: &str, purpose: &str) -> String {
    if table.is_empty() {
        purpose.to_owned()
    } else {
        format!("{table}.{purpose}")
    }
}

/// The key that sets `field` of channel `name`, in the form its base definition uses.
pub(crate) fn near_key(name: &str, field: &Field, channel_tables: &BTreeSet<String>) -> String {
    if channel_tables.contains(name) {
        field.table_key().to_owned()
    } else {
        let purpose = name.rsplit('.').next().unwrap_or(name);
        format!("{purpose}{}", field.suffix())
    }
}

pub(crate) fn known_keys_hint(setting: &Setting) -> String {
    if setting.table.first().map(String::as_str) == Some("overflow_policy") {
        format!("the defaults table takes: {}", DEFAULT_KEYS.join(", "))
    } else {
        "a component table takes <purpose>_buffer_size and <purpose>_timeout_ms, _backend, \
         _overflow, _retry_max_attempts, _retry_initial_backoff_ms, _retry_max_backoff_ms, \
         _wait_strategy; a channel table takes buffer_size, send_timeout_ms, backend, overflow, \
         retry_*, wait_strategy"
            .to_owned()
    }
}
