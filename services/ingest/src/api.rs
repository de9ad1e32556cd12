//! The ingest service's HTTP API: workspaces, uploads (multipart files or JSON texts),
//! documents with their status, delete, re-index and the stored original, and synced
//! sources (add, list, change, sync now, remove). Every route
//! authenticates the caller ([`Caller`]) and checks the caller's role in the workspace;
//! a workspace or document the caller may not see is "not found".

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use actix_multipart::Multipart;
use actix_web::error::PayloadError;
use actix_web::http::header::{self, ContentDisposition, DispositionParam, DispositionType};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use futures::StreamExt;
use lectern_api::ErrorBody;
use lectern_api::ingest::{
    CreateSource, CreateWorkspace, DocumentList, DocumentOut, FolderSettings, SourceList,
    SourceOut, SyncResult, TextDocument, TextUpload, UpdateSource, UploadOut, UploadResult,
    WebSettings, WorkspaceList, WorkspaceOut, upload_request_limit,
};
use lectern_auth::{Action, Caller};
use lectern_core::{DocumentId, Error, Role, WorkspaceId};
use lectern_runtime::Context;
use lectern_runtime::http::{ApiError, BearerAuth};
use lectern_store::entity::{document, source};
use tokio::sync::Notify;
use tokio_util::io::ReaderStream;
use utoipa::OpenApi;
use uuid::Uuid;

use crate::pipeline::{Ingestor, Submitted, over_the_limit};

/// Bytes read from disk at a time when an original is streamed out.
const READ_CHUNK: usize = 64 * 1024;

/// The ingest service's state: the pipeline and the bell that wakes its workers.
pub struct IngestApi {
    pub ingestor: Arc<Ingestor>,
    pub wake: Arc<Notify>,
}

type Result<T> = std::result::Result<T, ApiError>;

fn document_row_out(d: document::Model, chunks: u64) -> DocumentOut {
    DocumentOut {
        id: d.id,
        workspace_id: d.workspace_id,
        title: d.title,
        file_name: d.file_name,
        media_type: d.media_type,
        size_bytes: d.size_bytes,
        status: d.status,
        error: d.error_message,
        pages: d.pages,
        ocr_pages: d.ocr_pages,
        notice: d.notice,
        chunks,
        version: d.current_version,
        source_id: d.source_id,
        source_key: d.source_key,
        created_at: d.created_at,
        updated_at: d.updated_at,
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Lectern ingest API", description = "Workspaces and their documents: upload, status, delete, re-index; synced sources (folders on the server, web sites) kept in step with a workspace. Authenticate with `Authorization: Bearer <API key>`."),
    paths(list_workspaces, create_workspace, upload, list_documents, get_document, delete_document, reindex_document, original, list_sources, create_source, get_source, update_source, sync_source, delete_source),
    components(schemas(WorkspaceOut, CreateWorkspace, WorkspaceList, DocumentOut, DocumentList, UploadOut, UploadResult, TextDocument, TextUpload, CreateSource, UpdateSource, FolderSettings, WebSettings, SourceOut, SourceList, SyncResult, ErrorBody)),
    modifiers(&BearerAuth),
    security(("api_key" = []))
)]
pub struct ApiDoc;

/// Mounts the routes under `/v1`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/workspaces", web::get().to(list_workspaces))
        .route("/v1/workspaces", web::post().to(create_workspace))
        .route(
            "/v1/workspaces/{ws}/documents",
            web::get().to(list_documents),
        )
        .route("/v1/workspaces/{ws}/documents", web::post().to(upload))
        .route(
            "/v1/workspaces/{ws}/documents/{doc}",
            web::get().to(get_document),
        )
        .route(
            "/v1/workspaces/{ws}/documents/{doc}",
            web::delete().to(delete_document),
        )
        .route(
            "/v1/workspaces/{ws}/documents/{doc}/reindex",
            web::post().to(reindex_document),
        )
        .route(
            "/v1/workspaces/{ws}/documents/{doc}/original",
            web::get().to(original),
        )
        .route("/v1/workspaces/{ws}/sources", web::get().to(list_sources))
        .route("/v1/workspaces/{ws}/sources", web::post().to(create_source))
        .route(
            "/v1/workspaces/{ws}/sources/{source}",
            web::get().to(get_source),
        )
        .route(
            "/v1/workspaces/{ws}/sources/{source}",
            web::patch().to(update_source),
        )
        .route(
            "/v1/workspaces/{ws}/sources/{source}",
            web::delete().to(delete_source),
        )
        .route(
            "/v1/workspaces/{ws}/sources/{source}/sync",
            web::post().to(sync_source),
        )
        .route("/v1/ingest/openapi.json", web::get().to(openapi));
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

