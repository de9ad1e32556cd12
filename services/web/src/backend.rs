//! Where the web app reaches the ingest and query services: a typed client
//! ([`lectern_api::Client`]) that carries the service token and the person it acts for,
//! so ingest and query check that person's role exactly as for an API key. In the
//! distributed shape the URLs are the other services'; embedded, they are this process's
//! own address (the same code, over loopback).

use std::sync::Arc;
use std::time::Duration;

use lectern_api::{Auth, Client};
use lectern_core::Error;
use lectern_runtime::Context;
use uuid::Uuid;

#[derive(Clone)]
pub struct Backend {
    ctx: Arc<Context>,
    http: reqwest::Client,
}

impl Backend {
    pub fn new(ctx: Arc<Context>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self { ctx, http })
    }

    /// A client of ingest and query acting for `user`.
    pub fn client(&self, user: Uuid) -> Result<Client, Error> {
        let server = &self.ctx.settings.server;
        let local = self.ctx.local_url.get();
        let (Some(ingest), Some(query)) = (
            server.ingest_url.as_ref().or(local),
            server.query_url.as_ref().or(local),
        ) else {
            return Err(Error::unavailable(
                "the web app does not know where the services are",
                std::io::Error::other("no local address yet"),
            ));
        };
        let auth = Auth::Service {
            token: self.ctx.service_token.clone(),
            user,
        };
        let answer_timeout = Duration::from_secs(self.ctx.settings.llm.timeout_secs.max(60) * 3);
        Ok(Client::new(self.http.clone(), ingest, query, auth).with_answer_timeout(answer_timeout))
    }
}
