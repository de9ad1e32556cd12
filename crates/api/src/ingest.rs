//! The ingest API's types: workspaces, documents and uploads.

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
    /// Chunks of the current version (0 until it is indexed).
    pub chunks: u64,
    pub version: i32,
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
