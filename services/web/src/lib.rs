//! Lectern's web service: the server-rendered application people use: accounts,
//! workspaces and members, uploads with live status, synced folders, chat with streamed
//! answers and citations that open on their page, feedback, administration.
//!
//! The library holds the routes so that its own binary and the all-in-one `lectern serve`
//! mount the same code. Documents and answers always go through the ingest and query
//! services' HTTP APIs with the service token, acting for the signed-in person; the
//! web app's own SQL is people, sessions, memberships and invitations, feedback and the
//! audit log. It sends mail (verification links, invitations) when `web.smtp` is set.

use std::sync::Arc;

use actix_session::SessionMiddleware;
use actix_session::config::{CookieContentSecurity, PersistentSession};
use actix_web::cookie::{Key, SameSite};
use actix_web::http::header;
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{HttpResponse, web};
use anyhow::Context as _;
use lectern_runtime::{Configure, Context, Settings};

mod accounts;
mod admin;
mod auth;
mod backend;
mod chat;
mod error;
mod mail;
mod oidc;
mod proxy;
pub mod render;
mod session;
mod sources;
mod throttle;
mod views;
mod workspaces;

pub use auth::{CSRF_HEADER, check_new_password, hash_password};

/// The service's name in logs, metrics and `/ready`.
pub const NAME: &str = "web";

/// What pages may load: only this app's own scripts, styles and images.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// The key that signs session cookies: from `web.secret`, or made once and kept in the
/// data dir (so sessions survive restarts).
fn cookie_key(settings: &Settings) -> anyhow::Result<Key> {
    if let Some(secret) = &settings.web.secret {
        return Ok(Key::derive_from(secret.expose_secret().as_bytes()));
    }
    let path = settings.data_dir.join("web-secret");
    let secret = match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 64 => s.trim().to_owned(),
        _ => {
            std::fs::create_dir_all(&settings.data_dir)
                .with_context(|| format!("cannot create {}", settings.data_dir.display()))?;
            let secret: String = (0..4)
                .map(|_| uuid::Uuid::new_v4().simple().to_string())
                .collect();
            write_private(&path, &secret)
                .with_context(|| format!("cannot write the session secret {}", path.display()))?;
            secret
        }
    };
    Ok(Key::derive_from(secret.as_bytes()))
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(content.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, content: &str) -> std::io::Result<()> {
    std::fs::write(path, content)
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(body)
}

async fn stylesheet() -> HttpResponse {
    asset("text/css; charset=utf-8", include_str!("../static/app.css"))
}

async fn script() -> HttpResponse {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../static/app.js"),
    )
}

async fn workspace_home(path: web::Path<uuid::Uuid>) -> HttpResponse {
    views::redirect(&format!("/w/{}/documents", path.into_inner()))
}

