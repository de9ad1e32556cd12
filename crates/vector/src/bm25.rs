use lectern_core::{Error, Result};
use qdrant_edge::SparseVector;
use qdrant_edge::bm25_embed::{EdgeBm25, EdgeBm25Config};
use qdrant_edge::external::ordered_float::NotNan;

/// BM25 term weights computed on the client, for both implementations (term ids are
/// murmur3 hashes, the same as Qdrant's own server-side BM25). Inverse document frequency
/// is applied by the index at search time (the sparse vector's IDF modifier), over the
/// workspaces searched.
pub struct Bm25 {
    inner: EdgeBm25,
    config: EdgeBm25Config,
}

impl Bm25 {
    pub fn new(config: EdgeBm25Config) -> Result<Self> {
        let inner = EdgeBm25::new(config.clone())
            .map_err(|e| Error::Invalid(format!("invalid BM25 configuration: {e}")))?;
        Ok(Self { inner, config })
    }

    /// English stemming and stopwords, and an average length near a typical chunk's.
    pub fn default_config() -> EdgeBm25Config {
        EdgeBm25Config {
            language: Some("english".into()),
            avg_len: NotNan::new(200.0).expect("not NaN"),
            ..Default::default()
        }
    }

    pub fn config(&self) -> &EdgeBm25Config {
        &self.config
    }

    pub fn document(&self, text: &str) -> SparseVector {
        self.inner.embed_document(text)
    }

    pub fn query(&self, text: &str) -> SparseVector {
        self.inner.embed_query(text)
    }
}
