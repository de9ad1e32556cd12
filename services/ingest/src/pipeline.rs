//! The ingest pipeline: accept a file (stored original + document row + job, or a clear
//! refusal recorded as a failed document), then workers claim jobs and run parse, chunk,
//! embed and upsert. Every failure ends in the document's status with a reason; nothing
//! brings down the worker or loses the other documents of an upload.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lectern_core::{
    ChunkPoint, DocumentId, DocumentParser, Embedder, Error, InContext, IndexedChunk, ParseError,
    Result, VectorIndex, WorkspaceId,
};
use lectern_runtime::Context;
use lectern_search::SearchAdapters;
use lectern_store::entity::{document, ingest_job};
use lectern_store::{NewChunk, NewDocument, PagesRead, SourceFile, Store};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncWriteExt, BufWriter};
use uuid::Uuid;

use crate::chunk::{Chunker, ChunkerConfig};
use crate::parse::{Isolation, MediaType, Parsers, detect_media_type, isolate};

/// What became of one submitted file.
#[derive(Debug, Clone)]
pub enum Submitted {
    /// Stored and queued for indexing.
    Queued { document: document::Model },
    /// The same content is already in the workspace: nothing to do.
    Unchanged { document: document::Model },
    /// Changed content under a known name: queued as the next version.
    NewVersion { document: document::Model },
    /// Recorded as a failed document; `document.error_message` says why.
    Rejected { document: document::Model },
}

impl Submitted {
    pub fn document(&self) -> &document::Model {
        match self {
            Self::Queued { document }
            | Self::Unchanged { document }
            | Self::NewVersion { document }
            | Self::Rejected { document } => document,
        }
    }
}

/// A file of a synced source, as a sync hands it to the pipeline.
pub(crate) struct SourceEntry<'a> {
    pub workspace: WorkspaceId,
    pub file: SourceFile,
    /// Its bare name: the last component of its key.
    pub file_name: &'a str,
    /// The source's document of this key, when it has one.
    pub existing: Option<&'a document::Model>,
}

/// What one processed job came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Indexed {
        pages: u32,
        chunks: usize,
        /// How its pages were read, when there is something to say (pages read by OCR,
        /// pages without text).
        notice: Option<String>,
    },
    Failed {
        reason: String,
    },
    /// A transient failure: the job is queued again with backoff.
    WillRetry {
        reason: String,
    },
}

#[derive(Debug, Clone)]
pub struct Processed {
    pub document_id: DocumentId,
    pub job_id: Uuid,
    pub outcome: Outcome,
    pub timings: StageTimings,
}

/// Where one job's time went.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimings {
    pub parse: Duration,
    pub chunk: Duration,
    pub embed: Duration,
    pub index: Duration,
}

pub struct Ingestor {
    store: Store,
    embedder: Arc<dyn Embedder>,
    index: Arc<dyn VectorIndex>,
    parsers: Parsers,
    chunker: Arc<Chunker>,
    originals: PathBuf,
    max_file_bytes: u64,
    pub(crate) max_attempts: i32,
    /// Directories under which folder sources may lie (`ingest.source_roots`).
    pub(crate) source_roots: Vec<PathBuf>,
    /// Whether web sources may reach private addresses (`ingest.crawl_allow_private`).
    pub(crate) crawl_allow_private: bool,
    /// Pages a crawl fetches at once (`ingest.crawl_concurrency`).
    pub(crate) crawl_concurrency: usize,
    /// The crawler's `User-Agent`.
    pub(crate) user_agent: String,
    /// Jobs processed at once by `run_until_idle`.
    workers: usize,
    /// How long a claimed job stays this worker's without a heartbeat.
    pub lease: Duration,
    /// Serialises recording uploads and new versions in this process (see `submit_file`).
    placing: tokio::sync::Mutex<()>,
    /// Crash injection for tests: stop (as if killed) after this stage of the next job.
    #[doc(hidden)]
    pub crash_after: std::sync::Mutex<Option<Stage>>,
}

/// Pipeline stages, for crash-injection tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Claimed,
    Parsed,
    Upserted,
    /// A sync recorded its first file (a new document, a new version, a rename or a
    /// deletion), and stops there.
    SourceFile,
}

/// Chunks embedded and upserted together; the lease is renewed after each batch.
const EMBED_BATCH: usize = 64;

/// The folder of the originals directory in which uploads arrive.
const INCOMING_DIR: &str = ".incoming";

/// An incoming file older than this was cut off by a crash: the sweep at start removes it.
pub const INCOMING_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// The first bytes of a file kept for media-type detection: the sniffing reads the first
/// KiB, and `infer` walks the first entries of a ZIP (DOCX), a few KiB at most.
const DETECT_HEAD: usize = 64 * 1024;

