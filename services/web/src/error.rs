//! Errors as pages that say what happened and what to do, in the app's own layout. A
//! request that is not signed in is sent to the sign-in page and comes back afterwards.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;
use lectern_core::Error;
use lectern_runtime::http::status_of;

/// What a web handler returns on failure.
#[derive(Debug)]
pub enum WebError {
    /// A seam error from the store or a service.
    Core(Error),
    /// Not signed in: go to the sign-in page, then back to `next`.
    SignIn { next: String },
    /// Too many failed sign-ins.
    Throttled(String),
}

pub type WebResult<T> = Result<T, WebError>;

impl std::fmt::Display for WebError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Core(e) => write!(f, "{e}"),
            Self::SignIn { .. } => write!(f, "sign in first"),
            Self::Throttled(m) => write!(f, "{m}"),
        }
    }
}

impl From<Error> for WebError {
    fn from(e: Error) -> Self {
        Self::Core(e)
    }
}

impl From<askama::Error> for WebError {
    fn from(e: askama::Error) -> Self {
        Self::Core(Error::internal("the page could not be rendered", e))
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    heading: &'a str,
    message: &'a str,
    advice: &'a str,
}

/// The error page for `status`, with a heading and advice fitting the status.
pub fn error_page(status: StatusCode, message: &str) -> HttpResponse {
    let (heading, advice) = match status.as_u16() {
        400 => ("That did not work", "Check what you entered and try again."),
        403 => (
            "Not allowed",
            "Your role in this workspace does not allow this. Ask one of its owners.",
        ),
        404 => (
            "Not found",
            "It may have been deleted, or you are not a member of its workspace. Go back to your workspaces.",
        ),
        409 => ("Changed meanwhile", "Reload the page and try again."),
        429 => (
            "Too many attempts",
            "Wait a few minutes, or ask an administrator to check your account.",
        ),
        503 => (
            "Temporarily unavailable",
            "A part of Lectern is busy or restarting. Try again in a minute.",
        ),
        _ => (
            "Something went wrong",
            "Try again. If it keeps happening, tell your administrator the time it happened.",
        ),
    };
    let page = ErrorPage {
        status: status.as_u16(),
        heading,
        message,
        advice,
    };
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body),
        Err(_) => HttpResponse::build(status).body(message.to_owned()),
    }
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Core(e) => status_of(e),
            Self::SignIn { .. } => StatusCode::SEE_OTHER,
            Self::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::SignIn { next } => {
                let location = format!("/login?next={}", urlencode(next));
                let mut res = HttpResponse::SeeOther().finish();
                if let Ok(v) = HeaderValue::from_str(&location) {
                    res.headers_mut().insert(header::LOCATION, v);
                }
                res
            }
            Self::Throttled(message) => error_page(StatusCode::TOO_MANY_REQUESTS, message),
            Self::Core(e) => {
                let status = status_of(e);
                if status.is_server_error() {
                    tracing::error!(error = ?e, "web request failed");
                    let message = match e {
                        Error::Unavailable { message, .. } => message.as_str(),
                        _ => "Lectern could not complete this request.",
                    };
                    error_page(status, message)
                } else {
                    error_page(status, &e.to_string())
                }
            }
        }
    }
}

/// Percent-encodes a query value.
pub fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
