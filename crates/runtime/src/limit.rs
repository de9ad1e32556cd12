//! Rate limits per client address and per API key (`server.rate_limit_per_minute`, with
//! bursts of `server.rate_limit_burst`), from `governor`'s keyed GCRA limiter, for every
//! route but the probes and static files. Every request draws on its address's quota (so
//! made-up keys do not buy a flood more room), and one with a key on the key's too; the
//! web app's own calls with the service token draw on the quota of the person they are
//! made for, not on the loopback address. A request over a quota is answered 429 with
//! `Retry-After` at once, before any work: in Lectern's error shape, or OpenAI's on the
//! OpenAI-compatible routes.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use lectern_api::openai::{OpenAiErrorBody, is_openai_path};

use lectern_store::secret_hash;

use crate::http::{IpNet, bearer_token, error_response, public_error, request_client_ip};

/// Whose quota a request draws on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Caller {
    /// An API key or token (only a hash of it is kept).
    Key(u64),
    Address(IpAddr),
}

/// The limiter shared by every worker of the process.
pub struct RateLimit {
    limiter: DefaultKeyedRateLimiter<Caller>,
    trusted_proxies: Vec<IpNet>,
    service_token_hash: String,
    checks: AtomicU64,
}

impl RateLimit {
    /// `None` when `per_minute` is 0 (no limit).
    pub fn new(
        per_minute: u32,
        burst: u32,
        trusted_proxies: Vec<IpNet>,
        service_token: String,
    ) -> Option<Self> {
        let per_minute = NonZeroU32::new(per_minute)?;
        let burst = NonZeroU32::new(burst).unwrap_or(per_minute);
        Some(Self {
            limiter: DefaultKeyedRateLimiter::keyed(
                Quota::per_minute(per_minute).allow_burst(burst),
            ),
            trusted_proxies,
            service_token_hash: secret_hash(&service_token),
            checks: AtomicU64::new(0),
        })
    }

    /// How long the request must wait, or `None` when it may go ahead.
    fn wait_for(&self, req: &ServiceRequest) -> Option<std::time::Duration> {
        self.callers_of(req)
            .iter()
            .filter_map(|caller| self.wait(caller))
            .max()
    }

    /// How long `caller` must wait, or `None` when the request may go ahead.
    fn wait(&self, caller: &Caller) -> Option<std::time::Duration> {
        // Callers that have been quiet long enough to be back at a full quota are
        // forgotten now and then, so the table does not grow with every address seen.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(caller)
            .err()
            .map(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// The quotas a request draws on.
    fn callers_of(&self, req: &ServiceRequest) -> Vec<Caller> {
        let bearer = bearer_token(req.headers());
        let key = |parts: &dyn Fn(&mut DefaultHasher)| {
            let mut hasher = DefaultHasher::new();
            parts(&mut hasher);
            Caller::Key(hasher.finish())
        };
        // Hashes compared, as authentication does: no early exit on the secret's bytes.
        if bearer.is_some_and(|t| secret_hash(t) == self.service_token_hash) {
            let person = req
                .headers()
                .get(lectern_api::ACT_AS_HEADER)
                .and_then(|v| v.to_str().ok());
            return vec![key(&|h| ("person", person).hash(h))];
        }
        let mut callers: Vec<Caller> =
            request_client_ip(req.peer_addr(), req.headers(), &self.trusted_proxies)
                .map(Caller::Address)
                .into_iter()
                .collect();
        if let Some(token) = bearer {
            callers.push(key(&|h| ("key", token).hash(h)));
        }
        callers
    }
}

/// Paths no quota applies to: the probes, the metrics and the app's own assets.
fn exempt(path: &str) -> bool {
    matches!(path, "/health" | "/ready" | "/metrics") || path.starts_with("/static/")
}

/// Middleware: answers 429 with `Retry-After` for a caller over its quota.
pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let wait = req
        .app_data::<web::Data<RateLimit>>()
        .filter(|_| !exempt(req.path()))
        .and_then(|limit| limit.wait_for(&req));
    let Some(wait) = wait else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let seconds = wait.as_secs() + 1;
    let busy = lectern_core::Error::Busy {
        message: format!("too many requests; this key or address may send more in {seconds} s"),
        retry_after: seconds,
    };
    // The status, `Retry-After` and body every handler's error gets, in the shape the
    // route answers in.
    let (status, body) = public_error(&busy);
    let mut response = error_response(&busy, status);
    let response = if is_openai_path(req.path()) {
        response.json(OpenAiErrorBody::new(&body.code, body.message))
    } else {
        response.json(body)
    };
    Ok(req.into_response(response).map_into_right_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_over_its_burst_waits_and_others_do_not() {
        let limit = RateLimit::new(60, 3, Vec::new(), "service".into()).unwrap();
        let ada = Caller::Key(1);
        for _ in 0..3 {
            assert_eq!(limit.wait(&ada), None);
        }
        let wait = limit
            .wait(&ada)
            .expect("the fourth at once is over the burst");
        assert!(wait <= std::time::Duration::from_secs(1), "{wait:?}");
        assert_eq!(
            limit.wait(&Caller::Key(2)),
            None,
            "another key has its own quota"
        );
        assert_eq!(
            limit.wait(&Caller::Address("192.0.2.7".parse().unwrap())),
            None
        );
        assert!(
            RateLimit::new(0, 10, Vec::new(), "service".into()).is_none(),
            "0 means no limit"
        );
    }

    #[test]
    fn probes_and_assets_are_never_limited() {
        assert!(exempt("/health") && exempt("/ready") && exempt("/static/app.css"));
        assert!(!exempt("/v1/answer") && !exempt("/login"));
    }
}
