//! The loader: which layers to read, in which order, and the values set in code.

use std::path::{Path, PathBuf};

use boundflow_core::WaitStrategy;

use crate::classify::{Layer, Layers};
use crate::error::{ConfigError, ConfigErrors, ErrorKind};
use crate::layer::{Value, key_at, parse_toml, parse_variables};
use crate::resolve::{BackendInfo, ChannelSettings, Config, KNOWN_BACKENDS};
use crate::source::Source;
use crate::validate::located;

/// The default name of the file in `base/` and `environments/<env>/`.
pub const DEFAULT_FILE_NAME: &str = "mpsc_channels.toml";
/// The default prefix of environment variables (`BOUNDFLOW__MPSC_CHANNELS__…`).
pub const DEFAULT_ENV_PREFIX: &str = "BOUNDFLOW";

/// Where the TOML layers come from.
#[derive(Debug, Clone)]
enum Files {
    Dir(PathBuf),
    Strings {
        base: (String, String),
        overlay: Option<(String, String)>,
    },
}

/// Loads a configuration: built-in defaults < base < environment overlay < environment
/// variables < values set in code.
///
/// ```
/// use boundflow_config::{Loader, presets};
///
/// let config = Loader::from_strs(presets::BASE, Some(presets::PRODUCTION))
///     .variables([("BOUNDFLOW__MPSC_CHANNELS__WORKER__STEP_PROCESSOR__RESULT_BUFFER_SIZE", "250")])
///     .load()
///     .unwrap();
/// let result = config.channel("worker.step_processor.result").unwrap();
/// assert_eq!(result.capacity.value, 250);
/// assert_eq!(
///     result.capacity.source.to_string(),
///     "env:BOUNDFLOW__MPSC_CHANNELS__WORKER__STEP_PROCESSOR__RESULT_BUFFER_SIZE"
/// );
/// ```
#[derive(Debug, Clone)]
#[must_use = "a loader does nothing until `load` is called"]
pub struct Loader {
    files: Files,
    file_name: String,
    environment: Option<String>,
    env_prefix: String,
    /// `None`: read the process's environment.
    variables: Option<Vec<(String, String)>>,
    backends: Option<Vec<BackendInfo>>,
    code: Vec<(String, &'static str, Value)>,
    lenient: bool,
    /// Whether to compare environments for advice (off for the loads that advice makes).
    advise: bool,
}

impl Loader {
    fn new(files: Files) -> Self {
        Loader {
            files,
            file_name: DEFAULT_FILE_NAME.to_owned(),
            environment: None,
            env_prefix: DEFAULT_ENV_PREFIX.to_owned(),
            variables: None,
            backends: None,
            code: Vec::new(),
            lenient: false,
            advise: true,
        }
    }

    /// Reads `<dir>/base/<file>` and, for the environment, `<dir>/environments/<env>/<file>`.
    pub fn from_dir(dir: impl AsRef<Path>) -> Self {
        Loader::new(Files::Dir(dir.as_ref().to_owned()))
    }

    /// Reads the base and an optional overlay from strings (named `base/mpsc_channels.toml` and
    /// `overlay/mpsc_channels.toml` in sources): for tests and embedded defaults.
    pub fn from_strs(base: &str, overlay: Option<&str>) -> Self {
        Loader::new(Files::Strings {
            base: (format!("base/{DEFAULT_FILE_NAME}"), base.to_owned()),
            overlay: overlay.map(|o| (format!("overlay/{DEFAULT_FILE_NAME}"), o.to_owned())),
        })
    }

    /// The environment whose overlay to read (default: `BOUNDFLOW_ENV`, else none).
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// The file name in `base/` and `environments/<env>/` (default `mpsc_channels.toml`).
    pub fn file_name(mut self, name: impl Into<String>) -> Self {
        self.file_name = name.into();
        self
    }

    /// The prefix of the variables read (default `BOUNDFLOW`).
    pub fn env_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.env_prefix = prefix.into();
        self
    }

