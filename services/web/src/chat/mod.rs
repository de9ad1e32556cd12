//! Asking: conversations, streamed answers, citations that open on their page, feedback.
//!
//! - [`view`]: an answer as the page shows it (citation links, unsupported sentences);
//! - [`relay`]: the streamed answer passed from the query service to the browser;
//! - here: the page handlers.
//!
//! Without JavaScript the form posts, waits for the whole answer and shows the page.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use bytes::Bytes;
use lectern_api::query::{Answer, AnswerBody, ConversationDetail, MessageOut};
use lectern_core::Error;
use lectern_runtime::Context;
use lectern_runtime::http::sse_response;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::accounts::audit;
use crate::auth::{FormData, SignedIn, query_map};
use crate::backend::Backend;
use crate::error::{WebResult, from_script};
use crate::render::{PageRenderer, PageView};
use crate::views::{Layout, page, redirect, wants_json};

pub mod markdown;
pub mod relay;
pub mod view;

use view::{Exchange, exchange, original_href, reflow};

pub struct WorkspaceChoice {
    pub id: Uuid,
    pub name: String,
    /// Shared with the person, not theirs: tells it from one of theirs of the same name.
    pub shared: bool,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "chat.html")]
struct ChatPage {
    layout: Layout,
    csrf: String,
    heading: String,
    conversation_id: Option<Uuid>,
    conversations: Vec<HistoryItem>,
    workspaces: Vec<WorkspaceChoice>,
    exchanges: Vec<Exchange>,
}

/// A conversation in the history list.
pub struct HistoryItem {
    pub id: Uuid,
    pub title: String,
    pub current: bool,
}

async fn history(
    backend: &Backend,
    me: &SignedIn,
    current: Option<Uuid>,
) -> WebResult<Vec<HistoryItem>> {
    Ok(backend
        .client(me.id())?
        .conversations()
        .await?
        .into_iter()
        .map(|c| HistoryItem {
            current: Some(c.id) == current,
            id: c.id,
            title: c.title,
        })
        .collect())
}

async fn choices(
    backend: &Backend,
    me: &SignedIn,
    checked: &[Uuid],
) -> WebResult<Vec<WorkspaceChoice>> {
    let all = backend.client(me.id())?.workspaces().await?;
    let none_chosen = checked.is_empty();
    Ok(all
        .into_iter()
        .map(|w| WorkspaceChoice {
            checked: none_chosen || checked.contains(&w.id),
            id: w.id,
            name: w.name,
            shared: !w.owned,
        })
        .collect())
}

/// A new conversation (`?ws=ID` preselects a workspace).
pub async fn new_chat(
    backend: web::Data<Backend>,
    me: SignedIn,
    req: HttpRequest,
) -> WebResult<HttpResponse> {
    let chosen: Vec<Uuid> = query_map(&req)
        .get("ws")
        .and_then(|w| w.parse().ok())
        .into_iter()
        .collect();
    page(&ChatPage {
        layout: Layout::signed_in(&me, "Ask", "chat"),
        csrf: me.csrf(),
        heading: "Ask your documents".into(),
        conversation_id: None,
        conversations: history(&backend, &me, None).await?,
        workspaces: choices(&backend, &me, &chosen).await?,
        exchanges: Vec::new(),
    })
}

fn exchanges_of(
    detail: &ConversationDetail,
    feedback: &HashMap<Uuid, lectern_store::entity::feedback::Model>,
) -> Vec<Exchange> {
    let mut out = Vec::new();
    let mut question = None;
    for m in &detail.messages {
        if m.role == "user" {
            question = Some(m.content.clone());
        } else if let Some(q) = question.take() {
            let answer = m.details.clone().unwrap_or_else(|| Answer {
                answer: m.content.clone(),
                ..Answer::default()
            });
            out.push(exchange(
                detail.conversation.id,
                m.id,
                q,
                &answer,
                feedback.get(&m.id),
            ));
        }
    }
    out
}

