//! The web app's one error path. A handler returns a [`WebError`]; the person sees a page
//! that says what happened and what to do, in the app's own layout, and the page's own
//! scripts (which ask for JSON or for an event stream) get the same error as Lectern's
//! JSON error body `{code, message}` instead ([`errors_for_scripts`]). Either way the
//! message follows the services' rule: client errors as they are, server errors logged
//! and told without their internal detail. A request that is not signed in is sent to
//! the sign-in page and comes back afterwards.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;
use lectern_api::ErrorBody;
use lectern_core::Error;
use lectern_runtime::http::public_error;

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
        413 => ("Too large", "Send fewer files at once, or smaller ones."),
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

impl WebError {
    /// The status and what the person or script is told.
    pub fn public(&self) -> (StatusCode, ErrorBody) {
        match self {
            Self::Core(e) => {
                let (status, mut body) = public_error(e);
                if let Error::Unavailable { message, .. } = e {
                    // The services' own words for what is down, without "try again":
                    // the page's advice says that.
                    body.message = message.clone();
                }
                (status, body)
            }
            Self::SignIn { .. } => (
                StatusCode::UNAUTHORIZED,
                ErrorBody {
                    code: "unauthenticated".into(),
                    message: "sign in first".into(),
                },
            ),
            Self::Throttled(message) => (
                StatusCode::TOO_MANY_REQUESTS,
                ErrorBody {
                    code: "rate_limited".into(),
                    message: message.clone(),
                },
            ),
        }
    }

    /// The error as JSON, for the page's scripts.
    pub fn json_response(&self) -> HttpResponse {
        let (status, body) = self.public();
        HttpResponse::build(status).json(body)
    }

    /// The answer to a request with these headers: JSON for the page's scripts, the
    /// error page (or the way to the sign-in page) for a person.
    pub fn respond(&self, headers: &actix_web::http::header::HeaderMap) -> HttpResponse {
        if from_script(headers) {
            self.json_response()
        } else {
            self.error_response()
        }
    }
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::SignIn { .. } => StatusCode::SEE_OTHER,
            _ => self.public().0,
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
            _ => {
                let (status, body) = self.public();
                let internal = status.is_server_error()
                    && !matches!(self, Self::Core(Error::Unavailable { .. }));
                let message = if internal {
                    "Lectern could not complete this request."
                } else {
                    body.message.as_str()
                };
                error_page(status, message)
            }
        }
    }
}

/// Whether the request comes from the page's own scripts: they ask for JSON, or for an
/// event stream (a streamed answer).
pub fn from_script(headers: &actix_web::http::header::HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json") || v.contains("text/event-stream"))
}

/// Middleware: a [`WebError`] answered to one of the page's scripts becomes Lectern's
/// JSON error body, with the same status and message the page would have shown.
pub async fn errors_for_scripts(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let script = from_script(req.headers());
    let res = next.call(req).await?;
    if !script {
        return Ok(res.map_into_boxed_body());
    }
    let json = res
        .response()
        .error()
        .and_then(|e| e.as_error::<WebError>())
        .map(WebError::json_response);
    Ok(match json {
        Some(json) => res.into_response(json),
        None => res.map_into_boxed_body(),
    })
}

/// Percent-encodes a query value.
pub fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