    /// Reads these variables instead of the process's environment.
    pub fn variables<K: Into<String>, V: Into<String>>(
        mut self,
        variables: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.variables = Some(
            variables
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        self
    }

    /// The backends compiled into the binary (the facade passes its own); default: all four,
    /// as if every feature were on.
    pub fn backends(mut self, backends: impl IntoIterator<Item = BackendInfo>) -> Self {
        self.backends = Some(backends.into_iter().collect());
        self
    }

    /// Lenient mode: unknown keys become warnings ([`Config::warnings`]) instead of errors,
    /// for rolling a newer configuration out to an older binary. Never the default.
    pub fn lenient(mut self, lenient: bool) -> Self {
        self.lenient = lenient;
        self
    }

    fn set(mut self, channel: &str, key: &'static str, value: Value) -> Self {
        self.code.push((channel.to_owned(), key, value));
        self
    }

    /// Sets a channel's capacity in code (the highest precedence).
    pub fn set_capacity(self, channel: &str, capacity: usize) -> Self {
        self.set(channel, "buffer_size", whole_number(capacity))
    }

    /// Sets a channel's backend in code.
    pub fn set_backend(self, channel: &str, backend: &str) -> Self {
        self.set(channel, "backend", Value::String(backend.to_owned()))
    }

    /// Sets a channel's overflow policy (by name) in code.
    pub fn set_overflow(self, channel: &str, policy: &str) -> Self {
        self.set(channel, "overflow", Value::String(policy.to_owned()))
    }

    /// Sets a channel's send timeout in code.
    pub fn set_send_timeout_ms(self, channel: &str, millis: u64) -> Self {
        self.set(channel, "send_timeout_ms", whole_number(millis))
    }

    /// Sets a channel's wait strategy in code.
    pub fn set_wait_strategy(self, channel: &str, strategy: WaitStrategy) -> Self {
        self.set(
            channel,
            "wait_strategy",
            Value::String(strategy.to_string()),
        )
    }

    fn variable_list(&self) -> Vec<(String, String)> {
        match &self.variables {
            Some(list) => list.clone(),
            None => std::env::vars().collect(),
        }
    }

    /// Loads and resolves every layer.
    ///
    /// # Errors
    /// Every mistake found, each with file, line, key and fix.
    pub fn load(&self) -> Result<Config, ConfigErrors> {
        let variables = self.variable_list();
        let environment = self.environment.clone().or_else(|| {
            variables
                .iter()
                .find(|(k, _)| k == "BOUNDFLOW_ENV")
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        });
        if let Some(env) = &environment {
            if let Err(error) = self.check_environment(env) {
                return Err(ConfigErrors(vec![error]));
            }
        }
        let (base, overlay) = self.read_files(environment.as_deref());
        let mut layers = Layers {
            lenient: self.lenient,
            ..Layers::default()
        };
        // A layer that cannot be read or parsed is one error; the others are still read, but
        // without a base no key can be judged to name an undefined channel.
        // Its error goes with the layers' own, so that resolving knows a layer is missing.
        match base.and_then(|(path, text)| Ok((parse_toml(&path, &text)?, path))) {
            Ok((parsed, path)) => layers.add_base(&path, parsed),
            Err(err) => layers.errors.push(err),
        }
        if let Some(overlay) = overlay {
            match overlay.and_then(|(path, text)| parse_toml(&path, &text)) {
                Ok(parsed) => layers.add_overlay_file(parsed),
                Err(err) => layers.errors.push(err),
            }
        }
        layers.add_layer(
            parse_variables(
                &self.env_prefix,
                variables.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            ),
            Layer::Variables,
        );
        for (channel, key, value) in &self.code {
            layers.add_code(channel, key, value.clone());
        }
        let backends = self.backends.clone().unwrap_or_else(all_backends);
        match layers.resolve(environment, &backends) {
            Ok(mut config) => {
                if self.advise {
                    self.advise_on_environments(&mut config);
                }
                Ok(config)
            }
            Err(errors) => Err(in_file_order(errors)),
        }
    }

    /// An environment that [`environment_name`] refuses, as a load error.
    fn check_environment(&self, env: &str) -> Result<(), ConfigError> {
        let problem = environment_name(env).err();
        let Some(problem) = problem else {
            return Ok(());
        };
        let file = match &self.files {
            Files::Dir(dir) => dir.join("environments").display().to_string(),
            Files::Strings { .. } => "environment".to_owned(),
        };
        Err(ConfigError {
            kind: ErrorKind::InvalidEnvironment,
            file,
            line: None,
            // No key names an environment: it is the loader's argument or BOUNDFLOW_ENV.
            key: String::new(),
            message: problem,
            fix: ENVIRONMENT_FIX.to_owned(),
        })
    }

    /// The base file and the environment's overlay, each as (name, text) or why it cannot be
    /// read.
    #[allow(clippy::type_complexity)]
    fn read_files(
        &self,
        environment: Option<&str>,
    ) -> (
        Result<(String, String), ConfigError>,
        Option<Result<(String, String), ConfigError>>,
    ) {
        let (base_name, overlay_name, dir) = match &self.files {
            Files::Strings { base, overlay } => {
                return (Ok(base.clone()), overlay.clone().map(Ok));
            }
            Files::Dir(dir) => (
                dir.join("base").join(&self.file_name),
                environment.map(|env| dir.join("environments").join(env).join(&self.file_name)),
                dir,
            ),
        };
        let base = read(
            &base_name,
            "base configuration",
            format!(
                "create {} (the guide's layout: base/ and environments/<env>/ under {})",
                base_name.display(),
                dir.display()
            ),
        );
        let overlay = overlay_name.zip(environment).map(|(path, env)| {
            read(
                &path,
                &format!("overlay of environment `{env}`"),
                format!(
                    "create {}, or choose an environment that exists under {}",
                    path.display(),
                    dir.join("environments").display()
                ),
            )
        });
        (base, overlay)
    }
}

/// Errors as a compiler lists them: the files' first, by path, then line (those of no line
/// first); then the variables', by name; then values set in code and built-in defaults.
fn in_file_order(mut errors: Vec<ConfigError>) -> ConfigErrors {
    let rank = |e: &ConfigError| match e.file.as_str() {
        file if file.starts_with("env:") => 1,
        "code" | "default" => 2,
        _ => 0,
    };
    errors.sort_by(|a, b| (rank(a), &a.file, a.line).cmp(&(rank(b), &b.file, b.line)));
    ConfigErrors(errors)
}

/// What to do about an environment name [`environment_name`] refuses.
const ENVIRONMENT_FIX: &str =
    "name one directory under environments/ (e.g. production), or none to load the base alone";

/// Checks that `name` can name an environment: one directory under `environments/`, so not
/// empty, not a path, not hidden (`environments/.old` is no environment).
///
/// # Errors
/// What is wrong with it, e.g. "environment `../base` is a path, not a directory name".
pub fn environment_name(name: &str) -> Result<(), String> {
    let problem = if name.is_empty() {
        "is empty"
    } else if name.contains(['/', '\\']) || name == ".." {
        "is a path, not a directory name"
    } else if name.starts_with('.') {
        "names a hidden directory"
    } else {
        return Ok(());
    };
    Err(format!("environment `{name}` {problem}"))
}

/// Reads one layer's file as (name, text). `missing` is the fix when it does not exist; a file
/// that is not UTF-8 (TOML must be) is named with the line of its first bad byte.
fn read(path: &Path, what: &str, missing: String) -> Result<(String, String), ConfigError> {
    let name = path.display().to_string();
    let error = |kind, line, message, fix| ConfigError {
        kind,
        file: name.clone(),
        line,
        key: String::new(),
        message,
        fix,
    };
    let bytes = std::fs::read(path).map_err(|err| {
        let message = format!("cannot read the {what}: {err}");
        if err.kind() == std::io::ErrorKind::NotFound {
            error(ErrorKind::MissingLayer, None, message, missing)
        } else {
            let fix = format!("make {name} a file this process can read");
            error(ErrorKind::Io, None, message, fix)
        }
    })?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok((name, text)),
        Err(err) => {
            let bytes = err.as_bytes();
            let at = err.utf8_error().valid_up_to();
            let line_start = bytes[..at]
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |i| i + 1);
            let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
            let message = format!(
                "the {what} is not valid UTF-8: byte 0x{:02X} at column {}",
                bytes.get(at).copied().unwrap_or_default(),
                at - line_start + 1
            );
            let fix = "save the file as UTF-8 (TOML files must be UTF-8)".to_owned();
            Err(error(ErrorKind::InvalidToml, Some(line), message, fix))
        }
    }
}