async fn audit(ctx: &Context, caller: &Caller, action: &str, ws: WorkspaceId, target: String) {
    caller
        .audit(&ctx.store, action, Some(ws), Some(target), None)
        .await;
}

/// The workspaces the caller can read.
#[utoipa::path(get, path = "/v1/workspaces", responses((status = 200, body = WorkspaceList), (status = 401, body = ErrorBody)))]
async fn list_workspaces(ctx: web::Data<Context>, caller: Caller) -> Result<HttpResponse> {
    let workspaces = caller
        .workspaces(&ctx.store)
        .await?
        .into_iter()
        .map(|a| caller.workspace_out(a.workspace, a.role))
        .collect();
    Ok(HttpResponse::Ok().json(WorkspaceList { workspaces }))
}

/// Creates a workspace; the caller becomes its owner. Names are unique per owner: the
/// conflict says only that the caller already has a workspace of that name, never whether
/// another tenant has one.
#[utoipa::path(post, path = "/v1/workspaces", request_body = CreateWorkspace, responses((status = 201, body = WorkspaceOut), (status = 409, description = "the caller already has a workspace of that name", body = ErrorBody)))]
async fn create_workspace(
    ctx: web::Data<Context>,
    caller: Caller,
    body: web::Json<CreateWorkspace>,
) -> Result<HttpResponse> {
    let ws = ctx
        .store
        .create_workspace(&body.name, Some(caller.id()))
        .await?;
    audit(&ctx, &caller, "workspace.create", ws.id, ws.name.clone()).await;
    Ok(HttpResponse::Created().json(caller.workspace_out(ws, Role::Owner)))
}

async fn document_in(
    ctx: &Context,
    caller: &Caller,
    ws: WorkspaceId,
    doc: DocumentId,
    action: Action,
) -> Result<document::Model> {
    caller.require(&ctx.store, ws, action).await?;
    let doc = ctx
        .store
        .document(doc)
        .await?
        .filter(|d| d.workspace_id == ws)
        .ok_or_else(|| Error::NotFound("no such document in this workspace".into()))?;
    Ok(doc)
}

async fn document_out(ctx: &Context, doc: document::Model) -> Result<DocumentOut> {
    let counts = ctx.store.chunk_counts(std::slice::from_ref(&doc)).await?;
    let n = counts.get(&doc.id).copied().unwrap_or(0);
    Ok(document_row_out(doc, n))
}

