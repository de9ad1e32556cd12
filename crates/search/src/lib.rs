//! The two adapters that the ingest and query services share, opened from settings: the
//! embedding model (ONNX Runtime) and the vector index (Qdrant's engine in process, or a
//! Qdrant server), which records the model's id and dimension and refuses another.
//!
//! Only the services that embed and search depend on this crate; the web app does not,
//! so it links neither ONNX Runtime nor Qdrant. One process opens them once and hands
//! the same [`SearchAdapters`] to every service it runs (the embedded index is one shard
//! per directory per process).

use std::sync::Arc;

use lectern_core::{Embedder, VectorIndex};
use lectern_embed::{E5Embedder, EmbedderOptions, FastEmbedder};
use lectern_llm::GgufEmbedder;
use lectern_runtime::Settings;
use lectern_vector::text::Language;
use lectern_vector::{Bm25, EdgeIndex, SearchTuning, ServerIndex};

/// The embedding model and the vector index of one process.
#[derive(Clone)]
pub struct SearchAdapters {
    pub embedder: Arc<dyn Embedder>,
    pub index: Arc<dyn VectorIndex>,
}

impl SearchAdapters {
    /// Loads the embedding model (downloading it first when `embedding.download` is set
    /// and it is missing), then opens the index for that model.
    pub async fn open(settings: &Settings) -> anyhow::Result<Self> {
        let embedder = open_embedder(settings).await?;
        let index = open_index(settings, embedder.as_ref()).await?;
        Ok(Self { embedder, index })
    }
}

async fn open_embedder(settings: &Settings) -> anyhow::Result<Arc<dyn Embedder>> {
    let e = settings.embedding.clone();
    // Loading reads the model from disk: off the async threads.
    let embedder = tokio::task::spawn_blocking(move || -> anyhow::Result<Arc<dyn Embedder>> {
        Ok(match e.engine.as_str() {
            "e5" => Arc::new(E5Embedder::load(
                &e.model_id,
                &e.model_dir,
                e.batch_size,
                e.threads,
            )?),
            "gguf" => Arc::new(GgufEmbedder::load(
                &e.model_id,
                &e.model_dir,
                e.max_length,
                e.threads,
            )?),
            _ => {
                if e.download && !e.model_dir.join("model.onnx").is_file() {
                    lectern_embed::download_model(&e.hub_repo, &e.model_dir, None)?;
                }
                Arc::new(FastEmbedder::load(&EmbedderOptions {
                    model_id: e.model_id,
                    model_dir: e.model_dir,
                    ort_dylib: e.ort_dylib,
                    batch_size: e.batch_size,
                    max_length: e.max_length,
                    threads: e.threads,
                })?)
            }
        })
    })
    .await??;
    Ok(embedder)
}

/// The index the settings name, for `embedder`'s model.
pub async fn open_index(
    settings: &Settings,
    embedder: &dyn Embedder,
) -> anyhow::Result<Arc<dyn VectorIndex>> {
    let model = embedder.model().clone();
    let language = Language::from_name(&settings.index.language).ok_or_else(|| {
        anyhow::anyhow!(
            "index.language {:?} is not a language Lectern analyses; use one of: {}",
            settings.index.language,
            Language::names()
        )
    })?;
    let bm25 = Bm25::new(Bm25::config_for(language))?;
    let tuning = SearchTuning {
        rrf_k: settings.index.rrf_k,
        sparse_weight: settings.index.sparse_weight,
        ..SearchTuning::default()
    };
    Ok(match &settings.index.qdrant_url {
        Some(url) => Arc::new(
            ServerIndex::open(
                url,
                settings
                    .index
                    .qdrant_api_key
                    .as_ref()
                    .map(|k| k.expose_secret().to_owned()),
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
    })
}
