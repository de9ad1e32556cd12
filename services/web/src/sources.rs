//! A workspace's synced sources on its documents page: each folder or web site with its
//! schedule, state and last sync, and the documents of it that failed with their reasons;
//! "Sync now" and "Remove" for editors and owners; adding a source (a folder, or a web
//! site) and changing one for site administrators only, since a folder source reads the
//! server's disk and a web source makes the server fetch from the network. Everything
//! goes through ingest's sources API acting for the signed-in person, which checks the
//! same rules again (the folder inside `ingest.source_roots`, the globs, a public address,
//! a name unique in the workspace); what it refuses comes back as the page's error notice
//! with the form filled in as it was sent.

use std::str::FromStr;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use lectern_api::ingest::{
    CreateSource, FOLDER_SOURCE, FolderSettings, SourceOut, SyncResult, UpdateSource, WEB_SOURCE,
    WebSettings,
};
use lectern_auth::Action;
use lectern_core::Error;
use lectern_runtime::Context;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::{FormData, SignedIn};
use crate::backend::Backend;
use crate::error::WebResult;
use crate::views::{flash, page_with, redirect};
use crate::workspaces::{documents_page, role};

/// What adding or changing a source asks of the person, beyond editing the workspace.
const ADMINS_ONLY: &str = "only a site administrator may add or change a source: a folder reads the server's disk, a web site makes the server fetch from the network";

/// A source as the documents page lists it.
pub(crate) struct SourceRow {
    pub id: Uuid,
    pub name: String,
    /// `folder` or `web`.
    pub kind: String,
    /// The folder on the server, or the web site's start URL; for a kind of source this
    /// app does not know, the kind.
    pub location: String,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// A web site's prefix, depth and page limit, for people.
    pub web_limits: Option<String>,
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
    /// Its documents that failed (refused by a sync, or unreadable when indexed), with
    /// their reasons.
    pub failures: Vec<FailedDocument>,
    /// The edit form (site administrators): the source as it is, or as a refused edit
    /// sent it.
    pub form: SourceForm,
    /// Whether the edit form is shown open: it was refused, and comes back to be fixed.
    pub editing: bool,
}

/// A document of a source that failed, by its key in the source.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FailedDocument {
    pub key: String,
    pub reason: String,
}

impl SourceRow {
    pub fn new(s: SourceOut, now: DateTime<Utc>) -> Self {
        let form = SourceForm::of(&s);
        let folder = (s.kind == FOLDER_SOURCE)
            .then(|| serde_json::from_value::<FolderSettings>(s.settings.clone()).ok())
            .flatten();
        let site = (s.kind == WEB_SOURCE)
            .then(|| serde_json::from_value::<WebSettings>(s.settings.clone()).ok())
            .flatten();
        let (location, include, exclude, web_limits) = match (folder, site) {
            (Some(f), _) => (f.path, f.include, f.exclude, None),
            (None, Some(w)) => {
                let limits = web_limits(&w);
                (w.url, Vec::new(), Vec::new(), Some(limits))
            }
            (None, None) => (s.kind.clone(), Vec::new(), Vec::new(), None),
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
            kind: s.kind,
            location,
            include,
            exclude,
            web_limits,
            schedule: schedule(s.interval_secs),
            next_sync: s.next_sync_at.filter(|_| !due_now).map(when),
            busy,
            state: s.state,
            last_sync: s.last_sync_at.map(when),
            last_sync_at: s.last_sync_at.map(json_time).unwrap_or_default(),
            result: s.last_result,
            error: s.last_error,
            documents: s.documents,
            failures: Vec::new(),
            form,
            editing: false,
        }
    }
}

