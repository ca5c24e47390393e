//! Layering, precedence, the policy rule and provenance (`config/presets/` and small inline
//! documents).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use boundflow_config::{ConfigError, ErrorKind, Loader, Source, presets};
use boundflow_core::{OverflowPolicy, WaitStrategy};

const NO_VARS: [(&str, &str); 0] = [];

fn load(base: &str, overlay: Option<&str>) -> boundflow_config::Config {
    Loader::from_strs(base, overlay)
        .variables(NO_VARS)
        .load()
        .unwrap_or_else(|err| panic!("{err}"))
}

/// An error's or warning's kind and place, to compare in one assertion.
fn place(e: &ConfigError) -> (ErrorKind, &str, Option<usize>, &str) {
    (e.kind, e.file.as_str(), e.line, e.key.as_str())
}

/// The guide's `test_environment_overrides`: production is larger than test for the same
/// channel.
#[test]
fn test_environment_overrides() {
    let dir = presets::dir();
    let test = Loader::from_dir(&dir)
        .environment("test")
        .variables(NO_VARS)
        .load()
        .unwrap();
    let production = Loader::from_dir(&dir)
        .environment("production")
        .variables(NO_VARS)
        .load()
        .unwrap();
    let name = "worker.step_processor.execution_request";
    let (t, p) = (
        test.channel(name).unwrap(),
        production.channel(name).unwrap(),
    );
    assert!(
        p.capacity.value > t.capacity.value,
        "{} vs {}",
        p.capacity.value,
        t.capacity.value
    );
    assert_eq!(t.capacity.value, 100);
    assert_eq!(p.capacity.value, 10_000);
    assert!(
        t.capacity
            .source
            .to_string()
            .ends_with("environments/test/mpsc_channels.toml:6"),
        "{}",
        t.capacity.source
    );
    assert_eq!(test.environment.as_deref(), Some("test"));
}

#[test]
fn every_preset_environment_loads() {
    for (env, overlay) in presets::ENVIRONMENTS {
        let config = load(presets::BASE, Some(overlay));
        assert_eq!(config.channels.len(), 5, "{env}");
    }
    let demo = load(presets::BASE, Some(presets::DEMO));
    let event = demo.channel("task_readiness.event_channel").unwrap();
    assert_eq!(event.backend.value, "async_channel");
    assert!(
        matches!(event.policy(), OverflowPolicy::Retry(r) if r.max_attempts == 4 && r.deadline == Some(std::time::Duration::from_secs(1)))
    );
    let result = demo.channel("worker.step_processor.result").unwrap();
    assert_eq!(result.policy(), OverflowPolicy::DropOldest);
    let request = demo
        .channel("worker.step_processor.execution_request")
        .unwrap();
    assert_eq!(request.wait_strategy(), WaitStrategy::Park);
}

const BASE: &str = r#"
[mpsc_channels.worker.step_processor]
execution_request_buffer_size = 1000
execution_request_timeout_ms = 250
result_buffer_size = 10

[mpsc_channels.task_readiness.event_channel]
buffer_size = 64

[mpsc_channels.overflow_policy]
drop_policy = "drop_newest"
"#;

/// Each layer beats the one under it: default < base < overlay < variable < code.
#[test]
fn precedence_of_every_layer() {
    let name = "task_readiness.event_channel";
    // default: backend
    let base = load(BASE, None);
    let channel = base.channel(name).unwrap();
    assert_eq!(
        (channel.backend.value.as_str(), &channel.backend.source),
        ("tokio", &Source::Default)
    );
    assert_eq!(
        channel.capacity.source.to_string(),
        "base/mpsc_channels.toml:8"
    );
    // overlay over base
    let overlay =
        "[mpsc_channels.task_readiness.event_channel]\nbuffer_size = 128\nbackend = \"flume\"\n";
    let layered = load(BASE, Some(overlay));
    let channel = layered.channel(name).unwrap();
    assert_eq!(channel.capacity.value, 128);
    assert_eq!(
        channel.capacity.source.to_string(),
        "overlay/mpsc_channels.toml:2"
    );
    assert_eq!(channel.backend.value, "flume");
    // variable over overlay
    let var = "BOUNDFLOW__MPSC_CHANNELS__TASK_READINESS__EVENT_CHANNEL__BUFFER_SIZE";
    let with_var = Loader::from_strs(BASE, Some(overlay))
        .variables([(var, "256")])
        .load()
        .unwrap();
    let channel = with_var.channel(name).unwrap();
    assert_eq!(channel.capacity.value, 256);
    assert_eq!(
        channel.capacity.source,
        Source::Env {
            variable: var.to_owned()
        }
    );
    // code over variable
    let with_code = Loader::from_strs(BASE, Some(overlay))
        .variables([(var, "256")])
        .set_capacity(name, 512)
        .set_backend(name, "crossbeam")
        .load()
        .unwrap();
    let channel = with_code.channel(name).unwrap();
    assert_eq!(
        (channel.capacity.value, &channel.capacity.source),
        (512, &Source::Code)
    );
    assert_eq!(
        (channel.backend.value.as_str(), &channel.backend.source),
        ("crossbeam", &Source::Code)
    );
}

