//! Tracing set-up: human-readable on a terminal, JSON for log collectors.

use tracing_subscriber::EnvFilter;

use crate::settings::LogSettings;

/// Installs the global subscriber once; later calls (tests, embedded services) are no-ops.
pub fn init(settings: &LogSettings) {
    let filter =
        EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(&settings.filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if settings.format == "json" {
        builder.json().try_init()
    } else {
        builder.compact().try_init()
    };
}
