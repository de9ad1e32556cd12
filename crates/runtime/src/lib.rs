//! Start-up of Lectern's services: configuration, telemetry, the adapters built from
//! settings (store, embedder, vector index), and the HTTP shell every service shares.
//!
//! Services depend on this crate; it depends on no service. The key decision: a process
//! builds one [`Context`] (every adapter opened once, validated at start-up) and passes it
//! down explicitly; there are no global singletons besides the metrics registry.

mod adapters;
mod app;
pub mod auth;
pub mod http;
mod settings;
pub mod telemetry;

pub use adapters::{Context, ServiceEntry, open_llm, run_services, serve};
pub use app::{Application, Configure};
pub use auth::{Action, Caller};
pub use lectern_core::default_cache_dir;
pub use settings::{
    ConfigError, DatabaseSettings, EmbeddingSettings, IndexSettings, IngestSettings, LlmSettings,
    LogSettings, OidcSettings, QuerySettings, ServerSettings, Settings, WebSettings,
};
