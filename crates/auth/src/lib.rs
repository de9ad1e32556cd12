//! Lectern's authorisation policy, in one place: who is calling, what their role in a
//! workspace allows, and which workspaces a search may look in.
//!
//! - A caller is an API key (`Authorization: Bearer lk_...`, a person's key), or the
//!   service token that Lectern's own web app uses, naming the person it acts for in
//!   `X-Lectern-User`. Handlers take a [`Caller`] (an actix extractor).
//! - Roles: viewers read and ask, editors also upload and delete, owners also manage
//!   members; site administrators act as owners everywhere ([`Action`]).
//! - A workspace the caller is not a member of is "not found", never "forbidden", so its
//!   name and existence do not leak.
//! - [`Caller::scope`] is how a request gets a [`WorkspaceScope`], which every index
//!   search requires: the scope is built from the caller's memberships by
//!   [`WorkspaceScope::checked`], so a request cannot search a workspace it may not read.
//!
//! It depends on the store (memberships, keys) and the HTTP shell, never on an engine.

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use lectern_core::{Error, Role, WorkspaceId, WorkspaceScope};
use lectern_runtime::Context;
use lectern_runtime::http::ApiError;
use lectern_store::entity::{user, workspace};
use lectern_store::{NameScope, Store, WorkspaceAccess, secret_hash};
use uuid::Uuid;

pub use lectern_api::ACT_AS_HEADER;
use lectern_api::ingest::WorkspaceOut;

/// What a caller wants to do in a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// List, search, ask, download.
    Read,
    /// Upload, delete, re-index.
    Edit,
    /// Add and remove members, change roles.
    Manage,
}

impl Action {
    fn allowed(self, role: Role) -> bool {
        match self {
            Self::Read => role.can_read(),
            Self::Edit => role.can_edit(),
            Self::Manage => role.can_manage_members(),
        }
    }

    fn needs(self) -> &'static str {
        match self {
            Self::Read => "viewer",
            Self::Edit => "editor or owner",
            Self::Manage => "owner",
        }
    }
}

/// An authenticated person (directly with an API key, or through the web app).
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: user::Model,
}

impl Caller {
    pub fn id(&self) -> Uuid {
        self.user.id
    }

    /// The caller's role in the workspace. Site admins act as owners everywhere.
    /// Non-members get "not found", exactly as for a workspace that does not exist.
    pub async fn role_in(
        &self,
        store: &Store,
        workspace: WorkspaceId,
    ) -> Result<(workspace::Model, Role), Error> {
        let not_found = || Error::NotFound("no such workspace".into());
        let ws = store.workspace(workspace).await?.ok_or_else(not_found)?;
        if self.user.is_admin {
            return Ok((ws, Role::Owner));
        }
        let role = store
            .role_of(workspace, self.user.id)
            .await?
            .ok_or_else(not_found)?;
        Ok((ws, role))
    }

    /// The workspace, when the caller's role there allows `action`.
    pub async fn require(
        &self,
        store: &Store,
        workspace: WorkspaceId,
        action: Action,
    ) -> Result<(workspace::Model, Role), Error> {
        let (ws, role) = self.role_in(store, workspace).await?;
        if !action.allowed(role) {
            return Err(Error::Forbidden(format!(
                "your role in workspace {:?} is {}; this needs {}",
                ws.name,
                role.as_str(),
                action.needs()
            )));
        }
        Ok((ws, role))
    }

    /// Every workspace the caller may read, with the role.
    pub async fn workspaces(&self, store: &Store) -> Result<Vec<WorkspaceAccess>, Error> {
        if self.user.is_admin {
            return Ok(store
                .all_workspaces()
                .await?
                .into_iter()
                .map(|workspace| WorkspaceAccess {
                    workspace,
                    role: Role::Owner,
                })
                .collect());
        }
        store.workspaces_of(self.user.id).await
    }

    /// A workspace as the caller sees it: with their role there, and whether it is their
    /// own (where two share a name, the name stands for that one).
    pub fn workspace_out(&self, ws: workspace::Model, role: Role) -> WorkspaceOut {
        WorkspaceOut {
            id: ws.id,
            owned: ws.owner_id == Some(self.id()),
            name: ws.name,
            role: role.as_str().into(),
            created_at: ws.created_at,
        }
    }

