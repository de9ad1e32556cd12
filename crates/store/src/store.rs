use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lectern_core::{Error, Result, Role, WorkspaceId, resolve_workspace_name};
use lectern_migrations::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectOptions, Database, DatabaseBackend,
    DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::entity::{audit_event, membership, user, workspace};
use crate::error::db_error;

/// The SQL store. Cheap to clone (a connection pool inside).
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) db: DatabaseConnection,
    pub(crate) clock: Clock,
}

/// Where the store reads the time for everything it stamps or compares: job leases,
/// retry due times, session expiry, created-at columns. The system clock, except in tests
/// (`testing::TestClock`), which move it instead of sleeping.
#[derive(Clone)]
pub(crate) struct Clock(pub(crate) Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock(..)")
    }
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub display_name: Option<String>,
    pub password_hash: Option<String>,
    pub is_admin: bool,
    /// Who vouches that the address is the person's; `None` for someone who signed
    /// themselves up (they verify it by a link later, or an administrator does).
    pub verified: Option<EmailProof>,
}

/// Why an address may be trusted as its account's (`users.email_verified_at`). With the
/// verification link, which the store redeems itself ([`Store::redeem_email_verification`]),
/// these are the only ways: an address typed at sign-up is none of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailProof {
    /// A site administrator made the account or vouched for it (`lectern user create`,
    /// `lectern user verify`, the admin page).
    Administrator,
    /// The identity provider of single sign-on said the address is verified
    /// (`email_verified` in its ID token).
    IdentityProvider,
}

#[derive(Debug, Clone)]
pub struct NewDocument {
    /// Chosen by the caller, so the original can be stored under it before the row exists.
    pub id: Uuid,
    pub workspace_id: WorkspaceId,
    pub title: String,
    pub file_name: String,
    pub media_type: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub storage_key: String,
}

/// Whose view a workspace name is resolved in ([`Store::find_workspace_by_name`]): which
/// workspaces the name may stand for, and which of them count as the looker's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameScope {
    /// The operator at the `lectern` command line, on the machine that holds the data: every
    /// workspace, those made at the command line (which have no owner account) first.
    Operator,
    /// A site administrator, who may read every workspace: all of them, their own first.
    Admin(Uuid),
    /// A person: the workspaces they are a member of, their own first.
    Member(Uuid),
}

impl NameScope {
    /// The owner whose workspace wins when two in view share a name.
    fn owner(self) -> Option<Uuid> {
        match self {
            Self::Operator => None,
            Self::Admin(user) | Self::Member(user) => Some(user),
        }
    }
}

/// Something someone did, for the admin's audit log. Never carries document or answer text.
#[derive(Debug, Clone, Default)]
pub struct AuditEvent {
    pub actor_user_id: Option<Uuid>,
    pub action: String,
    pub workspace_id: Option<Uuid>,
    pub target: Option<String>,
    pub detail: Option<serde_json::Value>,
}

