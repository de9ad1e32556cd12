//! The evaluation runs: they drive ingest, retrieval and answering on this machine's
//! Lectern and score the results with `lectern-eval`'s pure metrics.

pub mod ocr;

use std::collections::HashMap;
use std::path::Path;

use lectern_core::{SearchMode, WorkspaceScope};
use lectern_eval::metrics::RankingScores;
use lectern_eval::{beir, qa};
use lectern_query::answer::{Answer, Answerer, Question, Timings};
use lectern_query::retrieve::{Retriever, SearchOptions};
use lectern_store::NameScope;

use crate::Local;

/// Runs the evaluation in `workspace`, ingesting the corpus first unless it is there.
pub async fn retrieval(
    ctx: &Local,
    dir: &Path,
    workspace: &str,
) -> anyhow::Result<beir::RetrievalReport> {
    let data = beir::Dataset::load(dir)?;
    let ws = match ctx
        .store
        .find_workspace_by_name(NameScope::Operator, workspace)
        .await?
    {
        Some(ws) => ws,
        None => ctx.store.create_workspace(workspace, None).await?,
    };
    let by_name: HashMap<String, &str> = data
        .corpus
        .iter()
        .map(|d| (beir::file_name(&d.id), d.id.as_str()))
        .collect();
    if ctx.store.list_documents(ws.id).await?.is_empty() {
        let ingestor = ctx.ingestor()?;
        for doc in &data.corpus {
            let text = if doc.title.is_empty() {
                doc.text.clone()
            } else {
                format!("{}\n\n{}", doc.title, doc.text)
            };
            ingestor
                .submit(ws.id, &beir::file_name(&doc.id), text.into_bytes())
                .await?;
        }
        ingestor.run_until_idle(|_| {}).await?;
    }
    let names: HashMap<lectern_core::DocumentId, String> = ctx
        .store
        .list_documents(ws.id)
        .await?
        .into_iter()
        .map(|d| (d.id, d.file_name))
        .collect();

    let retriever = Retriever::new(ctx.store.clone(), &ctx.search);
    let scope = WorkspaceScope::local_cli(vec![ws.id])?;
    let mut modes = Vec::new();
    for mode in [SearchMode::Dense, SearchMode::Sparse, SearchMode::Hybrid] {
        let options = SearchOptions {
            limit: 100,
            candidates: 100,
            mode,
            documents: None,
            duplicate_overlap: 1.0, // rank every chunk; documents are folded below
            per_page: 0,
            cross_language_by_meaning: false,
            navigation_last: ctx.settings.query.navigation_last,
        };
        let mut scores = Vec::new();
        for q in &data.queries {
            let found = retriever.search(&scope, &q.text, &options).await?;
            let mut ranked: Vec<String> = Vec::new();
            for p in found.passages {
                let id = names
                    .get(&p.document_id)
                    .and_then(|n| by_name.get(n))
                    .map(|s| s.to_string());
                if let Some(id) = id
                    && !ranked.contains(&id)
                {
                    ranked.push(id);
                }
            }
            scores.push(RankingScores::of(&ranked, &data.qrels[&q.id]));
        }
        modes.push(beir::ModeReport {
            mode,
            scores: RankingScores::mean(&scores),
        });
    }
    Ok(beir::RetrievalReport {
        dataset: dir.display().to_string(),
        documents: data.corpus.len(),
        queries: data.queries.len(),
        rrf_k: ctx.settings.index.rrf_k,
        modes,
    })
}

/// Asks every question in the scope and scores it. Without `generate`, only retrieval
/// is measured and a question counts as abstained when its best similarity is under the
/// configured threshold (what the answer would do before asking the model): a fast loop
/// for tuning chunking, fusion and the threshold.
pub async fn qa(
    answerer: &Answerer,
    scope: &WorkspaceScope,
    items: &[qa::QaItem],
    generate: bool,
    mut progress: impl FnMut(&qa::QaRecord),
) -> anyhow::Result<(qa::QaSummary, Vec<qa::QaRecord>)> {
    let mut records = Vec::new();
    for item in items {
        let started = std::time::Instant::now();
        let retrieved = answerer.search(scope, &item.question, 5, None).await?;
        let retrieval_ms = started.elapsed().as_millis() as u64;
        let answer = if generate {
            let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
            answerer
                .answer(
                    Question {
                        text: item.question.clone(),
                        history: Vec::new(),
                        scope: scope.clone(),
                        documents: None,
                    },
                    tx,
                )
                .await?
        } else {
            let evidence = lectern_query::answer::evidence_of(&item.question, &retrieved);
            let absent = answerer
                .not_found_before_asking(scope, &item.question, &retrieved, &evidence, None)
                .await?;
            Answer {
                abstained: absent.is_some(),
                search_query: item.question.clone(),
                evidence,
                // The record's sources: the pages the search found, in its order.
                passages: retrieved.passages.clone(),
                timings: Timings {
                    retrieval_ms,
                    total_ms: retrieval_ms,
                    ..Default::default()
                },
                ..Answer::default()
            }
        };
        let r = qa::record(
            item,
            &retrieved.passages,
            retrieved.best_similarity,
            &answer,
        );
        progress(&r);
        records.push(r);
    }
    Ok((qa::summarise(&records), records))
}
