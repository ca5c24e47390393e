//! From layers of settings to resolved channels: which key means what (DESIGN.md's grammar),
//! precedence (later layers win), the policy rule, and the checks a value needs to be usable.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use boundflow_core::{OverflowPolicy, RetryPolicy, RetryPolicyError, WaitStrategy};
use serde::Serialize;

use crate::error::{ConfigError, ErrorKind};
use crate::layer::{Parsed, Setting, Value};
use crate::source::{Source, Sourced};
use crate::validate::{both_kinds, located, outside_tables, suggest};

/// A backend compiled into the binary, as the facade describes it to the loader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackendInfo {
    /// Config name: `tokio`, `flume`, `crossbeam`, `async_channel`.
    pub ident: &'static str,
    /// The cargo feature that compiles it in.
    pub cargo_feature: &'static str,
    /// Whether it can apply `drop_oldest`.
    pub supports_drop_oldest: bool,
    /// Its own largest capacity.
    pub max_capacity: usize,
}

/// Every backend boundflow has, by config name and cargo feature (for "not compiled in" errors).
pub const KNOWN_BACKENDS: [(&str, &str); 4] = [
    ("tokio", "tokio"),
    ("flume", "flume"),
    ("crossbeam", "crossbeam"),
    ("async_channel", "async-channel"),
];

