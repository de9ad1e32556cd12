//! Synced sources: a folder on the server's disk (web sites later), read again at every
//! sync so that the workspace holds exactly its files.
//!
//! A sync lists the folder (recursively; include and exclude globs; hidden entries left
//! out; a symbolic link followed only to a file inside the folder) and compares it with the
//! source's documents by key, the path relative to the folder:
//! - the size and modification time recorded for the key: unchanged, not even read;
//! - otherwise the file is hashed (SHA-256): the same content is only recorded as seen,
//!   other content becomes the next version of the key's document (indexed before the old
//!   version is removed, as for an upload);
//! - a new key whose content is that of a document whose key is gone is a rename: the
//!   document takes the new key, name and title and keeps its chunks and index points;
//! - any other new key becomes a new document, and a document whose key is gone is deleted
//!   with its index points and originals.
//!
//! New files and new versions go through the upload pipeline (stored original, document
//! row and job in one transaction), and the ingest workers index them as they index
//! uploads. Each step is committed on its own, so a sync that stops midway (a crash, a
//! lost lease) is simply run again by the next claim: what was done is then found done.
//!
//! Safety: a folder must lie, its symbolic links resolved, inside a directory an
//! administrator allowed (`ingest.source_roots`; none by default, and then folder sources
//! are refused), and only site administrators add one. The check is made again at every
//! sync, and a link inside the folder that leads out of it is never followed.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use lectern_api::ingest::{CreateSource, FolderSettings, SourceOut, SyncResult, UpdateSource};
use lectern_core::{Error, Result, WorkspaceId};
use lectern_store::entity::{document, source};
use lectern_store::{NewSource, SourceChanges, SourceFile, source_kind, status};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::pipeline::{
    FileIdentity, Ingestor, JobError, SourceEntry, Stage, Submitted, hex, over_the_limit,
    title_from,
};

/// Notes on skipped files kept in a sync's result; the rest are only counted.
const MAX_NOTES: usize = 50;

/// A modification time this close to the start of a sync is not recorded: the file may
/// still be changing within the file system's clock resolution, and the next sync must
/// read it again rather than trust a time that a later write could repeat.
const RACY_NS: i64 = 2_000_000_000;

/// Bytes read at a time when hashing a file.
const HASH_PIECE: usize = 256 * 1024;

/// What one sync came to.
#[derive(Debug, Clone)]
pub struct Synced {
    pub source_id: Uuid,
    pub name: String,
    pub outcome: SyncOutcome,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SyncOutcome {
    Done(SyncResult),
    /// The source itself is the problem (its folder gone, or no longer allowed): recorded
    /// as the last sync's error; the next one runs as scheduled.
    Failed {
        reason: String,
    },
    /// A transient failure (the database or the index down): queued again with backoff.
    WillRetry {
        reason: String,
    },
}

impl Synced {
    /// One line in the service's log.
    pub fn log(&self) {
        match &self.outcome {
            SyncOutcome::Done(r) => tracing::info!(
                source = %self.source_id,
                added = r.added,
                changed = r.changed,
                renamed = r.renamed,
                deleted = r.deleted,
                unchanged = r.unchanged,
                failed = r.failed,
                skipped = r.skipped_total,
                seconds = r.seconds,
                "source synced"
            ),
            SyncOutcome::Failed { reason } => {
                tracing::warn!(source = %self.source_id, reason, "source sync failed")
            }
            SyncOutcome::WillRetry { reason } => {
                tracing::warn!(source = %self.source_id, reason, "source sync will be retried")
            }
        }
    }
}

/// A source as the API and the command line show it, with the number of documents it owns.
pub fn source_view(s: source::Model, documents: u64) -> SourceOut {
    SourceOut {
        id: s.id,
        workspace_id: s.workspace_id,
        name: s.name,
        kind: s.kind,
        settings: s.settings,
        interval_secs: s.interval_secs.map(|i| i.max(0) as u64),
        next_sync_at: (s.sync_state == lectern_store::sync_state::QUEUED)
            .then_some(s.run_after)
            .flatten(),
        state: s.sync_state,
        last_sync_at: s.last_sync_at,
        // A result recorded by another version of Lectern that this one cannot read is
        // left out rather than failing the whole answer.
        last_result: s
            .last_result
            .and_then(|r| serde_json::from_value::<SyncResult>(r).ok()),
        last_error: s.last_error,
        documents,
        created_at: s.created_at,
    }
}

/// A source's settings as they are stored, checked ([`Ingestor::checked_settings`]).
pub(crate) struct CheckedSettings {
    pub(crate) settings: serde_json::Value,
    /// The name a new source takes when none is given: the folder's own name, or the
    /// site's host.
    pub(crate) default_name: String,
}

impl Ingestor {
    /// Adds a source to the workspace, its settings checked ([`Ingestor::checked_settings`])
    /// and stored as checked; its first sync is queued at once. Who may add one is the
    /// caller's to check (site administrators).
    pub async fn add_source(
        &self,
        workspace: WorkspaceId,
        new: &CreateSource,
    ) -> Result<source::Model> {
        let checked = self.checked_settings(&new.kind, &new.settings).await?;
        self.store()
            .create_source(NewSource {
                workspace_id: workspace,
                name: new.name.clone().unwrap_or(checked.default_name),
                kind: new.kind.clone(),
                settings: checked.settings,
                interval_secs: new.interval_secs,
            })
            .await
    }

