use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use lectern_core::{
    ChunkPoint, DocumentId, EmbeddingModelInfo, Error, IndexedChunk, Result, ScoredChunk,
    SearchMode, SearchRequest, VectorIndex, WorkspaceId, WorkspaceScope,
};
use qdrant_client::qdrant::r#match::MatchValue;
use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
    DeletePointsBuilder, Distance, FieldType, Filter, GetPointsBuilder, KeywordIndexParamsBuilder,
    Modifier, NamedVectors, PointId, PointStruct, PrefetchQueryBuilder, Query, QueryPointsBuilder,
    RrfBuilder, ScoredPoint, SparseVectorParamsBuilder, SparseVectorsConfigBuilder,
    UpsertPointsBuilder, Vector, VectorInput, VectorParamsBuilder, VectorsConfigBuilder,
};
use qdrant_client::{Payload, Qdrant, QdrantError};

use crate::payload::{self, DOCUMENT, VERSION, WORKSPACE};
use crate::{Bm25, DENSE, IndexMeta, SPARSE, SearchTuning};

/// A collection on a Qdrant server or cluster, for the distributed shape. The model that
/// made its vectors is recorded in the collection's metadata.
pub struct ServerIndex {
    client: Qdrant,
    collection: String,
    bm25: Bm25,
    model: EmbeddingModelInfo,
    tuning: SearchTuning,
}

const META_KEY: &str = "lectern_index";

fn server_error(context: &str, err: QdrantError) -> Error {
    // A server that cannot be reached is worth retrying; anything it answered is not.
    // The client reports a connection it could not make (the server down, restarting, or
    // its address not answering) as an internal status "Failed to connect to ..."; a
    // connection lost mid-call as `Unavailable`.
    let unreachable = match &err {
        QdrantError::ResponseError { status } => match status.code() {
            tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
            | tonic::Code::ResourceExhausted => true,
            tonic::Code::Internal => status.message().starts_with("Failed to connect to"),
            _ => false,
        },
        QdrantError::ResourceExhaustedError { .. } | QdrantError::Io(_) => true,
        _ => false,
    };
    if unreachable {
        Error::unavailable(format!("Qdrant server: {context}"), err)
    } else {
        Error::internal(format!("Qdrant server: {context}"), err)
    }
}

fn keyword(field: &str, value: String) -> Condition {
    Condition::matches(field, MatchValue::Keyword(value))
}

fn document_filter(workspace: WorkspaceId, document: DocumentId, version: Option<i32>) -> Filter {
    let mut must = vec![
        keyword(WORKSPACE, workspace.to_string()),
        keyword(DOCUMENT, document.to_string()),
    ];
    if let Some(v) = version {
        must.push(Condition::matches(VERSION, i64::from(v)));
    }
    Filter::must(must)
}

impl ServerIndex {
    /// Points matching `filter` (all of them without one), counted exactly.
    async fn count(&self, filter: Option<Filter>) -> Result<usize> {
        let mut request = CountPointsBuilder::new(&self.collection).exact(true);
        if let Some(filter) = filter {
            request = request.filter(filter);
        }
        let response = self
            .client
            .count(request)
            .await
            .map_err(|e| server_error("count", e))?;
        Ok(response.result.map(|r| r.count as usize).unwrap_or(0))
    }

