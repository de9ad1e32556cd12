//! Synced sources over the ingest HTTP API, with the service's background workers: only
//! site administrators add or change one, editors sync it, the workers run the sync and
//! index what it found (a changed source's next sync takes what its new settings say), and
//! removing it removes its documents; a crawled site is answered from with links to its
//! pages.

use std::time::{Duration, Instant};

use lectern_api::ingest::{CreateSource, SourceOut, UpdateSource};
use lectern_api::query::{AnswerBody, SearchBody};
use lectern_core::{Error, Role};

use crate::helpers::{TestApp, spawn_app_with};

/// Polls the source until a sync ended after `after` and the workspace's documents are
/// settled (the background workers run on their own); a deadline, not a speed assertion.
async fn synced(
    api: &lectern_api::Client,
    ws: uuid::Uuid,
    source: uuid::Uuid,
    after: Option<chrono::DateTime<chrono::Utc>>,
) -> SourceOut {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let s = api.source(ws, source).await.unwrap();
        let docs = api.documents(ws).await.unwrap();
        if s.last_sync_at
            .is_some_and(|at| after.is_none_or(|a| at > a))
            && s.state != "running"
            && docs
                .iter()
                .all(|d| d.status == "ready" || d.status == "failed")
        {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "the sync did not end: {s:?} {docs:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn admin_with_key(app: &TestApp) -> String {
    let admin = app
        .ctx
        .store
        .create_user(lectern_store::NewUser {
            email: "admin@example.org".into(),
            display_name: None,
            password_hash: None,
            is_admin: true,
            verified: Some(lectern_store::EmailProof::Administrator),
        })
        .await
        .unwrap();
    app.ctx
        .store
        .create_api_key(admin.id, "tests")
        .await
        .unwrap()
        .1
}

/// A documentation site served by Python's own `http.server` (which answers
/// `If-Modified-Since` with 304) on a free loopback port; stopped when dropped.
struct PythonServer {
    child: std::process::Child,
    url: String,
}

impl PythonServer {
    async fn start(root: &std::path::Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .arg("--directory")
            .arg(root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::get(&url).await.is_err() {
            assert!(Instant::now() < deadline, "http.server did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { child, url }
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Python tutorial (Debian's python3.11-doc HTML) crawled as a web source through the
/// API, then asked about: the answer cites the page by its address, at the section the
/// passage is in; a second crawl takes nothing again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawled_site_is_answered_from_with_links_to_its_pages() {
    let pages = std::env::var_os("LECTERN_TEST_DOCS_DIR")
        .map(std::path::PathBuf::from)
        .expect("LECTERN_TEST_DOCS_DIR (run scripts/fetch-test-docs.sh, or scripts/test.sh)")
        .join("python-tutorial");
    let root = tempfile::tempdir().unwrap();
    let tutorial = root.path().join("tutorial");
    std::fs::create_dir_all(&tutorial).unwrap();
    for page in std::fs::read_dir(&pages).unwrap() {
        let page = page.unwrap();
        std::fs::copy(page.path(), tutorial.join(page.file_name())).unwrap();
    }
    let server = PythonServer::start(root.path()).await;
    let app = spawn_app_with(|s| s.ingest.crawl_allow_private = true).await;
    let admin = app.api(&admin_with_key(&app).await);
    let ws = admin.create_workspace("Python").await.unwrap().id;
    let prefix = format!("{}/tutorial/", server.url);
    let added = admin
        .create_source(
            ws,
            &CreateSource {
                kind: "web".into(),
                name: Some("tutorial".into()),
                settings: serde_json::json!({
                    "url": format!("{prefix}index.html"),
                    "depth": 1,
                    "pages": 4,
                }),
                interval_secs: None,
            },
        )
        .await
        .unwrap();
    let first = synced(&admin, ws, added.id, None).await;
    let result = first.last_result.clone().expect("a result");
    assert!(result.added >= 3 && result.failed == 0, "{first:?}");
    let docs = admin.documents(ws).await.unwrap();
    assert!(
        docs.iter()
            .any(|d| d.source_key.as_deref() == Some(&format!("{prefix}appetite.html"))),
        "the tutorial's first chapter was not crawled: {docs:?}"
    );

    let answer = admin
        .answer(&AnswerBody {
            question: "What is the Python language named after?".into(),
            workspaces: vec![ws],
            ..AnswerBody::default()
        })
        .await
        .unwrap()
        .answer;
    assert!(!answer.abstained, "{answer:#?}");
    assert!(!answer.citations.is_empty(), "{answer:#?}");
    for c in &answer.citations {
        let url = c
            .url
            .as_deref()
            .expect("a web page's citation has its address");
        let (page, section) = url.split_once('#').expect("and its section");
        assert!(page.starts_with(&prefix) && !section.is_empty(), "{url}");
        // The page, at that anchor, is there to follow.
        let html = reqwest::get(page).await.unwrap().text().await.unwrap();
        assert!(html.contains(&format!("id=\"{section}\"")), "{url}");
    }
    assert!(
        answer.citations.iter().any(|c| c
            .url
            .as_deref()
            .unwrap_or_default()
            .contains("appetite.html")),
        "{answer:#?}"
    );

    // Nothing changed on the site: the second crawl fetches no page whole.
    admin.sync_source(ws, added.id).await.unwrap();
    let second = synced(&admin, ws, added.id, first.last_sync_at).await;
    let again = second.last_result.clone().expect("a result");
    assert_eq!(
        (again.added, again.changed, again.deleted, again.unchanged),
        (0, 0, 0, result.added),
        "{second:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_source_is_added_synced_and_removed_over_the_api() {
    let folder = tempfile::tempdir().unwrap();
    let f = folder.path();
    std::fs::write(
        f.join("travel.md"),
        "# Travel\n\nTrains are second class under four hours.\n",
    )
    .unwrap();
    std::fs::write(
        f.join("leave.md"),
        "# Leave\n\nStaff get thirty days of annual leave.\n",
    )
    .unwrap();
    let app = spawn_app_with(|s| s.ingest.source_roots = vec![f.to_owned()]).await;
    let admin = app.api(&admin_with_key(&app).await);
    let (editor_id, editor_key) = app.user_with_key("editor@example.org").await;
    let editor = app.api(&editor_key);
    let ws = admin.create_workspace("Handbook").await.unwrap().id;
    app.ctx
        .store
        .set_member(ws, editor_id, Role::Editor)
        .await
        .unwrap();
    let body = CreateSource {
        kind: "folder".into(),
        name: Some("policies".into()),
        settings: serde_json::json!({"path": f.to_str().unwrap(), "include": ["*.md"]}),
        interval_secs: None,
    };

    // Only a site administrator adds a folder: it reads the server's disk.
    let refused = editor.create_source(ws, &body).await.unwrap_err();
    assert!(matches!(refused, Error::Forbidden(_)), "{refused:?}");
    let outside = CreateSource {
        settings: serde_json::json!({"path": "/etc"}),
        ..body.clone()
    };
    let refused = admin.create_source(ws, &outside).await.unwrap_err();
    assert!(
        matches!(&refused, Error::Forbidden(m) if m.contains("ingest.source_roots")),
        "{refused:?}"
    );

    let added = admin.create_source(ws, &body).await.unwrap();
    assert_eq!(added.name, "policies");
    assert_eq!(added.kind, "folder");
    let first = synced(&admin, ws, added.id, None).await;
    let result = first.last_result.clone().expect("a result");
    // Both files added, none failed. A sync that meets a transient error (the database
    // busy on a loaded machine) is queued again and goes on where it stopped, so the
    // result recorded may be the retry's: what the first attempt added, it finds unchanged.
    assert_eq!(
        (result.added + result.unchanged, result.failed),
        (2, 0),
        "{first:?}"
    );
    assert!(result.added >= 1, "{first:?}");
    assert_eq!(first.documents, 2);
    assert_eq!(first.state, "idle");
    let docs = admin.documents(ws).await.unwrap();
    assert!(
        docs.iter()
            .all(|d| d.status == "ready" && d.source_id == Some(added.id)),
        "{docs:?}"
    );
    let mut keys: Vec<_> = docs.iter().filter_map(|d| d.source_key.clone()).collect();
    keys.sort();
    assert_eq!(keys, ["leave.md", "travel.md"]);

    // An editor syncs it; the workers find one file gone and one new.
    std::fs::remove_file(f.join("leave.md")).unwrap();
    std::fs::write(
        f.join("security.md"),
        "# Security\n\nBadges are worn at all times.\n",
    )
    .unwrap();
    editor.sync_source(ws, added.id).await.unwrap();
    let second = synced(&admin, ws, added.id, first.last_sync_at).await;
    let result = second.last_result.clone().expect("a result");
    assert_eq!(
        (result.added, result.deleted, result.unchanged),
        (1, 1, 1),
        "{second:?}"
    );
    assert_eq!(admin.sources(ws).await.unwrap().len(), 1);

    let openapi: serde_json::Value = app
        .get("/v1/ingest/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        openapi["paths"]["/v1/workspaces/{ws}/sources/{source}/sync"]["post"].is_object(),
        "{}",
        openapi["paths"]
    );

    // Removing it removes its documents, points and all.
    editor.delete_source(ws, added.id).await.unwrap();
    assert!(admin.sources(ws).await.unwrap().is_empty());
    assert!(admin.documents(ws).await.unwrap().is_empty());
    assert_eq!(app.search.index.count_points(Some(ws)).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_changed_over_the_api_takes_its_new_settings_and_a_moved_file_its_new_name() {
    let folder = tempfile::tempdir().unwrap();
    let f = folder.path();
    std::fs::write(
        f.join("travel.md"),
        "# Travel\n\nTrains are second class under four hours; first class above.\n",
    )
    .unwrap();
    std::fs::write(
        f.join("leave.md"),
        "# Leave\n\nStaff get thirty days of annual leave.\n",
    )
    .unwrap();
    std::fs::create_dir_all(f.join("drafts")).unwrap();
    std::fs::write(
        f.join("drafts/parking.md"),
        "# Parking\n\nVisitors park in the north car park.\n",
    )
    .unwrap();
    std::fs::create_dir_all(f.join("archive")).unwrap();
    let app = spawn_app_with(|s| s.ingest.source_roots = vec![f.to_owned()]).await;
    let admin = app.api(&admin_with_key(&app).await);
    let (editor_id, editor_key) = app.user_with_key("editor@example.org").await;
    let editor = app.api(&editor_key);
    let ws = admin.create_workspace("Handbook").await.unwrap().id;
    app.ctx
        .store
        .set_member(ws, editor_id, Role::Editor)
        .await
        .unwrap();
    let add = |name: &str, path: &std::path::Path| CreateSource {
        kind: "folder".into(),
        name: Some(name.into()),
        settings: serde_json::json!({"path": path.to_str().unwrap()}),
        interval_secs: None,
    };
    let archive = admin
        .create_source(ws, &add("archive", f.join("archive").as_path()))
        .await
        .unwrap();
    synced(&admin, ws, archive.id, None).await;
    let added = admin.create_source(ws, &add("policies", f)).await.unwrap();
    let first = synced(&admin, ws, added.id, None).await;
    assert_eq!(first.documents, 3, "{first:?}");

    // Only a site administrator changes a source, as only one adds it.
    let narrower = UpdateSource {
        settings: Some(serde_json::json!({"exclude": ["drafts/"]})),
        interval_secs: Some(Some(3600)),
        ..UpdateSource::default()
    };
    let refused = editor
        .update_source(ws, added.id, &narrower)
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::Forbidden(_)), "{refused:?}");
    // Checked as when it was added: a bad glob, a folder out of bounds, a name taken.
    let bad_glob = UpdateSource {
        settings: Some(serde_json::json!({"include": ["*.{md"]})),
        ..UpdateSource::default()
    };
    let refused = admin
        .update_source(ws, added.id, &bad_glob)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, Error::Invalid(m) if m.contains("the glob")),
        "{refused:?}"
    );
    let outside = UpdateSource {
        settings: Some(serde_json::json!({"path": "/etc"})),
        ..UpdateSource::default()
    };
    let refused = admin
        .update_source(ws, added.id, &outside)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, Error::Forbidden(m) if m.contains("ingest.source_roots")),
        "{refused:?}"
    );
    let taken = UpdateSource {
        name: Some("archive".into()),
        ..UpdateSource::default()
    };
    let refused = admin.update_source(ws, added.id, &taken).await.unwrap_err();
    assert!(
        matches!(&refused, Error::Conflict(m) if m.contains("already has a source named")),
        "{refused:?}"
    );
    let unchanged = admin.source(ws, added.id).await.unwrap();
    assert_eq!(unchanged.settings, first.settings);
    assert_eq!(unchanged.name, "policies");

    let changed = admin.update_source(ws, added.id, &narrower).await.unwrap();
    assert_eq!(changed.settings["exclude"], serde_json::json!(["drafts/"]));
    assert_eq!(changed.settings["path"], first.settings["path"]);
    assert_eq!(changed.interval_secs, Some(3600));
    assert_eq!(
        changed.state, "queued",
        "scheduled an hour after its last sync"
    );
    assert!(
        changed
            .next_sync_at
            .is_some_and(|at| at > chrono::Utc::now())
    );

    // A file moved meanwhile; the next sync drops the excluded draft and follows the move.
    std::fs::rename(f.join("travel.md"), f.join("travel-rules.md")).unwrap();
    editor.sync_source(ws, added.id).await.unwrap();
    let second = synced(&admin, ws, added.id, first.last_sync_at).await;
    let result = second.last_result.clone().expect("a result");
    assert_eq!(
        (
            result.added,
            result.renamed,
            result.deleted,
            result.unchanged
        ),
        (0, 1, 1, 1),
        "{second:?}"
    );
    assert_eq!(second.documents, 2);
    assert_eq!(second.interval_secs, Some(3600), "the schedule stays");
    let docs = admin.documents(ws).await.unwrap();
    assert!(
        docs.iter()
            .all(|d| d.source_key.as_deref() != Some("drafts/parking.md")),
        "{docs:?}"
    );

    // Search and its citations name the moved file by its new name and title, read from
    // the database: its points were not written again.
    let found = admin
        .search(&SearchBody {
            question: "second class trains under four hours".into(),
            workspaces: vec![ws],
            documents: None,
            limit: Some(5),
        })
        .await
        .unwrap();
    let travel = found
        .passages
        .iter()
        .find(|p| p.text.contains("second class"))
        .unwrap_or_else(|| panic!("{:#?}", found.passages));
    assert_eq!(travel.document, "travel-rules.md");
    assert_eq!(travel.title, "travel rules");
    assert!(
        found
            .passages
            .iter()
            .all(|p| !p.text.contains("north car park")),
        "the excluded draft is gone from the index: {:#?}",
        found.passages
    );

    let openapi: serde_json::Value = app
        .get("/v1/ingest/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        openapi["paths"]["/v1/workspaces/{ws}/sources/{source}"]["patch"].is_object(),
        "{}",
        openapi["paths"]
    );
}