    /// The workspace `name` (or an id, written out) stands for among those the caller may
    /// read. Names are unique per owner, not across the site, so where two the caller can
    /// read share a name, the caller's own wins, and two shared with them are an "invalid"
    /// error asking for the id ([`Store::find_workspace_by_name`]). `Ok(None)` when the
    /// caller can read none of that name, whatever other tenants have.
    pub async fn workspace_named(
        &self,
        store: &Store,
        name: &str,
    ) -> Result<Option<workspace::Model>, Error> {
        let scope = if self.user.is_admin {
            NameScope::Admin(self.id())
        } else {
            NameScope::Member(self.id())
        };
        store.find_workspace_by_name(scope, name).await
    }

    /// Records something the caller did in the audit log. A failure to record is logged,
    /// never the caller's problem.
    pub async fn audit(
        &self,
        store: &Store,
        action: &str,
        workspace: Option<WorkspaceId>,
        target: Option<String>,
        detail: Option<serde_json::Value>,
    ) {
        let event = lectern_store::AuditEvent {
            actor_user_id: Some(self.id()),
            action: action.into(),
            workspace_id: workspace,
            target,
            detail,
        };
        if let Err(e) = store.record_audit(event).await {
            tracing::warn!(error = %e, action, "could not record an audit event");
        }
    }

    /// The scope of a follow-up in a conversation bound to `bound` workspaces: those of
    /// them the caller can still read. Never wider than `bound`; "not found" when the
    /// caller can read none of them any more.
    pub async fn scope_within(
        &self,
        store: &Store,
        bound: &[WorkspaceId],
    ) -> Result<WorkspaceScope, Error> {
        let mut readable = self.readable(store).await?;
        readable.retain(|w| bound.contains(w));
        if readable.is_empty() {
            return Err(Error::NotFound(
                "you can no longer read the workspaces of this conversation; start a new one"
                    .into(),
            ));
        }
        WorkspaceScope::checked(&readable, &readable)
    }

    /// The search scope for `requested` workspaces (each must be readable), or for every
    /// readable workspace when none is named.
    pub async fn scope(
        &self,
        store: &Store,
        requested: &[WorkspaceId],
    ) -> Result<WorkspaceScope, Error> {
        WorkspaceScope::checked(&self.readable(store).await?, requested)
    }

    async fn readable(&self, store: &Store) -> Result<Vec<WorkspaceId>, Error> {
        Ok(self
            .workspaces(store)
            .await?
            .into_iter()
            .map(|a| a.workspace.id)
            .collect())
    }
}

fn unauthenticated(message: &str) -> Error {
    Error::Unauthenticated(message.to_owned())
}

/// Resolves the caller of a request against the context's store and service token.
pub async fn authenticate(ctx: &Context, req: &HttpRequest) -> Result<Caller, Error> {
    let token = lectern_runtime::http::bearer_token(req.headers()).ok_or_else(|| {
        if req
            .headers()
            .contains_key(actix_web::http::header::AUTHORIZATION)
        {
            unauthenticated("the Authorization header must be `Bearer <API key>`")
        } else {
            unauthenticated("this endpoint needs `Authorization: Bearer <API key>`; create a key with `lectern api-key create`")
        }
    })?;
    if let Some(user) = ctx.store.user_for_api_key(token).await? {
        return Ok(Caller { user });
    }
    // Hashes compared: equal length, and no early exit on the secret's bytes.
    if secret_hash(&ctx.service_token) == secret_hash(token) {
        let id = req
            .headers()
            .get(ACT_AS_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Uuid::parse_str(v).ok())
            .ok_or_else(|| {
                unauthenticated("a service-token call must name the user in X-Lectern-User")
            })?;
        let user = ctx
            .store
            .user(id)
            .await?
            .filter(|u| !u.disabled)
            .ok_or_else(|| {
                unauthenticated("the user named in X-Lectern-User is unknown or disabled")
            })?;
        return Ok(Caller { user });
    }
    Err(unauthenticated(
        "the API key is not valid (revoked, mistyped or of a disabled user)",
    ))
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let ctx = req
                .app_data::<web::Data<Context>>()
                .ok_or_else(|| Error::internal_msg("the service has no context"))?
                .clone();
            Ok(authenticate(&ctx, &req).await?)
        })
    }
}
