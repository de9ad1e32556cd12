//! The web app over HTTP, as a browser without JavaScript uses it: accounts, sessions,
//! throttling, CSRF, roles on every route, and documents' own text shown as text.

use std::time::Duration;

use lectern_core::Role;
use reqwest::header;
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app_with};

/// A cookie-keeping client that does not follow redirects.
pub struct Browser {
    address: String,
    client: reqwest::Client,
    cookie: Option<String>,
    /// Sent with every request.
    headers: Vec<(&'static str, String)>,
}

pub struct Page {
    pub status: u16,
    pub body: String,
    pub location: Option<String>,
}

impl Page {
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let at = self.body.find(marker).expect("the page has a CSRF field") + marker.len();
        self.body[at..].split('"').next().unwrap().to_owned()
    }
}

impl Browser {
    pub fn new(app: &TestApp) -> Self {
        Self {
            address: app.address.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
            headers: Vec::new(),
        }
    }

    /// This browser, sending `name: value` with every request.
    pub fn with_header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let mut request = match &self.cookie {
            Some(c) => request.header(header::COOKIE, c),
            None => request,
        };
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        let res = request.send().await.expect("request");
        for value in res.headers().get_all(header::SET_COOKIE) {
            let value = value.to_str().unwrap();
            let pair = value.split(';').next().unwrap();
            if pair.starts_with("lectern_session=") {
                self.cookie = if pair == "lectern_session=" || value.contains("Max-Age=0") {
                    None
                } else {
                    Some(pair.to_owned())
                };
            }
        }
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get(header::LOCATION)
            .map(|l| l.to_str().unwrap().to_owned());
        Page {
            status,
            body: res.text().await.unwrap(),
            location,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self
            .client
            .get(format!("{}{path}", self.address))
            .header(header::ACCEPT, "text/html");
        self.send(request).await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let request = self
            .client
            .post(format!("{}{path}", self.address))
            .form(fields);
        self.send(request).await
    }

    /// Posts a form with the CSRF token of the page at `from`.
    pub async fn submit(&mut self, from: &str, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.get(from).await.csrf();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(path, &all).await
    }

    pub async fn upload(
        &mut self,
        path: &str,
        csrf: Option<&str>,
        files: Vec<(&str, Vec<u8>)>,
    ) -> Page {
        let mut form = reqwest::multipart::Form::new();
        if let Some(csrf) = csrf {
            form = form.text("csrf", csrf.to_owned());
        }
        for (name, bytes) in files {
            form = form.part(
                "files",
                reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
            );
        }
        let request = self
            .client
            .post(format!("{}{path}", self.address))
            .multipart(form);
        self.send(request).await
    }

    /// Signs up, then in (sign-up signs in only the very first account at once).
    pub async fn sign_up(&mut self, email: &str, password: &str) -> Page {
        let page = self
            .submit(
                "/signup",
                "/signup",
                &[("email", email), ("password", password)],
            )
            .await;
        if page.location.as_deref() == Some("/login") {
            return self.sign_in(email, password).await;
        }
        page
    }