/// Component keys: only `_buffer_size` is stripped; siblings attach to the same channel; a
/// variable for a component key uses the component path.
#[test]
fn component_keys_and_their_variables() {
    let var = "BOUNDFLOW__MPSC_CHANNELS__WORKER__STEP_PROCESSOR__EXECUTION_REQUEST_BUFFER_SIZE";
    let config = Loader::from_strs(BASE, None)
        .variables([(var, "250")])
        .load()
        .unwrap();
    let names: Vec<&str> = config.channels.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "task_readiness.event_channel",
            "worker.step_processor.execution_request",
            "worker.step_processor.result"
        ]
    );
    let request = config
        .channel("worker.step_processor.execution_request")
        .unwrap();
    assert_eq!(request.capacity.value, 250);
    assert_eq!(request.send_timeout_ms.as_ref().unwrap().value, 250);
    // The variable shadowed a file value, and says so.
    assert_eq!(config.shadowed.len(), 1);
    assert_eq!(config.shadowed[0].variable, var);
    assert_eq!(
        config.shadowed[0].shadowed.to_string(),
        "base/mpsc_channels.toml:3"
    );
    assert_eq!(
        config.shadowed[0].key,
        "mpsc_channels.worker.step_processor.execution_request_buffer_size"
    );
}

/// DESIGN.md's policy rule.
#[test]
fn which_policy_a_channel_gets() {
    let config = load(BASE, None);
    // Its own timeout key selects `timeout`, with that key as the source.
    let request = config
        .channel("worker.step_processor.execution_request")
        .unwrap();
    assert_eq!(
        request.policy(),
        OverflowPolicy::Timeout(std::time::Duration::from_millis(250))
    );
    assert_eq!(
        request.overflow.source.to_string(),
        "base/mpsc_channels.toml:4"
    );
    // No overflow, no timeout: the defaults' drop_policy.
    let result = config.channel("worker.step_processor.result").unwrap();
    assert_eq!(result.policy(), OverflowPolicy::DropNewest);
    assert_eq!(
        result.overflow.source.to_string(),
        "base/mpsc_channels.toml:11"
    );
    // Nothing at all: block, from the built-in default.
    let bare = load("[mpsc_channels.a.b]\nc_buffer_size = 1\n", None);
    let channel = bare.channel("a.b.c").unwrap();
    assert_eq!(
        (channel.policy(), &channel.overflow.source),
        (OverflowPolicy::Block, &Source::Default)
    );
    // The defaults' send timeout is read by `retry` (its deadline), not by `block`.
    let retry = load(
        "[mpsc_channels.a.b]\nc_buffer_size = 1\nc_overflow = \"retry\"\nd_buffer_size = 1\n[mpsc_channels.overflow_policy]\nsend_timeout_ms = 40\n",
        None,
    );
    assert!(
        matches!(retry.channel("a.b.c").unwrap().policy(), OverflowPolicy::Retry(r) if r.deadline == Some(std::time::Duration::from_millis(40)))
    );
    assert_eq!(retry.channel("a.b.d").unwrap().send_timeout_ms, None);
}

/// An overlay or variable may only change channels the base defines: a typo does not create
/// one.
#[test]
fn overlays_and_variables_cannot_create_channels() {
    let overlay = "[mpsc_channels.worker.step_processor]\ncomand_buffer_size = 5\n";
    let err = Loader::from_strs(BASE, Some(overlay))
        .variables(NO_VARS)
        .load()
        .unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    assert_eq!(err.0[0].kind, ErrorKind::UnknownChannel);
    assert_eq!(
        (err.0[0].file.as_str(), err.0[0].line),
        ("overlay/mpsc_channels.toml", Some(2))
    );
    let var = "BOUNDFLOW__MPSC_CHANNELS__WORKER__NOPE_BUFFER_SIZE";
    let err = Loader::from_strs(BASE, None)
        .variables([(var, "5")])
        .load()
        .unwrap_err();
    assert_eq!(err.0[0].kind, ErrorKind::UnknownChannel);
    assert_eq!(err.0[0].file, format!("env:{var}"));
    let err = Loader::from_strs(BASE, None)
        .variables(NO_VARS)
        .set_capacity("no.such", 3)
        .load()
        .unwrap_err();
    assert_eq!(
        (err.0[0].kind, err.0[0].file.as_str()),
        (ErrorKind::UnknownChannel, "code")
    );
}