/// A web site's limits, for people: "under PREFIX · depth N · at most P pages".
fn web_limits(w: &WebSettings) -> String {
    let mut parts = Vec::new();
    if let Some(prefix) = &w.prefix {
        parts.push(format!("under {prefix}"));
    }
    if let Some(depth) = w.depth {
        parts.push(format!("depth {depth}"));
    }
    if let Some(pages) = w.pages {
        parts.push(format!("at most {pages} pages"));
    }
    parts.join(" · ")
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

/// A source form as it was sent (adding a folder or a web site, or changing a source), so
/// that a refused one comes back filled in; empty on a fresh page, or the source as it is
/// for an edit form.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct SourceForm {
    /// `folder` or `web`: the add form's hidden field; for an edit, the source's own kind.
    pub kind: String,
    /// A folder: its path on the server.
    pub path: String,
    /// A web site: its start URL, prefix, depth and page limit (empty: the defaults).
    pub url: String,
    pub prefix: String,
    pub depth: String,
    pub pages: String,
    pub name: String,
    /// Globs, one per line or separated by commas.
    pub include: String,
    pub exclude: String,
    /// Seconds between syncs; empty: only when asked.
    pub interval: String,
}

/// Entered source forms given back to the page: none, the add form, or one source's
/// edit form.
#[derive(Debug, Default, Clone)]
pub(crate) enum Entered {
    #[default]
    Nothing,
    Add(SourceForm),
    Edit(Uuid, SourceForm),
}

impl SourceForm {
    fn read(form: &FormData) -> Self {
        let field = |name: &str| form.raw(name).trim().to_owned();
        let kind = match form.raw("kind").trim() {
            "" => FOLDER_SOURCE.to_owned(),
            kind => kind.to_owned(),
        };
        Self {
            kind,
            path: field("path"),
            url: field("url"),
            prefix: field("prefix"),
            depth: field("depth"),
            pages: field("pages"),
            name: field("name"),
            include: field("include"),
            exclude: field("exclude"),
            interval: field("interval"),
        }
    }

    /// The source as it is, for its edit form.
    fn of(s: &SourceOut) -> Self {
        let mut form = Self {
            kind: s.kind.clone(),
            name: s.name.clone(),
            interval: s.interval_secs.map(|i| i.to_string()).unwrap_or_default(),
            ..Self::default()
        };
        if s.kind == FOLDER_SOURCE
            && let Ok(f) = serde_json::from_value::<FolderSettings>(s.settings.clone())
        {
            form.path = f.path;
            form.include = join_globs(&f.include);
            form.exclude = join_globs(&f.exclude);
        } else if s.kind == WEB_SOURCE
            && let Ok(w) = serde_json::from_value::<WebSettings>(s.settings.clone())
        {
            let number = |n: Option<u32>| n.map(|n| n.to_string()).unwrap_or_default();
            form.url = w.url;
            form.prefix = w.prefix.unwrap_or_default();
            form.depth = number(w.depth);
            form.pages = number(w.pages);
        }
        form
    }

    /// The request adding a source. Only the form's own shape is checked here (a folder
    /// or a URL given, whole numbers); ingest judges the folder, the globs, the address,
    /// the limits and the name.
    fn request(&self) -> Result<CreateSource, Error> {
        let interval_secs = self.interval()?;
        Ok(CreateSource {
            kind: self.kind.clone(),
            name: Some(self.name.clone()).filter(|n| !n.is_empty()),
            settings: self.settings()?.ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown source kind {:?}: add a folder or a web site",
                    self.kind
                ))
            })?,
            interval_secs,
        })
    }

    /// The request changing a source of the form's kind to what the form says: every
    /// field replaces the source's (an empty prefix, depth or page limit: the default).
    fn update(&self) -> Result<UpdateSource, Error> {
        Ok(UpdateSource {
            name: Some(self.name.clone()),
            interval_secs: Some(self.interval()?),
            settings: self.settings()?,
        })
    }

    /// The settings of the form's kind (none for a kind this app does not know).
    fn settings(&self) -> Result<Option<Value>, Error> {
        match self.kind.as_str() {
            FOLDER_SOURCE => {
                if self.path.is_empty() {
                    return Err(Error::Invalid(
                        "the folder is missing: give its absolute path on the server".into(),
                    ));
                }
                Ok(Some(json!({
                    "path": self.path,
                    "include": split_globs(&self.include),
                    "exclude": split_globs(&self.exclude),
                })))
            }
            WEB_SOURCE => {
                if self.url.is_empty() {
                    return Err(Error::Invalid(
                        "the start URL is missing: give the address of the site's first page"
                            .into(),
                    ));
                }
                Ok(Some(json!({
                    "url": self.url,
                    "prefix": Some(&self.prefix).filter(|p| !p.is_empty()),
                    "depth": whole::<u32>(&self.depth, "the depth (links followed from the start page)")?,
                    "pages": whole::<u32>(&self.pages, "the page limit")?,
                })))
            }
            _ => Ok(None),
        }
    }

    fn interval(&self) -> Result<Option<u64>, Error> {
        whole::<u64>(&self.interval, "the interval").map_err(|_| {
            Error::Invalid(format!(
                "the interval is a whole number of seconds (or empty: only when asked), not {:?}",
                self.interval
            ))
        })
    }
}

