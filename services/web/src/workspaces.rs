//! Workspaces, their documents (upload, live status, delete, re-index, originals; the
//! synced sources beside them, `sources.rs`), their members and invitations. Every
//! handler first resolves the signed-in person's role in the workspace: a non-member gets
//! "not found", exactly as for a workspace that does not exist; ingest then checks the
//! same role again on its side. The one way in without a role is an invitation link,
//! which an owner made and chose whom to give.

use std::collections::HashMap;

use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use futures::StreamExt;
use lectern_api::ingest::{DocumentOut, UPLOAD_FILES_AT_THE_LIMIT, WorkspaceOut};
use lectern_auth::Action;
use lectern_core::{Error, Role};
use lectern_runtime::Context;
use lectern_store::{Member, Shared};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;
use uuid::Uuid;

use crate::accounts::audit;
use crate::auth::{CSRF_HEADER, CSRF_REFUSED, FormData, SignedIn, csrf_ok};
use crate::backend::Backend;
use crate::error::{WebError, WebResult};
use crate::mail::Mailer;
use crate::render::PageRenderer;
use crate::sources::{Entered, FailedDocument, SourceForm, SourceRow};
use crate::views::{Layout, flash, page, page_with, redirect, wants_json};

#[derive(Template)]
#[template(path = "workspaces.html")]
struct WorkspacesPage {
    layout: Layout,
    workspaces: Vec<WorkspaceOut>,
}

pub async fn list(backend: web::Data<Backend>, me: SignedIn) -> WebResult<HttpResponse> {
    let workspaces = backend.client(me.id())?.workspaces().await?;
    page(&WorkspacesPage {
        layout: Layout::signed_in(&me, "Workspaces", "workspaces"),
        workspaces,
    })
}

pub async fn create(
    backend: web::Data<Backend>,
    me: SignedIn,
    form: FormData,
) -> WebResult<HttpResponse> {
    let name = form.require("name", "the workspace's name")?;
    let ws = backend.client(me.id())?.create_workspace(name).await?;
    flash(
        &me.session,
        format!("Workspace “{}” created. Upload documents to it.", ws.name),
    );
    Ok(redirect(&format!("/w/{}/documents", ws.id)))
}

/// The signed-in person's role in `ws` (admins act as owners), or "not found".
pub(crate) async fn role(
    ctx: &Context,
    me: &SignedIn,
    ws: Uuid,
    action: Action,
) -> WebResult<(String, Role)> {
    let (workspace, role) = me.caller().require(&ctx.store, ws, action).await?;
    Ok((workspace.name, role))
}

/// A workspace's header and tabs (`workspace_nav.html`).
struct WorkspaceNav {
    ws_id: Uuid,
    ws_name: String,
    role: &'static str,
    tab: &'static str,
}

#[derive(Template)]
#[template(path = "documents.html")]
pub(crate) struct DocumentsPage {
    layout: Layout,
    nav: WorkspaceNav,
    can_edit: bool,
    documents: Vec<DocumentRow>,
    /// The workspace's synced sources (`sources.rs`).
    sources: Vec<SourceRow>,
    /// Site administrators add and change sources: a folder source reads the server's
    /// disk, a web source makes the server fetch from the network.
    can_add_source: bool,
    /// The add forms as a refused one was sent (empty otherwise).
    source_form: SourceForm,
    /// Where folder sources may lie, as this process's settings say (ingest checks its
    /// own): shown beside the form.
    source_roots: Vec<String>,
    min_interval: u64,
    /// A refused form's reason (adding, changing or syncing a source).
    error: Option<String>,
}

/// A document as the list shows it.
struct DocumentRow {
    doc: DocumentOut,
    /// The name of the synced source it came from; its path in that source is
    /// `doc.source_key`.
    source: Option<String>,
}

