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
    /// The authorisation rule, as a pure function: `requested` workspaces, each of which
    /// must be among the caller's `readable` ones (otherwise "not found", exactly as for a
    /// workspace that does not exist), or every readable workspace when none is named.
    /// The authorisation layer (`lectern-auth`) loads `readable` from the caller's
    /// memberships; this is the only way a service gets a scope.
    pub fn checked(readable: &[WorkspaceId], requested: &[WorkspaceId]) -> Result<Self, Error> {
        if requested.is_empty() {
            return Self::from_ids(readable.to_vec()).map_err(|_| {
                Error::NotFound("you have no workspace to search yet; create one first".into())
            });
        }
        if let Some(missing) = requested.iter().find(|w| !readable.contains(w)) {
            return Err(Error::NotFound(format!("no such workspace: {missing}")));
        }
        Self::from_ids(requested.to_vec())
    }

    /// For the `lectern` command line on the machine that holds the data: its operator
    /// names workspaces directly, with no account behind the call (and tests that stand
    /// in for it). Never use it on a path that serves a request.
    pub fn local_cli(workspaces: Vec<WorkspaceId>) -> Result<Self, Error> {
        Self::from_ids(workspaces)
    }

    fn from_ids(mut workspaces: Vec<WorkspaceId>) -> Result<Self, Error> {
        workspaces.sort_unstable();
        workspaces.dedup();
        if workspaces.is_empty() {
            return Err(Error::Invalid(
                "no workspace to search: the caller can read none".into(),
            ));
        }
        Ok(Self(workspaces))
    }

    pub fn ids(&self) -> &[WorkspaceId] {
        &self.0
    }

    pub fn contains(&self, workspace: WorkspaceId) -> bool {
        self.0.binary_search(&workspace).is_ok()
    }
}

/// Which workspace a name given by a caller stands for, among the workspaces that caller
/// can see, each given as `(id, name, owned)`, where `owned` says the caller owns it.
///
/// Workspace names are unique per owner, not across the site, so a caller may see two
/// workspaces of one name: their own, and one shared with them. The rule, the same wherever
/// a name selects a workspace (`lectern ingest|search|ask --workspace`, the OpenAI-compatible
/// `model`):
/// 1. a workspace's id, written out, names it;
/// 2. among the workspaces called `name`, the caller's own wins;
/// 3. otherwise the only one is the answer, and none is `Ok(None)`;
/// 4. several, none of them the caller's, is an "invalid" error that asks for the id.
///
/// Only `visible` is looked at, so neither the answer nor the error can tell of a
/// workspace the caller cannot see.
pub fn resolve_workspace_name<'a>(
    name: &str,
    visible: impl IntoIterator<Item = (WorkspaceId, &'a str, bool)>,
) -> Result<Option<WorkspaceId>, Error> {
    let name = name.trim();
    let as_id = Uuid::parse_str(name).ok();
    let mut own = None;
    let mut named = Vec::new();
    for (id, ws_name, owned) in visible {
        if as_id == Some(id) {
            return Ok(Some(id));
        }
        if ws_name == name {
            if owned && own.is_none() {
                own = Some(id);
            }
            named.push(id);
        }
    }
    if own.is_some() {
        return Ok(own);
    }
    match named.as_slice() {
        [] => Ok(None),
        [only] => Ok(Some(*only)),
        several => Err(Error::Invalid(format!(
            "{} workspaces shared with you are named {name:?} and none of them is yours; \
             name the one you mean by its id",
            several.len()
        ))),
    }
}

/// Why a language model stopped generating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    /// The model ended its answer.
    Stop,
    /// `max_tokens` (or the context window) was reached.
    Length,
    /// The receiver of the tokens went away (the client disconnected).
    Cancelled,
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
    /// The document's title when this version was indexed (it was embedded with the
    /// text). A synced file moved or renamed keeps its points and gets a new title in the
    /// store only: what is shown reads the title from the store, not from here.
    pub title: String,
    pub text: String,
    /// The header row and rule of the Markdown table the text starts inside of, when the
    /// text starts below them (the text is a span of the document; the header is not).
    pub table_header: Option<String>,
    /// For a web page: the anchor (an element id) of the nearest heading before the text,
    /// so that a citation links to its section.
    pub anchor: Option<String>,
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
        assert!(WorkspaceScope::local_cli(vec![]).is_err());
        let a = Uuid::from_u128(2);
        let b = Uuid::from_u128(1);
        let scope = WorkspaceScope::local_cli(vec![a, b, a]).unwrap();
        assert_eq!(scope.ids(), &[b, a]);
        assert!(scope.contains(a));
        assert!(!scope.contains(Uuid::from_u128(3)));
    }

    #[test]
    fn a_checked_scope_holds_only_readable_workspaces() {
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        // Nothing named: everything readable.
        let all = WorkspaceScope::checked(&[a, b], &[]).unwrap();
        assert_eq!(all.ids(), &[a, b]);
        // A subset named: exactly that.
        assert_eq!(WorkspaceScope::checked(&[a, b], &[b]).unwrap().ids(), &[b]);
        // One that is not readable: not found, as if it did not exist.
        let err = WorkspaceScope::checked(&[a, b], &[a, c]).unwrap_err();
        assert_eq!(err.code(), "not_found");
        // No readable workspace at all: not found, with what to do.
        let err = WorkspaceScope::checked(&[], &[]).unwrap_err();
        assert!(err.to_string().contains("create one"), "{err}");
    }

    #[test]
    fn a_name_stands_for_the_callers_own_workspace_first() {
        let (mine, shared, other) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let visible = [
            (shared, "Handbook", false),
            (mine, "Handbook", true),
            (other, "Policies", false),
        ];
        let resolve = |name: &str| resolve_workspace_name(name, visible);
        // Two named alike: the caller's own.
        assert_eq!(resolve(" Handbook ").unwrap(), Some(mine));
        // The only one of its name, shared or not.
        assert_eq!(resolve("Policies").unwrap(), Some(other));
        // An id names a workspace, even one whose name is taken twice.
        assert_eq!(resolve(shared.to_string().as_str()).unwrap(), Some(shared));
        assert_eq!(resolve("Nope").unwrap(), None);
        assert_eq!(
            resolve(Uuid::from_u128(9).to_string().as_str()).unwrap(),
            None
        );

        // Two shared alike, neither the caller's: ambiguous, and the error asks for the id.
        let shared_twice = [(shared, "Handbook", false), (other, "Handbook", false)];
        let err = resolve_workspace_name("Handbook", shared_twice).unwrap_err();
        assert_eq!(err.code(), "invalid_input");
        assert!(err.to_string().contains("by its id"), "{err}");
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