    /// Connects to `url` (the gRPC port, e.g. `http://qdrant:6334`) and creates the
    /// collection on first use; an existing collection made for another model is refused.
    pub async fn open(
        url: &str,
        api_key: Option<String>,
        collection: &str,
        model: EmbeddingModelInfo,
        bm25: Bm25,
        tuning: SearchTuning,
    ) -> Result<Self> {
        let client = Qdrant::from_url(url)
            .api_key(api_key)
            .timeout(Duration::from_secs(60))
            .skip_compatibility_check()
            .build()
            .map_err(|e| Error::Invalid(format!("invalid Qdrant URL {url:?}: {e}")))?;
        let meta = IndexMeta::new(model.clone(), bm25.config().clone());
        let meta_json =
            serde_json::to_value(&meta).map_err(|e| Error::internal("serialise index meta", e))?;
        let location = format!("{url} collection {collection}");
        let exists = client.collection_exists(collection).await.map_err(|e| {
            Error::unavailable(format!("cannot reach the Qdrant server at {url}"), e)
        })?;
        if !exists {
            let mut vectors = VectorsConfigBuilder::default();
            vectors.add_named_vector_params(
                DENSE,
                VectorParamsBuilder::new(model.dimension as u64, Distance::Cosine),
            );
            let mut sparse = SparseVectorsConfigBuilder::default();
            sparse.add_named_vector_params(
                SPARSE,
                SparseVectorParamsBuilder::default().modifier(Modifier::Idf),
            );
            let request = CreateCollectionBuilder::new(collection)
                .vectors_config(vectors)
                .sparse_vectors_config(sparse)
                .metadata(HashMap::from([(META_KEY.to_owned(), meta_json)]));
            // Services starting together race to create it: losing the race is fine.
            if let Err(e) = client.create_collection(request).await {
                let now_exists = client.collection_exists(collection).await.unwrap_or(false);
                if !now_exists {
                    return Err(server_error("create collection", e));
                }
            }
        }
        let info = client
            .collection_info(collection)
            .await
            .map_err(|e| server_error("collection info", e))?;
        let stored = info
            .result
            .and_then(|r| r.config)
            .and_then(|c| c.metadata.get(META_KEY).cloned())
            .map(|v| v.into_json())
            .and_then(|v| serde_json::from_value::<IndexMeta>(v).ok())
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "the collection at {location} records no embedding model: it was not made by Lectern, or the \
                     server is older than the client (use Qdrant 1.20 or later); choose another collection name"
                ))
            })?;
        meta.check_matches(&stored, &location)?;
        // Idempotent, and repeated on every open so an interrupted first open heals.
        for (field, kind) in [
            (WORKSPACE, FieldType::Keyword),
            (DOCUMENT, FieldType::Keyword),
            (VERSION, FieldType::Integer),
        ] {
            let mut index =
                CreateFieldIndexCollectionBuilder::new(collection, field, kind).wait(true);
            if field == WORKSPACE {
                index =
                    index.field_index_params(KeywordIndexParamsBuilder::default().is_tenant(true));
            }
            client
                .create_field_index(index)
                .await
                .map_err(|e| server_error("create payload index", e))?;
        }
        Ok(Self {
            client,
            collection: collection.to_owned(),
            bm25,
            model,
            tuning,
        })
    }

    async fn delete(&self, filter: Filter) -> Result<()> {
        self.client
            .delete_points(
                DeletePointsBuilder::new(&self.collection)
                    .points(filter)
                    .wait(true),
            )
            .await
            .map(drop)
            .map_err(|e| server_error("delete", e))
    }
}

fn to_scored(points: Vec<ScoredPoint>) -> Result<Vec<ScoredChunk>> {
    points
        .into_iter()
        .map(|p| {
            let map: serde_json::Map<String, serde_json::Value> = Payload::from(p.payload).into();
            Ok(ScoredChunk {
                chunk: payload::from_json(&map)?,
                score: p.score,
            })
        })
        .collect()
}

#[async_trait]
impl VectorIndex for ServerIndex {
    fn model(&self) -> &EmbeddingModelInfo {
        &self.model
    }

    async fn upsert(&self, points: Vec<IndexedChunk>) -> Result<()> {
        if points.is_empty() {
            return Ok(());
        }
        if let Some(bad) = points
            .iter()
            .find(|p| p.dense.len() != self.model.dimension)
        {
            return Err(Error::Invalid(format!(
                "a vector of {} dimensions cannot go into an index of {}",
                bad.dense.len(),
                self.model.dimension
            )));
        }
        let terms = self.bm25.chunks(&points);
        let mut structs = Vec::with_capacity(points.len());
        for (p, (sparse, language)) in points.into_iter().zip(terms) {
            let vectors = NamedVectors::default()
                .add_vector(DENSE, Vector::new_dense(p.dense))
                .add_vector(SPARSE, Vector::new_sparse(sparse.indices, sparse.values));
            let payload = Payload::try_from(payload::to_json(&p.chunk, language))
                .map_err(|e| Error::internal("build point payload", e))?;
            structs.push(PointStruct::new(
                p.chunk.point_id().to_string(),
                vectors,
                payload,
            ));
        }
        self.client
            .upsert_points(UpsertPointsBuilder::new(&self.collection, structs).wait(true))
            .await
            .map(drop)
            .map_err(|e| server_error("upsert", e))
    }

