//! The store against real databases: every test runs on SQLite and on PostgreSQL. Time
//! passes by a test clock, never by sleeping.

use std::time::Duration;

use lectern_core::{Error, Role};
use lectern_migrations::{Migrator, MigratorTrait};
use lectern_store::documents::MAX_LOST_LEASES;
use lectern_store::entity::{document, ingest_job};
use lectern_store::testing::{TestClock, TestDatabase};
use lectern_store::{
    AuditEvent, EMAIL_VERIFICATION_TTL, EmailProof, INVITATION_TTL, NameScope, NewDocument,
    NewUser, PagesRead, Store, job_state, status,
};
use sea_orm::sea_query::{Alias, Query};
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
        verified: None,
    }
}

/// Inserts a user row as the schemas before `users.email_verified_at` held one (the
/// entity already knows the column); its id.
async fn insert_user_row(store: &Store, email: &str, password_hash: Option<&str>) -> Uuid {
    let id = Uuid::new_v4();
    let insert = Query::insert()
        .into_table(Alias::new("users"))
        .columns([
            Alias::new("id"),
            Alias::new("email"),
            Alias::new("password_hash"),
            Alias::new("is_admin"),
            Alias::new("disabled"),
            Alias::new("created_at"),
        ])
        .values_panic([
            id.into(),
            email.into(),
            password_hash.map(str::to_owned).into(),
            false.into(),
            false.into(),
            chrono::Utc::now().into(),
        ])
        .to_owned();
    store.connection().execute(&insert).await.unwrap();
    id
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
            "sources",
        ] {
            assert!(tables.iter().any(|n| n == t), "{t} missing from {tables:?}");
        }
        // Running again is a no-op.
        store.migrate().await.unwrap();

        store.migrate_down_all().await.unwrap();
        let tables = table_names(&store).await;
        assert!(
            !tables
                .iter()
                .any(|n| n == "users" || n == "documents" || n == "sources"),
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

        let dup = store.create_workspace(" HR ", Some(ada.id)).await;
        assert!(matches!(dup, Err(Error::Conflict(_))), "{dup:?}");
        assert!(matches!(
            store.create_workspace("  ", None).await,
            Err(Error::Invalid(_))
        ));
        assert_eq!(
            store
                .find_workspace_by_name(NameScope::Member(ada.id), "HR")
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
                .find_workspace_by_name(NameScope::Operator, "Orphan")
                .await
                .unwrap()
                .is_none()
        );
    }
);

on_both_backends!(
    workspace_names_are_unique_per_owner,
    |db: TestDatabase| async move {
        let store = db.store().await;
        let ada = store.create_user(user("ada@example.org")).await.unwrap();
        let bob = store.create_user(user("bob@example.org")).await.unwrap();
        let adas = store
            .create_workspace("Handbook", Some(ada.id))
            .await
            .unwrap();
        assert_eq!(adas.owner_id, Some(ada.id));
        // Another owner's workspace of that name is no obstacle, nor to the operator.
        let bobs = store
            .create_workspace("Handbook", Some(bob.id))
            .await
            .unwrap();
        assert_ne!(bobs.id, adas.id);
        assert_eq!(bobs.owner_id, Some(bob.id));
        let operators = store.create_workspace("Handbook", None).await.unwrap();
        assert_eq!(operators.owner_id, None);

        // The same owner twice: a conflict about their own name, telling nothing of Ada's.
        for owner in [Some(bob.id), None] {
            let again = store.create_workspace(" Handbook ", owner).await;
            let Err(Error::Conflict(message)) = &again else {
                panic!("{again:?}")
            };
            assert!(
                message.starts_with("you already have a workspace named \"Handbook\""),
                "{message}"
            );
            for secret in [ada.id.to_string(), adas.id.to_string(), ada.email.clone()] {
                assert!(!message.contains(&secret), "{message}");
            }
        }
    }
);

