//! Tracing set-up: human-readable on a terminal, JSON for log collectors.

use tracing_subscriber::EnvFilter;

use crate::settings::LogSettings;

/// llama.cpp reports every tensor and buffer at info level, and Qdrant's engine warns on
/// each shard operation that its (server-only) feature flags are unset: those are kept
/// out of the log unless the filter names them (`llama-cpp-2=info`).
fn with_quiet_dependencies(filter: &str) -> String {
    let mut out = filter.to_owned();
    if !filter.contains("llama") {
        out.push_str(",llama-cpp-2=warn");
    }
    if !filter.contains("qdrant_edge") {
        out.push_str(",qdrant_edge::common::flags=error");
    }
    out
}

/// Installs the global subscriber once; later calls (tests, embedded services) are no-ops.
pub fn init(settings: &LogSettings) {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| settings.filter.clone());
    let filter = EnvFilter::try_new(with_quiet_dependencies(&filter))
        .unwrap_or_else(|_| EnvFilter::new(with_quiet_dependencies("info")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if settings.format == "json" {
        builder.json().try_init()
    } else {
        builder.compact().try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noisy_dependencies_are_quiet_unless_asked_for() {
        assert_eq!(
            with_quiet_dependencies("info"),
            "info,llama-cpp-2=warn,qdrant_edge::common::flags=error"
        );
        assert_eq!(
            with_quiet_dependencies("debug,llama-cpp-2=info,qdrant_edge=debug"),
            "debug,llama-cpp-2=info,qdrant_edge=debug"
        );
        assert!(EnvFilter::try_new(with_quiet_dependencies("lectern=debug")).is_ok());
    }
}
