//! The query service's own HTTP API: search, answers (JSON or Server-Sent Events) and
//! stored conversations. Errors are Lectern's JSON error body ([`ApiError`]), and a
//! streamed answer's `error` event carries the same body under the same rule. The
//! OpenAI-compatible endpoints are in [`crate::openai`].

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use lectern_api::ErrorBody;
use lectern_api::query::{
    AnswerBody, AnswerEvent, AnswerResult, ConversationDetail, ConversationList, ConversationOut,
    MessageOut, SearchBody, SearchResult, SearchTimings,
};
use lectern_auth::Caller;
use lectern_core::{Error, FinishReason, WorkspaceScope};
use lectern_llm::ChatMessage;
use lectern_runtime::Context;
use lectern_runtime::http::{ApiError, BearerAuth, json_limit, public_error, sse_response};
use serde_json::json;
use tokio::sync::mpsc;
use utoipa::OpenApi;
use uuid::Uuid;

use crate::answer::{Answer, Answerer, Citation, Question, Timings, history_messages};
use crate::cite::Sentence;
use crate::retrieve::Passage;

type Result<T> = std::result::Result<T, ApiError>;

#[derive(OpenApi)]
#[openapi(
    info(title = "Lectern query API", description = "Search, grounded answers with checked citations, conversations, and an OpenAI-compatible chat endpoint. Authenticate with `Authorization: Bearer <API key>`."),
    paths(search, answer, list_conversations, get_conversation, delete_conversation, crate::openai::chat_completions, crate::openai::models),
    components(schemas(SearchBody, SearchResult, SearchTimings, Passage, AnswerBody, AnswerResult, Answer, Citation, Sentence, Timings, ConversationOut, ConversationList, ConversationDetail, MessageOut, lectern_api::openai::ChatCompletionBody, lectern_api::openai::OpenAiMessage, lectern_api::openai::OpenAiErrorBody, ErrorBody)),
    modifiers(&BearerAuth),
    security(("api_key" = []))
)]
pub struct ApiDoc;

