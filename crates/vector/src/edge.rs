use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use lectern_core::{
    ChunkPoint, DocumentId, EmbeddingModelInfo, Error, IndexedChunk, Result, ScoredChunk,
    SearchMode, SearchRequest, VectorIndex, WorkspaceId, WorkspaceScope,
};
use qdrant_edge::{
    CountRequest, CreateIndex, Distance, EdgeConfig, EdgeShard, EdgeSparseVectorParams,
    EdgeVectorParams, FieldCondition, FieldIndexOperations, Filter, Fusion, IdfCorpusParams,
    IdfParams, JsonPath, Match, Memory, Modifier, NamedQuery, PayloadFieldSchema,
    PayloadSchemaType, PointId, PointInsertOperations, PointOperations, PointStruct,
    PointStructPersisted, Prefetch, QueryEnum, QueryRequest, RetrieveRequest, ScoredPoint,
    ScoringQuery, SearchParams, UpdateOperation, Vector, VectorInternal, Vectors,
    WithPayloadInterface,
};

use crate::payload::{self, DOCUMENT, VERSION, WORKSPACE};
use crate::{Bm25, DENSE, IndexMeta, SPARSE, SearchTuning};

/// The embedded index: one Qdrant shard on local disk, in this process.
///
/// Qdrant's engine is synchronous: every call runs on a blocking thread. One shard per
/// folder per process; a lock file refuses a second opener (another `lectern` on the same
/// data dir) with a clear message instead of corrupting the shard.
pub struct EdgeIndex {
    shard: Arc<EdgeShard>,
    bm25: Arc<Bm25>,
    model: EmbeddingModelInfo,
    tuning: SearchTuning,
    _lock: File,
}

fn engine_error(context: &str, err: impl std::fmt::Display) -> Error {
    Error::internal(format!("vector index: {context}"), err.to_string())
}

fn key(path: &str) -> JsonPath {
    JsonPath::try_from(path).expect("a static payload path")
}

fn keyword(field: &str, value: String) -> qdrant_edge::Condition {
    qdrant_edge::Condition::Field(FieldCondition::new_match(key(field), Match::from(value)))
}

fn scope_filter(scope: &WorkspaceScope, documents: Option<&[DocumentId]>) -> Filter {
    let ids = |v: &[uuid::Uuid]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
    let mut must = vec![qdrant_edge::Condition::Field(FieldCondition::new_match(
        key(WORKSPACE),
        Match::from(ids(scope.ids())),
    ))];
    if let Some(docs) = documents {
        must.push(qdrant_edge::Condition::Field(FieldCondition::new_match(
            key(DOCUMENT),
            Match::from(ids(docs)),
        )));
    }
    Filter {
        must: Some(must),
        ..Default::default()
    }
}

fn document_filter(workspace: WorkspaceId, document: DocumentId, version: Option<i32>) -> Filter {
    let mut must = vec![
        keyword(WORKSPACE, workspace.to_string()),
        keyword(DOCUMENT, document.to_string()),
    ];
    if let Some(v) = version {
        must.push(qdrant_edge::Condition::Field(FieldCondition::new_match(
            key(VERSION),
            Match::from(i64::from(v)),
        )));
    }
    Filter {
        must: Some(must),
        ..Default::default()
    }
}

fn nearest(vector: VectorInternal, using: &str) -> ScoringQuery {
    ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery::new(vector, using)))
}