    /// Changes a source's name, schedule or settings. The settings given are merged into
    /// the current ones (a key given replaces its value, one given as `null` goes back to
    /// its default) and the result is checked exactly as when a source is added
    /// ([`Ingestor::checked_settings`]), so that a folder moved or a start URL changed is
    /// held to the same rules. The next sync applies them: a file or page the source no
    /// longer takes is deleted then, as one gone from the folder or the site. Who may
    /// change one is the caller's to check (site administrators, as for adding).
    pub async fn edit_source(
        &self,
        source: &source::Model,
        edit: &UpdateSource,
    ) -> Result<source::Model> {
        let settings = match &edit.settings {
            Some(given) => {
                let mut given = given.clone();
                // A web site's new start URL without a prefix: a prefix that was only the
                // old URL's default follows the new URL (kept, it would bound the crawl
                // to the old place, or refuse the new URL as outside it).
                if source.kind == source_kind::WEB
                    && given.get("url").is_some()
                    && given.get("prefix").is_none()
                    && stored_prefix_is_default(&source.settings)
                    && let Some(changes) = given.as_object_mut()
                {
                    changes.insert("prefix".into(), serde_json::Value::Null);
                }
                let merged = merge_settings(&source.settings, &given)?;
                Some(self.checked_settings(&source.kind, &merged).await?.settings)
            }
            None => None,
        };
        self.store()
            .update_source(
                source.id,
                SourceChanges {
                    name: edit.name.clone(),
                    settings,
                    interval_secs: edit.interval_secs,
                },
            )
            .await
    }

    /// Checks a source's settings for its kind, the one check for adding a source and for
    /// changing one: a folder must lie inside an allowed root (its path is stored resolved)
    /// and its globs must be valid; a web site's URL, prefix and limits must be valid and
    /// its address public ([`Ingestor::checked_web_settings`]).
    pub(crate) async fn checked_settings(
        &self,
        kind: &str,
        settings: &serde_json::Value,
    ) -> Result<CheckedSettings> {
        match kind {
            source_kind::WEB => self.checked_web_settings(settings).await,
            source_kind::FOLDER => self.checked_folder_settings(settings),
            other => Err(Error::Invalid(format!(
                "unknown source kind {other:?}: Lectern syncs \"folder\" and \"web\" sources"
            ))),
        }
    }