/// The workspace's documents with status, pages, chunks and errors.
#[utoipa::path(get, path = "/v1/workspaces/{ws}/documents", params(("ws" = Uuid, Path)), responses((status = 200, body = DocumentList), (status = 404, body = ErrorBody)))]
async fn list_documents(
    ctx: web::Data<Context>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse> {
    let ws = path.into_inner();
    caller.require(&ctx.store, ws, Action::Read).await?;
    let docs = ctx.store.list_documents(ws).await?;
    let counts = ctx.store.chunk_counts(&docs).await?;
    let documents = docs
        .into_iter()
        .map(|d| {
            let n = counts.get(&d.id).copied().unwrap_or(0);
            document_row_out(d, n)
        })
        .collect();
    Ok(HttpResponse::Ok().json(DocumentList { documents }))
}

/// One document's status.
#[utoipa::path(get, path = "/v1/workspaces/{ws}/documents/{doc}", params(("ws" = Uuid, Path), ("doc" = Uuid, Path)), responses((status = 200, body = DocumentOut), (status = 404, body = ErrorBody)))]
async fn get_document(
    ctx: web::Data<Context>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse> {
    let (ws, doc) = path.into_inner();
    let doc = document_in(&ctx, &caller, ws, doc, Action::Read).await?;
    Ok(HttpResponse::Ok().json(document_out(&ctx, doc).await?))
}

/// Deletes a document: its index points, chunk rows and stored originals.
#[utoipa::path(delete, path = "/v1/workspaces/{ws}/documents/{doc}", params(("ws" = Uuid, Path), ("doc" = Uuid, Path)), responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_document(
    ctx: web::Data<Context>,
    api: web::Data<IngestApi>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse> {
    let (ws, doc) = path.into_inner();
    let doc = document_in(&ctx, &caller, ws, doc, Action::Edit).await?;
    api.ingestor.delete(&doc).await?;
    audit(&ctx, &caller, "document.delete", ws, doc.file_name.clone()).await;
    Ok(HttpResponse::NoContent().finish())
}

/// Indexes the document's content again, as a new version.
#[utoipa::path(post, path = "/v1/workspaces/{ws}/documents/{doc}/reindex", params(("ws" = Uuid, Path), ("doc" = Uuid, Path)), responses((status = 202, body = DocumentOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn reindex_document(
    ctx: web::Data<Context>,
    api: web::Data<IngestApi>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse> {
    let (ws, doc) = path.into_inner();
    let doc = document_in(&ctx, &caller, ws, doc, Action::Edit).await?;
    let doc = api.ingestor.reindex(doc).await?;
    api.wake.notify_one();
    audit(&ctx, &caller, "document.reindex", ws, doc.file_name.clone()).await;
    Ok(HttpResponse::Accepted().json(document_out(&ctx, doc).await?))
}

/// The stored original of the current version, as uploaded.
#[utoipa::path(get, path = "/v1/workspaces/{ws}/documents/{doc}/original", params(("ws" = Uuid, Path), ("doc" = Uuid, Path)), responses((status = 200, description = "the file"), (status = 404, body = ErrorBody)))]
async fn original(
    ctx: web::Data<Context>,
    api: web::Data<IngestApi>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse> {
    let (ws, doc) = path.into_inner();
    let doc = document_in(&ctx, &caller, ws, doc, Action::Read).await?;
    let (file, size) = api.ingestor.open_original(&doc).await?;
    Ok(HttpResponse::Ok()
        .content_type(doc.media_type.as_str())
        .insert_header(ContentDisposition {
            disposition: DispositionType::Inline,
            parameters: vec![DispositionParam::Filename(doc.file_name.clone())],
        })
        .insert_header(("X-Content-Type-Options", "nosniff"))
        // An uploaded HTML page must not run script on Lectern's address.
        .insert_header(("Content-Security-Policy", "sandbox"))
        // Streamed from disk: a large original is never held whole in memory.
        .no_chunking(size)
        .streaming(ReaderStream::with_capacity(file, READ_CHUNK)))
}

/// A source as the API shows it, with the number of documents it owns.
async fn source_out(ctx: &Context, s: source::Model) -> Result<SourceOut> {
    let documents = ctx.store.count_source_documents(s.id).await?;
    Ok(crate::source::source_view(s, documents))
}

async fn source_in(
    ctx: &Context,
    caller: &Caller,
    ws: WorkspaceId,
    id: Uuid,
    action: Action,
) -> Result<source::Model> {
    caller.require(&ctx.store, ws, action).await?;
    let found = ctx
        .store
        .source(id)
        .await?
        .filter(|s| s.workspace_id == ws)
        .ok_or_else(|| Error::NotFound("no such source in this workspace".into()))?;
    Ok(found)
}

/// The workspace's synced sources, with their last sync.
#[utoipa::path(get, path = "/v1/workspaces/{ws}/sources", params(("ws" = Uuid, Path)), responses((status = 200, body = SourceList), (status = 404, body = ErrorBody)))]
async fn list_sources(
    ctx: web::Data<Context>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse> {
    let ws = path.into_inner();
    caller.require(&ctx.store, ws, Action::Read).await?;
    let mut sources = Vec::new();
    for s in ctx.store.list_sources(ws).await? {
        sources.push(source_out(&ctx, s).await?);
    }
    Ok(HttpResponse::Ok().json(SourceList { sources }))
}

/// Adds a source: for `"kind": "folder"`, a directory on the server, under one an
/// administrator allowed (`ingest.source_roots`; none by default), read recursively with
/// `include` and `exclude` globs. Only site administrators add folder sources (they read
/// the server's disk). The first sync is queued at once; later ones every
/// `interval_secs`, or when asked.
#[utoipa::path(post, path = "/v1/workspaces/{ws}/sources", params(("ws" = Uuid, Path)), request_body = CreateSource,
    responses((status = 201, body = SourceOut), (status = 400, description = "bad settings or globs, or a folder that cannot be opened", body = ErrorBody), (status = 403, description = "not a site administrator, folder sources turned off, or a folder outside the allowed directories", body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "the workspace has a source of that name", body = ErrorBody)))]
async fn create_source(
    ctx: web::Data<Context>,
    api: web::Data<IngestApi>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: web::Json<CreateSource>,
) -> Result<HttpResponse> {
    let ws = path.into_inner();
    caller.require(&ctx.store, ws, Action::Edit).await?;
    require_site_admin(&caller, "add")?;
    let added = api.ingestor.add_source(ws, &body).await?;
    api.wake.notify_one();
    audit(&ctx, &caller, "source.add", ws, added.name.clone()).await;
    Ok(HttpResponse::Created().json(source_out(&ctx, added).await?))
}

/// Adding or changing a source is for site administrators only: a folder reads the
/// server's disk, a web site makes the server fetch from the network.
fn require_site_admin(caller: &Caller, verb: &str) -> Result<()> {
    if caller.user.is_admin {
        return Ok(());
    }
    Err(Error::Forbidden(format!(
        "only a site administrator may {verb} a source: a folder reads the server's disk, a web site makes the server fetch from the network"
    ))
    .into())
}

/// Changes a source: its name, its schedule (`interval_secs`; `null`: only when asked) or
/// its settings (`settings`: the keys to change, e.g. `{"include": ["*.md"]}` for a
/// folder or `{"depth": 2}` for a web site; `null` puts a key back to its default). The
/// settings are checked exactly as when the source was added, a new folder or start URL
/// too. The next sync applies them: a file or page the source no longer takes is deleted
/// then. Only site administrators change sources, as only they add them.
#[utoipa::path(patch, path = "/v1/workspaces/{ws}/sources/{source}", params(("ws" = Uuid, Path), ("source" = Uuid, Path)), request_body = UpdateSource,
    responses((status = 200, body = SourceOut), (status = 400, description = "bad settings, globs, name or schedule, or a folder that cannot be opened", body = ErrorBody), (status = 403, description = "not a site administrator, or a folder outside the allowed directories, or a private address", body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "the workspace has another source of that name, or the source is being removed", body = ErrorBody)))]
