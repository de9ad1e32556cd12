//! Workspace names are unique per owner, not across the site: a site-wide unique name let
//! anyone learn, by trying to create a workspace, that a name was taken in another tenant.
//!
//! `workspaces.owner_id` is the account whose names a workspace's name counts among: the
//! person who created it, or none for the workspaces the operator makes at the command line
//! (`lectern ingest`). Existing workspaces take their earliest owner member. Two unique
//! indexes replace the site-wide key: `(owner_id, name)`, and `name` among the ownerless ones
//! (SQL counts NULLs as distinct, so the first index alone would not hold those). An owner's
//! account cannot be deleted while it owns workspaces (the foreign key has no action).
//!
//! PostgreSQL drops the constraint in place. SQLite cannot drop a constraint declared in
//! `CREATE TABLE`, so there the table is rebuilt as SQLite documents
//! (<https://sqlite.org/lang_altertable.html#otheralter>): with foreign keys off, which SQLite
//! allows only outside a transaction, so on one connection held for the whole rebuild;
//! with them on, dropping the old table would cascade to every membership and document.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DatabaseBackend, Statement, TransactionTrait, sqlx};

use crate::columns::{id, text, time};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Workspaces {
    Id,
    Name,
    OwnerId,
    CreatedAt,
}

/// The table SQLite builds before it takes the place of `workspaces`.
#[derive(DeriveIden)]
enum WorkspacesNew {
    Table,
}

/// Each workspace's earliest owner member (by when they became one), for existing rows.
const EARLIEST_OWNER: &str = "(SELECT m.user_id FROM memberships m \
     WHERE m.workspace_id = workspaces.id AND m.role = 'owner' \
     ORDER BY m.created_at, m.user_id LIMIT 1)";

const OWNER_NAME_INDEX: &str = "CREATE UNIQUE INDEX IF NOT EXISTS idx_workspaces_owner_name \
     ON workspaces (owner_id, name)";
const OWNERLESS_NAME_INDEX: &str = "CREATE UNIQUE INDEX IF NOT EXISTS \
     idx_workspaces_ownerless_name ON workspaces (name) WHERE owner_id IS NULL";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// No transaction around the whole: SQLite must turn foreign keys off before its own
    /// (see the module doc). Each backend's steps below run in a transaction of their own.
    fn use_transaction(&self) -> Option<bool> {
        Some(false)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            DatabaseBackend::Sqlite => {
                let new_table = Table::create()
                    .table(WorkspacesNew::Table)
                    .col(id(Workspaces::Id))
                    .col(text(Workspaces::Name))
                    .col(ColumnDef::new(Workspaces::OwnerId).uuid().null())
                    .col(time(Workspaces::CreatedAt))
                    .foreign_key(
                        &mut ForeignKey::create()
                            .from(WorkspacesNew::Table, Workspaces::OwnerId)
                            .to(Users::Table, Users::Id)
                            .to_owned(),
                    )
                    .to_owned();
                let copy = format!(
                    "INSERT INTO workspaces_new (id, name, owner_id, created_at) \
                     SELECT id, name, {EARLIEST_OWNER}, created_at FROM workspaces"
                );
                rebuild_sqlite_workspaces(manager, new_table, copy, true).await
            }
            _ => {
                // Each step may run again after a crash between this commit and the
                // migration's record, so each is written to be a no-op the second time.
                let backfill = format!(
                    "UPDATE workspaces SET owner_id = {EARLIEST_OWNER} WHERE owner_id IS NULL"
                );
                in_transaction(
                    manager,
                    &[
                        "ALTER TABLE workspaces ADD COLUMN IF NOT EXISTS owner_id uuid NULL \
                         REFERENCES users (id)",
                        backfill.as_str(),
                        // PostgreSQL's name for the `UNIQUE` the first migration declared inline.
                        "ALTER TABLE workspaces DROP CONSTRAINT IF EXISTS workspaces_name_key",
                        OWNER_NAME_INDEX,
                        OWNERLESS_NAME_INDEX,
                    ],
                )
                .await
            }
        }
    }

    /// Back to names unique across the site: refused, with the names, while two workspaces
    /// share one (rename them first).
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let shared = manager
            .get_connection()
            .query_all_raw(Statement::from_string(
                manager.get_database_backend(),
                "SELECT name FROM workspaces GROUP BY name HAVING COUNT(*) > 1 ORDER BY name",
            ))
            .await?
            .iter()
            .map(|row| row.try_get::<String>("", "name"))
            .collect::<Result<Vec<_>, _>>()?;
        if !shared.is_empty() {
            return Err(DbErr::Migration(format!(
                "cannot make workspace names unique across the site again: several workspaces \
                 are named {shared:?}; rename them first"
            )));
        }
        match manager.get_database_backend() {
            DatabaseBackend::Sqlite => {
                let old_table = Table::create()
                    .table(WorkspacesNew::Table)
                    .col(id(Workspaces::Id))
                    .col(text(Workspaces::Name).unique_key())
                    .col(time(Workspaces::CreatedAt))
                    .to_owned();
                let copy = "INSERT INTO workspaces_new (id, name, created_at) \
                            SELECT id, name, created_at FROM workspaces"
                    .to_owned();
                rebuild_sqlite_workspaces(manager, old_table, copy, false).await
            }
            _ => {
                in_transaction(
                    manager,
                    &[
                        "DROP INDEX IF EXISTS idx_workspaces_ownerless_name",
                        "DROP INDEX IF EXISTS idx_workspaces_owner_name",
                        "ALTER TABLE workspaces DROP COLUMN IF EXISTS owner_id",
                        "ALTER TABLE workspaces ADD CONSTRAINT workspaces_name_key UNIQUE (name)",
                    ],
                )
                .await
            }
        }
    }
}

