//! The HTTP application shell shared by every service and by `lectern serve`: one
//! `HttpServer` with request tracing, metrics, `/health`, `/ready`, `/metrics`, and the
//! routes of whichever services this process runs.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::{Compress, from_fn};
use actix_web::{App, HttpServer, web};
use tracing_actix_web::TracingLogger;

use crate::http::{ErrorBody, Readiness, common_routes, record_metrics};
use crate::limit::{RateLimit, rate_limit};

/// A service's routes, mounted into the shared application.
pub type Configure = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

/// A bound, not yet running, HTTP application (zero2prod's `Application`): build it,
/// read `port()` (bind to port 0 in tests), then `run_until_stopped()`.
pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    pub fn build(
        bind: SocketAddr,
        workers: usize,
        readiness: Readiness,
        limit: Option<RateLimit>,
        services: Vec<Configure>,
    ) -> std::io::Result<Self> {
        let limit = limit.map(web::Data::new);
        let listener = TcpListener::bind(bind)
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {bind}: {e}")))?;
        let port = listener.local_addr()?.port();
        let mut server = HttpServer::new(move || {
            let readiness = readiness.clone();
            let services = services.clone();
            let limit = limit.clone();
            App::new()
                .configure(move |cfg| {
                    if let Some(limit) = limit {
                        cfg.app_data(limit);
                    }
                })
                .wrap(from_fn(rate_limit))
                .wrap(Compress::default())
                .wrap(from_fn(record_metrics))
                .wrap(TracingLogger::default())
                .configure(move |cfg| {
                    common_routes(cfg, readiness);
                    for service in &services {
                        service(cfg);
                    }
                })
                .default_service(web::to(not_found))
        })
        .listen(listener)?;
        if workers > 0 {
            server = server.workers(workers);
        }
        Ok(Self {
            port,
            server: server.run(),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the process receives Ctrl-C or SIGTERM (then drains gracefully).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Unknown paths answer with the same JSON error body as every other error.
/// Browsers (asking for HTML) get a page with a way back.
async fn not_found(req: actix_web::HttpRequest) -> actix_web::HttpResponse {
    let wants_html = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if wants_html {
        return actix_web::HttpResponse::NotFound()
            .content_type("text/html; charset=utf-8")
            .body(NOT_FOUND_PAGE);
    }
    actix_web::HttpResponse::NotFound().json(ErrorBody {
        code: "not_found".into(),
        message: format!("no such page or endpoint: {} {}", req.method(), req.path()),
    })
}

const NOT_FOUND_PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Not found · Lectern</title><link rel=\"stylesheet\" href=\"/static/app.css\"></head><body><main id=\"main\" class=\"narrow\"><h1>Not found</h1><p>There is no page at this address. It may have moved, or the link is mistyped.</p><p><a href=\"/\">Go to Lectern's start page</a></p></main></body></html>";
