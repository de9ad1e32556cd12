//! What every service answers besides its own API: `/health` (the process is up),
//! `/ready` (its database answers), `/metrics` (Prometheus text format); the shared
//! request metrics; Lectern's JSON error contract ([`ApiError`], [`public_error`]), and
//! the Server-Sent Events response ([`sse_response`]).

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use bytes::Bytes;
pub use lectern_api::ErrorBody;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};
use tokio::sync::mpsc;

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

/// The HTTP status of a seam error; each service's error type maps through this, so one
/// `match` decides statuses everywhere.
pub fn status_of(err: &lectern_core::Error) -> StatusCode {
    use lectern_core::Error::*;
    match err {
        Invalid(_) => StatusCode::BAD_REQUEST,
        TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        NotFound(_) => StatusCode::NOT_FOUND,
        Conflict(_) => StatusCode::CONFLICT,
        Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        Forbidden(_) => StatusCode::FORBIDDEN,
        Busy { .. } => StatusCode::TOO_MANY_REQUESTS,
        Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// What a caller is told of an error, and its status: client errors as they are (they
/// say what to fix); server errors logged here with their whole cause chain and told
/// without their internal detail. Every Lectern surface that reports an error (JSON
/// bodies, SSE `error` events, OpenAI-shaped errors) goes through this one rule.
pub fn public_error(err: &lectern_core::Error) -> (StatusCode, ErrorBody) {
    let status = status_of(err);
    let message = if status.is_server_error() {
        let mut chain = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            chain.push_str(": ");
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        tracing::error!(code = err.code(), error = %chain, "request failed");
        if status == StatusCode::SERVICE_UNAVAILABLE {
            format!("{err}; try again shortly")
        } else {
            "internal error; the server log has the details".to_owned()
        }
    } else {
        err.to_string()
    };
    (
        status,
        ErrorBody {
            code: err.code().to_owned(),
            message,
        },
    )
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
        let (status, body) = public_error(&self.0);
        error_response(&self.0, status).json(body)
    }
}

/// The start of an error's response: its status, and `Retry-After` when the service is
/// busy.
pub fn error_response(
    err: &lectern_core::Error,
    status: StatusCode,
) -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::build(status);
    if let Some(seconds) = err.retry_after() {
        response.insert_header((actix_web::http::header::RETRY_AFTER, seconds.to_string()));
    }
    response
}

/// The body limit of a JSON endpoint, with its refusal in Lectern's error shape: 413
/// `too_large` for a body over `bytes` (read no further), 400 for one that does not parse.
pub fn json_limit(bytes: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(bytes)
        .error_handler(move |err, _req| {
            use actix_web::error::JsonPayloadError::{Overflow, OverflowKnownLength};
            let (status, code, message) = match &err {
                Overflow { .. } | OverflowKnownLength { .. } => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("the request body is larger than {} KiB", bytes >> 10),
                ),
                other => (
                    StatusCode::BAD_REQUEST,
                    "invalid_input",
                    format!("the request body is not valid JSON for this endpoint: {other}"),
                ),
            };
            let response = HttpResponse::build(status).json(ErrorBody {
                code: code.into(),
                message,
            });
            actix_web::error::InternalError::from_response(err, response).into()
        })
}

/// A Server-Sent Events response whose events (already framed, see `lectern_api::sse`)
/// come from a channel; the stream ends when the sender is dropped. When the client goes
/// away the receiver is dropped, which the producer notices on its next send.
pub fn sse_response(events: mpsc::UnboundedReceiver<Bytes>) -> HttpResponse {
    let stream = futures::stream::unfold(events, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, actix_web::Error>(b), rx))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream)
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
        let err = ApiError(lectern_core::Error::internal(
            "metrics could not be encoded",
            e,
        ));
        return actix_web::ResponseError::error_response(&err);
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

/// An IP address or a CIDR range of them (`10.0.0.0/8`, `fd00::/8`, `192.0.2.7`): a
/// trusted reverse proxy (`web.trusted_proxies`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (net, ip, bits) = match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                (u128::from(u32::from(net)), u128::from(u32::from(ip)), 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => (u128::from(net), u128::from(ip), 128),
            _ => return false,
        };
        let shift = bits - u32::from(self.prefix);
        net.checked_shr(shift).unwrap_or(0) == ip.checked_shr(shift).unwrap_or(0)
    }
}