/// The policy names `overflow` and `drop_policy` accept.
pub const POLICY_NAMES: [&str; 5] = ["block", "timeout", "drop_newest", "drop_oldest", "retry"];

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
    const ALL: [Field; 8] = [
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
    fn table_key(self) -> &'static str {
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

    /// The suffix after `<purpose>` in a component table.
    fn suffix(self) -> &'static str {
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
enum Target {
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
struct Candidate {
    value: Value,
    source: Source,
    /// The key as written, `mpsc_channels.<table>.<key>`: what an error about it names.
    key: String,
    layer: Layer,
}

impl Candidate {
    fn new(setting: Setting, layer: Layer) -> Self {
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
    base_file: Option<String>,
    /// Channel names the base defines (a `buffer_size` key).
    base_channels: BTreeSet<String>,
    /// Table paths the base uses as channel tables.
    channel_tables: BTreeSet<String>,
    channels: BTreeMap<(String, Field), Vec<Candidate>>,
    defaults: BTreeMap<&'static str, Vec<Candidate>>,
    pub(crate) errors: Vec<ConfigError>,
    /// Advice, and (in lenient mode) unknown keys.
    pub(crate) warnings: Vec<ConfigError>,
    /// Unknown keys are warnings, not errors (rolling a newer config out to an older binary).
    pub(crate) lenient: bool,
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
        let mut defined: BTreeMap<String, Source> = BTreeMap::new();
        let mut kept = Vec::with_capacity(settings.len());
        for setting in settings {
            if let Some(Target::Channel(name, Field::BufferSize)) = self.classify(&setting) {
                if let Some(first) = defined.get(&name) {
                    self.errors.push(located(
                        ErrorKind::Conflict,
                        &setting.source,
                        &setting.key_path(),
                        format!("channel `{name}` is defined twice: here and at {first}"),
                        "keep one: either the component key <purpose>_buffer_size or the channel table's buffer_size".to_owned(),
                    ));
                    continue;
                }
                defined.insert(name.clone(), setting.source.clone());
                self.base_channels.insert(name);
            }
            kept.push(setting);
        }
        self.add_layer(kept, Layer::Base);
    }

    /// Adds an overlay file: it may only change what the base defines.
    pub(crate) fn add_overlay_file(&mut self, parsed: Parsed) {
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
                self.channels
                    .entry((name, field))
                    .or_default()
                    .push(Candidate::new(setting, layer));
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

/// `table.purpose`, or `purpose` at the top.
fn join(table: &str, purpose: &str) -> String {
    if table.is_empty() {
        purpose.to_owned()
    } else {
        format!("{table}.{purpose}")
    }
}

/// The key that sets `field` of channel `name`, in the form its base definition uses.
fn near_key(name: &str, field: &Field, channel_tables: &BTreeSet<String>) -> String {
    if channel_tables.contains(name) {
        field.table_key().to_owned()
    } else {
        let purpose = name.rsplit('.').next().unwrap_or(name);
        format!("{purpose}{}", field.suffix())
    }
}

fn known_keys_hint(setting: &Setting) -> String {
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

/// The defaults table, resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Defaults {
    /// Saturation at which a channel warns (0.8).
    pub log_warning_threshold: Sourced<f64>,
    /// Saturation under which a warned channel recovers (0.6).
    pub recover_threshold: Sourced<f64>,
    /// The policy of channels that name none and set no timeout (`block`).
    pub drop_policy: Sourced<String>,
    /// The backend of channels that name none (`tokio`).
    pub backend: Sourced<String>,
    /// Seconds between reminders while saturated (60).
    pub log_reminder_interval_seconds: Sourced<u64>,
    /// The largest capacity any channel may have (1,048,576).
    pub max_capacity: Sourced<usize>,
    /// The send timeout of `timeout` and `retry` channels that set none.
    pub send_timeout_ms: Option<Sourced<u64>>,
    /// Tries of a `retry` send, the first included (5).
    pub retry_max_attempts: Sourced<u32>,
    /// The first pause of a `retry` send (1 ms).
    pub retry_initial_backoff_ms: Sourced<u64>,
    /// The longest pause of a `retry` send (100 ms).
    pub retry_max_backoff_ms: Sourced<u64>,
    /// How blocking calls wait (`backoff`).
    pub wait_strategy: Sourced<String>,
    /// Whether channels are published to the `metrics` facade (true).
    pub metrics_enabled: Sourced<bool>,
    /// Seconds between ticks (10).
    pub saturation_check_interval_seconds: Sourced<u64>,
}

/// One channel, resolved: every value with its source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelSettings {
    /// The full name, e.g. `worker.step_processor.execution_request`.
    pub name: String,
    /// Its capacity.
    pub capacity: Sourced<usize>,
    /// Its backend's config name.
    pub backend: Sourced<String>,
    /// Its overflow policy's name.
    pub overflow: Sourced<String>,
    /// Its send timeout: the wait of `timeout`, the overall deadline of `retry`.
    pub send_timeout_ms: Option<Sourced<u64>>,
    /// `retry`: tries in all.
    pub retry_max_attempts: Sourced<u32>,
    /// `retry`: the first pause.
    pub retry_initial_backoff_ms: Sourced<u64>,
    /// `retry`: the longest pause.
    pub retry_max_backoff_ms: Sourced<u64>,
    /// How its blocking calls wait (`backoff`, `park`, `spin:<µs>`).
    pub wait_strategy: Sourced<String>,
}

impl ChannelSettings {
    /// The overflow policy to build the channel with.
    pub fn policy(&self) -> OverflowPolicy {
        let timeout = self
            .send_timeout_ms
            .as_ref()
            .map(|t| Duration::from_millis(t.value));
        match self.overflow.value.as_str() {
            "timeout" => timeout.map_or(OverflowPolicy::Block, OverflowPolicy::Timeout),
            "drop_newest" => OverflowPolicy::DropNewest,
            "drop_oldest" => OverflowPolicy::DropOldest,
            "retry" => OverflowPolicy::Retry(RetryPolicy {
                max_attempts: self.retry_max_attempts.value,
                initial_backoff: Duration::from_millis(self.retry_initial_backoff_ms.value),
                max_backoff: Duration::from_millis(self.retry_max_backoff_ms.value),
                deadline: timeout,
                ..RetryPolicy::default()
            }),
            _ => OverflowPolicy::Block,
        }
    }

    /// The wait strategy to build the channel with (checked when loaded).
    pub fn wait_strategy(&self) -> WaitStrategy {
        self.wait_strategy.value.parse().unwrap_or_default()
    }
}

/// A value from a file that an environment variable replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shadowed {
    /// The key as the file wrote it, e.g.
    /// `mpsc_channels.worker.step_processor.result_buffer_size`.
    pub key: String,
    /// The variable that won, named as set.
    pub variable: String,
    /// The file line it replaced.
    pub shadowed: Source,
}

/// A resolved configuration: every channel the base defines, the defaults, and which file
/// values variables replaced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// The environment loaded, if any.
    pub environment: Option<String>,
    /// Every channel, by name.
    pub channels: Vec<ChannelSettings>,
    /// The defaults table.
    pub defaults: Defaults,
    /// File values replaced by environment variables.
    pub shadowed: Vec<Shadowed>,
    /// Advice (and, in lenient mode, unknown keys): worth reading, not fatal.
    pub warnings: Vec<ConfigError>,
}

impl Config {
    /// The channel called `name`.
    pub fn channel(&self, name: &str) -> Option<&ChannelSettings> {
        self.channels.iter().find(|channel| channel.name == name)
    }

    /// Configured channel names close to `name` (a typo, or the same last segment in another
    /// component), closest first: what an "unknown channel" error lists.
    pub fn near_names(&self, name: &str) -> Vec<String> {
        let last = name.rsplit('.').next().unwrap_or(name);
        let mut near: Vec<(usize, &str)> = self
            .channels
            .iter()
            .map(|channel| channel.name.as_str())
            .filter_map(|candidate| {
                let typo = crate::validate::suggest(name, [candidate]).is_some();
                let same_purpose = candidate.rsplit('.').next() == Some(last);
                (typo || same_purpose).then(|| (usize::from(!typo), candidate))
            })
            .collect();
        near.sort_unstable();
        near.into_iter().map(|(_, name)| name.to_owned()).collect()
    }
}

/// Reads candidates as one type, reporting what is wrong with a value (at its line and key).
struct Reader<'a> {
    errors: &'a mut Vec<ConfigError>,
}

