//! Workspaces, their documents (upload, live status, delete, re-index, originals) and
//! their members. Every handler first resolves the signed-in person's role in the
//! workspace: a non-member gets "not found", exactly as for a workspace that does not
//! exist; ingest then checks the same role again on its side.

use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use futures::StreamExt;
use lectern_api::ingest::{DocumentOut, WorkspaceOut};
use lectern_auth::Action;
use lectern_core::{Error, Role};
use lectern_runtime::Context;
use lectern_store::Member;
use uuid::Uuid;

use crate::accounts::audit;
use crate::auth::{CSRF_HEADER, CSRF_REFUSED, FormData, SignedIn, csrf_ok};
use crate::backend::Backend;
use crate::error::{WebError, WebResult};
use crate::render::PageRenderer;
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
async fn role(ctx: &Context, me: &SignedIn, ws: Uuid, action: Action) -> WebResult<(String, Role)> {
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
struct DocumentsPage {
    layout: Layout,
    nav: WorkspaceNav,
    can_edit: bool,
    documents: Vec<DocumentOut>,
}

pub async fn documents(
    ctx: web::Data<Context>,
    backend: web::Data<Backend>,
    me: SignedIn,
    path: web::Path<Uuid>,
) -> WebResult<HttpResponse> {
    let ws = path.into_inner();
    let (ws_name, role) = role(&ctx, &me, ws, Action::Read).await?;
    let documents = backend.client(me.id())?.documents(ws).await?;
    page(&DocumentsPage {
        layout: Layout::signed_in(&me, format!("Documents · {ws_name}"), "workspaces"),
        nav: WorkspaceNav {
            ws_id: ws,
            ws_name,
            role: role.as_str(),
            tab: "documents",
        },
        can_edit: role.can_edit(),
        documents,
    })
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

/// Most bytes of one upload request (the files together).
const UPLOAD_LIMIT_FACTOR: u64 = 4;

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
    let limit = ctx.settings.ingest.max_file_mb * 1_048_576 * UPLOAD_LIMIT_FACTOR;
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
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| Error::Invalid(format!("the upload broke off: {e}")))?;
            total += chunk.len() as u64;
            if total > limit {
                return Err(Error::Invalid(format!(
                    "the upload is over {} MB; send fewer files at once",
                    limit / 1_048_576
                ))
                .into());
            }
            bytes.extend_from_slice(&chunk);
        }
        match file_name {
            None if name == "csrf" => {
                checked = checked || csrf_ok(&me.session, std::str::from_utf8(&bytes).ok());
            }
            None => {}
            Some(file_name) => {
                if !checked {
                    return Err(Error::Forbidden(CSRF_REFUSED.into()).into());
                }
                if file_name.is_empty() && bytes.is_empty() {
                    continue; // the browser's "no file chosen"
                }
                files += 1;
                form = form.part(
                    "files",
                    reqwest::multipart::Part::bytes(bytes).file_name(file_name),
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
    let original = backend.client(me.id())?.original(ws, doc).await?;
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
    Ok(response.body(original.bytes))
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
    error: Option<String>,
}

async fn members_page(
    ctx: &Context,
    me: &SignedIn,
    ws: Uuid,
    error: Option<String>,
) -> WebResult<MembersPage> {
    let (ws_name, role) = role(ctx, me, ws, Action::Read).await?;
    Ok(MembersPage {
        layout: Layout::signed_in(me, format!("Members · {ws_name}"), "workspaces"),
        nav: WorkspaceNav {
            ws_id: ws,
            ws_name,
            role: role.as_str(),
            tab: "members",
        },
        can_manage: role.can_manage_members(),
        members: ctx.store.members_of(ws).await?,
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
async fn last_owner(ctx: &Context, ws: Uuid, user: Uuid) -> WebResult<bool> {
    let members = ctx.store.members_of(ws).await?;
    let owners: Vec<_> = members.iter().filter(|m| m.role == Role::Owner).collect();
    Ok(owners.len() == 1 && owners[0].user.id == user)
}

/// Adds a member or changes a role. The answer is the same whether or not the email has
/// an account, so that owners (anyone can make a workspace) cannot probe for accounts.
pub async fn set_member(
    ctx: web::Data<Context>,
    me: SignedIn,
    path: web::Path<Uuid>,
    form: FormData,
) -> WebResult<HttpResponse> {
    let ws = path.into_inner();
    role(&ctx, &me, ws, Action::Manage).await?;
    let result = async {
        let email = form.require("email", "the email")?.to_lowercase();
        let new_role: Role = form.require("role", "the role")?.parse()?;
        if let Some(user) = ctx.store.find_user_by_email(&email).await? {
            if new_role != Role::Owner && last_owner(&ctx, ws, user.id).await? {
                return Err(Error::Invalid(
                    "the workspace needs at least one owner; make someone else owner first".into(),
                ));
            }
            ctx.store.set_member(ws, user.id, new_role).await?;
            audit(
                &ctx,
                Some(me.id()),
                "member.set",
                Some(ws),
                Some(user.email.clone()),
                Some(serde_json::json!({ "role": new_role.as_str() })),
            )
            .await;
        }
        Ok::<_, Error>((email, new_role))
    }
    .await;
    match result {
        Ok((email, new_role)) => {
            flash(
                &me.session,
                format!(
                    "If {email} has a Lectern account, it is now {} here. If not, ask them to sign up (or an administrator to create the account), then add them again.",
                    new_role.as_str()
                ),
            );
            Ok(redirect(&format!("/w/{ws}/members")))
        }
        Err(Error::Invalid(message)) => page_with(
            actix_web::http::StatusCode::BAD_REQUEST,
            &members_page(&ctx, &me, ws, Some(message)).await?,
        ),
        Err(e) => Err(e.into()),
    }
}

pub async fn remove_member(
    ctx: web::Data<Context>,
    me: SignedIn,
    path: web::Path<(Uuid, Uuid)>,
) -> WebResult<HttpResponse> {
    let (ws, user) = path.into_inner();
    role(&ctx, &me, ws, Action::Manage).await?;
    if last_owner(&ctx, ws, user).await? {
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
