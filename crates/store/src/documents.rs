//! Documents, their chunk rows and their ingest jobs: the durable half of ingestion.
//!
//! A job is claimed with a lease (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: an
//! immediate write transaction), kept alive by heartbeats, and retried with backoff when it
//! failed for a transient reason. A worker that dies leaves its job to be claimed again
//! once the lease expires; since point ids are derived, the retry overwrites, never
//! duplicates. A job whose lease runs out [`MAX_LOST_LEASES`] times is set aside instead,
//! so that a file that kills every worker reading it cannot keep the server down. Leases
//! and due times are read from the store's clock, which tests move.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lectern_core::{DocumentId, Error, Result, WorkspaceId};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::entity::{chunk, document, ingest_job};
use crate::error::db_error;
use crate::{NewDocument, Store};

/// Document states as stored.
pub mod status {
    pub const QUEUED: &str = "queued";
    pub const PROCESSING: &str = "processing";
    pub const READY: &str = "ready";
    pub const FAILED: &str = "failed";
}

/// Job states as stored.
pub mod job_state {
    pub const QUEUED: &str = crate::lease::QUEUED;
    pub const RUNNING: &str = crate::lease::RUNNING;
    pub const DONE: &str = "done";
    pub const FAILED: &str = "failed";
}

/// A chunk row to store for a document version.
#[derive(Debug, Clone)]
pub struct NewChunk {
    pub id: Uuid,
    pub chunk_index: i32,
    pub page_start: i32,
    pub page_end: i32,
    pub char_start: i64,
    pub char_end: i64,
    pub token_count: i32,
}

/// How many times a job's lease may run out before it is set aside instead of claimed
/// again. A lease runs out when its worker crashed or hung; a file that does that to every
/// worker would otherwise stop the server again after every restart. Counted apart from
/// the attempts (transient failures retried), so that a job retried after an outage is
/// not set aside by one crash.
pub const MAX_LOST_LEASES: i32 = 3;

