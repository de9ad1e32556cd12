//! The `lectern` command's library: what the one binary does above the three services,
//! shared with the end-to-end tests.
//!
//! - [`services`]: ingest, query and web in one process (`lectern serve`), their search
//!   adapters opened once and shared;
//! - [`Local`]: this machine's Lectern for the command-line tools (ingest, search, ask,
//!   eval, bench): the migrated store and the search adapters;
//! - [`evaluation`]: the evaluation runs that drive the services' code and score it with
//!   the pure metrics of `lectern-eval`.

use std::ops::Deref;
use std::sync::Arc;

use anyhow::Context as _;
use lectern_ingest::pipeline::Ingestor;
use lectern_llm::Generator;
use lectern_query::answer::Answerer;
use lectern_runtime::{Configure, Context, Settings};
use lectern_search::SearchAdapters;

pub mod evaluation;

/// The routes of all three services for one process: the embedding model, the index and
/// the language model are opened once here and shared by ingest and query.
pub async fn services(ctx: &Arc<Context>) -> anyhow::Result<Vec<(&'static str, Configure)>> {
    let search = SearchAdapters::open(&ctx.settings)
        .await
        .context("could not open the embedding model or the index")?;
    let llm = lectern_query::open_llm(&ctx.settings)?;
    services_with(ctx, &search, llm)
}

/// The routes of all three services on adapters the caller opened.
pub fn services_with(
    ctx: &Arc<Context>,
    search: &SearchAdapters,
    llm: Option<Arc<dyn Generator>>,
) -> anyhow::Result<Vec<(&'static str, Configure)>> {
    Ok(vec![
        (
            lectern_ingest::NAME,
            lectern_ingest::configure(ctx.clone(), search)?,
        ),
        (
            lectern_query::NAME,
            lectern_query::configure(ctx.clone(), search, llm)?,
        ),
        (lectern_web::NAME, lectern_web::configure(ctx.clone())?),
    ])
}

/// This machine's Lectern, for the command-line tools: the store (schema brought up to
/// date, the embedded shape) and the search adapters. Derefs to the [`Context`].
pub struct Local {
    pub ctx: Arc<Context>,
    pub search: SearchAdapters,
}

impl Local {
    pub async fn open(settings: Settings) -> anyhow::Result<Self> {
        let ctx = Context::open(settings, true)
            .await
            .context("could not start Lectern")?;
        let search = SearchAdapters::open(&ctx.settings)
            .await
            .context("could not open the embedding model or the index")?;
        Ok(Self { ctx, search })
    }

    /// The ingest pipeline on these adapters.
    pub fn ingestor(&self) -> anyhow::Result<Ingestor> {
        Ok(Ingestor::new(&self.ctx, &self.search)?)
    }

    /// The answering pipeline on these adapters and `llm` (none: retrieval only).
    pub fn answerer(&self, llm: Option<Arc<dyn Generator>>) -> Answerer {
        lectern_query::answerer(&self.ctx, &self.search, llm)
    }
}

impl Deref for Local {
    type Target = Context;

    fn deref(&self) -> &Context {
        &self.ctx
    }
}
