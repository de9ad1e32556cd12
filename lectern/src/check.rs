//! `lectern check`: do the database and the index agree? Run it on a quiet system: the
//! embedded index refuses a second opener, so `lectern serve` must be stopped first.
//! `lectern check --repair` mends what can be mended safely, the documents whose source
//! is gone (below), and checks again.
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
//!   workspace that still exists (no orphans);
//! - every document of a synced source names a source of its workspace that is there and
//!   not being removed: one whose source row is gone, or whose source's removal was cut
//!   short (marked `deleting`, and nothing removing it on a quiet system), would stay
//!   searchable with no source to sync or remove it. `--repair` deletes such documents
//!   through the pipeline's own delete (index points, rows, originals), and finishes the
//!   removal of a source left half removed as `lectern source remove` does.
//!
//! Counts, not ids: the index is compared through `count_document` and `count_points`,
//! which every implementation answers exactly.

use std::collections::{HashMap, HashSet};

use lectern_core::VectorIndex;
use lectern_ingest::pipeline::Ingestor;
use lectern_store::entity::{document, source, workspace};
use lectern_store::{Store, status, sync_state};
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
    /// Documents whose source is gone or being removed: what `--repair` deletes.
    pub sourceless: Vec<Sourceless>,
    pub problems: Vec<Problem>,
}

/// A document of a synced source that is gone, or whose removal was cut short.
#[derive(Debug, Clone, PartialEq)]
pub struct Sourceless {
    pub document: Uuid,
    pub source: Uuid,
    /// The source's row is there, marked as being removed: finishing its removal deletes
    /// the document (and the row). Otherwise the row is gone.
    pub removing: bool,
}

/// What `lectern check --repair` did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Repaired {
    /// Documents deleted (their index points, rows and originals) because their source
    /// was gone or being removed.
    pub documents_deleted: u64,
    /// Sources whose removal, cut short, was finished.
    pub removals_finished: u64,
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
            "documents_without_source": self.sourceless.len(),
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
    let mut sources: HashMap<Uuid, source::Model> = HashMap::new();
    for ws in &workspaces {
        sources.extend(
            store
                .list_sources(ws.id)
                .await?
                .into_iter()
                .map(|s| (s.id, s)),
        );
    }
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
            if let Some(source_id) = doc.source_id {
                match sources.get(&source_id).filter(|s| s.workspace_id == ws.id) {
                    None => {
                        found.push(format!(
                            "its source {source_id} is gone (a removal cut short?), so no sync or removal will ever delete it: `lectern check --repair` deletes it, with its points and original"
                        ));
                        report.sourceless.push(Sourceless {
                            document: doc.id,
                            source: source_id,
                            removing: false,
                        });
                    }
                    Some(s) if s.sync_state == sync_state::DELETING => {
                        found.push(format!(
                            "its source {:?} is being removed, and nothing is removing it (a removal cut short): `lectern source remove --workspace {:?} {:?}` or `lectern check --repair` finishes it",
                            s.name, ws.name, s.name
                        ));
                        report.sourceless.push(Sourceless {
                            document: doc.id,
                            source: source_id,
                            removing: true,
                        });
                    }
                    Some(_) => {}
                }
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

/// Deletes the documents the report found without a source (see the module doc): each
/// one whose source row is gone through the pipeline's delete, and each source left
/// half removed through [`Ingestor::remove_source`], which deletes its documents left and
/// then its row.
pub async fn repair(
    store: &Store,
    ingestor: &Ingestor,
    report: &Report,
) -> anyhow::Result<Repaired> {
    let mut repaired = Repaired::default();
    let mut finished: HashSet<Uuid> = HashSet::new();
    for s in &report.sourceless {
        if s.removing {
            if finished.insert(s.source)
                && let Some(source) = store.source(s.source).await?
            {
                repaired.documents_deleted += ingestor.remove_source(&source).await?;
                repaired.removals_finished += 1;
            }
        } else if let Some(doc) = store.document(s.document).await? {
            // Read again: a source added since the report (its first documents listed
            // before it was) keeps them.
            let owner = match doc.source_id {
                Some(id) => store.source(id).await?,
                None => None,
            };
            if owner.is_some_and(|o| o.workspace_id == doc.workspace_id) {
                continue;
            }
            ingestor.delete(&doc).await?;
            repaired.documents_deleted += 1;
        }
    }
    Ok(repaired)
}

/// `lectern check [--repair] [--json]`: prints the report (after the repair, with what it
/// did, when `repair_with` is given); `Ok(false)` when it found problems.
pub async fn run(
    store: &Store,
    index: &dyn VectorIndex,
    repair_with: Option<&Ingestor>,
    json_out: bool,
) -> anyhow::Result<bool> {
    let mut report = check(store, index).await?;
    let mut repaired = None;
    if let Some(ingestor) = repair_with {
        let done = if report.sourceless.is_empty() {
            Repaired::default()
        } else {
            let done = repair(store, ingestor, &report).await?;
            report = check(store, index).await?;
            done
        };
        repaired = Some(done);
    }
    if json_out {
        let mut out = report.to_json();
        if let Some(r) = &repaired {
            out["repaired"] = json!({
                "documents_deleted": r.documents_deleted,
                "removals_finished": r.removals_finished,
            });
        }
        println!("{out}");
    } else {
        if let Some(r) = &repaired {
            println!(
                "repaired: {} documents whose source was gone deleted, {} removals of sources finished",
                r.documents_deleted, r.removals_finished
            );
        }
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
