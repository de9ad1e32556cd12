use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "documents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub title: String,
    pub file_name: String,
    pub media_type: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub pages: Option<i32>,
    pub status: String,
    pub error_message: Option<String>,
    pub current_version: i32,
    pub storage_key: String,
    /// The synced source that owns it (`sources`); `None` for an upload.
    pub source_id: Option<Uuid>,
    /// Its key in that source, unique there: for a folder, the path relative to the
    /// folder, `/`-separated.
    pub source_key: Option<String>,
    /// The source file's modification time when it was last read, in nanoseconds since
    /// the epoch: with `size_bytes`, a sync skips the file unread while both are the same.
    /// `None` forces a read (and a hash) at the next sync.
    pub source_mtime_ns: Option<i64>,
    /// For a web page: the `ETag` its server last sent, as sent; asked again with
    /// `If-None-Match`, so an unchanged page costs a `304`.
    pub source_etag: Option<String>,
    /// For a web page: the `Last-Modified` header its server last sent, verbatim; asked
    /// again with `If-Modified-Since`.
    pub source_last_modified: Option<String>,
    /// Pages of the current version read by OCR; `None` before this was recorded.
    pub ocr_pages: Option<i32>,
    /// What the owner should know about how the pages were read (pages read by OCR,
    /// pages left without text and why); `None` when nothing.
    pub notice: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
