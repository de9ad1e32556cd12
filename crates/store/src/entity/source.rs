use sea_orm::entity::prelude::*;

/// A synced source of a workspace's documents, and its sync job (see
/// `lectern-migrations`, `m20261202_000001_sources`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sources")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub workspace_id: Uuid,
    /// Unique within the workspace.
    pub name: String,
    /// `folder` (`crate::source_kind`).
    pub kind: String,
    /// The kind's settings: for a folder `{"path", "include", "exclude"}`.
    pub settings: Json,
    /// Seconds between scheduled syncs; `None`: only when asked.
    pub interval_secs: Option<i64>,
    /// `crate::sync_state`: idle, queued, running or deleting.
    pub sync_state: String,
    /// When the queued sync is due.
    pub run_after: Option<DateTimeUtc>,
    pub lease_until: Option<DateTimeUtc>,
    /// Claims of the current sync; reset to 0 when a sync ends.
    pub attempts: i32,
    /// Times the current sync's lease ran out (its worker crashed or hung) and it was
    /// claimed again; reset to 0 when a sync ends.
    pub lost_leases: i32,
    pub last_sync_at: Option<DateTimeUtc>,
    /// The counts of the last sync that completed (`lectern_api::ingest::SyncResult`).
    pub last_result: Option<Json>,
    /// Why the last sync failed; `None` when it completed.
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
