//! Who may do what: users by id, API keys (stored as sha256 of the secret, shown once),
//! and the workspaces a user may see with their role there.

use lectern_core::{Error, Result, Role, WorkspaceId};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::Store;
use crate::entity::{api_key, membership, user, workspace};
use crate::error::db_error;

/// The prefix of every API key, so that leaked keys are easy to recognise and scan for.
pub const API_KEY_PREFIX: &str = "lk_";

/// A workspace with the caller's role in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceAccess {
    pub workspace: workspace::Model,
    pub role: Role,
}

/// A new secret (API keys, link tokens): two v4 UUIDs, 244 random bits from the OS
/// generator, as hex (URL-safe as it is).
pub(crate) fn new_secret() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

/// sha256 of a secret, hex: what is stored and compared, never the secret.
pub fn secret_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Store {
    pub async fn user(&self, id: Uuid) -> Result<Option<user::Model>> {
        user::Entity::find_by_id(id)
            .one(&self.db)
            .await
            .map_err(|e| db_error("find user", e))
    }

    /// Disables (or enables again) a user: a disabled user's keys and sessions stop working.
    pub async fn set_user_disabled(&self, id: Uuid, disabled: bool) -> Result<()> {
        self.set_user_column(id, user::Column::Disabled, disabled.into())
            .await
    }

    /// Sets one column of a user; "not found" when there is no such user.
    pub(crate) async fn set_user_column(
        &self,
        id: Uuid,
        column: user::Column,
        value: sea_orm::Value,
    ) -> Result<()> {
        let result = user::Entity::update_many()
            .col_expr(column, Expr::value(value))
            .filter(user::Column::Id.eq(id))
            .exec(&self.db)
            .await
            .map_err(|e| db_error("update user", e))?;
        if result.rows_affected == 0 {
            return Err(Error::NotFound("no such user".into()));
        }
        Ok(())
    }

    /// Creates an API key for the user and returns it with its secret, the only time the
    /// secret is available.
    pub async fn create_api_key(&self, user: Uuid, name: &str) -> Result<(api_key::Model, String)> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Error::Invalid(
                "an API key's name needs 1 to 100 characters".into(),
            ));
        }
        let secret = format!("{API_KEY_PREFIX}{}", new_secret());
        let key = api_key::ActiveModel {
            id: Set(Uuid::new_v4()),
            user_id: Set(user),
            name: Set(name.to_owned()),
            key_hash: Set(secret_hash(&secret)),
            created_at: Set(self.now()),
            last_used_at: Set(None),
        }
        .insert(&self.db)
        .await
        .map_err(|e| db_error("create API key", e))?;
        Ok((key, secret))
    }

    /// The active (not disabled) user an API key belongs to; records its use.
    pub async fn user_for_api_key(&self, secret: &str) -> Result<Option<user::Model>> {
        if !secret.starts_with(API_KEY_PREFIX) {
            return Ok(None);
        }
        let Some(key) = api_key::Entity::find()
            .filter(api_key::Column::KeyHash.eq(secret_hash(secret)))
            .one(&self.db)
            .await
            .map_err(|e| db_error("find API key", e))?
        else {
            return Ok(None);
        };
        let user = self.user(key.user_id).await?.filter(|u| !u.disabled);
        if user.is_some() {
            api_key::Entity::update_many()
                .col_expr(api_key::Column::LastUsedAt, Expr::value(Some(self.now())))
                .filter(api_key::Column::Id.eq(key.id))
                .exec(&self.db)
                .await
                .map_err(|e| db_error("record API key use", e))?;
        }
        Ok(user)
    }

    pub async fn api_keys_of(&self, user: Uuid) -> Result<Vec<api_key::Model>> {
        api_key::Entity::find()
            .filter(api_key::Column::UserId.eq(user))
            .order_by_asc(api_key::Column::CreatedAt)
            .all(&self.db)
            .await
            .map_err(|e| db_error("list API keys", e))
    }

    pub async fn delete_api_key(&self, user: Uuid, id: Uuid) -> Result<()> {
        let result = api_key::Entity::delete_many()
            .filter(api_key::Column::Id.eq(id))
            .filter(api_key::Column::UserId.eq(user))
            .exec(&self.db)
            .await
            .map_err(|e| db_error("delete API key", e))?;
        if result.rows_affected == 0 {
            return Err(Error::NotFound("no such API key".into()));
        }
        Ok(())
    }

    /// Every workspace the user is a member of, with the role, by name.
    pub async fn workspaces_of(&self, user: Uuid) -> Result<Vec<WorkspaceAccess>> {
        let memberships = membership::Entity::find()
            .filter(membership::Column::UserId.eq(user))
            .all(&self.db)
            .await
            .map_err(|e| db_error("list memberships", e))?;
        let ids: Vec<WorkspaceId> = memberships.iter().map(|m| m.workspace_id).collect();
        let workspaces = workspace::Entity::find()
            .filter(workspace::Column::Id.is_in(ids))
            .order_by_asc(workspace::Column::Name)
            .all(&self.db)
            .await
            .map_err(|e| db_error("list workspaces", e))?;
        workspaces
            .into_iter()
            .map(|ws| {
                let role = memberships
                    .iter()
                    .find(|m| m.workspace_id == ws.id)
                    .expect("a membership for each listed workspace")
                    .role
                    .parse()?;
                Ok(WorkspaceAccess {
                    workspace: ws,
                    role,
                })
            })
            .collect()
    }

    /// Every workspace, by name (for site admins).
    pub async fn all_workspaces(&self) -> Result<Vec<workspace::Model>> {
        workspace::Entity::find()
            .order_by_asc(workspace::Column::Name)
            .all(&self.db)
            .await
            .map_err(|e| db_error("list workspaces", e))
    }
}