/// Bad values are typed errors with file and line, all reported at once.
#[test]
fn bad_values_are_reported_with_file_and_line() {
    let base = "[mpsc_channels.a.b]\nc_buffer_size = 0\nd_buffer_size = 10\nd_backend = \"kafka\"\n[mpsc_channels.overflow_policy]\nlog_warning_threshold = 1.5\n";
    let err = Loader::from_strs(base, None)
        .variables(NO_VARS)
        .load()
        .unwrap_err();
    let found: Vec<(ErrorKind, Option<usize>)> = err.0.iter().map(|e| (e.kind, e.line)).collect();
    assert!(found.contains(&(ErrorKind::InvalidValue, Some(2))), "{err}");
    assert!(
        found.contains(&(ErrorKind::UnknownBackend, Some(4))),
        "{err}"
    );
    assert!(found.contains(&(ErrorKind::InvalidValue, Some(6))), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(
            "base/mpsc_channels.toml:2: mpsc_channels.a.b.c_buffer_size: 0 is out of range — "
        ),
        "{text}"
    );
    // Invalid TOML names its line.
    let err = Loader::from_strs("[mpsc_channels.a]\nx_buffer_size = = 1\n", None)
        .variables(NO_VARS)
        .load()
        .unwrap_err();
    assert_eq!(
        (err.0[0].kind, err.0[0].line),
        (ErrorKind::InvalidToml, Some(2))
    );
    // A backend not compiled in names the feature to enable.
    let only_tokio = boundflow_config::BackendInfo {
        ident: "tokio",
        cargo_feature: "tokio",
        supports_drop_oldest: false,
        max_capacity: usize::MAX,
    };
    let err = Loader::from_strs(
        "[mpsc_channels.a]\nx_buffer_size = 1\nx_backend = \"async_channel\"\n",
        None,
    )
    .variables(NO_VARS)
    .backends([only_tokio])
    .load()
    .unwrap_err();
    assert!(
        err.0[0].fix.contains("cargo feature `async-channel`"),
        "{err}"
    );
}

/// A missing base directory or environment is an error naming the path.
#[test]
fn missing_layers_are_errors() {
    let err = Loader::from_dir("/nonexistent/boundflow")
        .variables(NO_VARS)
        .load()
        .unwrap_err();
    assert_eq!(err.0[0].kind, ErrorKind::MissingLayer);
    assert!(err.0[0].file.ends_with("base/mpsc_channels.toml"));
    let err = Loader::from_dir(presets::dir())
        .environment("staging")
        .variables(NO_VARS)
        .load()
        .unwrap_err();
    assert_eq!(err.0[0].kind, ErrorKind::MissingLayer);
    assert!(err.0[0].file.contains("environments/staging"), "{err}");
}

/// The environment comes from `BOUNDFLOW_ENV` when the loader is not told one.
#[test]
fn environment_from_boundflow_env() {
    let config = Loader::from_dir(presets::dir())
        .variables([("BOUNDFLOW_ENV", "production")])
        .load()
        .unwrap();
    assert_eq!(config.environment.as_deref(), Some("production"));
    assert_eq!(
        config
            .channel("event_publisher.event_queue")
            .unwrap()
            .capacity
            .value,
        50_000
    );
}

/// Provenance of the defaults table, including its `metrics` subtable.
#[test]
fn defaults_have_sources_too() {
    let config = load(presets::BASE, Some(presets::TEST));
    let d = &config.defaults;
    assert_eq!(d.saturation_check_interval_seconds.value, 1);
    assert_eq!(
        d.saturation_check_interval_seconds.source.to_string(),
        "overlay/mpsc_channels.toml:16"
    );
    assert_eq!(
        d.log_warning_threshold.source.to_string(),
        "base/mpsc_channels.toml:22"
    );
    assert_eq!(
        (d.recover_threshold.value, &d.recover_threshold.source),
        (0.6, &Source::Default)
    );
    assert!(d.metrics_enabled.value);
}