    fn checked_folder_settings(&self, settings: &serde_json::Value) -> Result<CheckedSettings> {
        let settings = folder_settings(settings).map_err(Error::Invalid)?;
        Filter::new(&settings.include, &settings.exclude)?;
        let folder = resolve_folder(&self.source_roots, &settings.path)?;
        let path = folder
            .to_str()
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "the folder {} has a path that is not UTF-8",
                    folder.display()
                ))
            })?
            .to_owned();
        let default_name = folder
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("folder")
            .to_owned();
        let settings = serde_json::to_value(FolderSettings { path, ..settings })
            .map_err(|e| Error::internal("cannot store the source's settings", e))?;
        Ok(CheckedSettings {
            settings,
            default_name,
        })
    }

    /// Removes a source and every document it owns (their index points, chunk rows and
    /// originals too); the number of documents deleted. The source is marked first, so no
    /// sync starts and a running one stops; a removal cut short (a crash) leaves it listed
    /// as `deleting`, and removing it again finishes the work.
    pub async fn remove_source(&self, source: &source::Model) -> Result<u64> {
        let store = self.store();
        store.mark_source_deleting(source.id).await?;
        let mut deleted = 0;
        loop {
            // Again until none is left: a sync that was running may have added one
            // before it noticed.
            let documents = store.source_documents(source.id).await?;
            if documents.is_empty() {
                break;
            }
            for doc in &documents {
                self.delete(doc).await?;
                deleted += 1;
            }
        }
        store.delete_source_row(source.id).await?;
        Ok(deleted)
    }

    /// Claims and runs one due sync; `None` when none is due. This is the worker's step
    /// for sources: tests drive it directly instead of sleeping.
    pub async fn process_next_sync(&self) -> Result<Option<Synced>> {
        let Some(source) = self.store().claim_next_sync(self.lease).await? else {
            return Ok(None);
        };
        if self.crash_point(Stage::Claimed) {
            return Err(Error::internal_msg("simulated crash after claiming a sync"));
        }
        let outcome = match self.sync(&source).await {
            Ok(Some(result)) => {
                let recorded = serde_json::to_value(&result)
                    .map_err(|e| Error::internal("cannot record a sync's result", e))?;
                self.store().complete_sync(&source, recorded).await?;
                SyncOutcome::Done(result)
            }
            Ok(None) => return Err(Error::internal_msg("simulated crash in a sync")),
            Err(JobError::Permanent(reason)) => {
                self.store()
                    .fail_sync(&source, &reason, false, Duration::ZERO, self.max_attempts)
                    .await?;
                SyncOutcome::Failed { reason }
            }
            Err(JobError::Other(e)) => {
                let reason = e.to_string();
                let backoff = Duration::from_secs(5 * 2u64.pow(source.attempts.clamp(0, 8) as u32));
                let retrying = self
                    .store()
                    .fail_sync(
                        &source,
                        &reason,
                        e.is_transient(),
                        backoff,
                        self.max_attempts,
                    )
                    .await?;
                if retrying {
                    SyncOutcome::WillRetry { reason }
                } else {
                    SyncOutcome::Failed { reason }
                }
            }
        };
        Ok(Some(Synced {
            source_id: source.id,
            name: source.name.clone(),
            outcome,
        }))
    }

    /// One sync of a claimed source (see the module doc). `Ok(None)`: a simulated crash.
    async fn sync(&self, source: &source::Model) -> Result<Option<SyncResult>, JobError> {
        let started = Instant::now();
        if source.kind == source_kind::WEB {
            let run = SyncRun {
                ingestor: self,
                source,
                result: SyncResult::default(),
                last_beat: Instant::now(),
                racy_after: 0,
            };
            let crawled = self.crawl(run).await?;
            return Ok(crawled.map(|mut result| {
                result.seconds = started.elapsed().as_secs_f64();
                result
            }));
        }
        if source.kind != source_kind::FOLDER {
            return Err(JobError::Permanent(format!(
                "unknown source kind {:?}",
                source.kind
            )));
        }
        let settings = folder_settings(&source.settings).map_err(JobError::Permanent)?;
        let filter = Filter::new(&settings.include, &settings.exclude)
            .map_err(|e| JobError::Permanent(e.to_string()))?;
        let roots = self.source_roots.clone();
        // The folder is checked against the allowed roots again: the setting may have
        // changed, or the path been replaced with a link elsewhere.
        let listing =
            tokio::task::spawn_blocking(move || -> std::result::Result<Listing, String> {
                let root = resolve_folder(&roots, &settings.path).map_err(|e| e.to_string())?;
                list_folder(&root, &filter)
                    .map_err(|e| format!("the folder {} cannot be read: {e}", root.display()))
            })
            .await
            .map_err(|e| Error::internal("the folder listing task failed", e))?
            .map_err(JobError::Permanent)?;
        let Listing {
            files,
            skipped,
            unreadable,
        } = listing;

        let store = self.store();
        let now_ns = epoch_ns(SystemTime::now());
        let mut run = SyncRun {
            ingestor: self,
            source,
            result: SyncResult::default(),
            last_beat: Instant::now(),
            racy_after: now_ns.saturating_sub(RACY_NS),
        };
        for note in skipped {
            run.skip(note);
        }
        let mut by_key: HashMap<String, document::Model> = store
            .source_documents(source.id)
            .await?
            .into_iter()
            .filter_map(|d| Some((d.source_key.clone()?, d)))
            .collect();
        // A folder that lists empty while the source holds documents is far more often an
        // unmounted disk or a share that went away than a folder emptied on purpose:
        // nothing is deleted, and the sync fails with the reason.
        if files.is_empty() && !by_key.is_empty() {
            return Err(JobError::Permanent(format!(
                "the folder lists no file that the source takes, but the source holds {} documents; nothing was deleted (is the disk or share mounted?). To empty the workspace of them, remove the source",
                by_key.len()
            )));
        }

        // First pass: what each listed file is. Nothing is written yet but the times of
        // files found unchanged.
        let max = self.max_file_bytes();
        let mut changed: Vec<(Found, document::Model)> = Vec::new();
        let mut fresh: Vec<(Found, Option<String>)> = Vec::new();
        for found in files {
            run.beat(false).await?;
            let Some(doc) = by_key.remove(&found.key) else {
                // New here: hashed, to find a rename (a file over the limit is refused
                // unread).
                let sha = if found.size > max {
                    None
                } else {
                    match hash_file(found.path.clone(), found.identity).await {
                        Ok(sha) => Some(sha),
                        Err(e) => {
                            run.skip(format!("{}: {e}", found.key));
                            continue;
                        }
                    }
                };
                fresh.push((found, sha));
                continue;
            };
            if doc.size_bytes == found.size as i64 && doc.source_mtime_ns == Some(found.mtime_ns) {
                run.result.unchanged += 1;
                continue;
            }
            if found.size > max {
                if doc.status == status::FAILED && doc.size_bytes == found.size as i64 {
                    // Refused for its size before, and still as large.
                    store
                        .mark_source_file_seen(doc.id, run.seen(found.mtime_ns))
                        .await?;
                    run.result.unchanged += 1;
                } else {
                    changed.push((found, doc));
                }
                continue;
            }
            match hash_file(found.path.clone(), found.identity).await {
                Ok(sha) if sha == doc.sha256 => {
                    // Touched, not changed: its time is recorded, so that the next sync
                    // need not read it.
                    store
                        .mark_source_file_seen(doc.id, run.seen(found.mtime_ns))
                        .await?;
                    run.result.unchanged += 1;
                }
                Ok(_) => changed.push((found, doc)),
                // The document stays as it was: the file is still there.
                Err(e) => run.skip(format!("{}: {e}", found.key)),
            }
        }

        // The documents left have lost their file, except those under a folder that
        // could not be read this time: they are kept until it can.
        let mut gone: HashMap<Uuid, document::Model> = by_key
            .into_values()
            .filter(|d| {
                let key = d.source_key.as_deref().unwrap_or_default();
                !unreadable.iter().any(|dir| within(key, dir))
            })
            .map(|d| (d.id, d))
            .collect();
        let mut gone_by_content: HashMap<String, Vec<Uuid>> = HashMap::new();
        for doc in gone.values() {
            if !doc.sha256.is_empty() {
                gone_by_content
                    .entry(doc.sha256.clone())
                    .or_default()
                    .push(doc.id);
            }
        }

        // Second pass: renames, new files, new versions, then deletions. Each is
        // committed on its own; the lease is renewed before each, so that a source being
        // removed stops its sync before it records another file.
        for (found, sha) in fresh {
            run.beat(true).await?;
            let moved = match &sha {
                Some(sha) => gone_by_content
                    .get_mut(sha)
                    .and_then(Vec::pop)
                    .and_then(|id| gone.remove(&id)),
                None => None,
            };
            match moved {
                Some(doc) => {
                    let file = SourceFile {
                        source_id: source.id,
                        key: found.key.clone(),
                        mtime_ns: run.seen(found.mtime_ns),
                        etag: None,
                        last_modified: None,
                    };
                    let name = file_name_of(&found.key);
                    match store
                        .rename_source_document(doc.id, &file, name, &title_from(name))
                        .await
                    {
                        Ok(()) => run.result.renamed += 1,
                        Err(e) => run.file_failed(&found.key, e)?,
                    }
                }
                None => self.take_file(&mut run, &found, None).await?,
            }
            if self.crash_point(Stage::SourceFile) {
                return Ok(None);
            }
        }
        for (found, doc) in &changed {
            run.beat(true).await?;
            self.take_file(&mut run, found, Some(doc)).await?;
            if self.crash_point(Stage::SourceFile) {
                return Ok(None);
            }
        }
        if !self.delete_gone(&mut run, gone.into_values()).await? {
            return Ok(None);
        }
        run.result.seconds = started.elapsed().as_secs_f64();
        Ok(Some(run.result))
    }

    /// Deletes the source's documents whose file or page is gone, each on its own.
    /// `Ok(false)`: a simulated crash stopped it.
    pub(crate) async fn delete_gone(
        &self,
        run: &mut SyncRun<'_>,
        gone: impl IntoIterator<Item = document::Model>,
    ) -> Result<bool, JobError> {
        for doc in gone {
            run.beat(true).await?;
            match self.delete(&doc).await {
                Ok(()) => run.result.deleted += 1,
                Err(e) => run.file_failed(doc.source_key.as_deref().unwrap_or_default(), e)?,
            }
            if self.crash_point(Stage::SourceFile) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Reads a new or changed file into the pipeline: a new document of its key, the next
    /// version of `existing`, or a failed document with the reason.
    async fn take_file(
        &self,
        run: &mut SyncRun<'_>,
        found: &Found,
        existing: Option<&document::Model>,
    ) -> Result<(), JobError> {
        let entry = SourceEntry {
            workspace: run.source.workspace_id,
            file: SourceFile {
                source_id: run.source.id,
                key: found.key.clone(),
                mtime_ns: run.seen(found.mtime_ns),
                etag: None,
                last_modified: None,
            },
            file_name: file_name_of(&found.key),
            existing,
        };
        let submitted = match self.receive_path(&found.path, Some(found.identity)).await {
            Ok(Ok(incoming)) => self.submit_source_file(&entry, incoming).await,
            Ok(Err(size)) => {
                let reason = over_the_limit(size, self.max_file_bytes());
                self.refuse_source_file(&entry, size, String::new(), &reason)
                    .await
                    .map(|document| Submitted::Rejected { document })
            }
            Err(e) => Err(e),
        };
        match submitted {
            Ok(Submitted::Queued { .. }) => run.result.added += 1,
            Ok(Submitted::NewVersion { .. }) => run.result.changed += 1,
            Ok(Submitted::Rejected { .. }) => run.result.failed += 1,
            Ok(Submitted::Unchanged { .. }) => run.result.unchanged += 1,
            Err(e) => run.file_failed(&found.key, e)?,
        }
        Ok(())
    }
}

/// A sync under way: its claim, its counts, and when its lease was last renewed.
pub(crate) struct SyncRun<'a> {
    pub(crate) ingestor: &'a Ingestor,
    pub(crate) source: &'a source::Model,
    pub(crate) result: SyncResult,
    pub(crate) last_beat: Instant,
    /// Modification times after this (ns since the epoch) are too recent to record.
    pub(crate) racy_after: i64,
}

