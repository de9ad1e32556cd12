//! Lectern's domain types and the seam traits between its stages.
//!
//! This crate must not depend on any IO crate (no database, HTTP, ONNX or Qdrant): it is
//! what every other crate agrees on. The one key decision here is that tenancy is a type:
//! a [`WorkspaceScope`] cannot be empty, and [`VectorIndex::search`] cannot be called
//! without one, so no code path can search across workspaces by forgetting a filter.

mod document;
mod error;
mod index;
mod model;
mod paths;
#[cfg(feature = "testing")]
pub mod testing;
mod text;

pub use document::{DocumentParser, Heading, ParseError, ParsedDocument};
pub use error::{BoxError, Error, Result};
pub use index::{
    Embedder, EmbeddingModelInfo, InContext, IndexedChunk, ScoredChunk, SearchMode, SearchRequest,
    VectorIndex,
};
pub use model::{
    ChunkPoint, DocumentId, FinishReason, PageRange, Role, Span, WorkspaceId, WorkspaceScope,
    point_id, resolve_workspace_name,
};
pub use paths::default_cache_dir;
pub use text::{attach_graves, bare_letters, normalise};
