//! What every service answers besides its own API: `/health` (the process is up),
//! `/ready` (its database and index answer), `/metrics` (Prometheus text format), and the
//! shared request metrics and error body.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};
use serde::Serialize;

/// Lectern's own metrics registry (not the global default, so tests can run side by side).
pub static REGISTRY: LazyLock<Registry> =
    LazyLock::new(|| Registry::new_custom(Some("lectern".into()), None).expect("registry"));

static HTTP_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let c = IntCounterVec::new(
        Opts::new("http_requests_total", "HTTP requests answered"),
        &["route", "method", "status"],
    )
    .expect("metric");
    REGISTRY
        .register(Box::new(c.clone()))
        .expect("register metric");
    c
});

static HTTP_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    let h = HistogramVec::new(
        HistogramOpts::new("http_request_duration_seconds", "HTTP request latency"),
        &["route", "method"],
    )
    .expect("metric");
    REGISTRY
        .register(Box::new(h.clone()))
        .expect("register metric");
    h
});

/// The JSON body of every error answer: a stable `code` and a message that says what to do.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

/// The HTTP status of a seam error; each service's error type maps through this, so one
/// `match` decides statuses everywhere.
pub fn status_of(err: &lectern_core::Error) -> StatusCode {
    use lectern_core::Error::*;
    match err {
        Invalid(_) => StatusCode::BAD_REQUEST,
        NotFound(_) => StatusCode::NOT_FOUND,
        Conflict(_) => StatusCode::CONFLICT,
        Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        Forbidden(_) => StatusCode::FORBIDDEN,
        Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Builds the error answer; 5xx are logged with their whole cause chain, and their
/// internal detail is not shown to the caller.
pub fn error_response(
    status: StatusCode,
    code: &str,
    err: &(dyn std::error::Error + 'static),
) -> HttpResponse {
    let message = if status.is_server_error() {
        let mut chain = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            chain.push_str(": ");
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        tracing::error!(code, error = %chain, "request failed");
        if status == StatusCode::SERVICE_UNAVAILABLE {
            format!("{err}; try again shortly")
        } else {
            "internal error; the server log has the details".to_owned()
        }
    } else {
        err.to_string()
    };
    HttpResponse::build(status).json(ErrorBody {
        code: code.to_owned(),
        message,
    })
}

/// The error every service's handlers return: a seam error, answered with the one status
/// mapping ([`status_of`]) and the one JSON body ([`ErrorBody`]). Services wrap their own
/// refusals (forbidden, unauthenticated) in `lectern_core::Error` variants or add their
/// own variants here, so there is still one `match` deciding statuses.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ApiError(#[from] pub lectern_core::Error);

impl actix_web::ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        status_of(&self.0)
    }

    fn error_response(&self) -> HttpResponse {
        error_response(self.status_code(), self.0.code(), &self.0)
    }
}

/// Declares, in a service's OpenAPI document, the bearer scheme (`api_key`) every route
/// uses: `#[openapi(modifiers(&BearerAuth), security(("api_key" = [])))]`.
pub struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        openapi
            .components
            .get_or_insert_default()
            .add_security_scheme(
                "api_key",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
    }
}

/// A check run by `/ready`, e.g. "the database answers".
pub type ReadyCheck =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// The named readiness checks of the services in this process.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(String, ReadyCheck)>,
}