/// The fix for a backend value that is not a backend's name.
const BACKEND_FIX: &str = "name a backend: tokio, flume, crossbeam or async_channel";
/// The fix for a wait strategy that does not parse.
const WAIT_STRATEGY_FIX: &str = "use \"backoff\", \"park\" or \"spin:<µs>\"";

impl Reader<'_> {
    fn bad(&mut self, c: &Candidate, message: String, fix: &str) {
        self.errors.push(located(
            ErrorKind::InvalidValue,
            &c.source,
            &c.key,
            message,
            fix.to_owned(),
        ));
    }

    fn integer(&mut self, c: &Candidate, min: i64, max: i64) -> Option<i64> {
        let fix = if max == i64::MAX {
            format!("use a whole number of at least {min}")
        } else {
            format!("use a whole number from {min} to {max}")
        };
        match &c.value {
            Value::Integer(n) if (min..=max).contains(n) => Some(*n),
            Value::Integer(n) => {
                self.bad(c, format!("{n} is out of range"), &fix);
                None
            }
            other => {
                let found = format!("expected a whole number, found {}", other.type_name());
                self.bad(c, found, &fix);
                None
            }
        }
    }

    fn ratio(&mut self, c: &Candidate) -> Option<f64> {
        const FIX: &str = "use a fraction between 0 and 1, e.g. 0.8";
        let value = match &c.value {
            Value::Float(f) => *f,
            Value::Integer(n) => *n as f64,
            other => {
                let found = format!("expected a number, found {}", other.type_name());
                self.bad(c, found, FIX);
                return None;
            }
        };
        if (0.0..=1.0).contains(&value) {
            Some(value)
        } else {
            self.bad(c, format!("{value} is outside [0, 1]"), FIX);
            None
        }
    }

    fn boolean(&mut self, c: &Candidate) -> Option<bool> {
        match &c.value {
            Value::Bool(b) => Some(*b),
            other => {
                let found = format!("expected true or false, found {}", other.type_name());
                self.bad(c, found, "use true or false");
                None
            }
        }
    }

    fn string(&mut self, c: &Candidate, fix: &str) -> Option<String> {
        match &c.value {
            Value::String(s) => Some(s.clone()),
            other => {
                let found = format!("expected a string, found {}", other.type_name());
                self.bad(c, found, fix);
                None
            }
        }
    }

    /// One of [`POLICY_NAMES`].
    fn policy(&mut self, c: &Candidate) -> Option<String> {
        let fix = format!("use one of: {}", POLICY_NAMES.join(", "));
        let policy = self.string(c, &fix)?;
        if POLICY_NAMES.contains(&policy.as_str()) {
            Some(policy)
        } else {
            self.bad(c, format!("unknown policy `{policy}`"), &fix);
            None
        }
    }

    fn wait_strategy(&mut self, c: &Candidate) -> Option<String> {
        let strategy = self.string(c, WAIT_STRATEGY_FIX)?;
        match strategy.parse::<WaitStrategy>() {
            Ok(_) => Some(strategy),
            Err(err) => {
                self.bad(c, err.to_string(), WAIT_STRATEGY_FIX);
                None
            }
        }
    }
}

fn last(candidates: Option<&Vec<Candidate>>) -> Option<&Candidate> {
    candidates.and_then(|c| c.last())
}

