//! From layers of settings to resolved channels: which key means what (DESIGN.md's grammar),
//! precedence (later layers win), the policy rule, and the checks a value needs to be usable.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use boundflow_core::{OverflowPolicy, RetryPolicy, WaitStrategy};
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

/// A value and where it came from, before it is checked.
type Candidate = (Value, Source);

/// The settings of every layer, in precedence order.
#[derive(Debug, Default)]
pub(crate) struct Layers {
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
    /// Adds the base layer: it defines the channels.
    pub(crate) fn add_base(&mut self, parsed: Parsed) {
        let settings = self.structural_checks(parsed);
        for setting in &settings {
            if setting.key == "buffer_size"
                && setting.table.first().map(String::as_str) != Some("overflow_policy")
            {
                self.channel_tables.insert(setting.table.join("."));
            }
        }
        let mut defined: BTreeMap<String, Source> = BTreeMap::new();
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
            self.add_classified(setting, true);
        }
    }

    /// Adds an overlay file: it may only change what the base defines.
    pub(crate) fn add_overlay_file(&mut self, parsed: Parsed) {
        let settings = self.structural_checks(parsed);
        self.add_overlay(settings);
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

    /// Adds a layer that may only change what the base defines (variables, code).
    pub(crate) fn add_overlay(&mut self, settings: Vec<Setting>) {
        for setting in settings {
            self.add_classified(setting, false);
        }
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
        self.add_overlay(vec![Setting {
            table,
            key,
            value,
            source: Source::Code,
        }]);
    }

    fn add_classified(&mut self, setting: Setting, is_base: bool) {
        match self.classify(&setting) {
            Some(Target::Default(key)) => self
                .defaults
                .entry(key)
                .or_default()
                .push((setting.value, setting.source)),
            Some(Target::Channel(name, field)) => {
                if !is_base && !self.base_channels.contains(&name) {
                    let fix = match suggest(&name, self.base_channels.iter().map(String::as_str)) {
                        Some(near) => format!("did you mean channel `{near}`? An overlay or variable only changes channels the base defines"),
                        None => "define it (its buffer size) in base/mpsc_channels.toml, or correct the \
                                 name: an overlay or variable only changes channels the base defines"
                            .to_owned(),
                    };
                    self.errors.push(located(
                        ErrorKind::UnknownChannel,
                        &setting.source,
                        &setting.key_path(),
                        format!("channel `{name}` is not defined in the base configuration"),
                        fix,
                    ));
                    return;
                }
                self.channels
                    .entry((name, field))
                    .or_default()
                    .push((setting.value, setting.source));
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
        if setting.key == "buffer_size" || self.channel_tables.contains(&table) {
            let field = Field::ALL
                .into_iter()
                .find(|field| field.table_key() == setting.key)?;
            return (!table.is_empty()).then_some(Target::Channel(table, field));
        }
        let field = Field::ALL
            .into_iter()
            .filter(|field| setting.key.ends_with(field.suffix()))
            .max_by_key(|field| field.suffix().len())?;
        let purpose = &setting.key[..setting.key.len() - field.suffix().len()];
        if purpose.is_empty() {
            return None;
        }
        let name = if table.is_empty() {
            purpose.to_owned()
        } else {
            format!("{table}.{purpose}")
        };
        Some(Target::Channel(name, field))
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
    /// The channel (or `overflow_policy`) and key, e.g. `worker.step_processor.result.buffer_size`.
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

/// Reads candidates as one type, reporting what is wrong with a value.
struct Reader<'a> {
    errors: &'a mut Vec<ConfigError>,
}

impl Reader<'_> {
    fn bad(&mut self, source: &Source, key: &str, message: String, fix: &str) {
        self.errors.push(located(
            ErrorKind::InvalidValue,
            source,
            key,
            message,
            fix.to_owned(),
        ));
    }

    fn integer(&mut self, c: &Candidate, key: &str, min: i64, max: i64) -> Option<i64> {
        let fix = if max == i64::MAX {
            format!("use a whole number of at least {min}")
        } else {
            format!("use a whole number from {min} to {max}")
        };
        match &c.0 {
            Value::Integer(n) if (min..=max).contains(n) => Some(*n),
            Value::Integer(n) => {
                self.bad(&c.1, key, format!("{n} is out of range"), &fix);
                None
            }
            other => {
                self.bad(
                    &c.1,
                    key,
                    format!("expected a whole number, found {}", other.type_name()),
                    &fix,
                );
                None
            }
        }
    }

    fn ratio(&mut self, c: &Candidate, key: &str) -> Option<f64> {
        let value = match &c.0 {
            Value::Float(f) => *f,
            Value::Integer(n) => *n as f64,
            other => {
                self.bad(
                    &c.1,
                    key,
                    format!("expected a number, found {}", other.type_name()),
                    "use a fraction between 0 and 1, e.g. 0.8",
                );
                return None;
            }
        };
        if (0.0..=1.0).contains(&value) {
            Some(value)
        } else {
            self.bad(
                &c.1,
                key,
                format!("{value} is outside [0, 1]"),
                "use a fraction between 0 and 1, e.g. 0.8",
            );
            None
        }
    }

    fn boolean(&mut self, c: &Candidate, key: &str) -> Option<bool> {
        match &c.0 {
            Value::Bool(b) => Some(*b),
            other => {
                self.bad(
                    &c.1,
                    key,
                    format!("expected true or false, found {}", other.type_name()),
                    "use true or false",
                );
                None
            }
        }
    }

    fn string(&mut self, c: &Candidate, key: &str, fix: &str) -> Option<String> {
        match &c.0 {
            Value::String(s) => Some(s.clone()),
            other => {
                self.bad(
                    &c.1,
                    key,
                    format!("expected a string, found {}", other.type_name()),
                    fix,
                );
                None
            }
        }
    }
}

fn last(candidates: Option<&Vec<Candidate>>) -> Option<&Candidate> {
    candidates.and_then(|c| c.last())
}

impl Layers {
    /// Resolves every channel and the defaults; all mistakes at once.
    pub(crate) fn resolve(
        mut self,
        environment: Option<String>,
        backends: &[BackendInfo],
    ) -> Result<Config, Vec<ConfigError>> {
        let mut errors = std::mem::take(&mut self.errors);
        let shadowed = self.shadowed();
        let defaults = self.defaults(&mut errors);
        let names: Vec<String> = self.base_channels.iter().cloned().collect();
        let channels: Vec<ChannelSettings> = names
            .into_iter()
            .filter_map(|name| self.channel(name, &defaults, backends, &mut errors))
            .collect();
        check_defaults(&defaults, &channels, &self.channels, &mut errors);
        if errors.is_empty() {
            Ok(Config {
                environment,
                channels,
                defaults,
                shadowed,
                warnings: std::mem::take(&mut self.warnings),
            })
        } else {
            Err(errors)
        }
    }

    fn shadowed(&self) -> Vec<Shadowed> {
        let channel_keys = self
            .channels
            .iter()
            .map(|((name, field), c)| (format!("{name}.{}", field.table_key()), c));
        let default_keys = self
            .defaults
            .iter()
            .map(|(key, c)| (format!("overflow_policy.{key}"), c));
        channel_keys
            .chain(default_keys)
            .filter_map(|(key, candidates)| {
                let (_, winner) = candidates.last()?;
                let Source::Env { variable } = winner else {
                    return None;
                };
                let (_, file) = candidates.iter().rev().find(|(_, s)| s.is_file())?;
                Some(Shadowed {
                    key,
                    variable: variable.clone(),
                    shadowed: file.clone(),
                })
            })
            .collect()
    }

    fn defaults(&self, errors: &mut Vec<ConfigError>) -> Defaults {
        let mut read = Reader { errors };
        let key = |k: &str| format!("mpsc_channels.overflow_policy.{k}");
        let get = |k: &str| last(self.defaults.get(k));
        macro_rules! sourced {
            ($k:literal, $default:expr, |$c:ident| $read:expr) => {
                match get($k) {
                    Some($c) => match $read {
                        Some(v) => Sourced::new(v, $c.1.clone()),
                        None => Sourced::default($default),
                    },
                    None => Sourced::default($default),
                }
            };
        }
        let policy_fix = format!("use one of: {}", POLICY_NAMES.join(", "));
        let drop_policy = sourced!("drop_policy", "block".to_owned(), |c| read
            .string(c, &key("drop_policy"), &policy_fix)
            .filter(|p| {
                let known = POLICY_NAMES.contains(&p.as_str());
                if !known {
                    read.bad(
                        &c.1,
                        &key("drop_policy"),
                        format!("unknown policy `{p}`"),
                        &policy_fix,
                    );
                }
                known
            }));
        let wait_strategy = sourced!("wait_strategy", "backoff".to_owned(), |c| read
            .string(
                c,
                &key("wait_strategy"),
                "use \"backoff\", \"park\" or \"spin:<µs>\""
            )
            .filter(|w| valid_wait_strategy(&mut read, c, &key("wait_strategy"), w)));
        Defaults {
            log_warning_threshold: sourced!("log_warning_threshold", 0.8, |c| read
                .ratio(c, &key("log_warning_threshold"))),
            recover_threshold: sourced!("recover_threshold", 0.6, |c| read
                .ratio(c, &key("recover_threshold"))),
            drop_policy,
            backend: sourced!("backend", "tokio".to_owned(), |c| read.string(
                c,
                &key("backend"),
                "name a backend: tokio, flume, crossbeam or async_channel"
            )),
            log_reminder_interval_seconds: sourced!("log_reminder_interval_seconds", 60, |c| read
                .integer(c, &key("log_reminder_interval_seconds"), 1, i64::MAX)
                .map(|n| n as u64)),
            max_capacity: sourced!("max_capacity", boundflow_core::DEFAULT_MAX_CAPACITY, |c| {
                read.integer(c, &key("max_capacity"), 1, i64::MAX)
                    .map(|n| n as usize)
            }),
            send_timeout_ms: get("send_timeout_ms").and_then(|c| {
                read.integer(c, &key("send_timeout_ms"), 1, i64::MAX)
                    .map(|n| Sourced::new(n as u64, c.1.clone()))
            }),
            retry_max_attempts: sourced!("retry_max_attempts", 5, |c| read
                .integer(c, &key("retry_max_attempts"), 1, i64::from(u32::MAX))
                .map(|n| n as u32)),
            retry_initial_backoff_ms: sourced!("retry_initial_backoff_ms", 1, |c| read
                .integer(c, &key("retry_initial_backoff_ms"), 0, i64::MAX)
                .map(|n| n as u64)),
            retry_max_backoff_ms: sourced!("retry_max_backoff_ms", 100, |c| read
                .integer(c, &key("retry_max_backoff_ms"), 0, i64::MAX)
                .map(|n| n as u64)),
            wait_strategy,
            metrics_enabled: sourced!("metrics.enabled", true, |c| read
                .boolean(c, &key("metrics.enabled"))),
            saturation_check_interval_seconds: sourced!(
                "metrics.saturation_check_interval_seconds",
                10,
                |c| read
                    .integer(
                        c,
                        &key("metrics.saturation_check_interval_seconds"),
                        1,
                        i64::MAX
                    )
                    .map(|n| n as u64)
            ),
        }
    }

    fn channel(
        &self,
        name: String,
        defaults: &Defaults,
        backends: &[BackendInfo],
        errors: &mut Vec<ConfigError>,
    ) -> Option<ChannelSettings> {
        let before = errors.len();
        let mut read = Reader { errors };
        let own = |field: Field| last(self.channels.get(&(name.clone(), field)));
        let key = |field: Field| format!("{name}.{}", field.table_key());

        let capacity_candidate = own(Field::BufferSize)?;
        let capacity = read
            .integer(capacity_candidate, &key(Field::BufferSize), 1, i64::MAX)
            .map(|n| Sourced::new(n as usize, capacity_candidate.1.clone()));

        let backend = match own(Field::Backend) {
            Some(c) => read
                .string(
                    c,
                    &key(Field::Backend),
                    "name a backend: tokio, flume, crossbeam or async_channel",
                )
                .map(|b| Sourced::new(b, c.1.clone())),
            None => Some(defaults.backend.clone()),
        };
        let backend_info = backend
            .as_ref()
            .and_then(|b| check_backend(&mut read, b, &key(Field::Backend), backends));

        let policy_fix = format!("use one of: {}", POLICY_NAMES.join(", "));
        let own_timeout = own(Field::SendTimeoutMs);
        let overflow = match own(Field::Overflow) {
            Some(c) => read
                .string(c, &key(Field::Overflow), &policy_fix)
                .filter(|p| {
                    let known = POLICY_NAMES.contains(&p.as_str());
                    if !known {
                        read.bad(
                            &c.1,
                            &key(Field::Overflow),
                            format!("unknown policy `{p}`"),
                            &policy_fix,
                        );
                    }
                    known
                })
                .map(|p| Sourced::new(p, c.1.clone())),
            // Only a channel's own timeout key selects `timeout`.
            None => Some(match own_timeout {
                Some((_, source)) => Sourced::new("timeout".to_owned(), source.clone()),
                None => defaults.drop_policy.clone(),
            }),
        }?;

        let send_timeout_ms = match own_timeout {
            Some(c) => read
                .integer(c, &key(Field::SendTimeoutMs), 1, i64::MAX)
                .map(|n| Sourced::new(n as u64, c.1.clone())),
            None if matches!(overflow.value.as_str(), "timeout" | "retry") => {
                defaults.send_timeout_ms.clone()
            }
            None => None,
        };
        check_policy(
            &mut read,
            &name,
            &overflow,
            own_timeout,
            &send_timeout_ms,
            backend_info,
        );

        let retry_max_attempts = match own(Field::RetryMaxAttempts) {
            Some(c) => read
                .integer(c, &key(Field::RetryMaxAttempts), 1, i64::from(u32::MAX))
                .map(|n| Sourced::new(n as u32, c.1.clone())),
            None => Some(defaults.retry_max_attempts.clone()),
        };
        let millis = |read: &mut Reader<'_>, field: Field, default: &Sourced<u64>| match own(field)
        {
            Some(c) => read
                .integer(c, &key(field), 0, i64::MAX)
                .map(|n| Sourced::new(n as u64, c.1.clone())),
            None => Some(default.clone()),
        };
        let retry_initial_backoff_ms = millis(
            &mut read,
            Field::RetryInitialBackoffMs,
            &defaults.retry_initial_backoff_ms,
        );
        let retry_max_backoff_ms = millis(
            &mut read,
            Field::RetryMaxBackoffMs,
            &defaults.retry_max_backoff_ms,
        );
        let wait_strategy = match own(Field::WaitStrategy) {
            Some(c) => read
                .string(
                    c,
                    &key(Field::WaitStrategy),
                    "use \"backoff\", \"park\" or \"spin:<µs>\"",
                )
                .filter(|w| valid_wait_strategy(&mut read, c, &key(Field::WaitStrategy), w))
                .map(|w| Sourced::new(w, c.1.clone())),
            None => Some(defaults.wait_strategy.clone()),
        };

        if let (Some(capacity), Some(info)) = (&capacity, backend_info) {
            let max = defaults.max_capacity.value.min(info.max_capacity);
            if capacity.value > max {
                read.bad(
                    &capacity.source,
                    &key(Field::BufferSize),
                    format!("capacity {} is above the maximum {max}", capacity.value),
                    "lower it, or raise overflow_policy.max_capacity if that much memory per channel is intended",
                );
            }
        }
        if errors.len() > before {
            return None;
        }
        Some(ChannelSettings {
            name: name.clone(),
            capacity: capacity?,
            backend: backend?,
            overflow,
            send_timeout_ms,
            retry_max_attempts: retry_max_attempts?,
            retry_initial_backoff_ms: retry_initial_backoff_ms?,
            retry_max_backoff_ms: retry_max_backoff_ms?,
            wait_strategy: wait_strategy?,
        })
    }
}

fn valid_wait_strategy(read: &mut Reader<'_>, c: &Candidate, key: &str, value: &str) -> bool {
    match value.parse::<WaitStrategy>() {
        Ok(_) => true,
        Err(err) => {
            read.bad(
                &c.1,
                key,
                err.to_string(),
                "use \"backoff\", \"park\" or \"spin:<µs>\"",
            );
            false
        }
    }
}

/// The compiled-in backend named `backend`, or an error saying which feature to enable.
fn check_backend<'b>(
    read: &mut Reader<'_>,
    backend: &Sourced<String>,
    key: &str,
    backends: &'b [BackendInfo],
) -> Option<&'b BackendInfo> {
    if let Some(info) = backends.iter().find(|info| info.ident == backend.value) {
        return Some(info);
    }
    let compiled: Vec<&str> = backends.iter().map(|info| info.ident).collect();
    let (message, fix) = match KNOWN_BACKENDS
        .iter()
        .find(|(ident, _)| *ident == backend.value)
    {
        Some((ident, feature)) => (
            format!("backend `{ident}` is not compiled into this binary"),
            format!(
                "enable boundflow's cargo feature `{feature}`, or use one of: {}",
                compiled.join(", ")
            ),
        ),
        None => (
            format!("unknown backend `{}`", backend.value),
            format!("use one of: {}", compiled.join(", ")),
        ),
    };
    read.errors.push(located(
        ErrorKind::UnknownBackend,
        &backend.source,
        key,
        message,
        fix,
    ));
    None
}

