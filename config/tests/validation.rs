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
        "base/mpsc_channels.toml:2: a.x.buffer_size: 0 is out of range — use a whole number of at least 1"
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
    let write = |path: &str, text: &str| {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "base/mpsc_channels.toml",
        "[mpsc_channels.a]\nx_buffer_size = 100\ny_buffer_size = 100\n",
    );
    write(
        "environments/test/mpsc_channels.toml",
        "[mpsc_channels.a]\nx_buffer_size = 500\n",
    );
    write(
        "environments/production/mpsc_channels.toml",
        "[mpsc_channels.a]\nx_buffer_size = 200\n",
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
        kinds.contains(&(ErrorKind::MissingTestOverride, "a.y.buffer_size")),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&(ErrorKind::TestAboveProduction, "a.x.buffer_size")),
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
