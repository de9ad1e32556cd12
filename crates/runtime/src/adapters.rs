//! The adapters a process needs, built once from settings and passed down explicitly.

use std::sync::Arc;

use anyhow::Context as _;
use lectern_core::{Embedder, VectorIndex};
use lectern_embed::{EmbedderOptions, FastEmbedder};
use lectern_store::Store;
use lectern_vector::{Bm25, EdgeIndex, SearchTuning, ServerIndex};
use uuid::Uuid;

use crate::app::{Application, Configure};
use crate::http::{Readiness, ReadyCheck};
use crate::{Settings, telemetry};

/// Every adapter of one Lectern process.
pub struct Context {
    pub settings: Settings,
    pub store: Store,
    pub embedder: Arc<dyn Embedder>,
    pub index: Arc<dyn VectorIndex>,
    /// The secret with which the web app calls ingest and query for a user: the
    /// configured `server.service_token`, or (embedded shape, none configured) a random
    /// one that lives as long as the process.
    pub service_token: String,
    /// This process's own address once it listens (`http://127.0.0.1:PORT`): where the
    /// web app reaches ingest and query when they run in the same process.
    pub local_url: std::sync::OnceLock<String>,
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
        let tuning = SearchTuning {
            rrf_k: settings.index.rrf_k,
            ..SearchTuning::default()
        };
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
        let service_token =
            settings.server.service_token.clone().unwrap_or_else(|| {
                format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
            });
        Ok(Arc::new(Self {
            settings,
            store,
            embedder,
            index,
            service_token,
            local_url: std::sync::OnceLock::new(),
        }))
    }
}

/// Opens the language model the settings name: llama.cpp in this process, or a client of
/// an OpenAI-compatible server. `None` when no local model is configured (search works,
/// answers say that no model is set up).
pub fn open_llm(settings: &Settings) -> anyhow::Result<Option<Arc<dyn lectern_llm::Generator>>> {
    let l = &settings.llm;
    if l.backend == "openai" {
        let engine = lectern_llm::OpenAiEngine::new(lectern_llm::OpenAiOptions {
            base_url: l.base_url.clone().unwrap_or_default(),
            model: l.model.clone().unwrap_or_default(),
            api_key: l.api_key.clone(),
            context_length: l.context_length,
            timeout: std::time::Duration::from_secs(l.timeout_secs),
        })?;
        return Ok(Some(Arc::new(engine)));
    }
    let Some(path) = &l.model_path else {
        tracing::warn!(
            "no language model configured (llm.model_path): answers are disabled, search works"
        );
        return Ok(None);
    };
    let options = lectern_llm::LlamaOptions {
        model_path: path.clone(),
        context_length: l.context_length,
        parallel: l.parallel,
        threads: l.threads,
        batch_size: l.batch_size,
        gpu_layers: l.gpu_layers,
        main_gpu: l.main_gpu,
    };
    Ok(Some(Arc::new(lectern_llm::LlamaEngine::load(&options)?)))
}

impl Context {
    /// Binds the HTTP application of `services` on the settings' address and records the
    /// address this process answers on.
    pub fn application(
        self: &Arc<Self>,
        workers: usize,
        services: Vec<Configure>,
    ) -> std::io::Result<Application> {
        let app = Application::build(
            self.settings.server.bind,
            workers,
            self.readiness(),
            services,
        )?;
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
pub type ServiceEntry = (&'static str, fn(Arc<Context>) -> anyhow::Result<Configure>);

/// Runs the given services in one HTTP server on the context's bind address.
pub async fn serve(ctx: Arc<Context>, services: &[ServiceEntry]) -> anyhow::Result<()> {
    let routes = services
        .iter()
        .map(|(name, configure)| {
            configure(ctx.clone()).with_context(|| format!("could not start the {name} service"))
        })
        .collect::<anyhow::Result<_>>()?;
    let names: Vec<_> = services.iter().map(|(name, _)| *name).collect();
    let app = ctx.application(ctx.settings.server.workers, routes)?;
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
