//! The shipped configurations in the guide's layout (`config/presets/`): the base and one
//! overlay per environment, as strings for tests, examples and embedded defaults. The same
//! files are on disk for [`Loader::from_dir`](crate::Loader::from_dir).

/// `base/mpsc_channels.toml`: every channel and the defaults.
pub const BASE: &str = include_str!("../presets/base/mpsc_channels.toml");
/// `environments/test/mpsc_channels.toml`: small buffers.
pub const TEST: &str = include_str!("../presets/environments/test/mpsc_channels.toml");
/// `environments/development/mpsc_channels.toml`.
pub const DEVELOPMENT: &str =
    include_str!("../presets/environments/development/mpsc_channels.toml");
/// `environments/production/mpsc_channels.toml`: sized for peak load.
pub const PRODUCTION: &str = include_str!("../presets/environments/production/mpsc_channels.toml");
/// `environments/demo/mpsc_channels.toml`: several backends and policies, small channels.
pub const DEMO: &str = include_str!("../presets/environments/demo/mpsc_channels.toml");

/// Every environment shipped, with its overlay.
pub const ENVIRONMENTS: [(&str, &str); 4] = [
    ("test", TEST),
    ("development", DEVELOPMENT),
    ("production", PRODUCTION),
    ("demo", DEMO),
];

/// The presets directory in this source tree (for `Loader::from_dir` in tests and examples).
pub fn dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("presets")
}