impl SyncRun<'_> {
    /// Renews the lease when a third of it has passed, or at once with `now` (before a
    /// change is recorded). An error means the sync is no longer this worker's: stop.
    pub(crate) async fn beat(&mut self, now: bool) -> Result<(), JobError> {
        if now || self.last_beat.elapsed() > self.ingestor.lease / 3 {
            self.ingestor
                .store()
                .heartbeat_sync(self.source, self.ingestor.lease)
                .await?;
            self.last_beat = Instant::now();
        }
        Ok(())
    }

    /// The modification time to record for a file read now: none when too recent.
    fn seen(&self, mtime_ns: i64) -> Option<i64> {
        (mtime_ns <= self.racy_after).then_some(mtime_ns)
    }

    pub(crate) fn skip(&mut self, note: String) {
        self.result.skipped_total += 1;
        if self.result.skipped.len() < MAX_NOTES {
            self.result.skipped.push(note);
        }
    }

    /// One file could not be recorded. A transient failure (the database or the index
    /// down) or an internal one stops the sync, to be retried; any other is noted, and the
    /// sync goes on with the next file (the next sync tries this one again).
    pub(crate) fn file_failed(&mut self, key: &str, e: Error) -> Result<(), JobError> {
        if e.is_transient() || matches!(e, Error::Internal { .. }) {
            return Err(JobError::Other(e));
        }
        self.skip(format!("{key}: {e}"));
        Ok(())
    }
}