pub async fn conversation(
    ctx: web::Data<Context>,
    backend: web::Data<Backend>,
    me: SignedIn,
    path: web::Path<Uuid>,
) -> WebResult<HttpResponse> {
    let detail = backend
        .client(me.id())?
        .conversation(path.into_inner())
        .await?;
    let ids: Vec<Uuid> = detail.messages.iter().map(|m| m.id).collect();
    let feedback = ctx.store.feedback_of(me.id(), &ids).await?;
    page(&ChatPage {
        layout: Layout::signed_in(&me, detail.conversation.title.clone(), "chat"),
        csrf: me.csrf(),
        heading: detail.conversation.title.clone(),
        conversation_id: Some(detail.conversation.id),
        conversations: history(&backend, &me, Some(detail.conversation.id)).await?,
        workspaces: choices(&backend, &me, &detail.conversation.workspaces).await?,
        exchanges: exchanges_of(&detail, &feedback),
    })
}

pub async fn delete_conversation(
    backend: web::Data<Backend>,
    me: SignedIn,
    path: web::Path<Uuid>,
) -> WebResult<HttpResponse> {
    backend
        .client(me.id())?
        .delete_conversation(path.into_inner())
        .await?;
    crate::views::flash(&me.session, "Conversation deleted.");
    Ok(redirect("/chat"))
}

/// Asks a question: streamed as events when the page's script asks for
/// `text/event-stream`, otherwise answered whole and shown on the conversation page. A
/// follow-up names only its conversation: the query service keeps it to the
/// conversation's workspaces.
pub async fn ask(
    backend: web::Data<Backend>,
    me: SignedIn,
    req: HttpRequest,
    form: FormData,
) -> WebResult<HttpResponse> {
    let question = form.require("question", "the question")?.to_owned();
    let conversation_id: Option<Uuid> = match form.get("conversation_id") {
        Some(id) => Some(
            id.parse()
                .map_err(|_| Error::Invalid("the conversation id is not valid".into()))?,
        ),
        None => None,
    };
    let workspaces: Vec<Uuid> = match conversation_id {
        Some(_) => Vec::new(),
        None => form
            .all("ws")
            .iter()
            .map(|w| {
                w.parse()
                    .map_err(|_| Error::Invalid("a workspace id is not valid".into()))
            })
            .collect::<Result<_, _>>()?,
    };
    if conversation_id.is_none() && workspaces.is_empty() {
        return Err(Error::Invalid("choose at least one workspace to search in".into()).into());
    }
    let body = AnswerBody {
        question: question.clone(),
        workspaces,
        conversation_id,
        ..AnswerBody::default()
    };
    let client = backend.client(me.id())?;
    if !from_script(req.headers()) {
        let result = client.answer(&body).await?;
        return Ok(redirect(&format!(
            "/chat/{}#m-{}",
            result.conversation_id, result.message_id
        )));
    }
    let upstream = client.answer_stream(&body).await?;
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    tokio::spawn(relay::relay(upstream, tx, question, me.csrf()));
    Ok(sse_response(rx))
}

pub struct CitationView {
    pub n: usize,
    pub title: String,
    pub document: String,
    pub page: u32,
    pub before: String,
    pub marked: String,
    pub after: String,
    pub original: String,
    /// The page on the web, for a document of a web source.
    pub url: Option<String>,
    pub page_view: Option<PageView>,
}

#[derive(Template)]
#[template(path = "citation.html")]
struct CitationFragment {
    c: CitationView,
}

#[derive(Template)]
#[template(path = "citation_page.html")]
struct CitationPage {
    layout: Layout,
    back: String,
    c: CitationView,
}

/// The answer `message` of the signed-in person's `conversation` (the query service
/// checks whose conversation it is), or "not found".
async fn answer_in(
    backend: &Backend,
    me: &SignedIn,
    conversation: Uuid,
    message: Uuid,
) -> WebResult<MessageOut> {
    backend
        .client(me.id())?
        .conversation(conversation)
        .await?
        .messages
        .into_iter()
        .find(|m| m.id == message && m.role == "assistant")
        .ok_or_else(|| Error::NotFound("no such answer".into()).into())
}

