//! What the owner of a ready document should know about how it was read: `ocr_pages`,
//! how many of its pages were read by OCR (scans have no text layer), and `notice`, a
//! sentence naming those pages and any page left without text, with why. Both are null
//! for documents read before, and for documents with nothing to say.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Documents {
    Table,
    OcrPages,
    Notice,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for column in [
            ColumnDef::new(Documents::OcrPages)
                .integer()
                .null()
                .to_owned(),
            ColumnDef::new(Documents::Notice).text().null().to_owned(),
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
        let db = manager.get_connection();
        for step in [
            "ALTER TABLE documents DROP COLUMN notice",
            "ALTER TABLE documents DROP COLUMN ocr_pages",
        ] {
            db.execute_unprepared(step).await?;
        }
        Ok(())
    }
}
