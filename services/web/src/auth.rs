//! Who is signed in, form parsing, CSRF protection and password hashing.
//!
//! CSRF: each session holds a random token; every state-changing request must carry it,
//! in the form field `csrf` (forms) or the `X-CSRF-Token` header (the page's scripts).
//! [`csrf_guard`] checks URL-encoded forms and headers for every POST before any handler
//! runs; the one multipart form (uploads) carries the token as its first field, which
//! the upload handler checks before reading files. Session cookies are also `SameSite=Lax`.

use std::collections::HashMap;

use actix_session::{Session, SessionExt};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use futures::future::LocalBoxFuture;
use lectern_auth::Caller;
use lectern_core::Error;
use lectern_runtime::Context;
use lectern_store::entity::user;
use lectern_store::secret_hash;
use uuid::Uuid;

use crate::error::{WebError, WebResult};
use crate::mail::Mailer;
use crate::session::USER_KEY;

/// The session value holding the CSRF token.
const CSRF_KEY: &str = "csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A URL-encoded form, with repeated fields kept (`ws=a&ws=b`).
#[derive(Debug, Clone, Default)]
pub struct FormData(Vec<(String, String)>);

impl FormData {
    pub fn parse(body: &[u8]) -> Self {
        Self(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of a field, trimmed; empty counts as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The value, untrimmed (passwords).
    pub fn raw(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn require(&self, name: &str, what: &str) -> Result<&str, Error> {
        self.get(name)
            .ok_or_else(|| Error::Invalid(format!("{what} is missing")))
    }
}

/// The form a [`csrf_guard`]ed request carried (parsed once, by the guard).
impl FromRequest for FormData {
    type Error = WebError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(Ok(req
            .extensions()
            .get::<FormData>()
            .cloned()
            .unwrap_or_default()))
    }
}

/// The session's CSRF token, made on first use.
pub fn csrf_token(session: &Session) -> String {
    if let Ok(Some(token)) = session.get::<String>(CSRF_KEY) {
        return token;
    }
    let token = Uuid::new_v4().simple().to_string();
    let _ = session.insert(CSRF_KEY, &token);
    token
}

/// Whether `provided` is the session's token (compared by hash: no early exit).
pub fn csrf_ok(session: &Session, provided: Option<&str>) -> bool {
    match (session.get::<String>(CSRF_KEY).ok().flatten(), provided) {
        (Some(expected), Some(provided)) => secret_hash(&expected) == secret_hash(provided),
        _ => false,
    }
}

/// What a form whose CSRF token is missing or wrong is told.
pub const CSRF_REFUSED: &str =
    "This form has expired or did not come from Lectern. Reload the page and send it again.";

fn csrf_rejected(req: &ServiceRequest) -> actix_web::HttpResponse {
    WebError::from(lectern_core::Error::Forbidden(CSRF_REFUSED.into())).respond(req.headers())
}

/// Checks the CSRF token of every POST, and leaves a URL-encoded body parsed as
/// [`FormData`] for the handler.
pub async fn csrf_guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    // The services' JSON APIs authenticate with bearer tokens, not cookies.
    if req.method() != Method::POST || req.path().starts_with("/v1/") {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let session = req.get_session();
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let header_token = req
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let body = req.extract::<web::Bytes>().await?;
        let form = FormData::parse(&body);
        let token = header_token.as_deref().or(form.get("csrf"));
        if !csrf_ok(&session, token) {
            let refused = csrf_rejected(&req);
            return Ok(req.into_response(refused).map_into_right_body());
        }
        req.extensions_mut().insert(form);
    } else if content_type.starts_with("multipart/form-data") && req.path().ends_with("/documents")
    {
        // The upload handler checks the form's first field (or the header).
    } else if !csrf_ok(&session, header_token.as_deref()) {
        let refused = csrf_rejected(&req);
        return Ok(req.into_response(refused).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// The signed-in person. Handlers that take it send everyone else to the sign-in page; a
/// user disabled meanwhile is signed out.
#[derive(Clone)]
pub struct SignedIn {
    pub user: user::Model,
    pub session: Session,
    /// Whether Lectern sends mail ([`Mailer::enabled`]): an unverified person can then
    /// have a verification link sent again.
    pub mail: bool,
}

impl SignedIn {
    pub fn id(&self) -> Uuid {
        self.user.id
    }

    /// The same person as the services' [`Caller`] (roles, audit).
    pub fn caller(&self) -> Caller {
        Caller {
            user: self.user.clone(),
        }
    }

    pub fn csrf(&self) -> String {
        csrf_token(&self.session)
    }
}

impl FromRequest for SignedIn {
    type Error = WebError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let next = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".into());
            let sign_in = WebError::SignIn {
                next: if req.method() == Method::GET {
                    next
                } else {
                    "/".into()
                },
            };
            let session = req.get_session();
            let Some(id) = session.get::<Uuid>(USER_KEY).ok().flatten() else {
                return Err(sign_in);
            };
            let ctx = req
                .app_data::<web::Data<Context>>()
                .ok_or_else(|| Error::internal_msg("the web app has no context"))?;
            match ctx.store.user(id).await? {
                Some(user) if !user.disabled => Ok(Self {
                    user,
                    session,
                    mail: req
                        .app_data::<web::Data<Mailer>>()
                        .is_some_and(|m| m.enabled()),
                }),
                _ => {
                    session.purge();
                    Err(sign_in)
                }
            }
        })
    }
}

/// A signed-in site administrator.
pub struct Admin(pub SignedIn);

impl FromRequest for Admin {
    type Error = WebError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let signed_in = SignedIn::from_request(req, payload);
        Box::pin(async move {
            let signed_in = signed_in.await?;
            if !signed_in.user.is_admin {
                // Not "forbidden": the admin pages do not exist for others.
                return Err(Error::NotFound("no such page".into()).into());
            }
            Ok(Self(signed_in))
        })
    }
}

