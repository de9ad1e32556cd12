//! `lectern ingest`: files and folders into a workspace, through the same pipeline the
//! ingest service runs, in this process.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use lectern::Local;
use lectern_ingest::pipeline::{Outcome, Submitted};
use lectern_store::NameScope;
use serde_json::json;

/// Every regular file under `paths` (folders recursively, hidden entries skipped), sorted.
pub fn collect(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    fn walk(path: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
        let meta =
            std::fs::metadata(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if meta.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(path)?
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .collect();
            entries.sort();
            for entry in entries {
                if entry
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                {
                    continue;
                }
                walk(&entry, out)?;
            }
        } else if meta.is_file() {
            out.push(path.to_owned());
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        walk(p, &mut out)?;
    }
    Ok(out)
}

struct Row {
    path: PathBuf,
    document_id: uuid::Uuid,
    status: &'static str,
    pages: Option<u32>,
    chunks: Option<usize>,
    error: Option<String>,
    /// How its pages were read (pages read by OCR, pages without text).
    notice: Option<String>,
}

/// What an ingest run came to.
pub struct Summary {
    pub files: Vec<PathBuf>,
    pub pages: u32,
    pub chunks: usize,
    pub seconds: f64,
    pub stages: lectern_ingest::pipeline::StageTimings,
}

pub async fn run(
    ctx: &Local,
    workspace: &str,
    paths: &[PathBuf],
    json_out: bool,
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let files = collect(paths)?;
    let store = &ctx.store;
    // The operator's own workspace of that name first: one made here, with no owner account.
    let ws = match store
        .find_workspace_by_name(NameScope::Operator, workspace)
        .await?
    {
        Some(ws) => ws,
        None => store.create_workspace(workspace, None).await?,
    };
    let ingestor = ctx.ingestor()?;
    let bar = if json_out || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(files.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {bar:30} {pos}/{len} {wide_msg}")
            .expect("template"),
    );

    let mut rows = Vec::with_capacity(files.len());
    let mut stages = lectern_ingest::pipeline::StageTimings::default();
    for path in &files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        bar.set_message(format!("reading {name}"));
        let submitted = ingestor.submit_path(ws.id, &name, path).await?;
        let doc = submitted.document();
        let (status, error) = match &submitted {
            Submitted::Queued { .. } | Submitted::NewVersion { .. } => ("queued", None),
            Submitted::Unchanged { .. } => ("unchanged", None),
            Submitted::Rejected { document } => ("failed", document.error_message.clone()),
        };
        if status != "queued" {
            bar.inc(1);
        }
        rows.push(Row {
            path: path.clone(),
            document_id: doc.id,
            status,
            pages: doc.pages.map(|p| p as u32),
            chunks: None,
            error,
            notice: None,
        });
    }
    ingestor
        .run_until_idle(|p| {
            bar.inc(1);
            stages.parse += p.timings.parse;
            stages.chunk += p.timings.chunk;
            stages.embed += p.timings.embed;
            stages.index += p.timings.index;
            if let Some(row) = rows
                .iter_mut()
                .find(|r| r.document_id == p.document_id && r.status == "queued")
            {
                match &p.outcome {
                    Outcome::Indexed {
                        pages,
                        chunks,
                        notice,
                    } => {
                        row.status = "ingested";
                        row.pages = Some(*pages);
                        row.chunks = Some(*chunks);
                        row.notice = notice.clone();
                    }
                    Outcome::Failed { reason } => {
                        row.status = "failed";
                        row.error = Some(reason.clone());
                    }
                    Outcome::WillRetry { reason } => {
                        row.status = "retrying";
                        row.error = Some(reason.clone());
                    }
                }
                bar.set_message(format!("{} {}", row.status, row.path.display()));
            }
        })
        .await?;
    bar.finish_and_clear();

    let seconds = started.elapsed().as_secs_f64();
    let count = |s: &str| rows.iter().filter(|r| r.status == s).count();
    let pages: u32 = rows
        .iter()
        .filter(|r| r.status == "ingested")
        .filter_map(|r| r.pages)
        .sum();
    let chunks: usize = rows.iter().filter_map(|r| r.chunks).sum();
    if json_out {
        let documents: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({"path": r.path, "document_id": r.document_id, "status": r.status,
                       "pages": r.pages, "chunks": r.chunks, "error": r.error, "notice": r.notice})
            })
            .collect();
        let out = json!({
            "documents": documents,
            "totals": {"ingested": count("ingested"), "unchanged": count("unchanged"), "failed": count("failed"),
                       "retrying": count("retrying"), "pages": pages, "chunks": chunks},
            "seconds": seconds,
            "stage_seconds": {"parse": stages.parse.as_secs_f64(), "chunk": stages.chunk.as_secs_f64(),
                              "embed": stages.embed.as_secs_f64(), "index": stages.index.as_secs_f64()},
        });
        println!("{out}");
    } else {
        println!(
            "{} ingested, {} unchanged, {} failed; {pages} pages, {chunks} chunks in {seconds:.1} s ({:.1} pages/s)",
            count("ingested"),
            count("unchanged"),
            count("failed"),
            pages as f64 / seconds.max(1e-9)
        );
        println!(
            "time by stage: parse {:.1} s, chunk {:.1} s, embed {:.1} s, index {:.1} s",
            stages.parse.as_secs_f64(),
            stages.chunk.as_secs_f64(),
            stages.embed.as_secs_f64(),
            stages.index.as_secs_f64()
        );
        for r in rows
            .iter()
            .filter(|r| r.status == "failed" || r.status == "retrying")
        {
            println!(
                "  {} {}: {}",
                r.status,
                r.path.display(),
                r.error.as_deref().unwrap_or("")
            );
        }
        for r in &rows {
            if let Some(notice) = &r.notice {
                println!("  {}: {notice}", r.path.display());
            }
        }
    }
    Ok(Summary {
        files,
        pages,
        chunks,
        seconds,
        stages,
    })
}
