//! The shell every Lectern process shares, and only that: settings (loaded once,
//! validated at start-up), telemetry, and the HTTP application with its `/health`,
//! `/ready`, `/metrics`, error contract and Server-Sent Events response.
//!
//! Services depend on this crate; it depends on no service and on no engine (embedding,
//! index or language model): each service opens the adapters it uses itself, so the web
//! app links none of them. Authorisation lives in `lectern-auth`. The key decision: a
//! process builds one [`Context`] (settings, store, service token) and passes it down
//! explicitly; there are no global singletons besides the metrics registry.

mod app;
mod context;
pub mod http;
mod limit;
mod settings;
pub mod telemetry;

pub use app::{Application, Configure};
pub use context::{Context, run_service};
pub use lectern_core::default_cache_dir;
pub use limit::RateLimit;
pub use settings::{
    ConfigError, DatabaseSettings, EmbeddingSettings, IndexSettings, IngestSettings, LlmSettings,
    LogSettings, OidcSettings, QuerySettings, ServerSettings, Settings, SmtpSettings, WebSettings,
};
