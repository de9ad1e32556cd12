//! A workspace's synced sources on its documents page: each folder with its schedule,
//! state and last sync; "Sync now" and "Remove" for editors and owners; "Add a folder
//! source" for site administrators only, since a folder source reads the server's disk.
//! Everything goes through ingest's sources API acting for the signed-in person, which
//! checks the same rules again (the folder inside `ingest.source_roots`, the globs, a
//! name unique in the workspace); what it refuses comes back as the page's error notice
//! with the form filled in as it was sent.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use lectern_api::ingest::{CreateSource, FOLDER_SOURCE, FolderSettings, SourceOut, SyncResult};
use lectern_auth::Action;
use lectern_core::Error;
use lectern_runtime::Context;
use uuid::Uuid;

use crate::auth::{FormData, SignedIn};
use crate::backend::Backend;
use crate::error::WebResult;
use crate::views::{flash, page_with, redirect};
use crate::workspaces::{documents_page, role};

/// What adding a source asks of the person, beyond editing the workspace.
const ADMINS_ONLY: &str =
    "only a site administrator may add a folder source: it reads the server's disk";

/// A source as the documents page lists it.
pub(crate) struct SourceRow {
    pub id: Uuid,
    pub name: String,
    /// The folder on the server; for a kind of source this app does not know, the kind.
    pub location: String,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// "every N s", or "when asked".
    pub schedule: String,
    /// idle, queued, running or deleting.
    pub state: String,
    /// When the queued sync is due (UTC), for a sync due later than now.
    pub next_sync: Option<String>,
    /// Whether a sync is running or due now: the page's script then watches for its end.
    pub busy: bool,
    /// When the last sync ended (UTC), for people; and as RFC 3339 for the page's script
    /// (empty when there was none), which reloads the page when it changes.
    pub last_sync: Option<String>,
    pub last_sync_at: String,
    pub result: Option<SyncResult>,
    pub error: Option<String>,
    pub documents: u64,
}

impl SourceRow {
    pub fn new(s: SourceOut, now: DateTime<Utc>) -> Self {
        let folder = (s.kind == FOLDER_SOURCE)
            .then(|| serde_json::from_value::<FolderSettings>(s.settings.clone()).ok())
            .flatten();
        let (location, include, exclude) = match folder {
            Some(f) => (f.path, f.include, f.exclude),
            None => (s.kind.clone(), Vec::new(), Vec::new()),
        };
        let due_now = s.next_sync_at.is_none_or(|at| at <= now);
        let busy = match s.state.as_str() {
            "running" => true,
            "queued" => due_now,
            _ => false,
        };
        Self {
            id: s.id,
            name: s.name,
            location,
            include,
            exclude,
            schedule: schedule(s.interval_secs),
            next_sync: s.next_sync_at.filter(|_| !due_now).map(when),
            busy,
            state: s.state,
            last_sync: s.last_sync_at.map(when),
            last_sync_at: s.last_sync_at.map(json_time).unwrap_or_default(),
            result: s.last_result,
            error: s.last_error,
            documents: s.documents,
        }
    }
}

/// How often a source is synced, for people.
fn schedule(interval_secs: Option<u64>) -> String {
    match interval_secs {
        None => "when asked".into(),
        Some(secs) => format!("every {secs} s"),
    }
}

fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// `at` exactly as the JSON of `/w/{ws}/sources.json` writes it: the page's script
/// compares the two to see that a sync ended.
fn json_time(at: DateTime<Utc>) -> String {
    serde_json::to_value(at)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The "Add a folder source" form as it was sent, so that a refused one comes back filled
/// in (empty on a fresh page).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct SourceForm {
    pub path: String,
    pub name: String,
    /// Globs, one per line or separated by commas.
    pub include: String,
    pub exclude: String,
    /// Seconds between syncs; empty: only when asked.
    pub interval: String,
}

impl SourceForm {
    fn read(form: &FormData) -> Self {
        Self {
            path: form.raw("path").trim().to_owned(),
            name: form.raw("name").trim().to_owned(),
            include: form.raw("include").trim().to_owned(),
            exclude: form.raw("exclude").trim().to_owned(),
            interval: form.raw("interval").trim().to_owned(),
        }
    }