/// The service's routes, bound to the process's adapters.
pub fn configure(ctx: Arc<Context>) -> anyhow::Result<Configure> {
    let backend = web::Data::new(backend::Backend::new(ctx.clone())?);
    let oidc = web::Data::new(oidc::Oidc::new(ctx.settings.web.oidc.clone())?);
    let web_settings = &ctx.settings.web;
    let renderer = web::Data::new(
        render::PageRenderer::new(
            ctx.settings.ingest.pdfium_lib.clone(),
            web_settings
                .isolate_rendering
                .then(|| lectern_runtime::worker::host_program(render::RENDER_JOB.name))
                .flatten()
                .map(|program| lectern_runtime::worker::Isolation {
                    program,
                    memory_mb: web_settings.render_memory_mb,
                }),
            std::time::Duration::from_secs(web_settings.render_timeout_secs.max(1)),
        )
        .with_ocr(ctx.settings.ocr.engine()),
    );
    let throttle = web::Data::new(throttle::SignInThrottle::new(
        ctx.settings.web.max_failed_sign_ins,
        std::time::Duration::from_secs(ctx.settings.web.throttle_minutes * 60),
    ));
    let mailer = web::Data::new(mail::Mailer::new(&ctx.settings.web)?);
    let mail_throttle = web::Data::new(mail::MailThrottle::new());
    // Made once here; each upload only makes its files in it.
    let spool = ctx.settings.data_dir.join(workspaces::SPOOL_DIR);
    std::fs::create_dir_all(&spool).with_context(|| {
        format!(
            "cannot create the upload folder {}; make data_dir writable for Lectern",
            spool.display()
        )
    })?;
    let key = cookie_key(&ctx.settings)?;
    let sessions = session::SqlSessionStore::new(ctx.store.clone());
    let secure = ctx
        .settings
        .web
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    let ttl = actix_web::cookie::time::Duration::hours(ctx.settings.web.session_hours as i64);
    Ok(Arc::new(move |cfg: &mut web::ServiceConfig| {
        let session_middleware = SessionMiddleware::builder(sessions.clone(), key.clone())
            .cookie_name("lectern_session".into())
            .cookie_http_only(true)
            .cookie_secure(secure)
            .cookie_same_site(SameSite::Lax)
            // Encrypted: a visitor's session travels in the cookie (`session.rs`).
            .cookie_content_security(CookieContentSecurity::Private)
            .session_lifecycle(PersistentSession::default().session_ttl(ttl))
            .build();
        let headers = DefaultHeaders::new()
            .add(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
            .add(("X-Content-Type-Options", "nosniff"))
            .add(("X-Frame-Options", "DENY"))
            .add(("Referrer-Policy", "same-origin"));
        cfg.app_data(web::Data::from(ctx.clone()))
            .app_data(backend.clone())
            .app_data(oidc.clone())
            .app_data(renderer.clone())
            .app_data(throttle.clone())
            .app_data(mailer.clone())
            .app_data(mail_throttle.clone())
            .route("/static/app.css", web::get().to(stylesheet))
            .route("/static/app.js", web::get().to(script))
            .service(
                web::scope("")
                    .wrap(from_fn(error::errors_for_scripts))
                    .wrap(from_fn(auth::csrf_guard))
                    .wrap(session_middleware)
                    .wrap(headers)
                    .wrap(from_fn(proxy::hsts))
                    .route("/", web::get().to(accounts::home))
                    .route("/login", web::get().to(accounts::login_form))
                    .route("/login", web::post().to(accounts::login))
                    .route("/signup", web::get().to(accounts::signup_form))
                    .route("/signup", web::post().to(accounts::signup))
                    .route("/logout", web::post().to(accounts::logout))
                    .route("/account", web::get().to(accounts::account))
                    .route(
                        "/account/password",
                        web::post().to(accounts::change_password),
                    )
                    .route(
                        "/account/verify",
                        web::post().to(accounts::resend_verification),
                    )
                    .route("/verify", web::get().to(accounts::verify_email))
                    .route("/invite/{token}", web::get().to(workspaces::invitation))
                    .route(
                        "/invite/{token}",
                        web::post().to(workspaces::accept_invitation),
                    )
                    .route("/auth/oidc", web::get().to(oidc::start))
                    .route("/auth/oidc/callback", web::get().to(oidc::callback))
                    .route("/workspaces", web::get().to(workspaces::list))
                    .route("/workspaces", web::post().to(workspaces::create))
                    .route("/w/{ws}", web::get().to(workspace_home))
                    .route("/w/{ws}/documents", web::get().to(workspaces::documents))
                    .route("/w/{ws}/documents", web::post().to(workspaces::upload))
                    .route(
                        "/w/{ws}/documents.json",
                        web::get().to(workspaces::documents_json),
                    )
                    .route("/w/{ws}/sources", web::post().to(sources::add))
                    .route("/w/{ws}/sources.json", web::get().to(sources::list_json))
                    .route(
                        "/w/{ws}/sources/{source}/sync",
                        web::post().to(sources::sync),
                    )
                    .route(
                        "/w/{ws}/sources/{source}/remove",
                        web::post().to(sources::remove),
                    )
                    .route(
                        "/w/{ws}/sources/{source}/edit",
                        web::post().to(sources::edit),
                    )
                    .route(
                        "/w/{ws}/documents/{doc}/delete",
                        web::post().to(workspaces::delete),
                    )
                    .route(
                        "/w/{ws}/documents/{doc}/reindex",
                        web::post().to(workspaces::reindex),
                    )
                    .route(
                        "/w/{ws}/documents/{doc}/original",
                        web::get().to(workspaces::original),
                    )
                    .route(
                        "/w/{ws}/documents/{doc}/pages/{page}.png",
                        web::get().to(workspaces::page_image),
                    )
                    .route("/w/{ws}/members", web::get().to(workspaces::members))
                    .route("/w/{ws}/members", web::post().to(workspaces::set_member))
                    .route(
                        "/w/{ws}/members/{user}/remove",
                        web::post().to(workspaces::remove_member),
                    )
                    .route(
                        "/w/{ws}/invitations/{invitation}/revoke",
                        web::post().to(workspaces::revoke_invitation),
                    )
                    .route("/chat", web::get().to(chat::new_chat))
                    .route("/chat/ask", web::post().to(chat::ask))
                    .route("/chat/{conversation}", web::get().to(chat::conversation))
                    .route(
                        "/chat/{conversation}/delete",
                        web::post().to(chat::delete_conversation),
                    )
                    .route(
                        "/chat/{conversation}/m/{message}/cite/{n}",
                        web::get().to(chat::citation),
                    )
                    .route(
                        "/chat/{conversation}/m/{message}/feedback",
                        web::post().to(chat::feedback),
                    )
                    .route("/admin", web::get().to(admin::overview))
                    .route("/admin/signup", web::post().to(admin::set_signup))
                    .route("/admin/users/{user}", web::post().to(admin::change_user)),
            );
    }))
}