pub fn routes(cfg: &mut web::ServiceConfig) {
    // A question and its options are a few KiB at most.
    for (path, route) in [
        ("/v1/search", web::post().to(search)),
        ("/v1/answer", web::post().to(answer)),
    ] {
        cfg.service(
            web::resource(path)
                .app_data(json_limit(64 << 10))
                .route(route),
        );
    }
    cfg.route("/v1/conversations", web::get().to(list_conversations))
        .route("/v1/conversations/{id}", web::get().to(get_conversation))
        .route(
            "/v1/conversations/{id}",
            web::delete().to(delete_conversation),
        )
        .route("/v1/query/openapi.json", web::get().to(openapi));
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

pub(crate) async fn audit_question(ctx: &Context, caller: &Caller, scope: &WorkspaceScope) {
    let ids = scope.ids();
    let single = (ids.len() == 1).then(|| ids[0]);
    caller
        .audit(
            &ctx.store,
            "question.ask",
            single,
            None,
            Some(json!({"workspaces": ids})),
        )
        .await;
}

/// Retrieval only: the passages that best match the question.
#[utoipa::path(post, path = "/v1/search", request_body = SearchBody, responses((status = 200, body = SearchResult), (status = 404, body = ErrorBody)))]
async fn search(
    ctx: web::Data<Context>,
    answerer: web::Data<Answerer>,
    caller: Caller,
    body: web::Json<SearchBody>,
) -> Result<HttpResponse> {
    let body = body.into_inner();
    let limit = body.limit.unwrap_or(10);
    if !(1..=50).contains(&limit) {
        return Err(Error::Invalid("limit must be between 1 and 50".into()).into());
    }
    let scope = caller.scope(&ctx.store, &body.workspaces).await?;
    let started = std::time::Instant::now();
    let retrieved = answerer
        .search(&scope, &body.question, limit, body.documents)
        .await?;
    Ok(HttpResponse::Ok().json(SearchResult {
        passages: retrieved.passages,
        timings: SearchTimings {
            retrieval_ms: started.elapsed().as_millis() as u64,
        },
    }))
}

fn wants_stream(req: &HttpRequest, asked: bool) -> bool {
    asked
        || req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/event-stream"))
}

/// The conversation a question belongs to, its history, and the question's scope.
///
/// The rule of follow-ups lives here, for every client: a conversation's workspaces bound
/// every later question in it. A follow-up that names no workspace searches the
/// conversation's (those the caller can still read); naming one outside them is refused.
/// A new question searches the named workspaces (all readable ones when none is named)
/// and starts a conversation bound to exactly those.
async fn conversation_for(
    ctx: &Context,
    caller: &Caller,
    body: &AnswerBody,
) -> std::result::Result<(Uuid, Vec<ChatMessage>, WorkspaceScope), Error> {
    let Some(id) = body.conversation_id else {
        let scope = caller.scope(&ctx.store, &body.workspaces).await?;
        let c = ctx
            .store
            .create_conversation(caller.id(), &body.question, scope.ids())
            .await?;
        return Ok((c.id, Vec::new(), scope));
    };
    let conversation = ctx.store.conversation(caller.id(), id).await?;
    let bound = conversation_out(conversation).workspaces;
    if let Some(outside) = body.workspaces.iter().find(|w| !bound.contains(w)) {
        return Err(Error::Invalid(format!(
            "a follow-up searches the workspaces its conversation started with, and workspace {outside} is not one of them; start a new conversation to search it"
        ))
        .into());
    }
    let within = if body.workspaces.is_empty() {
        &bound
    } else {
        &body.workspaces
    };
    let scope = caller.scope_within(&ctx.store, within).await?;
    let turns: Vec<(String, String)> = ctx
        .store
        .messages_of(id)
        .await?
        .into_iter()
        .map(|m| (m.role, m.content))
        .collect();
    Ok((id, history_messages(&turns), scope))
}

/// A question ready to answer for a caller: its conversation (new, or the follow-up's,
/// by the rule of [`conversation_for`]), history and scope resolved, and the asking
/// audited. Every client's answer goes through it: `/v1/answer` here, and MCP's `ask`.
pub(crate) struct Asked {
    conversation_id: Uuid,
    question: Question,
}

impl Asked {
    pub(crate) async fn prepare(
        ctx: &Context,
        caller: &Caller,
        body: &AnswerBody,
    ) -> std::result::Result<Self, Error> {
        if body.question.trim().is_empty() {
            return Err(Error::Invalid("the question is empty".into()));
        }
        let (conversation_id, history, scope) = conversation_for(ctx, caller, body).await?;
        audit_question(ctx, caller, &scope).await;
        Ok(Self {
            conversation_id,
            question: Question {
                text: body.question.clone(),
                history,
                scope,
                documents: body.documents.clone(),
            },
        })
    }

    /// Answers (`on_sources` and `tokens` as in [`Answerer::answer_with_sources`]) and
    /// keeps the exchange in the conversation. An answer cut short because the client went
    /// away is not kept.
    pub(crate) async fn answer(
        self,
        ctx: &Context,
        answerer: &Answerer,
        on_sources: impl FnOnce(&[Passage]) + Send,
        tokens: mpsc::UnboundedSender<String>,
    ) -> std::result::Result<AnswerResult, Error> {
        let text = self.question.text.clone();
        let answer = answerer
            .answer_with_sources(self.question, on_sources, tokens)
            .await?;
        if answer.timings.finish_reason == Some(FinishReason::Cancelled) {
            return Err(Error::Conflict("the answer was cancelled".into()));
        }
        let details = serde_json::to_value(&answer)
            .map_err(|e| Error::internal("cannot store the answer", e))?;
        let message = ctx
            .store
            .add_exchange(self.conversation_id, &text, &answer.answer, details)
            .await?;
        Ok(AnswerResult {
            conversation_id: self.conversation_id,
            message_id: message.id,
            answer,
        })
    }
}

/// Answers a question from the caller's documents. As JSON, or as Server-Sent Events: a
/// `sources` event (`{"passages"}`) as soon as retrieval ends, `token` events
/// (`{"text"}`) as the model writes, then one `answer` event (the full
/// [`AnswerResult`] with citations and sentence support), then `done`; an `error` event
/// replaces them if answering fails.
#[utoipa::path(post, path = "/v1/answer", request_body = AnswerBody, responses((status = 200, body = AnswerResult, description = "JSON, or text/event-stream when asked"), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn answer(
    ctx: web::Data<Context>,
    answerer: web::Data<Answerer>,
    caller: Caller,
    req: HttpRequest,
    body: web::Json<AnswerBody>,
) -> Result<HttpResponse> {
    let body = body.into_inner();
    let asked = Asked::prepare(&ctx, &caller, &body).await?;
    if !wants_stream(&req, body.stream) {
        // The receiver is kept to the end: dropping it would cancel the answer.
        let (tx, _rx) = mpsc::unbounded_channel();
        let result = asked
            .answer(&ctx, &answerer, |_: &[Passage]| {}, tx)
            .await?;
        return Ok(HttpResponse::Ok().json(result));
    }
    let (out, rx) = mpsc::unbounded_channel::<Bytes>();
    let (tokens, mut token_rx) = mpsc::unbounded_channel::<String>();
    let forward_out = out.clone();
    let forward = tokio::spawn(async move {
        while let Some(piece) = token_rx.recv().await {
            if forward_out
                .send(AnswerEvent::Token(piece).to_sse())
                .is_err()
            {
                break;
            }
        }
    });
    let sources_out = out.clone();
    let on_sources = Box::new(move |sources: &[Passage]| {
        let _ = sources_out.send(AnswerEvent::Sources(sources.to_vec()).to_sse());
    });
    tokio::spawn(async move {
        let result = asked.answer(&ctx, &answerer, on_sources, tokens).await;
        let _ = forward.await;
        let events = match result {
            Ok(result) => vec![AnswerEvent::Answer(Box::new(result)), AnswerEvent::Done],
            Err(e) => vec![AnswerEvent::Error(public_error(&e).1)],
        };
        for event in events {
            let _ = out.send(event.to_sse());
        }
    });
    Ok(sse_response(rx))
}

