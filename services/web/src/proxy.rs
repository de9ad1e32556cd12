//! Where a request comes from and whether it came over HTTPS. `X-Forwarded-For` and
//! `X-Forwarded-Proto` are believed only from `web.trusted_proxies` (anyone else could
//! write them: a forged address in the audit log, a throttle dodged); and every answer
//! over HTTPS pins HTTPS with `Strict-Transport-Security`.

use std::net::IpAddr;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, web};
use lectern_runtime::{Context, WebSettings};

/// Browsers use only HTTPS for this host (and its subdomains) for a year.
pub const HSTS: &str = "max-age=31536000; includeSubDomains";

/// The client's address (`None` only for a request without a peer, as in some tests).
pub fn client_ip(req: &HttpRequest, web: &WebSettings) -> Option<IpAddr> {
    lectern_runtime::http::request_client_ip(req.peer_addr(), req.headers(), &web.trusted_proxies)
}

/// Lectern's address as people reach it, without a trailing slash: `web.public_url`, or
/// this request's own. For links on pages and redirects; links in mail use only
/// `web.public_url` (`mail.rs`).
pub fn public_base(req: &HttpRequest, web: &WebSettings) -> String {
    match &web.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let info = req.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        }
    }
}

/// Whether people reach Lectern over HTTPS: the public URL says so, this connection is
/// TLS, or a trusted proxy says the client's was.
pub fn over_https(req: &HttpRequest, web: &WebSettings) -> bool {
    if web
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
        || req.app_config().secure()
    {
        return true;
    }
    let from_proxy = req
        .peer_addr()
        .is_some_and(|peer| web.trusted_proxies.iter().any(|n| n.contains(peer.ip())));
    // The proxy nearest to Lectern writes the last value.
    from_proxy
        && req
            .headers()
            .get_all("x-forwarded-proto")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .last()
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// Middleware: `Strict-Transport-Security` on every answer to a request over HTTPS.
pub async fn hsts(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let https = req
        .app_data::<web::Data<Context>>()
        .is_some_and(|ctx| over_https(req.request(), &ctx.settings.web));
    let mut res = next.call(req).await?;
    if https {
        res.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn settings(public_url: Option<&str>, trusted: &[&str]) -> WebSettings {
        let mut web = lectern_runtime::Settings::default().web;
        web.public_url = public_url.map(str::to_owned);
        web.trusted_proxies = trusted.iter().map(|n| n.parse().unwrap()).collect();
        web
    }

    fn request(peer: &str, headers: &[(&str, &str)]) -> HttpRequest {
        let mut req = TestRequest::get().peer_addr(peer.parse().unwrap());
        for (name, value) in headers {
            req = req.insert_header((*name, *value));
        }
        req.to_http_request()
    }

    #[actix_web::test]
    async fn a_forged_forwarded_for_from_an_untrusted_peer_is_ignored() {
        let forged = request("203.0.113.5:5000", &[("x-forwarded-for", "198.51.100.1")]);
        let web = settings(None, &[]);
        assert_eq!(
            client_ip(&forged, &web),
            Some("203.0.113.5".parse().unwrap())
        );
        let web = settings(None, &["10.0.0.0/8"]);
        assert_eq!(
            client_ip(&forged, &web),
            Some("203.0.113.5".parse().unwrap())
        );
        let proxied = request("10.0.0.2:5000", &[("x-forwarded-for", "198.51.100.1")]);
        assert_eq!(
            client_ip(&proxied, &web),
            Some("198.51.100.1".parse().unwrap())
        );
    }

    #[actix_web::test]
    async fn https_is_the_public_urls_or_a_trusted_proxys_word() {
        let plain = request("203.0.113.5:5000", &[]);
        assert!(!over_https(&plain, &settings(None, &[])));
        assert!(over_https(
            &plain,
            &settings(Some("https://lectern.example.org"), &[])
        ));
        assert!(!over_https(
            &plain,
            &settings(Some("http://lectern.example.org"), &[])
        ));
        let forged = request("203.0.113.5:5000", &[("x-forwarded-proto", "https")]);
        assert!(!over_https(&forged, &settings(None, &["10.0.0.0/8"])));
        let proxied = request("10.0.0.2:5000", &[("x-forwarded-proto", "https")]);
        assert!(over_https(&proxied, &settings(None, &["10.0.0.0/8"])));
        let downgraded = request("10.0.0.2:5000", &[("x-forwarded-proto", "https, http")]);
        assert!(!over_https(&downgraded, &settings(None, &["10.0.0.0/8"])));
    }
}
