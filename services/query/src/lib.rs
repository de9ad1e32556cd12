//! Lectern's query service: answers questions from the caller's workspaces with retrieval and a local LLM, with checked citations.
//!
//! The library holds the routes and state so that its own binary and the all-in-one
//! `lectern serve` mount the same code; the binary only loads settings and runs.

use std::sync::Arc;

use actix_web::web;
use lectern_runtime::{Configure, Context};

pub mod answer;
pub mod api;
pub mod cite;
pub mod prompt;
pub mod retrieve;

/// The service's name in logs, metrics and `/ready`.
pub const NAME: &str = "query";

/// The answering pipeline on the context's adapters and the given language model.
pub fn answerer(ctx: &Context, llm: Option<Arc<dyn lectern_llm::Generator>>) -> answer::Answerer {
    answer::Answerer {
        retriever: retrieve::Retriever {
            store: ctx.store.clone(),
            embedder: ctx.embedder.clone(),
            index: ctx.index.clone(),
        },
        llm,
        settings: ctx.settings.query.clone(),
        max_tokens: ctx.settings.llm.max_tokens,
        temperature: ctx.settings.llm.temperature,
    }
}

/// The service's routes, bound to the process's adapters; the language model is loaded
/// here, once, at start-up.
pub fn configure(ctx: Arc<Context>) -> anyhow::Result<Configure> {
    let llm = lectern_runtime::open_llm(&ctx.settings)?;
    let answerer = web::Data::new(answerer(&ctx, llm));
    Ok(Arc::new(move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::from(ctx.clone()))
            .app_data(answerer.clone())
            .configure(api::routes);
    }))
}
