//! Synced sources (a folder on the server; web sites later), the documents each owns, and
//! their sync jobs.
//!
//! A source's sync job lives on the source's own row (see the migration
//! `m20261202_000001_sources` for why not in `ingest_jobs`), and is claimed exactly as a
//! document's job is: the oldest due (queued with `run_after` past, or running with its
//! lease run out), under a lease renewed by heartbeats, PostgreSQL `FOR UPDATE SKIP LOCKED`
//! and SQLite an immediate write transaction; a transient failure is retried with backoff
//! up to `ingest.max_attempts`; a sync whose lease ran out [`MAX_LOST_LEASES`](crate::documents::MAX_LOST_LEASES) times is
//! set aside. The claim count doubles as the claim's token: a worker's heartbeats and its
//! end of the sync only take effect while the row is still running under its claim, so a
//! worker that lost its lease (or a source being removed) cannot overwrite anything.
//!
//! When a sync ends, the next is scheduled `interval_secs` later, or none.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lectern_core::{DocumentId, Error, Result, WorkspaceId};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use crate::documents::secs;
use crate::entity::{document, ingest_job, source};
use crate::error::db_error;
use crate::{NewDocument, Store};

/// States of a source's sync, as stored.
pub mod sync_state {
    /// Nothing queued: a sync runs when asked.
    pub const IDLE: &str = "idle";
    /// A sync is due at `run_after`.
    pub const QUEUED: &str = crate::lease::QUEUED;
    /// A worker holds the sync under a lease.
    pub const RUNNING: &str = crate::lease::RUNNING;
    /// The source is being removed (its documents deleted); it is never claimed again.
    pub const DELETING: &str = "deleting";
}

/// Kinds of source, as stored.
pub mod source_kind {
    /// A directory on the server's disk, read recursively.
    pub const FOLDER: &str = "folder";
    /// A web site, crawled from a start URL within a URL prefix.
    pub const WEB: &str = "web";
}

/// The shortest schedule: a sync every 10 seconds.
pub const MIN_SYNC_INTERVAL_SECS: u64 = 10;
/// The longest schedule: a year.
pub const MAX_SYNC_INTERVAL_SECS: u64 = 366 * 24 * 3600;

/// A source to add.
#[derive(Debug, Clone)]
pub struct NewSource {
    pub workspace_id: WorkspaceId,
    pub name: String,
    /// One of [`source_kind`].
    pub kind: String,
    /// The kind's settings, checked by the caller (the ingest service).
    pub settings: serde_json::Value,
    /// Seconds between scheduled syncs; `None`: only when asked.
    pub interval_secs: Option<u64>,
}

/// What an edit of a source changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct SourceChanges {
    pub name: Option<String>,
    /// The kind's settings, whole, checked by the caller (the ingest service).
    pub settings: Option<serde_json::Value>,
    /// `Some(None)`: synced only when asked from now on.
    pub interval_secs: Option<Option<u64>>,
}

/// A source's name, trimmed, or why it is refused.
fn checked_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Error::Invalid(
            "a source name needs 1 to 100 characters".into(),
        ));
    }
    Ok(name.to_owned())
}

/// Refuses a schedule outside [`MIN_SYNC_INTERVAL_SECS`]..=[`MAX_SYNC_INTERVAL_SECS`].
fn check_interval(interval_secs: Option<u64>) -> Result<()> {
    if let Some(every) = interval_secs
        && !(MIN_SYNC_INTERVAL_SECS..=MAX_SYNC_INTERVAL_SECS).contains(&every)
    {
        return Err(Error::Invalid(format!(
            "a source's schedule is between {MIN_SYNC_INTERVAL_SECS} seconds and a year ({MAX_SYNC_INTERVAL_SECS} seconds), not {every}"
        )));
    }
    Ok(())
}

/// A unique-name conflict, said for a person; any other error as it was.
fn name_taken(e: Error, name: &str) -> Error {
    match e {
        Error::Conflict(_) => Error::Conflict(format!(
            "this workspace already has a source named {name:?}; choose another name"
        )),
        other => other,
    }
}

