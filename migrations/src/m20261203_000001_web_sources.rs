//! Web sources: a source of kind `web` crawls a site from a start URL within a URL prefix,
//! and each page (or linked PDF) becomes a document whose `source_key` is its URL.
//!
//! A crawl asks again for a page it fetched before with the validators the server gave
//! then, so that an unchanged page costs a `304 Not Modified` and no download:
//! `source_etag` (the `ETag` response header, as sent) and `source_last_modified` (the
//! `Last-Modified` header, as sent: it goes back verbatim in `If-Modified-Since`, so it is
//! text, not a parsed time). Both are null for folder sources and for a page whose server
//! sent neither.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Documents {
    Table,
    SourceEtag,
    SourceLastModified,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for column in [
            ColumnDef::new(Documents::SourceEtag)
                .string()
                .null()
                .to_owned(),
            ColumnDef::new(Documents::SourceLastModified)
                .string()
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
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Plain SQL: both PostgreSQL and SQLite (3.35 and later) drop a column in place.
        let db = manager.get_connection();
        for step in [
            "ALTER TABLE documents DROP COLUMN source_last_modified",
            "ALTER TABLE documents DROP COLUMN source_etag",
        ] {
            db.execute_unprepared(step).await?;
        }
        Ok(())
    }
}
