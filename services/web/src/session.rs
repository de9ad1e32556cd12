//! Sessions kept in SQL (actix-session's storage seam): the cookie holds only a random key;
//! the table holds the key's sha256, the signed-in user and the session's values. So
//! signing out, changing a password or being disabled ends sessions for good, and a copy
//! of the table signs no one in.
//!
//! Only signing in stores a row. A visitor's session (its CSRF token, a one-time message,
//! a pending single sign-on) travels in the key itself, which the middleware encrypts
//! into the cookie: visiting the sign-in page a million times stores nothing.

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

/// Marks a key that carries a visitor's session itself.
const VISITOR_KEY: &str = "visitor:";
/// Longest visitor key: the cookie holds it encrypted, and browsers keep cookies of up
/// to 4096 bytes.
const VISITOR_KEY_MAX: usize = 2048;

/// A key carrying a visitor's values and when they expire.
fn visitor_key(state: &HashMap<String, String>, ttl: &Duration) -> anyhow::Result<SessionKey> {
    let key = format!(
        "{VISITOR_KEY}{}",
        serde_json::to_string(&(expiry(ttl).timestamp(), state))?
    );
    anyhow::ensure!(
        key.len() <= VISITOR_KEY_MAX,
        "the session holds too much for its cookie"
    );
    SessionKey::try_from(key).map_err(|e| anyhow::anyhow!("{e}"))
}

/// A visitor key's values: `Some(None)` once expired (or unreadable); `None` for the key
/// of a stored session.
fn visitor_state(key: &SessionKey) -> Option<Option<HashMap<String, String>>> {
    let key: &str = key.as_ref();
    let json = key.strip_prefix(VISITOR_KEY)?;
    let state = serde_json::from_str::<(i64, HashMap<String, String>)>(json)
        .ok()
        .filter(|(expires, _)| *expires > Utc::now().timestamp())
        .map(|(_, mut state)| {
            // Only a stored session is signed in, whatever a key says.
            state.remove(USER_KEY);
            state
        });
    Some(state)
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
        if let Some(state) = visitor_state(key) {
            return Ok(state);
        }
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
        if user_of(&state).is_none() {
            return visitor_key(&state, ttl).map_err(SaveError::Serialization);
        }
        let key = new_key();
        self.write(&key, &state, ttl)
            .await
            .map_err(SaveError::Other)?;
        // Expired sessions are swept now and then.
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
        // disabled) is not brought back: its values go to a new key, signed out. Nor
        // does a visitor's session become signed in without a new key.
        let exists = visitor_state(&key).is_none()
            && self
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
        if visitor_state(key).is_some() {
            // Its expiry is in the key; it is renewed whenever its values change.
            return Ok(());
        }
        self.store
            .extend_session(&secret_hash(key.as_ref()), expiry(ttl))
            .await?;
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> anyhow::Result<()> {
        if visitor_state(key).is_some() {
            return Ok(());
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn visitor(csrf: &str) -> HashMap<String, String> {
        HashMap::from([("csrf".to_owned(), format!("{csrf:?}"))])
    }

    #[test]
    fn a_visitors_values_travel_in_the_key_until_they_expire() {
        let state = visitor("3f2a");
        let key = visitor_key(&state, &Duration::hours(1)).unwrap();
        assert_eq!(visitor_state(&key), Some(Some(state.clone())));
        let expired = visitor_key(&state, &Duration::seconds(-1)).unwrap();
        assert_eq!(visitor_state(&expired), Some(None));
        // A stored session's key is not a visitor's.
        assert_eq!(visitor_state(&new_key()), None);
        // A visitor key never signs anyone in, even one that names a user.
        let mut forged = state.clone();
        forged.insert(
            USER_KEY.to_owned(),
            format!("{:?}", Uuid::new_v4().to_string()),
        );
        let key = visitor_key(&forged, &Duration::hours(1)).unwrap();
        assert_eq!(visitor_state(&key), Some(Some(state.clone())));
    }

    #[test]
    fn a_visitor_key_stays_small_enough_for_a_cookie() {
        let huge = visitor(&"x".repeat(VISITOR_KEY_MAX));
        assert!(visitor_key(&huge, &Duration::hours(1)).is_err());
    }
}