/// A key of the defaults table, as written.
fn default_key(key: &str) -> String {
    format!("mpsc_channels.overflow_policy.{key}")
}

/// What every channel is resolved against.
struct Context<'a> {
    defaults: &'a Defaults,
    backends: &'a [BackendInfo],
    /// The defaults' backend, if it is usable (checked once, not once per channel using it).
    default_backend: Option<&'a BackendInfo>,
    /// Whether a layer sets `overflow_policy.send_timeout_ms`, even to a bad value (then that
    /// value's error is the one to see, not "`timeout` needs a send timeout").
    default_timeout_set: bool,
}

impl Layers {
    /// Resolves every channel and the defaults; all mistakes at once.
    pub(crate) fn resolve(
        mut self,
        environment: Option<String>,
        backends: &[BackendInfo],
    ) -> Result<Config, Vec<ConfigError>> {
        let mut errors = std::mem::take(&mut self.errors);
        let mut warnings = std::mem::take(&mut self.warnings);
        let shadowed = self.shadowed();
        let defaults = self.defaults(&mut errors);
        let cx = Context {
            defaults: &defaults,
            backends,
            default_backend: self.default_backend(&defaults, backends, &mut errors),
            default_timeout_set: self.defaults.contains_key("send_timeout_ms"),
        };
        let channels: Vec<ChannelSettings> = self
            .base_channels
            .iter()
            .filter_map(|name| self.channel(name, &cx, &mut errors, &mut warnings))
            .collect();
        // Which defaults no channel reads is known only once every channel resolved.
        let every_channel = self.base_file.is_some() && channels.len() == self.base_channels.len();
        check_defaults(
            &defaults,
            every_channel.then_some(&channels[..]),
            &self.channels,
            &mut errors,
        );
        // Channels sharing one bad default report it once.
        let mut unique: Vec<ConfigError> = Vec::with_capacity(errors.len());
        for error in errors {
            if !unique.contains(&error) {
                unique.push(error);
            }
        }
        if unique.is_empty() {
            Ok(Config {
                environment,
                channels,
                defaults,
                shadowed,
                warnings,
            })
        } else {
            Err(unique)
        }
    }

    fn shadowed(&self) -> Vec<Shadowed> {
        self.channels
            .values()
            .chain(self.defaults.values())
            .filter_map(|candidates| {
                let winner = candidates.last()?;
                let Source::Env { variable } = &winner.source else {
                    return None;
                };
                let file = candidates.iter().rev().find(|c| c.source.is_file())?;
                Some(Shadowed {
                    key: file.key.clone(),
                    variable: variable.clone(),
                    shadowed: file.source.clone(),
                })
            })
            .collect()
    }

