use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Error;

pub type WorkspaceId = Uuid;
pub type DocumentId = Uuid;

/// A member's role in a workspace. Owners manage members, editors change documents,
/// viewers read and ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Editor,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Editor => "editor",
            Self::Owner => "owner",
        }
    }

    pub fn can_read(self) -> bool {
        true
    }

    pub fn can_edit(self) -> bool {
        self >= Self::Editor
    }

    pub fn can_manage_members(self) -> bool {
        self == Self::Owner
    }
}

impl std::str::FromStr for Role {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Self::Viewer),
            "editor" => Ok(Self::Editor),
            "owner" => Ok(Self::Owner),
            other => Err(Error::Invalid(format!(
                "unknown role {other:?}; expected owner, editor or viewer"
            ))),
        }
    }
}

/// The workspaces a search may look in. Never empty: a caller with no readable workspace
/// has nothing to search, and says so before reaching the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceScope(Vec<WorkspaceId>);

impl WorkspaceScope {
    pub fn new(mut workspaces: Vec<WorkspaceId>) -> Result<Self, Error> {
        workspaces.sort_unstable();
        workspaces.dedup();
        if workspaces.is_empty() {
            return Err(Error::Invalid(
                "no workspace to search: the caller can read none".into(),
            ));
        }
        Ok(Self(workspaces))
    }

    pub fn one(workspace: WorkspaceId) -> Self {
        Self(vec![workspace])
    }

    pub fn ids(&self) -> &[WorkspaceId] {
        &self.0
    }

    pub fn contains(&self, workspace: WorkspaceId) -> bool {
        self.0.binary_search(&workspace).is_ok()
    }
}

/// Physical pages, 1-based and inclusive, as a PDF viewer counts them (not printed labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRange {
    pub start: u32,
    pub end: u32,
}

impl PageRange {
    pub fn single(page: u32) -> Self {
        Self {
            start: page,
            end: page,
        }
    }
}

/// A character span `[start, end)` in a document's extracted text, counted in Unicode
/// scalar values (not bytes), so that it means the same in every client language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

/// Namespace of derived point ids (UUIDv5); fixed forever, since ids are persisted.
const POINT_NAMESPACE: Uuid = Uuid::from_u128(0x6c65_6374_6572_6e00_8000_0000_0000_0001);

/// One chunk of one version of a document, as the index stores and returns it: enough to
/// filter by tenant and to cite the page and passage without going back to SQL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkPoint {
    pub workspace_id: WorkspaceId,
    pub document_id: DocumentId,
    pub version: i32,
    pub chunk_index: u32,
    pub pages: PageRange,
    pub span: Span,
    pub title: String,
    pub text: String,
}

impl ChunkPoint {
    /// The point id: a UUIDv5 of document, version and chunk index, so that a retried job
    /// overwrites its own points and never duplicates them.
    pub fn point_id(&self) -> Uuid {
        point_id(self.document_id, self.version, self.chunk_index)
    }
}

pub fn point_id(document: DocumentId, version: i32, chunk_index: u32) -> Uuid {
    let mut name = [0u8; 24];
    name[..16].copy_from_slice(document.as_bytes());
    name[16..20].copy_from_slice(&version.to_be_bytes());
    name[20..].copy_from_slice(&chunk_index.to_be_bytes());
    Uuid::new_v5(&POINT_NAMESPACE, &name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_ids_are_stable_and_distinct() {
        let doc = Uuid::from_u128(42);
        assert_eq!(point_id(doc, 1, 0), point_id(doc, 1, 0));
        assert_ne!(point_id(doc, 1, 0), point_id(doc, 2, 0));
        assert_ne!(point_id(doc, 1, 0), point_id(doc, 1, 1));
        assert_ne!(point_id(doc, 1, 0), point_id(Uuid::from_u128(43), 1, 0));
        // Persisted ids must never change between releases.
        assert_eq!(
            point_id(doc, 1, 0).to_string(),
            "a0447515-0848-5a68-b70a-b3e2aa1fe88b"
        );
    }

    #[test]
    fn empty_scope_is_refused_and_scope_is_deduplicated() {
        assert!(WorkspaceScope::new(vec![]).is_err());
        let a = Uuid::from_u128(2);
        let b = Uuid::from_u128(1);
        let scope = WorkspaceScope::new(vec![a, b, a]).unwrap();
        assert_eq!(scope.ids(), &[b, a]);
        assert!(scope.contains(a));
        assert!(!scope.contains(Uuid::from_u128(3)));
    }

    #[test]
    fn roles_order_their_permissions() {
        assert!(!Role::Viewer.can_edit());
        assert!(Role::Editor.can_edit() && !Role::Editor.can_manage_members());
        assert!(Role::Owner.can_manage_members());
        assert_eq!("editor".parse::<Role>().unwrap(), Role::Editor);
        assert!("admin".parse::<Role>().is_err());
    }
}
