//! The store against real databases: every test runs on SQLite and on PostgreSQL. Time
//! passes by a test clock, never by sleeping.

use std::time::Duration;

use lectern_core::{Error, Role};
use lectern_store::documents::MAX_CLAIMS;
use lectern_store::entity::{document, ingest_job};
use lectern_store::testing::{TestClock, TestDatabase};
use lectern_store::{AuditEvent, NewDocument, NewUser, Store, job_state, status};
use sea_orm::{ConnectionTrait, Statement};
use uuid::Uuid;

/// Runs one async test body against both backends.
macro_rules! on_both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                let db = TestDatabase::sqlite();
                ($body)(db).await;
            }
            #[tokio::test]
            async fn postgres() {
                let db = TestDatabase::postgres().await;
                ($body)(db).await;
            }
        }
    };
}

async fn table_names(store: &Store) -> Vec<String> {
    let sql = match store.backend() {
        sea_orm::DatabaseBackend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        }
        _ => {
            "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name"
        }
    };
    let rows = store
        .connection()
        .query_all_raw(Statement::from_string(store.backend(), sql))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get::<String>("", "name").unwrap())
        .collect()
}

fn user(email: &str) -> NewUser {
    NewUser {
        email: email.into(),
        display_name: None,
        password_hash: None,
        is_admin: false,
    }
}

on_both_backends!(
    migrations_go_up_and_down_and_up_again,
    |db: TestDatabase| async move {
        let store = Store::connect(&db.url).await.unwrap();
        assert!(!store.pending_migrations().await.unwrap().is_empty());
        store.migrate().await.unwrap();
        assert!(store.pending_migrations().await.unwrap().is_empty());
        let tables = table_names(&store).await;
        for t in [
            "users",
            "workspaces",
            "memberships",
            "documents",
            "chunks",
            "ingest_jobs",
            "audit_events",
        ] {
            assert!(tables.iter().any(|n| n == t), "{t} missing from {tables:?}");
        }
        // Running again is a no-op.
        store.migrate().await.unwrap();

        store.migrate_down_all().await.unwrap();
        let tables = table_names(&store).await;
        assert!(
            !tables.iter().any(|n| n == "users" || n == "documents"),
            "{tables:?}"
        );
        assert!(!store.pending_migrations().await.unwrap().is_empty());

        store.migrate().await.unwrap();
        store.create_user(user("ada@example.org")).await.unwrap();
    }
);

on_both_backends!(
    users_are_unique_by_normalised_email,
    |db: TestDatabase| async move {
        let store = db.store().await;
        let ada = store.create_user(user("Ada@Example.org")).await.unwrap();
        assert_eq!(ada.email, "ada@example.org");
        let again = store.create_user(user("ada@example.org ")).await;
        assert!(matches!(again, Err(Error::Conflict(_))), "{again:?}");
        let found = store
            .find_user_by_email("ADA@example.org")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, ada.id);
        assert!(
            store
                .find_user_by_email("bob@example.org")
                .await
                .unwrap()
                .is_none()
        );
    }
);

on_both_backends!(
    memberships_give_roles_and_readable_workspaces,
    |db: TestDatabase| async move {
        let store = db.store().await;
        let ada = store.create_user(user("ada@example.org")).await.unwrap();
        let bob = store.create_user(user("bob@example.org")).await.unwrap();
        let hr = store.create_workspace("HR", Some(ada.id)).await.unwrap();
        let eng = store
            .create_workspace("Engineering", Some(bob.id))
            .await
            .unwrap();

        assert_eq!(
            store.role_of(hr.id, ada.id).await.unwrap(),
            Some(Role::Owner)
        );
        assert_eq!(store.role_of(hr.id, bob.id).await.unwrap(), None);
        assert_eq!(
            store.readable_workspaces(ada.id).await.unwrap(),
            vec![hr.id]
        );

        store
            .set_member(eng.id, ada.id, Role::Viewer)
            .await
            .unwrap();
        assert_eq!(
            store.role_of(eng.id, ada.id).await.unwrap(),
            Some(Role::Viewer)
        );
        store
            .set_member(eng.id, ada.id, Role::Editor)
            .await
            .unwrap();
        assert_eq!(
            store.role_of(eng.id, ada.id).await.unwrap(),
            Some(Role::Editor)
        );
        let mut readable = store.readable_workspaces(ada.id).await.unwrap();
        readable.sort();
        let mut expected = vec![hr.id, eng.id];
        expected.sort();
        assert_eq!(readable, expected);

        store.remove_member(eng.id, ada.id).await.unwrap();
        assert_eq!(
            store.readable_workspaces(ada.id).await.unwrap(),
            vec![hr.id]
        );

        let dup = store.create_workspace(" HR ", None).await;
        assert!(matches!(dup, Err(Error::Conflict(_))), "{dup:?}");
        assert!(matches!(
            store.create_workspace("  ", None).await,
            Err(Error::Invalid(_))
        ));
        assert_eq!(
            store
                .find_workspace_by_name("HR")
                .await
                .unwrap()
                .unwrap()
                .id,
            hr.id
        );
    }
);