on_both_backends!(
    a_name_stands_for_the_lookers_own_workspace,
    |db: TestDatabase| async move {
        let store = db.store().await;
        let ada = store.create_user(user("ada@example.org")).await.unwrap();
        let bob = store.create_user(user("bob@example.org")).await.unwrap();
        let eve = store.create_user(user("eve@example.org")).await.unwrap();
        let adas = store
            .create_workspace("Handbook", Some(ada.id))
            .await
            .unwrap();
        let bobs = store
            .create_workspace("Handbook", Some(bob.id))
            .await
            .unwrap();
        let operators = store.create_workspace("Handbook", None).await.unwrap();
        let find = |scope: NameScope, name: String| {
            let store = store.clone();
            async move {
                store
                    .find_workspace_by_name(scope, &name)
                    .await
                    .map(|ws| ws.map(|ws| ws.id))
            }
        };
        let handbook = || "Handbook".to_owned();

        // Each looker's own.
        assert_eq!(
            find(NameScope::Member(ada.id), handbook()).await.unwrap(),
            Some(adas.id)
        );
        assert_eq!(
            find(NameScope::Member(bob.id), handbook()).await.unwrap(),
            Some(bobs.id)
        );
        assert_eq!(
            find(NameScope::Admin(bob.id), handbook()).await.unwrap(),
            Some(bobs.id)
        );
        assert_eq!(
            find(NameScope::Operator, handbook()).await.unwrap(),
            Some(operators.id)
        );

        // Bob's shared with Ada: the name is still hers; his is reached by its id.
        store
            .set_member(bobs.id, ada.id, Role::Viewer)
            .await
            .unwrap();
        assert_eq!(
            find(NameScope::Member(ada.id), handbook()).await.unwrap(),
            Some(adas.id)
        );
        assert_eq!(
            find(NameScope::Member(ada.id), bobs.id.to_string())
                .await
                .unwrap(),
            Some(bobs.id)
        );

        // Someone who is no member sees none of them, by name or by id.
        assert_eq!(
            find(NameScope::Member(eve.id), handbook()).await.unwrap(),
            None
        );
        assert_eq!(
            find(NameScope::Member(eve.id), adas.id.to_string())
                .await
                .unwrap(),
            None
        );

        // Two shared with Eve, neither hers: ambiguous, and the error says what to do.
        store
            .set_member(adas.id, eve.id, Role::Viewer)
            .await
            .unwrap();
        assert_eq!(
            find(NameScope::Member(eve.id), handbook()).await.unwrap(),
            Some(adas.id)
        );
        store
            .set_member(bobs.id, eve.id, Role::Viewer)
            .await
            .unwrap();
        let err = find(NameScope::Member(eve.id), handbook())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err:?}");
        assert!(err.to_string().contains("by its id"), "{err}");
    }
);