pub(crate) fn conversation_out(c: lectern_store::entity::conversation::Model) -> ConversationOut {
    ConversationOut {
        id: c.id,
        title: c.title,
        workspaces: serde_json::from_value(c.workspace_ids).unwrap_or_default(),
        created_at: c.created_at,
        updated_at: c.updated_at,
    }
}

/// The caller's conversations, the latest first.
#[utoipa::path(get, path = "/v1/conversations", responses((status = 200, body = ConversationList)))]
async fn list_conversations(ctx: web::Data<Context>, caller: Caller) -> Result<HttpResponse> {
    let conversations = ctx
        .store
        .conversations_of(caller.id(), 200)
        .await?
        .into_iter()
        .map(conversation_out)
        .collect();
    Ok(HttpResponse::Ok().json(ConversationList { conversations }))
}

/// One conversation with its messages and each answer's citations.
#[utoipa::path(get, path = "/v1/conversations/{id}", params(("id" = Uuid, Path)), responses((status = 200, body = ConversationDetail), (status = 404, body = ErrorBody)))]
async fn get_conversation(
    ctx: web::Data<Context>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse> {
    let c = ctx
        .store
        .conversation(caller.id(), path.into_inner())
        .await?;
    let messages = ctx
        .store
        .messages_of(c.id)
        .await?
        .into_iter()
        .map(|m| MessageOut {
            id: m.id,
            role: m.role,
            content: m.content,
            details: m.details.and_then(|d| serde_json::from_value(d).ok()),
            created_at: m.created_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(ConversationDetail {
        conversation: conversation_out(c),
        messages,
    }))
}

#[utoipa::path(delete, path = "/v1/conversations/{id}", params(("id" = Uuid, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_conversation(
    ctx: web::Data<Context>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse> {
    ctx.store
        .delete_conversation(caller.id(), path.into_inner())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
