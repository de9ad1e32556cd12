//! What every page shares: the layout (who is signed in, the CSRF token, a one-time
//! message), and responses for pages, redirects and JSON.

use actix_session::Session;
use actix_web::HttpResponse;
use actix_web::http::{StatusCode, header};
use askama::Template;
use lectern_store::entity::user;

use crate::auth::{SignedIn, csrf_token};
use crate::error::WebResult;

const FLASH_KEY: &str = "flash";

/// The frame around every page.
pub struct Layout {
    pub title: String,
    pub user: Option<user::Model>,
    pub csrf: String,
    pub flash: Option<String>,
    /// Which main navigation entry is current.
    pub nav: &'static str,
    /// Whether Lectern sends mail: what the notice to an unverified person offers.
    pub mail: bool,
}

impl Layout {
    pub fn signed_in(s: &SignedIn, title: impl Into<String>, nav: &'static str) -> Self {
        Self {
            title: title.into(),
            user: Some(s.user.clone()),
            csrf: s.csrf(),
            flash: take_flash(&s.session),
            nav,
            mail: s.mail,
        }
    }

    pub fn visitor(session: &Session, title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            user: None,
            csrf: csrf_token(session),
            flash: take_flash(session),
            nav: "",
            mail: false,
        }
    }
}

/// A message shown once, on the next page (after a redirect).
pub fn flash(session: &Session, message: impl Into<String>) {
    let _ = session.insert(FLASH_KEY, message.into());
}

fn take_flash(session: &Session) -> Option<String> {
    // Only touched when there is one: removing marks the session changed.
    if !session.contains_key(FLASH_KEY) {
        return None;
    }
    session.remove_as::<String>(FLASH_KEY).and_then(Result::ok)
}

pub fn page(template: &impl Template) -> WebResult<HttpResponse> {
    page_with(StatusCode::OK, template)
}

pub fn page_with(status: StatusCode, template: &impl Template) -> WebResult<HttpResponse> {
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(template.render()?))
}

/// "See other": after a form, the browser loads `location` with GET.
pub fn redirect(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// Whether the request asked for JSON (the page's scripts do).
pub fn wants_json(req: &actix_web::HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}