impl std::str::FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let invalid = || format!("{s:?} is not an IP address or a CIDR range like 10.0.0.0/8");
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s.trim(), None),
        };
        let addr = addr
            .parse::<IpAddr>()
            .map_err(|_| invalid())?
            .to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(invalid)?,
        };
        Ok(Self { addr, prefix })
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl serde::Serialize for IpNet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for IpNet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The address a request comes from. The connection's `peer` unless it is a trusted
/// proxy; then `X-Forwarded-For` (all its values, in order) is read from the right,
/// each trusted proxy skipped, and the first address that is not one is the client's:
/// addresses left of it were written by the client itself and prove nothing. A hop that
/// is not an address stops the walk at the last proxy.
pub fn client_ip(peer: IpAddr, forwarded_for: &[&str], trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer.to_canonical();
    if !is_trusted(client) {
        return client;
    }
    let hops: Vec<&str> = forwarded_for
        .iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.into_iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            break;
        };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

/// The client's address of a request that came from `peer` with these headers (`None`
/// without a peer, as in some tests): [`client_ip`] over its `X-Forwarded-For` values.
pub fn request_client_ip(
    peer: Option<std::net::SocketAddr>,
    headers: &actix_web::http::header::HeaderMap,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    Some(client_ip(peer?.ip(), &forwarded, trusted))
}

/// The token of an `Authorization: Bearer <token>` header, trimmed.
pub fn bearer_token(headers: &actix_web::http::header::HeaderMap) -> Option<&str> {
    let header = headers
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
}

/// One `X-Forwarded-For` entry: an address, or an address with a port (`[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<std::net::SocketAddr>().map(|a| a.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_contain_their_addresses_only() {
        let [lan, v6, one] = [
            "10.0.0.0/8".parse::<IpNet>().unwrap(),
            "fd00::/8".parse().unwrap(),
            "192.0.2.7".parse().unwrap(),
        ];
        assert!(lan.contains(ip("10.255.0.1")));
        assert!(!lan.contains(ip("11.0.0.1")));
        assert!(
            lan.contains(ip("::ffff:10.1.2.3")),
            "IPv4-mapped peers count"
        );
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        assert!(
            "0.0.0.0/0"
                .parse::<IpNet>()
                .unwrap()
                .contains(ip("8.8.8.8"))
        );
        assert!("::/0".parse::<IpNet>().unwrap().contains(ip("2001:db8::1")));
        for bad in ["10.0.0.0/33", "proxy.local", "10.0.0.0/x", ""] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxies = nets(&["10.0.0.0/8"]);
        // No trusted proxies (the default): the header is the client's own invention.
        assert_eq!(
            client_ip(ip("203.0.113.5"), &["1.2.3.4"], &[]),
            ip("203.0.113.5")
        );
        // A peer that is not a trusted proxy: the same.
        assert_eq!(
            client_ip(ip("203.0.113.5"), &["1.2.3.4"], &proxies),
            ip("203.0.113.5")
        );
        // Through the proxy: the right-most address that is not a proxy.
        assert_eq!(
            client_ip(
                ip("10.0.0.2"),
                &["1.2.3.4, 198.51.100.9, 10.0.0.3"],
                &proxies
            ),
            ip("198.51.100.9"),
            "the client wrote 1.2.3.4 itself"
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), &["1.2.3.4", "198.51.100.9"], &proxies),
            ip("198.51.100.9"),
            "repeated headers are read in order"
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), &["[2001:db8::7]:4711"], &proxies),
            ip("2001:db8::7")
        );
        // No header, or garbage: the proxy itself is all that is known.
        assert_eq!(client_ip(ip("10.0.0.2"), &[], &proxies), ip("10.0.0.2"));
        assert_eq!(
            client_ip(ip("10.0.0.2"), &["1.2.3.4, unknown"], &proxies),
            ip("10.0.0.2")
        );
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
        let (status, body) = public_error(&invalid);
        assert_eq!(status, StatusCode::BAD_REQUEST);
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
        let (status, body) = public_error(&internal);
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body.code, "internal");
        assert!(
            !body.message.contains("checksum") && !body.message.contains("/srv"),
            "{}",
            body.message
        );

        let down =
            lectern_core::Error::unavailable("the database is unavailable", "connection refused");
        assert_eq!(status_of(&down), StatusCode::SERVICE_UNAVAILABLE);
        let (_, body) = public_error(&down);
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
