//! Strict validation: every kind of mistake is an error naming its kind, file and line (the
//! lines below are counted by hand in the documents), and loading never panics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use boundflow_config::{BackendInfo, ConfigError, ErrorKind, Loader, presets};
use proptest::prelude::*;

const NO_VARS: [(&str, &str); 0] = [];

fn errors(base: &str, overlay: Option<&str>) -> Vec<ConfigError> {
    match Loader::from_strs(base, overlay).variables(NO_VARS).load() {
        Ok(config) => panic!("expected errors, loaded {} channels", config.channels.len()),
        Err(errors) => errors.0,
    }
}

/// The one error of `kind`, at `line` of the base.
fn assert_error(errors: &[ConfigError], kind: ErrorKind, line: usize) -> &ConfigError {
    errors
        .iter()
        .find(|e| e.kind == kind && e.line == Some(line))
        .unwrap_or_else(|| panic!("no {kind:?} at line {line} in {errors:#?}"))
}

#[test]
fn unknown_key_suggests_the_near_one() {
    let errs = errors(
        "[mpsc_channels.worker]\nrequest_buffer_size = 10\nrequest_timout_ms = 5\n",
        None,
    );
    let err = assert_error(&errs, ErrorKind::UnknownKey, 3);
    assert_eq!(err.file, "base/mpsc_channels.toml");
    assert_eq!(err.key, "mpsc_channels.worker.request_timout_ms");
    assert!(
        err.fix.contains("did you mean `request_timeout_ms`"),
        "{err}"
    );
    let errs = errors(
        "[mpsc_channels.a]\nx_buffer_size = 1\n[mpsc_channels.overflow_policy]\nlog_warning_treshold = 0.7\n",
        None,
    );
    assert!(
        assert_error(&errs, ErrorKind::UnknownKey, 4)
            .fix
            .contains("`log_warning_threshold`")
    );
}

/// The guide's anti-pattern 5: a table that misses the `mpsc_channels` prefix.
#[test]
fn a_table_outside_mpsc_channels_spells_out_the_fix() {
    let base = "[mpsc_channels.task_readiness.other]\nbuffer_size = 1\n\n[task_readiness.event_channel]\nbuffer_size = 100\n";
    let errs = errors(base, None);
    let err = assert_error(&errs, ErrorKind::WrongPrefix, 5);
    assert_eq!(err.fix, "use [mpsc_channels.task_readiness.event_channel]");
}

#[test]
fn a_table_of_both_kinds_and_a_name_defined_twice() {
    let errs = errors(
        "[mpsc_channels.a.b]\nbuffer_size = 1\nc_buffer_size = 2\n",
        None,
    );
    assert_error(&errs, ErrorKind::Conflict, 3);
    let errs = errors(
        "[mpsc_channels.a]\nb_buffer_size = 1\n[mpsc_channels.a.b]\nbuffer_size = 2\n",
        None,
    );
    let err = errs
        .iter()
        .find(|e| e.kind == ErrorKind::Conflict)
        .expect("conflict");
    assert!(matches!(err.line, Some(2) | Some(4)), "{err}");
    assert!(err.message.contains("defined twice"), "{err}");
}

#[test]
fn capacities_out_of_range() {
    let base = "[mpsc_channels.a]\nzero_buffer_size = 0\nneg_buffer_size = -3\nfloat_buffer_size = 1.5\nhuge_buffer_size = 2000000\nok_buffer_size = 10\n";
    let errs = errors(base, None);
    for line in [2, 3, 4, 5] {
        assert_error(&errs, ErrorKind::InvalidValue, line);
    }
    let errs = errors(
        "[mpsc_channels.a]\nx_buffer_size = 100\n[mpsc_channels.overflow_policy]\nmax_capacity = 50\n",
        None,
    );
    assert_error(&errs, ErrorKind::InvalidValue, 2);
    // Above the backend's own maximum.
    let small = BackendInfo {
        ident: "tokio",
        cargo_feature: "tokio",
        supports_drop_oldest: false,
        max_capacity: 8,
    };
    let errs = Loader::from_strs("[mpsc_channels.a]\nx_buffer_size = 9\n", None)
        .variables(NO_VARS)
        .backends([small])
        .load()
        .unwrap_err()
        .0;
    assert_error(&errs, ErrorKind::InvalidValue, 2);
}

