//! The real default model for other crates' tests, loaded once per test process from the
//! asset cache that `scripts/fetch-assets.sh` fills.

use std::sync::{Arc, OnceLock};

use crate::{EmbedderOptions, FastEmbedder};

/// Options for the default MiniLM model in the asset cache (or `LECTERN_ORT_DYLIB` and
/// `LECTERN_EMBED_MODEL_DIR` when set).
pub fn default_options() -> EmbedderOptions {
    let assets = lectern_core::default_cache_dir().join("assets");
    let env_path = |name: &str| std::env::var_os(name).map(std::path::PathBuf::from);
    EmbedderOptions {
        model_id: "sentence-transformers/all-MiniLM-L6-v2-int8".into(),
        model_dir: env_path("LECTERN_EMBED_MODEL_DIR")
            .unwrap_or_else(|| assets.join("minilm-l6-v2-int8")),
        ort_dylib: env_path("LECTERN_ORT_DYLIB")
            .unwrap_or_else(|| assets.join("onnxruntime/libonnxruntime.so.1.32.0")),
        batch_size: 32,
        max_length: 256,
        threads: 0,
    }
}

/// The shared embedder; panics with the fix when the assets are missing.
pub fn embedder() -> Arc<FastEmbedder> {
    static EMBEDDER: OnceLock<Arc<FastEmbedder>> = OnceLock::new();
    EMBEDDER
        .get_or_init(|| {
            let options = default_options();
            Arc::new(FastEmbedder::load(&options).unwrap_or_else(|e| {
                panic!("tests need the real embedding model: {e} (run scripts/fetch-assets.sh)")
            }))
        })
        .clone()
}