impl Loader {
    /// The guide's advice, comparing environments present on disk: a channel `test` does not
    /// size, and a channel larger in `test` than in `production`.
    fn advise_on_environments(&self, config: &mut Config) {
        let Files::Dir(dir) = &self.files else {
            return;
        };
        let load = |env: &str| {
            let mut loader = Loader::from_dir(dir)
                .environment(env)
                .file_name(self.file_name.clone())
                .variables(Vec::<(String, String)>::new())
                .lenient(true);
            loader.backends = self.backends.clone();
            loader.advise = false;
            loader.load().ok()
        };
        let present = |env: &str| {
            dir.join("environments")
                .join(env)
                .join(&self.file_name)
                .is_file()
        };
        // Sized by the test layer itself, whatever the directory's path holds.
        let test_overlay = dir
            .join("environments")
            .join("test")
            .join(&self.file_name)
            .display()
            .to_string();
        let test = if present("test") { load("test") } else { None };
        let production = if present("production") {
            load("production")
        } else {
            None
        };
        let Some(test) = test else {
            // The guide's rule 5: every configuration has environment overrides, tests with
            // small buffers. Without a loadable `test` layer no channel has them.
            let (message, fix) = if present("test") {
                (
                    "the `test` environment does not load, so no channel's test size is known",
                    "run `boundflow check --env test` and fix what it reports",
                )
            } else {
                (
                    "there is no `test` environment: tests run with the base's (production-sized) buffers",
                    "add environments/test with smaller sizes, so tests see backpressure early",
                )
            };
            config.warnings.push(ConfigError {
                kind: ErrorKind::MissingTestOverride,
                file: test_overlay,
                line: None,
                key: String::new(),
                message: message.to_owned(),
                fix: fix.to_owned(),
            });
            return;
        };
        for channel in &test.channels {
            let overridden = matches!(&channel.capacity.source, Source::File { path, .. } if **path == *test_overlay);
            if !overridden {
                config.warnings.push(located(
                    ErrorKind::MissingTestOverride,
                    &channel.capacity.source,
                    &capacity_key(channel),
                    format!(
                        "channel `{}` has no override in the `test` environment",
                        channel.name
                    ),
                    "size it smaller in environments/test so tests see backpressure early"
                        .to_owned(),
                ));
            }
            let larger = production
                .as_ref()
                .and_then(|p| p.channel(&channel.name))
                .filter(|p| channel.capacity.value > p.capacity.value);
            if let Some(prod) = larger {
                config.warnings.push(located(
                    ErrorKind::TestAboveProduction,
                    &channel.capacity.source,
                    &capacity_key(channel),
                    format!(
                        "channel `{}` holds {} in test but {} in production ({})",
                        channel.name,
                        channel.capacity.value,
                        prod.capacity.value,
                        prod.capacity.source
                    ),
                    "make test no larger than production".to_owned(),
                ));
            }
        }
    }
}

/// The key that sized `channel`, as written at its file line (what errors name), else
/// `<channel>.buffer_size`.
fn capacity_key(channel: &ChannelSettings) -> String {
    if let Source::File { path, line } = &channel.capacity.source {
        if let Ok(text) = std::fs::read_to_string(&**path) {
            let (key, _) = key_at(&text, *line);
            if !key.is_empty() {
                return key;
            }
        }
    }
    format!("{}.buffer_size", channel.name)
}

/// A number set in code, as the value a file would hold.
fn whole_number(n: impl TryInto<i64>) -> Value {
    n.try_into()
        .map_or(Value::Other("too large"), Value::Integer)
}

/// Every backend, as if all features were on (the facade passes the real list).
fn all_backends() -> Vec<BackendInfo> {
    KNOWN_BACKENDS
        .iter()
        .map(|(ident, feature)| BackendInfo {
            ident,
            cargo_feature: feature,
            supports_drop_oldest: *ident != "tokio",
            max_capacity: usize::MAX,
        })
        .collect()
}