/// A folder source's settings, as stored or sent.
fn folder_settings(settings: &serde_json::Value) -> std::result::Result<FolderSettings, String> {
    serde_json::from_value(settings.clone()).map_err(|e| {
        format!(
            "a folder source's settings are {{\"path\": \"/absolute/folder\", \"include\": [globs], \"exclude\": [globs]}}: {e}"
        )
    })
}

/// Whether a web source's stored prefix is the one its start URL gives by default.
fn stored_prefix_is_default(settings: &serde_json::Value) -> bool {
    let mut defaulted = settings.clone();
    if let Some(keys) = defaulted.as_object_mut() {
        keys.remove("prefix");
    }
    match (
        crate::crawl::Site::from_settings(settings, true),
        crate::crawl::Site::from_settings(&defaulted, true),
    ) {
        (Ok(stored), Ok(default)) => stored.prefix == default.prefix,
        _ => false,
    }
}

/// `current` settings with the keys of `given` (an object) replaced, and those given as
/// `null` removed (back to their defaults).
fn merge_settings(
    current: &serde_json::Value,
    given: &serde_json::Value,
) -> Result<serde_json::Value> {
    let Some(changes) = given.as_object() else {
        return Err(Error::Invalid(
            "a source's settings are changed with an object of the keys to change, e.g. {\"include\": [\"*.md\"]}".into(),
        ));
    };
    let mut merged = current.as_object().cloned().unwrap_or_default();
    for (key, value) in changes {
        if value.is_null() {
            merged.remove(key);
        } else {
            merged.insert(key.clone(), value.clone());
        }
    }
    Ok(serde_json::Value::Object(merged))
}

