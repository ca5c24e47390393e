//! Configuration errors: each names the file, line, key and the fix.

use std::fmt;

use serde::Serialize;

/// What kind of mistake a [`ConfigError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// A file could not be read.
    Io,
    /// Not valid TOML.
    InvalidToml,
    /// A key boundflow does not know.
    UnknownKey,
    /// A value of the wrong type or out of range.
    InvalidValue,
    /// A key names a channel that no buffer size in the base defines: in an overlay, variable
    /// or code override, or in the base itself (a misspelt purpose, a table without
    /// `buffer_size`).
    UnknownChannel,
    /// A backend that does not exist or is not compiled in.
    UnknownBackend,
    /// A policy the channel's backend cannot apply, or that lacks what it needs.
    InvalidPolicy,
    /// The base directory, or the selected environment's directory, is missing.
    MissingLayer,
    /// An environment name that is no plain directory name under `environments/` (empty, a
    /// path, hidden, or not UTF-8).
    InvalidEnvironment,
    /// A table outside `[mpsc_channels]` (the guide's anti-pattern 5: a missing prefix).
    WrongPrefix,
    /// A table that is both a channel and a component, or a channel defined twice.
    Conflict,
    /// A defaults key that no channel reads.
    UnusedKey,
    /// Advice: a channel the `test` environment does not size (or no `test` environment that
    /// loads at all: the warning then names no key).
    MissingTestOverride,
    /// Advice: a channel larger in `test` than in `production`.
    TestAboveProduction,
    /// Advice: a later layer (an overlay, a variable) gave a channel a policy that does not
    /// read a value it inherits from an earlier layer (the base's send timeout or retry
    /// settings), so that value is ignored.
    IgnoredSetting,
}

/// One configuration mistake (or, in [`Config::warnings`](crate::Config::warnings), one piece
/// of advice), with where it is and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigError {
    /// What kind of mistake.
    pub kind: ErrorKind,
    /// The file (or `env:<VARIABLE>`, or `code`) it is in.
    pub file: String,
    /// The 1-based line, where there is one.
    pub line: Option<usize>,
    /// The key path, e.g. `mpsc_channels.worker.step_processor.execution_request_buffer_size`.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub fix: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: ", self.file)?,
            None => write!(f, "{}: ", self.file)?,
        }
        // A file that cannot be read, or a syntax error on no key, has no key to show.
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        write!(f, "{} — {}", self.message, self.fix)
    }
}

impl std::error::Error for ConfigError {}

/// Every mistake found in one load (a load reports them all at once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, err) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{err}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