    async fn search(
        &self,
        scope: &WorkspaceScope,
        request: &SearchRequest,
    ) -> Result<Vec<ScoredChunk>> {
        if request.limit == 0 {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = scope.ids().iter().map(ToString::to_string).collect();
        let mut must = vec![Condition::matches(WORKSPACE, ids)];
        if let Some(docs) = &request.documents {
            must.push(Condition::matches(
                DOCUMENT,
                docs.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ));
        }
        let filter = Filter::must(must);
        let sparse = self.bm25.query(&request.text);
        let sparse_input =
            || VectorInput::new_sparse(sparse.indices.clone(), sparse.values.clone());
        let limit = request.limit as u64;
        let candidates = self.tuning.candidates(request.limit) as u64;
        let base = QueryPointsBuilder::new(&self.collection)
            .filter(filter)
            .limit(limit)
            .with_payload(true);
        let query = match request.mode {
            SearchMode::Dense => base
                .query(Query::new_nearest(request.dense.clone()))
                .using(DENSE),
            SearchMode::Sparse if sparse.indices.is_empty() => return Ok(Vec::new()),
            SearchMode::Sparse => base.query(Query::new_nearest(sparse_input())).using(SPARSE),
            SearchMode::Hybrid => {
                let mut q = base.add_prefetch(
                    PrefetchQueryBuilder::default()
                        .query(Query::new_nearest(request.dense.clone()))
                        .using(DENSE)
                        .limit(candidates),
                );
                if !sparse.indices.is_empty() {
                    q = q.add_prefetch(
                        PrefetchQueryBuilder::default()
                            .query(Query::new_nearest(sparse_input()))
                            .using(SPARSE)
                            .limit(candidates),
                    );
                }
                let mut rrf = RrfBuilder::with_k(self.tuning.rrf_k);
                if !sparse.indices.is_empty() && self.tuning.sparse_weight != 1.0 {
                    rrf = rrf.weights(vec![1.0, self.tuning.sparse_weight]);
                }
                q.query(Query::new_rrf(rrf))
            }
        };
        let response = self
            .client
            .query(query)
            .await
            .map_err(|e| server_error("search", e))?;
        to_scored(response.result)
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
        // Point ids are stored as the UUID's text (see `upsert`).
        let ids: Vec<PointId> = indexes
            .iter()
            .map(|&i| PointId::from(lectern_core::point_id(document, version, i).to_string()))
            .collect();
        let response = self
            .client
            .get_points(GetPointsBuilder::new(&self.collection, ids).with_payload(true))
            .await
            .map_err(|e| server_error("retrieve", e))?;
        payload::in_scope(
            response.result.into_iter().map(|p| {
                let map: serde_json::Map<String, serde_json::Value> =
                    Payload::from(p.payload).into();
                payload::from_json(&map)
            }),
            scope,
        )
    }

    async fn count_points(&self, workspace: Option<WorkspaceId>) -> Result<usize> {
        self.count(workspace.map(|ws| Filter::must([keyword(WORKSPACE, ws.to_string())])))
            .await
    }

    async fn optimize(&self) -> Result<()> {
        // The server runs its optimisers in the background.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback port that nothing listens on (bound, then let go).
    fn closed_port_url() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        drop(listener);
        format!("http://127.0.0.1:{port}")
    }

    /// The index outage as callers meet it: a Qdrant server that cannot be reached is
    /// `Unavailable` (503, "try again shortly"; an ingest job goes back to the queue with
    /// backoff), never an internal error that fails the document for good, both when a
    /// service starts and for any call made after the server went away.
    #[tokio::test]
    async fn an_unreachable_server_is_unavailable_not_a_failure() {
        let url = closed_port_url();
        let model = EmbeddingModelInfo {
            id: "test-model".into(),
            dimension: 8,
        };
        let bm25 = Bm25::new(Bm25::default_config()).expect("bm25");
        let opened =
            ServerIndex::open(&url, None, "lectern", model, bm25, SearchTuning::default()).await;
        match opened {
            Err(Error::Unavailable { message, .. }) => assert!(message.contains(&url), "{message}"),
            Err(other) => panic!("expected Unavailable, got {other}"),
            Ok(_) => panic!("nothing listens at {url}"),
        }

        let client = Qdrant::from_url(&url)
            .timeout(Duration::from_secs(5))
            .skip_compatibility_check()
            .build()
            .expect("client");
        let calls = [
            client
                .count(CountPointsBuilder::new("lectern"))
                .await
                .map(drop),
            client
                .delete_points(DeletePointsBuilder::new("lectern").points(Filter::default()))
                .await
                .map(drop),
        ];
        for call in calls {
            let err = call.expect_err("nothing listens");
            let raw = format!("{err:?}");
            let mapped = server_error("a call", err);
            assert!(
                matches!(mapped, Error::Unavailable { .. }),
                "an unreachable server must read as unavailable: {mapped} ({raw})"
            );
        }
    }
}
