//! The shell every Lectern process shares, and only that: settings (loaded once,
//! validated at start-up), telemetry, the HTTP application with its `/health`,
//! `/ready`, `/metrics`, error contract and Server-Sent Events response, and the worker
//! processes in which a service runs a job on untrusted input ([`worker`]: ingest parses
//! files there, the web app draws PDF pages there; each `main` dispatches to them first).
//!
//! Services depend on this crate; it depends on no service and on no engine (embedding,
//! index or language model): each service opens the adapters it uses itself, so the web
//! app links none of them. Authorisation lives in `lectern-auth`. The key decision: a
//! process builds one [`Context`] (settings, store, service token) and passes it down
//! explicitly; there are no global singletons besides the metrics registry and the worker
//! program that `main` records.

mod app;
mod context;
pub mod http;
mod limit;
mod settings;
pub mod telemetry;
pub mod worker;

pub use app::{Application, Configure};
pub use context::{Context, run_service};
pub use lectern_core::default_cache_dir;
pub use limit::RateLimit;
pub use settings::{
    ConfigError, DatabaseSettings, EmbeddingSettings, IndexSettings, IngestSettings, LlmSettings,
    LogSettings, OidcSettings, QuerySettings, ServerSettings, Settings, SmtpSettings, WebSettings,
};
