//! Retrieval evaluation on a BEIR-format dataset (`corpus.jsonl`, `queries.jsonl`,
//! `qrels/test.tsv`): the corpus is ingested into a workspace (or one already holding it
//! is reused), every query is run in each search mode, chunks are folded into their
//! documents (first rank wins), and the rankings are scored.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context as _;
use lectern_core::SearchMode;
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
pub fn file_name(id: &str) -> String {
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