/// The documents page of `ws`, with its sources; `error` and `entered` give back a
/// refused form.
pub(crate) async fn documents_page(
    ctx: &Context,
    backend: &Backend,
    me: &SignedIn,
    ws: Uuid,
    error: Option<String>,
    entered: Entered,
) -> WebResult<DocumentsPage> {
    let (ws_name, role) = role(ctx, me, ws, Action::Read).await?;
    let client = backend.client(me.id())?;
    let (documents, sources) = futures::try_join!(client.documents(ws), client.sources(ws))?;
    let names: HashMap<Uuid, String> = sources.iter().map(|s| (s.id, s.name.clone())).collect();
    // Each source's failed documents, listed with the source too.
    let mut failures: HashMap<Uuid, Vec<FailedDocument>> = HashMap::new();
    for doc in &documents {
        if let Some(source) = doc.source_id
            && doc.status == lectern_store::status::FAILED
        {
            failures.entry(source).or_default().push(FailedDocument {
                key: doc
                    .source_key
                    .clone()
                    .unwrap_or_else(|| doc.file_name.clone()),
                reason: doc.error.clone().unwrap_or_default(),
            });
        }
    }
    let documents = documents
        .into_iter()
        .map(|doc| DocumentRow {
            source: doc.source_id.and_then(|id| names.get(&id).cloned()),
            doc,
        })
        .collect();
    let now = chrono::Utc::now();
    let (source_form, editing) = match entered {
        Entered::Nothing => (SourceForm::default(), None),
        Entered::Add(form) => (form, None),
        Entered::Edit(id, form) => (SourceForm::default(), Some((id, form))),
    };
    let mut rows: Vec<SourceRow> = sources
        .into_iter()
        .map(|s| SourceRow::new(s, now))
        .collect();
    for row in &mut rows {
        row.failures = failures.remove(&row.id).unwrap_or_default();
    }
    if let Some((id, form)) = editing
        && let Some(row) = rows.iter_mut().find(|r| r.id == id)
    {
        row.form = form;
        row.editing = true;
    }
    Ok(DocumentsPage {
        layout: Layout::signed_in(me, format!("Documents · {ws_name}"), "workspaces"),
        nav: WorkspaceNav {
            ws_id: ws,
            ws_name,
            role: role.as_str(),
            tab: "documents",
        },
        can_edit: role.can_edit(),
        documents,
        sources: rows,
        can_add_source: me.user.is_admin,
        source_form,
        source_roots: ctx
            .settings
            .ingest
            .source_roots
            .iter()
            .map(|r| r.display().to_string())
            .collect(),
        min_interval: lectern_store::MIN_SYNC_INTERVAL_SECS,
        error,
    })
}

pub async fn documents(
    ctx: web::Data<Context>,
    backend: web::Data<Backend>,
    me: SignedIn,
    path: web::Path<Uuid>,
) -> WebResult<HttpResponse> {
    let ws = path.into_inner();
    page(&documents_page(&ctx, &backend, &me, ws, None, Entered::Nothing).await?)
}

/// The documents' statuses, for the page's live updates.
pub async fn documents_json(
    backend: web::Data<Backend>,
    me: SignedIn,
    path: web::Path<Uuid>,
) -> WebResult<HttpResponse> {
    let documents = backend
        .client(me.id())?
        .documents(path.into_inner())
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "documents": documents })))
}

/// Uploads files: the form's first field must be the CSRF token (or the request carries
/// it in a header); the files go on to ingest, which records each one's outcome.
pub async fn upload(
    ctx: web::Data<Context>,
    backend: web::Data<Backend>,
    me: SignedIn,
    path: web::Path<Uuid>,
    req: HttpRequest,
    payload: web::Payload,
) -> WebResult<HttpResponse> {
    let json = wants_json(&req);
    let ws = path.into_inner();
    let count = upload_files(&ctx, &backend, &me, ws, &req, payload).await?;
    if json {
        return Ok(HttpResponse::Ok().json(serde_json::json!({ "uploaded": count })));
    }
    flash(
        &me.session,
        format!("{count} file(s) uploaded; they are being read now."),
    );
    Ok(redirect(&format!("/w/{ws}/documents")))
}