    fn defaults(&self, errors: &mut Vec<ConfigError>) -> Defaults {
        let mut read = Reader { errors };
        let get = |k: &str| last(self.defaults.get(k));
        // A bad value is reported, and the built-in default stands in for it.
        macro_rules! sourced {
            ($k:literal, $default:expr, |$c:ident| $read:expr) => {
                match get($k) {
                    Some($c) => match $read {
                        Some(v) => Sourced::new(v, $c.source.clone()),
                        None => Sourced::default($default),
                    },
                    None => Sourced::default($default),
                }
            };
        }
        let millis = |read: &mut Reader<'_>, c: &Candidate, min: i64| {
            read.integer(c, min, i64::MAX).map(|n| n as u64)
        };
        Defaults {
            log_warning_threshold: sourced!("log_warning_threshold", 0.8, |c| read.ratio(c)),
            recover_threshold: sourced!("recover_threshold", 0.6, |c| read.ratio(c)),
            drop_policy: sourced!("drop_policy", "block".to_owned(), |c| read.policy(c)),
            backend: sourced!("backend", "tokio".to_owned(), |c| read
                .string(c, BACKEND_FIX)),
            log_reminder_interval_seconds: sourced!("log_reminder_interval_seconds", 60, |c| {
                millis(&mut read, c, 1)
            }),
            max_capacity: sourced!("max_capacity", boundflow_core::DEFAULT_MAX_CAPACITY, |c| {
                read.integer(c, 1, i64::MAX).map(|n| n as usize)
            }),
            send_timeout_ms: get("send_timeout_ms")
                .and_then(|c| millis(&mut read, c, 1).map(|n| Sourced::new(n, c.source.clone()))),
            retry_max_attempts: sourced!("retry_max_attempts", 5, |c| read
                .integer(c, 1, i64::from(u32::MAX))
                .map(|n| n as u32)),
            retry_initial_backoff_ms: sourced!("retry_initial_backoff_ms", 1, |c| millis(
                &mut read, c, 0
            )),
            retry_max_backoff_ms: sourced!("retry_max_backoff_ms", 100, |c| millis(
                &mut read, c, 0
            )),
            wait_strategy: sourced!("wait_strategy", "backoff".to_owned(), |c| read
                .wait_strategy(c)),
            metrics_enabled: sourced!("metrics.enabled", true, |c| read.boolean(c)),
            saturation_check_interval_seconds: sourced!(
                "metrics.saturation_check_interval_seconds",
                10,
                |c| millis(&mut read, c, 1)
            ),
        }
    }

    /// The defaults' backend, checked once: always when a layer names it (a typo must not wait
    /// for a channel to use it), else when a channel uses the built-in `tokio`.
    fn default_backend<'b>(
        &self,
        defaults: &Defaults,
        backends: &'b [BackendInfo],
        errors: &mut Vec<ConfigError>,
    ) -> Option<&'b BackendInfo> {
        if let Some(c) = last(self.defaults.get("backend")) {
            // Not a string: reported when the defaults were read.
            let Value::String(name) = &c.value else {
                return None;
            };
            return check_backend(&mut Reader { errors }, name, c, backends);
        }
        if let Some(info) = backends.iter().find(|b| b.ident == defaults.backend.value) {
            return Some(info);
        }
        let users: Vec<&str> = self
            .base_channels
            .iter()
            .filter(|name| {
                !self
                    .channels
                    .contains_key(&((*name).clone(), Field::Backend))
            })
            .map(String::as_str)
            .collect();
        if users.is_empty() {
            return None;
        }
        let shown = match users.as_slice() {
            [one] => format!("channel `{one}` names"),
            [first, second, third, ..] if users.len() > 3 => format!(
                "{} channels ({first}, {second}, {third}, …) name",
                users.len()
            ),
            many => format!("channels {} name", many.join(", ")),
        };
        let feature = KNOWN_BACKENDS
            .iter()
            .find(|(ident, _)| *ident == defaults.backend.value)
            .map_or("", |(_, feature)| feature);
        let choose = match backends.first() {
            Some(first) => format!(
                "set `backend = \"{}\"` under [mpsc_channels.overflow_policy] (the default for every channel that names none), give each channel its own backend, or ",
                first.ident
            ),
            None => String::new(),
        };
        errors.push(ConfigError {
            kind: ErrorKind::UnknownBackend,
            file: self.base_file.clone().unwrap_or_default(),
            line: None,
            key: default_key("backend"),
            message: format!(
                "{shown} no backend, so they get the built-in default `{}`, which is not compiled into this binary",
                defaults.backend.value
            ),
            fix: format!("{choose}enable boundflow's cargo feature `{feature}`"),
        });
        None
    }

    fn channel(
        &self,
        name: &str,
        cx: &Context<'_>,
        errors: &mut Vec<ConfigError>,
        warnings: &mut Vec<ConfigError>,
    ) -> Option<ChannelSettings> {
        let before = errors.len();
        let mut read = Reader { errors };
        let own = |field: Field| last(self.channels.get(&(name.to_owned(), field)));
        let defaults = cx.defaults;

        let capacity_candidate = own(Field::BufferSize)?;
        let capacity = read
            .integer(capacity_candidate, 1, i64::MAX)
            .map(|n| Sourced::new(n as usize, capacity_candidate.source.clone()));

        let (backend, backend_info) = match own(Field::Backend) {
            Some(c) => {
                let backend = read.string(c, BACKEND_FIX);
                let info = backend
                    .as_ref()
                    .and_then(|b| check_backend(&mut read, b, c, cx.backends));
                (backend.map(|b| Sourced::new(b, c.source.clone())), info)
            }
            None => (Some(defaults.backend.clone()), cx.default_backend),
        };

        let own_overflow = own(Field::Overflow);
        let own_timeout = own(Field::SendTimeoutMs);
        // `None` when the channel's own policy is invalid (reported): the checks that need
        // the policy are skipped, every other check still runs.
        let overflow = match own_overflow {
            Some(c) => read
                .policy(c)
                .map(|p| (Sourced::new(p, c.source.clone()), c.key.clone())),
            // Only a channel's own timeout key selects `timeout`.
            None => Some(match own_timeout {
                Some(t) => (
                    Sourced::new("timeout".to_owned(), t.source.clone()),
                    t.key.clone(),
                ),
                None => (defaults.drop_policy.clone(), default_key("drop_policy")),
            }),
        };
        let policy = overflow.as_ref().map(|(o, _)| o.value.as_str());
        let reads_timeout = matches!(policy, Some("timeout" | "retry"));
        // A later layer (an overlay) may switch a channel to a policy that reads no timeout
        // even though an earlier one (the base) gave it a timeout: the later layer wins, as
        // everywhere else, and the inherited timeout is ignored with a warning. No value
        // could unset it, so an error would leave no way to do this for one environment.
        let inherited_timeout = match (own_overflow, own_timeout) {
            (Some(o), Some(t)) if policy.is_some() && !reads_timeout && o.layer > t.layer => {
                Some((o, t))
            }
            _ => None,
        };
        let own_timeout = own_timeout.filter(|_| inherited_timeout.is_none());
        if let (Some((o, t)), Some(policy)) = (inherited_timeout, policy) {
            warnings.push(located(
                ErrorKind::IgnoredTimeout,
                &o.source,
                &o.key,
                format!(
                    "policy `{policy}` reads no send timeout, so the timeout {name} inherits from {} is ignored here",
                    t.source
                ),
                format!(
                    "nothing, if that is intended; to drop the timeout in every environment, remove {} from {}",
                    t.key, t.source
                ),
            ));
        }
        let send_timeout_ms = match own_timeout {
            Some(c) => read
                .integer(c, 1, i64::MAX)
                .map(|n| Sourced::new(n as u64, c.source.clone())),
            None if reads_timeout => defaults.send_timeout_ms.clone(),
            None => None,
        };
        if let Some((overflow, key)) = &overflow {
            check_policy(
                &mut read,
                cx,
                name,
                overflow,
                key,
                own_timeout,
                backend_info,
            );
            if overflow.value != "retry" {
                let retry_keys = [
                    Field::RetryMaxAttempts,
                    Field::RetryInitialBackoffMs,
                    Field::RetryMaxBackoffMs,
                ];
                for c in retry_keys.into_iter().filter_map(own) {
                    read.errors.push(located(
                        ErrorKind::InvalidPolicy,
                        &c.source,
                        &c.key,
                        format!("policy `{}` never reads a retry setting", overflow.value),
                        "remove it, or use policy `retry`".to_owned(),
                    ));
                }
            }
        }

        // A channel whose policy is not `retry` reads none of its own retry keys: each is
        // reported as unread above, and its value is not judged as well.
        let own_retry = |field: Field| own(field).filter(|_| policy.is_none_or(|p| p == "retry"));
        let retry_max_attempts = match own_retry(Field::RetryMaxAttempts) {
            Some(c) => read
                .integer(c, 1, i64::from(u32::MAX))
                .map(|n| Sourced::new(n as u32, c.source.clone())),
            None => Some(defaults.retry_max_attempts.clone()),
        };
        // With where each came from: (value, key).
        let millis =
            |read: &mut Reader<'_>, field: Field, default: &Sourced<u64>| match own_retry(field) {
                Some(c) => read
                    .integer(c, 0, i64::MAX)
                    .map(|n| (Sourced::new(n as u64, c.source.clone()), c.key.clone())),
                None => Some((default.clone(), default_key(field.table_key()))),
            };
        let initial_backoff = millis(
            &mut read,
            Field::RetryInitialBackoffMs,
            &defaults.retry_initial_backoff_ms,
        );
        let max_backoff = millis(
            &mut read,
            Field::RetryMaxBackoffMs,
            &defaults.retry_max_backoff_ms,
        );
        if let (Some("retry"), Some(attempts), Some(initial), Some(max)) =
            (policy, &retry_max_attempts, &initial_backoff, &max_backoff)
        {
            check_retry(&mut read, attempts, initial, max);
        }
        let wait_strategy = match own(Field::WaitStrategy) {
            Some(c) => read
                .wait_strategy(c)
                .map(|w| Sourced::new(w, c.source.clone())),
            None => Some(defaults.wait_strategy.clone()),
        };
        if let Some(capacity) = &capacity {
            check_capacity(
                &mut read,
                capacity,
                &capacity_candidate.key,
                defaults,
                backend_info,
                cx.backends,
            );
        }
        if errors.len() > before {
            return None;
        }
        Some(ChannelSettings {
            name: name.to_owned(),
            capacity: capacity?,
            backend: backend?,
            overflow: overflow?.0,
            send_timeout_ms,
            retry_max_attempts: retry_max_attempts?,
            retry_initial_backoff_ms: initial_backoff?.0,
            retry_max_backoff_ms: max_backoff?.0,
            wait_strategy: wait_strategy?,
        })
    }
}

