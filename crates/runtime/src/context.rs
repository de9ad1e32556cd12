//! What every Lectern process holds: its settings, its store, the service token and the
//! address it answers on; and the `main` of a service binary.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use lectern_store::Store;
use uuid::Uuid;

use crate::app::{Application, Configure};
use crate::http::{Readiness, ReadyCheck};
use crate::limit::RateLimit;
use crate::{Settings, telemetry};

/// The shared part of one Lectern process. Each service adds the adapters it uses
/// (ingest: parsers, embedder, index; query: embedder, index, language model; web: the
/// page renderer), so a binary links and loads only what it runs.
pub struct Context {
    pub settings: Settings,
    pub store: Store,
    /// The secret with which the web app calls ingest and query for a user: the
    /// configured `server.service_token`, or (embedded shape, none configured) a random
    /// one that lives as long as the process.
    pub service_token: String,
    /// This process's own address once it listens (`http://127.0.0.1:PORT`): where the
    /// web app reaches ingest and query when they run in the same process.
    pub local_url: OnceLock<String>,
}

impl Context {
    /// Connects to the settings' database (creating the data dir of the embedded shape).
    pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
        if settings.database.url.is_none() {
            std::fs::create_dir_all(&settings.data_dir).with_context(|| {
                format!("cannot create the data dir {}", settings.data_dir.display())
            })?;
        }
        Ok(Store::connect(&settings.database_url()).await?)
    }

    /// Opens the store. With `migrate`, the schema is brought up to date (the embedded
    /// shape); otherwise a database with pending migrations is refused, since in the
    /// distributed shape a one-shot `lectern migrate` owns the schema.
    pub async fn open(settings: Settings, migrate: bool) -> anyhow::Result<Arc<Self>> {
        let store = Self::open_store(&settings).await?;
        if migrate {
            store.migrate().await?;
        } else {
            let pending = store.pending_migrations().await?;
            anyhow::ensure!(
                pending.is_empty(),
                "the database has {} pending migration(s) ({}); run `lectern migrate` first",
                pending.len(),
                pending.join(", ")
            );
        }
        let service_token = settings
            .server
            .service_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned())
            .unwrap_or_else(|| format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple()));
        Ok(Arc::new(Self {
            settings,
            store,
            service_token,
            local_url: OnceLock::new(),
        }))
    }

    /// Binds the HTTP application of `services` on the settings' address and records the
    /// address this process answers on.
    pub fn application(
        self: &Arc<Self>,
        workers: usize,
        services: Vec<Configure>,
    ) -> std::io::Result<Application> {
        let server = &self.settings.server;
        let limit = RateLimit::new(
            server.rate_limit_per_minute,
            server.rate_limit_burst,
            self.settings.web.trusted_proxies.clone(),
            self.service_token.clone(),
        );
        let app = Application::build(server.bind, workers, self.readiness(), limit, services)?;
        let host = match self.settings.server.bind.ip() {
            ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        let _ = self.local_url.set(format!("http://{host}:{}", app.port()));
        Ok(app)
    }

    /// What `/ready` checks: the database answers.
    pub fn readiness(self: &Arc<Self>) -> Readiness {
        let store = self.store.clone();
        let check: ReadyCheck = Arc::new(move || {
            let store = store.clone();
            Box::pin(async move { store.ping().await.map_err(|e| e.to_string()) })
        });
        Readiness::default().with("database", check)
    }

    /// Runs the given services' routes in one HTTP server on the settings' address.
    pub async fn serve(
        self: &Arc<Self>,
        services: Vec<(&'static str, Configure)>,
    ) -> anyhow::Result<()> {
        let names: Vec<_> = services.iter().map(|(name, _)| *name).collect();
        let routes = services.into_iter().map(|(_, routes)| routes).collect();
        let app = self.application(self.settings.server.workers, routes)?;
        tracing::info!(services = ?names, address = %self.settings.server.bind, port = app.port(), "Lectern is listening");
        app.run_until_stopped().await?;
        Ok(())
    }
}

/// The `main` of a service binary: settings from `LECTERN_CONFIG` and the environment,
/// telemetry, the store (whose schema must be migrated already), then `build` opens the
/// service's own adapters and returns its routes, which are served.
pub async fn run_service<F, Fut>(name: &'static str, build: F) -> anyhow::Result<()>
where
    F: FnOnce(Arc<Context>) -> Fut,
    Fut: Future<Output = anyhow::Result<Configure>>,
{
    let config = std::env::var_os("LECTERN_CONFIG").map(std::path::PathBuf::from);
    let settings = Settings::load(config.as_deref())?;
    telemetry::init(&settings.log);
    let ctx = Context::open(settings, false).await?;
    let routes = build(ctx.clone())
        .await
        .with_context(|| format!("could not start the {name} service"))?;
    ctx.serve(vec![(name, routes)]).await
}
