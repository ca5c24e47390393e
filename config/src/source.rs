//! Where a resolved value came from.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

/// The source of one resolved value, rendered as `"<path>:<line>"`, `"env:<VARIABLE>"`,
/// `"default"` or `"code"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub enum Source {
    /// A line of a TOML file (or of a string loaded under that name).
    File {
        /// The file's path as given to the loader.
        path: Arc<str>,
        /// 1-based line of the key.
        line: usize,
    },
    /// An environment variable, named exactly as set.
    Env {
        /// The variable's name.
        variable: String,
    },
    /// boundflow's built-in default.
    Default,
    /// Set in code, on the loader.
    Code,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File { path, line } => write!(f, "{path}:{line}"),
            Source::Env { variable } => write!(f, "env:{variable}"),
            Source::Default => f.write_str("default"),
            Source::Code => f.write_str("code"),
        }
    }
}

impl From<Source> for String {
    fn from(source: Source) -> String {
        source.to_string()
    }
}

impl Source {
    /// Whether this is a file line (base or overlay).
    pub fn is_file(&self) -> bool {
        matches!(self, Source::File { .. })
    }
}

/// A resolved value and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sourced<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub source: Source,
}

impl<T> Sourced<T> {
    pub(crate) fn new(value: T, source: Source) -> Self {
        Sourced { value, source }
    }

    pub(crate) fn default(value: T) -> Self {
        Sourced {
            value,
            source: Source::Default,
        }
    }
}