/// The folder `path` names, its symbolic links resolved, when it lies inside one of the
/// allowed `roots` (each resolved too). None allowed: folder sources are refused.
pub fn resolve_folder(roots: &[PathBuf], path: &str) -> Result<PathBuf> {
    if roots.is_empty() {
        return Err(Error::Forbidden(
            "folder sources are turned off on this server: an administrator allows them \
             under chosen directories with the setting ingest.source_roots (for example \
             source_roots = [\"/srv/documents\"] in the [ingest] section of the configuration)"
                .into(),
        ));
    }
    let given = Path::new(path.trim());
    if !given.is_absolute() {
        return Err(Error::Invalid(format!(
            "a folder source needs an absolute path, not {path:?}"
        )));
    }
    let folder = std::fs::canonicalize(given)
        .map_err(|e| Error::Invalid(format!("the folder {path:?} cannot be opened: {e}")))?;
    if !folder.is_dir() {
        return Err(Error::Invalid(format!("{path:?} is not a folder")));
    }
    let allowed = roots
        .iter()
        .filter_map(|root| std::fs::canonicalize(root).ok())
        .any(|root| folder.starts_with(root));
    if !allowed {
        let roots: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
        return Err(Error::Forbidden(format!(
            "the folder {} is outside the directories allowed for folder sources \
             (ingest.source_roots: {})",
            folder.display(),
            roots.join(", ")
        )));
    }
    Ok(folder)
}

/// A file the listing found.
#[derive(Debug, Clone)]
struct Found {
    /// The path relative to the folder, `/`-separated.
    key: String,
    /// Where to read it: the file itself, or a link's target inside the folder.
    path: PathBuf,
    size: u64,
    mtime_ns: i64,
    /// The file the listing saw (device and inode): a file read later must still be it,
    /// not a link or folder swapped in meanwhile that leads out of the folder.
    identity: FileIdentity,
}

#[derive(Debug, Default)]
struct Listing {
    /// By key.
    files: Vec<Found>,
    /// Notes on what was left out, and why.
    skipped: Vec<String>,
    /// Keys of folders (or entries) that could not be read: documents under them are
    /// kept, not taken for deleted. `""` stands for the whole folder.
    unreadable: Vec<String>,
}

/// Lists the files of `root` (resolved) that `filter` takes. The folder itself must be
/// readable: a folder gone or unreadable fails the sync, which then deletes nothing.
fn list_folder(root: &Path, filter: &Filter) -> std::io::Result<Listing> {
    let entries = std::fs::read_dir(root)?;
    let mut listing = Listing::default();
    walk(root, "", entries, filter, &mut listing);
    listing.files.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(listing)
}

fn walk(
    root: &Path,
    prefix: &str,
    entries: std::fs::ReadDir,
    filter: &Filter,
    listing: &mut Listing,
) {
    let shown = |key: &str| {
        if key.is_empty() {
            ".".to_owned()
        } else {
            key.to_owned()
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                listing.unreadable.push(prefix.to_owned());
                listing.skipped.push(format!("{}/: {e}", shown(prefix)));
                continue;
            }
        };
        let os_name = entry.file_name();
        let Some(name) = os_name.to_str() else {
            let lossy = os_name.to_string_lossy();
            listing.skipped.push(format!(
                "{}/{lossy}: the name is not UTF-8; skipped",
                shown(prefix)
            ));
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let key = if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}/{name}")
        };
        let path = entry.path();
        let file_type = match entry.file_type() {
            Ok(t) => t,
            Err(e) => {
                listing.unreadable.push(key.clone());
                listing.skipped.push(format!("{key}: {e}"));
                continue;
            }
        };
        if file_type.is_dir() {
            match std::fs::read_dir(&path) {
                Ok(inner) => walk(root, &key, inner, filter, listing),
                Err(e) => {
                    listing.unreadable.push(key.clone());
                    listing.skipped.push(format!("{key}/: {e}"));
                }
            }
            continue;
        }
        if !filter.takes(&key) {
            continue;
        }
        // A link is followed only to a file inside the folder (never out of it, nor to a
        // folder, which could loop).
        let target = if file_type.is_symlink() {
            match std::fs::canonicalize(&path) {
                Ok(target) if target.starts_with(root) => target,
                Ok(_) => {
                    listing.skipped.push(format!(
                        "{key}: a symbolic link out of the folder; not followed"
                    ));
                    continue;
                }
                Err(e) => {
                    listing
                        .skipped
                        .push(format!("{key}: a broken symbolic link ({e})"));
                    continue;
                }
            }
        } else {
            path
        };
        let meta = match std::fs::metadata(&target) {
            Ok(meta) => meta,
            Err(e) => {
                listing.unreadable.push(key.clone());
                listing.skipped.push(format!("{key}: {e}"));
                continue;
            }
        };
        if !meta.is_file() {
            continue;
        }
        listing.files.push(Found {
            key,
            path: target,
            size: meta.len(),
            mtime_ns: meta.modified().map(epoch_ns).unwrap_or(0),
            identity: FileIdentity::of(&meta),
        });
    }
}

