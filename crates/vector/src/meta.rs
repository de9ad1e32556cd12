use std::path::Path;

use lectern_core::{EmbeddingModelInfo, Error, Result};
use qdrant_edge::bm25_embed::EdgeBm25Config;
use serde::{Deserialize, Serialize};

/// What made an index's vectors, recorded with it so that vectors of two models (or two
/// BM25 configurations) are never mixed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexMeta {
    pub schema: u32,
    pub model: EmbeddingModelInfo,
    pub bm25: EdgeBm25Config,
}

pub(crate) const SCHEMA: u32 = 1;

impl IndexMeta {
    pub fn new(model: EmbeddingModelInfo, bm25: EdgeBm25Config) -> Self {
        Self {
            schema: SCHEMA,
            model,
            bm25,
        }
    }

    /// Refuses an index whose recorded model, width or BM25 settings differ from ours.
    pub fn check_matches(&self, stored: &IndexMeta, location: &str) -> Result<()> {
        if stored.model != self.model {
            return Err(Error::Invalid(format!(
                "the index at {location} was built with embedding model {} ({} dimensions), but {} ({} dimensions) is configured; \
                 configure the same model, or use a new index (another data dir or collection) and re-index",
                stored.model.id, stored.model.dimension, self.model.id, self.model.dimension
            )));
        }
        if stored.bm25 != self.bm25 || stored.schema != self.schema {
            return Err(Error::Invalid(format!(
                "the index at {location} was built with other BM25 or schema settings; use a new index and re-index"
            )));
        }
        Ok(())
    }

    pub(crate) fn read(path: &Path) -> Result<Option<Self>> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::internal(
                    format!("the index description {} is unreadable", path.display()),
                    e,
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::internal(
                format!("cannot read {}", path.display()),
                e,
            )),
        }
    }

    /// Writes atomically: a temporary file, synced, then renamed over the old one.
    pub(crate) fn write(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            let file = std::fs::File::create(&tmp)?;
            serde_json::to_writer_pretty(&file, self)?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| Error::internal(format!("cannot write {}", path.display()), e))
    }
}