    pub async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        self.submit(
            "/login",
            "/login",
            &[("email", email), ("password", password)],
        )
        .await
    }

    /// Asks `question` of workspace `ws` in a new conversation, as the chat form does:
    /// `(conversation, message)` of the answer.
    pub async fn ask(&mut self, csrf: &str, ws: Uuid, question: &str) -> (String, String) {
        let asked = self
            .post(
                "/chat/ask",
                &[
                    ("csrf", csrf),
                    ("question", question),
                    ("ws", &ws.to_string()),
                ],
            )
            .await;
        assert_eq!(asked.status, 303, "{}", asked.body);
        let location = asked.location.unwrap();
        let (conversation, message) = location
            .trim_start_matches("/chat/")
            .split_once("#m-")
            .unwrap();
        (conversation.to_owned(), message.to_owned())
    }

    /// Creates a workspace and returns its id.
    pub async fn create_workspace(&mut self, name: &str) -> Uuid {
        let page = self
            .submit("/workspaces", "/workspaces", &[("name", name)])
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        let location = page.location.unwrap();
        location
            .trim_start_matches("/w/")
            .trim_end_matches("/documents")
            .parse()
            .unwrap()
    }

    /// Waits until every document of the workspace is ready (or failed).
    pub async fn wait_until_read(&mut self, ws: Uuid) -> serde_json::Value {
        for _ in 0..600 {
            let page = self.get(&format!("/w/{ws}/documents.json")).await;
            assert_eq!(page.status, 200, "{}", page.body);
            let docs: serde_json::Value = serde_json::from_str(&page.body).unwrap();
            let list = docs["documents"].as_array().unwrap();
            if !list.is_empty()
                && list
                    .iter()
                    .all(|d| d["status"] == "ready" || d["status"] == "failed")
            {
                return docs;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("the documents were not read in time");
    }
}

const PASSWORD: &str = "correct horse battery";

async fn app() -> TestApp {
    spawn_app_with(|s| {
        s.web.max_failed_sign_ins = 3;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_sign_up_sign_in_sign_out_and_change_passwords() {
    let app = app().await;
    let mut alice = Browser::new(&app);
    let home = alice.get("/").await;
    assert_eq!(home.location.as_deref(), Some("/login"));
    let signup = alice.get("/signup").await;
    assert!(signup.body.contains("first person"), "{}", signup.body);

    let short = alice.sign_up("alice@example.org", "short").await;
    assert_eq!(short.status, 400);
    assert!(
        short.body.contains("at least 10 characters"),
        "{}",
        short.body
    );
    let created = alice.sign_up("alice@example.org", PASSWORD).await;
    assert_eq!(
        created.location.as_deref(),
        Some("/workspaces"),
        "{}",
        created.body
    );
    let alice_user = app
        .ctx
        .store
        .find_user_by_email("alice@example.org")
        .await
        .unwrap()
        .unwrap();
    assert!(
        alice_user.is_admin,
        "the first account administers the site"
    );
    let stored = alice_user.password_hash.unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    let workspaces = alice.get("/workspaces").await;
    assert_eq!(workspaces.status, 200);
    assert!(workspaces.body.contains("alice@example.org"));

    // Signed out, pages send to the sign-in page and back.
    let out = alice.submit("/workspaces", "/logout", &[]).await;
    assert_eq!(out.location.as_deref(), Some("/login"));
    let gone = alice.get("/workspaces").await;
    assert_eq!(gone.status, 303);
    assert_eq!(gone.location.as_deref(), Some("/login?next=%2Fworkspaces"));
    let wrong = alice.sign_in("alice@example.org", "not the password").await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("wrong"), "{}", wrong.body);
    let csrf = alice.get("/login?next=/chat").await.csrf();
    let back = alice
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("email", "Alice@Example.org"),
                ("password", PASSWORD),
                ("next", "/chat"),
            ],
        )
        .await;
    assert_eq!(back.location.as_deref(), Some("/chat"));
    // Only local paths are followed after signing in.
    alice.submit("/workspaces", "/logout", &[]).await;
    let csrf = alice.get("/login").await.csrf();
    let away = alice
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("email", "alice@example.org"),
                ("password", PASSWORD),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(away.location.as_deref(), Some("/workspaces"));

    // A second person is not an administrator.
    let mut bob = Browser::new(&app);
    assert_eq!(bob.sign_up("bob@example.org", PASSWORD).await.status, 303);
    let bob_user = app
        .ctx
        .store
        .find_user_by_email("bob@example.org")
        .await
        .unwrap()
        .unwrap();
    assert!(!bob_user.is_admin);
    assert_eq!(bob.get("/admin").await.status, 404);

    // The administrator closes sign-up.
    let closed = alice
        .submit("/admin", "/admin/signup", &[("open", "false")])
        .await;
    assert_eq!(closed.status, 303);
    let mut carol = Browser::new(&app);
    assert_eq!(carol.get("/signup").await.status, 403);
    assert_eq!(
        carol.sign_in("carol@example.org", PASSWORD).await.status,
        401
    );

    // A password change ends the other sessions, not this one.
    let mut bob_phone = Browser::new(&app);
    assert_eq!(
        bob_phone.sign_in("bob@example.org", PASSWORD).await.status,
        303
    );
    let changed = bob
        .submit(
            "/account",
            "/account/password",
            &[("current", PASSWORD), ("new", "a brand new passphrase")],
        )
        .await;
    assert_eq!(
        changed.location.as_deref(),
        Some("/account"),
        "{}",
        changed.body
    );
    assert_eq!(bob.get("/account").await.status, 200);
    assert_eq!(bob_phone.get("/account").await.status, 303);
    assert_eq!(
        bob_phone.sign_in("bob@example.org", PASSWORD).await.status,
        401
    );
    assert_eq!(
        bob_phone
            .sign_in("bob@example.org", "a brand new passphrase")
            .await
            .status,
        303
    );

    // A disabled person is signed out and cannot sign in.
    let disabled = alice
        .submit(
            "/admin",
            &format!("/admin/users/{}", bob_user.id),
            &[("action", "disable")],
        )
        .await;
    assert_eq!(disabled.status, 303);
    assert_eq!(bob.get("/account").await.status, 303);
    let refused = bob
        .sign_in("bob@example.org", "a brand new passphrase")
        .await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("disabled"));

    assert_audited(
        &app,
        &[
            "account.sign_up",
            "account.sign_in",
            "account.sign_in_failed",
            "account.sign_out",
            "account.password_changed",
            "user.disabled",
            "site.signup_closed",
        ],
    )
    .await;
    let admin = alice.get("/admin").await;
    assert!(
        admin.body.contains("sign in failed"),
        "the audit log is shown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_is_throttled_after_repeated_failures() {
    let app = app().await;
    let mut dora = Browser::new(&app);
    dora.sign_up("dora@example.org", PASSWORD).await;
    dora.submit("/workspaces", "/logout", &[]).await;
    for _ in 0..3 {
        assert_eq!(
            dora.sign_in("dora@example.org", "guess guess guess")
                .await
                .status,
            401
        );
    }
    // Even the right password waits (5 s here; the throttle's own tests move time on to
    // show it is heard afterwards).
    let throttled = dora.sign_in("dora@example.org", PASSWORD).await;
    assert_eq!(throttled.status, 429, "{}", throttled.body);
    assert!(
        throttled.body.contains("Try again in") && throttled.body.contains("seconds"),
        "{}",
        throttled.body
    );
    // Other accounts, from the same address, are not affected.
    let mut erin = Browser::new(&app);
    assert_eq!(erin.sign_up("erin@example.org", PASSWORD).await.status, 303);
    erin.submit("/workspaces", "/logout", &[]).await;
    assert_eq!(erin.sign_in("erin@example.org", PASSWORD).await.status, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changing_requests_need_the_csrf_token() {
    let app = app().await;
    let mut frank = Browser::new(&app);
    frank.sign_up("frank@example.org", PASSWORD).await;
    let mut other = Browser::new(&app);
    let foreign = other.get("/login").await.csrf();

    let missing = frank.post("/workspaces", &[("name", "Forged")]).await;
    assert_eq!(missing.status, 403);
    let wrong = frank
        .post("/workspaces", &[("csrf", &foreign), ("name", "Forged")])
        .await;
    assert_eq!(wrong.status, 403);
    assert!(wrong.body.contains("Reload the page"), "{}", wrong.body);
    assert!(app.ctx.store.all_workspaces().await.unwrap().is_empty());
    assert_eq!(frank.post("/logout", &[]).await.status, 403);
    assert_eq!(
        frank.get("/workspaces").await.status,
        200,
        "still signed in"
    );
    let ws = frank.create_workspace("Real").await;
    let upload = frank
        .upload(
            &format!("/w/{ws}/documents"),
            None,
            vec![("a.txt", b"text".to_vec())],
        )
        .await;
    assert_eq!(upload.status, 403);
    let forged = frank
        .upload(
            &format!("/w/{ws}/documents"),
            Some(&foreign),
            vec![("a.txt", b"text".to_vec())],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(app.ctx.store.list_documents(ws).await.unwrap().len(), 0);
    // The login form itself carries a token.
    let mut visitor = Browser::new(&app);
    let no_token = visitor
        .post(
            "/login",
            &[("email", "frank@example.org"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(no_token.status, 403);
}

/// How many sessions the store holds. It deletes them all (by asking for those expired
/// a year from now): call it last.
async fn stored_sessions(app: &TestApp) -> u64 {
    let next_year = lectern_store::testing::TestClock::new();
    next_year.advance(Duration::from_secs(366 * 24 * 3600));
    app.ctx
        .store
        .clone()
        .with_clock(&next_year)
        .delete_expired_sessions()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visitors_store_no_session_until_they_sign_in() {
    let app = app().await;
    let mut visitor = Browser::new(&app);
    for _ in 0..5 {
        assert_eq!(visitor.get("/login").await.status, 200);
        assert_eq!(Browser::new(&app).get("/login").await.status, 200);
        assert_eq!(Browser::new(&app).get("/signup").await.status, 200);
    }
    // The visitor's forms still work: the CSRF token travels in the encrypted cookie.
    let signed_up = visitor.sign_up("hana@example.org", PASSWORD).await;
    assert_eq!(
        signed_up.location.as_deref(),
        Some("/workspaces"),
        "{}",
        signed_up.body
    );
    assert_eq!(
        stored_sessions(&app).await,
        1,
        "only the signed-in session is stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_is_pinned_and_forged_forwarding_headers_are_not_believed() {
    // No trusted proxies (the default): X-Forwarded-* come from the client itself.
    let app = spawn_app_with(|s| {
        s.web.public_url = Some("https://lectern.example.org".into());
    })
    .await;
    let login = app.get("/login").await;
    assert_eq!(
        login
            .headers()
            .get("strict-transport-security")
            .map(|v| v.to_str().unwrap()),
        Some("max-age=31536000; includeSubDomains")
    );
    let mut mallory = Browser::new(&app).with_header("x-forwarded-for", "198.51.100.23");
    let signed_up = mallory.sign_up("mallory@example.org", PASSWORD).await;
    assert_eq!(signed_up.status, 303, "{}", signed_up.body);
    let audit = app.ctx.store.recent_audit(20).await.unwrap();
    let sign_up = audit
        .iter()
        .find(|e| e.action == "account.sign_up")
        .expect("the sign-up is audited");
    assert_eq!(
        sign_up.detail.as_ref().map(|d| d["ip"].clone()),
        Some(serde_json::json!("127.0.0.1")),
        "the peer's address, not the forged one"
    );
}

/// Signs up as someone new with "a guessed passphrase": the answer's status and
/// location, and the page that follows it (without its CSRF token).
async fn sign_up_as_stranger(app: &TestApp, email: &str) -> (u16, Option<String>, String) {
    let mut stranger = Browser::new(app);
    let answer = stranger
        .submit(
            "/signup",
            "/signup",
            &[("email", email), ("password", "a guessed passphrase")],
        )
        .await;
    let next = stranger.get("/login").await;
    let next_body = next.body.replace(&next.csrf(), "");
    (answer.status, answer.location, next_body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_does_not_tell_which_addresses_have_accounts() {
    let app = app().await;
    let mut ivan = Browser::new(&app);
    ivan.sign_up("ivan@example.org", PASSWORD).await;
    let mut judy = Browser::new(&app);
    assert_eq!(judy.sign_up("judy@example.org", PASSWORD).await.status, 303);

    let taken = sign_up_as_stranger(&app, "judy@example.org").await;
    let new = sign_up_as_stranger(&app, "kim@example.org").await;
    assert_eq!(taken, new, "the same answer and the same page after it");
    assert_eq!(taken.0, 303);
    assert!(taken.2.contains("If this address was new"), "{}", taken.2);
    // Judy's account is untouched, and the new one signs in.
    let mut judy_again = Browser::new(&app);
    assert_eq!(
        judy_again
            .sign_in("judy@example.org", "a guessed passphrase")
            .await
            .status,
        401
    );
    assert_eq!(
        judy_again
            .sign_in("judy@example.org", PASSWORD)
            .await
            .status,
        303
    );
    let mut kim = Browser::new(&app);
    assert_eq!(
        kim.sign_in("kim@example.org", "a guessed passphrase")
            .await
            .status,
        303
    );
}

/// A file name that is also HTML.
const EVIL_NAME: &str = "<img src=x onerror=alert(1)> policy.md";

const POLICY: &str = "# Travel <script>alert('x')</script> policy\n\nEmployees book trains for journeys under 600 km. The <b>travel desk</b> approves every booking within two working days.\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_enforced_on_every_route_and_documents_are_shown_as_text() {
    let app = app().await;
    let mut admin = Browser::new(&app);
    admin.sign_up("root@example.org", PASSWORD).await;
    let mut owner = Browser::new(&app);
    owner.sign_up("owner@example.org", PASSWORD).await;
    let mut viewer = Browser::new(&app);
    viewer.sign_up("viewer@example.org", PASSWORD).await;
    let mut stranger = Browser::new(&app);
    stranger.sign_up("stranger@example.org", PASSWORD).await;

    let ws = owner.create_workspace("Secret Travel Desk").await;
    let docs_page = format!("/w/{ws}/documents");
    let csrf = owner.get(&docs_page).await.csrf();
    let uploaded = owner
        .upload(
            &docs_page,
            Some(&csrf),
            vec![(EVIL_NAME, POLICY.as_bytes().to_vec())],
        )
        .await;
    assert_eq!(uploaded.status, 303, "{}", uploaded.body);
    let docs = owner.wait_until_read(ws).await;
    assert_eq!(docs["documents"][0]["status"], "ready", "{docs}");
    let doc: Uuid = docs["documents"][0]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    // Documents' own text is shown as text.
    let listing = owner.get(&docs_page).await;
    assert!(
        listing
            .body
            .contains("&#60;img src=x onerror=alert(1)&#62; policy"),
        "{}",
        listing.body
    );
    assert!(!listing.body.contains("<img src=x"), "{}", listing.body);

    // Members: the owner adds a viewer by email (an address an administrator vouched
    // for: only verified addresses are added at once).
    let viewer_id = app
        .ctx
        .store
        .find_user_by_email("viewer@example.org")
        .await
        .unwrap()
        .unwrap()
        .id;
    app.ctx
        .store
        .verify_email(viewer_id, lectern_store::EmailProof::Administrator)
        .await
        .unwrap();
    let added = owner
        .submit(
            &format!("/w/{ws}/members"),
            &format!("/w/{ws}/members"),
            &[("email", "viewer@example.org"), ("role", "viewer")],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
    assert_eq!(
        app.ctx.store.role_of(ws, viewer_id).await.unwrap(),
        Some(Role::Viewer)
    );
    // An address without an account is answered the same way (owners cannot probe
    // for accounts), and nothing changes.
    let unknown = owner
        .submit(
            &format!("/w/{ws}/members"),
            &format!("/w/{ws}/members"),
            &[("email", "nobody@example.org"), ("role", "editor")],
        )
        .await;
    assert_eq!(
        (unknown.status, &unknown.location),
        (added.status, &added.location)
    );
    let members = owner.get(&format!("/w/{ws}/members")).await;
    assert!(
        members
            .body
            .contains("If nobody@example.org has a verified Lectern account"),
        "{}",
        members.body
    );
    assert!(
        app.ctx
            .store
            .find_user_by_email("nobody@example.org")
            .await
            .unwrap()
            .is_none()
    );

    // A viewer reads, downloads and asks, but changes nothing.
    let seen = viewer.get(&docs_page).await;
    assert_eq!(seen.status, 200);
    assert!(
        !seen.body.contains("id=\"upload\""),
        "viewers get no upload form"
    );
    let csrf = seen.csrf();
    let download = viewer
        .get(&format!("/w/{ws}/documents/{doc}/original"))
        .await;
    assert_eq!(download.status, 200);
    assert_eq!(
        download.body, POLICY,
        "streamed through the web app as uploaded"
    );
    let refused = viewer
        .upload(
            &docs_page,
            Some(&csrf),
            vec![("more.txt", b"more".to_vec())],
        )
        .await;
    assert_eq!(refused.status, 403);
    for path in [
        format!("/w/{ws}/documents/{doc}/delete"),
        format!("/w/{ws}/documents/{doc}/reindex"),
    ] {
        assert_eq!(
            viewer.post(&path, &[("csrf", &csrf)]).await.status,
            403,
            "{path}"
        );
    }
    let promote = viewer
        .post(
            &format!("/w/{ws}/members"),
            &[
                ("csrf", &csrf),
                ("email", "viewer@example.org"),
                ("role", "owner"),
            ],
        )
        .await;
    assert_eq!(promote.status, 403);
    let owner_id = app
        .ctx
        .store
        .find_user_by_email("owner@example.org")
        .await
        .unwrap()
        .unwrap()
        .id;
    let remove_owner = viewer
        .post(
            &format!("/w/{ws}/members/{owner_id}/remove"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(remove_owner.status, 403);
    // Site administration does not exist for people who are not administrators.
    for path in [
        "/admin/signup".to_owned(),
        format!("/admin/users/{owner_id}"),
    ] {
        let page = viewer
            .post(
                &path,
                &[("csrf", &csrf), ("open", "false"), ("action", "disable")],
            )
            .await;
        assert_eq!(page.status, 404, "{path}");
    }
    assert!(
        !app.ctx
            .store
            .user(owner_id)
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    assert_eq!(
        app.ctx.store.role_of(ws, owner_id).await.unwrap(),
        Some(Role::Owner)
    );
    assert_eq!(app.ctx.store.list_documents(ws).await.unwrap().len(), 1);

    // The viewer asks; the answer page shows the document's text as text.
    let (conversation, message) = viewer.ask(&csrf, ws, "Who approves travel bookings?").await;
    let chat = viewer.get(&format!("/chat/{conversation}")).await;
    assert_eq!(chat.status, 200);
    assert!(!chat.body.contains("<script>alert"), "{}", chat.body);
    assert!(!chat.body.contains("<b>travel desk</b>"), "{}", chat.body);
    let cite = format!("/chat/{conversation}/m/{message}/cite/1?fragment=1");
    let panel = viewer.get(&cite).await;
    if panel.status == 200 {
        assert!(
            !panel.body.contains("<script>alert") && !panel.body.contains("<b>travel"),
            "{}",
            panel.body
        );
        assert!(panel.body.contains("<mark>"), "{}", panel.body);
    } else {
        assert_eq!(panel.status, 404, "an answer without a source [1]");
    }
    let feedback = viewer
        .post(
            &format!("/chat/{conversation}/m/{message}/feedback"),
            &[("csrf", &csrf), ("helpful", "yes"), ("comment", "clear")],
        )
        .await;
    assert_eq!(feedback.status, 303);
    let message_id: Uuid = message.parse().unwrap();
    let saved = app
        .ctx
        .store
        .feedback_of(viewer_id, &[message_id])
        .await
        .unwrap();
    assert!(saved[&message_id].helpful);
    assert_eq!(saved[&message_id].comment.as_deref(), Some("clear"));

    // A non-member gets "not found" everywhere, and never the workspace's name.
    let csrf = stranger.get("/workspaces").await.csrf();
    let guessed = Uuid::new_v4();
    for path in [
        format!("/w/{ws}/documents"),
        format!("/w/{ws}/documents.json"),
        format!("/w/{ws}/members"),
        format!("/w/{ws}/documents/{doc}/original"),
        format!("/w/{ws}/documents/{doc}/pages/1.png"),
        format!("/w/{guessed}/documents"),
        format!("/chat/{conversation}"),
        format!("/chat/{conversation}/m/{message}/cite/1"),
    ] {
        let page = stranger.get(&path).await;
        assert_eq!(page.status, 404, "{path}: {}", page.body);
        assert!(!page.body.contains("Secret Travel Desk"), "{path}");
    }
    for path in [
        format!("/w/{ws}/documents/{doc}/delete"),
        format!("/w/{ws}/documents/{doc}/reindex"),
        format!("/w/{ws}/members"),
        format!("/chat/{conversation}/m/{message}/feedback"),
        format!("/chat/{conversation}/delete"),
        format!("/w/{ws}/members/{owner_id}/remove"),
    ] {
        let page = stranger
            .post(
                &path,
                &[
                    ("csrf", &csrf),
                    ("email", "stranger@example.org"),
                    ("role", "owner"),
                    ("helpful", "no"),
                ],
            )
            .await;
        assert_eq!(page.status, 404, "{path}: {}", page.body);
    }
    let upload = stranger
        .upload(&docs_page, Some(&csrf), vec![("x.txt", b"x".to_vec())])
        .await;
    assert_eq!(upload.status, 404);
    let chat = stranger
        .post(
            "/chat/ask",
            &[
                ("csrf", &csrf),
                ("question", "Who approves travel bookings?"),
                ("ws", &ws.to_string()),
            ],
        )
        .await;
    assert_eq!(chat.status, 404, "{}", chat.body);
    assert_eq!(app.ctx.store.list_documents(ws).await.unwrap().len(), 1);

    // The owner deletes the document; then the viewer's download is gone.
    let deleted = owner
        .submit(&docs_page, &format!("/w/{ws}/documents/{doc}/delete"), &[])
        .await;
    assert_eq!(deleted.status, 303);
    assert_eq!(
        viewer
            .get(&format!("/w/{ws}/documents/{doc}/original"))
            .await
            .status,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_stream_as_events_with_the_rendered_exchange() {
    let app = app().await;
    let mut grace = Browser::new(&app);
    grace.sign_up("grace@example.org", PASSWORD).await;
    let ws = grace.create_workspace("Travel").await;
    let page = format!("/w/{ws}/documents");
    let csrf = grace.get(&page).await.csrf();
    grace
        .upload(
            &page,
            Some(&csrf),
            vec![("policy.md", POLICY.as_bytes().to_vec())],
        )
        .await;
    grace.wait_until_read(ws).await;
    let request = reqwest::Client::new()
        .post(format!("{}/chat/ask", app.address))
        .header(header::COOKIE, grace.cookie.clone().unwrap())
        .header(header::ACCEPT, "text/event-stream")
        .form(&[
            ("csrf", csrf.as_str()),
            ("question", "Who approves travel bookings?"),
            ("ws", &ws.to_string()),
        ]);
    let res = request.send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let body = res.text().await.unwrap();
    let token = body.find("event: token").expect("tokens stream");
    let html = body.find("event: html").expect("the exchange follows");
    let done = body.find("event: done").expect("then done");
    assert!(token < html && html < done, "{body}");
    let data = body[html..]
        .lines()
        .nth(1)
        .unwrap()
        .trim_start_matches("data:")
        .trim();
    let event: serde_json::Value = serde_json::from_str(data).unwrap();
    let fragment = event["html"].as_str().unwrap();
    assert!(fragment.contains("class=\"exchange\""), "{fragment}");
    assert!(!fragment.contains("<script>alert"), "{fragment}");
    let conversation = event["conversation_id"].as_str().unwrap();
    assert_eq!(
        grace.get(&format!("/chat/{conversation}")).await.status,
        200
    );

    // A follow-up continues the conversation; the history lists it; it can be deleted.
    let follow = grace
        .post(
            "/chat/ask",
            &[
                ("csrf", csrf.as_str()),
                ("question", "How fast is that?"),
                ("conversation_id", conversation),
            ],
        )
        .await;
    assert_eq!(follow.status, 303, "{}", follow.body);
    assert!(
        follow
            .location
            .unwrap()
            .starts_with(&format!("/chat/{conversation}#m-"))
    );
    let page = grace.get(&format!("/chat/{conversation}")).await;
    assert_eq!(
        page.body.matches("class=\"exchange\"").count(),
        2,
        "{}",
        page.body
    );
    assert!(
        grace
            .get("/chat")
            .await
            .body
            .contains(&format!("href=\"/chat/{conversation}\""))
    );
    let deleted = grace
        .post(
            &format!("/chat/{conversation}/delete"),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(deleted.location.as_deref(), Some("/chat"));
    assert_eq!(
        grace.get(&format!("/chat/{conversation}")).await.status,
        404
    );
}

/// The one message a page shows (its flash), as HTML.
fn flash_of(page: &Page) -> String {
    let marker = "<p class=\"flash\" role=\"status\">";
    let at = page.body.find(marker).expect("the page shows a message") + marker.len();
    page.body[at..].split("</p>").next().unwrap().to_owned()
}

/// The path of the first link after `marker` (`/verify?token=` or `/invite/`) in a page or
/// a raw mail message (quoted-printable soft breaks and `=3D` undone), with its 64-digit
/// secret.
fn link_in(text: &str, marker: &str) -> String {
    let text = text
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {text}"))
        + marker.len();
    let secret: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    assert_eq!(secret.len(), 64, "{text}");
    format!("{marker}{secret}")
}

/// `path` percent-encoded as a `next` value.
fn encoded(path: &str) -> String {
    path.replace('/', "%2F")
        .replace('?', "%3F")
        .replace('=', "%3D")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unverified_address_gets_a_shared_workspace_only_through_the_invitation_link() {
    let app = app().await;
    let mut owner = Browser::new(&app);
    owner.sign_up("owner@company.example", PASSWORD).await;
    let ws = owner.create_workspace("Board papers").await;
    let members_page = format!("/w/{ws}/members");

    // Someone registers the CEO's address before the CEO does. Lectern sends no mail here,
    // so nothing verifies it, and the notice says who can.
    let mut mallory = Browser::new(&app);
    assert_eq!(
        mallory
            .sign_up("ceo@company.example", PASSWORD)
            .await
            .status,
        303
    );
    let notice = mallory.get("/workspaces").await;
    assert!(
        notice
            .body
            .contains("lectern user verify ceo@company.example"),
        "{}",
        notice.body
    );
    assert!(
        !notice.body.contains("/account/verify"),
        "without mail there is no link to send again"
    );
    let mallory_id = app
        .ctx
        .store
        .find_user_by_email("ceo@company.example")
        .await
        .unwrap()
        .unwrap()
        .id;

    // The owner shares the workspace with that address: an invitation, no membership.
    let shared = owner
        .submit(
            &members_page,
            &members_page,
            &[("email", "CEO@company.example"), ("role", "viewer")],
        )
        .await;
    assert_eq!(
        shared.location.as_deref(),
        Some(members_page.as_str()),
        "{}",
        shared.body
    );
    let answer = owner.get(&members_page).await;
    let invite = link_in(&answer.body, "/invite/");
    assert!(
        answer
            .body
            .contains("If ceo@company.example has a verified Lectern account"),
        "{}",
        answer.body
    );
    assert!(
        answer.body.contains("Pending invitations"),
        "{}",
        answer.body
    );
    assert_eq!(app.ctx.store.role_of(ws, mallory_id).await.unwrap(), None);
    assert_eq!(mallory.get(&format!("/w/{ws}/documents")).await.status, 404);

    // An address without an account is answered alike: same redirect, same words.
    let unknown = owner
        .submit(
            &members_page,
            &members_page,
            &[("email", "nobody@company.example"), ("role", "viewer")],
        )
        .await;
    assert_eq!(
        (unknown.status, &unknown.location),
        (shared.status, &shared.location)
    );
    let unknown_answer = owner.get(&members_page).await;
    let unknown_invite = link_in(&unknown_answer.body, "/invite/");
    assert_eq!(
        flash_of(&answer)
            .replace("ceo@company.example", "ADDRESS")
            .replace(&invite, "LINK"),
        flash_of(&unknown_answer)
            .replace("nobody@company.example", "ADDRESS")
            .replace(&unknown_invite, "LINK"),
    );

    // Owners revoke invitations; others cannot.
    let pending = app.ctx.store.pending_invitations(ws).await.unwrap();
    let invitation_for = |email: &str| pending.iter().find(|i| i.email == email).unwrap().id;
    let csrf = mallory.get("/workspaces").await.csrf();
    let ceo_invitation = invitation_for("ceo@company.example");
    assert_eq!(
        mallory
            .post(
                &format!("/w/{ws}/invitations/{ceo_invitation}/revoke"),
                &[("csrf", &csrf)],
            )
            .await
            .status,
        404
    );
    let revoked = owner
        .submit(
            &members_page,
            &format!(
                "/w/{ws}/invitations/{}/revoke",
                invitation_for("nobody@company.example")
            ),
            &[],
        )
        .await;
    assert_eq!(revoked.status, 303, "{}", revoked.body);
    assert_eq!(mallory.get(&unknown_invite).await.status, 404);

    // The owner gives the link to the real CEO, who has no account yet (their address is
    // taken): the link leads through sign-up and sign-in and back.
    let mut ceo = Browser::new(&app);
    let login = format!("/login?next={}", encoded(&invite));
    assert_eq!(
        ceo.get(&invite).await.location.as_deref(),
        Some(login.as_str())
    );
    let signup = format!("/signup?next={}", encoded(&invite));
    let login_page = ceo.get(&login).await;
    assert!(login_page.body.contains(&signup), "{}", login_page.body);
    let signup_page = ceo.get(&signup).await;
    assert!(
        signup_page
            .body
            .contains(&format!("name=\"next\" value=\"{invite}\"")),
        "{}",
        signup_page.body
    );
    let signed_up = ceo
        .post(
            "/signup",
            &[
                ("csrf", signup_page.csrf().as_str()),
                ("email", "ceo.real@company.example"),
                ("password", PASSWORD),
                ("next", invite.as_str()),
            ],
        )
        .await;
    assert_eq!(
        signed_up.location.as_deref(),
        Some(login.as_str()),
        "{}",
        signed_up.body
    );
    let csrf = ceo.get(&login).await.csrf();
    let back = ceo
        .post(
            "/login",
            &[
                ("csrf", csrf.as_str()),
                ("email", "ceo.real@company.example"),
                ("password", PASSWORD),
                ("next", invite.as_str()),
            ],
        )
        .await;
    assert_eq!(back.location.as_deref(), Some(invite.as_str()));
    let ceo_id = app
        .ctx
        .store
        .find_user_by_email("ceo.real@company.example")
        .await
        .unwrap()
        .unwrap()
        .id;
    // Opening the link shows the offer and changes nothing; the button accepts it.
    let offer = ceo.get(&invite).await;
    assert_eq!(offer.status, 200, "{}", offer.body);
    assert!(offer.body.contains("Board papers"), "{}", offer.body);
    assert_eq!(app.ctx.store.role_of(ws, ceo_id).await.unwrap(), None);
    let joined = ceo.submit(&invite, &invite, &[]).await;
    assert_eq!(
        joined.location,
        Some(format!("/w/{ws}/documents")),
        "{}",
        joined.body
    );
    assert_eq!(
        app.ctx.store.role_of(ws, ceo_id).await.unwrap(),
        Some(Role::Viewer)
    );
    assert_eq!(ceo.get(&format!("/w/{ws}/documents")).await.status, 200);

    // The link worked once; the address's own account still has nothing.
    assert_eq!(mallory.get(&invite).await.status, 404);
    let csrf = mallory.get("/workspaces").await.csrf();
    assert_eq!(mallory.post(&invite, &[("csrf", &csrf)]).await.status, 404);
    assert_eq!(app.ctx.store.role_of(ws, mallory_id).await.unwrap(), None);
    assert!(
        app.ctx
            .store
            .pending_invitations(ws)
            .await
            .unwrap()
            .is_empty()
    );

    // An administrator's word verifies an address: then sharing reaches it at once.
    let mut dana = Browser::new(&app);
    dana.sign_up("dana@company.example", PASSWORD).await;
    let dana_id = app
        .ctx
        .store
        .find_user_by_email("dana@company.example")
        .await
        .unwrap()
        .unwrap()
        .id;
    let verified = owner
        .submit(
            "/admin",
            &format!("/admin/users/{dana_id}"),
            &[("action", "verify")],
        )
        .await;
    assert_eq!(verified.status, 303, "{}", verified.body);
    assert!(
        !dana
            .get("/workspaces")
            .await
            .body
            .contains("not verified yet"),
        "the notice is gone"
    );
    owner
        .submit(
            &members_page,
            &members_page,
            &[("email", "dana@company.example"), ("role", "editor")],
        )
        .await;
    assert_eq!(
        app.ctx.store.role_of(ws, dana_id).await.unwrap(),
        Some(Role::Editor)
    );

    assert_audited(
        &app,
        &[
            "member.invited",
            "member.invitation_revoked",
            "member.invitation_accepted",
            "user.email_verified",
        ],
    )
    .await;
}

/// A local SMTP server (Python's aiosmtpd) that keeps every message it receives in a
/// Maildir; stopped when dropped.
struct MailSink {
    child: std::process::Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl MailSink {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("maildir"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run python3");
        let mut sink = Self { child, dir, port };
        for _ in 0..100 {
            if let Some(status) = sink.child.try_wait().unwrap() {
                panic!(
                    "the SMTP sink stopped ({status}); it needs Python's aiosmtpd, which scripts/test.sh installs (python3 -m pip install \"aiosmtpd==1.4.*\")"
                );
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return sink;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the SMTP sink did not listen on port {port}");
    }

    /// The first message received for `to` that contains `text`, raw, once it arrives
    /// (Lectern sends mail in the background).
    async fn message_to(&self, to: &str, text: &str) -> String {
        let new = self.dir.path().join("maildir").join("new");
        for _ in 0..300 {
            for entry in std::fs::read_dir(&new).into_iter().flatten().flatten() {
                let message = std::fs::read_to_string(entry.path()).unwrap_or_default();
                if message.contains(to) && message.contains(text) {
                    return message;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no message for {to} with {text:?} arrived");
    }
}

impl Drop for MailSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_mailed_at_sign_up_verifies_the_address_and_sharing_then_reaches_it() {
    let sink = MailSink::start().await;
    let port = sink.port;
    let app = spawn_app_with(|s| {
        s.web.public_url = Some("http://lectern.test".into());
        s.web.smtp = Some(lectern_runtime::SmtpSettings {
            url: format!("smtp://127.0.0.1:{port}"),
            from: "Lectern <lectern@example.org>".into(),
            username: None,
            password: None,
        });
    })
    .await;
    let mut owner = Browser::new(&app);
    owner.sign_up("owner@company.example", PASSWORD).await;
    let ws = owner.create_workspace("Board papers").await;
    let members_page = format!("/w/{ws}/members");

    let mut ceo = Browser::new(&app);
    assert_eq!(
        ceo.sign_up("ceo@company.example", PASSWORD).await.status,
        303
    );
    let ceo_id = app
        .ctx
        .store
        .find_user_by_email("ceo@company.example")
        .await
        .unwrap()
        .unwrap()
        .id;
    // Until the link comes back, the address is unverified, and the notice offers to send
    // the link again. (How often it may be sent is the throttle's own tests' subject.)
    let notice = ceo.get("/workspaces").await;
    assert!(
        notice.body.contains("not verified yet")
            && notice.body.contains("action=\"/account/verify\""),
        "{}",
        notice.body
    );
    let again = ceo.submit("/workspaces", "/account/verify", &[]).await;
    assert_eq!(
        again.location.as_deref(),
        Some("/account"),
        "{}",
        again.body
    );
    let account = ceo.get("/account").await;
    assert!(
        flash_of(&account).contains("ceo@company.example"),
        "{}",
        account.body
    );

    let mail = sink
        .message_to("ceo@company.example", "/verify?token=")
        .await;
    assert!(mail.contains("http://lectern.test/verify?token="), "{mail}");
    let verify = link_in(&mail, "/verify?token=");
    let verified = ceo.get(&verify).await;
    assert_eq!(
        verified.location.as_deref(),
        Some("/workspaces"),
        "{}",
        verified.body
    );
    let page = ceo.get("/workspaces").await;
    assert!(
        page.body.contains("is verified") && !page.body.contains("not verified yet"),
        "{}",
        page.body
    );
    assert!(
        app.ctx
            .store
            .user(ceo_id)
            .await
            .unwrap()
            .unwrap()
            .email_verified_at
            .is_some()
    );
    assert_eq!(ceo.get(&verify).await.status, 404, "a link works once");

    // Sharing with the verified address makes it a member at once; the owner's answer
    // reads as for any address, and the address is told by mail.
    let shared = owner
        .submit(
            &members_page,
            &members_page,
            &[("email", "ceo@company.example"), ("role", "editor")],
        )
        .await;
    assert_eq!(shared.location.as_deref(), Some(members_page.as_str()));
    let answer = owner.get(&members_page).await;
    let message = flash_of(&answer);
    assert!(
        message.contains("If ceo@company.example has a verified Lectern account")
            && message.contains("Lectern also wrote to ceo@company.example"),
        "{message}"
    );
    assert_eq!(
        app.ctx.store.role_of(ws, ceo_id).await.unwrap(),
        Some(Role::Editor)
    );
    assert_eq!(ceo.get(&format!("/w/{ws}/documents")).await.status, 200);
    sink.message_to("ceo@company.example", "gave you access")
        .await;
    // Its invitation was spent on the account: the link shown leads nowhere.
    assert_eq!(
        ceo.get(&link_in(&answer.body, "/invite/")).await.status,
        404
    );

    // An address without a verified account gets its invitation by mail.
    owner
        .submit(
            &members_page,
            &members_page,
            &[("email", "new.hire@company.example"), ("role", "viewer")],
        )
        .await;
    let invitation_mail = sink
        .message_to("new.hire@company.example", "/invite/")
        .await;
    let invite = link_in(&invitation_mail, "/invite/");
    let token = invite.trim_start_matches("/invite/");
    let pending = app
        .ctx
        .store
        .invitation_by_token(token)
        .await
        .unwrap()
        .expect("the mailed link is the pending invitation");
    assert_eq!(pending.email, "new.hire@company.example");
}

/// Each of `actions` is in the audit log (its latest hundred entries).
async fn assert_audited(app: &TestApp, actions: &[&str]) {
    let audit = app.ctx.store.recent_audit(100).await.unwrap();
    for action in actions {
        assert!(
            audit.iter().any(|e| e.action == *action),
            "no {action} in the audit log"
        );
    }
}

/// A scan (ocrmypdf's linn.pdf: one page, no text layer) is read by OCR: the document
/// list says so, a question about it is answered with a citation, and the citation panel
/// marks the passage on the scanned page's image.
#[tokio::test]
async fn a_scan_is_read_by_ocr_and_its_citation_is_marked_on_the_page() {
    let app = app().await;
    let mut ada = Browser::new(&app);
    ada.sign_up("ada@example.org", PASSWORD).await;
    let ws = ada.create_workspace("Scans").await;
    let page = format!("/w/{ws}/documents");
    let csrf = ada.get(&page).await.csrf();
    let scan = crate::ingest_api::test_doc("linn.pdf");
    let uploaded = ada
        .upload(&page, Some(&csrf), vec![("linn.pdf", scan)])
        .await;
    assert_eq!(uploaded.status, 303, "{}", uploaded.body);
    let docs = ada.wait_until_read(ws).await;
    let doc = &docs["documents"][0];
    assert_eq!(doc["status"], "ready", "{docs}");
    assert_eq!(doc["ocr_pages"], 1, "{docs}");
    let notice = doc["notice"].as_str().unwrap();
    assert!(notice.contains("1 of 1 page was read by OCR"), "{notice}");
    let listing = ada.get(&page).await;
    assert!(listing.body.contains("(1 OCR)"), "{}", listing.body);
    assert!(listing.body.contains(notice), "{}", listing.body);

    let (conversation, message) = ada.ask(&csrf, ws, "What is the LinnSequencer?").await;
    let panel = ada
        .get(&format!(
            "/chat/{conversation}/m/{message}/cite/1?fragment=1"
        ))
        .await;
    assert_eq!(
        panel.status, 200,
        "the answer cites the scan: {}",
        panel.body
    );
    assert!(panel.body.contains("page 1"), "{}", panel.body);
    assert!(
        panel.body.contains("<rect class=\"hl\""),
        "the passage is marked on the scan: {}",
        panel.body
    );
    assert!(
        !panel.body.contains("could not be located"),
        "{}",
        panel.body
    );
}