pub(crate) fn secs(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Store {
    /// Records a new document with a queued job for its version 1, in one transaction.
    pub async fn create_document(
        &self,
        new: NewDocument,
    ) -> Result<(document::Model, ingest_job::Model)> {
        let (doc, job) = self.insert_document(new, None, None).await?;
        Ok((doc, job.expect("a queued document has a job")))
    }

    /// Records a document that could not even be accepted (unreadable type, too large):
    /// it is listed as failed with its reason, and no job is queued.
    pub async fn create_failed_document(
        &self,
        new: NewDocument,
        reason: &str,
    ) -> Result<document::Model> {
        Ok(self.insert_document(new, None, Some(reason)).await?.0)
    }

    /// Inserts a document row in one transaction: queued with a job for its version 1,
    /// or failed with `failed`'s reason and no job. A document of a source (`file`) is
    /// added only while the source takes documents.
    pub(crate) async fn insert_document(
        &self,
        new: NewDocument,
        file: Option<&crate::SourceFile>,
        failed: Option<&str>,
    ) -> Result<(document::Model, Option<ingest_job::Model>)> {
        let now = self.now();
        let txn = self.begin().await?;
        let state = if failed.is_some() {
            status::FAILED
        } else {
            status::QUEUED
        };
        let mut row = document_row(new, state, failed, now);
        if let Some(file) = file {
            crate::sources::source_takes_documents(&txn, file.source_id).await?;
            row = crate::sources::with_source(row, file);
        }
        let doc = row
            .insert(&txn)
            .await
            .map_err(|e| db_error("create document", e))?;
        let job = match failed {
            None => Some(insert_job(&txn, doc.id, 1, now).await?),
            Some(_) => None,
        };
        txn.commit()
            .await
            .map_err(|e| db_error("create document", e))?;
        Ok((doc, job))
    }

    /// Queues a new version of an existing document (changed content under the same name).
    /// The old version stays searchable until the new one is indexed.
    pub async fn queue_new_version(
        &self,
        doc: document::Model,
        sha256: String,
        size_bytes: i64,
        media_type: String,
        storage_key: String,
    ) -> Result<(document::Model, ingest_job::Model)> {
        let now = self.now();
        let version = doc.current_version + 1;
        let txn = self.db.begin().await.map_err(|e| db_error("begin", e))?;
        // Only if no one else queued a version meanwhile (two uploads of one name at once).
        let updated = document::Entity::update_many()
            .col_expr(document::Column::Sha256, Expr::value(sha256))
            .col_expr(document::Column::SizeBytes, Expr::value(size_bytes))
            .col_expr(document::Column::MediaType, Expr::value(media_type))
            .col_expr(document::Column::StorageKey, Expr::value(storage_key))
            .col_expr(document::Column::CurrentVersion, Expr::value(version))
            .col_expr(document::Column::Status, Expr::value(status::QUEUED))
            .col_expr(
                document::Column::ErrorMessage,
                Expr::value(Option::<String>::None),
            )
            .col_expr(document::Column::UpdatedAt, Expr::value(now))
            .filter(document::Column::Id.eq(doc.id))
            .filter(document::Column::CurrentVersion.eq(doc.current_version))
            .exec(&txn)
            .await
            .map_err(|e| db_error("queue new version", e))?;
        if updated.rows_affected == 0 {
            return Err(Error::Conflict(format!(
                "{} changed while this version was uploaded; upload it again",
                doc.file_name
            )));
        }
        let job = insert_job(&txn, doc.id, version, now).await?;
        let doc = document::Entity::find_by_id(doc.id)
            .one(&txn)
            .await
            .map_err(|e| db_error("queue new version", e))?
            .ok_or_else(|| Error::NotFound("the document was deleted".into()))?;
        txn.commit()
            .await
            .map_err(|e| db_error("queue new version", e))?;
        Ok((doc, job))
    }

    /// The documents with these ids that exist, in one query.
    pub async fn documents(&self, ids: &[DocumentId]) -> Result<Vec<document::Model>> {
        document::Entity::find()
            .filter(document::Column::Id.is_in(ids.to_vec()))
            .all(&self.db)
            .await
            .map_err(|e| db_error("find documents", e))
    }

    pub async fn document(&self, id: DocumentId) -> Result<Option<document::Model>> {
        document::Entity::find_by_id(id)
            .one(&self.db)
            .await
            .map_err(|e| db_error("find document", e))
    }

    /// The workspace's uploaded document with this content (sha256), if any. Documents of
    /// synced sources are never matched: uploads and sources do not share documents.
    pub async fn find_document_by_sha(
        &self,
        workspace: WorkspaceId,
        sha256: &str,
    ) -> Result<Option<document::Model>> {
        self.find_document_where(workspace, document::Column::Sha256.eq(sha256))
            .await
    }

    /// The workspace's newest uploaded document of this file name, if any (documents of
    /// synced sources are never matched).
    pub async fn find_document_by_file_name(
        &self,
        workspace: WorkspaceId,
        file_name: &str,
    ) -> Result<Option<document::Model>> {
        self.find_document_where(workspace, document::Column::FileName.eq(file_name))
            .await
    }

    async fn find_document_where(
        &self,
        workspace: WorkspaceId,
        condition: impl sea_orm::sea_query::IntoCondition,
    ) -> Result<Option<document::Model>> {
        document::Entity::find()
            .filter(document::Column::WorkspaceId.eq(workspace))
            .filter(document::Column::SourceId.is_null())
            .filter(condition)
            .order_by_desc(document::Column::CreatedAt)
            .one(&self.db)
            .await
            .map_err(|e| db_error("find document", e))
    }

    pub async fn list_documents(&self, workspace: WorkspaceId) -> Result<Vec<document::Model>> {
        document::Entity::find()
            .filter(document::Column::WorkspaceId.eq(workspace))
            .order_by_asc(document::Column::CreatedAt)
            .all(&self.db)
            .await
            .map_err(|e| db_error("list documents", e))
    }

    /// Deletes the document row; its chunk rows and jobs go with it (foreign keys cascade).
    pub async fn delete_document_row(&self, id: DocumentId) -> Result<()> {
        document::Entity::delete_by_id(id)
            .exec(&self.db)
            .await
            .map(drop)
            .map_err(|e| db_error("delete document", e))
    }

    /// Claims the oldest runnable job: queued and due, or running with an expired lease
    /// (its worker died). The lease must be renewed with [`Store::heartbeat`]. A job whose
    /// lease ran out [`MAX_LOST_LEASES`] times is failed for good instead, with its
    /// document, and the next job is claimed.
    pub async fn claim_next_job(&self, lease: Duration) -> Result<Option<ingest_job::Model>> {
        crate::lease::claim_next::<ingest_job::Entity>(&self.db, self.now(), lease).await
    }

    /// Extends a running job's lease; an error means the job is no longer this worker's.
    pub async fn heartbeat(&self, job: Uuid, lease: Duration) -> Result<()> {
        let now = self.now();
        let result = ingest_job::Entity::update_many()
            .col_expr(
                ingest_job::Column::LeaseUntil,
                Expr::value(Some(now + secs(lease))),
            )
            .col_expr(ingest_job::Column::UpdatedAt, Expr::value(now))
            .filter(ingest_job::Column::Id.eq(job))
            .filter(ingest_job::Column::State.eq(job_state::RUNNING))
            .exec(&self.db)
            .await
            .map_err(|e| db_error("heartbeat", e))?;
        if result.rows_affected == 0 {
            return Err(Error::Conflict("the job is no longer running".into()));
        }
        Ok(())
    }

    /// Marks the document being processed.
    pub async fn mark_processing(&self, document: DocumentId) -> Result<()> {
        document::Entity::update_many()
            .col_expr(document::Column::Status, Expr::value(status::PROCESSING))
            .col_expr(
                document::Column::ErrorMessage,
                Expr::value(Option::<String>::None),
            )
            .col_expr(document::Column::UpdatedAt, Expr::value(self.now()))
            .filter(document::Column::Id.eq(document))
            .exec(&self.db)
            .await
            .map(drop)
            .map_err(|e| db_error("mark processing", e))
    }

    /// Stores the version's chunk rows (replacing any from an earlier attempt), marks the
    /// job done and the document ready, with how its pages were read, in one transaction.
    pub async fn complete_job(
        &self,
        job: &ingest_job::Model,
        pages: PagesRead,
        chunks: Vec<NewChunk>,
    ) -> Result<()> {
        let now = self.now();
        let txn = self.db.begin().await.map_err(|e| db_error("begin", e))?;
        chunk::Entity::delete_many()
            .filter(chunk::Column::DocumentId.eq(job.document_id))
            .filter(chunk::Column::Version.eq(job.version))
            .exec(&txn)
            .await
            .map_err(|e| db_error("replace chunks", e))?;
        for batch in chunks.chunks(500) {
            let rows = batch.iter().map(|c| chunk::ActiveModel {
                id: Set(c.id),
                document_id: Set(job.document_id),
                version: Set(job.version),
                chunk_index: Set(c.chunk_index),
                page_start: Set(c.page_start),
                page_end: Set(c.page_end),
                char_start: Set(c.char_start),
                char_end: Set(c.char_end),
                token_count: Set(c.token_count),
            });
            chunk::Entity::insert_many(rows)
                .exec(&txn)
                .await
                .map_err(|e| db_error("store chunks", e))?;
        }
        finish_job(&txn, job.id, job_state::DONE, None, now).await?;
        let doc = document::Entity::find_by_id(job.document_id)
            .one(&txn)
            .await
            .map_err(|e| db_error("find document", e))?
            .ok_or_else(|| {
                Error::NotFound("the document was deleted while it was processed".into())
            })?;
        // A newer version may have been queued meanwhile; only the current one makes it ready.
        if doc.current_version == job.version {
            let mut am = doc.into_active_model();
            am.status = Set(status::READY.into());
            am.pages = Set(Some(pages.count));
            am.ocr_pages = Set(Some(pages.ocr));
            am.notice = Set(pages.notice);
            am.error_message = Set(None);
            am.updated_at = Set(now);
            am.update(&txn)
                .await
                .map_err(|e| db_error("mark ready", e))?;
        }
        txn.commit().await.map_err(|e| db_error("complete job", e))
    }

    /// Ends a job that failed. Transient failures go back to the queue after `retry_in`
    /// until `max_attempts`; anything else fails the document with `reason`.
    pub async fn fail_job(
        &self,
        job: &ingest_job::Model,
        reason: &str,
        transient: bool,
        retry_in: Duration,
        max_attempts: i32,
    ) -> Result<bool> {
        let now = self.now();
        let retry = transient && job.attempts < max_attempts;
        if retry {
            ingest_job::Entity::update_many()
                .col_expr(ingest_job::Column::State, Expr::value(job_state::QUEUED))
                .col_expr(
                    ingest_job::Column::RunAfter,
                    Expr::value(now + secs(retry_in)),
                )
                .col_expr(
                    ingest_job::Column::LeaseUntil,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .col_expr(
                    ingest_job::Column::LastError,
                    Expr::value(Some(reason.to_owned())),
                )
                .col_expr(ingest_job::Column::UpdatedAt, Expr::value(now))
                .filter(ingest_job::Column::Id.eq(job.id))
                .exec(&self.db)
                .await
                .map_err(|e| db_error("requeue job", e))?;
            return Ok(true);
        }
        let txn = self.db.begin().await.map_err(|e| db_error("begin", e))?;
        fail_for_good(&txn, job, reason, now).await?;
        txn.commit().await.map_err(|e| db_error("fail job", e))?;
        Ok(false)
    }

    /// The jobs still to run or running (queued, or claimed under a lease), oldest first:
    /// for consistency checks, where a queued or processing document must have one.
    pub async fn unfinished_jobs(&self) -> Result<Vec<ingest_job::Model>> {
        ingest_job::Entity::find()
            .filter(ingest_job::Column::State.is_in([job_state::QUEUED, job_state::RUNNING]))
            .order_by_asc(ingest_job::Column::CreatedAt)
            .all(&self.db)
            .await
            .map_err(|e| db_error("list unfinished jobs", e))
    }

    pub async fn job(&self, id: Uuid) -> Result<Option<ingest_job::Model>> {
        ingest_job::Entity::find_by_id(id)
            .one(&self.db)
            .await
            .map_err(|e| db_error("find job", e))
    }

    /// One chunk row by its id (which is its point id in the index).
    pub async fn chunk(&self, id: Uuid) -> Result<Option<chunk::Model>> {
        chunk::Entity::find_by_id(id)
            .one(&self.db)
            .await
            .map_err(|e| db_error("find chunk", e))
    }

    pub async fn chunks_of(&self, document: DocumentId, version: i32) -> Result<Vec<chunk::Model>> {
        chunk::Entity::find()
            .filter(chunk::Column::DocumentId.eq(document))
            .filter(chunk::Column::Version.eq(version))
            .order_by_asc(chunk::Column::ChunkIndex)
            .all(&self.db)
            .await
            .map_err(|e| db_error("list chunks", e))
    }

    /// The number of chunk rows of each document's current version, for the given
    /// documents (absent: none yet).
    pub async fn chunk_counts(
        &self,
        documents: &[document::Model],
    ) -> Result<std::collections::HashMap<DocumentId, u64>> {
        let ids: Vec<DocumentId> = documents.iter().map(|d| d.id).collect();
        let rows: Vec<(Uuid, i32, i64)> = chunk::Entity::find()
            .select_only()
            .column(chunk::Column::DocumentId)
            .column(chunk::Column::Version)
            .column_as(chunk::Column::Id.count(), "n")
            .filter(chunk::Column::DocumentId.is_in(ids))
            .group_by(chunk::Column::DocumentId)
            .group_by(chunk::Column::Version)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(|e| db_error("count chunks", e))?;
        Ok(rows
            .into_iter()
            .filter(|(doc, version, _)| {
                documents
                    .iter()
                    .any(|d| d.id == *doc && d.current_version == *version)
            })
            .map(|(doc, _, n)| (doc, n.max(0) as u64))
            .collect())
    }

    /// Removes the chunk rows of every version before `version`.
    pub async fn delete_chunks_before(&self, document: DocumentId, version: i32) -> Result<()> {
        chunk::Entity::delete_many()
            .filter(chunk::Column::DocumentId.eq(document))
            .filter(chunk::Column::Version.lt(version))
            .exec(&self.db)
            .await
            .map(drop)
            .map_err(|e| db_error("delete old chunks", e))
    }
}

/// How a version's pages were read, recorded when it is ready.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PagesRead {
    pub count: i32,
    /// Pages read by OCR.
    pub ocr: i32,
    /// What the owner should know about it (`ParsedDocument::notice`).
    pub notice: Option<String>,
}

pub(crate) fn document_row(
    new: NewDocument,
    state: &str,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> document::ActiveModel {
    document::ActiveModel {
        id: Set(new.id),
        workspace_id: Set(new.workspace_id),
        title: Set(new.title),
        file_name: Set(new.file_name),
        media_type: Set(new.media_type),
        sha256: Set(new.sha256),
        size_bytes: Set(new.size_bytes),
        pages: Set(None),
        status: Set(state.to_owned()),
        error_message: Set(error.map(str::to_owned)),
        current_version: Set(1),
        storage_key: Set(new.storage_key),
        source_id: Set(None),
        source_key: Set(None),
        source_mtime_ns: Set(None),
        source_etag: Set(None),
        source_last_modified: Set(None),
        ocr_pages: Set(None),
        notice: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

pub(crate) async fn insert_job(
    txn: &sea_orm::DatabaseTransaction,
    document: DocumentId,
    version: i32,
    now: DateTime<Utc>,
) -> Result<ingest_job::Model> {
    ingest_job::ActiveModel {
        id: Set(Uuid::new_v4()),
        document_id: Set(document),
        version: Set(version),
        state: Set(job_state::QUEUED.into()),
        attempts: Set(0),
        lost_leases: Set(0),
        run_after: Set(now),
        lease_until: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(txn)
    .await
    .map_err(|e| db_error("queue job", e))
}

/// Fails the job, and its document with `reason` unless a newer version was queued since.
async fn fail_for_good(
    txn: &sea_orm::DatabaseTransaction,
    job: &ingest_job::Model,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    finish_job(txn, job.id, job_state::FAILED, Some(reason), now).await?;
    if let Some(doc) = document::Entity::find_by_id(job.document_id)
        .one(txn)
        .await
        .map_err(|e| db_error("find document", e))?
        && doc.current_version == job.version
    {
        let mut am = doc.into_active_model();
        am.status = Set(status::FAILED.into());
        am.error_message = Set(Some(reason.to_owned()));
        am.updated_at = Set(now);
        am.update(txn)
            .await
            .map_err(|e| db_error("mark failed", e))?;
    }
    Ok(())
}

async fn finish_job(
    txn: &sea_orm::DatabaseTransaction,
    id: Uuid,
    state: &str,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    ingest_job::Entity::update_many()
        .col_expr(ingest_job::Column::State, Expr::value(state))
        .col_expr(
            ingest_job::Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            ingest_job::Column::LastError,
            Expr::value(error.map(str::to_owned)),
        )
        .col_expr(ingest_job::Column::UpdatedAt, Expr::value(now))
        .filter(ingest_job::Column::Id.eq(id))
        .exec(txn)
        .await
        .map(drop)
        .map_err(|e| db_error("finish job", e))
}

impl crate::lease::Leased for ingest_job::Entity {
    const CLAIM: &'static str = "claim job";
    fn state() -> ingest_job::Column {
        ingest_job::Column::State
    }
    fn run_after() -> ingest_job::Column {
        ingest_job::Column::RunAfter
    }
    fn lease_until() -> ingest_job::Column {
        ingest_job::Column::LeaseUntil
    }
    fn is_running(m: &ingest_job::Model) -> bool {
        m.state == job_state::RUNNING
    }
    fn lost_leases(m: &ingest_job::Model) -> i32 {
        m.lost_leases
    }
    fn claimed(
        m: ingest_job::Model,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> ingest_job::ActiveModel {
        let attempts = m.attempts + 1;
        let lost = m.lost_leases + i32::from(Self::is_running(&m));
        let mut am = m.into_active_model();
        am.state = Set(job_state::RUNNING.into());
        am.attempts = Set(attempts);
        am.lost_leases = Set(lost);
        am.lease_until = Set(Some(until));
        am.updated_at = Set(now);
        am
    }
    fn set_aside<'a>(
        txn: &'a sea_orm::DatabaseTransaction,
        job: &'a ingest_job::Model,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send + 'a {
        async move {
            tracing::warn!(
                job = %job.id,
                document = %job.document_id,
                lost_leases = job.lost_leases + 1,
                "a job's lease ran out once too often; failed for good"
            );
            let reason = format!(
                "reading this file stopped the worker (a crash or a hang) {} times; it was set \
                 aside: check that it opens, or save it in another format, and upload it again",
                job.lost_leases + 1
            );
            fail_for_good(txn, job, &reason, now).await
        }
    }
}