async fn upload_files(
    ctx: &Context,
    backend: &Backend,
    me: &SignedIn,
    ws: Uuid,
    req: &HttpRequest,
    payload: web::Payload,
) -> WebResult<usize> {
    let header_ok = csrf_ok(
        &me.session,
        req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()),
    );
    role(ctx, me, ws, Action::Edit).await?;
    // The files' bytes together; ingest's bound on the whole body adds room for the
    // form's framing, so a form that passes here passes there.
    let limit = UPLOAD_FILES_AT_THE_LIMIT * ctx.settings.ingest.max_file_mb * 1_048_576;
    let spool = ctx.settings.data_dir.join(SPOOL_DIR);
    let mut multipart = Multipart::new(req.headers(), payload);
    let mut form = reqwest::multipart::Form::new();
    let mut files = 0usize;
    let mut total = 0u64;
    let mut checked = header_ok;
    while let Some(field) = multipart.next().await {
        let mut field =
            field.map_err(|e| Error::Invalid(format!("the upload is malformed: {e}")))?;
        let name = field.name().unwrap_or("").to_owned();
        let file_name = field
            .content_disposition()
            .and_then(|d| d.get_filename())
            .map(str::to_owned);
        match file_name {
            None => {
                // A plain field: only the CSRF token is kept (and only as long as one
                // can be); the rest is read and counted.
                let mut value = Vec::new();
                while let Some(chunk) = field.next().await {
                    let chunk = chunk.map_err(broke_off)?;
                    total += chunk.len() as u64;
                    if total > limit {
                        return Err(too_large(limit).into());
                    }
                    if name == "csrf" && value.len() + chunk.len() <= CSRF_FIELD_MAX {
                        value.extend_from_slice(&chunk);
                    }
                }
                if name == "csrf" {
                    checked = checked || csrf_ok(&me.session, std::str::from_utf8(&value).ok());
                }
            }
            Some(file_name) => {
                if !checked {
                    return Err(Error::Forbidden(CSRF_REFUSED.into()).into());
                }
                let (file, size) = spool_field(&mut field, &spool, &mut total, limit).await?;
                if file_name.is_empty() && size == 0 {
                    continue; // the browser's "no file chosen"
                }
                files += 1;
                let body =
                    reqwest::Body::wrap_stream(ReaderStream::with_capacity(file, SPOOL_CHUNK));
                form = form.part(
                    "files",
                    reqwest::multipart::Part::stream_with_length(body, size).file_name(file_name),
                );
            }
        }
    }
    if !checked {
        return Err(Error::Forbidden(CSRF_REFUSED.into()).into());
    }
    if files == 0 {
        return Err(Error::Invalid("choose one or more files to upload".into()).into());
    }
    backend.client(me.id())?.upload(ws, form).await?;
    Ok(files)
}

/// Where the files of an upload wait, in the data directory, until the form is read
/// whole (its CSRF token checked, every file complete) and forwarded to ingest. Created
/// at start (`configure`).
pub(crate) const SPOOL_DIR: &str = "uploads";

/// Bytes read from a spooled file at a time when it is forwarded.
const SPOOL_CHUNK: usize = 64 * 1024;

/// The longest CSRF field kept (a token is far shorter).
const CSRF_FIELD_MAX: usize = 1024;

fn broke_off(e: actix_multipart::MultipartError) -> Error {
    Error::Invalid(format!("the upload broke off: {e}"))
}

fn too_large(limit: u64) -> Error {
    Error::TooLarge(format!(
        "the upload is over {} MB; send fewer files at once",
        limit / 1_048_576
    ))
}

fn spool_error(e: std::io::Error) -> Error {
    Error::unavailable("the upload could not be written to disk", e)
}