    /// The request to ingest. Only the form's own shape is checked here (a path given, a
    /// whole number of seconds); ingest judges the folder, the globs and the name.
    fn request(&self) -> Result<CreateSource, Error> {
        if self.path.is_empty() {
            return Err(Error::Invalid(
                "the folder is missing: give its absolute path on the server".into(),
            ));
        }
        let interval_secs = match self.interval.as_str() {
            "" => None,
            text => Some(text.parse::<u64>().map_err(|_| {
                Error::Invalid(format!(
                    "the interval is a whole number of seconds (or empty: only when asked), not {text:?}"
                ))
            })?),
        };
        Ok(CreateSource {
            kind: FOLDER_SOURCE.into(),
            name: Some(self.name.clone()).filter(|n| !n.is_empty()),
            settings: serde_json::json!({
                "path": self.path,
                "include": split_globs(&self.include),
                "exclude": split_globs(&self.exclude),
            }),
            interval_secs,
        })
    }
}

/// Globs as the form takes them: one per line or separated by commas, except the commas
/// that belong to a glob (inside `{pdf,md}`, or escaped as `\,`).
pub(crate) fn split_globs(text: &str) -> Vec<String> {
    let mut globs = Vec::new();
    let mut current = String::new();
    let mut braces = 0usize;
    let mut escaped = false;
    for c in text.chars() {
        if escaped {
            current.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                current.push(c);
                escaped = true;
            }
            '{' => {
                braces += 1;
                current.push(c);
            }
            '}' => {
                braces = braces.saturating_sub(1);
                current.push(c);
            }
            ',' if braces == 0 => globs.push(std::mem::take(&mut current)),
            '\n' | '\r' => {
                globs.push(std::mem::take(&mut current));
                braces = 0;
            }
            _ => current.push(c),
        }
    }
    globs.push(current);
    globs
        .into_iter()
        .map(|g| g.trim().to_owned())
        .filter(|g| !g.is_empty())
        .collect()
}

/// The status of a refusal that the documents page shows as its error notice (the form's
/// own mistakes, a folder outside the allowed directories, a name taken, a sync already
/// running); any other error gets the error page.
fn notice_status(e: &Error) -> Option<StatusCode> {
    match e {
        Error::Invalid(_) => Some(StatusCode::BAD_REQUEST),
        Error::Forbidden(_) => Some(StatusCode::FORBIDDEN),
        Error::Conflict(_) => Some(StatusCode::CONFLICT),
        _ => None,
    }
}

/// The documents page again with `e` as its notice, when it is one (see
/// [`notice_status`]); the error itself otherwise.
async fn refused(
    ctx: &Context,
    backend: &Backend,
    me: &SignedIn,
    ws: Uuid,
    e: Error,
    form: SourceForm,
) -> WebResult<HttpResponse> {
    let Some(status) = notice_status(&e) else {
        return Err(e.into());
    };
    let page = documents_page(ctx, backend, me, ws, Some(e.to_string()), form).await?;
    page_with(status, &page)
}

/// Adds a folder source (site administrators), its first sync queued at once.
pub async fn add(
    ctx: web::Data<Context>,
    backend: web::Data<Backend>,
    me: SignedIn,
    path: web::Path<Uuid>,
    form: FormData,
) -> WebResult<HttpResponse> {
    let ws = path.into_inner();
    role(&ctx, &me, ws, Action::Edit).await?;
    if !me.user.is_admin {
        return Err(Error::Forbidden(ADMINS_ONLY.into()).into());
    }
    let entered = SourceForm::read(&form);
    let added = match entered.request() {
        Ok(body) => backend.client(me.id())?.create_source(ws, &body).await,
        Err(e) => Err(e),
    };
    match added {
        Ok(added) => {
            flash(
                &me.session,
                format!(
                    "Folder source “{}” added; its first sync is queued, and its documents appear below as they are read.",
                    added.name
                ),
            );
            Ok(redirect(&format!("/w/{ws}/documents")))
        }
        Err(e) => refused(&ctx, &backend, &me, ws, e, entered).await,
    }
}

/// Queues a sync of the source now (editors and owners).
pub async fn sync(
    ctx: web::Data<Context>,
    backend: web::Data<Backend>,
    me: SignedIn,
    path: web::Path<(Uuid, Uuid)>,
) -> WebResult<HttpResponse> {
    let (ws, id) = path.into_inner();
    role(&ctx, &me, ws, Action::Edit).await?;
    match backend.client(me.id())?.sync_source(ws, id).await {
        Ok(source) => {
            let message = if source.state == "running" {
                format!(
                    "“{}” is syncing now; its result shows here when it ends.",
                    source.name
                )
            } else {
                format!(
                    "A sync of “{}” is queued; its result shows here when it ends.",
                    source.name
                )
            };
            flash(&me.session, message);
            Ok(redirect(&format!("/w/{ws}/documents")))
        }
        Err(e) => refused(&ctx, &backend, &me, ws, e, SourceForm::default()).await,
    }
}

