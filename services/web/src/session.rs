//! Sessions kept in SQL (actix-session's storage seam): the cookie holds only a random key;
//! the table holds the key's sha256, the signed-in user and the session's values. So
//! signing out, changing a password or being disabled ends sessions for good, and a copy
//! of the table signs no one in.

use std::collections::HashMap;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;
use chrono::Utc;
use lectern_store::{Store, secret_hash};
use uuid::Uuid;

/// The session value naming the signed-in user.
pub const USER_KEY: &str = "user_id";

#[derive(Clone)]
pub struct SqlSessionStore {
    store: Store,
}

impl SqlSessionStore {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

fn new_key() -> SessionKey {
    let key = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    SessionKey::try_from(key).expect("64 characters fit a cookie")
}

fn expiry(ttl: &Duration) -> chrono::DateTime<Utc> {
    Utc::now() + chrono::Duration::seconds(ttl.whole_seconds())
}

/// The signed-in user named in a session's values (stored JSON-encoded by actix-session).
fn user_of(state: &HashMap<String, String>) -> Option<Uuid> {
    state
        .get(USER_KEY)
        .and_then(|v| serde_json::from_str::<Uuid>(v).ok())
}

impl SqlSessionStore {
    async fn write(
        &self,
        key: &SessionKey,
        state: &HashMap<String, String>,
        ttl: &Duration,
    ) -> anyhow::Result<()> {
        let json = serde_json::to_string(state)?;
        self.store
            .save_session(
                &secret_hash(key.as_ref()),
                user_of(state),
                &json,
                expiry(ttl),
            )
            .await?;
        Ok(())
    }
}

impl SessionStore for SqlSessionStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<HashMap<String, String>>, LoadError> {
        let Some(row) = self
            .store
            .session(&secret_hash(key.as_ref()))
            .await
            .map_err(|e| LoadError::Other(e.into()))?
        else {
            return Ok(None);
        };
        serde_json::from_str(&row.state)
            .map(Some)
            .map_err(|e| LoadError::Deserialization(e.into()))
    }

    async fn save(
        &self,
        state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, SaveError> {
        let key = new_key();
        self.write(&key, &state, ttl)
            .await
            .map_err(SaveError::Other)?;
        // Sessions of visitors who never came back are swept now and then.
        if rand_tick() {
            let _ = self.store.delete_expired_sessions().await;
        }
        Ok(key)
    }

    async fn update(
        &self,
        key: SessionKey,
        state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        // A session that was ended meanwhile (signed out, password changed, user
        // disabled) is not brought back: its values go to a new key, signed out.
        let exists = self
            .store
            .session(&secret_hash(key.as_ref()))
            .await
            .map_err(|e| UpdateError::Other(e.into()))?
            .is_some();
        if !exists {
            let mut state = state;
            state.remove(USER_KEY);
            return self.save(state, ttl).await.map_err(|e| match e {
                SaveError::Serialization(e) => UpdateError::Serialization(e),
                SaveError::Other(e) => UpdateError::Other(e),
            });
        }
        self.write(&key, &state, ttl)
            .await
            .map_err(UpdateError::Other)?;
        Ok(key)
    }

    async fn update_ttl(&self, key: &SessionKey, ttl: &Duration) -> anyhow::Result<()> {
        self.store
            .extend_session(&secret_hash(key.as_ref()), expiry(ttl))
            .await?;
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> anyhow::Result<()> {
        self.store
            .delete_session(&secret_hash(key.as_ref()))
            .await?;
        Ok(())
    }
}

/// True about once in fifty calls.
fn rand_tick() -> bool {
    Uuid::new_v4().as_bytes()[0] < 5
}