#[test]
fn backends_and_policies() {
    let base = r#"[mpsc_channels.a]
x_buffer_size = 1
x_backend = "kafka"
y_buffer_size = 1
y_overflow = "drop_oldest"
z_buffer_size = 1
z_overflow = "timeout"
w_buffer_size = 1
w_overflow = "block"
w_timeout_ms = 5
v_buffer_size = 1
v_overflow = "sometimes"
u_buffer_size = 1
u_wait_strategy = "nap"
t_buffer_size = 1
t_overflow = "retry"
t_retry_max_attempts = 0
"#;
    let errs = errors(base, None);
    assert_error(&errs, ErrorKind::UnknownBackend, 3);
    // y: drop_oldest on the default backend, tokio.
    assert!(
        assert_error(&errs, ErrorKind::InvalidPolicy, 5)
            .message
            .contains("tokio")
    );
    // z: timeout with no timeout.
    assert_error(&errs, ErrorKind::InvalidPolicy, 7);
    // w: a timeout that `block` never reads.
    assert_error(&errs, ErrorKind::InvalidPolicy, 10);
    assert_error(&errs, ErrorKind::InvalidValue, 12);
    assert_error(&errs, ErrorKind::InvalidValue, 14);
    assert_error(&errs, ErrorKind::InvalidValue, 17);
    // Not compiled in: names the cargo feature.
    let tokio = BackendInfo {
        ident: "tokio",
        cargo_feature: "tokio",
        supports_drop_oldest: false,
        max_capacity: usize::MAX,
    };
    let errs = Loader::from_strs(
        "[mpsc_channels.a]\nx_buffer_size = 1\nx_backend = \"flume\"\n",
        None,
    )
    .variables(NO_VARS)
    .backends([tokio])
    .load()
    .unwrap_err()
    .0;
    assert!(
        assert_error(&errs, ErrorKind::UnknownBackend, 3)
            .fix
            .contains("cargo feature `flume`")
    );
}

#[test]
fn thresholds_and_unread_defaults() {
    let base = "[mpsc_channels.a]\nx_buffer_size = 1\n[mpsc_channels.overflow_policy]\nlog_warning_threshold = 0.5\nrecover_threshold = 0.7\nsend_timeout_ms = 100\nretry_max_attempts = 3\n";
    let errs = errors(base, None);
    assert_error(&errs, ErrorKind::InvalidValue, 5);
    assert_error(&errs, ErrorKind::UnusedKey, 6);
    assert_error(&errs, ErrorKind::UnusedKey, 7);
    let errs = errors(
        "[mpsc_channels.a]\nx_buffer_size = 1\n[mpsc_channels.overflow_policy]\nrecover_threshold = -0.1\n",
        None,
    );
    assert_error(&errs, ErrorKind::InvalidValue, 4);
}

/// An overlay or variable naming a channel the base does not define (a typo must not create
/// one); a variable with a bad value quotes the variable.
#[test]
fn overlays_and_variables_name_only_base_channels() {
    let base = "[mpsc_channels.orchestration]\ncommand_buffer_size = 10\n";
    let errs = errors(
        base,
        Some("[mpsc_channels.orchestration]\ncomand_buffer_size = 5\n"),
    );
    let err = assert_error(&errs, ErrorKind::UnknownChannel, 2);
    assert!(
        err.fix
            .contains("did you mean channel `orchestration.command`"),
        "{err}"
    );
    let var = "BOUNDFLOW__MPSC_CHANNELS__ORCHESTRATION__COMMAND_BUFFER_SIZE";
    let errs = Loader::from_strs(base, None)
        .variables([(var, "lots")])
        .load()
        .unwrap_err()
        .0;
    assert_eq!(
        (errs[0].kind, errs[0].file.as_str(), errs[0].line),
        (ErrorKind::InvalidValue, format!("env:{var}").as_str(), None)
    );
}

/// Errors render like a compiler's, and as data.
#[test]
fn errors_render_for_people_and_as_data() {
    let errs = errors("[mpsc_channels.a]\nx_buffer_size = 0\n", None);
    assert_eq!(
        errs[0].to_string(),
        "base/mpsc_channels.toml:2: mpsc_channels.a.x_buffer_size: 0 is out of range — use a whole number of at least 1"
    );
}

/// Lenient mode: unknown keys are warnings; never the default.
#[test]
fn lenient_mode_warns_on_unknown_keys() {
    let base = "[mpsc_channels.a]\nx_buffer_size = 1\nx_new_feature_knob = 3\n";
    assert!(
        Loader::from_strs(base, None)
            .variables(NO_VARS)
            .load()
            .is_err()
    );
    let config = Loader::from_strs(base, None)
        .variables(NO_VARS)
        .lenient(true)
        .load()
        .unwrap();
    assert_eq!(config.warnings.len(), 1);
    assert_eq!(
        (config.warnings[0].kind, config.warnings[0].line),
        (ErrorKind::UnknownKey, Some(3))
    );
}