fn being_removed() -> Error {
    Error::Conflict("this source is being removed".into())
}

/// The file a document of a source stands for, as a sync last saw it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub source_id: Uuid,
    /// The document's key in the source: for a folder, the path relative to the folder,
    /// `/`-separated.
    pub key: String,
    /// The file's modification time (nanoseconds since the epoch) when it was read;
    /// `None` makes the next sync read it again (a time too recent to trust: the file
    /// may still be changing within the clock's resolution).
    pub mtime_ns: Option<i64>,
    /// For a web page: the `ETag` and `Last-Modified` headers its server sent, as sent.
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Store {
    /// Adds a source with its first sync due at once. Names are unique per workspace.
    pub async fn create_source(&self, new: NewSource) -> Result<source::Model> {
        let name = checked_name(&new.name)?;
        check_interval(new.interval_secs)?;
        let now = self.now();
        source::ActiveModel {
            id: Set(Uuid::new_v4()),
            workspace_id: Set(new.workspace_id),
            name: Set(name.clone()),
            kind: Set(new.kind),
            settings: Set(new.settings),
            interval_secs: Set(new.interval_secs.map(|s| s as i64)),
            sync_state: Set(sync_state::QUEUED.into()),
            run_after: Set(Some(now)),
            lease_until: Set(None),
            attempts: Set(0),
            lost_leases: Set(0),
            last_sync_at: Set(None),
            last_result: Set(None),
            last_error: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&self.db)
        .await
        .map_err(|e| name_taken(db_error("add source", e), &name))
    }

    /// Changes a source's name, settings or schedule, checked as when it was added. A sync
    /// running now goes on with the settings it started with; the next one applies the
    /// new ones. A new schedule moves a sync that was only scheduled (due later), or
    /// schedules one for a source synced only when asked (its last sync plus the new
    /// interval, or now if that has passed); without a schedule, a sync only scheduled is
    /// dropped. A sync due now (asked for, or overdue) stays due, and a running one ends
    /// by scheduling the next with the new interval. A source being removed cannot change.
    pub async fn update_source(&self, id: Uuid, changes: SourceChanges) -> Result<source::Model> {
        let missing = || Error::NotFound("no such source".into());
        let found = self.source(id).await?.ok_or_else(missing)?;
        if found.sync_state == sync_state::DELETING {
            return Err(being_removed());
        }
        let now = self.now();
        let mut row = source::ActiveModel {
            updated_at: Set(now),
            ..Default::default()
        };
        let mut name = found.name.clone();
        if let Some(new) = &changes.name {
            name = checked_name(new)?;
            row.name = Set(name.clone());
        }
        if let Some(every) = changes.interval_secs {
            check_interval(every)?;
            row.interval_secs = Set(every.map(|s| s as i64));
        }
        if let Some(settings) = changes.settings {
            row.settings = Set(settings);
        }
        let updated = source::Entity::update_many()
            .set(row)
            .filter(source::Column::Id.eq(id))
            .filter(source::Column::SyncState.ne(sync_state::DELETING))
            .exec(&self.db)
            .await
            .map_err(|e| name_taken(db_error("change source", e), &name))?;
        if updated.rows_affected == 0 {
            return Err(being_removed());
        }
        // Only a schedule that changed moves the next sync (a form sends the schedule
        // with every edit, a rename too).
        if let Some(every) = changes.interval_secs
            && every.map(|s| s as i64) != found.interval_secs
        {
            self.reschedule(&found, every, now).await?;
        }
        self.source(id).await?.ok_or_else(missing)
    }

    /// Moves the sync that `found` (the row before an edit) had only scheduled, or
    /// schedules one, for the schedule `every` (see [`Store::update_source`]). Nothing is
    /// changed when the row's sync meanwhile became due or was claimed.
    async fn reschedule(
        &self,
        found: &source::Model,
        every: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        // A retry after a failure (attempts made) keeps its time: it is not the schedule's.
        let scheduled = found.sync_state == sync_state::QUEUED
            && found.attempts == 0
            && found.run_after.is_some_and(|at| at > now);
        let idle = found.sync_state == sync_state::IDLE;
        let (state, run_after) = match every {
            Some(every) if scheduled || idle => {
                let next = found.last_sync_at.unwrap_or(now) + secs(Duration::from_secs(every));
                (sync_state::QUEUED, Some(next.max(now)))
            }
            None if scheduled => (sync_state::IDLE, None),
            _ => return Ok(()),
        };
        let mut still = Condition::all()
            .add(source::Column::Id.eq(found.id))
            .add(source::Column::SyncState.eq(found.sync_state.clone()));
        if scheduled {
            still = still.add(source::Column::RunAfter.gt(now));
        }
        source::Entity::update_many()
            .col_expr(source::Column::SyncState, Expr::value(state))
            .col_expr(source::Column::RunAfter, Expr::value(run_after))
            .filter(still)
            .exec(&self.db)
            .await
            .map(drop)
            .map_err(|e| db_error("schedule a sync", e))
    }

    pub async fn source(&self, id: Uuid) -> Result<Option<source::Model>> {
        source::Entity::find_by_id(id)
            .one(&self.db)
            .await
            .map_err(|e| db_error("find source", e))
    }

    /// The workspace's sources, oldest first.
    pub async fn list_sources(&self, workspace: WorkspaceId) -> Result<Vec<source::Model>> {
        source::Entity::find()
            .filter(source::Column::WorkspaceId.eq(workspace))
            .order_by_asc(source::Column::CreatedAt)
            .all(&self.db)
            .await
            .map_err(|e| db_error("list sources", e))
    }

    /// The workspace's source of this name, or of this id written out.
    pub async fn find_source(
        &self,
        workspace: WorkspaceId,
        name: &str,
    ) -> Result<Option<source::Model>> {
        let name = name.trim();
        let mut called = Condition::any().add(source::Column::Name.eq(name));
        if let Ok(id) = Uuid::parse_str(name) {
            called = called.add(source::Column::Id.eq(id));
        }
        source::Entity::find()
            .filter(source::Column::WorkspaceId.eq(workspace))
            .filter(called)
            .one(&self.db)
            .await
            .map_err(|e| db_error("find source", e))
    }

    /// Every document the source owns, by key.
    pub async fn source_documents(&self, source: Uuid) -> Result<Vec<document::Model>> {
        document::Entity::find()
            .filter(document::Column::SourceId.eq(source))
            .order_by_asc(document::Column::SourceKey)
            .all(&self.db)
            .await
            .map_err(|e| db_error("list the documents of a source", e))
    }

    pub async fn count_source_documents(&self, source: Uuid) -> Result<u64> {
        document::Entity::find()
            .filter(document::Column::SourceId.eq(source))
            .count(&self.db)
            .await
            .map_err(|e| db_error("count the documents of a source", e))
    }

    /// Records a new document of a source, with a queued job for its version 1, in one
    /// transaction (as [`Store::create_document`] does for an upload).
    pub async fn create_source_document(
        &self,
        new: NewDocument,
        file: &SourceFile,
    ) -> Result<(document::Model, ingest_job::Model)> {
        let (doc, job) = self.insert_document(new, Some(file), None).await?;
        Ok((doc, job.expect("a queued document has a job")))
    }

    /// Records a file of a source that could not be accepted (unreadable type, too large),
    /// as a failed document with the reason and no job: the next sync skips it while the
    /// file stays the same.
    pub async fn create_failed_source_document(
        &self,
        new: NewDocument,
        file: &SourceFile,
        reason: &str,
    ) -> Result<document::Model> {
        Ok(self.insert_document(new, Some(file), Some(reason)).await?.0)
    }

    /// Records the modification time at which a source document's file was last read
    /// (its content unchanged, or just queued as a new version).
    pub async fn mark_source_file_seen(
        &self,
        document: DocumentId,
        mtime_ns: Option<i64>,
    ) -> Result<()> {
        document::Entity::update_many()
            .col_expr(document::Column::SourceMtimeNs, Expr::value(mtime_ns))
            .filter(document::Column::Id.eq(document))
            .exec(&self.db)
            .await
            .map(drop)
            .map_err(|e| db_error("record a source file", e))
    }

    /// Records the validators a web page's server last sent (`ETag`, `Last-Modified`),
    /// asked again at the next crawl so that an unchanged page costs a `304`.
    pub async fn mark_web_page_seen(
        &self,
        document: DocumentId,
        etag: Option<String>,
        last_modified: Option<String>,
    ) -> Result<()> {
        document::Entity::update_many()
            .col_expr(document::Column::SourceEtag, Expr::value(etag))
            .col_expr(
                document::Column::SourceLastModified,
                Expr::value(last_modified),
            )
            .filter(document::Column::Id.eq(document))
            .exec(&self.db)
            .await
            .map(drop)
            .map_err(|e| db_error("record a web page", e))
    }

    /// A file of the source moved (the same bytes at a new key): the document follows it,
    /// with its new name and title, and keeps its versions, chunks and index points.
    pub async fn rename_source_document(
        &self,
        document: DocumentId,
        file: &SourceFile,
        file_name: &str,
        title: &str,
    ) -> Result<()> {
        let updated = document::Entity::update_many()
            .col_expr(
                document::Column::SourceKey,
                Expr::value(Some(file.key.clone())),
            )
            .col_expr(document::Column::SourceMtimeNs, Expr::value(file.mtime_ns))
            .col_expr(
                document::Column::FileName,
                Expr::value(file_name.to_owned()),
            )
            .col_expr(document::Column::Title, Expr::value(title.to_owned()))
            .col_expr(document::Column::UpdatedAt, Expr::value(self.now()))
            .filter(document::Column::Id.eq(document))
            .filter(document::Column::SourceId.eq(file.source_id))
            .exec(&self.db)
            .await
            .map_err(|e| db_error("rename a source document", e))?;
        if updated.rows_affected == 0 {
            return Err(Error::NotFound(
                "the document was deleted while its source was synced".into(),
            ));
        }
        Ok(())
    }

    /// Queues a sync of the source now (an idle or scheduled one). A sync running under a
    /// live lease is a conflict; one whose lease ran out is left to the next worker, which
    /// takes it over.
    pub async fn request_sync(&self, id: Uuid) -> Result<source::Model> {
        let now = self.now();
        let missing = || Error::NotFound("no such source".into());
        let found = self.source(id).await?.ok_or_else(missing)?;
        let state = found.sync_state.clone();
        match state.as_str() {
            sync_state::DELETING => return Err(being_removed()),
            sync_state::RUNNING if found.lease_until.is_some_and(|l| l >= now) => {
                return Err(Error::Conflict(
                    "a sync of this source is running; its result will show when it ends".into(),
                ));
            }
            sync_state::RUNNING => return Ok(found),
            _ => {}
        }
        let updated = source::Entity::update_many()
            .col_expr(source::Column::SyncState, Expr::value(sync_state::QUEUED))
            .col_expr(source::Column::RunAfter, Expr::value(Some(now)))
            .col_expr(source::Column::UpdatedAt, Expr::value(now))
            .filter(source::Column::Id.eq(id))
            .filter(source::Column::SyncState.is_in([sync_state::IDLE, sync_state::QUEUED]))
            .exec(&self.db)
            .await
            .map_err(|e| db_error("queue a sync", e))?;
        if updated.rows_affected == 0 {
            return Err(Error::Conflict(
                "a sync of this source just started (or it is being removed)".into(),
            ));
        }
        self.source(id).await?.ok_or_else(missing)
    }

    /// Claims the oldest due sync: queued and due, or running with an expired lease (its
    /// worker died). The lease must be renewed with [`Store::heartbeat_sync`]. A sync whose
    /// lease ran out [`MAX_LOST_LEASES`](crate::documents::MAX_LOST_LEASES) times is set aside instead (failed, with the
    /// next one scheduled as usual), and the next due sync is claimed.
    pub async fn claim_next_sync(&self, lease: Duration) -> Result<Option<source::Model>> {
        crate::lease::claim_next::<source::Entity>(&self.db, self.now(), lease).await
    }

    /// Extends a running sync's lease; an error means the sync is no longer this claim's
    /// (another worker took it over, or the source is being removed): stop.
    pub async fn heartbeat_sync(&self, claimed: &source::Model, lease: Duration) -> Result<()> {
        let now = self.now();
        let updated = source::Entity::update_many()
            .col_expr(
                source::Column::LeaseUntil,
                Expr::value(Some(now + secs(lease))),
            )
            .col_expr(source::Column::UpdatedAt, Expr::value(now))
            .filter(source::Column::Id.eq(claimed.id))
            .filter(source::Column::SyncState.eq(sync_state::RUNNING))
            .filter(source::Column::Attempts.eq(claimed.attempts))
            .exec(&self.db)
            .await
            .map_err(|e| db_error("heartbeat", e))?;
        if updated.rows_affected == 0 {
            return Err(Error::Conflict(
                "the sync is no longer this worker's (taken over, or the source is being removed)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Ends a claimed sync that completed: its result recorded, the next one scheduled.
    /// `false` when the sync was no longer this claim's (nothing is changed then).
    pub async fn complete_sync(
        &self,
        claimed: &source::Model,
        result: serde_json::Value,
    ) -> Result<bool> {
        end_sync(&self.db, claimed, Some(result), None, self.now()).await
    }

    /// Ends a claimed sync that failed. A transient failure is queued again after
    /// `retry_in` until `max_attempts` (`Ok(true)`); anything else records `reason` as the
    /// last sync's and schedules the next one as usual (`Ok(false)`).
    pub async fn fail_sync(
        &self,
        claimed: &source::Model,
        reason: &str,
        transient: bool,
        retry_in: Duration,
        max_attempts: i32,
    ) -> Result<bool> {
        let now = self.now();
        if transient && claimed.attempts < max_attempts {
            source::Entity::update_many()
                .col_expr(source::Column::SyncState, Expr::value(sync_state::QUEUED))
                .col_expr(
                    source::Column::RunAfter,
                    Expr::value(Some(now + secs(retry_in))),
                )
                .col_expr(
                    source::Column::LeaseUntil,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .col_expr(
                    source::Column::LastError,
                    Expr::value(Some(reason.to_owned())),
                )
                .col_expr(source::Column::UpdatedAt, Expr::value(now))
                .filter(source::Column::Id.eq(claimed.id))
                .filter(source::Column::SyncState.eq(sync_state::RUNNING))
                .filter(source::Column::Attempts.eq(claimed.attempts))
                .exec(&self.db)
                .await
                .map_err(|e| db_error("requeue sync", e))?;
            return Ok(true);
        }
        end_sync(&self.db, claimed, None, Some(reason.to_owned()), now).await?;
        Ok(false)
    }

    /// Marks the source as being removed: no sync is claimed any more, and a running one
    /// stops at its next heartbeat. Its documents are deleted next (by the ingest service,
    /// which removes their index points and originals too), then its row.
    pub async fn mark_source_deleting(&self, id: Uuid) -> Result<()> {
        source::Entity::update_many()
            .col_expr(source::Column::SyncState, Expr::value(sync_state::DELETING))
            .col_expr(
                source::Column::RunAfter,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                source::Column::LeaseUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(source::Column::UpdatedAt, Expr::value(self.now()))
            .filter(source::Column::Id.eq(id))
            .exec(&self.db)
            .await
            .map(drop)
            .map_err(|e| db_error("remove source", e))
    }

    /// Deletes the source's row (its documents must be gone already).
    pub async fn delete_source_row(&self, id: Uuid) -> Result<()> {
        source::Entity::delete_by_id(id)
            .exec(&self.db)
            .await
            .map(drop)
            .map_err(|e| db_error("remove source", e))
    }
}

/// A document may be added to a source only while the source is there and not being
/// removed. The row is read with a shared lock, so that a removal (which first marks the
/// source `deleting`) waits for a sync's insert to commit, and then finds the document
/// and deletes it too; a sync that comes after the mark is refused.
pub(crate) async fn source_takes_documents(
    txn: &sea_orm::DatabaseTransaction,
    source_id: Uuid,
) -> Result<()> {
    use sea_orm::QuerySelect;
    let found = source::Entity::find_by_id(source_id)
        .filter(source::Column::SyncState.ne(sync_state::DELETING))
        .lock_shared()
        .one(txn)
        .await
        .map_err(|e| db_error("find source", e))?;
    if found.is_none() {
        return Err(Error::Conflict(
            "the source is being removed; its sync stops".into(),
        ));
    }
    Ok(())
}

pub(crate) fn with_source(
    mut row: document::ActiveModel,
    file: &SourceFile,
) -> document::ActiveModel {
    row.source_id = Set(Some(file.source_id));
    row.source_key = Set(Some(file.key.clone()));
    row.source_mtime_ns = Set(file.mtime_ns);
    row.source_etag = Set(file.etag.clone());
    row.source_last_modified = Set(file.last_modified.clone());
    row
}

/// Ends the claimed sync (completed with `result`, or failed with `error`) and schedules
/// the next one; only while the row is still running under this claim. `Ok(false)` when
/// it was not.
async fn end_sync(
    db: &impl ConnectionTrait,
    claimed: &source::Model,
    result: Option<serde_json::Value>,
    error: Option<String>,
    now: DateTime<Utc>,
) -> Result<bool> {
    // The schedule as it is now: it may have been changed while the sync ran.
    let interval_secs = source::Entity::find_by_id(claimed.id)
        .one(db)
        .await
        .map_err(|e| db_error("end sync", e))?
        .map_or(claimed.interval_secs, |row| row.interval_secs);
    let next = interval_secs.map(|every| now + secs(Duration::from_secs(every.max(0) as u64)));
    let ended = source::ActiveModel {
        sync_state: Set(if next.is_some() {
            sync_state::QUEUED
        } else {
            sync_state::IDLE
        }
        .to_owned()),
        run_after: Set(next),
        lease_until: Set(None),
        attempts: Set(0),
        lost_leases: Set(0),
        last_sync_at: Set(Some(now)),
        last_result: Set(result),
        last_error: Set(error),
        updated_at: Set(now),
        ..Default::default()
    };
    let updated = source::Entity::update_many()
        .set(ended)
        .filter(source::Column::Id.eq(claimed.id))
        .filter(source::Column::SyncState.eq(sync_state::RUNNING))
        .filter(source::Column::Attempts.eq(claimed.attempts))
        .exec(db)
        .await
        .map_err(|e| db_error("end sync", e))?;
    Ok(updated.rows_affected > 0)
}

impl crate::lease::Leased for source::Entity {
    const CLAIM: &'static str = "claim sync";
    fn state() -> source::Column {
        source::Column::SyncState
    }
    fn run_after() -> source::Column {
        source::Column::RunAfter
    }
    fn lease_until() -> source::Column {
        source::Column::LeaseUntil
    }
    fn is_running(m: &source::Model) -> bool {
        m.sync_state == sync_state::RUNNING
    }
    fn lost_leases(m: &source::Model) -> i32 {
        m.lost_leases
    }
    fn claimed(m: source::Model, until: DateTime<Utc>, now: DateTime<Utc>) -> source::ActiveModel {
        let attempts = m.attempts + 1;
        let lost = m.lost_leases + i32::from(Self::is_running(&m));
        let mut am = m.into_active_model();
        am.sync_state = Set(sync_state::RUNNING.into());
        am.attempts = Set(attempts);
        am.lost_leases = Set(lost);
        am.lease_until = Set(Some(until));
        am.updated_at = Set(now);
        am
    }
    fn set_aside<'a>(
        txn: &'a sea_orm::DatabaseTransaction,
        found: &'a source::Model,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send + 'a {
        async move {
            tracing::warn!(
                source = %found.id,
                lost_leases = found.lost_leases + 1,
                "a sync's lease ran out once too often; set aside"
            );
            let reason = format!(
                "the sync stopped the worker (a crash or a hang) {} times and was set aside; \
                 look for a file in the source that makes Lectern crash, exclude it, and sync again",
                found.lost_leases + 1
            );
            end_sync(txn, found, None, Some(reason), now)
                .await
                .map(drop)
        }
    }
}
