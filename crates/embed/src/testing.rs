//! The real default model for other crates' tests, loaded once per test process from the
//! asset cache that `scripts/fetch-assets.sh` fills.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use crate::{EmbedderOptions, FastEmbedder};

/// A fetched asset: the path in the environment variable `var` (which
/// `scripts/fetch-assets.sh` prints), else `path` in the asset cache.
pub fn asset(var: &str, path: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| lectern_core::default_cache_dir().join("assets").join(path))
}

/// Options for the default MiniLM model in the asset cache (or `LECTERN_ORT_DYLIB` and
/// `LECTERN_EMBED_MODEL_DIR` when set).
pub fn default_options() -> EmbedderOptions {
    EmbedderOptions {
        model_id: "sentence-transformers/all-MiniLM-L6-v2-int8".into(),
        model_dir: asset("LECTERN_EMBED_MODEL_DIR", "minilm-l6-v2-int8"),
        ort_dylib: asset("LECTERN_ORT_DYLIB", "onnxruntime/libonnxruntime.so.1.32.0"),
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