/// An overlay may switch a channel away from the timeout its base gives it: the later layer
/// wins, and the inherited timeout is ignored with a warning at the overlay's line. In one
/// layer, the two still contradict each other.
#[test]
fn an_overlay_may_switch_a_timeout_channel_to_another_policy() {
    let base = "[mpsc_channels.a]\nx_buffer_size = 10\nx_timeout_ms = 500\n";
    let config = load(
        base,
        Some("[mpsc_channels.a]\nx_overflow = \"drop_newest\"\n"),
    );
    let channel = config.channel("a.x").unwrap();
    assert_eq!(channel.policy(), OverflowPolicy::DropNewest);
    assert_eq!(channel.send_timeout_ms, None);
    let warning = &config.warnings[0];
    assert_eq!(
        place(warning),
        (
            ErrorKind::IgnoredSetting,
            "overlay/mpsc_channels.toml",
            Some(2),
            "mpsc_channels.a.x_overflow"
        )
    );
    assert!(
        warning.message.contains("base/mpsc_channels.toml:3"),
        "{warning}"
    );
    let err = Loader::from_strs(
        "[mpsc_channels.a]\nx_buffer_size = 10\nx_timeout_ms = 500\nx_overflow = \"drop_newest\"\n",
        None,
    )
    .variables(NO_VARS)
    .load()
    .unwrap_err();
    assert_eq!(
        (err.0.len(), err.0[0].kind, err.0[0].line),
        (1, ErrorKind::InvalidPolicy, Some(3))
    );
}

/// Variables are read lowercased, so a base that spells a channel with capitals is matched
/// whatever the case: every channel can be overridden.
#[test]
fn variables_reach_channels_spelt_with_capitals() {
    let base = "[mpsc_channels.Billing]\nInvoice_buffer_size = 10\n[mpsc_channels.Audit.Sink]\nbuffer_size = 5\n";
    let config = Loader::from_strs(base, None)
        .variables([
            (
                "BOUNDFLOW__MPSC_CHANNELS__BILLING__INVOICE_BUFFER_SIZE",
                "20",
            ),
            ("BOUNDFLOW__MPSC_CHANNELS__AUDIT__SINK__BUFFER_SIZE", "7"),
        ])
        .load()
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(
        config.channel("Billing.Invoice").unwrap().capacity.value,
        20
    );
    assert_eq!(config.channel("Audit.Sink").unwrap().capacity.value, 7);
}

/// The layer rule covers every value a later policy does not read, not only the timeout: an
/// overlay or a variable may switch a `retry` channel to another policy although the base
/// holds its retry keys (no value could unset them).
#[test]
fn an_overlay_or_variable_may_switch_a_retry_channel_to_another_policy() {
    let base = "[mpsc_channels.a.x]\nbuffer_size = 10\noverflow = \"retry\"\nretry_max_attempts = 4\nsend_timeout_ms = 500\n";
    let config = load(
        base,
        Some("[mpsc_channels.a.x]\noverflow = \"drop_newest\"\n"),
    );
    let channel = config.channel("a.x").unwrap();
    assert_eq!(channel.policy(), OverflowPolicy::DropNewest);
    assert_eq!(channel.send_timeout_ms, None);
    assert_eq!(config.warnings.len(), 1, "{:#?}", config.warnings);
    let warning = &config.warnings[0];
    assert_eq!(
        place(warning),
        (
            ErrorKind::IgnoredSetting,
            "overlay/mpsc_channels.toml",
            Some(2),
            "mpsc_channels.a.x.overflow"
        )
    );
    assert_eq!(
        warning.message,
        "policy `drop_newest` never reads a send timeout or a retry setting, so what channel `a.x` \
         inherits from an earlier layer is ignored here: mpsc_channels.a.x.send_timeout_ms \
         (base/mpsc_channels.toml:5), mpsc_channels.a.x.retry_max_attempts (base/mpsc_channels.toml:4)"
    );

    // The same through a variable: the warning is the variable's.
    let variable = "BOUNDFLOW__MPSC_CHANNELS__A__X__OVERFLOW";
    let config = Loader::from_strs(base, None)
        .variables([(variable, "block")])
        .load()
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(
        config.channel("a.x").unwrap().policy(),
        OverflowPolicy::Block
    );
    let warning = &config.warnings[0];
    assert_eq!(
        (warning.kind, warning.file.as_str(), warning.line),
        (ErrorKind::IgnoredSetting, &*format!("env:{variable}"), None)
    );

    // A policy from the defaults, switched by an overlay, follows the same rule.
    let base = "[mpsc_channels.a]\nx_buffer_size = 10\nx_retry_max_attempts = 3\n[mpsc_channels.overflow_policy]\ndrop_policy = \"retry\"\n";
    let config = load(
        base,
        Some("[mpsc_channels.overflow_policy]\ndrop_policy = \"block\"\n"),
    );
    let warning = &config.warnings[0];
    assert_eq!(
        (warning.kind, warning.line, warning.key.as_str()),
        (
            ErrorKind::IgnoredSetting,
            Some(2),
            "mpsc_channels.overflow_policy.drop_policy"
        )
    );
}