async fn update_source(
    ctx: web::Data<Context>,
    api: web::Data<IngestApi>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    body: web::Json<UpdateSource>,
) -> Result<HttpResponse> {
    let (ws, id) = path.into_inner();
    let found = source_in(&ctx, &caller, ws, id, Action::Edit).await?;
    require_site_admin(&caller, "change")?;
    let changed = api.ingestor.edit_source(&found, &body).await?;
    // A new schedule may make a sync due now.
    api.wake.notify_one();
    audit(&ctx, &caller, "source.edit", ws, changed.name.clone()).await;
    Ok(HttpResponse::Ok().json(source_out(&ctx, changed).await?))
}

/// One source, with its last sync.
#[utoipa::path(get, path = "/v1/workspaces/{ws}/sources/{source}", params(("ws" = Uuid, Path), ("source" = Uuid, Path)), responses((status = 200, body = SourceOut), (status = 404, body = ErrorBody)))]
async fn get_source(
    ctx: web::Data<Context>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse> {
    let (ws, id) = path.into_inner();
    let found = source_in(&ctx, &caller, ws, id, Action::Read).await?;
    Ok(HttpResponse::Ok().json(source_out(&ctx, found).await?))
}

/// Queues a sync of the source now. Its result shows in the source (`last_result`) when
/// it ends; the documents it queued are then indexed as uploads are.
#[utoipa::path(post, path = "/v1/workspaces/{ws}/sources/{source}/sync", params(("ws" = Uuid, Path), ("source" = Uuid, Path)), responses((status = 202, body = SourceOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "a sync is running, or the source is being removed", body = ErrorBody)))]
async fn sync_source(
    ctx: web::Data<Context>,
    api: web::Data<IngestApi>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse> {
    let (ws, id) = path.into_inner();
    source_in(&ctx, &caller, ws, id, Action::Edit).await?;
    let queued = ctx.store.request_sync(id).await?;
    api.wake.notify_one();
    audit(&ctx, &caller, "source.sync", ws, queued.name.clone()).await;
    Ok(HttpResponse::Accepted().json(source_out(&ctx, queued).await?))
}

/// Removes the source and every document it owns (their index points and originals too).
#[utoipa::path(delete, path = "/v1/workspaces/{ws}/sources/{source}", params(("ws" = Uuid, Path), ("source" = Uuid, Path)), responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_source(
    ctx: web::Data<Context>,
    api: web::Data<IngestApi>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse> {
    let (ws, id) = path.into_inner();
    let found = source_in(&ctx, &caller, ws, id, Action::Edit).await?;
    api.ingestor.remove_source(&found).await?;
    audit(&ctx, &caller, "source.remove", ws, found.name.clone()).await;
    Ok(HttpResponse::NoContent().finish())
}

/// Uploads files (`multipart/form-data`, any number of file fields) or text documents
/// (`application/json`, a [`TextUpload`]). Each file gets its own outcome; a refused
/// file is recorded as a failed document with the reason and the others go on. Files
/// are streamed to disk as they arrive; a request larger than four files at the size
/// limit (plus 1 MiB) is refused with 413.
#[utoipa::path(post, path = "/v1/workspaces/{ws}/documents", params(("ws" = Uuid, Path)),
    request_body(content = TextUpload, description = "JSON texts, or multipart/form-data with one or more file fields", content_type = "application/json"),
    responses((status = 202, body = UploadResult), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, description = "the request is over the upload limit", body = ErrorBody)))]
