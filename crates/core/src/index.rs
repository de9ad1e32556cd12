use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{ChunkPoint, DocumentId, Result, WorkspaceId, WorkspaceScope};

/// Which embedding model made a collection's vectors. Recorded with the collection; an
/// index opened with a different model is refused, never silently mixed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddingModelInfo {
    pub id: String,
    pub dimension: usize,
}

/// Texts in, one vector per text out.
///
/// Contract: the output has exactly one vector per input, in input order, each of
/// `model().dimension` floats and L2-normalised (so cosine equals dot product). The call
/// is CPU-bound and blocking: async callers run it on a blocking thread.
pub trait Embedder: Send + Sync {
    fn model(&self) -> &EmbeddingModelInfo;
    /// Texts to be found: chunks, sentences of passages.
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>>;
    /// Questions to find them with. Models trained with a different prefix for each side
    /// (E5's `query: `) embed them so; for the others a question is a text like any.
    fn embed_queries(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        self.embed(texts)
    }
    /// Chunks to be found, each with the context it stands in. A model trained with a
    /// place for a text's title (EmbeddingGemma's `title: … | text: …`) reads the context
    /// there; the others read it as a line before the text ([`InContext::joined`]).
    fn embed_in_context(&self, texts: &[InContext]) -> Result<Vec<Vec<f32>>> {
        let joined: Vec<String> = texts.iter().map(InContext::joined).collect();
        self.embed(&joined)
    }
}

/// A text with the context it stands in: its document's title and the section it sits
/// under ("" when the embedder is to read the text alone).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InContext {
    pub context: String,
    pub text: String,
}

impl InContext {
    /// The context on a line before the text (the text alone when there is none).
    pub fn joined(&self) -> String {
        if self.context.is_empty() {
            self.text.clone()
        } else {
            format!("{}\n{}", self.context, self.text)
        }
    }
}

/// A chunk with its dense vector, ready to upsert. The sparse (BM25) vector is derived
/// from `chunk.text` inside the index, so every implementation tokenises the same way.
#[derive(Debug, Clone)]
pub struct IndexedChunk {
    pub chunk: ChunkPoint,
    pub dense: Vec<f32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// Dense and BM25 candidates fused with reciprocal rank fusion.
    #[default]
    Hybrid,
    Dense,
    Sparse,
}

/// A search within a scope of workspaces (mandatory, see [`WorkspaceScope`]).
#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// The query's text, for the BM25 side.
    pub text: String,
    /// The query's embedding, for the dense side.
    pub dense: Vec<f32>,
    pub limit: usize,
    pub mode: SearchMode,
    /// Narrow to these documents (still within the scope).
    pub documents: Option<Vec<DocumentId>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredChunk {
    pub chunk: ChunkPoint,
    pub score: f32,
}

/// The vector index: embedded Qdrant on local disk, or a Qdrant server.
///
/// Contract, shared by every implementation and checked by one test suite:
/// - `upsert` is idempotent by [`ChunkPoint::point_id`]: upserting the same chunk twice
///   leaves one point;
/// - `search` returns only points whose workspace is in `scope`, best first;
/// - deletes remove every matching point and succeed when there is none;
/// - `Error::Unavailable` means the index could not be reached and the call may be retried.
#[async_trait]
pub trait VectorIndex: Send + Sync {
    fn model(&self) -> &EmbeddingModelInfo;
    async fn upsert(&self, points: Vec<IndexedChunk>) -> Result<()>;
    async fn search(
        &self,
        scope: &WorkspaceScope,
        request: &SearchRequest,
    ) -> Result<Vec<ScoredChunk>>;
    /// Deletes one document's points: every version, or only `version`.
    async fn delete_document(
        &self,
        workspace: WorkspaceId,
        document: DocumentId,
        version: Option<i32>,
    ) -> Result<()>;
    /// Points of one document (all versions when `version` is `None`).
    async fn count_document(
        &self,
        workspace: WorkspaceId,
        document: DocumentId,
        version: Option<i32>,
    ) -> Result<usize>;
    /// The chunks of one version of a document at these chunk indexes: those that exist
    /// and whose workspace is in `scope` (none otherwise), in chunk order. For reading a
    /// cited passage with its neighbours by their derived ids; never a search.
    async fn chunks(
        &self,
        scope: &WorkspaceScope,
        document: DocumentId,
        version: i32,
        indexes: &[u32],
    ) -> Result<Vec<ChunkPoint>>;
    /// Points of one workspace (every document and version), or of the whole index when
    /// `workspace` is `None`. For consistency checks (`lectern check`), which compare it
    /// with the store's documents to find points that no document owns; never for
    /// answering a tenant.
    async fn count_points(&self, workspace: Option<WorkspaceId>) -> Result<usize>;
    /// Reorganise for fast search after a large ingest (a no-op where the engine does it).
    async fn optimize(&self) -> Result<()>;
}
