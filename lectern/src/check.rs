//! `lectern check`: do the database and the index agree? Run it on a quiet system: the
//! embedded index refuses a second opener, so `lectern serve` must be stopped first.
//!
//! For every workspace and document:
//! - the status is `ready`, `failed` with a reason, or `queued`/`processing` with a job
//!   still to run for its current version (else it would never finish);
//! - a ready document's chunk rows of its current version are as many as its points of
//!   that version in the index (none missing, and since a point's id is derived from its
//!   chunk, no duplicate), and no points of an older version are left;
//! - a failed version left no points behind (an older version that was ready stays
//!   searchable, as it was before the failed one was uploaded);
//! - every point of a workspace belongs to one of its documents, and every point to a
//!   workspace that still exists (no orphans).
//!
//! Counts, not ids: the index is compared through `count_document` and `count_points`,
//! which every implementation answers exactly.

use std::collections::{HashMap, HashSet};

use lectern_core::VectorIndex;
use lectern_store::entity::{document, workspace};
use lectern_store::{Store, status};
use serde_json::{Value, json};
use uuid::Uuid;

/// What the check found.
#[derive(Debug, Default)]
pub struct Report {
    pub workspaces: usize,
    pub documents: usize,
    pub ready: usize,
    pub failed: usize,
    /// Queued or processing.
    pub pending: usize,
    /// Chunk rows of the ready documents' current versions.
    pub chunks: usize,
    /// Points in the whole index.
    pub points: usize,
    /// Points that belong to no document.
    pub orphan_points: usize,
    pub problems: Vec<Problem>,
}

impl Report {
    pub fn consistent(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn to_json(&self) -> Value {
        let problems: Vec<Value> = self.problems.iter().map(Problem::to_json).collect();
        json!({
            "consistent": self.consistent(),
            "workspaces": self.workspaces,
            "documents": self.documents,
            "ready": self.ready,
            "failed": self.failed,
            "pending": self.pending,
            "chunks": self.chunks,
            "points": self.points,
            "orphan_points": self.orphan_points,
            "problems": problems,
        })
    }
}

/// One disagreement, with where it is: a document, a workspace, or the index as a whole.
#[derive(Debug)]
pub struct Problem {
    pub workspace: Option<(Uuid, String)>,
    pub document: Option<(Uuid, String, String)>,
    pub problem: String,
}

impl Problem {
    fn of_document(ws: &workspace::Model, doc: &document::Model, problem: String) -> Self {
        Self {
            workspace: Some((ws.id, ws.name.clone())),
            document: Some((doc.id, doc.file_name.clone(), doc.status.clone())),
            problem,
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "workspace_id": self.workspace.as_ref().map(|w| w.0),
            "workspace": self.workspace.as_ref().map(|w| &w.1),
            "document_id": self.document.as_ref().map(|d| d.0),
            "file_name": self.document.as_ref().map(|d| &d.1),
            "status": self.document.as_ref().map(|d| &d.2),
            "problem": self.problem,
        })
    }

    fn place(&self) -> String {
        match (&self.workspace, &self.document) {
            (Some((_, ws)), Some((id, file, _))) => format!("{ws}/{file} ({id})"),
            (Some((id, ws)), None) => format!("workspace {ws} ({id})"),
            _ => "the index".to_owned(),
        }
    }
}

/// Documents per query of chunk counts: an `IN` list well under any database's limit on
/// parameters.
const BATCH: usize = 500;

/// Compares the store with the index.
pub async fn check(store: &Store, index: &dyn VectorIndex) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let unfinished: HashSet<(Uuid, i32)> = store
        .unfinished_jobs()
        .await?
        .into_iter()
        .map(|job| (job.document_id, job.version))
        .collect();
    let workspaces = store.all_workspaces().await?;
    report.workspaces = workspaces.len();
    let mut in_workspaces = 0usize;
    for ws in &workspaces {
        let docs = store.list_documents(ws.id).await?;
        let mut rows: HashMap<Uuid, u64> = HashMap::new();
        for batch in docs.chunks(BATCH) {
            rows.extend(store.chunk_counts(batch).await?);
        }
        let mut owned = 0usize;
        for doc in &docs {
            report.documents += 1;
            let all = index.count_document(ws.id, doc.id, None).await?;
            owned += all;
            let version = doc.current_version;
            let current = if all == 0 {
                0
            } else {
                index.count_document(ws.id, doc.id, Some(version)).await?
            };
            let chunk_rows = rows.get(&doc.id).copied().unwrap_or(0) as usize;
            let mut found = Vec::new();
            match doc.status.as_str() {
                status::READY => {
                    report.ready += 1;
                    report.chunks += chunk_rows;
                    if chunk_rows == 0 {
                        found.push(format!("ready, but version {version} has no chunk rows"));
                    }
                    if current != chunk_rows {
                        found.push(format!(
                            "version {version} has {chunk_rows} chunk rows but {current} points in the index"
                        ));
                    }
                    if all > current {
                        found.push(format!(
                            "{} points of versions before {version} are still in the index",
                            all - current
                        ));
                    }
                }
                status::FAILED => {
                    report.failed += 1;
                    if doc
                        .error_message
                        .as_deref()
                        .is_none_or(|e| e.trim().is_empty())
                    {
                        found.push("failed without a reason".to_owned());
                    }
                    if current > 0 {
                        found.push(format!(
                            "failed, yet version {version} left {current} points in the index"
                        ));
                    }
                }
                status::QUEUED | status::PROCESSING => {
                    report.pending += 1;
                    if !unfinished.contains(&(doc.id, version)) {
                        found.push(format!(
                            "{}, but no job is queued or running for version {version}: it would never finish",
                            doc.status
                        ));
                    }
                }
                other => found.push(format!("unknown status {other:?}")),
            }
            report.problems.extend(
                found
                    .into_iter()
                    .map(|text| Problem::of_document(ws, doc, text)),
            );
        }
        let points = index.count_points(Some(ws.id)).await?;
        in_workspaces += points;
        if points > owned {
            let orphans = points - owned;
            report.orphan_points += orphans;
            report.problems.push(Problem {
                workspace: Some((ws.id, ws.name.clone())),
                document: None,
                problem: format!(
                    "{orphans} points in the index belong to no document of this workspace"
                ),
            });
        }
    }
    report.points = index.count_points(None).await?;
    if report.points > in_workspaces {
        let orphans = report.points - in_workspaces;
        report.orphan_points += orphans;
        report.problems.push(Problem {
            workspace: None,
            document: None,
            problem: format!("{orphans} points in the index belong to no workspace"),
        });
    }
    Ok(report)
}

/// `lectern check [--json]`: prints the report; `Ok(false)` when it found problems.
pub async fn run(store: &Store, index: &dyn VectorIndex, json_out: bool) -> anyhow::Result<bool> {
    let report = check(store, index).await?;
    if json_out {
        println!("{}", report.to_json());
    } else {
        println!(
            "{} workspaces, {} documents: {} ready, {} failed, {} queued or processing; \
             {} chunk rows, {} points in the index",
            report.workspaces,
            report.documents,
            report.ready,
            report.failed,
            report.pending,
            report.chunks,
            report.points
        );
        if report.consistent() {
            println!("consistent");
        } else {
            println!("{} problems:", report.problems.len());
            for p in &report.problems {
                println!("  {}: {}", p.place(), p.problem);
            }
        }
    }
    Ok(report.consistent())
}
