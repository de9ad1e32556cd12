use std::path::{Path, PathBuf};
use std::sync::Mutex;

use fastembed::{
    InitOptionsUserDefined, Pooling, QuantizationMode, TextEmbedding, TokenizerFiles,
    UserDefinedEmbeddingModel,
};
use lectern_core::{Embedder, EmbeddingModelInfo, Error, Result};

use crate::runtime::onnx_runtime;

/// Where the model is and how to run it.
#[derive(Debug, Clone)]
pub struct EmbedderOptions {
    /// Recorded with the index; a different model needs a new index.
    pub model_id: String,
    /// A folder with `model.onnx`, `tokenizer.json`, `config.json`,
    /// `special_tokens_map.json` and `tokenizer_config.json`.
    pub model_dir: PathBuf,
    /// ONNX Runtime's shared library.
    pub ort_dylib: PathBuf,
    pub batch_size: usize,
    /// Longer inputs are truncated to this many tokens.
    pub max_length: usize,
    /// Intra-op threads; 0 means one per core.
    pub threads: usize,
}

/// A sentence-embedding model (mean pooling, L2-normalised) run by fastembed.
///
/// fastembed's `embed` takes `&mut self`, so calls are serialised by a mutex: on a CPU the
/// one session already uses every core given to it, and a second concurrent session would
/// only split them.
pub struct FastEmbedder {
    model: Mutex<TextEmbedding>,
    info: EmbeddingModelInfo,
    batch_size: usize,
    tokenizer_path: PathBuf,
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(|e| {
        Error::Invalid(format!(
            "embedding model file {} cannot be read ({e}); run scripts/fetch-assets.sh or set embedding.model_dir",
            path.display()
        ))
    })
}

impl FastEmbedder {
    /// Loads the model and measures its output width with one probe.
    pub fn load(options: &EmbedderOptions) -> Result<Self> {
        let environment = onnx_runtime(&options.ort_dylib)?;
        let dir = &options.model_dir;
        let tokenizer_files = TokenizerFiles {
            tokenizer_file: read(dir, "tokenizer.json")?,
            config_file: read(dir, "config.json")?,
            special_tokens_map_file: read(dir, "special_tokens_map.json")?,
            tokenizer_config_file: read(dir, "tokenizer_config.json")?,
        };
        // Mean pooling over the attention mask: the sentence-transformers recipe for
        // MiniLM and most small embedders. `QuantizationMode::None` lets us batch; an
        // int8 model with dynamic quantisation then varies in the last digits with its
        // batch-mates, far below what changes a ranking.
        let model = UserDefinedEmbeddingModel::new(read(dir, "model.onnx")?, tokenizer_files)
            .with_pooling(Pooling::Mean)
            .with_quantization(QuantizationMode::None);
        let mut init = InitOptionsUserDefined::new()
            .with_environment(environment)
            .with_max_length(options.max_length);
        if options.threads > 0 {
            init = init.with_intra_threads(options.threads);
        }
        let mut model = TextEmbedding::try_new_from_user_defined(model, init).map_err(|e| {
            Error::internal(
                format!("cannot load the embedding model from {}", dir.display()),
                e.to_string(),
            )
        })?;
        let probe = model.embed(["dimension probe"], None).map_err(|e| {
            Error::internal("the embedding model failed on a probe text", e.to_string())
        })?;
        let dimension = probe.first().map(Vec::len).unwrap_or(0);
        if dimension == 0 {
            return Err(Error::internal_msg(
                "the embedding model returned an empty vector",
            ));
        }
        tracing::info!(model = %options.model_id, dimension, "embedding model loaded");
        Ok(Self {
            model: Mutex::new(model),
            info: EmbeddingModelInfo {
                id: options.model_id.clone(),
                dimension,
            },
            batch_size: options.batch_size.max(1),
            tokenizer_path: dir.join("tokenizer.json"),
        })
    }

    /// The model's own `tokenizer.json`, for token-budgeted chunking.
    pub fn tokenizer_path(&self) -> &Path {
        &self.tokenizer_path
    }
}

impl Embedder for FastEmbedder {
    fn model(&self) -> &EmbeddingModelInfo {
        &self.info
    }

    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let mut model = self
            .model
            .lock()
            .map_err(|_| Error::internal_msg("embedding model lock poisoned"))?;
        let vectors = model
            .embed(texts, Some(self.batch_size))
            .map_err(|e| Error::internal("embedding failed", e.to_string()))?;
        if vectors.len() != texts.len() || vectors.iter().any(|v| v.len() != self.info.dimension) {
            return Err(Error::internal_msg(
                "the embedding model returned vectors of the wrong count or width",
            ));
        }
        Ok(vectors)
    }
}