impl EdgeIndex {
    /// Opens the shard in `dir`, creating it on first use, for vectors of `model`.
    pub fn open(
        dir: &Path,
        model: EmbeddingModelInfo,
        bm25: Bm25,
        tuning: SearchTuning,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::Invalid(format!(
                "cannot create the index folder {}: {e}",
                dir.display()
            ))
        })?;
        let lock = lock_dir(dir)?;
        let meta = IndexMeta::new(model.clone(), bm25.config().clone());
        let meta_path = dir.join("lectern-index.json");
        let shard_path = dir.join("shard");
        let location = dir.display().to_string();
        match IndexMeta::read(&meta_path)? {
            Some(stored) => meta.check_matches(&stored, &location)?,
            None if shard_path.exists() => {
                return Err(Error::Invalid(format!(
                    "the index at {location} has no description of its embedding model; move it away and re-index"
                )));
            }
            None => {}
        }
        let config = EdgeConfig::builder()
            .vector(
                DENSE,
                EdgeVectorParams::builder(model.dimension, Distance::Cosine)
                    .memory(Memory::Cached)
                    .build(),
            )
            .sparse_vector(
                SPARSE,
                EdgeSparseVectorParams::builder()
                    .modifier(Modifier::Idf)
                    .build(),
            )
            .build();
        // Recorded before the shard is made, so a crash in between never leaves a shard
        // whose model is unknown.
        meta.write(&meta_path)?;
        let shard = if shard_path.join("segments").is_dir() {
            EdgeShard::load(&shard_path, Some(config))
        } else {
            EdgeShard::new(&shard_path, config)
        }
        .map_err(|e| {
            engine_error(
                &format!("cannot open the shard at {}", shard_path.display()),
                e,
            )
        })?;
        for (field, kind) in [
            (WORKSPACE, PayloadSchemaType::Keyword),
            (DOCUMENT, PayloadSchemaType::Keyword),
            (VERSION, PayloadSchemaType::Integer),
        ] {
            shard
                .update(UpdateOperation::FieldIndexOperation(
                    FieldIndexOperations::CreateIndex(CreateIndex {
                        field_name: key(field),
                        field_schema: Some(PayloadFieldSchema::FieldType(kind)),
                    }),
                ))
                .map_err(|e| engine_error("cannot create a payload index", e))?;
        }
        Ok(Self {
            shard: Arc::new(shard),
            bm25: Arc::new(bm25),
            model,
            tuning,
            _lock: lock,
        })
    }

    /// Points matching `filter` (all of them without one), counted exactly.
    async fn count(&self, filter: Option<Filter>) -> Result<usize> {
        self.blocking(move |shard, _| {
            shard
                .count(CountRequest {
                    filter,
                    exact: true,
                })
                .map_err(|e| engine_error("count failed", e))
        })
        .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&EdgeShard, &Bm25) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let shard = self.shard.clone();
        let bm25 = self.bm25.clone();
        tokio::task::spawn_blocking(move || work(&shard, &bm25))
            .await
            .map_err(|e| Error::internal("vector index task failed", e))?
    }
}