/// In the layer that chooses the policy, or a later one, a value the policy does not read is
/// still an error, at that value's line.
#[test]
fn an_unread_retry_key_in_the_policys_layer_or_later_is_an_error() {
    let same_layer = Loader::from_strs(
        "[mpsc_channels.a]\nx_buffer_size = 10\nx_overflow = \"drop_newest\"\nx_retry_max_attempts = 4\n",
        None,
    )
    .variables(NO_VARS)
    .load()
    .unwrap_err();
    let found: Vec<_> = same_layer.0.iter().map(|e| (e.kind, e.line)).collect();
    assert_eq!(found, [(ErrorKind::InvalidPolicy, Some(4))]);
    let later = Loader::from_strs(
        "[mpsc_channels.a]\nx_buffer_size = 10\nx_overflow = \"drop_newest\"\n",
        Some("[mpsc_channels.a]\nx_retry_max_attempts = 4\n"),
    )
    .variables(NO_VARS)
    .load()
    .unwrap_err();
    let found: Vec<_> = later.0.iter().map(place).collect();
    assert_eq!(
        found,
        [(
            ErrorKind::InvalidPolicy,
            "overlay/mpsc_channels.toml",
            Some(2),
            "mpsc_channels.a.x_retry_max_attempts"
        )]
    );
}

/// An ignored value is still checked: another environment reads it.
#[test]
fn an_ignored_value_must_still_be_valid() {
    let err = Loader::from_strs(
        "[mpsc_channels.a]\nx_buffer_size = 10\nx_timeout_ms = \"soon\"\n",
        Some("[mpsc_channels.a]\nx_overflow = \"drop_newest\"\n"),
    )
    .variables(NO_VARS)
    .load()
    .unwrap_err();
    let found: Vec<_> = err
        .0
        .iter()
        .map(|e| (e.kind, e.file.as_str(), e.line))
        .collect();
    assert_eq!(
        found,
        [(ErrorKind::InvalidValue, "base/mpsc_channels.toml", Some(3))]
    );
}

/// The fix names every earlier value that would have to go: removing only the overlay's
/// timeout would bring back the base's.
#[test]
fn the_ignored_setting_fix_names_every_layer_that_sets_it() {
    let config = Loader::from_strs(
        "[mpsc_channels.a]\nx_buffer_size = 10\nx_timeout_ms = 500\n",
        Some("[mpsc_channels.a]\nx_timeout_ms = 100\n"),
    )
    .variables([("BOUNDFLOW__MPSC_CHANNELS__A__X_OVERFLOW", "drop_newest")])
    .load()
    .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(
        config.warnings[0].fix,
        "nothing, if that is intended; to stop setting it, remove mpsc_channels.a.x_timeout_ms \
         at base/mpsc_channels.toml:3 (every environment) and mpsc_channels.a.x_timeout_ms at \
         overlay/mpsc_channels.toml:2 (this environment)"
    );
}

/// A file value that a later layer replaces is still checked: another environment reads it.
#[test]
fn a_replaced_file_value_must_still_be_valid() {
    let err = Loader::from_strs(
        "[mpsc_channels.a]\nx_buffer_size = \"big\"\nx_backend = \"nats\"\n[mpsc_channels.overflow_policy]\nmax_capacity = 0\n",
        Some("[mpsc_channels.a]\nx_buffer_size = 10\nx_backend = \"flume\"\n[mpsc_channels.overflow_policy]\nmax_capacity = 100\n"),
    )
    .variables(NO_VARS)
    .load()
    .unwrap_err();
    let found: Vec<_> = err
        .0
        .iter()
        .map(|e| (e.kind, e.file.as_str(), e.line))
        .collect();
    assert_eq!(
        found,
        [
            (ErrorKind::InvalidValue, "base/mpsc_channels.toml", Some(2)),
            (ErrorKind::InvalidValue, "base/mpsc_channels.toml", Some(3)),
            (ErrorKind::InvalidValue, "base/mpsc_channels.toml", Some(5)),
        ]
    );
    // A variable's value replaced by code is not a file's: nothing else reads it.
    let config = Loader::from_strs("[mpsc_channels.a]\nx_buffer_size = 1\n", None)
        .variables([("BOUNDFLOW__MPSC_CHANNELS__A__X_BUFFER_SIZE", "lots")])
        .set_capacity("a.x", 5)
        .load()
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(config.channel("a.x").unwrap().capacity.value, 5);
}