/// The guide's advice, comparing the environments present: a channel test does not size, a
/// test size above production.
#[test]
fn advisory_warnings_compare_environments() {
    let dir = std::env::temp_dir().join(format!("boundflow-config-advice-{}", std::process::id()));
    write_files(
        &dir,
        &[
            (
                "base/mpsc_channels.toml",
                "[mpsc_channels.a]\nx_buffer_size = 100\ny_buffer_size = 100\n",
            ),
            (
                "environments/test/mpsc_channels.toml",
                "[mpsc_channels.a]\nx_buffer_size = 500\n",
            ),
            (
                "environments/production/mpsc_channels.toml",
                "[mpsc_channels.a]\nx_buffer_size = 200\n",
            ),
        ],
    );
    let config = Loader::from_dir(&dir)
        .environment("production")
        .variables(NO_VARS)
        .load()
        .unwrap();
    let kinds: Vec<(ErrorKind, &str)> = config
        .warnings
        .iter()
        .map(|w| (w.kind, w.key.as_str()))
        .collect();
    assert!(
        kinds.contains(&(
            ErrorKind::MissingTestOverride,
            "mpsc_channels.a.y_buffer_size"
        )),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&(
            ErrorKind::TestAboveProduction,
            "mpsc_channels.a.x_buffer_size"
        )),
        "{kinds:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    // The shipped presets size every channel in test, smaller than production.
    let config = Loader::from_dir(presets::dir())
        .environment("test")
        .variables(NO_VARS)
        .load()
        .unwrap();
    assert!(config.warnings.is_empty(), "{:#?}", config.warnings);
}

/// The one error at `line` of `file` (`base` or `overlay`), of `kind`.
fn error_in<'e>(
    errors: &'e [ConfigError],
    file: &str,
    kind: ErrorKind,
    line: usize,
) -> &'e ConfigError {
    let file = format!("{file}/mpsc_channels.toml");
    let found: Vec<&ConfigError> = errors
        .iter()
        .filter(|e| e.file == file && e.kind == kind && e.line == Some(line))
        .collect();
    match found.as_slice() {
        [one] => one,
        _ => panic!("not one {kind:?} at {file}:{line} in {errors:#?}"),
    }
}

/// The base reports keys that set no channel, as overlays do: a misspelt purpose, a
/// `<purpose>_send_timeout_ms`, a table without `buffer_size`.
#[test]
fn the_base_reports_keys_for_channels_it_never_sizes() {
    let base = r#"[mpsc_channels.worker]
result_buffer_size = 10
reslt_backend = "flume"
result_send_timeout_ms = 250

[mpsc_channels.audit.sink]
send_timeout_ms = 250
backend = "flume"

[mpsc_channels.billing]
invoice_overflow = "drop_newest"
"#;
    let errs = errors(base, None);
    assert_eq!(errs.len(), 5, "{errs:#?}");
    let typo = error_in(&errs, "base", ErrorKind::UnknownChannel, 3);
    assert_eq!(typo.key, "mpsc_channels.worker.reslt_backend");
    assert!(
        typo.fix
            .starts_with("did you mean channel `worker.result` (key `result_backend`)?"),
        "{typo}"
    );
    let mixed = error_in(&errs, "base", ErrorKind::UnknownChannel, 4);
    assert!(
        mixed.fix.starts_with("did you mean `result_timeout_ms`?"),
        "{mixed}"
    );
    for line in [7, 8] {
        let err = error_in(&errs, "base", ErrorKind::UnknownChannel, line);
        assert!(
            err.message
                .starts_with("[mpsc_channels.audit.sink] has no buffer_size"),
            "{err}"
        );
        assert!(
            err.fix
                .starts_with("add `buffer_size = <capacity>` to [mpsc_channels.audit.sink]"),
            "{err}"
        );
    }
    let unsized_channel = error_in(&errs, "base", ErrorKind::UnknownChannel, 11);
    assert!(
        unsized_channel.fix.starts_with(
            "add `invoice_buffer_size = <capacity>` to define channel `billing.invoice`"
        ),
        "{unsized_channel}"
    );
}

/// Where the base defines a channel by a component key, an overlay may still use its channel
/// table, as `buffer_size` already could.
#[test]
fn an_overlay_may_set_a_component_channel_in_its_own_table() {
    let base = "[mpsc_channels.a]\nb_buffer_size = 10\n";
    let config = Loader::from_strs(
        base,
        Some("[mpsc_channels.a.b]\nbuffer_size = 20\nbackend = \"flume\"\n"),
    )
    .variables(NO_VARS)
    .load()
    .unwrap();
    let channel = config.channel("a.b").unwrap();
    assert_eq!(
        (channel.capacity.value, channel.backend.value.as_str()),
        (20, "flume")
    );
}

/// `check` must refuse what the channel builder refuses: a first retry pause above the
/// longest. Channels sharing inverted defaults get one error, at the line written.
#[test]
fn inverted_retry_backoff_is_refused_as_the_builder_would() {
    let base = "[mpsc_channels.a]\nx_buffer_size = 1\nx_overflow = \"retry\"\nx_retry_initial_backoff_ms = 500\nx_retry_max_backoff_ms = 10\n";
    let errs = errors(base, None);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let err = error_in(&errs, "base", ErrorKind::InvalidValue, 5);
    assert_eq!(err.key, "mpsc_channels.a.x_retry_max_backoff_ms");
    assert_eq!(
        err.fix,
        "make retry_initial_backoff_ms at most retry_max_backoff_ms"
    );
    let base = "[mpsc_channels.a]\nx_buffer_size = 1\nx_overflow = \"retry\"\ny_buffer_size = 1\ny_overflow = \"retry\"\n[mpsc_channels.overflow_policy]\nretry_initial_backoff_ms = 500\n";
    let errs = errors(base, None);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let err = error_in(&errs, "base", ErrorKind::InvalidValue, 7);
    assert_eq!(
        err.key,
        "mpsc_channels.overflow_policy.retry_initial_backoff_ms"
    );
}