impl Store {
    /// Connects to `sqlite://PATH` (the file is created if missing) or `postgres://...`.
    pub async fn connect(url: &str) -> Result<Self> {
        let backend = backend_of(url)?;
        let mut options = ConnectOptions::new(url);
        options
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(30))
            .sqlx_logging(false);
        if backend == DatabaseBackend::Sqlite {
            // SQLite allows one writer at a time: a small pool, write-ahead logging, and a
            // busy timeout on every pooled connection avoid "database is locked" storms.
            options
                .max_connections(4)
                .min_connections(1)
                .map_sqlx_sqlite_opts(|o| {
                    o.create_if_missing(true)
                        .journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Normal)
                        .busy_timeout(Duration::from_secs(10))
                        .foreign_keys(true)
                });
        } else {
            options.max_connections(16);
        }
        let db = Database::connect(options).await.map_err(|e| {
            Error::unavailable(format!("cannot open the database at {}", redact(url)), e)
        })?;
        Ok(Self {
            db,
            clock: Clock(Arc::new(Utc::now)),
        })
    }

    /// Now, by the store's clock.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        (self.clock.0)()
    }

    pub fn backend(&self) -> DatabaseBackend {
        self.db.get_database_backend()
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> Result<()> {
        Migrator::up(&self.db, None)
            .await
            .map_err(|e| db_error("apply migrations", e))
    }

    /// Reverts every migration (drops Lectern's tables). For operators and tests.
    pub async fn migrate_down_all(&self) -> Result<()> {
        Migrator::down(&self.db, None)
            .await
            .map_err(|e| db_error("revert migrations", e))
    }

    pub async fn pending_migrations(&self) -> Result<Vec<String>> {
        let pending = Migrator::get_pending_migrations(&self.db)
            .await
            .map_err(|e| db_error("read migration status", e))?;
        Ok(pending.iter().map(|m| m.name().to_owned()).collect())
    }

    /// Whether the database answers; for `/ready`.
    pub async fn ping(&self) -> Result<()> {
        self.db
            .ping()
            .await
            .map_err(|e| Error::unavailable("the database does not answer", e))
    }

    pub async fn create_user(&self, new: NewUser) -> Result<user::Model> {
        let email = normalise_email(&new.email)?;
        user::ActiveModel {
            id: Set(Uuid::new_v4()),
            email: Set(email),
            display_name: Set(new.display_name),
            password_hash: Set(new.password_hash),
            is_admin: Set(new.is_admin),
            disabled: Set(false),
            created_at: Set(self.now()),
            email_verified_at: Set(new.verified.map(|_| self.now())),
        }
        .insert(&self.db)
        .await
        .map_err(|e| db_error("create user", e))
    }

    pub async fn find_user_by_email(&self, email: &str) -> Result<Option<user::Model>> {
        let email = normalise_email(email)?;
        user::Entity::find()
            .filter(user::Column::Email.eq(email))
            .one(&self.db)
            .await
            .map_err(|e| db_error("find user", e))
    }

    /// Creates a workspace owned by `owner`, or with `None` one of the operator's at the
    /// command line; the owner's membership is created in the same transaction, so a
    /// workspace never exists without the person who made it.
    ///
    /// Names are unique per owner, not across the site: another tenant's workspace of the
    /// same name is no obstacle, and the conflict, when the owner already has one of that
    /// name, says only that, so creating workspaces tells nothing of other tenants' names.
    pub async fn create_workspace(
        &self,
        name: &str,
        owner: Option<Uuid>,
    ) -> Result<workspace::Model> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Error::Invalid(
                "a workspace name needs 1 to 100 characters".into(),
            ));
        }
        let txn = self.begin().await?;
        let ws = workspace::ActiveModel {
            id: Set(Uuid::new_v4()),
            name: Set(name.to_owned()),
            owner_id: Set(owner),
            created_at: Set(self.now()),
        }
        .insert(&txn)
        .await
        .map_err(|e| match db_error("create workspace", e) {
            // The unique indexes are on (owner, name): this owner's own name is taken.
            Error::Conflict(_) => Error::Conflict(format!(
                "you already have a workspace named {name:?}; choose another name"
            )),
            other => other,
        })?;
        if let Some(owner) = owner {
            membership::ActiveModel {
                workspace_id: Set(ws.id),
                user_id: Set(owner),
                role: Set(Role::Owner.as_str().to_owned()),
                created_at: Set(self.now()),
            }
            .insert(&txn)
            .await
            .map_err(|e| db_error("add workspace owner", e))?;
        }
        txn.commit()
            .await
            .map_err(|e| db_error("create workspace", e))?;
        Ok(ws)
    }

    /// The workspace `name` stands for among those `scope` sees, by the rule of
    /// [`resolve_workspace_name`]: an id, written out, names a workspace too; where two
    /// share the name (names are unique per owner, not across the site), the looker's own
    /// wins; `Ok(None)` when none is called that; an "invalid" error asking for the id when
    /// several are and none is the looker's. Only workspaces in `scope` are read, so neither
    /// the answer nor the error tells of a workspace the looker cannot see.
    pub async fn find_workspace_by_name(
        &self,
        scope: NameScope,
        name: &str,
    ) -> Result<Option<workspace::Model>> {
        let name = name.trim();
        let mut called = Condition::any().add(workspace::Column::Name.eq(name));
        if let Ok(id) = Uuid::parse_str(name) {
            called = called.add(workspace::Column::Id.eq(id));
        }
        let mut query = workspace::Entity::find().filter(called);
        if let NameScope::Member(user) = scope {
            let readable = self.readable_workspaces(user).await?;
            query = query.filter(workspace::Column::Id.is_in(readable));
        }
        let candidates = query
            .all(&self.db)
            .await
            .map_err(|e| db_error("find workspace", e))?;
        let owner = scope.owner();
        let found = resolve_workspace_name(
            name,
            candidates
                .iter()
                .map(|w| (w.id, w.name.as_str(), w.owner_id == owner)),
        )?;
        Ok(candidates.into_iter().find(|w| Some(w.id) == found))
    }

    pub async fn workspace(&self, id: WorkspaceId) -> Result<Option<workspace::Model>> {
        workspace::Entity::find_by_id(id)
            .one(&self.db)
            .await
            .map_err(|e| db_error("find workspace", e))
    }

    /// Sets (adds or changes) a member's role.
    pub async fn set_member(&self, workspace: WorkspaceId, user: Uuid, role: Role) -> Result<()> {
        let existing = membership::Entity::find_by_id((workspace, user))
            .one(&self.db)
            .await
            .map_err(|e| db_error("find membership", e))?;
        let result = match existing {
            Some(m) => {
                let mut m: membership::ActiveModel = m.into();
                m.role = Set(role.as_str().to_owned());
                m.update(&self.db).await.map(drop)
            }
            None => membership::ActiveModel {
                workspace_id: Set(workspace),
                user_id: Set(user),
                role: Set(role.as_str().to_owned()),
                created_at: Set(self.now()),
            }
            .insert(&self.db)
            .await
            .map(drop),
        };
        result.map_err(|e| db_error("set member", e))
    }

    pub async fn remove_member(&self, workspace: WorkspaceId, user: Uuid) -> Result<()> {
        membership::Entity::delete_by_id((workspace, user))
            .exec(&self.db)
            .await
            .map(drop)
            .map_err(|e| db_error("remove member", e))
    }

    /// The user's role in the workspace, or `None` when not a member.
    pub async fn role_of(&self, workspace: WorkspaceId, user: Uuid) -> Result<Option<Role>> {
        let m = membership::Entity::find_by_id((workspace, user))
            .one(&self.db)
            .await
            .map_err(|e| db_error("find membership", e))?;
        m.map(|m| m.role.parse()).transpose()
    }

    /// Every workspace the user may read, for the mandatory search filter.
    pub async fn readable_workspaces(&self, user: Uuid) -> Result<Vec<WorkspaceId>> {
        membership::Entity::find()
            .select_only()
            .column(membership::Column::WorkspaceId)
            .filter(membership::Column::UserId.eq(user))
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(|e| db_error("list memberships", e))
    }

    pub async fn record_audit(&self, event: AuditEvent) -> Result<()> {
        audit_event::ActiveModel {
            id: Set(Uuid::new_v4()),
            at: Set(self.now()),
            actor_user_id: Set(event.actor_user_id),
            action: Set(event.action),
            workspace_id: Set(event.workspace_id),
            target: Set(event.target),
            detail: Set(event.detail),
        }
        .insert(&self.db)
        .await
        .map(drop)
        .map_err(|e| db_error("record audit event", e))
    }

    /// The newest audit events first.
    pub async fn recent_audit(&self, limit: u64) -> Result<Vec<audit_event::Model>> {
        audit_event::Entity::find()
            .order_by_desc(audit_event::Column::At)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(|e| db_error("list audit events", e))
    }

    pub(crate) async fn begin(&self) -> Result<sea_orm::DatabaseTransaction> {
        use sea_orm::TransactionTrait;
        self.db
            .begin()
            .await
            .map_err(|e| db_error("begin transaction", e))
    }
}

fn backend_of(url: &str) -> Result<DatabaseBackend> {
    if url.starts_with("sqlite:") {
        Ok(DatabaseBackend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(DatabaseBackend::Postgres)
    } else {
        Err(Error::Invalid(format!(
            "unsupported database URL {:?}: use sqlite://PATH or postgres://USER@HOST/DB",
            redact(url)
        )))
    }
}

/// A URL for messages: the password, if any, replaced.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

pub(crate) fn normalise_email(email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.chars().any(char::is_whitespace);
    if valid {
        Ok(email)
    } else {
        Err(Error::Invalid(format!("{email:?} is not an email address")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            normalise_email(" Ada@Example.ORG ").unwrap(),
            "ada@example.org"
        );
        for bad in [
            "",
            "ada",
            "@example.org",
            "ada@localhost",
            "a da@example.org",
        ] {
            assert!(normalise_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_database_schemes_are_refused() {
        assert!(matches!(backend_of("mysql://h/db"), Err(Error::Invalid(_))));
    }
}