on_both_backends!(
    a_workspace_is_not_created_when_its_owner_is_unknown,
    |db: TestDatabase| async move {
        let store = db.store().await;
        let ghost = uuid::Uuid::new_v4();
        assert!(store.create_workspace("Orphan", Some(ghost)).await.is_err());
        // The transaction rolled back: the name is still free.
        assert!(
            store
                .find_workspace_by_name("Orphan")
                .await
                .unwrap()
                .is_none()
        );
    }
);

on_both_backends!(
    audit_events_list_newest_first,
    |db: TestDatabase| async move {
        let clock = TestClock::new();
        let store = db.store().await.with_clock(&clock);
        for action in ["sign_in", "upload", "delete"] {
            store
                .record_audit(AuditEvent {
                    action: action.into(),
                    ..Default::default()
                })
                .await
                .unwrap();
            clock.advance(Duration::from_secs(1));
        }
        let events = store.recent_audit(2).await.unwrap();
        let actions: Vec<_> = events.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["delete", "upload"]);
    }
);

const LEASE: Duration = Duration::from_secs(30);

/// A store whose clock the test moves, with one document queued in a fresh workspace and
/// its job just claimed (leased for [`LEASE`] from the clock's time).
async fn claimed_job(db: &TestDatabase) -> (Store, TestClock, document::Model, ingest_job::Model) {
    let clock = TestClock::new();
    let store = db.store().await.with_clock(&clock);
    let ws = store.create_workspace("Papers", None).await.unwrap();
    let (doc, queued) = store
        .create_document(NewDocument {
            id: Uuid::new_v4(),
            workspace_id: ws.id,
            title: "Handbook".into(),
            file_name: "handbook.pdf".into(),
            media_type: "application/pdf".into(),
            sha256: "ab".repeat(32),
            size_bytes: 1024,
            storage_key: "originals/handbook".into(),
        })
        .await
        .unwrap();
    let job = store.claim_next_job(LEASE).await.unwrap().expect("queued");
    assert_eq!(
        (job.id, job.state.as_str(), job.attempts),
        (queued.id, job_state::RUNNING, 1)
    );
    assert_eq!(job.lease_until, Some(clock.now() + LEASE));
    (store, clock, doc, job)
}

on_both_backends!(
    a_lease_holds_a_job_until_it_expires_and_heartbeats_extend_it,
    |db: TestDatabase| async move {
        let (store, clock, _, job) = claimed_job(&db).await;
        clock.advance(Duration::from_secs(29));
        assert!(
            store.claim_next_job(LEASE).await.unwrap().is_none(),
            "the lease still runs"
        );

        // Renewed at 29 s: the lease now runs to 59 s, past the first one's end.
        store.heartbeat(job.id, LEASE).await.unwrap();
        clock.advance(Duration::from_secs(30));
        assert!(
            store.claim_next_job(LEASE).await.unwrap().is_none(),
            "the heartbeat extended the lease"
        );

        // Its worker is gone: once the lease has run out, another worker takes the job.
        clock.advance(Duration::from_secs(1));
        let again = store
            .claim_next_job(LEASE)
            .await
            .unwrap()
            .expect("the expired lease is claimed again");
        assert_eq!((again.id, again.attempts), (job.id, 2));
        assert_eq!(again.lease_until, Some(clock.now() + LEASE));
    }
);