/// Runs `steps` in one transaction (PostgreSQL).
async fn in_transaction(manager: &SchemaManager<'_>, steps: &[&str]) -> Result<(), DbErr> {
    let txn = manager.get_connection().begin().await?;
    for step in steps {
        txn.execute_unprepared(step).await?;
    }
    txn.commit().await
}

/// Replaces SQLite's `workspaces` with `new_table` (created as `workspaces_new`), filled by
/// `copy`, and, with `owner_indexes`, gives it the per-owner name indexes.
async fn rebuild_sqlite_workspaces(
    manager: &SchemaManager<'_>,
    new_table: TableCreateStatement,
    copy: String,
    owner_indexes: bool,
) -> Result<(), DbErr> {
    let SchemaManagerConnection::Connection(db) = manager.get_connection() else {
        return Err(DbErr::Migration(
            "rebuilding SQLite's workspaces table needs foreign keys off, which SQLite \
             refuses inside a transaction: run the migrations on a connection, not a transaction"
                .into(),
        ));
    };
    let mut steps = vec![
        SchemaStatementBuilder::build(&new_table, SqliteQueryBuilder),
        copy,
        "DROP TABLE workspaces".to_owned(),
        "ALTER TABLE workspaces_new RENAME TO workspaces".to_owned(),
    ];
    if owner_indexes {
        steps.push(OWNER_NAME_INDEX.to_owned());
        steps.push(OWNERLESS_NAME_INDEX.to_owned());
    }

    let failed = |what: &str, e: sqlx::Error| {
        DbErr::Migration(format!("rebuilding the workspaces table: {what}: {e}"))
    };
    let mut conn = db
        .get_sqlite_connection_pool()
        .acquire()
        .await
        .map_err(|e| failed("no connection", e))?;
    let result = async {
        sqlx::raw_sql("PRAGMA foreign_keys = OFF")
            .execute(&mut *conn)
            .await
            .map_err(|e| failed("turning foreign keys off", e))?;
        sqlx::raw_sql("BEGIN")
            .execute(&mut *conn)
            .await
            .map_err(|e| failed("BEGIN", e))?;
        for step in steps {
            sqlx::raw_sql(sqlx::AssertSqlSafe(step.clone()))
                .execute(&mut *conn)
                .await
                .map_err(|e| failed(step.as_str(), e))?;
        }
        // Every membership and document must still point at a workspace.
        let broken = sqlx::raw_sql("PRAGMA foreign_key_check")
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| failed("checking foreign keys", e))?;
        if !broken.is_empty() {
            return Err(DbErr::Migration(format!(
                "rebuilding the workspaces table would leave {} rows pointing nowhere",
                broken.len()
            )));
        }
        sqlx::raw_sql("COMMIT")
            .execute(&mut *conn)
            .await
            .map_err(|e| failed("COMMIT", e))?;
        Ok::<(), DbErr>(())
    }
    .await;
    if result.is_err() {
        // Back to the pool with nothing half-done: whatever the rebuild changed is undone.
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
    }
    // The pool's connections all enforce foreign keys; this one must again too.
    let restored = sqlx::raw_sql("PRAGMA foreign_keys = ON")
        .execute(&mut *conn)
        .await
        .map_err(|e| failed("turning foreign keys back on", e));
    result.and(restored.map(drop))
}