on_both_backends!(
    names_per_owner_keep_every_existing_workspace_member_and_document,
    |db: TestDatabase| async move {
        let store = Store::connect(&db.url).await.unwrap();
        // The schema before names were per owner: the first three migrations.
        Migrator::up(store.connection(), Some(3)).await.unwrap();
        let ada = insert_user_row(&store, "ada@example.org", None).await;
        let bob = insert_user_row(&store, "bob@example.org", None).await;
        // Rows as that schema had them (the entity already knows `owner_id`).
        let (handbook, scratch) = (Uuid::new_v4(), Uuid::new_v4());
        for (id, name) in [(handbook, "Handbook"), (scratch, "Scratch")] {
            let insert = Query::insert()
                .into_table(Alias::new("workspaces"))
                .columns([
                    Alias::new("id"),
                    Alias::new("name"),
                    Alias::new("created_at"),
                ])
                .values_panic([id.into(), name.into(), chrono::Utc::now().into()])
                .to_owned();
            store.connection().execute(&insert).await.unwrap();
        }
        store.set_member(handbook, bob, Role::Editor).await.unwrap();
        store.set_member(handbook, ada, Role::Owner).await.unwrap();

        // Up, down and up again: on SQLite each way rebuilds the table, and nothing that
        // points at a workspace may go with the old one. (The later migrations go down
        // first: the fourth is names per owner.)
        let later: Vec<String> = Migrator::migrations()
            .iter()
            .skip(4)
            .map(|m| m.name().to_owned())
            .collect();
        let back = later.len() as u32 + 1;
        store.migrate().await.unwrap();
        store
            .create_document(NewDocument {
                id: Uuid::new_v4(),
                workspace_id: handbook,
                title: "Leave".into(),
                file_name: "leave.md".into(),
                media_type: "text/markdown".into(),
                sha256: "cd".repeat(32),
                size_bytes: 10,
                storage_key: "originals/leave".into(),
            })
            .await
            .unwrap();
        Migrator::down(store.connection(), Some(back))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        assert!(store.pending_migrations().await.unwrap().is_empty());

        // The owner member became the owner; a workspace with none is the operator's.
        let ws = store.workspace(handbook).await.unwrap().unwrap();
        assert_eq!((ws.name.as_str(), ws.owner_id), ("Handbook", Some(ada)));
        assert_eq!(
            store.workspace(scratch).await.unwrap().unwrap().owner_id,
            None
        );
        assert_eq!(
            store.role_of(handbook, ada).await.unwrap(),
            Some(Role::Owner)
        );
        assert_eq!(
            store.role_of(handbook, bob).await.unwrap(),
            Some(Role::Editor)
        );
        assert_eq!(store.list_documents(handbook).await.unwrap().len(), 1);

        // Names are now per owner, for the old rows too.
        assert!(matches!(
            store.create_workspace("Handbook", Some(ada)).await,
            Err(Error::Conflict(_))
        ));
        assert!(matches!(
            store.create_workspace("Scratch", None).await,
            Err(Error::Conflict(_))
        ));
        store.create_workspace("Handbook", Some(bob)).await.unwrap();

        // Going back to names unique across the site is refused while two share one (the
        // later migrations, reverted first, are then all that is pending).
        let err = Migrator::down(store.connection(), Some(back))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("Handbook"), "{err}");
        assert_eq!(store.pending_migrations().await.unwrap(), later);
        store.migrate().await.unwrap();
        assert_eq!(store.list_documents(handbook).await.unwrap().len(), 1);
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
        for lost in 1..MAX_LOST_LEASES {
            clock.advance(LEASE + Duration::from_secs(1));
            let again = store
                .claim_next_job(LEASE)
                .await
                .unwrap()
                .expect("claimed again while claims are left");
            assert_eq!(
                (again.id, again.attempts, again.lost_leases),
                (job.id, lost + 1, lost)
            );
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

        let reason = "reading this file stopped the worker (a crash or a hang) 3 times; it was \
                      set aside: check that it opens, or save it in another format, and upload \
                      it again";
        let job = store.job(job.id).await.unwrap().unwrap();
        assert_eq!(
            (job.state.as_str(), job.attempts, job.last_error.as_deref()),
            (job_state::FAILED, MAX_LOST_LEASES, Some(reason))
        );
        let doc = store.document(doc.id).await.unwrap().unwrap();
        assert_eq!(
            (doc.status.as_str(), doc.error_message.as_deref()),
            (status::FAILED, Some(reason))
        );
        store
            .complete_job(
                &claimed,
                PagesRead {
                    count: 1,
                    ..PagesRead::default()
                },
                Vec::new(),
            )
            .await
            .unwrap();
        clock.advance(Duration::from_secs(24 * 3600));
        assert!(store.claim_next_job(LEASE).await.unwrap().is_none());
    }
);