/// Whether `key` is `dir` or lies under it (`""`: the whole folder).
fn within(key: &str, dir: &str) -> bool {
    dir.is_empty()
        || key == dir
        || key
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The last component of a key: the file's own name.
fn file_name_of(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

fn epoch_ns(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The SHA-256 of a file, in hex, read in pieces on a blocking thread.
async fn hash_file(path: PathBuf, identity: FileIdentity) -> std::io::Result<String> {
    tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        let mut file = std::fs::File::open(&path)?;
        identity.check(&file.metadata()?)?;
        let mut sha = Sha256::new();
        let mut piece = vec![0; HASH_PIECE];
        loop {
            let n = file.read(&mut piece)?;
            if n == 0 {
                break;
            }
            sha.update(&piece[..n]);
        }
        Ok(hex(&sha.finalize()))
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Include and exclude globs, compiled: which files of a folder a source takes.
///
/// Globs are `globset`'s (`*` and `?` within a path component, `**` for any number of
/// folders, `[a-z]`, `[!a]`, `{a,b}`, `\` quoting). A glob without `/` matches a file's name
/// at any depth; with one, the whole relative path (a leading `/` only anchors it; a
/// trailing `/` means everything under that folder), as in `.gitignore`.
#[derive(Debug, Clone)]
pub struct Filter {
    /// None: no include glob, every file is taken.
    include: Option<GlobSet>,
    exclude: GlobSet,
}

impl Default for Filter {
    fn default() -> Self {
        Self {
            include: None,
            exclude: GlobSet::empty(),
        }
    }
}

impl Filter {
    /// An "invalid" error names a glob that cannot be read, and why.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self> {
        Ok(Self {
            include: if include.is_empty() {
                None
            } else {
                Some(glob_set(include)?)
            },
            exclude: glob_set(exclude)?,
        })
    }

    /// Whether the file at `key` (relative, `/`-separated) is taken: it matches an
    /// include glob (or there is none) and no exclude glob.
    pub fn takes(&self, key: &str) -> bool {
        self.include.as_ref().is_none_or(|set| set.is_match(key)) && !self.exclude.is_match(key)
    }
}

fn glob_set(globs: &[String]) -> Result<GlobSet> {
    let mut set = GlobSetBuilder::new();
    for g in globs {
        let invalid = |why: String| Error::Invalid(format!("the glob {g:?}: {why}"));
        if g.trim().is_empty() {
            return Err(invalid("it is empty".into()));
        }
        let pattern = if let Some(folder) = g.strip_suffix('/') {
            format!("{}/**", folder.trim_start_matches('/'))
        } else if let Some(anchored) = g.strip_prefix('/') {
            anchored.to_owned()
        } else if g.contains('/') {
            g.clone()
        } else {
            format!("**/{g}")
        };
        let glob = GlobBuilder::new(&pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| invalid(e.kind().to_string()))?;
        set.add(glob);
    }
    set.build()
        .map_err(|e| Error::Invalid(format!("the globs: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(include: &[&str], exclude: &[&str]) -> Filter {
        let own = |g: &[&str]| g.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Filter::new(&own(include), &own(exclude)).unwrap()
    }

    #[test]
    fn globs_without_a_slash_match_the_name_at_any_depth() {
        let f = filter(&["*.pdf", "*.{md,markdown}"], &[]);
        assert!(f.takes("a.pdf"));
        assert!(f.takes("deep/in/b.pdf"));
        assert!(f.takes("notes/x.markdown"));
        assert!(!f.takes("a.pdf.txt"));
        assert!(!f.takes("pdf"));
    }

    #[test]
    fn globs_with_a_slash_match_the_whole_path() {
        let f = filter(&["handbook/**/*.md", "/top.txt"], &["handbook/drafts/"]);
        assert!(f.takes("handbook/a.md"), "** spans no folder too");
        assert!(f.takes("handbook/x/y/a.md"));
        assert!(!f.takes("other/handbook/a.md"));
        assert!(f.takes("top.txt"));
        assert!(!f.takes("sub/top.txt"));
        assert!(
            !f.takes("handbook/drafts/wip.md"),
            "a trailing / takes the folder"
        );
        assert!(!f.takes("handbook/drafts/deeper/wip.md"));
    }

    #[test]
    fn stars_stay_within_a_component_and_classes_choose() {
        let f = filter(&["a/*.md"], &[]);
        assert!(f.takes("a/x.md"));
        assert!(!f.takes("a/b/x.md"));
        let f = filter(&["report-[0-9][0-9].pdf", "v?.txt"], &["report-[!1]0.pdf"]);
        assert!(f.takes("report-10.pdf"));
        assert!(!f.takes("report-20.pdf"));
        assert!(!f.takes("report-ab.pdf"));
        assert!(f.takes("v2.txt"));
        assert!(!f.takes("v10.txt"));
        let f = filter(&["[a-]x"], &[]);
        assert!(f.takes("-x") && f.takes("ax") && !f.takes("bx"));
    }

    #[test]
    fn no_include_takes_everything_not_excluded() {
        let f = filter(&[], &["*.tmp", "build/**"]);
        assert!(f.takes("a.md"));
        assert!(!f.takes("x/y.tmp"));
        assert!(!f.takes("build/out/a.md"));
        assert!(f.takes("src/build.md"));
    }

    #[test]
    fn bad_globs_are_refused_with_the_reason() {
        for bad in ["", "a[b", "{a,b", "a}b", "x\\"] {
            let err = Filter::new(&[bad.to_owned()], &[]).unwrap_err().to_string();
            assert!(err.contains("glob"), "{bad}: {err}");
        }
    }

    #[test]
    fn keys_lie_within_folders_by_whole_components() {
        assert!(within("a/b.md", "a"));
        assert!(within("a", "a"));
        assert!(!within("ab/c.md", "a"));
        assert!(within("anything", ""));
        assert_eq!(file_name_of("a/b/c.pdf"), "c.pdf");
        assert_eq!(file_name_of("c.pdf"), "c.pdf");
    }

    #[test]
    fn folders_are_confined_to_the_allowed_roots() {
        let allowed = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let docs = allowed.path().join("docs");
        std::fs::create_dir(&docs).unwrap();
        let roots = vec![allowed.path().to_owned()];
        let path = |p: &Path| p.to_str().unwrap().to_owned();

        let err = resolve_folder(&[], &path(&docs)).unwrap_err();
        assert!(
            matches!(err, Error::Forbidden(_)) && err.to_string().contains("ingest.source_roots"),
            "{err}"
        );
        let resolved = resolve_folder(&roots, &path(&docs)).unwrap();
        assert_eq!(resolved, std::fs::canonicalize(&docs).unwrap());
        let err = resolve_folder(&roots, &path(outside.path())).unwrap_err();
        assert!(matches!(err, Error::Forbidden(_)), "{err}");
        assert!(resolve_folder(&roots, "relative/docs").is_err());
        // `..` and links are resolved before the check: neither leads out.
        let dotted = format!("{}/../{}", path(&docs), "..");
        assert!(resolve_folder(&roots, &dotted).is_err());
        let link = allowed.path().join("escape");
        std::os::unix::fs::symlink(outside.path(), &link).unwrap();
        let err = resolve_folder(&roots, &path(&link)).unwrap_err();
        assert!(matches!(err, Error::Forbidden(_)), "{err}");
    }

    #[test]
    fn listing_skips_hidden_files_and_links_out_of_the_folder() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("sub/.git")).unwrap();
        std::fs::write(r.join("a.md"), "a").unwrap();
        std::fs::write(r.join("sub/b.md"), "bb").unwrap();
        std::fs::write(r.join("sub/.git/config"), "x").unwrap();
        std::fs::write(r.join(".hidden.md"), "h").unwrap();
        std::fs::write(outside.path().join("secret.md"), "s").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.md"), r.join("secret.md")).unwrap();
        std::os::unix::fs::symlink(r.join("a.md"), r.join("alias.md")).unwrap();
        std::os::unix::fs::symlink(r.join("sub"), r.join("loop")).unwrap();
        let root_path = std::fs::canonicalize(r).unwrap();
        let listing = list_folder(&root_path, &Filter::default()).unwrap();
        let keys: Vec<&str> = listing.files.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["a.md", "alias.md", "sub/b.md"]);
        assert_eq!(listing.files[2].size, 2);
        assert!(
            listing
                .skipped
                .iter()
                .any(|n| n.starts_with("secret.md: a symbolic link out of the folder")),
            "{:?}",
            listing.skipped
        );
        assert!(listing.unreadable.is_empty());
    }

    #[tokio::test]
    async fn a_file_swapped_for_a_link_out_of_the_folder_after_listing_is_not_read() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let r = std::fs::canonicalize(root.path()).unwrap();
        std::fs::create_dir_all(r.join("sub")).unwrap();
        std::fs::write(r.join("sub/a.md"), "a").unwrap();
        std::fs::write(outside.path().join("a.md"), "the server's secret").unwrap();
        let listing = list_folder(&r, &Filter::default()).unwrap();
        let found = &listing.files[0];
        assert!(hash_file(found.path.clone(), found.identity).await.is_ok());
        // The folder is swapped for a link to another one between listing and reading.
        std::fs::rename(r.join("sub"), r.join("old")).unwrap();
        std::os::unix::fs::symlink(outside.path(), r.join("sub")).unwrap();
        let err = hash_file(found.path.clone(), found.identity)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("replaced"), "{err}");
    }
}