/// One mistake does not hide the channel's others: an invalid policy, and the policy rules
/// among themselves.
#[test]
fn one_mistake_does_not_hide_the_others_in_a_channel() {
    let base = "[mpsc_channels.a.b]\nbuffer_size = 5000000\noverflow = \"dropnewest\"\nwait_strategy = \"spinn\"\nretry_max_attempts = 0\n";
    let errs = errors(base, None);
    assert_eq!(errs.len(), 4, "{errs:#?}");
    for (line, key) in [
        (2, "mpsc_channels.a.b.buffer_size"),
        (3, "mpsc_channels.a.b.overflow"),
        (4, "mpsc_channels.a.b.wait_strategy"),
        (5, "mpsc_channels.a.b.retry_max_attempts"),
    ] {
        assert_eq!(
            error_in(&errs, "base", ErrorKind::InvalidValue, line).key,
            key
        );
    }
    // drop_oldest on tokio, with a timeout it never reads: both.
    let base = "[mpsc_channels.a.b]\nbuffer_size = 10\nsend_timeout_ms = 100\noverflow = \"drop_oldest\"\n";
    let errs = errors(base, None);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    let unread = error_in(&errs, "base", ErrorKind::InvalidPolicy, 3);
    assert_eq!(
        unread.message,
        "policy `drop_oldest` never reads a send timeout"
    );
    let evict = error_in(&errs, "base", ErrorKind::InvalidPolicy, 4);
    assert!(evict.message.contains("`tokio` cannot evict"), "{evict}");
    // A non-retry channel's own retry keys are unread; their values are not judged too.
    let base = "[mpsc_channels.a]\nx_buffer_size = 1\nx_retry_max_attempts = 0\n";
    let errs = errors(base, None);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(
        error_in(&errs, "base", ErrorKind::InvalidPolicy, 3).message,
        "policy `block` never reads a retry setting"
    );
}

/// One real mistake, one error: no "not defined in the base" after a base that does not
/// parse, no "needs a send timeout" after a bad timeout.
#[test]
fn no_false_follow_on_errors() {
    let base = "[mpsc_channels.a]\nx_buffer_size = 1\n[mpsc_channels.overflow_policy]\ndrop_policy = \"block\n";
    let overlay = "[mpsc_channels.a]\nx_buffer_size = 2\nx_backend = \"flume\"\n[mpsc_channels.overflow_policy]\nretry_max_attempts = 3\n";
    let errs = errors(base, Some(overlay));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    error_in(&errs, "base", ErrorKind::InvalidToml, 4);
    let errs = errors(
        "[mpsc_channels.a]\nx_buffer_size = 1\nx_timeout_ms = 0\n",
        None,
    );
    assert_eq!(errs.len(), 1, "{errs:#?}");
    error_in(&errs, "base", ErrorKind::InvalidValue, 3);
    let base = "[mpsc_channels.a]\nx_buffer_size = 1\nx_overflow = \"timeout\"\n[mpsc_channels.overflow_policy]\nsend_timeout_ms = \"soon\"\n";
    let errs = errors(base, None);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    error_in(&errs, "base", ErrorKind::InvalidValue, 5);
    // A channel that does not resolve does not make the defaults it would read "unused".
    let base = "[mpsc_channels.a]\nx_buffer_size = 0\nx_overflow = \"retry\"\n[mpsc_channels.overflow_policy]\nretry_max_attempts = 3\n";
    let errs = errors(base, None);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    error_in(&errs, "base", ErrorKind::InvalidValue, 2);
    // ...but thresholds that contradict each other are still reported.
    let base = "[mpsc_channels.a]\nx_buffer_size = 0\n[mpsc_channels.overflow_policy]\nrecover_threshold = 0.9\n";
    let errs = errors(base, None);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    error_in(&errs, "base", ErrorKind::InvalidValue, 4);
}

/// toml's errors name no key: the line does, and a duplicate says where the first one is.
#[test]
fn toml_errors_name_the_key_and_the_fix() {
    let errs = errors(
        "[mpsc_channels.a.b]\nx_buffer_size = 1\n# note\nx_buffer_size = 2\n",
        None,
    );
    let err = error_in(&errs, "base", ErrorKind::InvalidToml, 4);
    assert_eq!(
        (err.key.as_str(), err.message.as_str(), err.fix.as_str()),
        (
            "mpsc_channels.a.b.x_buffer_size",
            "duplicate key",
            "remove one of the two (the first is at line 2)"
        )
    );
    let errs = errors(
        "[mpsc_channels.a]\nx_buffer_size = 1\n\n[mpsc_channels.b]\ny_buffer_size = 1\n[mpsc_channels.a]\nz_buffer_size = 2\n",
        None,
    );
    let err = error_in(&errs, "base", ErrorKind::InvalidToml, 6);
    assert_eq!(
        (err.key.as_str(), err.fix.as_str()),
        (
            "mpsc_channels.a",
            "remove one of the two (the first is at line 1)"
        )
    );
    // An error on no key shows none (no empty `: :`).
    let errs = errors("[mpsc_channels.a\n", None);
    assert_eq!(errs[0].key, "");
    assert!(
        errs[0]
            .to_string()
            .starts_with("base/mpsc_channels.toml:1: unclosed table"),
        "{}",
        errs[0]
    );
}