/// Bytes gathered before one write to disk: fewer, larger writes for the small chunks an
/// upload arrives in.
const WRITE_BUFFER: usize = 256 * 1024;

/// A file being received: written to a temporary file in the originals directory (so
/// placing it is a rename on one filesystem), hashed and counted as its bytes arrive, so
/// an upload is never held whole in memory. Dropped unfinished (an error, a client gone,
/// a file over the limit), its temporary file is removed.
pub struct Receiving {
    file: BufWriter<tokio::fs::File>,
    temp: TempFile,
    sha256: Sha256,
    size: u64,
    head: Vec<u8>,
}

impl Receiving {
    /// Appends the next bytes of the file.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.sha256.update(bytes);
        self.size += bytes.len() as u64;
        let room = DETECT_HEAD.saturating_sub(self.head.len()).min(bytes.len());
        self.head.extend_from_slice(&bytes[..room]);
        self.file
            .write_all(bytes)
            .await
            .map_err(|e| store_error(&self.temp.path, e))
    }

    /// The whole file received: flushed and synced to disk, for
    /// [`Ingestor::submit_file`].
    pub async fn finish(mut self) -> Result<Incoming> {
        let synced = async {
            self.file.flush().await?;
            self.file.get_ref().sync_all().await
        };
        if let Err(e) = synced.await {
            return Err(store_error(&self.temp.path, e));
        }
        Ok(Incoming {
            file: self.temp,
            sha256: hex(&self.sha256.finalize()),
            size: self.size,
            head: self.head,
        })
    }
}

/// A file received whole and synced to disk, not yet placed: hand it to
/// [`Ingestor::submit_file`]. Dropped instead, its temporary file is removed.
pub struct Incoming {
    file: TempFile,
    /// The SHA-256 of the content, in hex.
    sha256: String,
    size: u64,
    /// The first [`DETECT_HEAD`] bytes, for media-type detection.
    head: Vec<u8>,
}

/// A temporary file's path: the file is removed when this is dropped, unless it was
/// moved into place ([`TempFile::keep`]), so no error path or abandoned upload leaves a
/// stray file behind.
struct TempFile {
    path: PathBuf,
    placed: bool,
}