/// A whole number from a form field; empty: none.
fn whole<T: FromStr>(text: &str, what: &str) -> Result<Option<T>, Error> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<T>().map(Some).map_err(|_| {
        Error::Invalid(format!(
            "{what} is a whole number (or empty: the default), not {text:?}"
        ))
    })
}

/// Globs as a form shows them, one per line; a comma outside braces is escaped (`\,`,
/// which matches a comma as the bare one did), so that [`split_globs`] reads back globs
/// that take the same files.
pub(crate) fn join_globs(globs: &[String]) -> String {
    let mut lines = Vec::with_capacity(globs.len());
    for glob in globs {
        let mut line = String::with_capacity(glob.len());
        let mut braces = 0usize;
        let mut escaped = false;
        for c in glob.chars() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '{' => braces += 1,
                '}' => braces = braces.saturating_sub(1),
                ',' if braces == 0 => line.push('\\'),
                _ => {}
            }
            line.push(c);
        }
        lines.push(line);
    }
    lines.join("\n")
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
/// [`notice_status`]), and the form that was refused filled in as it was sent; the error
/// itself otherwise.
async fn refused(
    ctx: &Context,
    backend: &Backend,
    me: &SignedIn,
    ws: Uuid,
    e: Error,
    entered: Entered,
) -> WebResult<HttpResponse> {
    let Some(status) = notice_status(&e) else {
        return Err(e.into());
    };
    let page = documents_page(ctx, backend, me, ws, Some(e.to_string()), entered).await?;
    page_with(status, &page)
}

/// Adds a source (site administrators): a folder, or a web site (the form's `kind`), its
/// first sync queued at once.
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
            let message = if added.kind == WEB_SOURCE {
                format!(
                    "Web source “{}” added; its first crawl is queued, and its pages appear below as they are read.",
                    added.name
                )
            } else {
                format!(
                    "Folder source “{}” added; its first sync is queued, and its documents appear below as they are read.",
                    added.name
                )
            };
            flash(&me.session, message);
            Ok(redirect(&format!("/w/{ws}/documents")))
        }
        Err(e) => refused(&ctx, &backend, &me, ws, e, Entered::Add(entered)).await,
    }
}