on_both_backends!(
    transient_failures_do_not_count_towards_setting_a_job_aside,
    |db: TestDatabase| async move {
        // Two tries end in a transient failure (the index was down), then the server is
        // killed during the third: the job is claimed again, not set aside for one crash.
        let (store, clock, doc, job) = claimed_job(&db).await;
        let mut claimed = job;
        for _ in 0..2 {
            assert!(
                store
                    .fail_job(&claimed, "the index is unavailable", true, LEASE, 5)
                    .await
                    .unwrap()
            );
            clock.advance(LEASE);
            claimed = store.claim_next_job(LEASE).await.unwrap().expect("retried");
        }
        assert_eq!((claimed.attempts, claimed.lost_leases), (3, 0));
        clock.advance(LEASE + Duration::from_secs(1));
        let again = store
            .claim_next_job(LEASE)
            .await
            .unwrap()
            .expect("claimed again after one lost lease");
        assert_eq!(
            (again.id, again.attempts, again.lost_leases),
            (claimed.id, 4, 1)
        );
        let doc = store.document(doc.id).await.unwrap().unwrap();
        assert_ne!(doc.status.as_str(), status::FAILED, "{doc:?}");
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
        store
            .complete_job(
                &job,
                PagesRead {
                    count: 3,
                    ..PagesRead::default()
                },
                Vec::new(),
            )
            .await
            .unwrap();
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

on_both_backends!(
    existing_accounts_are_verified_unless_they_signed_themselves_up,
    |db: TestDatabase| async move {
        let store = Store::connect(&db.url).await.unwrap();
        // The schema before addresses were verified: the first four migrations.
        Migrator::up(store.connection(), Some(4)).await.unwrap();
        let hash = Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA");
        // Made at the command line, without a password or with one (no audit event).
        let cli = insert_user_row(&store, "ops@example.org", None).await;
        let cli_password = insert_user_row(&store, "admin@example.org", hash).await;
        // Single sign-on: no password; its provider vouched for the address.
        let sso = insert_user_row(&store, "sso@example.org", None).await;
        // Signed up on the web app: a password and a sign-up on record.
        let signed_up = insert_user_row(&store, "ceo@example.org", hash).await;
        for (id, email) in [(sso, "sso@example.org"), (signed_up, "ceo@example.org")] {
            store
                .record_audit(AuditEvent {
                    actor_user_id: Some(id),
                    action: "account.sign_up".into(),
                    target: Some(email.into()),
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        // And down (to before the fifth migration, the verified addresses) and up again,
        // the same.
        store.migrate().await.unwrap();
        let back = Migrator::migrations().len() as u32 - 4;
        Migrator::down(store.connection(), Some(back))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        for (id, verified) in [
            (cli, true),
            (cli_password, true),
            (sso, true),
            (signed_up, false),
        ] {
            let user = store.user(id).await.unwrap().unwrap();
            assert_eq!(user.email_verified_at.is_some(), verified, "{}", user.email);
        }
    }
);

on_both_backends!(
    a_verification_link_verifies_its_address_once_within_a_day,
    |db: TestDatabase| async move {
        let clock = TestClock::new();
        let store = db.store().await.with_clock(&clock);
        let ada = store.create_user(user("ada@example.org")).await.unwrap();
        assert_eq!(ada.email_verified_at, None, "a sign-up is unverified");
        let token = store.create_email_verification(&ada).await.unwrap();
        assert!(
            token.len() == 64 && token.chars().all(|c| c.is_ascii_hexdigit()),
            "{token}"
        );
        assert!(
            store
                .redeem_email_verification("not a link")
                .await
                .unwrap()
                .is_none()
        );
        let verified = store
            .redeem_email_verification(&token)
            .await
            .unwrap()
            .expect("the link verifies");
        assert_eq!(
            (verified.id, verified.email_verified_at),
            (ada.id, Some(clock.now()))
        );
        let stored = store.user(ada.id).await.unwrap().unwrap();
        assert_eq!(stored.email_verified_at, Some(clock.now()));
        assert!(
            store
                .redeem_email_verification(&token)
                .await
                .unwrap()
                .is_none(),
            "a link works once"
        );

        // A link works for a day.
        let bob = store.create_user(user("bob@example.org")).await.unwrap();
        let late = store.create_email_verification(&bob).await.unwrap();
        clock.advance(EMAIL_VERIFICATION_TTL + Duration::from_secs(1));
        assert!(
            store
                .redeem_email_verification(&late)
                .await
                .unwrap()
                .is_none()
        );
        let fresh = store.create_email_verification(&bob).await.unwrap();
        clock.advance(EMAIL_VERIFICATION_TTL - Duration::from_secs(1));
        assert_eq!(
            store
                .redeem_email_verification(&fresh)
                .await
                .unwrap()
                .map(|u| u.id),
            Some(bob.id)
        );

        // An administrator's or an identity provider's word verifies too.
        let carol = store
            .create_user(NewUser {
                verified: Some(EmailProof::IdentityProvider),
                ..user("carol@example.org")
            })
            .await
            .unwrap();
        assert_eq!(carol.email_verified_at, Some(clock.now()));
        let dave = store.create_user(user("dave@example.org")).await.unwrap();
        store
            .verify_email(dave.id, EmailProof::Administrator)
            .await
            .unwrap();
        let dave = store.user(dave.id).await.unwrap().unwrap();
        assert_eq!(dave.email_verified_at, Some(clock.now()));
        let missing = store
            .verify_email(Uuid::new_v4(), EmailProof::Administrator)
            .await;
        assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");
    }
);

on_both_backends!(
    invitations_work_once_for_whoever_opens_them_until_they_expire_or_are_revoked,
    |db: TestDatabase| async move {
        let clock = TestClock::new();
        let store = db.store().await.with_clock(&clock);
        let owner = store.create_user(user("owner@example.org")).await.unwrap();
        let ws = store
            .create_workspace("Board", Some(owner.id))
            .await
            .unwrap()
            .id;
        // Someone registered the address first and never verified it: sharing with it
        // makes an invitation, no membership.
        let squatter = store.create_user(user("ceo@example.org")).await.unwrap();
        let shared = store
            .share_by_email(ws, "CEO@example.org", Role::Viewer, owner.id)
            .await
            .unwrap();
        assert!(shared.member.is_none());
        assert_eq!(shared.invitation.email, "ceo@example.org");
        assert_eq!(shared.invitation.accepted_at, None);
        assert_eq!(shared.token.len(), 64);
        assert_eq!(store.role_of(ws, squatter.id).await.unwrap(), None);
        let pending = store.pending_invitations(ws).await.unwrap();
        assert_eq!(
            pending.iter().map(|i| i.id).collect::<Vec<_>>(),
            [shared.invitation.id]
        );
        assert_eq!(
            store
                .invitation_by_token(&shared.token)
                .await
                .unwrap()
                .map(|i| i.id),
            Some(shared.invitation.id)
        );
        let bad = store
            .share_by_email(ws, "not an address", Role::Viewer, owner.id)
            .await;
        assert!(matches!(bad, Err(Error::Invalid(_))), "{bad:?}");

        // Whoever the owner gives the link to joins, once.
        let ceo = store
            .create_user(user("ceo.real@example.org"))
            .await
            .unwrap();
        let (accepted, role) = store
            .accept_invitation(&shared.token, ceo.id)
            .await
            .unwrap()
            .expect("the invitation is accepted");
        assert_eq!((accepted.id, role), (shared.invitation.id, Role::Viewer));
        assert_eq!(store.role_of(ws, ceo.id).await.unwrap(), Some(Role::Viewer));
        assert!(
            store
                .accept_invitation(&shared.token, squatter.id)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(store.role_of(ws, squatter.id).await.unwrap(), None);
        assert!(
            store
                .invitation_by_token(&shared.token)
                .await
                .unwrap()
                .is_none()
        );
        assert!(store.pending_invitations(ws).await.unwrap().is_empty());

        // An invitation never demotes: an owner who opens one stays owner.
        let again = store
            .share_by_email(ws, "someone@example.org", Role::Viewer, owner.id)
            .await
            .unwrap();
        let (_, role) = store
            .accept_invitation(&again.token, owner.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(role, Role::Owner);

        // Seven days, then it is refused.
        let late = store
            .share_by_email(ws, "late@example.org", Role::Editor, owner.id)
            .await
            .unwrap();
        clock.advance(INVITATION_TTL + Duration::from_secs(1));
        assert!(
            store
                .invitation_by_token(&late.token)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .accept_invitation(&late.token, squatter.id)
                .await
                .unwrap()
                .is_none()
        );
        assert!(store.pending_invitations(ws).await.unwrap().is_empty());
        assert_eq!(store.role_of(ws, squatter.id).await.unwrap(), None);

        // Revoked: its link stops working. Only the workspace's own pending invitations
        // can be revoked.
        let revoked = store
            .share_by_email(ws, "temp@example.org", Role::Viewer, owner.id)
            .await
            .unwrap();
        let other = store
            .create_workspace("Other", Some(owner.id))
            .await
            .unwrap()
            .id;
        let elsewhere = store.revoke_invitation(other, revoked.invitation.id).await;
        assert!(
            matches!(elsewhere, Err(Error::NotFound(_))),
            "{elsewhere:?}"
        );
        let gone = store
            .revoke_invitation(ws, revoked.invitation.id)
            .await
            .unwrap();
        assert_eq!(gone.email, "temp@example.org");
        assert!(
            store
                .accept_invitation(&revoked.token, squatter.id)
                .await
                .unwrap()
                .is_none()
        );
        let twice = store.revoke_invitation(ws, revoked.invitation.id).await;
        assert!(matches!(twice, Err(Error::NotFound(_))), "{twice:?}");
        let used = store.revoke_invitation(ws, shared.invitation.id).await;
        assert!(matches!(used, Err(Error::NotFound(_))), "{used:?}");

        // A verified address is a member at once, and its invitation is spent.
        let dana = store
            .create_user(NewUser {
                verified: Some(EmailProof::Administrator),
                ..user("dana@example.org")
            })
            .await
            .unwrap();
        let direct = store
            .share_by_email(ws, "dana@example.org", Role::Editor, owner.id)
            .await
            .unwrap();
        assert_eq!(direct.member.map(|m| m.id), Some(dana.id));
        assert_eq!(
            store.role_of(ws, dana.id).await.unwrap(),
            Some(Role::Editor)
        );
        assert_eq!(direct.invitation.accepted_at, Some(clock.now()));
        assert!(
            store
                .accept_invitation(&direct.token, squatter.id)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(store.role_of(ws, squatter.id).await.unwrap(), None);
    }
);

fn folder(ws: Uuid, name: &str, interval_secs: Option<u64>) -> lectern_store::NewSource {
    lectern_store::NewSource {
        workspace_id: ws,
        name: name.into(),
        kind: lectern_store::source_kind::FOLDER.into(),
        settings: serde_json::json!({"path": "/srv/docs"}),
        interval_secs,
    }
}

on_both_backends!(
    a_sources_sync_is_claimed_like_a_job_and_scheduled_again,
    |db: TestDatabase| async move {
        use lectern_store::sync_state;
        let clock = TestClock::new();
        let store = db.store().await.with_clock(&clock);
        let ws = store.create_workspace("Docs", None).await.unwrap();
        let once = store
            .create_source(folder(ws.id, "once", None))
            .await
            .unwrap();
        assert_eq!(
            (once.sync_state.as_str(), once.run_after),
            (sync_state::QUEUED, Some(clock.now())),
            "the first sync is due at once"
        );
        let again = store.create_source(folder(ws.id, "once", None)).await;
        assert!(matches!(again, Err(Error::Conflict(_))), "{again:?}");
        let bad = store.create_source(folder(ws.id, "fast", Some(1))).await;
        assert!(matches!(bad, Err(Error::Invalid(_))), "{bad:?}");

        let claimed = store.claim_next_sync(LEASE).await.unwrap().expect("due");
        assert_eq!((claimed.id, claimed.attempts), (once.id, 1));
        assert!(store.claim_next_sync(LEASE).await.unwrap().is_none());
        let busy = store.request_sync(once.id).await;
        assert!(matches!(busy, Err(Error::Conflict(_))), "{busy:?}");
        store.heartbeat_sync(&claimed, LEASE).await.unwrap();
        assert!(
            store
                .complete_sync(&claimed, serde_json::json!({"added": 1}))
                .await
                .unwrap()
        );
        let done = store.source(once.id).await.unwrap().unwrap();
        assert_eq!(
            (done.sync_state.as_str(), done.run_after, done.attempts),
            (sync_state::IDLE, None, 0),
            "no schedule: nothing queued"
        );
        assert_eq!(done.last_result, Some(serde_json::json!({"added": 1})));
        assert_eq!(done.last_sync_at, Some(clock.now()));
        // A claim that ended is no longer anyone's.
        assert!(store.heartbeat_sync(&claimed, LEASE).await.is_err());
        assert!(
            !store
                .complete_sync(&claimed, serde_json::json!({}))
                .await
                .unwrap()
        );

        // Asked for, it is due at once; with a schedule, it comes due again on time.
        store.request_sync(once.id).await.unwrap();
        let claimed = store
            .claim_next_sync(LEASE)
            .await
            .unwrap()
            .expect("asked for");
        store
            .fail_sync(&claimed, "the folder is gone", false, Duration::ZERO, 5)
            .await
            .unwrap();
        let failed = store.source(once.id).await.unwrap().unwrap();
        assert_eq!(failed.last_error.as_deref(), Some("the folder is gone"));
        assert_eq!(failed.last_result, None);
        let hourly = store
            .create_source(folder(ws.id, "hourly", Some(3600)))
            .await
            .unwrap();
        let claimed = store.claim_next_sync(LEASE).await.unwrap().expect("due");
        assert_eq!(claimed.id, hourly.id);
        store
            .complete_sync(&claimed, serde_json::json!({}))
            .await
            .unwrap();
        clock.advance(Duration::from_secs(3599));
        assert!(store.claim_next_sync(LEASE).await.unwrap().is_none());
        clock.advance(Duration::from_secs(1));
        let claimed = store
            .claim_next_sync(LEASE)
            .await
            .unwrap()
            .expect("on time");
        assert_eq!(claimed.id, hourly.id);

        // A transient failure is retried after the backoff.
        assert!(
            store
                .fail_sync(&claimed, "the index is down", true, LEASE, 5)
                .await
                .unwrap()
        );
        assert!(store.claim_next_sync(LEASE).await.unwrap().is_none());
        clock.advance(LEASE);
        let retried = store
            .claim_next_sync(LEASE)
            .await
            .unwrap()
            .expect("retried");
        assert_eq!((retried.id, retried.attempts), (hourly.id, 2));

        // A sync whose worker dies every time is set aside once its lease has run out
        // `MAX_LOST_LEASES` times; the transient failures before do not count.
        for lost in 1..MAX_LOST_LEASES {
            clock.advance(LEASE + Duration::from_secs(1));
            let again = store.claim_next_sync(LEASE).await.unwrap().expect("again");
            assert_eq!((again.attempts, again.lost_leases), (lost + 2, lost));
        }
        clock.advance(LEASE + Duration::from_secs(1));
        assert!(store.claim_next_sync(LEASE).await.unwrap().is_none());
        let aside = store.source(hourly.id).await.unwrap().unwrap();
        assert_eq!(
            (aside.sync_state.as_str(), aside.attempts),
            (sync_state::QUEUED, 0)
        );
        assert!(
            aside
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("set aside")),
            "{aside:?}"
        );

        // A source being removed is never claimed, nor synced on request.
        store.mark_source_deleting(hourly.id).await.unwrap();
        clock.advance(Duration::from_secs(7200));
        assert!(store.claim_next_sync(LEASE).await.unwrap().is_none());
        let removing = store.request_sync(hourly.id).await;
        assert!(matches!(removing, Err(Error::Conflict(_))), "{removing:?}");
        store.delete_source_row(hourly.id).await.unwrap();
        assert_eq!(store.list_sources(ws.id).await.unwrap().len(), 1);
        assert_eq!(
            store
                .find_source(ws.id, "once")
                .await
                .unwrap()
                .map(|s| s.id),
            Some(once.id)
        );
    }
);

on_both_backends!(
    a_changed_source_is_checked_as_added_and_its_schedule_follows,
    |db: TestDatabase| async move {
        use lectern_store::{SourceChanges, sync_state};
        let clock = TestClock::new();
        let store = db.store().await.with_clock(&clock);
        let ws = store.create_workspace("Docs", None).await.unwrap();
        let handbook = store
            .create_source(folder(ws.id, "handbook", None))
            .await
            .unwrap();
        let claimed = store.claim_next_sync(LEASE).await.unwrap().expect("due");
        store
            .complete_sync(&claimed, serde_json::json!({}))
            .await
            .unwrap();
        let synced_at = clock.now();

        // The name and the schedule are checked as when a source is added.
        let archive = store
            .create_source(folder(ws.id, "archive", None))
            .await
            .unwrap();
        let change = |changes: SourceChanges| store.update_source(handbook.id, changes);
        let taken = change(SourceChanges {
            name: Some(" archive ".into()),
            ..SourceChanges::default()
        })
        .await;
        assert!(
            matches!(&taken, Err(Error::Conflict(m)) if m.contains("already has a source named \"archive\"")),
            "{taken:?}"
        );
        let blank = change(SourceChanges {
            name: Some("  ".into()),
            ..SourceChanges::default()
        })
        .await;
        assert!(matches!(blank, Err(Error::Invalid(_))), "{blank:?}");
        let fast = change(SourceChanges {
            interval_secs: Some(Some(1)),
            ..SourceChanges::default()
        })
        .await;
        assert!(matches!(fast, Err(Error::Invalid(_))), "{fast:?}");
        store.delete_source_row(archive.id).await.unwrap();
        let same = store.source(handbook.id).await.unwrap().unwrap();
        assert_eq!(
            (
                same.name.as_str(),
                same.interval_secs,
                same.sync_state.as_str()
            ),
            ("handbook", None, sync_state::IDLE),
            "nothing refused was written"
        );

        // Renamed, its settings replaced, and scheduled: an hour after its last sync.
        clock.advance(Duration::from_secs(600));
        let changed = change(SourceChanges {
            name: Some("policies".into()),
            settings: Some(serde_json::json!({"path": "/srv/policies", "include": ["*.md"]})),
            interval_secs: Some(Some(3600)),
        })
        .await
        .unwrap();
        assert_eq!(changed.name, "policies");
        assert_eq!(changed.settings["path"], "/srv/policies");
        assert_eq!(changed.interval_secs, Some(3600));
        assert_eq!(changed.sync_state, sync_state::QUEUED);
        let due = changed.run_after.expect("scheduled");
        assert_eq!((due - synced_at).num_seconds(), 3600);
        assert!(
            store.claim_next_sync(LEASE).await.unwrap().is_none(),
            "not due yet"
        );

        // Only when asked: the scheduled sync is dropped.
        let asked = change(SourceChanges {
            interval_secs: Some(None),
            ..SourceChanges::default()
        })
        .await
        .unwrap();
        assert_eq!(
            (
                asked.sync_state.as_str(),
                asked.run_after,
                asked.interval_secs
            ),
            (sync_state::IDLE, None, None)
        );
        assert_eq!(asked.name, "policies", "what was not given stays");
        // A schedule shorter than the time since the last sync: due at once.
        let sooner = change(SourceChanges {
            interval_secs: Some(Some(300)),
            ..SourceChanges::default()
        })
        .await
        .unwrap();
        assert_eq!(
            (sooner.sync_state.as_str(), sooner.run_after),
            (sync_state::QUEUED, Some(clock.now()))
        );

        // Changed while its sync runs: the sync goes on, and ends by scheduling the next
        // one with the new interval.
        let claimed = store.claim_next_sync(LEASE).await.unwrap().expect("due");
        assert_eq!(claimed.id, handbook.id);
        let during = change(SourceChanges {
            interval_secs: Some(Some(7200)),
            ..SourceChanges::default()
        })
        .await
        .unwrap();
        assert_eq!(during.sync_state, sync_state::RUNNING);
        clock.advance(Duration::from_secs(5));
        assert!(
            store
                .complete_sync(&claimed, serde_json::json!({}))
                .await
                .unwrap()
        );
        let done = store.source(handbook.id).await.unwrap().unwrap();
        assert_eq!(done.sync_state, sync_state::QUEUED);
        assert_eq!(
            (done.run_after.expect("scheduled") - clock.now()).num_seconds(),
            7200
        );
        assert_eq!(done.settings["include"], serde_json::json!(["*.md"]));

        // A source being removed cannot change.
        store.mark_source_deleting(handbook.id).await.unwrap();
        let removing = change(SourceChanges {
            name: Some("kept".into()),
            ..SourceChanges::default()
        })
        .await;
        assert!(matches!(removing, Err(Error::Conflict(_))), "{removing:?}");
        let missing = store
            .update_source(Uuid::new_v4(), SourceChanges::default())
            .await;
        assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");
    }
);