/// Removes the source and every document it brought (editors and owners).
pub async fn remove(
    ctx: web::Data<Context>,
    backend: web::Data<Backend>,
    me: SignedIn,
    path: web::Path<(Uuid, Uuid)>,
) -> WebResult<HttpResponse> {
    let (ws, id) = path.into_inner();
    role(&ctx, &me, ws, Action::Edit).await?;
    let client = backend.client(me.id())?;
    let source = client.source(ws, id).await?;
    client.delete_source(ws, id).await?;
    flash(
        &me.session,
        format!(
            "“{}” removed, with the {} document(s) it brought.",
            source.name, source.documents
        ),
    );
    Ok(redirect(&format!("/w/{ws}/documents")))
}

/// The sources with their state and last sync, for the page's script.
pub async fn list_json(
    backend: web::Data<Backend>,
    me: SignedIn,
    path: web::Path<Uuid>,
) -> WebResult<HttpResponse> {
    let sources = backend.client(me.id())?.sources(path.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "sources": sources })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_split_on_lines_and_commas_but_not_inside_braces() {
        assert_eq!(
            split_globs("*.{pdf,docx,md}, drafts/**\r\nold/*.txt\n\n ,"),
            ["*.{pdf,docx,md}", "drafts/**", "old/*.txt"]
        );
        assert_eq!(split_globs(r"a\,b.md,c.md"), [r"a\,b.md", "c.md"]);
        assert!(split_globs("  \n ").is_empty());
    }

    #[test]
    fn the_form_becomes_a_folder_request() {
        let form = SourceForm {
            path: "/srv/documents/handbook".into(),
            name: String::new(),
            include: "*.md\n*.pdf".into(),
            exclude: "drafts/**".into(),
            interval: "3600".into(),
        };
        let body = form.request().unwrap();
        assert_eq!(body.kind, "folder");
        assert_eq!(body.name, None);
        assert_eq!(body.interval_secs, Some(3600));
        let settings: FolderSettings = serde_json::from_value(body.settings).unwrap();
        assert_eq!(
            settings,
            FolderSettings {
                path: "/srv/documents/handbook".into(),
                include: vec!["*.md".into(), "*.pdf".into()],
                exclude: vec!["drafts/**".into()],
            }
        );
        let every = SourceForm {
            interval: "hourly".into(),
            ..form.clone()
        };
        assert!(matches!(every.request(), Err(Error::Invalid(m)) if m.contains("hourly")));
        let nowhere = SourceForm {
            path: String::new(),
            ..form
        };
        assert!(matches!(nowhere.request(), Err(Error::Invalid(_))));
    }

    #[test]
    fn a_row_shows_the_folder_its_schedule_and_whether_a_sync_is_due() {
        let now = Utc::now();
        let source = SourceOut {
            id: Uuid::new_v4(),
            workspace_id: Uuid::new_v4(),
            name: "handbook".into(),
            kind: "folder".into(),
            settings: serde_json::json!({"path": "/srv/handbook", "include": ["*.md"], "exclude": []}),
            interval_secs: Some(3600),
            state: "queued".into(),
            next_sync_at: Some(now + chrono::Duration::hours(1)),
            last_sync_at: Some(now),
            last_result: Some(SyncResult {
                added: 2,
                ..SyncResult::default()
            }),
            last_error: None,
            documents: 2,
            created_at: now,
        };
        let later = SourceRow::new(source.clone(), now);
        assert_eq!(later.location, "/srv/handbook");
        assert_eq!(later.include, ["*.md"]);
        assert_eq!(later.schedule, "every 3600 s");
        assert!(!later.busy, "the next sync is an hour away");
        assert!(later.next_sync.is_some());
        assert_eq!(
            serde_json::Value::from(later.last_sync_at.as_str()),
            serde_json::to_value(now).unwrap(),
            "as the sources' JSON writes it"
        );
        let asked = SourceRow::new(
            SourceOut {
                interval_secs: None,
                next_sync_at: Some(now),
                last_sync_at: None,
                ..source
            },
            now,
        );
        assert_eq!(asked.schedule, "when asked");
        assert!(asked.busy && asked.next_sync.is_none());
        assert_eq!(asked.last_sync_at, "");
    }
}