/// A policy the backend cannot apply, or that misses (or wastes) a timeout.
fn check_policy(
    read: &mut Reader<'_>,
    name: &str,
    overflow: &Sourced<String>,
    own_timeout: Option<&Candidate>,
    send_timeout_ms: &Option<Sourced<u64>>,
    backend: Option<&BackendInfo>,
) {
    let key = format!("{name}.overflow");
    let mut invalid = |source: &Source, key: &str, message: String, fix: String| {
        read.errors
            .push(located(ErrorKind::InvalidPolicy, source, key, message, fix));
    };
    match overflow.value.as_str() {
        "timeout" if send_timeout_ms.is_none() => invalid(
            &overflow.source,
            &key,
            "policy `timeout` needs a send timeout".to_owned(),
            format!(
                "set {name}'s timeout (<purpose>_timeout_ms or send_timeout_ms), or overflow_policy.send_timeout_ms"
            ),
        ),
        "block" | "drop_newest" | "drop_oldest" if own_timeout.is_some() => {
            if let Some((_, source)) = own_timeout {
                invalid(
                    source,
                    &format!("{name}.send_timeout_ms"),
                    format!("policy `{}` never reads a send timeout", overflow.value),
                    "remove the timeout, or use policy `timeout` or `retry`".to_owned(),
                );
            }
        }
        "drop_oldest" if backend.is_some_and(|b| !b.supports_drop_oldest) => invalid(
            &overflow.source,
            &key,
            format!(
                "backend `{}` cannot evict from the sending side (drop_oldest)",
                backend.map_or("", |b| b.ident)
            ),
            "use flume, crossbeam or async_channel for this channel, or another policy".to_owned(),
        ),
        _ => {}
    }
}

/// Thresholds that contradict each other, and defaults keys that no channel reads.
fn check_defaults(
    defaults: &Defaults,
    channels: &[ChannelSettings],
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
