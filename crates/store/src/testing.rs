//! Fresh databases for tests: a SQLite file in a temporary folder, or a uuid-named
//! PostgreSQL database on the server named by `LECTERN_TEST_POSTGRES_URL` (default: the
//! local server, `postgres://postgres@127.0.0.1:5432/postgres`), dropped when the guard goes.
//! And a clock that tests move by hand, so that leases expire and retries come due without
//! sleeping.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{ConnectionTrait, Database};

use crate::Store;
use crate::store::Clock;

pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A throw-away database; the database (or folder) is removed on drop.
pub struct TestDatabase {
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("create a temporary folder");
        let url = format!("sqlite://{}", dir.path().join("lectern.db").display());
        Self {
            url,
            cleanup: Cleanup::Sqlite(dir),
        }
    }

    /// Creates `lectern_test_<uuid>` on the test server. Panics with the reason when the
    /// server is unreachable: these tests exist to run against the real thing.
    pub async fn postgres() -> Self {
        let admin_url =
            std::env::var("LECTERN_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.into());
        let name = format!("lectern_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL tests need a server at {admin_url} (set LECTERN_TEST_POSTGRES_URL): {e}"
            )
        });
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        admin.close().await.ok();
        let url = match admin_url.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("LECTERN_TEST_POSTGRES_URL must end with /DATABASE"),
        };
        Self {
            url,
            cleanup: Cleanup::Postgres { admin_url, name },
        }
    }

    pub async fn store(&self) -> Store {
        let store = Store::connect(&self.url)
            .await
            .expect("connect to test database");
        store.migrate().await.expect("migrate test database");
        store
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Cleanup::Postgres { admin_url, name } = &self.cleanup else {
            return;
        };
        let (admin_url, name) = (admin_url.clone(), name.clone());
        // Drop may run inside a runtime: do the async cleanup on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let admin = Database::connect(&admin_url).await.ok()?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
    }
}

/// A clock that stands still until the test moves it. Clones share one time.
#[derive(Clone, Debug)]
pub struct TestClock(Arc<Mutex<DateTime<Utc>>>);

impl TestClock {
    /// Starts at the current whole second.
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new(Utc::now().trunc_subsecs(0))))
    }

    pub fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("test clock")
    }

    pub fn advance(&self, by: Duration) {
        *self.0.lock().expect("test clock") += chrono::Duration::from_std(by).expect("a duration");
    }
}

impl Default for TestClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    /// This store with its time read from `clock` instead of the system clock.
    pub fn with_clock(self, clock: &TestClock) -> Self {
        let clock = clock.clone();
        Self {
            clock: Clock(Arc::new(move || clock.now())),
            ..self
        }
    }
}
