//! Lectern's SQL schema, as sea-orm migrations that run unchanged on SQLite (the embedded
//! default) and PostgreSQL (the distributed shape).
//!
//! Depends on nothing of Lectern's. The key decision: only portable column types. Enums are
//! stored as short strings, ids as UUIDs, times as timestamps with time zone, so that the
//! same entities in `lectern-store` read both backends.

use sea_orm_migration::prelude::*;

mod columns;
mod m20261128_000001_initial;
mod m20261129_000001_keys_and_conversations;
mod m20261130_000001_web;
mod m20261201_000001_workspace_names_per_owner;
mod m20261201_000002_email_verification;
mod m20261202_000001_sources;
mod m20261203_000001_web_sources;
mod m20261204_000001_document_notices;
mod m20261205_000001_lost_leases;

pub use sea_orm_migration::MigratorTrait;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_initial::Migration),
            Box::new(m20261129_000001_keys_and_conversations::Migration),
            Box::new(m20261130_000001_web::Migration),
            Box::new(m20261201_000001_workspace_names_per_owner::Migration),
            Box::new(m20261201_000002_email_verification::Migration),
            Box::new(m20261202_000001_sources::Migration),
            Box::new(m20261203_000001_web_sources::Migration),
            Box::new(m20261204_000001_document_notices::Migration),
            Box::new(m20261205_000001_lost_leases::Migration),
        ]
    }
}