/// The compiled-in backend `backend` (the value of `c`), or an error saying which feature to
/// enable.
fn check_backend<'b>(
    read: &mut Reader<'_>,
    backend: &str,
    c: &Candidate,
    backends: &'b [BackendInfo],
) -> Option<&'b BackendInfo> {
    if let Some(info) = backends.iter().find(|info| info.ident == backend) {
        return Some(info);
    }
    let compiled: Vec<&str> = backends.iter().map(|info| info.ident).collect();
    let (message, fix) = match KNOWN_BACKENDS.iter().find(|(ident, _)| *ident == backend) {
        Some((ident, feature)) => (
            format!("backend `{ident}` is not compiled into this binary"),
            format!(
                "enable boundflow's cargo feature `{feature}`, or use one of: {}",
                compiled.join(", ")
            ),
        ),
        None => (
            format!("unknown backend `{backend}`"),
            format!("use one of: {}", compiled.join(", ")),
        ),
    };
    read.errors.push(located(
        ErrorKind::UnknownBackend,
        &c.source,
        &c.key,
        message,
        fix,
    ));
    None
}

/// A policy the backend cannot apply, or that misses (or wastes) a timeout. Each rule is
/// checked on its own, so that one mistake does not hide another.
fn check_policy(
    read: &mut Reader<'_>,
    cx: &Context<'_>,
    name: &str,
    overflow: &Sourced<String>,
    overflow_key: &str,
    own_timeout: Option<&Candidate>,
    backend: Option<&BackendInfo>,
) {
    let mut invalid = |source: &Source, key: &str, message: String, fix: String| {
        read.errors
            .push(located(ErrorKind::InvalidPolicy, source, key, message, fix));
    };
    let policy = overflow.value.as_str();
    if policy == "timeout" && own_timeout.is_none() && !cx.default_timeout_set {
        invalid(
            &overflow.source,
            overflow_key,
            "policy `timeout` needs a send timeout".to_owned(),
            format!(
                "set {name}'s timeout (<purpose>_timeout_ms or send_timeout_ms), or overflow_policy.send_timeout_ms"
            ),
        );
    }
    if let (Some(timeout), "block" | "drop_newest" | "drop_oldest") = (own_timeout, policy) {
        invalid(
            &timeout.source,
            &timeout.key,
            format!("policy `{policy}` never reads a send timeout"),
            "remove the timeout, or use policy `timeout` or `retry`".to_owned(),
        );
    }
    if let Some(info) = backend.filter(|b| policy == "drop_oldest" && !b.supports_drop_oldest) {
        let able: Vec<&str> = cx
            .backends
            .iter()
            .filter(|b| b.supports_drop_oldest)
            .map(|b| b.ident)
            .collect();
        let fix = if able.is_empty() {
            "use another policy: no backend compiled in can evict (flume, crossbeam and async_channel can)".to_owned()
        } else {
            format!("use {} for this channel, or another policy", or_list(&able))
        };
        invalid(
            &overflow.source,
            overflow_key,
            format!(
                "backend `{}` cannot evict from the sending side (drop_oldest)",
                info.ident
            ),
            fix,
        );
    }
}