/// Writes one file field to an anonymous temporary file in `dir`, the spool made at start
/// (removed by the system when it is closed, whatever happens), and rewinds it, so a form
/// is forwarded without ever being held in memory; `total` counts the request's bytes
/// against `limit`.
async fn spool_field(
    field: &mut actix_multipart::Field,
    dir: &std::path::Path,
    total: &mut u64,
    limit: u64,
) -> Result<(tokio::fs::File, u64), Error> {
    let dir = dir.to_owned();
    let file = tokio::task::spawn_blocking(move || tempfile::tempfile_in(&dir))
        .await
        .map_err(|e| Error::internal("the upload could not be written to disk", e))?
        .map_err(spool_error)?;
    let mut file =
        tokio::io::BufWriter::with_capacity(SPOOL_BUFFER, tokio::fs::File::from_std(file));
    let mut size = 0u64;
    while let Some(chunk) = field.next().await {
        let chunk = chunk.map_err(broke_off)?;
        *total += chunk.len() as u64;
        if *total > limit {
            return Err(too_large(limit));
        }
        size += chunk.len() as u64;
        file.write_all(&chunk).await.map_err(spool_error)?;
    }
    file.flush().await.map_err(spool_error)?;
    let mut file = file.into_inner();
    file.seek(std::io::SeekFrom::Start(0))
        .await
        .map_err(spool_error)?;
    Ok((file, size))
}

/// Bytes gathered before one write to a spooled file.
const SPOOL_BUFFER: usize = 256 * 1024;

pub async fn delete(
    backend: web::Data<Backend>,
    me: SignedIn,
    path: web::Path<(Uuid, Uuid)>,
) -> WebResult<HttpResponse> {
    let (ws, doc) = path.into_inner();
    let document = backend.client(me.id())?.document(ws, doc).await?;
    backend.client(me.id())?.delete_document(ws, doc).await?;
    flash(&me.session, format!("“{}” deleted.", document.title));
    Ok(redirect(&format!("/w/{ws}/documents")))
}

pub async fn reindex(
    backend: web::Data<Backend>,
    me: SignedIn,
    path: web::Path<(Uuid, Uuid)>,
) -> WebResult<HttpResponse> {
    let (ws, doc) = path.into_inner();
    backend.client(me.id())?.reindex_document(ws, doc).await?;
    flash(&me.session, "Re-indexing started.");
    Ok(redirect(&format!("/w/{ws}/documents")))
}

/// The original file. PDFs and plain text open in the browser; every other type is a
/// download, and nothing from a document may run scripts on Lectern's pages.
pub async fn original(
    backend: web::Data<Backend>,
    me: SignedIn,
    path: web::Path<(Uuid, Uuid)>,
) -> WebResult<HttpResponse> {
    let (ws, doc) = path.into_inner();
    let document = backend.client(me.id())?.document(ws, doc).await?;
    let original = backend.client(me.id())?.original_stream(ws, doc).await?;
    let inline = original.media_type.starts_with("application/pdf")
        || original.media_type.starts_with("text/plain");
    let disposition = header::ContentDisposition {
        disposition: if inline {
            header::DispositionType::Inline
        } else {
            header::DispositionType::Attachment
        },
        parameters: vec![header::DispositionParam::Filename(document.file_name)],
    };
    let mut response = HttpResponse::Ok();
    response
        .content_type(if inline {
            original.media_type.as_str()
        } else {
            "application/octet-stream"
        })
        .insert_header(disposition)
        .insert_header((header::CACHE_CONTROL, "private, max-age=300"));
    // PDFs open in the browser's viewer, which a sandbox would disable; anything else
    // may not run script on Lectern's address.
    if !original.media_type.starts_with("application/pdf") {
        response.insert_header(("Content-Security-Policy", "sandbox"));
    }
    // Passed on as it arrives from ingest, never held whole.
    if let Some(size) = original.size {
        response.no_chunking(size);
    }
    Ok(response.streaming(original.into_stream()))
}