fn lock_dir(dir: &Path) -> Result<File> {
    let path: PathBuf = dir.join("lectern.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::Invalid(format!("cannot open {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Conflict(format!(
            "the index at {} is in use by another Lectern process; stop it, or give this one another data dir",
            dir.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::internal(
            format!("cannot lock {}", path.display()),
            e,
        )),
    }
}

fn to_scored(points: Vec<ScoredPoint>) -> Result<Vec<ScoredChunk>> {
    points
        .into_iter()
        .map(|p| {
            let payload = p
                .payload
                .ok_or_else(|| Error::internal_msg("index point without payload"))?;
            Ok(ScoredChunk {
                chunk: payload::from_json(&payload.0)?,
                score: p.score,
            })
        })
        .collect()
}

#[async_trait]
impl VectorIndex for EdgeIndex {
    fn model(&self) -> &EmbeddingModelInfo {
        &self.model
    }

    async fn upsert(&self, points: Vec<IndexedChunk>) -> Result<()> {
        if points.is_empty() {
            return Ok(());
        }
        let dimension = self.model.dimension;
        if let Some(bad) = points.iter().find(|p| p.dense.len() != dimension) {
            return Err(Error::Invalid(format!(
                "a vector of {} dimensions cannot go into an index of {dimension}",
                bad.dense.len()
            )));
        }
        self.blocking(move |shard, bm25| {
            let terms = bm25.chunks(&points);
            let points: Vec<PointStructPersisted> = points
                .into_iter()
                .zip(terms)
                .map(|(p, (sparse, language))| {
                    PointStruct::new(
                        PointId::Uuid(p.chunk.point_id()),
                        Vectors::new_named([
                            (DENSE, Vector::new_dense(p.dense)),
                            (SPARSE, Vector::from(sparse)),
                        ]),
                        payload::to_json(&p.chunk, language),
                    )
                    .into()
                })
                .collect();
            shard
                .update(UpdateOperation::PointOperation(
                    PointOperations::UpsertPoints(PointInsertOperations::PointsList(points)),
                ))
                .map_err(|e| engine_error("upsert failed", e))?;
            shard.flush().map_err(|e| engine_error("flush failed", e))
        })
        .await
    }

    async fn search(
        &self,
        scope: &WorkspaceScope,
        request: &SearchRequest,
    ) -> Result<Vec<ScoredChunk>> {
        if request.limit == 0 {
            return Ok(Vec::new());
        }
        let needs_dense = request.mode != SearchMode::Sparse;
        if needs_dense && request.dense.len() != self.model.dimension {
            return Err(Error::Invalid(format!(
                "a query vector of {} dimensions cannot search an index of {}",
                request.dense.len(),
                self.model.dimension
            )));
        }
        let filter = scope_filter(scope, request.documents.as_deref());
        let request = request.clone();
        let candidates = self.tuning.candidates(request.limit);
        let rrf_k = self.tuning.rrf_k;
        let sparse_weight = self.tuning.sparse_weight;
        self.blocking(move |shard, bm25| {
            let sparse = bm25.query(&request.text);
            // Inverse document frequency over the searched workspaces only: other tenants'
            // documents neither skew the ranking nor leak through it.
            let idf_params = SearchParams {
                idf: Some(IdfParams::Corpus(IdfCorpusParams {
                    corpus: filter.clone(),
                })),
                ..Default::default()
            };
            let dense_query = || nearest(VectorInternal::from(request.dense.clone()), DENSE);
            let sparse_query = || nearest(VectorInternal::from(sparse.clone()), SPARSE);
            let query = match request.mode {
                SearchMode::Dense => QueryRequest {
                    query: Some(dense_query()),
                    ..QueryRequest::new(request.limit)
                },
                SearchMode::Sparse if sparse.indices.is_empty() => return Ok(Vec::new()),
                SearchMode::Sparse => QueryRequest {
                    query: Some(sparse_query()),
                    params: Some(idf_params),
                    ..QueryRequest::new(request.limit)
                },
                SearchMode::Hybrid => {
                    let mut prefetches = vec![Prefetch {
                        query: Some(dense_query()),
                        ..Prefetch::new(candidates)
                    }];
                    let weighted = !sparse.indices.is_empty() && sparse_weight != 1.0;
                    if !sparse.indices.is_empty() {
                        prefetches.push(Prefetch {
                            query: Some(sparse_query()),
                            params: Some(idf_params),
                            ..Prefetch::new(candidates)
                        });
                    }
                    QueryRequest {
                        prefetches,
                        query: Some(ScoringQuery::Fusion(Fusion::Rrf {
                            k: rrf_k as usize,
                            weights: weighted.then(|| vec![1.0.into(), sparse_weight.into()]),
                        })),
                        ..QueryRequest::new(request.limit)
                    }
                }
            };
            let query = QueryRequest {
                filter: Some(filter),
                with_payload: WithPayloadInterface::Bool(true),
                ..query
            };
            let points = shard
                .query(query)
                .map_err(|e| engine_error("search failed", e))?;
            to_scored(points)
        })
        .await
    }

    async fn delete_document(
        &self,
        workspace: WorkspaceId,
        document: DocumentId,
        version: Option<i32>,
    ) -> Result<()> {
        self.delete(document_filter(workspace, document, version))
            .await
    }

    async fn count_document(
        &self,
        workspace: WorkspaceId,
        document: DocumentId,
        version: Option<i32>,
    ) -> Result<usize> {
        self.count(Some(document_filter(workspace, document, version)))
            .await
    }

    async fn chunks(
        &self,
        scope: &WorkspaceScope,
        document: DocumentId,
        version: i32,
        indexes: &[u32],
    ) -> Result<Vec<ChunkPoint>> {
        if indexes.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<PointId> = indexes
            .iter()
            .map(|&i| PointId::Uuid(lectern_core::point_id(document, version, i)))
            .collect();
        let scope = scope.clone();
        self.blocking(move |shard, _| {
            let records = shard
                .retrieve(RetrieveRequest {
                    point_ids: ids,
                    with_payload: Some(WithPayloadInterface::Bool(true)),
                    with_vector: None,
                })
                .map_err(|e| engine_error("retrieve failed", e))?;
            payload::in_scope(
                records
                    .into_iter()
                    .filter_map(|r| r.payload)
                    .map(|p| payload::from_json(&p.0)),
                &scope,
            )
        })
        .await
    }

    async fn count_points(&self, workspace: Option<WorkspaceId>) -> Result<usize> {
        self.count(workspace.map(|ws| Filter {
            must: Some(vec![keyword(WORKSPACE, ws.to_string())]),
            ..Default::default()
        }))
        .await
    }

    async fn optimize(&self) -> Result<()> {
        self.blocking(|shard, _| {
            shard
                .optimize()
                .map_err(|e| engine_error("optimize failed", e))?;
            shard.flush().map_err(|e| engine_error("flush failed", e))
        })
        .await
    }
}

impl EdgeIndex {
    async fn delete(&self, filter: Filter) -> Result<()> {
        self.blocking(move |shard, _| {
            shard
                .update(UpdateOperation::PointOperation(
                    PointOperations::DeletePointsByFilter(filter),
                ))
                .map_err(|e| engine_error("delete failed", e))?;
            shard.flush().map_err(|e| engine_error("flush failed", e))
        })
        .await
    }
}
