//! Retrieval evaluation on a BEIR-format dataset (`corpus.jsonl`, `queries.jsonl`,
//! `qrels/test.tsv`): the corpus is ingested into a workspace (or one already holding it
//! is reused), every query is run in each search mode, chunks are folded into their
//! documents (first rank wins), and the rankings are scored.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context as _;
use lectern_core::{SearchMode, WorkspaceScope};
use lectern_ingest::pipeline::Ingestor;
use lectern_query::retrieve::{Retriever, SearchOptions};
use lectern_runtime::Context;
use serde::{Deserialize, Serialize};

use crate::metrics::{Qrels, RankingScores};

#[derive(Debug, Deserialize)]
pub struct CorpusDoc {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(default)]
    pub title: String,
    pub text: String,
}

#[derive(Debug, Deserialize)]
pub struct Query {
    #[serde(rename = "_id")]
    pub id: String,
    pub text: String,
}

#[derive(Debug)]
pub struct Dataset {
    pub corpus: Vec<CorpusDoc>,
    pub queries: Vec<Query>,
    /// Query id -> document id -> relevance.
    pub qrels: HashMap<String, Qrels>,
}

impl Dataset {
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let corpus = crate::read_jsonl(&dir.join("corpus.jsonl"))?;
        let mut queries: Vec<Query> = crate::read_jsonl(&dir.join("queries.jsonl"))?;
        let qrels_path = dir.join("qrels").join("test.tsv");
        let tsv = std::fs::read_to_string(&qrels_path)
            .with_context(|| format!("cannot read {}", qrels_path.display()))?;
        let mut qrels: HashMap<String, Qrels> = HashMap::new();
        for (i, line) in tsv.lines().enumerate() {
            let cols: Vec<&str> = line.split('\t').collect();
            if cols.len() < 3 || (i == 0 && cols[2].parse::<u32>().is_err()) {
                continue; // the header
            }
            let rel: u32 = cols[2]
                .trim()
                .parse()
                .with_context(|| format!("{} line {}: bad score", qrels_path.display(), i + 1))?;
            qrels
                .entry(cols[0].to_owned())
                .or_default()
                .insert(cols[1].to_owned(), rel);
        }
        // Only queries with judgements are scored, as BEIR does.
        queries.retain(|q| qrels.contains_key(&q.id));
        anyhow::ensure!(
            !queries.is_empty(),
            "no query of {} has judgements in qrels/test.tsv",
            dir.display()
        );
        Ok(Self {
            corpus,
            queries,
            qrels,
        })
    }
}

/// The file name a corpus document is ingested under (ids may hold characters a file
/// name may not).
fn file_name(id: &str) -> String {
    let safe: String = id
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.txt")
}

#[derive(Debug, Serialize)]
pub struct ModeReport {
    pub mode: SearchMode,
    #[serde(flatten)]
    pub scores: RankingScores,
}

#[derive(Debug, Serialize)]
pub struct RetrievalReport {
    pub dataset: String,
    pub documents: usize,
    pub queries: usize,
    pub rrf_k: u32,
    pub modes: Vec<ModeReport>,
}

/// Runs the evaluation in `workspace`, ingesting the corpus first unless it is there.
pub async fn evaluate(
    ctx: &Context,
    dir: &Path,
    workspace: &str,
) -> anyhow::Result<RetrievalReport> {
    let data = Dataset::load(dir)?;
    let ws = match ctx.store.find_workspace_by_name(workspace).await? {
        Some(ws) => ws,
        None => ctx.store.create_workspace(workspace, None).await?,
    };
    let by_name: HashMap<String, &str> = data
        .corpus
        .iter()
        .map(|d| (file_name(&d.id), d.id.as_str()))
        .collect();
    if ctx.store.list_documents(ws.id).await?.is_empty() {
        let ingestor = Ingestor::new(ctx)?;
        for doc in &data.corpus {
            let text = if doc.title.is_empty() {
                doc.text.clone()
            } else {
                format!("{}\n\n{}", doc.title, doc.text)
            };
            ingestor
                .submit(ws.id, &file_name(&doc.id), text.into_bytes())
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

    let retriever = Retriever {
        store: ctx.store.clone(),
        embedder: ctx.embedder.clone(),
        index: ctx.index.clone(),
    };
    let scope = WorkspaceScope::one(ws.id);
    let mut modes = Vec::new();
    for mode in [SearchMode::Dense, SearchMode::Sparse, SearchMode::Hybrid] {
        let options = SearchOptions {
            limit: 100,
            candidates: 100,
            mode,
            documents: None,
            duplicate_overlap: 1.0, // rank every chunk; documents are folded below
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
        modes.push(ModeReport {
            mode,
            scores: RankingScores::mean(&scores),
        });
    }
    Ok(RetrievalReport {
        dataset: dir.display().to_string(),
        documents: data.corpus.len(),
        queries: data.queries.len(),
        rrf_k: ctx.settings.index.rrf_k,
        modes,
    })
}