/// A page of a PDF as an image (for the citation panel).
pub async fn page_image(
    backend: web::Data<Backend>,
    renderer: web::Data<PageRenderer>,
    me: SignedIn,
    path: web::Path<(Uuid, Uuid, u32)>,
) -> WebResult<HttpResponse> {
    let (ws, doc, page) = path.into_inner();
    let png = renderer
        .page_png(&backend.client(me.id())?, ws, doc, page)
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("image/png")
        .insert_header((header::CACHE_CONTROL, "private, max-age=3600"))
        .body(png))
}

#[derive(Template)]
#[template(path = "members.html")]
struct MembersPage {
    layout: Layout,
    nav: WorkspaceNav,
    can_manage: bool,
    members: Vec<Member>,
    /// Pending invitations (shown to those who manage members).
    invitations: Vec<InvitationRow>,
    error: Option<String>,
}

/// A pending invitation as the members page lists it.
struct InvitationRow {
    id: Uuid,
    email: String,
    role: String,
    expires: String,
}

async fn members_page(
    ctx: &Context,
    me: &SignedIn,
    ws: Uuid,
    error: Option<String>,
) -> WebResult<MembersPage> {
    let (ws_name, role) = role(ctx, me, ws, Action::Read).await?;
    let can_manage = role.can_manage_members();
    let invitations = if can_manage {
        ctx.store
            .pending_invitations(ws)
            .await?
            .into_iter()
            .map(|i| InvitationRow {
                id: i.id,
                email: i.email,
                role: i.role,
                expires: i.expires_at.format("%Y-%m-%d %H:%M").to_string(),
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(MembersPage {
        layout: Layout::signed_in(me, format!("Members · {ws_name}"), "workspaces"),
        nav: WorkspaceNav {
            ws_id: ws,
            ws_name,
            role: role.as_str(),
            tab: "members",
        },
        can_manage,
        members: ctx.store.members_of(ws).await?,
        invitations,
        error,
    })
}

pub async fn members(
    ctx: web::Data<Context>,
    me: SignedIn,
    path: web::Path<Uuid>,
) -> WebResult<HttpResponse> {
    page(&members_page(&ctx, &me, path.into_inner(), None).await?)
}

/// Whether removing or demoting `user` would leave the workspace without an owner.
fn last_owner(members: &[Member], user: Uuid) -> bool {
    let owners: Vec<_> = members.iter().filter(|m| m.role == Role::Owner).collect();
    owners.len() == 1 && owners[0].user.id == user
}

/// Adds a member or changes a role. A member's role changes at once (the list shows
/// members by email already). Anyone else is shared with by [`Store::share_by_email`]: an
/// invitation is always made, and a *verified* account with the address becomes a member
/// at once as well (its invitation then spent), while an unverified account, like an
/// address without one, gets access only through the invitation link. The link is shown
/// once, here, and mailed to the address when Lectern sends mail.
///
/// The answer is the same for a verified account, an unverified one and no account: the
/// same redirect and one message naming both outcomes, with a link. Making an invitation
/// every time is what keeps it so, since a link shown only to addresses without a verified
/// account would tell owners (anyone can make a workspace) which addresses have one. The
/// members list does show who became a member, as it must; that tells no more than the
/// person's first visit to the workspace would.
///
/// [`Store::share_by_email`]: lectern_store::Store::share_by_email
pub async fn set_member(
    ctx: web::Data<Context>,
    mailer: web::Data<Mailer>,
    me: SignedIn,
    req: HttpRequest,
    path: web::Path<Uuid>,
    form: FormData,
) -> WebResult<HttpResponse> {
    let ws = path.into_inner();
    let (ws_name, _) = role(&ctx, &me, ws, Action::Manage).await?;
    let result = async {
        let email = form.require("email", "the email")?.to_lowercase();
        let new_role: Role = form.require("role", "the role")?.parse()?;
        let members = ctx.store.members_of(ws).await?;
        if let Some(member) = members.iter().find(|m| m.user.email == email) {
            if new_role != Role::Owner && last_owner(&members, member.user.id) {
                return Err(Error::Invalid(
                    "the workspace needs at least one owner; make someone else owner first".into(),
                ));
            }
            ctx.store.set_member(ws, member.user.id, new_role).await?;
            audit(
                &ctx,
                Some(me.id()),
                "member.set",
                Some(ws),
                Some(member.user.email.clone()),
                Some(serde_json::json!({ "role": new_role.as_str() })),
            )
            .await;
            return Ok(format!("{email} is now {} here.", new_role.as_str()));
        }
        let shared = ctx
            .store
            .share_by_email(ws, &email, new_role, me.id())
            .await?;
        let link = format!(
            "{}/invite/{}",
            crate::proxy::public_base(&req, &ctx.settings.web),
            shared.token
        );
        audit(
            &ctx,
            Some(me.id()),
            if shared.member.is_some() {
                "member.set"
            } else {
                "member.invited"
            },
            Some(ws),
            Some(email.clone()),
            Some(serde_json::json!({ "role": new_role.as_str(), "invitation": shared.invitation.id })),
        )
        .await;
        mail_access(&mailer, &me, ws, &ws_name, new_role, &shared);
        let mut message = format!(
            "If {email} has a verified Lectern account, it is now {} here and listed below. If not, pass on this invitation link; it works once, for 7 days, for whoever opens it signed in, and is shown only now: {link}",
            new_role.as_str()
        );
        if mailer.enabled() {
            message.push_str(&format!(" Lectern also wrote to {email}."));
        }
        Ok::<_, Error>(message)
    }
    .await;
    match result {
        Ok(message) => {
            flash(&me.session, message);
            Ok(redirect(&format!("/w/{ws}/members")))
        }
        Err(Error::Invalid(message)) => page_with(
            actix_web::http::StatusCode::BAD_REQUEST,
            &members_page(&ctx, &me, ws, Some(message)).await?,
        ),
        Err(e) => Err(e.into()),
    }
}

/// Tells the address what sharing gave it, when Lectern sends mail: access at once (a
/// verified account), or the invitation link.
fn mail_access(
    mailer: &Mailer,
    me: &SignedIn,
    ws: Uuid,
    ws_name: &str,
    role: Role,
    shared: &Shared,
) {
    let inviter = me.user.display_name.as_deref().unwrap_or(&me.user.email);
    let to = &shared.invitation.email;
    let role = role.as_str();
    match &shared.member {
        Some(_) => {
            let Some(link) = mailer.link(&format!("/w/{ws}/documents")) else {
                return;
            };
            mailer.send(
                to,
                &format!("You can now use the workspace \"{ws_name}\" on Lectern"),
                format!(
                    "{inviter} gave you access to the workspace \"{ws_name}\" on Lectern, as \
                     {role}:\n\n{link}\n"
                ),
            );
        }
        None => {
            let Some(link) = mailer.link(&format!("/invite/{}", shared.token)) else {
                return;
            };
            mailer.send(
                to,
                &format!("An invitation to the workspace \"{ws_name}\" on Lectern"),
                format!(
                    "{inviter} invited you to the workspace \"{ws_name}\" on Lectern, as \
                     {role}. To join, open this link within 7 days (sign in, or create an \
                     account, when asked):\n\n{link}\n\n\
                     The link works once. If you did not expect it, ignore this message.\n"
                ),
            );
        }
    }
}

/// Revokes a pending invitation: its link stops working.
pub async fn revoke_invitation(
    ctx: web::Data<Context>,
    me: SignedIn,
    path: web::Path<(Uuid, Uuid)>,
) -> WebResult<HttpResponse> {
    let (ws, id) = path.into_inner();
    role(&ctx, &me, ws, Action::Manage).await?;
    let revoked = ctx.store.revoke_invitation(ws, id).await?;
    audit(
        &ctx,
        Some(me.id()),
        "member.invitation_revoked",
        Some(ws),
        Some(revoked.email.clone()),
        Some(serde_json::json!({ "invitation": id })),
    )
    .await;
    flash(
        &me.session,
        format!(
            "The invitation for {} is revoked: its link no longer works.",
            revoked.email
        ),
    );
    Ok(redirect(&format!("/w/{ws}/members")))
}

#[derive(Template)]
#[template(path = "invitation.html")]
struct InvitationPage {
    layout: Layout,
    token: String,
    ws_name: String,
    role: String,
    sent_to: String,
    me_email: String,
}

/// What an invitation link says when it no longer works.
const INVITATION_GONE: &str = "This invitation link no longer works: it was used, revoked or has expired. Ask an owner of the workspace for a new one.";

/// An invitation link, opened signed in (otherwise the sign-in page comes first, and
/// brings the person back): what it offers, and a button to accept it. Accepting takes
/// the button, not the visit, so that no page elsewhere can make someone a member of a
/// workspace by loading the link.
pub async fn invitation(
    ctx: web::Data<Context>,
    me: SignedIn,
    path: web::Path<String>,
) -> WebResult<HttpResponse> {
    let token = path.into_inner();
    let pending = ctx.store.invitation_by_token(&token).await?;
    let Some(invitation) = pending else {
        return Err(Error::NotFound(INVITATION_GONE.into()).into());
    };
    let Some(workspace) = ctx.store.workspace(invitation.workspace_id).await? else {
        return Err(Error::NotFound(INVITATION_GONE.into()).into());
    };
    page(&InvitationPage {
        layout: Layout::signed_in(&me, format!("Join {}", workspace.name), "workspaces"),
        token,
        ws_name: workspace.name,
        role: invitation.role,
        sent_to: invitation.email,
        me_email: me.user.email.clone(),
    })
}

/// Accepts an invitation for the signed-in person, whatever their address: the owner
/// chose whom to give the link.
pub async fn accept_invitation(
    ctx: web::Data<Context>,
    me: SignedIn,
    path: web::Path<String>,
) -> WebResult<HttpResponse> {
    let token = path.into_inner();
    let Some((invitation, role)) = ctx.store.accept_invitation(&token, me.id()).await? else {
        return Err(Error::NotFound(INVITATION_GONE.into()).into());
    };
    let ws = invitation.workspace_id;
    audit(
        &ctx,
        Some(me.id()),
        "member.invitation_accepted",
        Some(ws),
        Some(me.user.email.clone()),
        Some(serde_json::json!({
            "invitation": invitation.id,
            "sent_to": invitation.email,
            "role": role.as_str(),
        })),
    )
    .await;
    let name = ctx
        .store
        .workspace(ws)
        .await?
        .map(|w| w.name)
        .unwrap_or_default();
    flash(
        &me.session,
        format!("Welcome to “{name}”: you are {} here.", role.as_str()),
    );
    Ok(redirect(&format!("/w/{ws}/documents")))
}

pub async fn remove_member(
    ctx: web::Data<Context>,
    me: SignedIn,
    path: web::Path<(Uuid, Uuid)>,
) -> WebResult<HttpResponse> {
    let (ws, user) = path.into_inner();
    role(&ctx, &me, ws, Action::Manage).await?;
    if last_owner(&ctx.store.members_of(ws).await?, user) {
        return page_with(
            actix_web::http::StatusCode::BAD_REQUEST,
            &members_page(
                &ctx,
                &me,
                ws,
                Some(
                    "The workspace needs at least one owner; make someone else owner first.".into(),
                ),
            )
            .await?,
        );
    }
    let email = ctx.store.user(user).await?.map(|u| u.email);
    ctx.store.remove_member(ws, user).await?;
    audit(&ctx, Some(me.id()), "member.remove", Some(ws), email, None).await;
    flash(&me.session, "Member removed.");
    Ok(redirect(&format!("/w/{ws}/members")))
}

impl From<WebError> for Error {
    fn from(e: WebError) -> Self {
        match e {
            WebError::Core(e) => e,
            other => Error::internal_msg(other.to_string()),
        }
    }
}
