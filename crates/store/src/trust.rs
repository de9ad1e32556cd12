//! Trusted addresses, and access given by email.
//!
//! An address counts as its account's (`users.email_verified_at`) only on an
//! administrator's or the identity provider's word ([`EmailProof`]) or when a link sent to
//! it comes back ([`Store::redeem_email_verification`]). Sharing a workspace by email
//! reaches such an account at once; anyone else, with an account or without, gets only an
//! invitation whose link the owner passes on ([`Store::share_by_email`]). Links carry a
//! secret made as API keys are (244 random bits from the operating system, as hex); only
//! its sha256 is stored, so a copy of the tables opens nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lectern_core::{Error, Result, Role, WorkspaceId};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use crate::access::new_secret;
use crate::documents::secs;
use crate::entity::{email_verification, invitation, membership, user};
use crate::error::db_error;
use crate::store::{EmailProof, normalise_email};
use crate::{Store, secret_hash};

/// How long a verification link works.
pub const EMAIL_VERIFICATION_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long an invitation link works.
pub const INVITATION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// What [`Store::share_by_email`] did.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The invitation link's secret: the only time it is available.
    pub token: String,
    pub invitation: invitation::Model,
    /// The verified account of the address, now a member; the invitation was spent on it.
    pub member: Option<user::Model>,
}

/// Makes `user` a member of `workspace` with `role`, or leaves a member who has a higher
/// role as they are (an invitation never demotes); the role they have afterwards.
async fn grant(
    txn: &DatabaseTransaction,
    workspace: WorkspaceId,
    user: Uuid,
    role: Role,
    now: DateTime<Utc>,
) -> Result<Role> {
    let existing = membership::Entity::find_by_id((workspace, user))
        .one(txn)
        .await
        .map_err(|e| db_error("find membership", e))?;
    match existing {
        Some(m) => {
            let current: Role = m.role.parse()?;
            if current >= role {
                return Ok(current);
            }
            let mut m: membership::ActiveModel = m.into();
            m.role = Set(role.as_str().to_owned());
            m.update(txn).await.map_err(|e| db_error("set member", e))?;
        }
        None => {
            membership::ActiveModel {
                workspace_id: Set(workspace),
                user_id: Set(user),
                role: Set(role.as_str().to_owned()),
                created_at: Set(now),
            }
            .insert(txn)
            .await
            .map_err(|e| db_error("add member", e))?;
        }
    }
    Ok(role)
}

impl Store {
    /// Marks the user's address verified on `proof`'s word; the first verification's time
    /// is kept. "Not found" when there is no such user.
    pub async fn verify_email(&self, user: Uuid, proof: EmailProof) -> Result<()> {
        let result = user::Entity::update_many()
            .col_expr(user::Column::EmailVerifiedAt, Expr::value(Some(self.now())))
            .filter(user::Column::Id.eq(user))
            .filter(user::Column::EmailVerifiedAt.is_null())
            .exec(&self.db)
            .await
            .map_err(|e| db_error("verify email", e))?;
        if result.rows_affected == 0 && self.user(user).await?.is_none() {
            return Err(Error::NotFound("no such user".into()));
        }
        tracing::info!(%user, ?proof, "email address verified");
        Ok(())
    }

    /// A new verification link's secret for the user's present address, working once
    /// within [`EMAIL_VERIFICATION_TTL`]. Earlier links keep working until they expire (mail
    /// may arrive out of order); expired ones are swept.
    pub async fn create_email_verification(&self, user: &user::Model) -> Result<String> {
        let now = self.now();
        email_verification::Entity::delete_many()
            .filter(email_verification::Column::UserId.eq(user.id))
            .filter(email_verification::Column::ExpiresAt.lte(now))
            .exec(&self.db)
            .await
            .map_err(|e| db_error("sweep verification links", e))?;
        let token = new_secret();
        email_verification::ActiveModel {
            token_hash: Set(secret_hash(&token)),
            user_id: Set(user.id),
            email: Set(user.email.clone()),
            expires_at: Set(now + secs(EMAIL_VERIFICATION_TTL)),
            created_at: Set(now),
        }
        .insert(&self.db)
        .await
        .map_err(|e| db_error("create verification link", e))?;
        Ok(token)
    }

    /// Redeems a verification link: the account whose address it was sent to, now
    /// verified (and its other links void). `None` for a link that is unknown, used (each
    /// works once), expired, or sent to an address the account no longer has.
    pub async fn redeem_email_verification(&self, token: &str) -> Result<Option<user::Model>> {
        let failed = |e| db_error("verify email", e);
        let now = self.now();
        let txn = self.begin().await?;
        let Some(link) = email_verification::Entity::find_by_id(secret_hash(token))
            .one(&txn)
            .await
            .map_err(failed)?
        else {
            return Ok(None);
        };
        // Spent, whatever follows; only the one request that deletes it goes on.
        let spent = email_verification::Entity::delete_by_id(link.token_hash.clone())
            .exec(&txn)
            .await
            .map_err(failed)?;
        if spent.rows_affected != 1 {
            return Ok(None);
        }
        let account = user::Entity::find_by_id(link.user_id)
            .one(&txn)
            .await
            .map_err(failed)?
            .filter(|u| link.expires_at > now && u.email == link.email);
        let Some(mut account) = account else {
            txn.commit().await.map_err(failed)?;
            return Ok(None);
        };
        if account.email_verified_at.is_none() {
            user::Entity::update_many()
                .col_expr(user::Column::EmailVerifiedAt, Expr::value(Some(now)))
                .filter(user::Column::Id.eq(account.id))
                .exec(&txn)
                .await
                .map_err(failed)?;
            account.email_verified_at = Some(now);
        }
        email_verification::Entity::delete_many()
            .filter(email_verification::Column::UserId.eq(account.id))
            .exec(&txn)
            .await
            .map_err(failed)?;
        txn.commit().await.map_err(failed)?;
        Ok(Some(account))
    }