async fn upload(
    ctx: web::Data<Context>,
    api: web::Data<IngestApi>,
    caller: Caller,
    path: web::Path<Uuid>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let ws = path.into_inner();
    caller.require(&ctx.store, ws, Action::Edit).await?;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut results = Vec::new();
    if content_type.starts_with("application/json") {
        let body = read_limited(payload, api.ingestor.max_file_bytes() + 1_048_576).await?;
        let upload: TextUpload = serde_json::from_slice(&body).map_err(|e| {
            Error::Invalid(format!(
                "the body must be {{\"documents\": [{{\"name\", \"text\"}}]}}: {e}"
            ))
        })?;
        if upload.documents.is_empty() {
            return Err(Error::Invalid("no documents in the upload".into()).into());
        }
        for doc in upload.documents {
            let submitted = api
                .ingestor
                .submit(ws, &doc.name, doc.text.into_bytes())
                .await?;
            results.push((doc.name, submitted));
        }
    } else if content_type.starts_with("multipart/form-data") {
        receive_files(&api.ingestor, ws, &req, payload, &mut results).await?;
        if results.is_empty() {
            return Err(Error::Invalid("the form has no file fields".into()).into());
        }
    } else {
        return Err(Error::Invalid(
            "send multipart/form-data with file fields, or application/json texts".into(),
        )
        .into());
    }
    let docs: Vec<document::Model> = results.iter().map(|(_, s)| s.document().clone()).collect();
    let counts = ctx.store.chunk_counts(&docs).await?;
    let mut documents = Vec::with_capacity(results.len());
    for ((file_name, submitted), doc) in results.into_iter().zip(docs) {
        let outcome = match &submitted {
            Submitted::Queued { .. } => "queued",
            Submitted::Unchanged { .. } => "unchanged",
            Submitted::NewVersion { .. } => "new_version",
            Submitted::Rejected { .. } => "rejected",
        };
        if matches!(outcome, "queued" | "new_version") {
            api.wake.notify_one();
        }
        audit(&ctx, &caller, "document.upload", ws, file_name.clone()).await;
        let chunks = counts.get(&doc.id).copied().unwrap_or(0);
        documents.push(UploadOut {
            file_name,
            outcome: outcome.into(),
            document: document_row_out(doc, chunks),
        });
    }
    Ok(HttpResponse::Accepted().json(UploadResult { documents }))
}