fn backend(ident: &'static str, drop_oldest: bool, max_capacity: usize) -> BackendInfo {
    BackendInfo {
        ident,
        cargo_feature: ident,
        supports_drop_oldest: drop_oldest,
        max_capacity,
    }
}

/// Above a backend's own limit, raising max_capacity cannot help: the fix names the limit
/// and the backends that hold that many.
#[test]
fn above_a_backends_own_limit_the_fix_names_it() {
    let base = "[mpsc_channels.a]\nx_buffer_size = 20\nx_backend = \"crossbeam\"\n";
    let errs = Loader::from_strs(base, None)
        .variables(NO_VARS)
        .backends([backend("crossbeam", true, 16), backend("flume", true, 100)])
        .load()
        .unwrap_err()
        .0;
    let err = error_in(&errs, "base", ErrorKind::InvalidValue, 2);
    assert_eq!(
        (err.message.as_str(), err.fix.as_str()),
        (
            "capacity 20 is above backend `crossbeam`'s own limit 16",
            "lower it to at most 16, or use a backend that holds that many: flume"
        )
    );
}

/// The default backend missing from the binary: one error, saying where to choose another;
/// drop_oldest's fix offers only backends the binary has.
#[test]
fn a_default_backend_not_compiled_in_is_one_error_saying_where_to_set_it() {
    let base = "[mpsc_channels.a]\nx_buffer_size = 1\ny_buffer_size = 1\nz_buffer_size = 1\nz_backend = \"flume\"\n";
    let errs = Loader::from_strs(base, None)
        .variables(NO_VARS)
        .backends([backend("flume", true, 100)])
        .load()
        .unwrap_err()
        .0;
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let err = &errs[0];
    assert_eq!(
        (err.kind, err.file.as_str(), err.key.as_str()),
        (
            ErrorKind::UnknownBackend,
            "base/mpsc_channels.toml",
            "mpsc_channels.overflow_policy.backend"
        )
    );
    assert!(
        err.message
            .starts_with("channels `a.x` and `a.y` name no backend"),
        "{err}"
    );
    assert!(
        err.fix
            .starts_with("set `backend = \"flume\"` under [mpsc_channels.overflow_policy]"),
        "{err}"
    );
    let base = "[mpsc_channels.a]\nx_buffer_size = 1\nx_overflow = \"drop_oldest\"\n";
    let errs = Loader::from_strs(base, None)
        .variables(NO_VARS)
        .backends([
            backend("tokio", false, 100),
            backend("crossbeam", true, 100),
        ])
        .load()
        .unwrap_err()
        .0;
    assert_eq!(
        error_in(&errs, "base", ErrorKind::InvalidPolicy, 3).fix,
        "use crossbeam for this channel, or another policy"
    );
}

/// Values nothing reads, or nothing would check: a block channel's own retry keys, a default
/// backend every channel overrides.
#[test]
fn unread_and_unchecked_values_are_errors() {
    let base = "[mpsc_channels.a]\nx_buffer_size = 1\nx_retry_max_attempts = 3\nx_retry_max_backoff_ms = 5\n";
    let errs = errors(base, None);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    for line in [3, 4] {
        error_in(&errs, "base", ErrorKind::InvalidPolicy, line);
    }
    let base = "[mpsc_channels.a]\nb_buffer_size = 10\nb_backend = \"flume\"\n[mpsc_channels.overflow_policy]\nbackend = \"nats\"\n";
    let errs = errors(base, None);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(
        error_in(&errs, "base", ErrorKind::UnknownBackend, 5).message,
        "unknown backend `nats`"
    );
}