impl TempFile {
    /// The file was renamed into place: nothing to remove.
    fn keep(mut self) {
        self.placed = true;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.placed {
            // One unlink, even on an async thread: not worth a blocking task. Missing is
            // fine (never created, or already gone).
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Ingestor {
    pub fn new(ctx: &Context, search: &SearchAdapters) -> Result<Self> {
        let s = &ctx.settings;
        let chunker = Chunker::from_tokenizer_file(
            &s.embedding.model_dir.join("tokenizer.json"),
            ChunkerConfig {
                max_tokens: s.ingest.chunk_tokens,
                overlap_tokens: s.ingest.chunk_overlap_tokens,
                context_prefix: s.ingest.context_prefix,
            },
        )?;
        let ocr = s.ocr.engine();
        if let Some(engine) = &ocr
            && s.ingest.pdfium_lib.as_ref().is_some_and(|p| p.is_file())
            && let Err(e) = lectern_pdfium::ocr::check(engine)
        {
            tracing::warn!(error = %e, "scanned pages will stay empty");
        }
        Ok(Self {
            store: ctx.store.clone(),
            embedder: search.embedder.clone(),
            index: search.index.clone(),
            parsers: Parsers {
                pdfium: s.ingest.pdfium_lib.clone().filter(|p| p.is_file()),
                timeout: Duration::from_secs(s.ingest.parse_timeout_secs),
                isolation: s
                    .ingest
                    .isolate_parsing
                    .then(|| lectern_runtime::worker::host_program(isolate::PARSE_JOB.name))
                    .flatten()
                    .map(|program| Isolation {
                        program,
                        memory_mb: s.ingest.parse_memory_mb,
                    }),
                ocr,
            },
            chunker: Arc::new(chunker),
            originals: s.originals_dir(),
            max_file_bytes: s.ingest.max_file_mb * 1024 * 1024,
            max_attempts: s.ingest.max_attempts,
            source_roots: s.ingest.source_roots.clone(),
            crawl_allow_private: s.ingest.crawl_allow_private,
            crawl_concurrency: s.ingest.crawl_concurrency.clamp(1, 16),
            user_agent: crate::crawl::user_agent(s.web.public_url.as_deref()),
            workers: s.ingest.workers,
            lease: Duration::from_secs(s.ingest.lease_secs.max(1)),
            placing: tokio::sync::Mutex::new(()),
            crash_after: std::sync::Mutex::new(None),
        })
    }

    /// The same pipeline on another handle of the same database (tests give it a store
    /// whose clock they move, so leases expire without sleeping).
    pub fn with_store(mut self, store: Store) -> Self {
        self.store = store;
        self
    }

    /// The same pipeline with web sources allowed (or not) to reach private addresses:
    /// tests crawl a server on the loopback address.
    pub fn with_crawl_allow_private(mut self, allow: bool) -> Self {
        self.crawl_allow_private = allow;
        self
    }

    /// The same pipeline fetching `pages` pages of a site at once.
    pub fn with_crawl_concurrency(mut self, pages: usize) -> Self {
        self.crawl_concurrency = pages.clamp(1, 16);
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn original_path(&self, document: DocumentId, version: i32) -> PathBuf {
        self.originals
            .join(document.to_string())
            .join(format!("v{version}"))
    }

    /// The folder in which uploads arrive: inside the originals directory, so that
    /// placing one is a rename on the same filesystem.
    fn incoming_dir(&self) -> PathBuf {
        self.originals.join(INCOMING_DIR)
    }

    /// A fresh temporary file's name in the incoming folder (a name of its own, so two
    /// writers never interleave in one file), removed again unless it is placed.
    fn incoming_file(&self) -> TempFile {
        TempFile {
            path: self
                .incoming_dir()
                .join(Uuid::new_v4().simple().to_string()),
            placed: false,
        }
    }

    /// Removes what uploads cut off by a crash left in the incoming folder: files older
    /// than `age` (a younger one may be an upload still arriving, in this process or in
    /// another ingest process sharing the originals).
    pub async fn sweep_incoming(&self, age: Duration) {
        let Ok(mut entries) = tokio::fs::read_dir(self.incoming_dir()).await else {
            return;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let old = entry
                .metadata()
                .await
                .and_then(|m| m.modified())
                .is_ok_and(|modified| modified.elapsed().is_ok_and(|e| e > age));
            if old && tokio::fs::remove_file(entry.path()).await.is_ok() {
                tracing::info!(file = %entry.path().display(), "removed an upload cut off by a crash");
            }
        }
    }

    /// Starts receiving a file: write its bytes as they arrive ([`Receiving::write`]),
    /// then [`Receiving::finish`] it and hand it to [`Ingestor::submit_file`].
    pub async fn receive(&self) -> Result<Receiving> {
        let dir = self.incoming_dir();
        let temp = self.incoming_file();
        let open = async {
            tokio::fs::create_dir_all(&dir).await?;
            tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp.path)
                .await
        };
        let file = open.await.map_err(|e| store_error(&dir, e))?;
        Ok(Receiving {
            file: BufWriter::with_capacity(WRITE_BUFFER, file),
            temp,
            sha256: Sha256::new(),
            size: 0,
            head: Vec::new(),
        })
    }

    /// Moves a received file into place as `version` of `document`; returns its storage
    /// key. The file was synced when it was received; the rename makes it whole at once.
    async fn place_original(
        &self,
        file: TempFile,
        document: DocumentId,
        version: i32,
    ) -> Result<String> {
        let path = self.original_path(document, version);
        let dir = path.parent().expect("a parent").to_owned();
        let place = async {
            tokio::fs::create_dir_all(&dir).await?;
            tokio::fs::rename(&file.path, &path).await
        };
        place.await.map_err(|e| store_error(&dir, e))?;
        file.keep();
        Ok(format!("{document}/v{version}"))
    }

    /// Accepts one file held in memory (texts sent as JSON, the command line): written
    /// to the incoming folder, then [`Ingestor::submit_file`].
    pub async fn submit(
        &self,
        workspace: WorkspaceId,
        file_name: &str,
        bytes: Vec<u8>,
    ) -> Result<Submitted> {
        let mut receiving = self.receive().await?;
        receiving.write(&bytes).await?;
        drop(bytes);
        let incoming = receiving.finish().await?;
        self.submit_file(workspace, file_name, incoming).await
    }

    /// Accepts one file from this machine's disk (the command line), copied in pieces and
    /// never held whole in memory; a file over the size limit is refused unread.
    pub async fn submit_path(
        &self,
        workspace: WorkspaceId,
        file_name: &str,
        path: &Path,
    ) -> Result<Submitted> {
        match self.receive_path(path, None).await? {
            Ok(incoming) => self.submit_file(workspace, file_name, incoming).await,
            Err(size) => {
                let reason = over_the_limit(size, self.max_file_bytes);
                Ok(Submitted::Rejected {
                    document: self
                        .reject(workspace, file_name, size as i64, &reason)
                        .await?,
                })
            }
        }
    }

    /// Copies a file of this machine's disk into the incoming folder in pieces, hashing
    /// it as it goes; `Ok(Err(size))` for a file over the size limit, left unread. A file
    /// that cannot be read is an "invalid" error naming it.
    pub(crate) async fn receive_path(
        &self,
        path: &Path,
        expected: Option<FileIdentity>,
    ) -> Result<Result<Incoming, u64>> {
        use tokio::io::AsyncReadExt;
        let unreadable = |e: std::io::Error| Error::Invalid(format!("{}: {e}", path.display()));
        let mut file = tokio::fs::File::open(path).await.map_err(unreadable)?;
        let meta = file.metadata().await.map_err(unreadable)?;
        if let Some(expected) = expected {
            expected.check(&meta).map_err(unreadable)?;
        }
        let size = meta.len();
        if size > self.max_file_bytes {
            return Ok(Err(size));
        }
        let mut receiving = self.receive().await?;
        let mut piece = vec![0; WRITE_BUFFER];
        loop {
            let n = file.read(&mut piece).await.map_err(unreadable)?;
            if n == 0 {
                break;
            }
            receiving.write(&piece[..n]).await?;
        }
        Ok(Ok(receiving.finish().await?))
    }

    /// Accepts one received file into a workspace: placed as the original of a new
    /// document (or of the next version of the document with this name) and queued;
    /// "unchanged" when the workspace holds these bytes already; or refused, recorded as
    /// a failed document with the reason. `file_name` must be a bare name: a name with
    /// path components is refused, never used as a path. Whatever the outcome, the
    /// received file is placed or removed.
    pub async fn submit_file(
        &self,
        workspace: WorkspaceId,
        file_name: &str,
        incoming: Incoming,
    ) -> Result<Submitted> {
        let Incoming {
            file,
            sha256,
            size,
            head,
        } = incoming;
        let title = title_from(file_name);
        let mut new = NewDocument {
            id: Uuid::new_v4(),
            workspace_id: workspace,
            title,
            file_name: file_name.to_owned(),
            media_type: "application/octet-stream".into(),
            sha256: sha256.clone(),
            size_bytes: size as i64,
            storage_key: String::new(),
        };
        let refusal = if file_name.contains(['/', '\\'])
            || file_name == ".."
            || file_name == "."
            || file_name.trim().is_empty()
        {
            Some(format!(
                "the file name {file_name:?} contains path components; upload it under its bare name"
            ))
        } else if size > self.max_file_bytes {
            Some(over_the_limit(size, self.max_file_bytes))
        } else {
            None
        };
        if let Some(reason) = refusal {
            return Ok(Submitted::Rejected {
                document: self.store.create_failed_document(new, &reason).await?,
            });
        }
        // From looking for these bytes or this name to recording the document, one upload
        // at a time in this process: two uploads of one file at once (a double click, a
        // client retrying) must not both become documents, nor two of one name both
        // write `v{n+1}`. Across processes the conditional update in `queue_new_version`
        // lets only one new version win.
        let _serial = self.placing.lock().await;
        // The same bytes again (even ones that failed before): nothing new to do. A file
        // refused at the door (nothing stored) only counts under the same name: the same
        // bytes under a better name or type are a new try.
        if let Some(existing) = self.store.find_document_by_sha(workspace, &sha256).await?
            && (!existing.storage_key.is_empty() || existing.file_name == file_name)
        {
            return Ok(Submitted::Unchanged { document: existing });
        }
        let media = match detect_media_type(&head, file_name) {
            Ok(media) => media,
            Err(reason) => {
                return Ok(Submitted::Rejected {
                    document: self
                        .store
                        .create_failed_document(new, &reason.to_string())
                        .await?,
                });
            }
        };
        new.media_type = media.mime().to_owned();
        if let Some(existing) = self
            .store
            .find_document_by_file_name(workspace, file_name)
            .await?
            && existing.status != lectern_store::status::FAILED
        {
            let existing = self
                .store
                .document(existing.id)
                .await?
                .ok_or_else(|| Error::NotFound("the document was deleted meanwhile".into()))?;
            let version = existing.current_version + 1;
            let key = self.place_original(file, existing.id, version).await?;
            let (document, _) = self
                .store
                .queue_new_version(existing, sha256, size as i64, new.media_type, key)
                .await?;
            return Ok(Submitted::NewVersion { document });
        }
        new.storage_key = self.place_original(file, new.id, 1).await?;
        let id = new.id;
        match self.store.create_document(new).await {
            Ok((document, _)) => Ok(Submitted::Queued { document }),
            Err(e) => {
                // No row, no original: an upload is all or nothing.
                let _ = tokio::fs::remove_dir_all(self.originals.join(id.to_string())).await;
                Err(e)
            }
        }
    }

    /// Accepts one file of a synced source that a sync found new or changed: placed as
    /// the original of a new document of its key, or of the next version of the key's
    /// document, and queued; or refused, recorded as a failed document with the reason
    /// ([`Ingestor::refuse_source_file`]). Unlike an upload it is never matched with other
    /// documents by content or name: a source's documents are its files, one per key.
    pub(crate) async fn submit_source_file(
        &self,
        entry: &SourceEntry<'_>,
        incoming: Incoming,
    ) -> Result<Submitted> {
        let Incoming {
            file,
            sha256,
            size,
            head,
        } = incoming;
        let media = match detect_media_type(&head, entry.file_name) {
            Ok(media) => media,
            Err(reason) => {
                let document = self
                    .refuse_source_file(entry, size, sha256, &reason.to_string())
                    .await?;
                return Ok(Submitted::Rejected { document });
            }
        };
        // As for uploads: one new version written at a time in this process (a re-index
        // of the same document may be placing one too).
        let _serial = self.placing.lock().await;
        if let Some(existing) = entry.existing {
            let version = existing.current_version + 1;
            let key = self.place_original(file, existing.id, version).await?;
            let (document, _) = self
                .store
                .queue_new_version(
                    existing.clone(),
                    sha256,
                    size as i64,
                    media.mime().to_owned(),
                    key,
                )
                .await?;
            self.store
                .mark_source_file_seen(document.id, entry.file.mtime_ns)
                .await?;
            return Ok(Submitted::NewVersion { document });
        }
        let mut new = NewDocument {
            id: Uuid::new_v4(),
            workspace_id: entry.workspace,
            title: title_from(entry.file_name),
            file_name: entry.file_name.to_owned(),
            media_type: media.mime().to_owned(),
            sha256,
            size_bytes: size as i64,
            storage_key: String::new(),
        };
        new.storage_key = self.place_original(file, new.id, 1).await?;
        let id = new.id;
        match self.store.create_source_document(new, &entry.file).await {
            Ok((document, _)) => Ok(Submitted::Queued { document }),
            Err(e) => {
                // No row, no original, as for an upload.
                let _ = tokio::fs::remove_dir_all(self.originals.join(id.to_string())).await;
                Err(e)
            }
        }
    }

    /// Records a file of a synced source refused at the door (an unreadable type, empty,
    /// over the size limit) as a failed document of its key, with the reason: the next
    /// sync skips it while it stays the same. The key's earlier document, if any, is
    /// deleted first (its points and originals too): it no longer stands for the file.
    pub(crate) async fn refuse_source_file(
        &self,
        entry: &SourceEntry<'_>,
        size: u64,
        sha256: String,
        reason: &str,
    ) -> Result<document::Model> {
        if let Some(existing) = entry.existing {
            self.delete(existing).await?;
        }
        let new = NewDocument {
            id: Uuid::new_v4(),
            workspace_id: entry.workspace,
            title: title_from(entry.file_name),
            file_name: entry.file_name.to_owned(),
            media_type: "application/octet-stream".into(),
            sha256,
            size_bytes: size as i64,
            storage_key: String::new(),
        };
        self.store
            .create_failed_source_document(new, &entry.file, reason)
            .await
    }

    /// Claims and processes one job; `None` when no job is due. This is the worker's
    /// step: tests drive it directly instead of sleeping.
    pub async fn process_next(&self) -> Result<Option<Processed>> {
        let Some(job) = self.store.claim_next_job(self.lease).await? else {
            return Ok(None);
        };
        if self.crash_point(Stage::Claimed) {
            return Err(Error::internal_msg("simulated crash after claiming"));
        }
        let mut timings = StageTimings::default();
        let outcome = match self.run_job(&job, &mut timings).await {
            Ok(Some((pages, chunks))) => Outcome::Indexed {
                pages: pages.count as u32,
                chunks,
                notice: pages.notice,
            },
            Ok(None) => return Err(Error::internal_msg("simulated crash")),
            Err(JobError::Permanent(reason)) => {
                self.store
                    .fail_job(&job, &reason, false, Duration::ZERO, self.max_attempts)
                    .await?;
                Outcome::Failed { reason }
            }
            Err(JobError::Other(e)) => {
                let reason = e.to_string();
                let backoff = Duration::from_secs(5 * 2u64.pow(job.attempts.clamp(0, 8) as u32));
                let retrying = self
                    .store
                    .fail_job(&job, &reason, e.is_transient(), backoff, self.max_attempts)
                    .await?;
                if retrying {
                    Outcome::WillRetry { reason }
                } else {
                    Outcome::Failed { reason }
                }
            }
        };
        Ok(Some(Processed {
            document_id: job.document_id,
            job_id: job.id,
            outcome,
            timings,
        }))
    }

    /// Processes jobs until none is due, with `workers` jobs in flight at once: while one
    /// document is embedded, the next is parsed and chunked, so the embedder (the
    /// bottleneck, and one model behind a lock) always has a batch waiting.
    pub async fn run_until_idle(&self, on_done: impl FnMut(&Processed)) -> Result<Vec<Processed>> {
        let on_done = std::sync::Mutex::new(on_done);
        let done = std::sync::Mutex::new(Vec::new());
        let worker = || async {
            let mut transient = 0;
            loop {
                match self.process_next().await {
                    Ok(Some(p)) => {
                        transient = 0;
                        (lock(&on_done))(&p);
                        lock(&done).push(p);
                    }
                    Ok(None) => return Ok(()),
                    // Another worker holding the database a moment: wait and go on.
                    Err(e) if e.is_transient() && transient < 5 => {
                        transient += 1;
                        tracing::warn!(error = %e, "ingest step failed; retrying");
                        tokio::time::sleep(Duration::from_millis(500 * transient)).await;
                    }
                    Err(e) => return Err::<(), Error>(e),
                }
            }
        };
        // join_all, not try_join_all: a failing worker must not cancel the others mid-job.
        futures::future::join_all((0..self.workers.max(1)).map(|_| worker()))
            .await
            .into_iter()
            .collect::<Result<Vec<()>>>()?;
        let done = done
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !done.is_empty() {
            self.index.optimize().await?;
        }
        Ok(done)
    }

    /// The background worker of a running service: runs the syncs of sources and
    /// processes jobs as they are due, sleeps until `wake` is notified (an upload, a sync
    /// asked for) or a second passes (retries and scheduled syncs come due), and never
    /// stops on an error: it logs it and tries again.
    pub async fn run_worker(self: Arc<Self>, wake: Arc<tokio::sync::Notify>) {
        let mut since_optimize = 0usize;
        loop {
            // A source due for a sync goes first: what it queues is work for every worker.
            match self.process_next_sync().await {
                Ok(Some(synced)) => {
                    synced.log();
                    if let crate::source::SyncOutcome::Done(result) = &synced.outcome {
                        since_optimize += result.deleted as usize;
                        if result.queued() > 0 {
                            wake.notify_waiters();
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "source sync step failed; retrying"),
            }
            match self.process_next().await {
                Ok(Some(p)) => {
                    since_optimize += 1;
                    match &p.outcome {
                        Outcome::Indexed {
                            pages,
                            chunks,
                            notice,
                        } => {
                            tracing::info!(document = %p.document_id, pages, chunks, notice, "document indexed")
                        }
                        Outcome::Failed { reason } => {
                            tracing::warn!(document = %p.document_id, reason, "document failed")
                        }
                        Outcome::WillRetry { reason } => {
                            tracing::warn!(document = %p.document_id, reason, "document will be retried")
                        }
                    }
                    continue;
                }
                Ok(None) => {
                    if since_optimize > 0 {
                        since_optimize = 0;
                        if let Err(e) = self.index.optimize().await {
                            tracing::warn!(error = %e, "index optimisation failed");
                        }
                    }
                }
                Err(e) => tracing::error!(error = %e, "ingest worker step failed; retrying"),
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), wake.notified()).await;
        }
    }

    /// Queues the document's current content again as a new version (for example after
    /// a parser or chunking change); the old version stays searchable until it is done.
    pub async fn reindex(&self, doc: document::Model) -> Result<document::Model> {
        if doc.storage_key.is_empty() {
            return Err(Error::Conflict(
                "this document was refused at upload and has no stored original; upload it again"
                    .into(),
            ));
        }
        // Originals are never written in place, so the new version may share the current
        // one's bytes: a hard link (the incoming folder is on the originals' filesystem).
        // Where linking is refused, a copy on disk, not in memory: originals may be
        // hundreds of MB.
        let copy = self.incoming_file();
        let current = self.original_path(doc.id, doc.current_version);
        let copied = async {
            tokio::fs::create_dir_all(self.incoming_dir()).await?;
            if tokio::fs::hard_link(&current, &copy.path).await.is_err() {
                tokio::fs::copy(&current, &copy.path).await?;
                tokio::fs::File::open(&copy.path).await?.sync_all().await?;
            }
            Ok::<_, std::io::Error>(())
        };
        copied
            .await
            .map_err(|e| Error::internal("cannot copy the stored original", e))?;
        let _serial = self.placing.lock().await;
        let key = self
            .place_original(copy, doc.id, doc.current_version + 1)
            .await?;
        let (sha, size, media) = (doc.sha256.clone(), doc.size_bytes, doc.media_type.clone());
        let (doc, _) = self
            .store
            .queue_new_version(doc, sha, size, media, key)
            .await?;
        Ok(doc)
    }

    /// Records a file refused before its bytes were read in full (over the size limit
    /// while streaming an upload).
    pub async fn reject(
        &self,
        workspace: WorkspaceId,
        file_name: &str,
        size_bytes: i64,
        reason: &str,
    ) -> Result<document::Model> {
        let new = NewDocument {
            id: Uuid::new_v4(),
            workspace_id: workspace,
            title: title_from(file_name),
            file_name: file_name.to_owned(),
            media_type: "application/octet-stream".into(),
            sha256: String::new(),
            size_bytes,
            storage_key: String::new(),
        };
        self.store.create_failed_document(new, reason).await
    }

    /// The texts the embedder would get for a file (parsed and chunked as a job would,
    /// nothing stored): for benchmarks that time the embedder alone on the same chunks.
    pub fn embedding_texts(&self, file_name: &str, bytes: &[u8]) -> Result<Vec<InContext>> {
        let media = detect_media_type(bytes, file_name)
            .map_err(|e| Error::Invalid(format!("{file_name}: {e}")))?;
        let parsed = self
            .parsers
            .parse(bytes, media.mime())
            .map_err(|e| Error::Invalid(format!("{file_name}: {e}")))?;
        let title = title_from(file_name);
        Ok(self
            .chunker
            .chunk(&parsed, media == MediaType::Markdown)
            .iter()
            .map(|c| self.chunker.embedding_text(&title, c))
            .collect())
    }

    /// The largest file accepted, in bytes.
    pub fn max_file_bytes(&self) -> u64 {
        self.max_file_bytes
    }

    /// The stored original of a document's current version, opened for reading (to be
    /// streamed, never read whole into memory), and its size in bytes.
    pub async fn open_original(&self, doc: &document::Model) -> Result<(tokio::fs::File, u64)> {
        if doc.storage_key.is_empty() {
            return Err(Error::NotFound(
                "this document was refused at upload; nothing was stored".into(),
            ));
        }
        let open = async {
            let file =
                tokio::fs::File::open(self.original_path(doc.id, doc.current_version)).await?;
            let size = file.metadata().await?.len();
            Ok::<_, std::io::Error>((file, size))
        };
        open.await
            .map_err(|e| Error::internal("cannot read the stored original", e))
    }

    pub(crate) fn crash_point(&self, stage: Stage) -> bool {
        let mut crash = self
            .crash_after
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *crash == Some(stage) {
            *crash = None;
            return true;
        }
        false
    }

    async fn run_job(
        &self,
        job: &ingest_job::Model,
        t: &mut StageTimings,
    ) -> Result<Option<(PagesRead, usize)>, JobError> {
        let doc = self
            .store
            .document(job.document_id)
            .await?
            .ok_or_else(|| JobError::Permanent("the document was deleted".into()))?;
        if job.version < doc.current_version {
            // Points this version wrote before it was overtaken (a crash, a retry) must
            // not stay searchable beside the newer version.
            self.index
                .delete_document(doc.workspace_id, doc.id, Some(job.version))
                .await?;
            return Err(JobError::Permanent(format!(
                "superseded by version {} before it was processed",
                doc.current_version
            )));
        }
        self.store.mark_processing(doc.id).await?;
        // Missing may mean "not renamed into place yet" (an upload commits its row first):
        // retried with backoff, and failed with this reason once attempts run out.
        let started = Instant::now();
        let parsed = self
            .parsers
            .parse_file(&self.original_path(doc.id, job.version), &doc.media_type)
            .await
            .map_err(|e| Error::unavailable("the stored original is missing or cannot be read", e))?
            .map_err(|e: ParseError| JobError::Permanent(e.to_string()))?;
        t.parse = started.elapsed();
        if self.crash_point(Stage::Parsed) {
            return Ok(None);
        }

        let started = Instant::now();
        let chunker = self.chunker.clone();
        let markdown = doc.media_type == MediaType::Markdown.mime();
        let (parsed, chunks) = tokio::task::spawn_blocking(move || {
            let chunks = chunker.chunk(&parsed, markdown);
            (parsed, chunks)
        })
        .await
        .map_err(|e| Error::internal("chunker task failed", e))?;
        t.chunk = started.elapsed();
        if chunks.is_empty() {
            return Err(JobError::Permanent(
                ParseError::NoText("nothing in it could be indexed".into()).to_string(),
            ));
        }

        let title = doc.title.clone();
        for batch in chunks.chunks(EMBED_BATCH) {
            let started = Instant::now();
            let texts: Vec<InContext> = batch
                .iter()
                .map(|c| self.chunker.embedding_text(&title, c))
                .collect();
            let embedder = self.embedder.clone();
            let vectors = tokio::task::spawn_blocking(move || embedder.embed_in_context(&texts))
                .await
                .map_err(|e| Error::internal("embedding task failed", e))??;
            t.embed += started.elapsed();
            let started = Instant::now();
            let points = batch
                .iter()
                .zip(vectors)
                .map(|(c, dense)| IndexedChunk {
                    chunk: ChunkPoint {
                        workspace_id: doc.workspace_id,
                        document_id: doc.id,
                        version: job.version,
                        chunk_index: c.index,
                        pages: c.pages,
                        span: c.span,
                        title: title.clone(),
                        text: c.text.clone(),
                        table_header: c.table_header.clone(),
                        anchor: c.anchor.clone(),
                    },
                    dense,
                })
                .collect();
            self.index.upsert(points).await?;
            t.index += started.elapsed();
            self.store.heartbeat(job.id, self.lease).await?;
        }
        if self.crash_point(Stage::Upserted) {
            return Ok(None);
        }

        let rows = chunks
            .iter()
            .map(|c| NewChunk {
                id: lectern_core::point_id(doc.id, job.version, c.index),
                chunk_index: c.index as i32,
                page_start: c.pages.start as i32,
                page_end: c.pages.end as i32,
                char_start: c.span.start as i64,
                char_end: c.span.end as i64,
                token_count: c.token_count as i32,
            })
            .collect();
        let pages = PagesRead {
            count: parsed.page_count() as i32,
            ocr: parsed.ocr_pages.len() as i32,
            notice: parsed.notice(),
        };
        self.store.complete_job(job, pages.clone(), rows).await?;
        // The new version is searchable: now the old ones go.
        for old in 1..job.version {
            self.index
                .delete_document(doc.workspace_id, doc.id, Some(old))
                .await?;
            let _ = tokio::fs::remove_file(self.original_path(doc.id, old)).await;
        }
        self.store.delete_chunks_before(doc.id, job.version).await?;
        // A newer version was queued and indexed while this one ran (its clean-up came
        // before these points): this version must not linger beside it.
        if let Some(now) = self.store.document(doc.id).await?
            && now.current_version > job.version
            && now.status == lectern_store::status::READY
        {
            self.index
                .delete_document(doc.workspace_id, doc.id, Some(job.version))
                .await?;
            self.store
                .delete_chunks_before(doc.id, now.current_version)
                .await?;
        }
        Ok(Some((pages, chunks.len())))
    }

    /// Deletes a document everywhere: its points, its rows (chunks and jobs cascade) and
    /// its originals.
    pub async fn delete(&self, document: &document::Model) -> Result<()> {
        self.index
            .delete_document(document.workspace_id, document.id, None)
            .await?;
        self.store.delete_document_row(document.id).await?;
        match tokio::fs::remove_dir_all(self.originals.join(document.id.to_string())).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::internal("cannot remove the stored original", e))
            }
            _ => Ok(()),
        }
    }
}

pub(crate) enum JobError {
    /// The document (or the source) itself is the problem: retrying the same bytes gives
    /// the same answer.
    Permanent(String),
    Other(Error),
}

impl From<Error> for JobError {
    fn from(e: Error) -> Self {
        Self::Other(e)
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a file over the size limit is told.
pub fn over_the_limit(size: u64, limit: u64) -> String {
    format!(
        "the file is {:.1} MB, over the limit of {} MB",
        size as f64 / 1_048_576.0,
        limit / 1_048_576
    )
}

fn store_error(path: &Path, e: std::io::Error) -> Error {
    Error::unavailable(
        format!("cannot store the original under {}", path.display()),
        e,
    )
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn title_from(file_name: &str) -> String {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let stem = base
        .rsplit_once('.')
        .map(|(s, _)| s)
        .filter(|s| !s.is_empty())
        .unwrap_or(base);
    stem.replace(['_', '-'], " ").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_come_from_file_names() {
        assert_eq!(title_from("annual_leave-policy.pdf"), "annual leave policy");
        assert_eq!(title_from(".bashrc"), ".bashrc");
        assert_eq!(title_from("notes"), "notes");
    }
}

/// Which file a path led to when it was listed (device and inode), so that reading it later
/// can tell whether another file was put in its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileIdentity {
    dev: u64,
    ino: u64,
}

impl FileIdentity {
    pub(crate) fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    /// An error when `meta` (of the file just opened) is not the file listed.
    pub(crate) fn check(self, meta: &std::fs::Metadata) -> std::io::Result<()> {
        if Self::of(meta) == self {
            Ok(())
        } else {
            Err(std::io::Error::other(
                "the file was replaced after the folder was listed; it is read at the next sync",
            ))
        }
    }
}