impl Readiness {
    pub fn with(mut self, name: &str, check: ReadyCheck) -> Self {
        self.checks.push((name.to_owned(), check));
        self
    }
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn ready(readiness: web::Data<Readiness>) -> HttpResponse {
    let mut checks = serde_json::Map::new();
    let mut all_ok = true;
    for (name, check) in &readiness.checks {
        // A database that hangs must not hang the probe: five seconds, then "not ready".
        let outcome = match tokio::time::timeout(std::time::Duration::from_secs(5), check()).await {
            Ok(outcome) => outcome,
            Err(_) => Err("no answer within 5 s".to_owned()),
        };
        all_ok &= outcome.is_ok();
        checks.insert(
            name.clone(),
            match outcome {
                Ok(()) => "ok".into(),
                Err(e) => e.into(),
            },
        );
    }
    let body =
        serde_json::json!({"status": if all_ok { "ready" } else { "not ready" }, "checks": checks});
    if all_ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn metrics() -> HttpResponse {
    LazyLock::force(&HTTP_REQUESTS);
    LazyLock::force(&HTTP_SECONDS);
    let mut buf = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&REGISTRY.gather(), &mut buf) {
        return error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal", &e);
    }
    HttpResponse::Ok()
        .content_type(prometheus::TEXT_FORMAT)
        .body(buf)
}

/// Mounts `/health`, `/ready` and `/metrics`.
pub fn common_routes(cfg: &mut web::ServiceConfig, readiness: Readiness) {
    cfg.app_data(web::Data::new(readiness))
        .route("/health", web::get().to(health))
        .route("/ready", web::get().to(ready))
        .route("/metrics", web::get().to(metrics));
}

/// Middleware (`actix_web::middleware::from_fn(record_metrics)`) counting requests by
/// route pattern (never the raw path, which may hold ids) and timing them.
pub async fn record_metrics(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let res = next.call(req).await?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".into());
    let status = res.status().as_u16().to_string();
    HTTP_REQUESTS
        .with_label_values(&[route.as_str(), method.as_str(), status.as_str()])
        .inc();
    HTTP_SECONDS
        .with_label_values(&[route.as_str(), method.as_str()])
        .observe(started.elapsed().as_secs_f64());
    Ok(res)
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;

    use super::*;

    fn body_of(res: HttpResponse) -> ErrorBody {
        let bytes = res.into_body().try_into_bytes().expect("a complete body");
        serde_json::from_slice(&bytes).expect("the JSON error body")
    }

    #[actix_web::test]
    async fn handlers_answer_errors_with_the_json_body() {
        use actix_web::{App, test};
        async fn fails() -> Result<HttpResponse, ApiError> {
            Err(lectern_core::Error::NotFound("no such workspace".into()).into())
        }
        let app = test::init_service(App::new().route("/x", web::get().to(fails))).await;
        let res = test::call_service(&app, test::TestRequest::get().uri("/x").to_request()).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let body: ErrorBody = test::read_body_json(res).await;
        assert_eq!(
            body,
            ErrorBody {
                code: "not_found".into(),
                message: "no such workspace".into()
            }
        );
    }

    #[test]
    fn client_errors_say_what_to_fix_and_server_errors_hide_their_cause() {
        let invalid =
            lectern_core::Error::Invalid("a workspace name needs 1 to 100 characters".into());
        let status = status_of(&invalid);
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let body = body_of(error_response(status, invalid.code(), &invalid));
        assert_eq!(
            body,
            ErrorBody {
                code: "invalid_input".into(),
                message: invalid.to_string()
            }
        );

        let internal = lectern_core::Error::internal(
            "vector index: search failed",
            "segment 7 checksum mismatch at /srv/x",
        );
        let status = status_of(&internal);
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        let body = body_of(error_response(status, internal.code(), &internal));
        assert_eq!(body.code, "internal");
        assert!(
            !body.message.contains("checksum") && !body.message.contains("/srv"),
            "{}",
            body.message
        );

        let down =
            lectern_core::Error::unavailable("the database is unavailable", "connection refused");
        assert_eq!(status_of(&down), StatusCode::SERVICE_UNAVAILABLE);
        let body = body_of(error_response(status_of(&down), down.code(), &down));
        assert!(body.message.contains("try again"), "{}", body.message);
        assert_eq!(
            status_of(&lectern_core::Error::NotFound("x".into())),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status_of(&lectern_core::Error::Conflict("x".into())),
            StatusCode::CONFLICT
        );
    }
}
