//! `lost_leases` on ingest jobs and sources: how many times the work's lease ran out (its
//! worker crashed or hung) and it was claimed again. The work is set aside after a set
//! number of these, counted apart from `attempts` (every claim, transient failures
//! retried included), so that a job retried after, say, an index outage is not set aside
//! by a single crash. Rows from before count from 0.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The two tables, and the column each gets.
#[derive(DeriveIden, Clone, Copy)]
enum Leased {
    IngestJobs,
    Sources,
    LostLeases,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One table per statement: SQLite alters one thing at a time.
        for table in [Leased::IngestJobs, Leased::Sources] {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column(
                            ColumnDef::new(Leased::LostLeases)
                                .integer()
                                .not_null()
                                .default(0),
                        )
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for table in ["sources", "ingest_jobs"] {
            db.execute_unprepared(&format!("ALTER TABLE {table} DROP COLUMN lost_leases"))
                .await?;
        }
        Ok(())
    }
}
