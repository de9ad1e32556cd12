//! The adapters a process needs, built once from settings and passed down explicitly.

use std::sync::Arc;

use anyhow::Context as _;
use lectern_core::{Embedder, VectorIndex};
use lectern_embed::{EmbedderOptions, FastEmbedder};
use lectern_store::Store;
use lectern_vector::{Bm25, EdgeIndex, SearchTuning, ServerIndex};

use crate::app::{Application, Configure};
use crate::http::{Readiness, ReadyCheck};
use crate::{Settings, telemetry};

/// Every adapter of one Lectern process.
pub struct Context {
    pub settings: Settings,
    pub store: Store,
    pub embedder: Arc<dyn Embedder>,
    pub index: Arc<dyn VectorIndex>,
}

impl Context {
    pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
        if settings.database.url.is_none() {
            std::fs::create_dir_all(&settings.data_dir).with_context(|| {
                format!("cannot create the data dir {}", settings.data_dir.display())
            })?;
        }
        Ok(Store::connect(&settings.database_url()).await?)
    }

    /// Opens the store, the embedding model and the vector index. With `migrate`, the
    /// schema is brought up to date (the embedded shape); otherwise a database with
    /// pending migrations is refused, since in the distributed shape a one-shot
    /// `lectern migrate` owns the schema.
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
        let embedder = Arc::new(open_embedder(&settings).await?);
        let model = embedder.model().clone();
        let bm25 = Bm25::new(Bm25::default_config())?;
        let tuning = SearchTuning::default();
        let index: Arc<dyn VectorIndex> = match &settings.index.qdrant_url {
            Some(url) => Arc::new(
                ServerIndex::open(
                    url,
                    settings.index.qdrant_api_key.clone(),
                    &settings.index.collection,
                    model,
                    bm25,
                    tuning,
                )
                .await?,
            ),
            None => {
                let dir = settings.index_dir();
                Arc::new(
                    tokio::task::spawn_blocking(move || EdgeIndex::open(&dir, model, bm25, tuning))
                        .await??,
                )
            }
        };
        Ok(Arc::new(Self {
            settings,
            store,
            embedder,
            index,
        }))
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
}

async fn open_embedder(settings: &Settings) -> anyhow::Result<FastEmbedder> {
    let e = &settings.embedding;
    let options = EmbedderOptions {
        model_id: e.model_id.clone(),
        model_dir: e.model_dir.clone(),
        ort_dylib: e.ort_dylib.clone(),
        batch_size: e.batch_size,
        max_length: e.max_length,
        threads: e.threads,
    };
    let (download, repo) = (e.download, e.hub_repo.clone());
    let embedder = tokio::task::spawn_blocking(move || {
        if download && !options.model_dir.join("model.onnx").is_file() {
            lectern_embed::download_model(&repo, &options.model_dir, None)?;
        }
        FastEmbedder::load(&options)
    })
    .await??;
    Ok(embedder)
}

/// A service's entry: its name and how to mount its routes on a context.
pub type ServiceEntry = (&'static str, fn(Arc<Context>) -> Configure);

/// Runs the given services in one HTTP server on the context's bind address.
pub async fn serve(ctx: Arc<Context>, services: &[ServiceEntry]) -> anyhow::Result<()> {
    let routes = services
        .iter()
        .map(|(_, configure)| configure(ctx.clone()))
        .collect();
    let names: Vec<_> = services.iter().map(|(name, _)| *name).collect();
    let app = Application::build(
        ctx.settings.server.bind,
        ctx.settings.server.workers,
        ctx.readiness(),
        routes,
    )?;
    tracing::info!(services = ?names, address = %ctx.settings.server.bind, port = app.port(), "Lectern is listening");
    app.run_until_stopped().await?;
    Ok(())
}

/// The `main` of a service binary: settings from `LECTERN_CONFIG` and the environment,
/// telemetry, adapters (the schema must be migrated already), then serve.
pub async fn run_services(services: &[ServiceEntry]) -> anyhow::Result<()> {
    let config = std::env::var_os("LECTERN_CONFIG").map(std::path::PathBuf::from);
    let settings = Settings::load(config.as_deref())?;
    telemetry::init(&settings.log);
    let ctx = Context::open(settings, false).await?;
    serve(ctx, services).await
}