/// "a", "a or b", "a, b or c".
fn or_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// A retry policy the channel builder would refuse (core's own rule, so the two agree).
fn check_retry(
    read: &mut Reader<'_>,
    attempts: &Sourced<u32>,
    (initial, initial_key): &(Sourced<u64>, String),
    (max, max_key): &(Sourced<u64>, String),
) {
    let policy = RetryPolicy {
        max_attempts: attempts.value,
        initial_backoff: Duration::from_millis(initial.value),
        max_backoff: Duration::from_millis(max.value),
        ..RetryPolicy::default()
    };
    if let Err(RetryPolicyError::BackoffInverted { .. }) = policy.validate() {
        // At the value someone wrote (both built-in defaults cannot be inverted).
        let (source, key) = if max.source == Source::Default {
            (&initial.source, initial_key)
        } else {
            (&max.source, max_key)
        };
        read.errors.push(located(
            ErrorKind::InvalidValue,
            source,
            key,
            format!(
                "retry_initial_backoff_ms {} ({}) is above retry_max_backoff_ms {} ({}): the first pause cannot exceed the longest",
                initial.value, initial.source, max.value, max.source
            ),
            "make retry_initial_backoff_ms at most retry_max_backoff_ms".to_owned(),
        ));
    }
}

/// A capacity above the defaults' `max_capacity` or above the backend's own limit: the fix
/// depends on which of the two binds.
fn check_capacity(
    read: &mut Reader<'_>,
    capacity: &Sourced<usize>,
    key: &str,
    defaults: &Defaults,
    backend: Option<&BackendInfo>,
    backends: &[BackendInfo],
) {
    let configured = defaults.max_capacity.value;
    let (message, fix) = match backend.filter(|b| b.max_capacity < configured) {
        Some(info) if capacity.value > info.max_capacity => {
            let larger: Vec<&str> = backends
                .iter()
                .filter(|b| b.max_capacity >= capacity.value && b.ident != info.ident)
                .map(|b| b.ident)
                .collect();
            let fix = if larger.is_empty() {
                format!("lower it to at most {}", info.max_capacity)
            } else {
                format!(
                    "lower it to at most {}, or use a backend that holds that many: {}",
                    info.max_capacity,
                    or_list(&larger)
                )
            };
            let message = format!(
                "capacity {} is above backend `{}`'s own limit {}",
                capacity.value, info.ident, info.max_capacity
            );
            (message, fix)
        }
        _ if capacity.value > configured => (
            format!("capacity {} is above the maximum {configured}", capacity.value),
            "lower it, or raise overflow_policy.max_capacity if that much memory per channel is intended".to_owned(),
        ),
        _ => return,
    };
    read.errors.push(located(
        ErrorKind::InvalidValue,
        &capacity.source,
        key,
        message,
        fix,
    ));
}

