//! The ingest API's types: workspaces, documents, uploads and synced sources.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// How many files at the size limit one upload request may carry.
pub const UPLOAD_FILES_AT_THE_LIMIT: u64 = 4;

/// Most bytes of one upload request body to ingest, for files of at most
/// `max_file_bytes`: [`UPLOAD_FILES_AT_THE_LIMIT`] files at the limit, plus 1 MiB for the
/// form's framing and plain fields. Ingest refuses a larger request (413) as soon as it
/// passes this.
pub fn upload_request_limit(max_file_bytes: u64) -> u64 {
    UPLOAD_FILES_AT_THE_LIMIT * max_file_bytes + 1_048_576
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceOut {
    pub id: Uuid,
    /// Unique among its owner's workspaces, not across the site: a caller may see two
    /// workspaces of one name, their own and one shared with them.
    pub name: String,
    /// The caller's role: owner, editor or viewer.
    pub role: String,
    /// Whether the caller owns it (created it): where two share a name, the name stands
    /// for this one (`lectern_core::resolve_workspace_name`).
    #[serde(default)]
    pub owned: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateWorkspace {
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DocumentOut {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub title: String,
    pub file_name: String,
    pub media_type: String,
    pub size_bytes: i64,
    /// queued, processing, ready or failed.
    pub status: String,
    /// Why the document failed, said for a person.
    pub error: Option<String>,
    pub pages: Option<i32>,
    /// Pages read by OCR (they had no text layer); none until it is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocr_pages: Option<i32>,
    /// What the owner should know about how the pages were read: pages read by OCR,
    /// pages left without text and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
    /// Chunks of the current version (0 until it is indexed).
    pub chunks: u64,
    pub version: i32,
    /// The synced source that owns it ([`SourceOut`]); none for an upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<Uuid>,
    /// Its key in that source: for a folder, the path relative to the folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UploadOut {
    /// The name the file was uploaded under.
    pub file_name: String,
    /// queued, unchanged (the same content is already there), new_version or rejected.
    pub outcome: String,
    pub document: DocumentOut,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UploadResult {
    pub documents: Vec<UploadOut>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DocumentList {
    pub documents: Vec<DocumentOut>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceList {
    pub workspaces: Vec<WorkspaceOut>,
}

/// A text document sent as JSON.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TextDocument {
    /// A bare file name; its extension (.md, .txt, .html) chooses the parser.
    pub name: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TextUpload {
    pub documents: Vec<TextDocument>,
}

/// The kind of source that reads a directory on the server's disk.
pub const FOLDER_SOURCE: &str = "folder";
/// The kind of a web source ([`WebSettings`]).
pub const WEB_SOURCE: &str = "web";

/// A source to add to a workspace: Lectern reads it now and again (when asked, or every
/// `interval_secs`), adding new and changed documents and removing those gone from it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateSource {
    /// `folder`: a directory on the server, under one an administrator allowed
    /// (`ingest.source_roots`); only site administrators add one.
    pub kind: String,
    /// Unique in the workspace; default: the folder's own name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The kind's settings: for a folder, [`FolderSettings`].
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    /// Seconds between scheduled syncs (10 at least); absent: only when asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_secs: Option<u64>,
}

/// Changes to a source (`PATCH`): each field given replaces the current one, the others
/// stay as they are. The next sync applies them: a narrower glob or prefix, or a smaller
/// depth, removes the documents the source no longer takes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSource {
    /// A new name, unique in the workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Seconds between scheduled syncs (10 at least); `null`: only when asked.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    #[schema(value_type = Option<u64>)]
    pub interval_secs: Option<Option<u64>>,
    /// The settings to change, as an object of the kind's keys ([`FolderSettings`],
    /// [`WebSettings`]): a key given replaces its value, a key given as `null` goes back to
    /// its default, and the keys not given stay. The result is checked exactly as when a
    /// source is added (a folder inside `ingest.source_roots`; a web site's address
    /// public); the kind itself cannot change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub settings: Option<serde_json::Value>,
}

/// A field that is there, `null` or not: `Some(None)` for `null`, so that "absent" (the
/// field's default, `None`) and "cleared" differ.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A folder source's settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FolderSettings {
    /// An absolute path on the server; symbolic links are resolved, and the result must
    /// lie inside one of `ingest.source_roots`.
    pub path: String,
    /// Globs of the files to take (all when empty), matched against the path relative to
    /// the folder with `/` separators: `*` and `?` stop at `/`, `**` spans folders,
    /// `[a-z]` and `{md,pdf}` choose. A glob without `/` matches the file name at any
    /// depth (`*.pdf`); one with `/` the whole relative path (`handbook/**/*.md`).
    #[serde(default)]
    pub include: Vec<String>,
    /// Globs of files to leave out, as `include`; hidden files and folders (names
    /// starting with `.`) are always left out.
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// A web source's settings: a site crawled breadth-first from `url`, following links
/// that stay under `prefix`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebSettings {
    /// The start page: an `http` or `https` URL.
    pub url: String,
    /// Only URLs that start with this are fetched; default: the start URL's directory
    /// (`https://example.org/docs/intro.html` gives `https://example.org/docs/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Links followed from the start page at most (0: the start page and the site map
    /// only); default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<u32>,
    /// Pages (and PDFs) fetched at most in one crawl; default 500.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<u32>,
}

/// What one sync found and did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SyncResult {
    /// New files, queued as new documents.
    pub added: u64,
    /// Files whose content changed, queued as new versions of their documents.
    pub changed: u64,
    /// Files moved or renamed (the same content at a new path): the document follows,
    /// nothing is embedded again.
    pub renamed: u64,
    /// Documents whose file is gone, deleted with their index points.
    pub deleted: u64,
    /// Files as they were (size and time, or else content, unchanged).
    pub unchanged: u64,
    /// Files refused as documents (an unreadable type, too large, empty): recorded as
    /// failed documents with the reason.
    pub failed: u64,
    /// Files left alone, with why: unreadable, a symbolic link out of the folder, a name
    /// that is not UTF-8 (at most 50; `skipped_total` counts them all).
    #[serde(default)]
    pub skipped: Vec<String>,
    #[serde(default)]
    pub skipped_total: u64,
    pub seconds: f64,
}

impl SyncResult {
    /// Documents queued to be read and indexed.
    pub fn queued(&self) -> u64 {
        self.added + self.changed
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SourceOut {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    /// `folder`.
    pub kind: String,
    /// The kind's settings: for a folder, [`FolderSettings`] (the path resolved).
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    /// Seconds between scheduled syncs; none: only when asked.
    pub interval_secs: Option<u64>,
    /// idle, queued (due at `next_sync_at`), running or deleting.
    pub state: String,
    pub next_sync_at: Option<DateTime<Utc>>,
    /// When the last sync ended, and how: `last_result` when it completed, `last_error`
    /// when it failed.
    pub last_sync_at: Option<DateTime<Utc>>,
    pub last_result: Option<SyncResult>,
    pub last_error: Option<String>,
    /// The documents it owns now.
    pub documents: u64,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SourceList {
    pub sources: Vec<SourceOut>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_tells_a_cleared_schedule_from_an_unchanged_one() {
        let unchanged: UpdateSource = serde_json::from_str(r#"{"name": "handbook"}"#).unwrap();
        assert_eq!(unchanged.interval_secs, None);
        assert_eq!(unchanged.name.as_deref(), Some("handbook"));
        let cleared: UpdateSource = serde_json::from_str(r#"{"interval_secs": null}"#).unwrap();
        assert_eq!(cleared.interval_secs, Some(None));
        let set: UpdateSource = serde_json::from_str(r#"{"interval_secs": 3600}"#).unwrap();
        assert_eq!(set.interval_secs, Some(Some(3600)));
        // Written back as read: absent stays absent, a cleared schedule is `null`.
        assert_eq!(
            serde_json::to_value(&unchanged).unwrap(),
            serde_json::json!({"name": "handbook"})
        );
        assert_eq!(
            serde_json::to_value(&cleared).unwrap(),
            serde_json::json!({"interval_secs": null})
        );
        assert!(
            serde_json::from_str::<UpdateSource>(r#"{"kind": "web"}"#).is_err(),
            "the kind cannot change"
        );
    }
}
