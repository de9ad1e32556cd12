//! Synced folders on the workspace page, as a browser without JavaScript uses them: a site
//! administrator adds one (the API's refusals shown as the page's notice), editors sync
//! and remove it, viewers only look, and strangers find no workspace at all.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lectern_core::Role;
use lectern_store::entity::source;
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app_with};
use crate::web::Browser;

const PASSWORD: &str = "correct horse battery";

/// Waits until a sync of the source `id` that ended after `after` is recorded and every
/// document of the workspace is read (the background workers run on their own); a
/// deadline, not a speed assertion.
async fn synced(app: &TestApp, ws: Uuid, id: Uuid, after: Option<DateTime<Utc>>) -> source::Model {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let s = app.ctx.store.source(id).await.unwrap().expect("the source");
        let docs = app.ctx.store.list_documents(ws).await.unwrap();
        if s.last_sync_at
            .is_some_and(|at| after.is_none_or(|a| at > a))
            && s.sync_state != "running"
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

async fn user_id(app: &TestApp, email: &str) -> Uuid {
    app.ctx
        .store
        .find_user_by_email(email)
        .await
        .unwrap()
        .expect("the account")
        .id
}

fn write(folder: &Path, key: &str, text: &str) {
    let path = folder.join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folder_sources_on_the_workspace_page_follow_roles() {
    // The folder lies inside the directory the settings allow, not at its top.
    let root = tempfile::tempdir().unwrap();
    let folder = root.path().join("handbook");
    write(
        &folder,
        "travel.md",
        "# Travel\n\nTrains are second class under four hours.\n",
    );
    write(
        &folder,
        "policies/leave.md",
        "# Leave\n\nStaff get thirty days of annual leave.\n",
    );
    let allowed = root.path().to_owned();
    let app = spawn_app_with(move |s| s.ingest.source_roots = vec![allowed]).await;

    // The first account administers the site.
    let mut admin = Browser::new(&app);
    admin.sign_up("root@example.org", PASSWORD).await;
    let mut editor = Browser::new(&app);
    editor.sign_up("editor@example.org", PASSWORD).await;
    let mut viewer = Browser::new(&app);
    viewer.sign_up("viewer@example.org", PASSWORD).await;
    let mut stranger = Browser::new(&app);
    stranger.sign_up("stranger@example.org", PASSWORD).await;
    let ws = admin.create_workspace("Handbook").await;
    for (email, role) in [
        ("editor@example.org", Role::Editor),
        ("viewer@example.org", Role::Viewer),
    ] {
        let id = user_id(&app, email).await;
        app.ctx.store.set_member(ws, id, role).await.unwrap();
    }
    let page = format!("/w/{ws}/documents");
    let add = format!("/w/{ws}/sources");
    let path = folder.to_str().unwrap();

    // The administrator sees the form; ingest's refusals come back as the page's notice,
    // with the form as it was sent.
    let empty = admin.get(&page).await;
    assert_eq!(empty.status, 200);
    assert!(empty.body.contains("id=\"add-source\""), "{}", empty.body);
    assert!(
        empty.body.contains("No synced folders or web sites yet"),
        "{}",
        empty.body
    );
    let outside = admin.submit(&page, &add, &[("path", "/etc")]).await;
    assert_eq!(outside.status, 403, "{}", outside.body);
    assert!(
        outside.body.contains("role=\"alert\"") && outside.body.contains("ingest.source_roots"),
        "{}",
        outside.body
    );
    assert!(outside.body.contains("value=\"/etc\""), "{}", outside.body);
    let bad_glob = admin
        .submit(&page, &add, &[("path", path), ("include", "*.{md")])
        .await;
    assert_eq!(bad_glob.status, 400, "{}", bad_glob.body);
    assert!(bad_glob.body.contains("the glob"), "{}", bad_glob.body);
    assert!(
        bad_glob.body.contains(">*.{md</textarea>"),
        "{}",
        bad_glob.body
    );
    let every = admin
        .submit(&page, &add, &[("path", path), ("interval", "hourly")])
        .await;
    assert_eq!(every.status, 400, "{}", every.body);
    assert!(app.ctx.store.list_sources(ws).await.unwrap().is_empty());

    // An editor who is not a site administrator may not add one.
    let refused = editor.submit(&page, &add, &[("path", path)]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(app.ctx.store.list_sources(ws).await.unwrap().is_empty());

    // Added: listed with its folder, globs and schedule; its first sync queued at once.
    let added = admin
        .submit(
            &page,
            &add,
            &[("path", path), ("include", "*.md, *.txt"), ("exclude", "")],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
    assert_eq!(added.location.as_deref(), Some(page.as_str()));
    let sources = app.ctx.store.list_sources(ws).await.unwrap();
    assert_eq!(sources.len(), 1, "{sources:?}");
    let id = sources[0].id;
    assert_eq!(sources[0].name, "handbook", "the folder's own name");
    assert_eq!(
        sources[0].settings["include"],
        serde_json::json!(["*.md", "*.txt"])
    );
    let listed = admin.get(&page).await;
    assert!(
        listed.body.contains("Folder source “handbook” added"),
        "{}",
        listed.body
    );
    let resolved = std::fs::canonicalize(&folder).unwrap();
    for shown in [
        format!("<code class=\"path\">{}</code>", resolved.display()),
        "<code>*.md</code>".to_owned(),
        "when asked".to_owned(),
        format!("action=\"/w/{ws}/sources/{id}/sync\""),
    ] {
        assert!(listed.body.contains(&shown), "{shown}: {}", listed.body);
    }
    let taken = admin
        .submit(&page, &add, &[("path", path), ("name", "handbook")])
        .await;
    assert_eq!(taken.status, 409, "{}", taken.body);
    assert!(
        taken.body.contains("already has a source named"),
        "{}",
        taken.body
    );

    // The first sync: the documents appear with their paths in the folder.
    let first = synced(&app, ws, id, None).await;
    assert_eq!(first.sync_state, "idle", "{first:?}");
    let listed = admin.get(&page).await;
    for shown in [
        ">policies/leave.md</span>",
        ">travel.md</span>",
        "· from handbook",
        "2 added · 0 changed · 0 renamed · 0 deleted · 0 unchanged · 0 failed",
        "badge idle",
    ] {
        assert!(listed.body.contains(shown), "{shown}: {}", listed.body);
    }

    // An editor sees the section and syncs it, but gets no form to add one.
    write(
        &folder,
        "guides/security.md",
        "# Security\n\nBadges are worn at all times.\n",
    );
    let seen = editor.get(&page).await;
    assert_eq!(seen.status, 200);
    assert!(seen.body.contains("Sources</h2>"), "{}", seen.body);
    assert!(seen.body.contains("Sync now"), "{}", seen.body);
    assert!(!seen.body.contains("id=\"add-source\""), "{}", seen.body);
    let json = editor.get(&format!("/w/{ws}/sources.json")).await;
    assert_eq!(json.status, 200, "{}", json.body);
    let json: serde_json::Value = serde_json::from_str(&json.body).unwrap();
    assert_eq!(json["sources"][0]["state"], "idle", "{json}");
    assert_eq!(json["sources"][0]["documents"], 2, "{json}");
    let sync = format!("/w/{ws}/sources/{id}/sync");
    let queued = editor.submit(&page, &sync, &[]).await;
    assert_eq!(queued.status, 303, "{}", queued.body);
    let after = editor.get(&page).await;
    assert!(
        after.body.contains("A sync of “handbook” is queued"),
        "{}",
        after.body
    );
    let second = synced(&app, ws, id, first.last_sync_at).await;
    let listed = editor.get(&page).await;
    for shown in [
        ">guides/security.md</span>",
        "1 added · 0 changed · 0 renamed · 0 deleted · 2 unchanged · 0 failed",
    ] {
        assert!(listed.body.contains(shown), "{shown}: {}", listed.body);
    }
    assert_eq!(app.ctx.store.list_documents(ws).await.unwrap().len(), 3);

    // A viewer sees the sources and their documents, with no button, and may not sync.
    let looked = viewer.get(&page).await;
    assert_eq!(looked.status, 200);
    assert!(
        looked.body.contains(">guides/security.md</span>"),
        "{}",
        looked.body
    );
    assert!(looked.body.contains("Sources</h2>"), "{}", looked.body);
    for button in [
        "Sync now",
        "/remove\"",
        "id=\"add-source\"",
        "id=\"upload\"",
    ] {
        assert!(!looked.body.contains(button), "{button}: {}", looked.body);
    }
    let csrf = looked.csrf();
    let remove = format!("/w/{ws}/sources/{id}/remove");
    for path in [&sync, &remove] {
        assert_eq!(
            viewer.post(path, &[("csrf", &csrf)]).await.status,
            403,
            "{path}"
        );
    }

    // A stranger finds no workspace, and never its name.
    let csrf = stranger.get("/workspaces").await.csrf();
    for path in [page.clone(), format!("/w/{ws}/sources.json")] {
        let got = stranger.get(&path).await;
        assert_eq!(got.status, 404, "{path}: {}", got.body);
        assert!(!got.body.to_lowercase().contains("handbook"), "{path}");
    }
    for path in [&add, &sync, &remove] {
        let got = stranger
            .post(path, &[("csrf", &csrf), ("path", "/tmp")])
            .await;
        assert_eq!(got.status, 404, "{path}: {}", got.body);
    }
    assert_eq!(
        app.ctx
            .store
            .source(id)
            .await
            .unwrap()
            .unwrap()
            .last_sync_at,
        second.last_sync_at,
        "nobody synced it meanwhile"
    );

    // The editor removes it, with every document it brought.
    let removed = editor.submit(&page, &remove, &[]).await;
    assert_eq!(removed.status, 303, "{}", removed.body);
    let gone = editor.get(&page).await;
    assert!(
        gone.body
            .contains("“handbook” removed, with the 3 document(s) it brought"),
        "{}",
        gone.body
    );
    assert!(app.ctx.store.list_sources(ws).await.unwrap().is_empty());
    assert!(app.ctx.store.list_documents(ws).await.unwrap().is_empty());
    let nothing = viewer.get(&page).await;
    assert!(!nothing.body.contains("Sources</h2>"), "{}", nothing.body);
}

/// A small documentation site on loopback (which the crawler reaches only with
/// `ingest.crawl_allow_private`): a guide under `/docs/` whose first page links to a page
/// beside it and to one outside the prefix. Its address.
fn serve_site() -> String {
    use actix_web::{App, HttpResponse, HttpServer, web};
    fn html(body: &'static str) -> HttpResponse {
        HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(body)
    }
    async fn index() -> HttpResponse {
        html(
            "<html><head><title>Guide</title></head><body><main><h1>The guide</h1>\
             <p>The guide explains how the ledger service is run day to day.</p>\
             <p><a href=\"install.html\">Installing</a> and <a href=\"/blog/news.html\">news</a>.</p>\
             </main></body></html>",
        )
    }
    async fn install() -> HttpResponse {
        html(
            "<html><head><title>Installing</title></head><body><main><h1>Installing</h1>\
             <p>Install the quorvex ledger package, then start its service.</p></main></body></html>",
        )
    }
    async fn news() -> HttpResponse {
        html(
            "<html><head><title>News</title></head><body><main><h1>News</h1>\
             <p>The blog is outside the guide.</p></main></body></html>",
        )
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let server = HttpServer::new(|| {
        App::new()
            .route("/docs/index.html", web::get().to(index))
            .route("/docs/install.html", web::get().to(install))
            .route("/blog/news.html", web::get().to(news))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_are_changed_and_web_sites_added_on_the_workspace_page() {
    let root = tempfile::tempdir().unwrap();
    let folder = root.path().join("handbook");
    write(
        &folder,
        "travel.md",
        "# Travel\n\nTrains are second class under four hours.\n",
    );
    write(
        &folder,
        "drafts/wip.md",
        "# Draft\n\nNot ready to be read.\n",
    );
    write(&folder, "notes/empty.md", "");
    let allowed = root.path().to_owned();
    let app = spawn_app_with(move |s| {
        s.ingest.source_roots = vec![allowed];
        s.ingest.crawl_allow_private = true;
    })
    .await;
    let site = serve_site();

    let mut admin = Browser::new(&app);
    admin.sign_up("root@example.org", PASSWORD).await;
    let mut editor = Browser::new(&app);
    editor.sign_up("editor@example.org", PASSWORD).await;
    let ws = admin.create_workspace("Handbook").await;
    let editor_id = user_id(&app, "editor@example.org").await;
    app.ctx
        .store
        .set_member(ws, editor_id, Role::Editor)
        .await
        .unwrap();
    let page = format!("/w/{ws}/documents");
    let add = format!("/w/{ws}/sources");
    let path = folder.to_str().unwrap();
    let added = admin.submit(&page, &add, &[("path", path)]).await;
    assert_eq!(added.status, 303, "{}", added.body);
    let id = app.ctx.store.list_sources(ws).await.unwrap()[0].id;
    let first = synced(&app, ws, id, None).await;

    // The empty file failed: the source lists its failed document with the reason.
    let listed = admin.get(&page).await;
    for shown in [
        "1 document(s) failed",
        "<li><code>notes/empty.md</code>: the file is empty</li>",
        "2 added · 0 changed · 0 renamed · 0 deleted · 0 unchanged · ",
    ] {
        assert!(listed.body.contains(shown), "{shown}: {}", listed.body);
    }

    // The administrator gets an edit form, filled in with the source as it is; an
    // editor gets none, and may not post one.
    let edit = format!("/w/{ws}/sources/{id}/edit");
    for shown in [
        format!("action=\"{edit}\""),
        "value=\"handbook\"".to_owned(),
    ] {
        assert!(listed.body.contains(&shown), "{shown}: {}", listed.body);
    }
    let seen = editor.get(&page).await;
    assert!(!seen.body.contains("/edit\""), "{}", seen.body);
    assert!(
        !seen.body.contains("id=\"add-web-source\""),
        "{}",
        seen.body
    );
    let refused = editor
        .submit(&page, &edit, &[("name", "mine"), ("path", path)])
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);

    // A refused edit comes back as the notice, its form open and filled in as sent.
    let bad_glob = admin
        .submit(
            &page,
            &edit,
            &[("name", "handbook"), ("path", path), ("include", "*.{md")],
        )
        .await;
    assert_eq!(bad_glob.status, 400, "{}", bad_glob.body);
    assert!(bad_glob.body.contains("the glob"), "{}", bad_glob.body);
    assert!(
        bad_glob
            .body
            .contains(&format!("id=\"edit-source-{id}\" open")),
        "{}",
        bad_glob.body
    );
    assert!(
        bad_glob.body.contains(">*.{md</textarea>"),
        "{}",
        bad_glob.body
    );

    // Changed: renamed, the drafts and notes left out, synced every hour.
    let changed = admin
        .submit(
            &page,
            &edit,
            &[
                ("name", "policies"),
                ("path", path),
                ("include", "*.md"),
                ("exclude", "drafts/**, notes/**"),
                ("interval", "3600"),
            ],
        )
        .await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    let row = app.ctx.store.source(id).await.unwrap().unwrap();
    assert_eq!(row.name, "policies");
    assert_eq!(
        row.settings["exclude"],
        serde_json::json!(["drafts/**", "notes/**"])
    );
    assert_eq!(row.interval_secs, Some(3600));
    let listed = admin.get(&page).await;
    for shown in [
        "“policies” changed",
        "every 3600 s",
        "<code>notes/**</code>",
        ">drafts/**\nnotes/**</textarea>",
    ] {
        assert!(listed.body.contains(shown), "{shown}: {}", listed.body);
    }
    // The next sync applies it: what the source no longer takes is deleted.
    let sync = format!("/w/{ws}/sources/{id}/sync");
    assert_eq!(admin.submit(&page, &sync, &[]).await.status, 303);
    let second = synced(&app, ws, id, first.last_sync_at).await;
    assert_eq!(second.name, "policies");
    let listed = admin.get(&page).await;
    assert!(
        listed
            .body
            .contains("0 added · 0 changed · 0 renamed · 2 deleted · 1 unchanged · 0 failed"),
        "{}",
        listed.body
    );
    assert!(
        !listed.body.contains("document(s) failed"),
        "{}",
        listed.body
    );
    let keys: Vec<Option<String>> = app
        .ctx
        .store
        .list_documents(ws)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.source_key)
        .collect();
    assert_eq!(keys, [Some("travel.md".to_owned())]);

    // A web site, from its own small form; the form's mistakes and ingest's refusals come
    // back as the notice with the form as it was sent.
    let page_html = admin.get(&page).await;
    assert!(
        page_html.body.contains("id=\"add-web-source\""),
        "{}",
        page_html.body
    );
    let not_http = admin
        .submit(
            &page,
            &add,
            &[("kind", "web"), ("url", "ftp://example.org/docs/")],
        )
        .await;
    assert_eq!(not_http.status, 400, "{}", not_http.body);
    assert!(
        not_http.body.contains("not an http(s) URL")
            && not_http.body.contains("value=\"ftp://example.org/docs/\""),
        "{}",
        not_http.body
    );
    let start = format!("{site}/docs/index.html");
    let deep = admin
        .submit(
            &page,
            &add,
            &[("kind", "web"), ("url", start.as_str()), ("depth", "deep")],
        )
        .await;
    assert_eq!(deep.status, 400, "{}", deep.body);
    assert!(deep.body.contains("whole number"), "{}", deep.body);
    assert_eq!(app.ctx.store.list_sources(ws).await.unwrap().len(), 1);

    let crawled = admin
        .submit(
            &page,
            &add,
            &[
                ("kind", "web"),
                ("url", start.as_str()),
                ("depth", "1"),
                ("pages", "10"),
            ],
        )
        .await;
    assert_eq!(crawled.status, 303, "{}", crawled.body);
    let web = app
        .ctx
        .store
        .list_sources(ws)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.kind == "web")
        .expect("the web source");
    assert_eq!(web.name, "127.0.0.1", "the site's host");
    let crawl = synced(&app, ws, web.id, None).await;
    assert!(crawl.last_error.is_none(), "{crawl:?}");
    let install = format!("{site}/docs/install.html");
    let pages: Vec<String> = app
        .ctx
        .store
        .source_documents(web.id)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|d| d.source_key)
        .collect();
    assert_eq!(
        pages,
        [start.clone(), install.clone()],
        "none outside the prefix"
    );
    let listed = admin.get(&page).await;
    for shown in [
        "Web source “127.0.0.1” added".to_owned(),
        format!("<code class=\"path\">{start}</code>"),
        format!("under {site}/docs/ · depth 1 · at most 10 pages"),
        format!(">{install}</span>"),
    ] {
        assert!(listed.body.contains(&shown), "{shown}: {}", listed.body);
    }

    // A name another source has is refused; a smaller depth drops the page below.
    let folder_edit = admin
        .submit(&page, &edit, &[("name", "127.0.0.1"), ("path", path)])
        .await;
    assert_eq!(folder_edit.status, 409, "{}", folder_edit.body);
    assert!(
        folder_edit.body.contains("already has a source named"),
        "{}",
        folder_edit.body
    );
    let web_edit = format!("/w/{ws}/sources/{}/edit", web.id);
    let shallower = admin
        .submit(
            &page,
            &web_edit,
            &[
                ("name", "guide"),
                ("url", start.as_str()),
                ("prefix", ""),
                ("depth", "0"),
                ("pages", "10"),
            ],
        )
        .await;
    assert_eq!(shallower.status, 303, "{}", shallower.body);
    let web_sync = format!("/w/{ws}/sources/{}/sync", web.id);
    assert_eq!(admin.submit(&page, &web_sync, &[]).await.status, 303);
    let again = synced(&app, ws, web.id, crawl.last_sync_at).await;
    assert_eq!(again.name, "guide");
    assert_eq!(again.settings["depth"], 0);
    assert_eq!(
        again.settings["prefix"],
        format!("{site}/docs/"),
        "the default"
    );
    let pages: Vec<String> = app
        .ctx
        .store
        .source_documents(web.id)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|d| d.source_key)
        .collect();
    assert_eq!(pages, [start], "the page a link below is no longer reached");
}