on_both_backends!(
    a_job_that_keeps_stopping_its_worker_is_set_aside,
    |db: TestDatabase| async move {
        // A file that crashes or hangs every worker that reads it: each claim ends with
        // the lease running out, and without a limit it would be claimed forever.
        let (store, clock, doc, job) = claimed_job(&db).await;
        for attempt in 2..=MAX_CLAIMS {
            clock.advance(LEASE + Duration::from_secs(1));
            let again = store
                .claim_next_job(LEASE)
                .await
                .unwrap()
                .expect("claimed again while claims are left");
            assert_eq!((again.id, again.attempts), (job.id, attempt));
        }
        let (next, _) = store
            .create_document(NewDocument {
                id: Uuid::new_v4(),
                workspace_id: doc.workspace_id,
                title: "Minutes".into(),
                file_name: "minutes.txt".into(),
                media_type: "text/plain".into(),
                sha256: "cd".repeat(32),
                size_bytes: 10,
                storage_key: "originals/minutes".into(),
            })
            .await
            .unwrap();
        clock.advance(LEASE + Duration::from_secs(1));
        let claimed = store
            .claim_next_job(LEASE)
            .await
            .unwrap()
            .expect("the next file");
        assert_eq!(
            claimed.document_id, next.id,
            "set aside, and the next file is read"
        );

        let reason = "reading this file stopped the worker (a crash or a hang) and it was tried \
                      3 times; it was set aside: check that it opens, or save it in another \
                      format, and upload it again";
        let job = store.job(job.id).await.unwrap().unwrap();
        assert_eq!(
            (job.state.as_str(), job.attempts, job.last_error.as_deref()),
            (job_state::FAILED, MAX_CLAIMS, Some(reason))
        );
        let doc = store.document(doc.id).await.unwrap().unwrap();
        assert_eq!(
            (doc.status.as_str(), doc.error_message.as_deref()),
            (status::FAILED, Some(reason))
        );
        store.complete_job(&claimed, 1, Vec::new()).await.unwrap();
        clock.advance(Duration::from_secs(24 * 3600));
        assert!(store.claim_next_job(LEASE).await.unwrap().is_none());
    }
);

on_both_backends!(
    a_transient_failure_is_retried_after_its_backoff_until_attempts_run_out,
    |db: TestDatabase| async move {
        let (store, clock, doc, job) = claimed_job(&db).await;
        let retry_in = Duration::from_secs(60);
        let requeued = store
            .fail_job(&job, "the embedder is busy", true, retry_in, 2)
            .await
            .unwrap();
        assert!(requeued, "a transient failure with attempts left");
        let waiting = store.job(job.id).await.unwrap().unwrap();
        assert_eq!(
            (
                waiting.state.as_str(),
                waiting.run_after,
                waiting.lease_until
            ),
            (job_state::QUEUED, clock.now() + retry_in, None)
        );
        clock.advance(retry_in - Duration::from_secs(1));
        assert!(
            store.claim_next_job(LEASE).await.unwrap().is_none(),
            "not due before its backoff"
        );
        clock.advance(Duration::from_secs(1));
        let last = store.claim_next_job(LEASE).await.unwrap().expect("due");
        assert_eq!((last.id, last.attempts), (job.id, 2));

        // The last attempt: even a transient failure fails the document, with its reason.
        let requeued = store
            .fail_job(&last, "the embedder is busy", true, retry_in, 2)
            .await
            .unwrap();
        assert!(!requeued);
        let job = store.job(job.id).await.unwrap().unwrap();
        assert_eq!(job.state, job_state::FAILED);
        let doc = store.document(doc.id).await.unwrap().unwrap();
        assert_eq!(
            (doc.status.as_str(), doc.error_message.as_deref()),
            (status::FAILED, Some("the embedder is busy"))
        );
        clock.advance(Duration::from_secs(24 * 3600));
        assert!(store.claim_next_job(LEASE).await.unwrap().is_none());
    }
);

on_both_backends!(
    a_heartbeat_for_a_finished_job_is_refused,
    |db: TestDatabase| async move {
        let (store, _, _, job) = claimed_job(&db).await;
        store.complete_job(&job, 3, Vec::new()).await.unwrap();
        let refused = store.heartbeat(job.id, LEASE).await;
        assert!(matches!(refused, Err(Error::Conflict(_))), "{refused:?}");
    }
);

#[tokio::test]
async fn an_unreachable_database_is_unavailable_not_a_crash() {
    let err = Store::connect("postgres://postgres@127.0.0.1:1/none")
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}

on_both_backends!(
    exchanges_written_at_once_all_land_in_order,
    |db: TestDatabase| async move {
        // Many questions answered at once in one conversation (two tabs, an API client
        // and the web app): none is refused as "database is locked", none shares a place.
        let store = db.store().await;
        let ada = store.create_user(user("ada@example.org")).await.unwrap();
        let chat = store
            .create_conversation(ada.id, "Travel", &[])
            .await
            .unwrap();
        let writers = (0..8).map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..5 {
                    store
                        .add_exchange(chat.id, &format!("q{w}.{i}"), "a", serde_json::json!({}))
                        .await
                        .unwrap_or_else(|e| panic!("writer {w}, exchange {i}: {e}"));
                }
            })
        });
        for writer in writers.collect::<Vec<_>>() {
            writer.await.unwrap();
        }
        let messages = store.messages_of(chat.id).await.unwrap();
        let positions: Vec<i32> = messages.iter().map(|m| m.position).collect();
        assert_eq!(positions, (0..80).collect::<Vec<_>>());
        for pair in messages.chunks(2) {
            assert_eq!(
                (pair[0].role.as_str(), pair[1].role.as_str()),
                ("user", "assistant")
            );
        }
    }
);
