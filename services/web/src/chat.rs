//! Asking: conversations, streamed answers, citations that open on their page, feedback.
//!
//! The answer streams from the query service through this app (its `token` events pass
//! as they are); the final `answer` event is turned into the exchange's HTML, rendered by
//! the same template as the conversation page, so the page shows one rendering only.
//! Without JavaScript the form posts, waits for the whole answer and shows the page.

use std::collections::{HashMap, HashSet};

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use futures::StreamExt;
use lectern_core::Error;
use lectern_runtime::Context;
use serde::Deserialize;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::accounts::audit;
use crate::auth::{FormData, SignedIn, query_map};
use crate::backend::{Backend, ConversationDetail, ConversationOut};
use crate::error::WebResult;
use crate::render::{PageRenderer, PageView};
use crate::views::{Layout, page, redirect, wants_json};

/// The parts of a stored answer the pages show (the query service's `Answer`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AnswerDetails {
    pub answer: String,
    pub abstained: bool,
    pub citations: Vec<CitationDetails>,
    pub sentences: Vec<SentenceDetails>,
    pub passages: Vec<PassageDetails>,
    pub timings: Option<TimingDetails>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CitationDetails {
    pub n: usize,
    pub chunk_id: Uuid,
    pub document_id: Uuid,
    pub document: String,
    pub title: String,
    pub page: u32,
    pub quote: String,
    pub supported: bool,
    #[serde(default)]
    pub highlight_start: Option<usize>,
    #[serde(default)]
    pub highlight_end: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SentenceDetails {
    pub start: usize,
    pub end: usize,
    pub supported: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PassageDetails {
    pub chunk_id: Uuid,
    pub workspace_id: Uuid,
    pub document_id: Uuid,
    pub title: String,
    pub page: u32,
    pub text: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TimingDetails {
    pub total_ms: u64,
    pub first_token_ms: Option<u64>,
    pub completion_tokens: u32,
}

#[derive(Debug, Deserialize)]
struct AnswerResult {
    conversation_id: Uuid,
    message_id: Uuid,
    #[serde(flatten)]
    answer: AnswerDetails,
}

/// One question and its answer, as shown.
pub struct Exchange {
    pub conversation_id: Uuid,
    pub message_id: Uuid,
    pub question: String,
    /// The answer as HTML: escaped text, citation links, unsupported sentences marked.
    pub html: String,
    pub abstained: bool,
    pub has_unsupported: bool,
    pub citations: Vec<CitationLink>,
    pub look_here: Vec<PassageLink>,
    pub feedback: Option<bool>,
    pub comment: String,
    pub timing: Option<String>,
}

pub struct CitationLink {
    pub n: usize,
    pub title: String,
    pub page: u32,
    pub supported: bool,
    pub href: String,
}

pub struct PassageLink {
    pub title: String,
    pub page: u32,
    pub snippet: String,
    pub href: String,
}

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes `text` and turns the markers `[n]` and `[n, m]` of known citations into links.
fn linkify(text: &str, cited: &HashSet<usize>, href: &dyn Fn(usize) -> String) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        out.push_str(&escape(&rest[..open]));
        let after = &rest[open + 1..];
        let close = after.find(']');
        let numbers: Option<Vec<usize>> = close.and_then(|close| {
            let inner = &after[..close];
            if inner.trim().is_empty() {
                return None;
            }
            inner
                .split(',')
                .map(|n| n.trim().parse::<usize>().ok().filter(|n| cited.contains(n)))
                .collect()
        });
        match (close, numbers) {
            (Some(close), Some(numbers)) => {
                for n in numbers {
                    out.push_str(&format!(
                        "<a class=\"cite\" href=\"{}\" data-n=\"{n}\" aria-label=\"Source {n}\">[{n}]</a>",
                        escape(&href(n))
                    ));
                }
                rest = &after[close + 1..];
            }
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(&escape(rest));
    out
}

/// The answer as HTML; sentences the cited passages do not support are marked.
pub fn answer_html(answer: &AnswerDetails, href: &dyn Fn(usize) -> String) -> (String, bool) {
    let cited: HashSet<usize> = answer.citations.iter().map(|c| c.n).collect();
    let chars: Vec<char> = answer.answer.chars().collect();
    let text = |a: usize, b: usize| -> String {
        chars[a.min(chars.len())..b.min(chars.len())]
            .iter()
            .collect()
    };
    let mut out = String::new();
    let mut at = 0;
    let mut any_unsupported = false;
    let mut sentences: Vec<&SentenceDetails> = answer
        .sentences
        .iter()
        .filter(|s| s.end > s.start)
        .collect();
    sentences.sort_by_key(|s| s.start);
    for s in sentences {
        if s.start < at || s.end > chars.len() {
            continue;
        }
        out.push_str(&linkify(&text(at, s.start), &cited, href));
        let body = linkify(&text(s.start, s.end), &cited, href);
        if s.supported || answer.abstained {
            out.push_str(&body);
        } else {
            any_unsupported = true;
            out.push_str(&format!(
                "<span class=\"unsupported\" title=\"Not supported by the passage it cites\">{body}</span>"
            ));
        }
        at = s.end;
    }
    out.push_str(&linkify(&text(at, chars.len()), &cited, href));
    (out, any_unsupported)
}

fn cite_href(conversation: Uuid, message: Uuid, n: usize) -> String {
    format!("/chat/{conversation}/m/{message}/cite/{n}")
}

pub fn exchange(
    conversation_id: Uuid,
    message_id: Uuid,
    question: String,
    answer: &AnswerDetails,
    feedback: Option<&lectern_store::entity::feedback::Model>,
) -> Exchange {
    let href = |n: usize| cite_href(conversation_id, message_id, n);
    let (html, has_unsupported) = answer_html(answer, &href);
    let passage_href = |p: &PassageDetails| {
        format!(
            "/w/{}/documents/{}/original#page={}",
            p.workspace_id, p.document_id, p.page
        )
    };
    Exchange {
        conversation_id,
        message_id,
        question,
        html,
        abstained: answer.abstained,
        has_unsupported,
        citations: answer
            .citations
            .iter()
            .map(|c| CitationLink {
                n: c.n,
                title: c.title.clone(),
                page: c.page,
                supported: c.supported,
                href: href(c.n),
            })
            .collect(),
        look_here: answer
            .passages
            .iter()
            .take(4)
            .map(|p| PassageLink {
                title: p.title.clone(),
                page: p.page,
                snippet: p.text.chars().take(160).collect::<String>() + "…",
                href: passage_href(p),
            })
            .collect(),
        feedback: feedback.map(|f| f.helpful),
        comment: feedback.and_then(|f| f.comment.clone()).unwrap_or_default(),
        timing: answer.timings.as_ref().map(|t| {
            format!(
                "{:.1} s{}",
                t.total_ms as f64 / 1000.0,
                t.first_token_ms
                    .map(|f| format!(
                        ", first words after {:.1} s, {} tokens",
                        f as f64 / 1000.0,
                        t.completion_tokens
                    ))
                    .unwrap_or_default()
            )
        }),
    }
}

pub struct WorkspaceChoice {
    pub id: Uuid,
    pub name: String,
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
        .conversations(me.id())
        .await?
        .into_iter()
        .map(|c: ConversationOut| HistoryItem {
            current: Some(c.id) == current,
            id: c.id,
            title: c.title,
        })
        .collect())
}

#[derive(Template)]
#[template(path = "exchange_fragment.html")]
struct ExchangeFragment {
    csrf: String,
    m: Exchange,
}

async fn choices(
    backend: &Backend,
    me: &SignedIn,
    checked: &[Uuid],
) -> WebResult<Vec<WorkspaceChoice>> {
    let all = backend.workspaces(me.id()).await?;
    let none_chosen = checked.is_empty();
    Ok(all
        .into_iter()
        .map(|w| WorkspaceChoice {
            checked: none_chosen || checked.contains(&w.id),
            id: w.id,
            name: w.name,
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
            let answer: AnswerDetails = m
                .details
                .clone()
                .and_then(|d| serde_json::from_value(d).ok())
                .unwrap_or_else(|| AnswerDetails {
                    answer: m.content.clone(),
                    ..AnswerDetails::default()
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
    let detail = backend.conversation(me.id(), path.into_inner()).await?;
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
        .delete_conversation(me.id(), path.into_inner())
        .await?;
    crate::views::flash(&me.session, "Conversation deleted.");
    Ok(redirect("/chat"))
}

fn sse(event: &str, data: &serde_json::Value) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

/// Asks a question: streamed as events when the page's script asks for
/// `text/event-stream`, otherwise answered whole and shown on the conversation page.
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
        // A follow-up searches the conversation's workspaces.
        Some(id) => {
            backend
                .conversation(me.id(), id)
                .await?
                .conversation
                .workspaces
        }
        None => form
            .all("ws")
            .iter()
            .map(|w| {
                w.parse()
                    .map_err(|_| Error::Invalid("a workspace id is not valid".into()))
            })
            .collect::<Result<_, _>>()?,
    };
    if workspaces.is_empty() {
        return Err(Error::Invalid("choose at least one workspace to search in".into()).into());
    }
    let stream = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    let body = serde_json::json!({
        "question": question,
        "workspaces": workspaces,
        "conversation_id": conversation_id,
        "stream": stream,
    });
    let response = backend.answer(me.id(), &body).await?;
    if !stream {
        let result: AnswerResult = response
            .json()
            .await
            .map_err(|e| Error::internal("the answer was not understood", e))?;
        return Ok(redirect(&format!(
            "/chat/{}#m-{}",
            result.conversation_id, result.message_id
        )));
    }
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    let csrf = me.csrf();
    tokio::spawn(relay(response, tx, question, csrf));
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, actix_web::Error>(b), rx))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

/// Passes the query service's events on, replacing its `answer` with the rendered HTML.
/// Stops when the browser goes away (dropping the upstream request cancels the answer).
async fn relay(
    response: reqwest::Response,
    tx: mpsc::UnboundedSender<Bytes>,
    question: String,
    csrf: String,
) {
    let mut upstream = response.bytes_stream();
    // Raw bytes until an event is complete: a character may be split between chunks.
    let mut buffer: Vec<u8> = Vec::new();
    while let Some(chunk) = upstream.next().await {
        let Ok(chunk) = chunk else {
            let _ = tx.send(sse(
                "error",
                &serde_json::json!({"message": "the answer broke off; ask again"}),
            ));
            return;
        };
        buffer.extend_from_slice(&chunk);
        while let Some(cut) = buffer.windows(2).position(|w| w == b"\n\n") {
            let event_bytes: Vec<u8> = buffer.drain(..cut + 2).collect();
            let raw = String::from_utf8_lossy(&event_bytes).into_owned();
            let mut event = String::new();
            let mut data = String::new();
            for line in raw.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    event = e.trim().to_owned();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim());
                }
            }
            let out = match event.as_str() {
                "answer" => match serde_json::from_str::<AnswerResult>(&data) {
                    Ok(result) => {
                        let fragment = ExchangeFragment {
                            csrf: csrf.clone(),
                            m: exchange(
                                result.conversation_id,
                                result.message_id,
                                question.clone(),
                                &result.answer,
                                None,
                            ),
                        };
                        match fragment.render() {
                            Ok(html) => sse(
                                "html",
                                &serde_json::json!({
                                    "html": html,
                                    "conversation_id": result.conversation_id,
                                    "message_id": result.message_id,
                                }),
                            ),
                            Err(e) => sse(
                                "error",
                                &serde_json::json!({"message": format!("the answer could not be shown: {e}")}),
                            ),
                        }
                    }
                    Err(e) => sse(
                        "error",
                        &serde_json::json!({"message": format!("the answer was not understood: {e}")}),
                    ),
                },
                "token" | "done" | "error" => Bytes::from(raw),
                _ => continue,
            };
            if tx.send(out).is_err() {
                return;
            }
        }
    }
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
) -> WebResult<crate::backend::MessageOut> {
    backend
        .conversation(me.id(), conversation)
        .await?
        .messages
        .into_iter()
        .find(|m| m.id == message && m.role == "assistant")
        .ok_or_else(|| Error::NotFound("no such answer".into()).into())
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
    let answer: AnswerDetails = answer_in(&backend, &me, conversation, message)
        .await?
        .details
        .and_then(|d| serde_json::from_value(d).ok())
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
        (Some(s), Some(e)) if s < e && e <= chars.len() => (s, e),
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
            &backend,
            me.id(),
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
        before: chars[..start].iter().collect(),
        marked,
        after: chars[end..].iter().collect(),
        original: format!(
            "/w/{workspace}/documents/{}/original#page={}",
            citation.document_id, citation.page
        ),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(text: &str, sentences: Vec<(usize, usize, bool)>, cited: &[usize]) -> AnswerDetails {
        AnswerDetails {
            answer: text.into(),
            sentences: sentences
                .into_iter()
                .map(|(start, end, supported)| SentenceDetails {
                    start,
                    end,
                    supported,
                })
                .collect(),
            citations: cited
                .iter()
                .map(|&n| CitationDetails {
                    n,
                    chunk_id: Uuid::nil(),
                    document_id: Uuid::nil(),
                    document: "d.pdf".into(),
                    title: "D".into(),
                    page: 1,
                    quote: String::new(),
                    supported: true,
                    highlight_start: None,
                    highlight_end: None,
                })
                .collect(),
            ..AnswerDetails::default()
        }
    }

    #[test]
    fn markers_become_links_and_text_is_escaped() {
        let a = answer(
            "Use <b>care</b> [1]. See [2, 3] and [9].",
            vec![],
            &[1, 2, 3],
        );
        let (html, _) = answer_html(&a, &|n| format!("/c/{n}"));
        assert!(
            html.contains("Use &lt;b&gt;care&lt;/b&gt; <a class=\"cite\" href=\"/c/1\""),
            "{html}"
        );
        assert!(
            html.contains("href=\"/c/2\"") && html.contains("href=\"/c/3\""),
            "{html}"
        );
        // An unknown marker stays text.
        assert!(html.contains("[9]"), "{html}");
        assert!(!html.contains("<b>"));
    }

    #[test]
    fn unsupported_sentences_are_marked() {
        let text = "Supported claim [1]. Invented claim [1].";
        let a = answer(text, vec![(0, 20, true), (21, 40, false)], &[1]);
        let (html, any) = answer_html(&a, &|n| format!("/c/{n}"));
        assert!(any);
        assert_eq!(html.matches("class=\"unsupported\"").count(), 1, "{html}");
        let marked = html.split("class=\"unsupported\"").nth(1).unwrap();
        assert!(marked.contains("Invented claim"), "{html}");
        assert!(
            !html
                .split("class=\"unsupported\"")
                .next()
                .unwrap()
                .contains("Invented")
        );
    }
}