/// A piece of a passage reflowed for reading, keeping a space where it met its neighbour.
fn reflow_piece(piece: &str) -> String {
    let mut out = String::new();
    if piece.starts_with(char::is_whitespace) {
        out.push(' ');
    }
    out.push_str(&reflow(piece));
    if piece.ends_with(char::is_whitespace) && !out.ends_with(' ') {
        out.push(' ');
    }
    out
}

/// One citation: the passage with the cited part marked, a link to the original at its
/// page and, for PDFs, the page with the passage highlighted.
pub async fn citation(
    backend: web::Data<Backend>,
    renderer: web::Data<PageRenderer>,
    me: SignedIn,
    req: HttpRequest,
    path: web::Path<(Uuid, Uuid, usize)>,
) -> WebResult<HttpResponse> {
    let (conversation, message, n) = path.into_inner();
    let answer = answer_in(&backend, &me, conversation, message)
        .await?
        .details
        .ok_or_else(|| Error::NotFound("no such answer".into()))?;
    let citation = answer
        .citations
        .iter()
        .find(|c| c.n == n)
        .ok_or_else(|| Error::NotFound(format!("the answer has no source [{n}]")))?;
    let workspace = answer
        .passages
        .iter()
        .find(|p| p.chunk_id == citation.chunk_id)
        .map(|p| p.workspace_id)
        .ok_or_else(|| Error::NotFound("the cited passage is gone".into()))?;
    let chars: Vec<char> = citation.quote.chars().collect();
    let (start, end) = match (citation.highlight_start, citation.highlight_end) {
        (s, e) if s < e && e <= chars.len() => (s, e),
        _ => (0, chars.len()),
    };
    let marked: String = chars[start..end].iter().collect();
    // The marked sentence first; when it is on another page of a passage that spans
    // pages, the passage's part that is on this one.
    let mut quotes = vec![marked.clone()];
    if (start, end) != (0, chars.len()) {
        quotes.push(citation.quote.clone());
    }
    let page_view = renderer
        .page_view(
            &backend.client(me.id())?,
            workspace,
            citation.document_id,
            citation.page,
            quotes,
        )
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the cited page could not be shown");
            None
        });
    let view = CitationView {
        n,
        title: citation.title.clone(),
        document: citation.document.clone(),
        page: citation.page,
        before: reflow_piece(&chars[..start].iter().collect::<String>()),
        marked: reflow_piece(&marked),
        after: reflow_piece(&chars[end..].iter().collect::<String>()),
        original: original_href(workspace, citation.document_id, citation.page),
        url: citation.url.clone(),
        page_view,
    };
    if query_map(&req).contains_key("fragment") {
        let body = CitationFragment { c: view }.render()?;
        return Ok(HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(body));
    }
    page(&CitationPage {
        layout: Layout::signed_in(&me, format!("Source {n}"), "chat"),
        back: format!("/chat/{conversation}#m-{message}"),
        c: view,
    })
}

/// Helpful or not, with an optional comment; one verdict per person and answer.
pub async fn feedback(
    ctx: web::Data<Context>,
    backend: web::Data<Backend>,
    me: SignedIn,
    req: HttpRequest,
    path: web::Path<(Uuid, Uuid)>,
    form: FormData,
) -> WebResult<HttpResponse> {
    let (conversation, message) = path.into_inner();
    answer_in(&backend, &me, conversation, message).await?;
    let helpful = match form.get("helpful") {
        Some("yes") => true,
        Some("no") => false,
        _ => return Err(Error::Invalid("say whether the answer was helpful".into()).into()),
    };
    let comment = form
        .get("comment")
        .map(|c| c.chars().take(2000).collect::<String>());
    ctx.store
        .record_feedback(message, me.id(), helpful, comment)
        .await?;
    audit(
        &ctx,
        Some(me.id()),
        "answer.feedback",
        None,
        Some(message.to_string()),
        Some(serde_json::json!({ "helpful": helpful })),
    )
    .await;
    if wants_json(&req) {
        return Ok(HttpResponse::Ok().json(serde_json::json!({ "saved": true })));
    }
    crate::views::flash(&me.session, "Thanks, your feedback is saved.");
    Ok(redirect(&format!("/chat/{conversation}#m-{message}")))
}
