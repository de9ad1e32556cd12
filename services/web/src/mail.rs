//! Mail: verification links and invitations, over SMTP (`web.smtp`).
//!
//! Messages go out in the background: a page answers as fast whether or not it sent one
//! (so its timing tells nothing about which addresses have accounts), and a mail server
//! that is down costs a logged warning, never a failed sign-up. Links in mail always start
//! with `web.public_url` (the settings refuse `web.smtp` without it): an address taken
//! from a request's `Host` header would let anyone have Lectern mail links to a host of
//! their choosing, and collect the secrets in them.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use lectern_runtime::WebSettings;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::throttle::SignInThrottle;

/// How long sending one message may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// The configured mail server, if any.
pub struct Mailer {
    smtp: Option<Smtp>,
}

struct Smtp {
    transport: Arc<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
    /// `web.public_url`, without a trailing slash: where links in mail point.
    base: String,
}

impl Mailer {
    /// The mailer of `web.smtp`, checked now so that a wrong address or URL stops start-up
    /// with the setting named.
    pub fn new(web: &WebSettings) -> anyhow::Result<Self> {
        let Some(settings) = &web.smtp else {
            return Ok(Self { smtp: None });
        };
        let base = web
            .public_url
            .as_deref()
            .context("web.smtp needs web.public_url: the links in mail start with it")?
            .trim_end_matches('/')
            .to_owned();
        let from: Mailbox = settings.from.parse().with_context(|| {
            format!(
                "web.smtp.from {:?} is not an address like \"Lectern <lectern@example.org>\"",
                settings.from
            )
        })?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&settings.url)
            .with_context(|| {
                format!(
                    "web.smtp.url {:?} is not a mail server's URL (smtp://host:25, smtp://host:587?tls=required or smtps://host:465)",
                    settings.url
                )
            })?
            .timeout(Some(SEND_TIMEOUT));
        // The name Lectern greets the server with: the URL's path when it gives one,
        // otherwise the public address's host (some servers refuse "localhost").
        let names_itself =
            url::Url::parse(&settings.url).is_ok_and(|u| !u.path().trim_matches('/').is_empty());
        if !names_itself
            && let Some(host) = url::Url::parse(&base)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
        {
            builder = builder.hello_name(ClientId::Domain(host));
        }
        if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose_secret().to_owned(),
            ));
        }
        Ok(Self {
            smtp: Some(Smtp {
                transport: Arc::new(builder.build()),
                from,
                base,
            }),
        })
    }

    /// Whether mail is configured.
    pub fn enabled(&self) -> bool {
        self.smtp.is_some()
    }

    /// `path` on Lectern's public address, for a link in mail; `None` without mail.
    pub fn link(&self, path: &str) -> Option<String> {
        self.smtp.as_ref().map(|s| format!("{}{path}", s.base))
    }

    /// Sends a plain-text message to `to` in the background; does nothing without mail. A
    /// failure is logged without the message (it holds a link's secret) or the address.
    pub fn send(&self, to: &str, subject: &str, body: String) {
        let Some(smtp) = &self.smtp else {
            return;
        };
        let message = to
            .parse::<Mailbox>()
            .map_err(anyhow::Error::from)
            .and_then(|to| {
                Message::builder()
                    .from(smtp.from.clone())
                    .to(to)
                    .subject(subject)
                    .header(ContentType::TEXT_PLAIN)
                    .body(body)
                    .map_err(anyhow::Error::from)
            });
        let message = match message {
            Ok(message) => message,
            Err(e) => {
                tracing::warn!(error = %e, subject = %subject, "could not write a message");
                return;
            }
        };
        let transport = smtp.transport.clone();
        let subject = subject.to_owned();
        tokio::spawn(async move {
            if let Err(e) = transport.send(message).await {
                tracing::warn!(error = %e, subject = %subject, "could not send mail");
            }
        });
    }
}

/// How often a person may have a verification link sent: the first at once, then after
/// waits that double from 5 seconds up to an hour, per account and per client address
/// (the sign-in throttle's rule, counting messages instead of failures). It keeps a
/// button from becoming a way to flood someone's mailbox.
pub struct MailThrottle(SignInThrottle);

impl MailThrottle {
    pub fn new() -> Self {
        Self(SignInThrottle::new(1, Duration::from_secs(3600)))
    }

    /// How long `account` must still wait before another message; `None`: it may be sent.
    pub fn wait(&self, account: &str, address: Option<IpAddr>, now: Instant) -> Option<Duration> {
        self.0.wait(account, address, now)
    }

    /// Counts a message sent to `account`.
    pub fn sent(&self, account: &str, address: Option<IpAddr>, now: Instant) {
        self.0.failed(account, address, now);
    }
}

impl Default for MailThrottle {
    fn default() -> Self {
        Self::new()
    }
}
