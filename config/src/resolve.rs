//! From layers of settings to resolved channels: precedence (later layers win), the policy
//! rule, and the resolved types. Which key means what is in `classify`, the checks a value needs
//! in `checks`.

use std::time::Duration;

use boundflow_core::{OverflowPolicy, RetryPolicy, WaitStrategy};
use serde::Serialize;

use crate::checks::{
    channel_list, check_backend, check_capacity, check_default_policy, check_defaults,
    check_policy, check_retry,
};
use crate::classify::{Candidate, Field, Layer, Layers};
use crate::error::{ConfigError, ErrorKind};
use crate::layer::Value;
use crate::source::{Source, Sourced};
use crate::validate::located;

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
pub(crate) struct Reader<'a> {
    pub(crate) errors: &'a mut Vec<ConfigError>,
}

/// The fix for a backend value that is not a backend's name.
const BACKEND_FIX: &str = "name a backend: tokio, flume, crossbeam or async_channel";
/// The fix for a wait strategy that does not parse.
const WAIT_STRATEGY_FIX: &str = "use \"backoff\", \"park\" or \"spin:<µs>\" (e.g. \"spin:20\")";

impl Reader<'_> {
    pub(crate) fn bad(&mut self, c: &Candidate, message: String, fix: &str) {
        self.errors.push(located(
            ErrorKind::InvalidValue,
            &c.source,
            &c.key,
            message,
            fix.to_owned(),
        ));
    }

    pub(crate) fn integer(&mut self, c: &Candidate, min: i64, max: i64) -> Option<i64> {
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

    pub(crate) fn ratio(&mut self, c: &Candidate) -> Option<f64> {
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

    pub(crate) fn boolean(&mut self, c: &Candidate) -> Option<bool> {
        match &c.value {
            Value::Bool(b) => Some(*b),
            other => {
                let found = format!("expected true or false, found {}", other.type_name());
                self.bad(c, found, "use true or false");
                None
            }
        }
    }

    pub(crate) fn string(&mut self, c: &Candidate, fix: &str) -> Option<String> {
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
    pub(crate) fn policy(&mut self, c: &Candidate) -> Option<String> {
        let fix = format!("use one of: {}", POLICY_NAMES.join(", "));
        let policy = self.string(c, &fix)?;
        if POLICY_NAMES.contains(&policy.as_str()) {
            Some(policy)
        } else {
            self.bad(c, format!("unknown policy `{policy}`"), &fix);
            None
        }
    }

    pub(crate) fn wait_strategy(&mut self, c: &Candidate) -> Option<String> {
        let strategy = self.string(c, WAIT_STRATEGY_FIX)?;
        match strategy.parse::<WaitStrategy>() {
            Ok(_) => Some(strategy),
            // The parser's message carries the fix too; the fix goes in its own field.
            Err(_) => {
                self.bad(
                    c,
                    format!("unknown wait strategy `{strategy}`"),
                    WAIT_STRATEGY_FIX,
                );
                None
            }
        }
    }
}

/// Whether `c` is a valid value of `field` (its type and range; a backend's name, not whether
/// it is compiled in): for values nothing in this load reads, but another load may.
fn check_value(read: &mut Reader<'_>, field: Field, c: &Candidate) {
    match field {
        Field::Backend => {
            let name = read.string(c, BACKEND_FIX);
            if let Some(name) = name.filter(|n| !KNOWN_BACKENDS.iter().any(|(i, _)| i == n)) {
                read.bad(c, format!("unknown backend `{name}`"), BACKEND_FIX);
            }
        }
        Field::Overflow => drop(read.policy(c)),
        Field::WaitStrategy => drop(read.wait_strategy(c)),
        _ => drop(read.integer(c, field.min(), field.max())),
    }
}

pub(crate) fn last(candidates: Option<&Vec<Candidate>>) -> Option<&Candidate> {
    candidates.and_then(|c| c.last())
}

/// A key of the defaults table, as written.
pub(crate) fn default_key(key: &str) -> String {
    format!("mpsc_channels.overflow_policy.{key}")
}

/// The per-channel values `policy` does not read.
pub(crate) fn unread_fields(policy: &str) -> &'static [Field] {
    const RETRY: [Field; 3] = [
        Field::RetryMaxAttempts,
        Field::RetryInitialBackoffMs,
        Field::RetryMaxBackoffMs,
    ];
    const TIMEOUT_AND_RETRY: [Field; 4] = [
        Field::SendTimeoutMs,
        Field::RetryMaxAttempts,
        Field::RetryInitialBackoffMs,
        Field::RetryMaxBackoffMs,
    ];
    match policy {
        "retry" => &[],
        "timeout" => &RETRY,
        _ => &TIMEOUT_AND_RETRY,
    }
}

/// How to stop setting a value: remove its line, unset its variable, or its call.
fn removal(c: &Candidate) -> String {
    match (&c.source, c.layer) {
        (Source::File { .. }, Layer::Base) => {
            format!("{} at {} (every environment)", c.key, c.source)
        }
        (Source::File { .. }, _) => format!("{} at {} (this environment)", c.key, c.source),
        (Source::Env { variable }, _) => format!("variable {variable}"),
        _ => "the value set in code".to_owned(),
    }
}

/// What every channel is resolved against.
pub(crate) struct Context<'a> {
    pub(crate) defaults: &'a Defaults,
    pub(crate) backends: &'a [BackendInfo],
    /// The defaults' backend, if it is usable (checked once, not once per channel using it).
    pub(crate) default_backend: Option<&'a BackendInfo>,
    /// Whether a layer sets `overflow_policy.send_timeout_ms`, even to a bad value (then that
    /// value's error is the one to see, not "`timeout` needs a send timeout").
    pub(crate) default_timeout_set: bool,
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
        if let Some(drop_policy) = last(self.defaults.get("drop_policy")) {
            let users = self.default_policy_users(&cx);
            check_default_policy(
                &mut Reader {
                    errors: &mut errors,
                },
                &cx,
                drop_policy,
                &users,
            );
        }
        let channels: Vec<ChannelSettings> = self
            .base_channels
            .iter()
            .filter_map(|name| self.channel(name, &cx, &mut errors, &mut warnings))
            .collect();
        // Which defaults no channel reads is known only once every layer parsed and every
        // channel resolved; after any other error, an "unused" default could be a follow-on
        // (a dropped overlay's channel no longer reads it), so none is reported then.
        let judge_unused = self.base_file.is_some()
            && errors.is_empty()
            && channels.len() == self.base_channels.len();
        check_defaults(
            &defaults,
            &self.defaults,
            judge_unused.then_some(&channels[..]),
            &self.channels,
            self.overlay_read,
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
        // A file's value that a later layer replaced is still checked: another environment
        // (or this one without the variable) reads it.
        let replaced = |k: &str| {
            let all = self.defaults.get(k).map_or(&[][..], Vec::as_slice);
            let earlier = all.split_last().map_or(&[][..], |(_, earlier)| earlier);
            earlier.iter().filter(|c| c.source.is_file())
        };
        macro_rules! sourced {
            ($k:literal, $default:expr, |$c:ident| $read:expr) => {{
                for $c in replaced($k) {
                    let _ = $read;
                }
                match get($k) {
                    Some($c) => match $read {
                        Some(v) => Sourced::new(v, $c.source.clone()),
                        None => Sourced::default($default),
                    },
                    None => Sourced::default($default),
                }
            }};
        }
        let millis = |read: &mut Reader<'_>, c: &Candidate, min: i64| {
            read.integer(c, min, i64::MAX).map(|n| n as u64)
        };
        for c in replaced("send_timeout_ms") {
            millis(&mut read, c, 1);
        }
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
        let verb = if users.len() == 1 { "names" } else { "name" };
        let shown = format!("{} {verb}", channel_list(&users));
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

    /// The warning for values of channel `name` that `policy` (chosen by `by`, in a later
    /// layer) does not read. The fix lists every earlier layer's value of those fields:
    /// removing only the last would bring back the one before it.
    fn ignored_warning(
        &self,
        name: &str,
        policy: &str,
        by: &Candidate,
        ignored: &[Field],
    ) -> ConfigError {
        let candidates = |field: &Field| {
            let all = self.channels.get(&(name.to_owned(), *field));
            all.into_iter().flatten().filter(|c| c.layer < by.layer)
        };
        let values: Vec<String> = ignored
            .iter()
            .filter_map(|field| last(self.channels.get(&(name.to_owned(), *field))))
            .map(|c| format!("{} ({})", c.key, c.source))
            .collect();
        let removals: Vec<String> = ignored.iter().flat_map(candidates).map(removal).collect();
        // "a send timeout", "a retry setting", or both (fields come timeout first).
        let mut what: Vec<&str> = ignored.iter().map(|field| field.what()).collect();
        what.dedup();
        let what = what.join(" or ");
        located(
            ErrorKind::IgnoredSetting,
            &by.source,
            &by.key,
            format!(
                "policy `{policy}` never reads {what}, so what channel `{name}` inherits from an earlier layer is ignored here: {}",
                values.join(", ")
            ),
            format!(
                "nothing, if that is intended; to stop setting it, remove {}",
                removals.join(" and ")
            ),
        )
    }

    /// The channels that get the defaults' policy (they set no overflow and no timeout), each
    /// with its backend if that is usable.
    fn default_policy_users<'c>(
        &'c self,
        cx: &Context<'c>,
    ) -> Vec<(&'c str, Option<&'c BackendInfo>)> {
        let own = |name: &String, field: Field| last(self.channels.get(&(name.clone(), field)));
        self.base_channels
            .iter()
            .filter(|name| {
                own(name, Field::Overflow).is_none() && own(name, Field::SendTimeoutMs).is_none()
            })
            .map(|name| {
                let backend = match own(name, Field::Backend).map(|c| &c.value) {
                    Some(Value::String(ident)) => cx.backends.iter().find(|b| b.ident == *ident),
                    Some(_) => None,
                    None => cx.default_backend,
                };
                (name.as_str(), backend)
            })
            .collect()
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
        // A file's value that a later layer replaced is still checked: another environment
        // (or this one without the variable) reads it.
        for field in Field::ALL {
            let all = self.channels.get(&(name.to_owned(), field));
            let earlier = all
                .and_then(|all| all.split_last())
                .map(|(_, earlier)| earlier);
            for c in earlier.into_iter().flatten().filter(|c| c.source.is_file()) {
                check_value(&mut read, field, c);
            }
        }

        let capacity_candidate = own(Field::BufferSize)?;
        let capacity = read
            .integer(
                capacity_candidate,
                Field::BufferSize.min(),
                Field::BufferSize.max(),
            )
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
        // What selected the policy: the channel's own overflow, else its own timeout, else
        // the defaults' drop_policy (none: the built-in `block`, below every layer).
        let chosen_by = own_overflow
            .or(own_timeout)
            .or_else(|| last(self.defaults.get("drop_policy")));
        let mut ignored = Vec::new();
        if let Some(policy) = policy {
            for &field in unread_fields(policy) {
                let Some(c) = own(field) else { continue };
                match chosen_by.filter(|p| p.layer > c.layer) {
                    // A later layer (an overlay) switched the channel to a policy that does not
                    // read a value an earlier one (the base) gave it: the later layer wins, as
                    // everywhere else, and the value is ignored with a warning. No value could
                    // unset it, so an error would leave no way to do this for one environment.
                    // An ignored value must still be a valid one: another environment reads it.
                    Some(_) => {
                        check_value(&mut read, field, c);
                        ignored.push(field);
                    }
                    // Set with (or after) the policy: a mistake in that layer. Its value is not
                    // judged as well: removing it is the fix either way.
                    None => read.errors.push(located(
                        ErrorKind::InvalidPolicy,
                        &c.source,
                        &c.key,
                        format!("policy `{policy}` never reads {}", field.what()),
                        if field == Field::SendTimeoutMs {
                            "remove the timeout, or use policy `timeout` or `retry`".to_owned()
                        } else {
                            "remove it, or use policy `retry`".to_owned()
                        },
                    )),
                }
            }
        }
        if let (Some(p), Some(policy), false) = (chosen_by, policy, ignored.is_empty()) {
            warnings.push(self.ignored_warning(name, policy, p, &ignored));
        }
        let unread = |field: Field| policy.is_some_and(|p| unread_fields(p).contains(&field));
        let own_timeout = own_timeout.filter(|_| !unread(Field::SendTimeoutMs));
        let send_timeout_ms = match own_timeout {
            Some(c) => read
                .integer(c, Field::SendTimeoutMs.min(), Field::SendTimeoutMs.max())
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
        }

        // A channel whose policy is not `retry` reads none of its own retry keys: each was
        // handled above (ignored, or an error).
        let own_retry = |field: Field| own(field).filter(|_| !unread(field));
        let retry_max_attempts = match own_retry(Field::RetryMaxAttempts) {
            Some(c) => read
                .integer(
                    c,
                    Field::RetryMaxAttempts.min(),
                    Field::RetryMaxAttempts.max(),
                )
                .map(|n| Sourced::new(n as u32, c.source.clone())),
            None => Some(defaults.retry_max_attempts.clone()),
        };
        // With where each came from: (value, key).
        let millis =
            |read: &mut Reader<'_>, field: Field, default: &Sourced<u64>| match own_retry(field) {
                Some(c) => read
                    .integer(c, field.min(), field.max())
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
