//! What the web app keeps: server-side sessions, passwords, members with their emails,
//! feedback on answers, run-time site settings, and the failed sign-ins that throttle.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use lectern_core::{Result, Role, WorkspaceId};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set};
use uuid::Uuid;

use crate::Store;
use crate::entity::{feedback, membership, session, site_setting, user};
use crate::error::db_error;

/// Site setting: whether anyone may sign up ("true"/"false"; unset follows the config).
pub const SIGNUP_OPEN: &str = "signup_open";

/// A member of a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user: user::Model,
    pub role: Role,
}

impl Store {
    /// A live session's state by the hash of its key (expired ones are gone).
    pub async fn session(&self, key_hash: &str) -> Result<Option<session::Model>> {
        Ok(session::Entity::find_by_id(key_hash.to_owned())
            .one(&self.db)
            .await
            .map_err(|e| db_error("load session", e))?
            .filter(|s| s.expires_at > self.now()))
    }

    /// Creates or replaces a session.
    pub async fn save_session(
        &self,
        key_hash: &str,
        user: Option<Uuid>,
        state: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let row = session::ActiveModel {
            key_hash: Set(key_hash.to_owned()),
            user_id: Set(user),
            state: Set(state.to_owned()),
            expires_at: Set(expires_at),
        };
        session::Entity::insert(row)
            .on_conflict(
                OnConflict::column(session::Column::KeyHash)
                    .update_columns([
                        session::Column::UserId,
                        session::Column::State,
                        session::Column::ExpiresAt,
                    ])
                    .to_owned(),
            )
            .exec(&self.db)
            .await
            .map_err(|e| db_error("save session", e))?;
        Ok(())
    }

    pub async fn extend_session(&self, key_hash: &str, expires_at: DateTime<Utc>) -> Result<()> {
        session::Entity::update_many()
            .col_expr(session::Column::ExpiresAt, Expr::value(expires_at))
            .filter(session::Column::KeyHash.eq(key_hash))
            .exec(&self.db)
            .await
            .map_err(|e| db_error("extend session", e))?;
        Ok(())
    }

    pub async fn delete_session(&self, key_hash: &str) -> Result<()> {
        session::Entity::delete_by_id(key_hash.to_owned())
            .exec(&self.db)
            .await
            .map_err(|e| db_error("delete session", e))?;
        Ok(())
    }

    /// Ends every session of a user but `keep` (after a password change, or when an
    /// administrator disables them).
    pub async fn delete_sessions_of(&self, user: Uuid, keep: Option<&str>) -> Result<u64> {
        let mut query = session::Entity::delete_many().filter(session::Column::UserId.eq(user));
        if let Some(keep) = keep {
            query = query.filter(session::Column::KeyHash.ne(keep));
        }
        Ok(query
            .exec(&self.db)
            .await
            .map_err(|e| db_error("delete sessions", e))?
            .rows_affected)
    }

    pub async fn delete_expired_sessions(&self) -> Result<u64> {
        Ok(session::Entity::delete_many()
            .filter(session::Column::ExpiresAt.lte(self.now()))
            .exec(&self.db)
            .await
            .map_err(|e| db_error("delete expired sessions", e))?
            .rows_affected)
    }

    pub async fn set_password_hash(&self, user: Uuid, hash: &str) -> Result<()> {
        self.set_user_column(user, user::Column::PasswordHash, hash.into())
            .await
    }

    pub async fn set_user_admin(&self, user: Uuid, admin: bool) -> Result<()> {
        self.set_user_column(user, user::Column::IsAdmin, admin.into())
            .await
    }

    /// Every user, by email.
    pub async fn users(&self) -> Result<Vec<user::Model>> {
        user::Entity::find()
            .order_by_asc(user::Column::Email)
            .all(&self.db)
            .await
            .map_err(|e| db_error("list users", e))
    }

    pub async fn user_count(&self) -> Result<u64> {
        user::Entity::find()
            .count(&self.db)
            .await
            .map_err(|e| db_error("count users", e))
    }

    /// The members of a workspace with their role, by email.
    pub async fn members_of(&self, workspace: WorkspaceId) -> Result<Vec<Member>> {
        let rows = membership::Entity::find()
            .filter(membership::Column::WorkspaceId.eq(workspace))
            .all(&self.db)
            .await
            .map_err(|e| db_error("list members", e))?;
        let ids: Vec<Uuid> = rows.iter().map(|m| m.user_id).collect();
        let mut users: HashMap<Uuid, user::Model> = user::Entity::find()
            .filter(user::Column::Id.is_in(ids))
            .all(&self.db)
            .await
            .map_err(|e| db_error("list members", e))?
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        let mut members: Vec<Member> = rows
            .into_iter()
            .filter_map(|m| {
                let role: Role = m.role.parse().ok()?;
                Some(Member {
                    user: users.remove(&m.user_id)?,
                    role,
                })
            })
            .collect();
        members.sort_by(|a, b| a.user.email.cmp(&b.user.email));
        Ok(members)
    }

    /// Records (or replaces) a user's verdict on an answer.
    pub async fn record_feedback(
        &self,
        message: Uuid,
        user: Uuid,
        helpful: bool,
        comment: Option<String>,
    ) -> Result<()> {
        let row = feedback::ActiveModel {
            id: Set(Uuid::new_v4()),
            message_id: Set(message),
            user_id: Set(user),
            helpful: Set(helpful),
            comment: Set(comment.filter(|c| !c.trim().is_empty())),
            created_at: Set(self.now()),
        };
        feedback::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([feedback::Column::MessageId, feedback::Column::UserId])
                    .update_columns([
                        feedback::Column::Helpful,
                        feedback::Column::Comment,
                        feedback::Column::CreatedAt,
                    ])
                    .to_owned(),
            )
            .exec(&self.db)
            .await
            .map_err(|e| db_error("record feedback", e))?;
        Ok(())
    }

    /// The user's feedback on the given answers.
    pub async fn feedback_of(
        &self,
        user: Uuid,
        messages: &[Uuid],
    ) -> Result<HashMap<Uuid, feedback::Model>> {
        Ok(feedback::Entity::find()
            .filter(feedback::Column::UserId.eq(user))
            .filter(feedback::Column::MessageId.is_in(messages.to_vec()))
            .all(&self.db)
            .await
            .map_err(|e| db_error("load feedback", e))?
            .into_iter()
            .map(|f| (f.message_id, f))
            .collect())
    }

    pub async fn site_setting(&self, key: &str) -> Result<Option<String>> {
        Ok(site_setting::Entity::find_by_id(key.to_owned())
            .one(&self.db)
            .await
            .map_err(|e| db_error("load site setting", e))?
            .map(|s| s.value))
    }

    pub async fn set_site_setting(&self, key: &str, value: &str) -> Result<()> {
        let row = site_setting::ActiveModel {
            key: Set(key.to_owned()),
            value: Set(value.to_owned()),
        };
        site_setting::Entity::insert(row)
            .on_conflict(
                OnConflict::column(site_setting::Column::Key)
                    .update_column(site_setting::Column::Value)
                    .to_owned(),
            )
            .exec(&self.db)
            .await
            .map_err(|e| db_error("save site setting", e))?;
        Ok(())
    }
}
