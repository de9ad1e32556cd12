//! The query service's HTTP API: search, answers (JSON or Server-Sent Events), stored
//! conversations, and an OpenAI-compatible chat endpoint where the model name selects
//! the workspace, so that existing OpenAI clients work unchanged.

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use lectern_core::{Error, WorkspaceScope};
use lectern_llm::{ChatMessage, ChatRole};
use lectern_runtime::http::{ApiError, BearerAuth, ErrorBody};
use lectern_runtime::{Caller, Context};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use crate::answer::{Answer, Answerer, Citation, Question, Timings, history_messages};
use crate::cite::Sentence;
use crate::retrieve::Passage;

type Result<T> = std::result::Result<T, ApiError>;

#[derive(Debug, Deserialize, ToSchema)]
pub struct SearchBody {
    pub question: String,
    /// Workspaces to search; all the caller can read when absent.
    #[serde(default)]
    pub workspaces: Vec<Uuid>,
    /// Narrow to these documents.
    pub documents: Option<Vec<Uuid>>,
    /// Passages to return (1-50, default 10).
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SearchResult {
    pub passages: Vec<Passage>,
    pub timings: SearchTimings,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SearchTimings {
    pub retrieval_ms: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AnswerBody {
    pub question: String,
    #[serde(default)]
    pub workspaces: Vec<Uuid>,
    pub documents: Option<Vec<Uuid>>,
    /// Continue this conversation (its history shapes the search); a new one otherwise.
    pub conversation_id: Option<Uuid>,
    /// Answer as Server-Sent Events (also chosen by `Accept: text/event-stream`).
    #[serde(default)]
    pub stream: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AnswerResult {
    pub conversation_id: Uuid,
    pub message_id: Uuid,
    #[serde(flatten)]
    pub answer: Answer,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConversationOut {
    pub id: Uuid,
    pub title: String,
    pub workspaces: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessageOut {
    pub id: Uuid,
    pub role: String,
    pub content: String,
    /// For answers: citations, sentences, passages, abstention and timings.
    pub details: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConversationDetail {
    #[serde(flatten)]
    pub conversation: ConversationOut,
    pub messages: Vec<MessageOut>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConversationList {
    pub conversations: Vec<ConversationOut>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Lectern query API", description = "Search, grounded answers with checked citations, conversations, and an OpenAI-compatible chat endpoint. Authenticate with `Authorization: Bearer <API key>`."),
    paths(search, answer, list_conversations, get_conversation, delete_conversation, chat_completions, models),
    components(schemas(SearchBody, SearchResult, SearchTimings, Passage, AnswerBody, AnswerResult, Answer, Citation, Sentence, Timings, ConversationOut, ConversationList, ConversationDetail, MessageOut, ChatCompletionBody, OpenAiMessage, ErrorBody)),
    modifiers(&BearerAuth),
    security(("api_key" = []))
)]
pub struct ApiDoc;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/search", web::post().to(search))
        .route("/v1/answer", web::post().to(answer))
        .route("/v1/conversations", web::get().to(list_conversations))
        .route("/v1/conversations/{id}", web::get().to(get_conversation))
        .route(
            "/v1/conversations/{id}",
            web::delete().to(delete_conversation),
        )
        .route("/v1/chat/completions", web::post().to(chat_completions))
        .route("/v1/models", web::get().to(models))
        .route("/v1/query/openapi.json", web::get().to(openapi));
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

async fn audit_question(ctx: &Context, caller: &Caller, scope: &WorkspaceScope) {
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

/// The conversation to continue (checked to be the caller's) or a new one, with its
/// history as chat messages.
async fn conversation_for(
    ctx: &Context,
    caller: &Caller,
    id: Option<Uuid>,
    question: &str,
    scope: &WorkspaceScope,
) -> Result<(Uuid, Vec<ChatMessage>)> {
    match id {
        Some(id) => {
            let conversation = ctx.store.conversation(caller.id(), id).await?;
            let turns: Vec<(String, String)> = ctx
                .store
                .messages_of(conversation.id)
                .await?
                .into_iter()
                .map(|m| (m.role, m.content))
                .collect();
            Ok((conversation.id, history_messages(&turns)))
        }
        None => {
            let c = ctx
                .store
                .create_conversation(caller.id(), question, scope.ids())
                .await?;
            Ok((c.id, Vec::new()))
        }
    }
}

fn sse(event: &str, data: &serde_json::Value) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

/// A Server-Sent Events response fed by a channel.
fn event_stream(rx: mpsc::UnboundedReceiver<Bytes>) -> HttpResponse {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, actix_web::Error>(b), rx))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream)
}

/// Answers a question from the caller's documents. As JSON, or as Server-Sent Events:
/// `token` events (`{"text"}`) as the model writes, then one `answer` event (the full
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
    if body.question.trim().is_empty() {
        return Err(Error::Invalid("the question is empty".into()).into());
    }
    let scope = caller.scope(&ctx.store, &body.workspaces).await?;
    let (conversation_id, history) =
        conversation_for(&ctx, &caller, body.conversation_id, &body.question, &scope).await?;
    audit_question(&ctx, &caller, &scope).await;
    let question = Question {
        text: body.question.clone(),
        history,
        scope,
        documents: body.documents,
    };
    let run = {
        let ctx = ctx.clone();
        let answerer = answerer.clone();
        let text = body.question.clone();
        move |tokens: mpsc::UnboundedSender<String>| async move {
            let answer = answerer.answer(question, tokens).await?;
            if answer.timings.finish_reason == Some(lectern_llm::FinishReason::Cancelled) {
                // The client went away mid-answer: a truncated turn is not kept.
                return Err(Error::Conflict("the answer was cancelled".into()));
            }
            let details = serde_json::to_value(&answer)
                .map_err(|e| Error::internal("cannot store the answer", e))?;
            let message = ctx
                .store
                .add_exchange(conversation_id, &text, &answer.answer, details)
                .await?;
            Ok::<_, Error>(AnswerResult {
                conversation_id,
                message_id: message.id,
                answer,
            })
        }
    };
    if !wants_stream(&req, body.stream) {
        let (tx, _rx) = mpsc::unbounded_channel();
        let result = run(tx).await?;
        return Ok(HttpResponse::Ok().json(result));
    }
    let (out, rx) = mpsc::unbounded_channel::<Bytes>();
    let (tokens, mut token_rx) = mpsc::unbounded_channel::<String>();
    let forward_out = out.clone();
    let forward = tokio::spawn(async move {
        while let Some(piece) = token_rx.recv().await {
            if forward_out
                .send(sse("token", &json!({"text": piece})))
                .is_err()
            {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let result = run(tokens).await;
        let _ = forward.await;
        match result {
            Ok(result) => {
                let value = serde_json::to_value(&result).unwrap_or_default();
                let _ = out.send(sse("answer", &value));
                let _ = out.send(sse("done", &json!({})));
            }
            Err(e) => {
                let status = lectern_runtime::http::status_of(&e);
                let message = if status.is_server_error() && !e.is_transient() {
                    tracing::error!(error = %e, "answer failed");
                    "internal error; the server log has the details".to_owned()
                } else {
                    e.to_string()
                };
                let _ = out.send(sse("error", &json!({"code": e.code(), "message": message})));
            }
        }
    });
    Ok(event_stream(rx))
}

fn conversation_out(c: lectern_store::entity::conversation::Model) -> ConversationOut {
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
            details: m.details,
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

/// A chat message in OpenAI's shape.
#[derive(Debug, Deserialize, ToSchema)]
pub struct OpenAiMessage {
    pub role: String,
    /// Text, or a list of `{"type": "text", "text"}` parts.
    #[schema(value_type = Object)]
    pub content: serde_json::Value,
}

/// OpenAI's chat completion request; `model` names the workspace (or `lectern` for all
/// the caller can read).
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatCompletionBody {
    pub model: String,
    pub messages: Vec<OpenAiMessage>,
    #[serde(default)]
    pub stream: bool,
}

fn text_of(content: &serde_json::Value) -> String {
    match content {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(|t| t.as_str()))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The model name every caller may use for all of their workspaces.
pub const ALL_WORKSPACES_MODEL: &str = "lectern";

async fn scope_for_model(ctx: &Context, caller: &Caller, model: &str) -> Result<WorkspaceScope> {
    if model == ALL_WORKSPACES_MODEL {
        return Ok(caller.scope(&ctx.store, &[]).await?);
    }
    let workspaces = caller.workspaces(&ctx.store).await?;
    let found = workspaces
        .iter()
        .find(|a| a.workspace.name == model || a.workspace.id.to_string() == model)
        .ok_or_else(|| {
            Error::NotFound(format!(
                "no workspace named {model:?}; the model is a workspace name (see GET /v1/models) or \"{ALL_WORKSPACES_MODEL}\""
            ))
        })?;
    Ok(WorkspaceScope::one(found.workspace.id))
}

/// OpenAI-compatible chat completions, streaming or not. The last user message is the
/// question, earlier messages the history; the answer's citations ride in an extra
/// `citations` field (in the last chunk when streaming).
#[utoipa::path(post, path = "/v1/chat/completions", request_body = ChatCompletionBody, responses((status = 200, description = "OpenAI chat.completion, or chat.completion.chunk events"), (status = 404, body = ErrorBody)))]
async fn chat_completions(
    ctx: web::Data<Context>,
    answerer: web::Data<Answerer>,
    caller: Caller,
    body: web::Json<ChatCompletionBody>,
) -> Result<HttpResponse> {
    let body = body.into_inner();
    let scope = scope_for_model(&ctx, &caller, &body.model).await?;
    let mut turns: Vec<ChatMessage> = body
        .messages
        .iter()
        .filter_map(|m| {
            let role = match m.role.as_str() {
                "user" => ChatRole::User,
                "assistant" => ChatRole::Assistant,
                _ => return None, // the client's system prompt does not replace Lectern's rules
            };
            Some(ChatMessage::new(role, text_of(&m.content)))
        })
        .collect();
    let question = match turns.pop() {
        Some(m) if m.role == ChatRole::User && !m.content.trim().is_empty() => m.content,
        _ => {
            return Err(
                Error::Invalid("the last message must be the user's question".into()).into(),
            );
        }
    };
    audit_question(&ctx, &caller, &scope).await;
    let q = Question {
        text: question,
        history: turns,
        scope,
        documents: None,
    };
    let id = format!("chatcmpl-{}", Uuid::new_v4().simple());
    let created = Utc::now().timestamp();
    let model = body.model.clone();
    if !body.stream {
        let (tx, _rx) = mpsc::unbounded_channel();
        let a = answerer.answer(q, tx).await?;
        return Ok(HttpResponse::Ok().json(json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": a.answer}, "finish_reason": finish_reason(&a)}],
            "usage": {"prompt_tokens": a.timings.prompt_tokens, "completion_tokens": a.timings.completion_tokens, "total_tokens": a.timings.prompt_tokens + a.timings.completion_tokens},
            "citations": a.citations,
            "abstained": a.abstained,
            "sentences": a.sentences,
        })));
    }
    let (out, rx) = mpsc::unbounded_channel::<Bytes>();
    let (tokens, mut token_rx) = mpsc::unbounded_channel::<String>();
    let chunk = {
        let (id, model) = (id.clone(), model.clone());
        move |delta: serde_json::Value, finish: Option<&str>, extra: Option<serde_json::Value>| {
            let mut value = json!({
                "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            });
            if let Some(serde_json::Value::Object(extra)) = extra {
                value.as_object_mut().expect("an object").extend(extra);
            }
            Bytes::from(format!("data: {value}\n\n"))
        }
    };
    let _ = out.send(chunk(
        json!({"role": "assistant", "content": ""}),
        None,
        None,
    ));
    let forward_out = out.clone();
    let forward_chunk = chunk.clone();
    let forward = tokio::spawn(async move {
        while let Some(piece) = token_rx.recv().await {
            if forward_out
                .send(forward_chunk(json!({"content": piece}), None, None))
                .is_err()
            {
                break;
            }
        }
    });
    let answerer = answerer.into_inner();
    tokio::spawn(async move {
        let result = answerer.answer(q, tokens).await;
        let _ = forward.await;
        match result {
            Ok(a) => {
                let extra = json!({"citations": a.citations, "abstained": a.abstained, "sentences": a.sentences, "answer": a.answer});
                let _ = out.send(chunk(json!({}), Some(finish_reason(&a)), Some(extra)));
            }
            Err(e) => {
                let _ = out.send(Bytes::from(format!(
                    "data: {}\n\n",
                    json!({"error": {"code": e.code(), "message": e.to_string()}})
                )));
            }
        }
        let _ = out.send(Bytes::from_static(b"data: [DONE]\n\n"));
    });
    Ok(event_stream(rx))
}

/// OpenAI's `finish_reason` for an answer: `length` when the model hit its token limit.
fn finish_reason(a: &Answer) -> &'static str {
    match a.timings.finish_reason {
        Some(lectern_llm::FinishReason::Length) => "length",
        _ => "stop",
    }
}

/// The caller's workspaces as OpenAI models, plus `lectern` for all of them.
#[utoipa::path(get, path = "/v1/models", responses((status = 200, description = "OpenAI model list")))]
async fn models(ctx: web::Data<Context>, caller: Caller) -> Result<HttpResponse> {
    let mut data =
        vec![json!({"id": ALL_WORKSPACES_MODEL, "object": "model", "owned_by": "lectern"})];
    for a in caller.workspaces(&ctx.store).await? {
        data.push(json!({"id": a.workspace.name, "object": "model", "owned_by": "lectern", "created": a.workspace.created_at.timestamp()}));
    }
    Ok(HttpResponse::Ok().json(json!({"object": "list", "data": data})))
}

/// Parses a complete Server-Sent Events text into `(event, data)` pairs.
pub fn parse_events(text: &str) -> Vec<(String, String)> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut event = "message".to_owned();
            let mut data = String::new();
            for line in e.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            (event, data)
        })
        .collect()
}
