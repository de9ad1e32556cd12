//! Lectern's query service: answers questions from the caller's workspaces with retrieval
//! and a local LLM, with checked citations.
//!
//! The library holds the routes and state so that its own binary and the all-in-one
//! `lectern serve` mount the same code; the binary only loads settings and runs. The path
//! of a question: [`api`] (or [`openai`]) authorises and resolves the conversation ->
//! [`answer::Answerer`] rewrites a follow-up, [`retrieve`]s (and, if set to, has the
//! model [`rerank`] the first passages), builds the [`prompt`], generates, and [`cite`]
//! checks each sentence against its sources. Assistants reach the same paths through the
//! Model Context Protocol ([`mcp`]).

use std::sync::Arc;

use actix_web::web;
use lectern_llm::Generator;
use lectern_runtime::{Configure, Context, Settings};
use lectern_search::SearchAdapters;

pub mod answer;
pub mod api;
pub mod cite;
pub mod evidence;
pub mod grounding;
pub mod mcp;
pub mod openai;
pub mod prompt;
pub mod rerank;
pub mod retrieve;

/// The service's name in logs, metrics and `/ready`.
pub const NAME: &str = "query";

/// The answering pipeline on the process's search adapters and the given language model.
pub fn answerer(
    ctx: &Context,
    search: &SearchAdapters,
    llm: Option<Arc<dyn Generator>>,
) -> answer::Answerer {
    answer::Answerer {
        retriever: retrieve::Retriever::new(ctx.store.clone(), search),
        llm,
        settings: ctx.settings.query.clone(),
        max_tokens: ctx.settings.llm.max_tokens,
        temperature: ctx.settings.llm.temperature,
        refuse_when_busy: false,
    }
}

/// Opens the language model the settings name: llama.cpp in this process, or a client of
/// an OpenAI-compatible server. `None` when no local model is configured (search works,
/// answers say that no model is set up).
pub fn open_llm(settings: &Settings) -> anyhow::Result<Option<Arc<dyn Generator>>> {
    let l = &settings.llm;
    if l.backend == "openai" {
        let engine = lectern_llm::OpenAiEngine::new(lectern_llm::OpenAiOptions {
            base_url: l.base_url.clone().unwrap_or_default(),
            model: l.model.clone().unwrap_or_default(),
            api_key: l.api_key.as_ref().map(|k| k.expose_secret().to_owned()),
            context_length: l.context_length,
            timeout: std::time::Duration::from_secs(l.timeout_secs),
        })?;
        return Ok(Some(Arc::new(engine)));
    }
    let Some(path) = &l.model_path else {
        tracing::warn!(
            "no language model configured (llm.model_path): answers are disabled, search works"
        );
        return Ok(None);
    };
    let options = lectern_llm::LlamaOptions {
        model_path: path.clone(),
        context_length: l.context_length,
        parallel: l.parallel,
        threads: l.threads,
        batch_size: l.batch_size,
        gpu_layers: l.gpu_layers,
        main_gpu: l.main_gpu,
        queue_limit: l.queue_limit,
        draft: match (l.speculative.as_str(), &l.draft_model_path) {
            ("lookup", _) => lectern_llm::Draft::Lookup,
            ("model", Some(path)) => lectern_llm::Draft::Model(path.clone()),
            _ => lectern_llm::Draft::Off,
        },
        draft_tokens: l.draft_tokens,
    };
    Ok(Some(Arc::new(lectern_llm::LlamaEngine::load(&options)?)))
}

/// The service on its own: opens the embedding model, the index and the language model,
/// then [`configure`].
pub async fn open(ctx: Arc<Context>) -> anyhow::Result<Configure> {
    let search = SearchAdapters::open(&ctx.settings).await?;
    let llm = open_llm(&ctx.settings)?;
    configure(ctx, &search, llm)
}

/// The service's routes, bound to the process's adapters and language model.
pub fn configure(
    ctx: Arc<Context>,
    search: &SearchAdapters,
    llm: Option<Arc<dyn Generator>>,
) -> anyhow::Result<Configure> {
    let answerer = web::Data::new(answerer(&ctx, search, llm));
    let mcp_http = web::Data::new(mcp::http_service(
        ctx.clone(),
        answerer.clone().into_inner(),
    ));
    Ok(Arc::new(move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::from(ctx.clone()))
            .app_data(answerer.clone())
            .app_data(mcp_http.clone())
            .configure(api::routes)
            .configure(openai::routes)
            .configure(mcp::routes);
    }))
}