/// Thresholds that contradict each other, and defaults keys that no channel reads (judged only
/// when every channel resolved: `channels` is `None` otherwise).
fn check_defaults(
    defaults: &Defaults,
    channels: Option<&[ChannelSettings]>,
    own: &BTreeMap<(String, Field), Vec<Candidate>>,
    errors: &mut Vec<ConfigError>,
) {
    let key = |k: &str| format!("mpsc_channels.overflow_policy.{k}");
    if defaults.recover_threshold.value >= defaults.log_warning_threshold.value {
        errors.push(located(
            ErrorKind::InvalidValue,
            &defaults.recover_threshold.source,
            &key("recover_threshold"),
            format!(
                "recover_threshold {} is not below log_warning_threshold {}: a warned channel could never recover",
                defaults.recover_threshold.value, defaults.log_warning_threshold.value
            ),
            "set recover_threshold below log_warning_threshold (defaults 0.6 and 0.8)".to_owned(),
        ));
    }
    let Some(channels) = channels else {
        return;
    };
    let reads = |field: Field, policies: &[&str]| {
        channels.iter().any(|c| {
            policies.contains(&c.overflow.value.as_str())
                && !own.contains_key(&(c.name.clone(), field))
        })
    };
    let mut unused = |source: &Source, k: &str, readers: &str| {
        if source.is_file() || matches!(source, Source::Env { .. }) {
            errors.push(located(
                ErrorKind::UnusedKey,
                source,
                &key(k),
                format!("no channel reads this default: it is read only by {readers} channels that set no value of their own"),
                "remove it, or give a channel that policy".to_owned(),
            ));
        }
    };
    if let Some(timeout) = &defaults.send_timeout_ms {
        if !reads(Field::SendTimeoutMs, &["timeout", "retry"]) {
            unused(&timeout.source, "send_timeout_ms", "`timeout` and `retry`");
        }
    }
    for (value, field, k) in [
        (
            &defaults.retry_max_attempts.source,
            Field::RetryMaxAttempts,
            "retry_max_attempts",
        ),
        (
            &defaults.retry_initial_backoff_ms.source,
            Field::RetryInitialBackoffMs,
            "retry_initial_backoff_ms",
        ),
        (
            &defaults.retry_max_backoff_ms.source,
            Field::RetryMaxBackoffMs,
            "retry_max_backoff_ms",
        ),
    ] {
        if !reads(field, &["retry"]) {
            unused(value, k, "`retry`");
        }
    }
}