/// A file that is not UTF-8 says so, with the line of the first bad byte, instead of
/// "create the file".
#[test]
fn a_file_that_is_not_utf8_says_so_with_its_line() {
    let dir = tempdir("utf8");
    std::fs::create_dir_all(dir.join("base")).unwrap();
    std::fs::write(
        dir.join("base/mpsc_channels.toml"),
        b"[mpsc_channels.a]\nx_buffer_size = 1\n# caf\xe9\n",
    )
    .unwrap();
    let errs = Loader::from_dir(&dir)
        .variables(NO_VARS)
        .load()
        .unwrap_err()
        .0;
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(
        (errs[0].kind, errs[0].line, errs[0].fix.as_str()),
        (
            ErrorKind::InvalidToml,
            Some(3),
            "save the file as UTF-8 (TOML files must be UTF-8)"
        )
    );
    assert!(
        errs[0].message.contains("byte 0xE9 at column 6"),
        "{}",
        errs[0]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Whether `test` sizes a channel is read from the layer, not from the path: a directory
/// under `/srv/environments/` still gets the advice.
#[test]
fn the_test_override_advice_does_not_read_the_path() {
    let dir = tempdir("advice").join("environments").join("cfg");
    write_files(
        &dir,
        &[
            (
                "base/mpsc_channels.toml",
                "[mpsc_channels.a]\nx_buffer_size = 100\ny_buffer_size = 100\n",
            ),
            (
                "environments/test/mpsc_channels.toml",
                "[mpsc_channels.a]\nx_buffer_size = 10\n",
            ),
        ],
    );
    let config = Loader::from_dir(&dir)
        .environment("test")
        .variables(NO_VARS)
        .load()
        .unwrap();
    let advice: Vec<(ErrorKind, &str)> = config
        .warnings
        .iter()
        .map(|w| (w.kind, w.key.as_str()))
        .collect();
    assert_eq!(
        advice,
        [(
            ErrorKind::MissingTestOverride,
            "mpsc_channels.a.y_buffer_size"
        )]
    );
    std::fs::remove_dir_all(dir.parent().unwrap().parent().unwrap()).unwrap();
}

/// The guide's rule 5 when `test` gives no sizes at all: a directory with no `test`
/// environment, and one whose `test` layer does not load, each get one warning saying so
/// (and loading still succeeds: it is advice).
#[test]
fn a_missing_or_broken_test_environment_is_advised() {
    for (name, test_layer, says) in [
        ("no-test", None, "there is no `test` environment"),
        (
            "broken-test",
            Some("[mpsc_channels.a]\nx_buffer_size = \"big\"\n"),
            "the `test` environment does not load",
        ),
    ] {
        let dir = tempdir(name);
        let mut files = vec![
            (
                "base/mpsc_channels.toml",
                "[mpsc_channels.a]\nx_buffer_size = 100\n",
            ),
            (
                "environments/production/mpsc_channels.toml",
                "[mpsc_channels.a]\nx_buffer_size = 200\n",
            ),
        ];
        files.extend(test_layer.map(|text| ("environments/test/mpsc_channels.toml", text)));
        write_files(&dir, &files);
        let config = Loader::from_dir(&dir)
            .environment("production")
            .variables(NO_VARS)
            .load()
            .unwrap();
        let advice: Vec<(ErrorKind, &str)> = config
            .warnings
            .iter()
            .map(|w| (w.kind, w.message.as_str()))
            .collect();
        assert_eq!(advice.len(), 1, "{name}: {advice:?}");
        assert_eq!(advice[0].0, ErrorKind::MissingTestOverride, "{name}");
        assert!(advice[0].1.starts_with(says), "{name}: {advice:?}");
        assert!(
            config.warnings[0]
                .file
                .ends_with("environments/test/mpsc_channels.toml"),
            "{:?}",
            config.warnings[0]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// An environment is one directory under `environments/`; an empty `BOUNDFLOW_ENV` is unset.
#[test]
fn environment_names_are_plain_directory_names() {
    for env in ["../base", "/etc", ".old", ""] {
        let errs = Loader::from_dir(presets::dir())
            .environment(env)
            .variables(NO_VARS)
            .load()
            .unwrap_err()
            .0;
        assert_eq!(
            (errs.len(), errs[0].kind, errs[0].key.as_str()),
            (1, ErrorKind::InvalidEnvironment, ""),
            "{env}: {errs:#?}"
        );
    }
    let config = Loader::from_dir(presets::dir())
        .variables([("BOUNDFLOW_ENV", "")])
        .load()
        .unwrap();
    assert_eq!(config.environment, None);
}

/// A fresh directory for one test.
/// Writes each `(path under dir, text)`, making the directories.
fn write_files(dir: &std::path::Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        std::fs::create_dir_all(dir.join(path).parent().unwrap()).unwrap();
        std::fs::write(dir.join(path), text).unwrap();
    }
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("boundflow-config-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary text, and arbitrary variables: loading returns, never panics.
    #[test]
    fn loading_never_panics(text in "\\PC{0,200}", key in "[A-Z_]{0,30}", value in "\\PC{0,12}") {
        let var = format!("BOUNDFLOW__MPSC_CHANNELS__{key}");
        let _ = Loader::from_strs(&text, Some(&text)).variables([(var, value)]).load();
    }

    /// Documents shaped like channel configuration, with arbitrary keys and values.
    #[test]
    fn loading_shaped_documents_never_panics(
        tables in proptest::collection::vec("[a-z_]{1,8}(\\.[a-z_]{1,8}){0,2}", 1..4),
        keys in proptest::collection::vec("[a-z_]{1,20}", 1..6),
        values in proptest::collection::vec(prop_oneof![
            Just("0".to_owned()), Just("-1".to_owned()), Just("1.5".to_owned()),
            Just("\"block\"".to_owned()), Just("true".to_owned()), Just("[1, 2]".to_owned()),
            "[0-9]{1,20}",
        ], 1..6),
    ) {
        let mut doc = String::new();
        for (i, table) in tables.iter().enumerate() {
            doc.push_str(&format!("[mpsc_channels.{table}]\n"));
            for (key, value) in keys.iter().zip(values.iter().cycle().skip(i)) {
                doc.push_str(&format!("{key} = {value}\n{key}_buffer_size = {value}\n"));
            }
        }
        let _ = Loader::from_strs(&doc, None).variables(NO_VARS).load();
    }
}

/// A policy from the defaults is one mistake however many channels get it: one error at the
/// drop_policy line, naming those channels (and only those).
#[test]
fn a_bad_default_policy_is_one_error_naming_its_channels() {
    let base = "[mpsc_channels.a]\nx_buffer_size = 1\ny_buffer_size = 1\nz_buffer_size = 1\nz_timeout_ms = 5\n[mpsc_channels.overflow_policy]\ndrop_policy = \"timeout\"\n";
    let errs = errors(base, None);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let err = error_in(&errs, "base", ErrorKind::InvalidPolicy, 7);
    assert_eq!(
        (err.key.as_str(), err.message.as_str()),
        (
            "mpsc_channels.overflow_policy.drop_policy",
            "policy `timeout` needs a send timeout, and none is set for channels `a.x` and `a.y`, which get it from this default"
        )
    );
    // drop_oldest by default: the channels on a backend that cannot evict, by name.
    let base = "[mpsc_channels.a]\nx_buffer_size = 1\ny_buffer_size = 1\ny_backend = \"crossbeam\"\n[mpsc_channels.overflow_policy]\ndrop_policy = \"drop_oldest\"\n";
    let errs = Loader::from_strs(base, None)
        .variables(NO_VARS)
        .backends([
            backend("tokio", false, 100),
            backend("crossbeam", true, 100),
        ])
        .load()
        .unwrap_err()
        .0;
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let err = error_in(&errs, "base", ErrorKind::InvalidPolicy, 6);
    assert_eq!(
        (err.message.as_str(), err.fix.as_str()),
        (
            "backend `tokio` cannot evict from the sending side (drop_oldest), which this default gives to channel `a.x`",
            "give it backend crossbeam or its own policy, or set another drop_policy"
        )
    );
}

/// A default in the base is shared by every environment: one that only another environment's
/// channels read is no mistake here. One an overlay sets, that none of its channels reads, is.
#[test]
fn a_base_default_only_another_environment_reads_is_no_error() {
    let base = "[mpsc_channels.a]\nx_buffer_size = 1\n[mpsc_channels.overflow_policy]\nretry_max_attempts = 3\n";
    let config = Loader::from_strs(base, Some("[mpsc_channels.a]\nx_buffer_size = 2\n"))
        .variables(NO_VARS)
        .load()
        .unwrap_or_else(|err| panic!("{err}"));
    assert!(config.warnings.is_empty(), "{:#?}", config.warnings);
    // The base alone is the whole configuration: nothing else can read it.
    error_in(&errors(base, None), "base", ErrorKind::UnusedKey, 4);
    // An overlay's default that none of its channels reads.
    let errs = errors(
        "[mpsc_channels.a]\nx_buffer_size = 1\n",
        Some("[mpsc_channels.overflow_policy]\nretry_max_backoff_ms = 30\n"),
    );
    let found: Vec<_> = errs
        .iter()
        .map(|e| (e.kind, e.file.as_str(), e.line, e.key.as_str()))
        .collect();
    assert_eq!(
        found,
        [(
            ErrorKind::UnusedKey,
            "overlay/mpsc_channels.toml",
            Some(2),
            "mpsc_channels.overflow_policy.retry_max_backoff_ms"
        )]
    );
    // A variable's too.
    let errs = Loader::from_strs("[mpsc_channels.a]\nx_buffer_size = 1\n", None)
        .variables([(
            "BOUNDFLOW__MPSC_CHANNELS__OVERFLOW_POLICY__SEND_TIMEOUT_MS",
            "5",
        )])
        .load()
        .unwrap_err()
        .0;
    assert_eq!(
        (errs.len(), errs[0].kind, errs[0].file.as_str()),
        (
            1,
            ErrorKind::UnusedKey,
            "env:BOUNDFLOW__MPSC_CHANNELS__OVERFLOW_POLICY__SEND_TIMEOUT_MS"
        )
    );
}

/// An overlay that does not parse drops its channels' policies: the default they would have
/// read is not then reported as unused.
#[test]
fn an_overlay_syntax_error_makes_no_unused_default() {
    let base = "[mpsc_channels.a]\nx_buffer_size = 1\n";
    let overlay = "[mpsc_channels.a]\nx_overflow = \"retry\"\n[mpsc_channels.overflow_policy]\nretry_max_attempts = 3\nx = \"oops\n";
    let errs = errors(base, Some(overlay));
    let found: Vec<_> = errs.iter().map(|e| (e.kind, e.line)).collect();
    assert_eq!(found, [(ErrorKind::InvalidToml, Some(5))]);
    // The same with the default in the base and the retry channel in the broken overlay.
    let base = "[mpsc_channels.a]\nx_buffer_size = 1\n[mpsc_channels.overflow_policy]\nretry_max_attempts = 3\n";
    let errs = errors(base, Some("[mpsc_channels.a]\nx_overflow = \"retry\n"));
    let found: Vec<_> = errs.iter().map(|e| (e.kind, e.line)).collect();
    assert_eq!(found, [(ErrorKind::InvalidToml, Some(2))]);
}

/// An overlay may set a channel in either form, but not in both at once: a conflict, as in
/// the base, at the later line.
#[test]
fn an_overlay_setting_one_channel_in_both_forms_is_a_conflict() {
    let base = "[mpsc_channels.a]\nx_buffer_size = 1\n";
    let overlay = "[mpsc_channels.a.x]\nbuffer_size = 7\nbackend = \"flume\"\n\n[mpsc_channels.a]\nx_buffer_size = 5000\nx_backend = \"crossbeam\"\n";
    let errs = errors(base, Some(overlay));
    let found: Vec<_> = errs
        .iter()
        .map(|e| (e.kind, e.file.as_str(), e.line, e.key.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (
                ErrorKind::Conflict,
                "overlay/mpsc_channels.toml",
                Some(6),
                "mpsc_channels.a.x_buffer_size"
            ),
            (
                ErrorKind::Conflict,
                "overlay/mpsc_channels.toml",
                Some(7),
                "mpsc_channels.a.x_backend"
            ),
        ]
    );
    assert_eq!(
        errs[1].message,
        "channel `a.x`'s backend is set twice in one layer: here and at overlay/mpsc_channels.toml:3"
    );
    // The base may set a field in the channel-table form for a component's channel too, but
    // once.
    let errs = errors(
        "[mpsc_channels.a]\nx_buffer_size = 1\nx_backend = \"flume\"\n[mpsc_channels.a.x]\nbackend = \"crossbeam\"\n",
        None,
    );
    let found: Vec<_> = errs.iter().map(|e| (e.kind, e.line)).collect();
    assert_eq!(found, [(ErrorKind::Conflict, Some(5))]);
    // Two variables, one per form.
    let errs = Loader::from_strs(base, None)
        .variables([
            ("BOUNDFLOW__MPSC_CHANNELS__A__X_BUFFER_SIZE", "5"),
            ("BOUNDFLOW__MPSC_CHANNELS__A__X__BUFFER_SIZE", "6"),
        ])
        .load()
        .unwrap_err()
        .0;
    let found: Vec<_> = errs.iter().map(|e| (e.kind, e.fix.as_str())).collect();
    assert_eq!(
        found,
        [(ErrorKind::Conflict, "unset one of the two variables")]
    );
}

/// Contradicting thresholds are reported at a line someone wrote, and errors are listed
/// files first (by path, then line), then variables.
#[test]
fn thresholds_point_at_the_written_line_and_errors_are_in_file_order() {
    let base = "[mpsc_channels.a]\nx_buffer_size = 1\n[mpsc_channels.overflow_policy]\nlog_warning_threshold = 0.5\n";
    let errs = Loader::from_strs(base, Some("[mpsc_channels.a]\nx_buffer_size = 0\n"))
        .variables([("BOUNDFLOW__MPSC_CHANNELS__A__X_BACKEND", "nats")])
        .load()
        .unwrap_err()
        .0;
    let found: Vec<_> = errs
        .iter()
        .map(|e| (e.file.as_str(), e.line, e.key.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (
                "base/mpsc_channels.toml",
                Some(4),
                "mpsc_channels.overflow_policy.log_warning_threshold"
            ),
            (
                "overlay/mpsc_channels.toml",
                Some(2),
                "mpsc_channels.a.x_buffer_size"
            ),
            (
                "env:BOUNDFLOW__MPSC_CHANNELS__A__X_BACKEND",
                None,
                "mpsc_channels.a.x_backend"
            ),
        ]
    );
    // Both written: at recover_threshold, naming both lines.
    let base = "[mpsc_channels.a]\nx_buffer_size = 1\n[mpsc_channels.overflow_policy]\nlog_warning_threshold = 0.5\nrecover_threshold = 0.7\n";
    let err = error_in(&errors(base, None), "base", ErrorKind::InvalidValue, 5).clone();
    assert_eq!(
        (err.key.as_str(), err.message.as_str()),
        (
            "mpsc_channels.overflow_policy.recover_threshold",
            "recover_threshold 0.7 (base/mpsc_channels.toml:5) is not below log_warning_threshold 0.5 (base/mpsc_channels.toml:4): a warned channel could never recover"
        )
    );
}