/// Receives the file fields of a multipart upload one after another, each streamed to
/// disk as it arrives ([`Ingestor::receive`]): a file over the size limit is read on
/// without being kept and recorded as refused, and the files after it still land; the
/// request as a whole is refused (413) as soon as it passes [`upload_request_limit`].
async fn receive_files(
    ingestor: &Ingestor,
    ws: WorkspaceId,
    req: &HttpRequest,
    payload: web::Payload,
    results: &mut Vec<(String, Submitted)>,
) -> Result<()> {
    let cap = upload_request_limit(ingestor.max_file_bytes());
    let too_large = || {
        Error::TooLarge(format!(
            "the upload is over {} MB in all; send fewer files at once",
            cap / 1_048_576
        ))
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > cap) {
        return Err(too_large().into());
    }
    // The body counted as it arrives (boundaries and plain fields too), and ended with an
    // error once it passes the cap.
    type Chunk = std::result::Result<Bytes, PayloadError>;
    let received = Rc::new(Cell::new(0u64));
    let counted = {
        let received = received.clone();
        payload.map(move |chunk: Chunk| -> Chunk {
            let chunk = chunk?;
            received.set(received.get() + chunk.len() as u64);
            if received.get() > cap {
                return Err(PayloadError::Overflow);
            }
            Ok(chunk)
        })
    };
    // A read error past the cap is the cap's refusal; any other, a broken upload.
    let broken = |what: String| {
        if received.get() > cap {
            too_large()
        } else {
            Error::Invalid(what)
        }
    };
    let limit = ingestor.max_file_bytes();
    let mut form = Multipart::new(req.headers(), counted);
    while let Some(field) = form.next().await {
        let mut field =
            field.map_err(|e| broken(format!("the multipart body is malformed: {e}")))?;
        let Some(name) = field
            .content_disposition()
            .and_then(|d| d.get_filename())
            .map(str::to_owned)
        else {
            continue; // a plain form field, not a file
        };
        // Past the limit, what came is dropped (its file removed) and the rest is read
        // on without being kept.
        let mut receiving = Some(ingestor.receive().await?);
        let mut size = 0u64;
        while let Some(chunk) = field.next().await {
            let chunk =
                chunk.map_err(|e| broken(format!("the upload of {name:?} broke off: {e}")))?;
            size += chunk.len() as u64;
            if size > limit {
                receiving = None;
            } else if let Some(file) = receiving.as_mut() {
                file.write(&chunk).await?;
            }
        }
        let submitted = match receiving {
            Some(file) => {
                ingestor
                    .submit_file(ws, &name, file.finish().await?)
                    .await?
            }
            None => Submitted::Rejected {
                document: ingestor
                    .reject(ws, &name, size as i64, &over_the_limit(size, limit))
                    .await?,
            },
        };
        results.push((name, submitted));
    }
    Ok(())
}

async fn read_limited(mut payload: web::Payload, limit: u64) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| Error::Invalid(format!("the body broke off: {e}")))?;
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(Error::TooLarge(format!(
                "the body is over the limit of {} MB",
                limit / 1_048_576
            ))
            .into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
