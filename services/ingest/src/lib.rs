//! Lectern's ingest service: turns documents into cited, indexed chunks: parse, chunk, embed, upsert; durable jobs.
//!
//! The library holds the routes and state so that its own binary and the all-in-one
//! `lectern serve` mount the same code; the binary only loads settings and runs.

use std::sync::Arc;

use actix_web::web;
use lectern_runtime::{Configure, Context};
use lectern_search::SearchAdapters;

pub mod api;
pub mod chunk;
pub mod crawl;
pub mod parse;
pub mod pipeline;
pub mod source;

/// The service's name in logs, metrics and `/ready`.
pub const NAME: &str = "ingest";

/// The service on its own: opens the embedding model and the index, then [`configure`].
pub async fn open(ctx: Arc<Context>) -> anyhow::Result<Configure> {
    let search = SearchAdapters::open(&ctx.settings).await?;
    configure(ctx, &search)
}

/// The service's routes, bound to the process's adapters, and its background workers
/// (`ingest.workers` of them; none when 0), started here on the caller's runtime.
pub fn configure(ctx: Arc<Context>, search: &SearchAdapters) -> anyhow::Result<Configure> {
    let ingestor = Arc::new(pipeline::Ingestor::new(&ctx, search)?);
    let wake = Arc::new(tokio::sync::Notify::new());
    if ctx.settings.ingest.workers > 0 {
        let sweeper = ingestor.clone();
        tokio::spawn(async move { sweeper.sweep_incoming(pipeline::INCOMING_MAX_AGE).await });
    }
    for _ in 0..ctx.settings.ingest.workers {
        tokio::spawn(ingestor.clone().run_worker(wake.clone()));
    }
    let api = web::Data::new(api::IngestApi { ingestor, wake });
    Ok(Arc::new(move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::from(ctx.clone()))
            .app_data(api.clone())
            .configure(api::routes);
    }))
}
