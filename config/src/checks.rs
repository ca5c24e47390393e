//! The checks a resolved value needs to be usable: the backend is compiled in and can hold the
//! capacity and the policy, the policy reads what is set, the retry backoff is ordered, and
//! the defaults table contradicts nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use boundflow_core::{RetryPolicy, RetryPolicyError};

use crate::classify::{Candidate, Field, Layer};
use crate::error::{ConfigError, ErrorKind};
use crate::resolve::{
    BackendInfo, ChannelSettings, Context, Defaults, KNOWN_BACKENDS, Reader, default_key,
};
use crate::source::{Source, Sourced};
use crate::validate::located;

/// The compiled-in backend `backend` (the value of `c`), or an error saying which feature to
/// enable.
pub(crate) fn check_backend<'b>(
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

/// A channel's own policy that its backend cannot apply, or that misses a timeout. Each rule is
/// checked on its own, so that one mistake does not hide another. A policy from the defaults
/// is checked once for every channel that gets it ([`check_default_policy`]).
pub(crate) fn check_policy(
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
    if overflow_key == default_key("drop_policy") {
        return;
    }
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
    if let Some(info) = backend.filter(|b| policy == "drop_oldest" && !b.supports_drop_oldest) {
        let able = evicting_backends(cx);
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

/// The compiled-in (and allowed) backends that can apply `drop_oldest`, for a fix to name.
fn evicting_backends(cx: &Context<'_>) -> Vec<&'static str> {
    cx.backends
        .iter()
        .filter(|b| b.supports_drop_oldest)
        .map(|b| b.ident)
        .collect()
}

/// The defaults' policy, checked once for the channels that get it (`users`, each with its
/// backend if that is usable): one error at the drop_policy line, naming them.
pub(crate) fn check_default_policy(
    read: &mut Reader<'_>,
    cx: &Context<'_>,
    drop_policy: &Candidate,
    users: &[(&str, Option<&BackendInfo>)],
) {
    let mut invalid = |message: String, fix: String| {
        read.errors.push(located(
            ErrorKind::InvalidPolicy,
            &drop_policy.source,
            &drop_policy.key,
            message,
            fix,
        ));
    };
    match cx.defaults.drop_policy.value.as_str() {
        "timeout" if !cx.default_timeout_set && !users.is_empty() => {
            let names: Vec<&str> = users.iter().map(|(name, _)| *name).collect();
            invalid(
                format!(
                    "policy `timeout` needs a send timeout, and none is set for {}, which get it from this default",
                    channel_list(&names)
                ),
                "set overflow_policy.send_timeout_ms, or give each of them its own timeout (<purpose>_timeout_ms or send_timeout_ms)".to_owned(),
            );
        }
        "drop_oldest" => {
            let unable: Vec<(&str, &str)> = users
                .iter()
                .filter_map(|(name, info)| {
                    Some((*name, info.filter(|b| !b.supports_drop_oldest)?.ident))
                })
                .collect();
            if unable.is_empty() {
                return;
            }
            let names: Vec<&str> = unable.iter().map(|(name, _)| *name).collect();
            let mut idents: Vec<&str> = unable.iter().map(|(_, ident)| *ident).collect();
            idents.sort_unstable();
            idents.dedup();
            let able = evicting_backends(cx);
            let them = if names.len() == 1 {
                ["it", "its"]
            } else {
                ["them", "their"]
            };
            let fix = if able.is_empty() {
                "set another drop_policy: no backend compiled in can evict (flume, crossbeam and async_channel can)".to_owned()
            } else {
                format!(
                    "give {} backend {} or {} own policy, or set another drop_policy",
                    them[0],
                    or_list(&able),
                    them[1]
                )
            };
            let idents: Vec<String> = idents.iter().map(|i| format!("`{i}`")).collect();
            let idents: Vec<&str> = idents.iter().map(String::as_str).collect();
            let backends = if idents.len() == 1 {
                "backend"
            } else {
                "backends"
            };
            invalid(
                format!(
                    "{backends} {} cannot evict from the sending side (drop_oldest), which this default gives to {}",
                    joined(&idents, "and"),
                    channel_list(&names)
                ),
                fix,
            );
        }
        _ => {}
    }
}

/// "channel `a`", "channels `a` and `b`", "5 channels (`a`, `b`, `c`, …)".
pub(crate) fn channel_list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    let quoted: Vec<&str> = quoted.iter().map(String::as_str).collect();
    match quoted.as_slice() {
        [one] => format!("channel {one}"),
        [first, second, third, _, ..] => {
            format!("{} channels ({first}, {second}, {third}, …)", names.len())
        }
        many => format!("channels {}", joined(many, "and")),
    }
}

/// "a", "a or b", "a, b or c".
pub(crate) fn or_list(items: &[&str]) -> String {
    joined(items, "or")
}

/// "a", "a and b", "a, b and c" (or `or`).
fn joined(items: &[&str], word: &str) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} {word} {last}", init.join(", ")),
    }
}

/// A retry policy the channel builder would refuse (core's own rule, so the two agree).
pub(crate) fn check_retry(
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
pub(crate) fn check_capacity(
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
/// when every channel resolved: `channels` is `None` otherwise). `written` is every layer's
/// defaults; with `base_shared` (an environment's overlay was read) the base's defaults are
/// not judged: another environment may read them.
pub(crate) fn check_defaults(
    defaults: &Defaults,
    written: &BTreeMap<&'static str, Vec<Candidate>>,
    channels: Option<&[ChannelSettings]>,
    own: &BTreeMap<(String, Field), Vec<Candidate>>,
    base_shared: bool,
    errors: &mut Vec<ConfigError>,
) {
    let (warn, recover) = (&defaults.log_warning_threshold, &defaults.recover_threshold);
    if recover.value >= warn.value {
        // At a value someone wrote: the recover threshold, unless only the warning one is.
        let (at, k) = if recover.source == Source::Default {
            (&warn.source, "log_warning_threshold")
        } else {
            (&recover.source, "recover_threshold")
        };
        errors.push(located(
            ErrorKind::InvalidValue,
            at,
            &default_key(k),
            format!(
                "recover_threshold {} ({}) is not below log_warning_threshold {} ({}): a warned channel could never recover",
                recover.value, recover.source, warn.value, warn.source
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
    let mut unused = |k: &'static str, readers: &str| {
        let Some(c) = written.get(k).and_then(|c| c.last()) else {
            return;
        };
        if c.layer == Layer::Base && base_shared {
            return;
        }
        errors.push(located(
            ErrorKind::UnusedKey,
            &c.source,
            &c.key,
            format!("no channel reads this default: it is read only by {readers} channels that set no value of their own"),
            "remove it, or give a channel that policy".to_owned(),
        ));
    };
    if !reads(Field::SendTimeoutMs, &["timeout", "retry"]) {
        unused("send_timeout_ms", "`timeout` and `retry`");
    }
    for (field, k) in [
        (Field::RetryMaxAttempts, "retry_max_attempts"),
        (Field::RetryInitialBackoffMs, "retry_initial_backoff_ms"),
        (Field::RetryMaxBackoffMs, "retry_max_backoff_ms"),
    ] {
        if !reads(field, &["retry"]) {
            unused(k, "`retry`");
        }
    }
}