/// Changes a source (site administrators, as for adding one): its name, schedule and
/// settings, each field of the form replacing the source's. The next sync applies them.
pub async fn edit(
    ctx: web::Data<Context>,
    backend: web::Data<Backend>,
    me: SignedIn,
    path: web::Path<(Uuid, Uuid)>,
    form: FormData,
) -> WebResult<HttpResponse> {
    let (ws, id) = path.into_inner();
    role(&ctx, &me, ws, Action::Edit).await?;
    if !me.user.is_admin {
        return Err(Error::Forbidden(ADMINS_ONLY.into()).into());
    }
    let client = backend.client(me.id())?;
    let source = client.source(ws, id).await?;
    // The source's own kind, whatever the form says.
    let entered = SourceForm {
        kind: source.kind,
        ..SourceForm::read(&form)
    };
    let changed = match entered.update() {
        Ok(body) => client.update_source(ws, id, &body).await,
        Err(e) => Err(e),
    };
    match changed {
        Ok(changed) => {
            flash(
                &me.session,
                format!(
                    "“{}” changed; its next sync applies the change (Sync now to apply it at once).",
                    changed.name
                ),
            );
            Ok(redirect(&format!("/w/{ws}/documents")))
        }
        Err(e) => refused(&ctx, &backend, &me, ws, e, Entered::Edit(id, entered)).await,
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
        Err(e) => refused(&ctx, &backend, &me, ws, e, Entered::Nothing).await,
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
    fn globs_shown_in_a_form_are_read_back_matching_the_same_files() {
        let globs: Vec<String> = ["*.{pdf,md}", "drafts/**", "a,b.md", r"c\,d.md"]
            .map(String::from)
            .into();
        let shown = join_globs(&globs);
        assert_eq!(shown, "*.{pdf,md}\ndrafts/**\na\\,b.md\nc\\,d.md");
        // A comma outside braces comes back escaped, which globs read as a comma.
        assert_eq!(
            split_globs(&shown),
            ["*.{pdf,md}", "drafts/**", r"a\,b.md", r"c\,d.md"]
        );
        assert_eq!(join_globs(&[]), "");
    }

    #[test]
    fn the_form_becomes_a_folder_request() {
        let form = SourceForm {
            kind: "folder".into(),
            path: "/srv/documents/handbook".into(),
            include: "*.md\n*.pdf".into(),
            exclude: "drafts/**".into(),
            interval: "3600".into(),
            ..SourceForm::default()
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
    fn the_form_becomes_a_web_request_with_the_defaults_left_out() {
        let form = SourceForm {
            kind: "web".into(),
            url: "https://docs.example.org/guide/".into(),
            depth: "2".into(),
            ..SourceForm::default()
        };
        let body = form.request().unwrap();
        assert_eq!(body.kind, "web");
        let settings: WebSettings = serde_json::from_value(body.settings).unwrap();
        assert_eq!(
            settings,
            WebSettings {
                url: "https://docs.example.org/guide/".into(),
                prefix: None,
                depth: Some(2),
                pages: None,
            }
        );
        let deep = SourceForm {
            depth: "deep".into(),
            ..form.clone()
        };
        assert!(matches!(deep.request(), Err(Error::Invalid(m)) if m.contains("\"deep\"")));
        let nowhere = SourceForm {
            url: String::new(),
            ..form
        };
        assert!(matches!(nowhere.request(), Err(Error::Invalid(m)) if m.contains("start URL")));
    }

    #[test]
    fn an_edit_form_shows_the_source_and_replaces_every_field() {
        let now = Utc::now();
        let site = SourceOut {
            id: Uuid::new_v4(),
            workspace_id: Uuid::new_v4(),
            name: "docs".into(),
            kind: "web".into(),
            settings: serde_json::json!({"url": "https://docs.example.org/guide/intro.html", "prefix": "https://docs.example.org/guide/", "depth": 5, "pages": 500}),
            interval_secs: None,
            state: "idle".into(),
            next_sync_at: None,
            last_sync_at: None,
            last_result: None,
            last_error: None,
            documents: 0,
            created_at: now,
        };
        let form = SourceForm::of(&site);
        assert_eq!(
            (
                form.url.as_str(),
                form.prefix.as_str(),
                form.depth.as_str(),
                form.pages.as_str()
            ),
            (
                "https://docs.example.org/guide/intro.html",
                "https://docs.example.org/guide/",
                "5",
                "500"
            )
        );
        assert_eq!((form.name.as_str(), form.interval.as_str()), ("docs", ""));
        let edited = SourceForm {
            prefix: String::new(),
            interval: "600".into(),
            ..form
        };
        let body = edited.update().unwrap();
        assert_eq!(body.name.as_deref(), Some("docs"));
        assert_eq!(body.interval_secs, Some(Some(600)));
        let settings = body.settings.unwrap();
        assert_eq!(
            settings["prefix"],
            serde_json::Value::Null,
            "back to the default"
        );
        assert_eq!(settings["depth"], 5);
        let asked = SourceForm {
            interval: String::new(),
            ..edited
        };
        assert_eq!(
            asked.update().unwrap().interval_secs,
            Some(None),
            "only when asked"
        );

        let folder = SourceOut {
            kind: "folder".into(),
            settings: serde_json::json!({"path": "/srv/handbook", "include": ["*.md", "a,b.md"], "exclude": []}),
            interval_secs: Some(3600),
            ..site
        };
        let form = SourceForm::of(&folder);
        assert_eq!(form.path, "/srv/handbook");
        assert_eq!(form.include, "*.md\na\\,b.md");
        assert_eq!(form.interval, "3600");
        let row = SourceRow::new(folder, now);
        assert_eq!(row.form, form);
        assert!(!row.editing && row.failures.is_empty());
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