    /// Shares a workspace with the person at `email`, by `by` (an owner). An invitation is
    /// always made, working once within [`INVITATION_TTL`]. When a *verified* account has
    /// the address, it becomes a member with `role` at once (a member with a higher role
    /// keeps it) and the invitation is spent on it; an unverified account counts as no
    /// account, so that registering someone else's address first gains nothing: only the
    /// link, opened by whoever the owner gives it to, grants access.
    pub async fn share_by_email(
        &self,
        workspace: WorkspaceId,
        email: &str,
        role: Role,
        by: Uuid,
    ) -> Result<Shared> {
        let email = normalise_email(email)?;
        let failed = |e| db_error("share workspace", e);
        let now = self.now();
        let token = new_secret();
        let txn = self.begin().await?;
        let member = user::Entity::find()
            .filter(user::Column::Email.eq(email.as_str()))
            .filter(user::Column::EmailVerifiedAt.is_not_null())
            .one(&txn)
            .await
            .map_err(failed)?;
        let invitation = invitation::ActiveModel {
            id: Set(Uuid::new_v4()),
            workspace_id: Set(workspace),
            role: Set(role.as_str().to_owned()),
            email: Set(email),
            token_hash: Set(secret_hash(&token)),
            created_by: Set(by),
            created_at: Set(now),
            expires_at: Set(now + secs(INVITATION_TTL)),
            accepted_at: Set(member.as_ref().map(|_| now)),
        }
        .insert(&txn)
        .await
        .map_err(|e| db_error("create invitation", e))?;
        if let Some(member) = &member {
            grant(&txn, workspace, member.id, role, now).await?;
        }
        txn.commit().await.map_err(failed)?;
        Ok(Shared {
            token,
            invitation,
            member,
        })
    }

    /// The pending invitation a link's secret stands for; `None` when it is unknown, used,
    /// revoked or expired.
    pub async fn invitation_by_token(&self, token: &str) -> Result<Option<invitation::Model>> {
        let now = self.now();
        Ok(invitation::Entity::find()
            .filter(invitation::Column::TokenHash.eq(secret_hash(token)))
            .one(&self.db)
            .await
            .map_err(|e| db_error("find invitation", e))?
            .filter(|i| i.accepted_at.is_none() && i.expires_at > now))
    }

    /// Accepts an invitation for `user`, whatever their address (the owner chose whom to
    /// give the link): they become a member with its role, or keep a higher one. Works
    /// once: `None` when the link is unknown, used, revoked or expired. Returns the
    /// invitation and the role the user now has.
    pub async fn accept_invitation(
        &self,
        token: &str,
        user: Uuid,
    ) -> Result<Option<(invitation::Model, Role)>> {
        let failed = |e| db_error("accept invitation", e);
        let now = self.now();
        let hash = secret_hash(token);
        let txn = self.begin().await?;
        // The one request whose update marks it used goes on; any other finds it used.
        let spent = invitation::Entity::update_many()
            .col_expr(invitation::Column::AcceptedAt, Expr::value(Some(now)))
            .filter(invitation::Column::TokenHash.eq(hash.as_str()))
            .filter(invitation::Column::AcceptedAt.is_null())
            .filter(invitation::Column::ExpiresAt.gt(now))
            .exec(&txn)
            .await
            .map_err(failed)?;
        // A link that is spent, expired or unknown changes nothing: the transaction ends
        // here, before the next write waits on the lock its update took (SQLite).
        if spent.rows_affected != 1 {
            txn.rollback().await.map_err(failed)?;
            return Ok(None);
        }
        let Some(invitation) = invitation::Entity::find()
            .filter(invitation::Column::TokenHash.eq(hash.as_str()))
            .one(&txn)
            .await
            .map_err(failed)?
        else {
            txn.rollback().await.map_err(failed)?;
            return Ok(None);
        };
        let role = grant(
            &txn,
            invitation.workspace_id,
            user,
            invitation.role.parse()?,
            now,
        )
        .await?;
        txn.commit().await.map_err(failed)?;
        Ok(Some((invitation, role)))
    }

    /// The workspace's invitations not yet used, revoked or expired, oldest first.
    pub async fn pending_invitations(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Vec<invitation::Model>> {
        invitation::Entity::find()
            .filter(invitation::Column::WorkspaceId.eq(workspace))
            .filter(invitation::Column::AcceptedAt.is_null())
            .filter(invitation::Column::ExpiresAt.gt(self.now()))
            .order_by_asc(invitation::Column::CreatedAt)
            .all(&self.db)
            .await
            .map_err(|e| db_error("list invitations", e))
    }

    /// Revokes a pending invitation of the workspace: its link stops working. Returns it;
    /// "not found" when the workspace has no pending invitation by that id.
    pub async fn revoke_invitation(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
    ) -> Result<invitation::Model> {
        let failed = |e| db_error("revoke invitation", e);
        let not_found = || Error::NotFound("no such invitation".into());
        let pending = invitation::Entity::find_by_id(id)
            .one(&self.db)
            .await
            .map_err(failed)?
            .filter(|i| i.workspace_id == workspace && i.accepted_at.is_none())
            .ok_or_else(not_found)?;
        let result = invitation::Entity::delete_many()
            .filter(invitation::Column::Id.eq(id))
            .filter(invitation::Column::AcceptedAt.is_null())
            .exec(&self.db)
            .await
            .map_err(failed)?;
        if result.rows_affected == 0 {
            // Accepted meanwhile.
            return Err(not_found());
        }
        Ok(pending)
    }
}
