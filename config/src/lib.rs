//! boundflow-config: channel sizes and policies from TOML, in the layout of the MPSC channel
//! guide, layered per environment, every value with its source.
//!
//! ```text
//! <dir>/base/mpsc_channels.toml                  every channel, and the defaults
//! <dir>/environments/<env>/mpsc_channels.toml    test, development, production, ...
//! ```
//!
//! ```toml
//! [mpsc_channels.worker.step_processor]        # a component table: <purpose>_* keys
//! execution_request_buffer_size = 1000         # channel "worker.step_processor.execution_request"
//! execution_request_timeout_ms = 1000          # its send timeout (so its policy is `timeout`)
//!
//! [mpsc_channels.task_readiness.event_channel] # a channel table: it has `buffer_size`
//! buffer_size = 1000
//! backend = "flume"
//!
//! [mpsc_channels.overflow_policy]              # reserved: defaults for every channel
//! drop_policy = "block"
//! ```
//!
//! # Precedence
//! Built-in defaults < base < environment overlay < environment variables
//! (`BOUNDFLOW__MPSC_CHANNELS__<TABLE>__…__<KEY>`, e.g.
//! `BOUNDFLOW__MPSC_CHANNELS__WORKER__STEP_PROCESSOR__EXECUTION_REQUEST_BUFFER_SIZE=250`) <
//! values set in code. An overlay, variable or code value may only change channels the base
//! defines; a variable's segments match the base's names whatever their case. The environment is the loader's argument, else `BOUNDFLOW_ENV`.
//!
//! # Which policy a channel gets
//! Its own `overflow` if set; else `timeout` if it sets its own timeout (in any layer); else the
//! defaults' `drop_policy`; else `block`. The defaults' `send_timeout_ms` is read by channels
//! whose policy is `timeout` or `retry`. A policy chosen in a later layer than a channel's own
//! timeout or `retry_*` values wins: a value it does not read is ignored, with a warning at the
//! later layer's line ([`ErrorKind::IgnoredSetting`]), and must still be valid; in the same
//! layer (or a later one), a value the policy does not read is an error.
//!
//! # Provenance
//! Every resolved value is a [`Sourced`]: its [`Source`] renders as `"<path>:<line>"`,
//! `"env:<VARIABLE>"`, `"default"` or `"code"`, and [`Config::shadowed`] lists the file values
//! that variables replaced.
//!
//! This crate depends on boundflow-core only; the facade tells it which backends are compiled
//! in ([`BackendInfo`]).
#![forbid(unsafe_code)]

mod checks;
mod classify;
mod error;
mod layer;
mod loader;
pub mod presets;
mod resolve;
mod source;
mod validate;

pub use error::{ConfigError, ConfigErrors, ErrorKind};
pub use loader::{DEFAULT_ENV_PREFIX, DEFAULT_FILE_NAME, Loader, environment_name};
pub use resolve::{
    BackendInfo, ChannelSettings, Config, Defaults, KNOWN_BACKENDS, POLICY_NAMES, Shadowed,
};
pub use source::{Source, Sourced};
