//! Synced sources: a workspace's documents may come from a source that Lectern reads again
//! and again (a folder on the server's disk now; web sites later), not only from uploads.
//!
//! `sources` holds each source: its kind (`folder`), its settings as JSON (for a folder:
//! the path, include and exclude globs), its schedule (`interval_secs`, none: only when
//! asked), and its sync job. The job lives on the source's own row rather than in
//! `ingest_jobs`, whose rows each index one document version (`document_id` is required
//! there, and unique with the version): a source has at most one sync queued or running by
//! construction, its schedule is the job's due time (`run_after`), and it is claimed with
//! the same lease, attempt count and expiry rule as a document's job. `sync_state` is
//! `idle`, `queued`, `running` or `deleting` (removal under way: never claimed again).
//! `last_sync_at`, `last_result` (JSON counts) and `last_error` tell how the last sync went.
//!
//! Each document a source owns names it (`documents.source_id`, none for an upload) and
//! carries its key there (`source_key`: for a folder, the path relative to the folder,
//! `/`-separated; a URL for the web kind), unique within the source, and the file's
//! modification time when it was last read (`source_mtime_ns`): with the size already on
//! the row, a sync skips a file whose size and time are unchanged without reading it.
//! `source_id` has no foreign key: SQLite cannot add one to an existing table, nor drop a
//! column that has one; removing a source deletes its documents through the ingest
//! service (their index points and originals too), never by cascade.

use sea_orm_migration::prelude::*;

use crate::columns::{cascade, id, text, text_null, time, uuid};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Workspaces {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Sources {
    Table,
    Id,
    WorkspaceId,
    /// Unique within the workspace: the command line names a source by it.
    Name,
    /// `folder`; `web` later.
    Kind,
    /// The kind's settings, JSON.
    Settings,
    /// Seconds between scheduled syncs; none: only when asked.
    IntervalSecs,
    SyncState,
    /// When the queued sync is due.
    RunAfter,
    LeaseUntil,
    /// Claims of the current sync (reset when a sync ends).
    Attempts,
    LastSyncAt,
    LastResult,
    LastError,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Documents {
    Table,
    SourceId,
    SourceKey,
    SourceMtimeNs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Sources::Table)
                    .col(id(Sources::Id))
                    .col(uuid(Sources::WorkspaceId))
                    .col(text(Sources::Name))
                    .col(ColumnDef::new(Sources::Kind).string_len(16).not_null())
                    .col(ColumnDef::new(Sources::Settings).json().not_null())
                    .col(ColumnDef::new(Sources::IntervalSecs).big_integer().null())
                    .col(ColumnDef::new(Sources::SyncState).string_len(16).not_null())
                    .col(
                        ColumnDef::new(Sources::RunAfter)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Sources::LeaseUntil)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Sources::Attempts)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(Sources::LastSyncAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new(Sources::LastResult).json().null())
                    .col(text_null(Sources::LastError))
                    .col(time(Sources::CreatedAt))
                    .col(time(Sources::UpdatedAt))
                    .foreign_key(&mut cascade(
                        (Sources::Table, Sources::WorkspaceId),
                        (Workspaces::Table, Workspaces::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sources_workspace_name")
                    .table(Sources::Table)
                    .col(Sources::WorkspaceId)
                    .col(Sources::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sources_claim")
                    .table(Sources::Table)
                    .col(Sources::SyncState)
                    .col(Sources::RunAfter)
                    .to_owned(),
            )
            .await?;
        // One column per statement: SQLite alters one thing at a time.
        for column in [
            ColumnDef::new(Documents::SourceId).uuid().null().to_owned(),
            ColumnDef::new(Documents::SourceKey)
                .string()
                .null()
                .to_owned(),
            ColumnDef::new(Documents::SourceMtimeNs)
                .big_integer()
                .null()
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Documents::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_documents_source_key")
                    .table(Documents::Table)
                    .col(Documents::SourceId)
                    .col(Documents::SourceKey)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Plain SQL: both PostgreSQL and SQLite (3.35 and later) drop an index and then
        // the columns it covered in place. The documents of sources stay, as uploads.
        let db = manager.get_connection();
        for step in [
            "DROP INDEX IF EXISTS idx_documents_source_key",
            "ALTER TABLE documents DROP COLUMN source_mtime_ns",
            "ALTER TABLE documents DROP COLUMN source_key",
            "ALTER TABLE documents DROP COLUMN source_id",
        ] {
            db.execute_unprepared(step).await?;
        }
        manager
            .drop_table(Table::drop().table(Sources::Table).to_owned())
            .await
    }
}
