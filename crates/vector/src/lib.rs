//! Lectern's vector index: Qdrant's own engine embedded in the process (`qdrant-edge`, a
//! shard on local disk) or a Qdrant server or cluster (`qdrant-client`).
//!
//! All Qdrant calls live here. Both implementations store the same payload, compute the
//! same BM25 sparse vectors on the client (one function, [`Bm25`]), fuse dense and sparse
//! candidates with the same reciprocal rank fusion, and refuse to open an index built with
//! another embedding model. One contract test suite runs against both. Text is analysed
//! in its own language ([`text`]: Qdrant's stop words and stemmers), which the query
//! service's citation check shares.

mod bm25;
mod edge;
mod meta;
mod payload;
mod server;
pub mod text;

pub use bm25::Bm25;
pub use edge::EdgeIndex;
pub use meta::IndexMeta;
pub use server::ServerIndex;

/// Search tuning shared by both implementations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchTuning {
    /// Reciprocal rank fusion constant: a larger `k` flattens the weight of top ranks.
    pub rrf_k: u32,
    /// The BM25 side's weight in the fusion; the dense side weighs 1.
    pub sparse_weight: f32,
    /// Candidates fetched from each side before fusion, as a multiple of the limit.
    pub candidates_per_result: usize,
    /// The least number of candidates fetched from each side.
    pub min_candidates: usize,
}

impl Default for SearchTuning {
    fn default() -> Self {
        Self {
            rrf_k: 60,
            sparse_weight: 1.0,
            candidates_per_result: 4,
            min_candidates: 40,
        }
    }
}

impl SearchTuning {
    fn candidates(&self, limit: usize) -> usize {
        (limit * self.candidates_per_result)
            .max(self.min_candidates)
            .max(limit)
    }
}

/// Names of the two vectors of every point.
pub(crate) const DENSE: &str = "dense";
pub(crate) const SPARSE: &str = "bm25";
