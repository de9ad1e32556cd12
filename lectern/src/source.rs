//! `lectern source ...`: synced sources from the command line, on this machine's data.
//! `add` and `sync` run the sync here (and any other one that is due), then index what it
//! queued, through the same pipeline the ingest service runs; `lectern serve` runs them in
//! its background workers instead, on their schedule. `edit` changes a source, checked as
//! `add` checks it; the next sync applies the change.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use clap::Subcommand;
use lectern::Local;
use lectern_api::ingest::{
    CreateSource, FOLDER_SOURCE, FolderSettings, SourceOut, UpdateSource, WEB_SOURCE, WebSettings,
};
use lectern_ingest::pipeline::{Ingestor, Outcome};
use lectern_ingest::source::{SyncOutcome, source_view};
use lectern_store::entity::{source, workspace};
use lectern_store::{NameScope, Store};
use serde_json::json;

#[derive(Subcommand, Debug)]
pub enum SourceCommand {
    /// Add a folder of this server (or, with `--web URL`, a web site) as a source of a
    /// workspace (created if missing), then sync it: its files (or pages) become
    /// documents, and later syncs keep them in step with it. The folder must lie under
    /// one of `ingest.source_roots`.
    Add {
        #[arg(long, value_name = "NAME")]
        workspace: String,
        /// The source's name in the workspace (default: the folder's name).
        #[arg(long)]
        name: Option<String>,
        /// Take only files matching this glob (repeat; default: every file). Without `/` it
        /// matches the file name at any depth (`*.pdf`), with one the path in the folder.
        #[arg(long = "include", value_name = "GLOB")]
        include: Vec<String>,
        /// Leave out files matching this glob (repeat), e.g. `drafts/**`.
        #[arg(long = "exclude", value_name = "GLOB")]
        exclude: Vec<String>,
        /// Sync again every SECS seconds while `lectern serve` runs (default: only when asked).
        #[arg(long = "every", value_name = "SECS")]
        every: Option<u64>,
        /// Add it without syncing now (`lectern serve` syncs it at once).
        #[arg(long)]
        no_sync: bool,
        /// Print one JSON object instead of the summary.
        #[arg(long)]
        json: bool,
        /// Crawl this web site instead of a folder: pages within `--prefix`, from this URL.
        #[arg(long, value_name = "URL", conflicts_with_all = ["path", "include", "exclude"])]
        web: Option<String>,
        /// Only URLs starting with this are fetched (default: the start URL's directory).
        #[arg(long, value_name = "URL", requires = "web")]
        prefix: Option<String>,
        /// Links followed from the start page at most (default 5).
        #[arg(long, value_name = "N", requires = "web")]
        depth: Option<u32>,
        /// Pages fetched at most in one crawl (default 500).
        #[arg(long, value_name = "N", requires = "web")]
        pages: Option<u32>,
        #[arg(value_name = "FOLDER", required_unless_present = "web")]
        path: Option<PathBuf>,
    },
    /// Change a source: its name, schedule, or settings (a folder's globs; a web site's
    /// prefix, depth and page limit). The next sync applies them: files or pages the
    /// source no longer takes are removed then.
    Edit {
        #[arg(long, value_name = "NAME")]
        workspace: String,
        /// A new name in the workspace.
        #[arg(long)]
        name: Option<String>,
        /// Take only files matching these globs (repeat), instead of the current ones.
        #[arg(long = "include", value_name = "GLOB", conflicts_with = "all_files")]
        include: Vec<String>,
        /// Take every file (no include glob) from now on.
        #[arg(long)]
        all_files: bool,
        /// Leave out files matching these globs (repeat), instead of the current ones.
        #[arg(long = "exclude", value_name = "GLOB", conflicts_with = "no_exclude")]
        exclude: Vec<String>,
        /// Leave out no file (hidden ones still are) from now on.
        #[arg(long)]
        no_exclude: bool,
        /// Sync every SECS seconds while `lectern serve` runs.
        #[arg(long = "every", value_name = "SECS", conflicts_with = "when_asked")]
        every: Option<u64>,
        /// Sync only when asked from now on.
        #[arg(long)]
        when_asked: bool,
        /// A web site: fetch only URLs starting with this (`""`: the start URL's directory).
        #[arg(long, value_name = "URL")]
        prefix: Option<String>,
        /// A web site: links followed from the start page at most.
        #[arg(long, value_name = "N")]
        depth: Option<u32>,
        /// A web site: pages fetched at most in one crawl.
        #[arg(long, value_name = "N")]
        pages: Option<u32>,
        /// Print one JSON object instead of the summary.
        #[arg(long)]
        json: bool,
        /// The source's name or id.
        #[arg(value_name = "SOURCE")]
        source: String,
    },
    /// List the sources (of one workspace, or of all) with their last sync.
    List {
        #[arg(long, value_name = "NAME")]
        workspace: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Sync a source now: new and changed files are indexed, deleted ones removed.
    Sync {
        #[arg(long, value_name = "NAME")]
        workspace: String,
        #[arg(long)]
        json: bool,
        /// The source's name or id.
        #[arg(value_name = "SOURCE")]
        source: String,
    },
    /// Remove a source and every document it owns.
    Remove {
        #[arg(long, value_name = "NAME")]
        workspace: String,
        #[arg(value_name = "SOURCE")]
        source: String,
    },
}

pub async fn run(local: &Local, command: SourceCommand) -> anyhow::Result<()> {
    let store = &local.store;
    match command {
        SourceCommand::Add {
            workspace,
            name,
            include,
            exclude,
            every,
            no_sync,
            json,
            web,
            prefix,
            depth,
            pages,
            path,
        } => {
            // The operator's own workspace of that name first, as `lectern ingest` does.
            let ws = match store
                .find_workspace_by_name(NameScope::Operator, &workspace)
                .await?
            {
                Some(ws) => ws,
                None => store.create_workspace(&workspace, None).await?,
            };
            let new = match (web, path) {
                (Some(url), _) => CreateSource {
                    kind: WEB_SOURCE.into(),
                    name,
                    settings: serde_json::to_value(WebSettings {
                        url,
                        prefix,
                        depth,
                        pages,
                    })?,
                    interval_secs: every,
                },
                (None, Some(path)) => {
                    // Relative to where the command runs; the check against the allowed
                    // roots sees the resolved path.
                    let path = std::path::absolute(&path)
                        .with_context(|| format!("{}: not a usable path", path.display()))?;
                    let settings = FolderSettings {
                        path: path
                            .to_str()
                            .context("the folder's path is not UTF-8")?
                            .to_owned(),
                        include,
                        exclude,
                    };
                    CreateSource {
                        kind: FOLDER_SOURCE.into(),
                        name,
                        settings: serde_json::to_value(settings)?,
                        interval_secs: every,
                    }
                }
                (None, None) => anyhow::bail!("name a FOLDER, or a site with --web URL"),
            };
            let ingestor = local.ingestor()?;
            let added = ingestor.add_source(ws.id, &new).await?;
            if no_sync {
                print_source(store, added, json).await?;
            } else {
                sync_here(store, &ingestor, added, json).await?;
            }
        }
        SourceCommand::Edit {
            workspace,
            name,
            include,
            all_files,
            exclude,
            no_exclude,
            every,
            when_asked,
            prefix,
            depth,
            pages,
            json,
            source,
        } => {
            let ws = workspace_named(store, &workspace).await?;
            let found = source_named(store, &ws, &source).await?;
            let mut settings = serde_json::Map::new();
            if all_files || !include.is_empty() {
                settings.insert("include".into(), json!(include));
            }
            if no_exclude || !exclude.is_empty() {
                settings.insert("exclude".into(), json!(exclude));
            }
            if let Some(prefix) = prefix {
                settings.insert("prefix".into(), json!(prefix));
            }
            if let Some(depth) = depth {
                settings.insert("depth".into(), json!(depth));
            }
            if let Some(pages) = pages {
                settings.insert("pages".into(), json!(pages));
            }
            let edit = UpdateSource {
                name,
                interval_secs: if when_asked {
                    Some(None)
                } else {
                    every.map(Some)
                },
                settings: (!settings.is_empty()).then_some(serde_json::Value::Object(settings)),
            };
            if edit == UpdateSource::default() {
                anyhow::bail!(
                    "nothing to change: give --name, --every or --when-asked, --include, --exclude, --prefix, --depth or --pages"
                );
            }
            let changed = local.ingestor()?.edit_source(&found, &edit).await?;
            let name = changed.name.clone();
            print_source(store, changed, json).await?;
            if !json {
                println!(
                    "the next sync applies it (now: lectern source sync --workspace {:?} {name:?})",
                    ws.name
                );
            }
        }
        SourceCommand::List { workspace, json } => {
            let workspaces = match workspace {
                Some(name) => vec![workspace_named(store, &name).await?],
                None => store.all_workspaces().await?,
            };
            let mut sources = Vec::new();
            for ws in &workspaces {
                for s in store.list_sources(ws.id).await? {
                    let documents = store.count_source_documents(s.id).await?;
                    sources.push((ws.name.clone(), source_view(s, documents)));
                }
            }
            if json {
                let list: Vec<&SourceOut> = sources.iter().map(|(_, s)| s).collect();
                println!("{}", json!({ "sources": list }));
            } else if sources.is_empty() {
                println!("no sources");
            } else {
                for (ws, s) in &sources {
                    println!("{ws}/{}", describe(s));
                }
            }
        }
        SourceCommand::Sync {
            workspace,
            json,
            source,
        } => {
            let ws = workspace_named(store, &workspace).await?;
            let found = source_named(store, &ws, &source).await?;
            let queued = store.request_sync(found.id).await?;
            sync_here(store, &local.ingestor()?, queued, json).await?;
        }
        SourceCommand::Remove { workspace, source } => {
            let ws = workspace_named(store, &workspace).await?;
            let found = source_named(store, &ws, &source).await?;
            let deleted = local.ingestor()?.remove_source(&found).await?;
            println!(
                "removed the source {} of {} and its {deleted} documents",
                found.name, ws.name
            );
        }
    }
    Ok(())
}

async fn workspace_named(store: &Store, name: &str) -> anyhow::Result<workspace::Model> {
    store
        .find_workspace_by_name(NameScope::Operator, name)
        .await?
        .with_context(|| format!("no workspace named {name:?}"))
}

async fn source_named(
    store: &Store,
    ws: &workspace::Model,
    name: &str,
) -> anyhow::Result<source::Model> {
    store.find_source(ws.id, name).await?.with_context(|| {
        format!(
            "workspace {:?} has no source named {name:?} (see `lectern source list`)",
            ws.name
        )
    })
}

/// Runs the due syncs here (the queued `source` among them), then indexes the documents
/// they queued, and prints how it went.
async fn sync_here(
    store: &Store,
    ingestor: &Ingestor,
    source: source::Model,
    json_out: bool,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut ours = None;
    while let Some(synced) = ingestor.process_next_sync().await? {
        if synced.source_id == source.id {
            ours = Some(synced.outcome);
        } else {
            synced.log();
        }
    }
    let mut indexed = 0usize;
    let mut failed = Vec::new();
    ingestor
        .run_until_idle(|p| match &p.outcome {
            Outcome::Indexed { .. } => indexed += 1,
            Outcome::Failed { reason } | Outcome::WillRetry { reason } => {
                failed.push((p.document_id, reason.clone()))
            }
        })
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    let now = store
        .source(source.id)
        .await?
        .context("the source was removed meanwhile")?;
    let documents = store.count_source_documents(now.id).await?;
    let view = source_view(now, documents);
    let error = match &ours {
        Some(SyncOutcome::Failed { reason } | SyncOutcome::WillRetry { reason }) => {
            Some(reason.clone())
        }
        Some(SyncOutcome::Done(_)) => None,
        None => Some("the sync did not run here: another process holds it".to_owned()),
    };
    let result = match ours {
        Some(SyncOutcome::Done(result)) => Some(result),
        _ => None,
    };
    // The documents that failed, by the name of their file in the source.
    let mut failures = Vec::new();
    for (id, reason) in &failed {
        let key = store
            .document(*id)
            .await?
            .and_then(|d| d.source_key.or(Some(d.file_name)))
            .unwrap_or_else(|| id.to_string());
        failures.push((key, reason.clone()));
    }
    if json_out {
        let failures: Vec<_> = failures
            .iter()
            .map(|(key, reason)| json!({"key": key, "error": reason}))
            .collect();
        println!(
            "{}",
            json!({
                "source": view,
                "result": result,
                "error": error,
                "indexed": indexed,
                "failed": failures,
                "seconds": seconds,
            })
        );
        return Ok(());
    }
    match (&result, &error) {
        (Some(r), _) => {
            println!(
                "{}: {} added, {} changed, {} renamed, {} deleted, {} unchanged, {} refused; \
                 {indexed} documents indexed, {} failed, in {seconds:.1} s",
                view.name,
                r.added,
                r.changed,
                r.renamed,
                r.deleted,
                r.unchanged,
                r.failed,
                failures.len()
            );
            for note in &r.skipped {
                println!("  skipped {note}");
            }
        }
        (None, Some(error)) => println!("{}: the sync failed: {error}", view.name),
        (None, None) => {}
    }
    for (key, reason) in &failures {
        println!("  failed {key}: {reason}");
    }
    Ok(())
}

async fn print_source(store: &Store, s: source::Model, json_out: bool) -> anyhow::Result<()> {
    let documents = store.count_source_documents(s.id).await?;
    let view = source_view(s, documents);
    if json_out {
        println!("{}", json!({ "source": view }));
    } else {
        println!("{}", describe(&view));
    }
    Ok(())
}

/// One line: name, folder, state, documents and the last sync.
fn describe(s: &SourceOut) -> String {
    let folder = s.settings["path"]
        .as_str()
        .or_else(|| s.settings["url"].as_str())
        .unwrap_or("?");
    let schedule = s
        .interval_secs
        .map_or_else(|| "when asked".to_owned(), |i| format!("every {i} s"));
    let last = match (&s.last_result, &s.last_error, s.last_sync_at) {
        (_, Some(error), Some(at)) => format!("last sync {at}: failed: {error}"),
        (Some(r), None, Some(at)) => format!(
            "last sync {at}: {} added, {} changed, {} renamed, {} deleted, {} unchanged",
            r.added, r.changed, r.renamed, r.deleted, r.unchanged
        ),
        _ => "never synced".to_owned(),
    };
    format!(
        "{} ({} {folder}, {schedule}): {}, {} documents; {last}",
        s.name, s.kind, s.state, s.documents
    )
}