/// Signs `user` in on this session: a new session key (no fixation), a new CSRF token.
pub fn sign_in(session: &Session, user: Uuid) -> WebResult<()> {
    session.renew();
    session.clear();
    session
        .insert(USER_KEY, user)
        .map_err(|e| Error::internal("cannot store the session", e))?;
    csrf_token(session);
    Ok(())
}

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 10;

pub fn check_new_password(password: &str, email: &str) -> Result<(), Error> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(Error::Invalid(format!(
            "the password needs at least {MIN_PASSWORD} characters"
        )));
    }
    if password.chars().count() > 1024 {
        return Err(Error::Invalid("the password is too long".into()));
    }
    if password.eq_ignore_ascii_case(email) {
        return Err(Error::Invalid(
            "the password must not be your email address".into(),
        ));
    }
    Ok(())
}

/// At most one argon2 computation per core at a time (each takes some 19 MiB and tens of
/// milliseconds): a flood of sign-ins queues here instead of filling the blocking pool,
/// whose threads the rest of the app needs.
async fn argon2_turn() -> tokio::sync::SemaphorePermit<'static> {
    static TURNS: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    });
    TURNS
        .acquire()
        .await
        .expect("the semaphore is never closed")
}

/// argon2id with the crate's default (OWASP) parameters, off the async threads.
pub async fn hash_password(password: String) -> Result<String, Error> {
    let _turn = argon2_turn().await;
    tokio::task::spawn_blocking(move || {
        let salt = new_salt()?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::internal_msg(format!("cannot hash the password: {e}")))
    })
    .await
    .map_err(|e| Error::internal("password hashing failed", e))?
}

/// Whether `password` matches the stored hash (false for accounts without a password).
/// A missing hash still costs one verification, so timing does not tell which emails exist.
pub async fn verify_password(password: String, hash: Option<String>) -> bool {
    let _turn = argon2_turn().await;
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(dummy_hash);
        let matches = PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        });
        matches && known
    })
    .await
    .unwrap_or(false)
}

fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| {
            new_salt()
                .ok()
                .and_then(|salt| {
                    Argon2::default()
                        .hash_password(b"not a password", &salt)
                        .map(|h| h.to_string())
                        .ok()
                })
                .unwrap_or_default()
        })
        .clone()
}

/// 16 random bytes from the operating system (a v4 UUID's randomness) as a salt.
fn new_salt() -> Result<SaltString, Error> {
    SaltString::encode_b64(Uuid::new_v4().as_bytes())
        .map_err(|e| Error::internal_msg(format!("cannot make a salt: {e}")))
}

/// The query string's values.
pub fn query_map(req: &HttpRequest) -> HashMap<String, String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A local path to return to after signing in; anything else (another site) is refused.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        // A path on this site only: no scheme-relative "//host", no backslash, and no
        // whitespace or control characters, which browsers strip from a Location. Short
        // enough to travel in a visitor's session cookie (single sign-on keeps it there).
        Some(n)
            if n.len() <= 1024
                && n.starts_with('/')
                && !n.starts_with("//")
                && !n
                    .chars()
                    .any(|c| c == '\\' || c.is_whitespace() || c.is_control()) =>
        {
            n.to_owned()
        }
        _ => "/workspaces".to_owned(),
    }
}
