//! The OpenAI-compatible surface: `/v1/chat/completions` (streamed or not) and
//! `/v1/models`, where the model name selects the workspace, so existing OpenAI clients
//! work unchanged. Every error here, from authentication to a failure mid-stream, is
//! OpenAI's error object ([`OpenAiError`]), which those clients parse; the message follows
//! Lectern's one rule (internal detail logged, never sent).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};
use bytes::Bytes;
use chrono::Utc;
use lectern_api::openai::{
    CHAT_COMPLETIONS_PATH, ChatCompletionBody, MODELS_PATH, OpenAiErrorBody,
};
use lectern_api::sse;
use lectern_auth::Caller;
use lectern_core::{Error, FinishReason, WorkspaceScope, resolve_workspace_name};
use lectern_llm::{ChatMessage, ChatRole};
use lectern_runtime::Context;
use lectern_runtime::http::{ApiError, error_response, json_limit, public_error, sse_response};
use serde_json::json;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::answer::{Answer, Answerer, Question};
use crate::api::audit_question;

/// The model name every caller may use for all of their workspaces.
pub const ALL_WORKSPACES_MODEL: &str = "lectern";

/// Most messages in one request, and most characters of a question: one request cannot
/// ask for unbounded work.
const MAX_MESSAGES: usize = 100;
const MAX_QUESTION_CHARS: usize = 4_000;
/// Of the history, the latest turns within this many characters go to the model.
const MAX_HISTORY_CHARS: usize = 12_000;

pub fn routes(cfg: &mut web::ServiceConfig) {
    // At most MAX_MESSAGES messages, each with a question's length or an answer's.
    cfg.service(
        web::resource(CHAT_COMPLETIONS_PATH)
            .app_data(json_limit(1 << 20))
            .route(web::post().to(chat_completions)),
    )
    .route(MODELS_PATH, web::get().to(models));
}

/// An error answered in OpenAI's shape, with Lectern's status and message rule.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct OpenAiError(#[from] Error);

impl OpenAiError {
    fn body(&self) -> (StatusCode, OpenAiErrorBody) {
        let (status, body) = public_error(&self.0);
        (status, OpenAiErrorBody::new(&body.code, body.message))
    }
}

impl From<ApiError> for OpenAiError {
    fn from(e: ApiError) -> Self {
        Self(e.0)
    }
}

/// A request body that is not a chat completion request (bad JSON, missing fields).
impl From<actix_web::Error> for OpenAiError {
    fn from(e: actix_web::Error) -> Self {
        Self(Error::Invalid(format!(
            "the request is not a chat completion: {e}"
        )))
    }
}

impl ResponseError for OpenAiError {
    fn status_code(&self) -> StatusCode {
        self.body().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, body) = self.body();
        error_response(&self.0, status).json(body)
    }
}

type Result<T> = std::result::Result<T, OpenAiError>;

async fn scope_for_model(ctx: &Context, caller: &Caller, model: &str) -> Result<WorkspaceScope> {
    if model == ALL_WORKSPACES_MODEL {
        return Ok(caller.scope(&ctx.store, &[]).await?);
    }
    // Among the caller's workspaces only, their own first where two share the name.
    let found = caller
        .workspace_named(&ctx.store, model)
        .await?
        .ok_or_else(|| {
            Error::NotFound(format!(
                "no workspace named {model:?}; the model is a workspace name (see GET /v1/models) or \"{ALL_WORKSPACES_MODEL}\""
            ))
        })?;
    // Found among the workspaces the caller may read: no second lookup.
    Ok(WorkspaceScope::checked(&[found.id], &[found.id])?)
}

/// OpenAI-compatible chat completions, streaming or not. The last user message is the
/// question, earlier messages the history; the answer's citations ride in an extra
/// `citations` field (in the last chunk when streaming).
#[utoipa::path(post, path = "/v1/chat/completions", request_body = ChatCompletionBody, responses((status = 200, description = "OpenAI chat.completion, or chat.completion.chunk events"), (status = 404, body = OpenAiErrorBody)))]
pub(crate) async fn chat_completions(
    ctx: web::Data<Context>,
    answerer: web::Data<Answerer>,
    caller: std::result::Result<Caller, OpenAiError>,
    body: std::result::Result<web::Json<ChatCompletionBody>, OpenAiError>,
) -> Result<HttpResponse> {
    let caller = caller?;
    let body = body?.into_inner();
    if body.messages.len() > MAX_MESSAGES {
        return Err(Error::Invalid(format!(
            "a request holds at most {MAX_MESSAGES} messages; this one has {}",
            body.messages.len()
        ))
        .into());
    }
    let mut turns: Vec<ChatMessage> = body
        .messages
        .iter()
        .filter_map(|m| {
            let role = match m.role.as_str() {
                "user" => ChatRole::User,
                "assistant" => ChatRole::Assistant,
                _ => return None, // the client's system prompt does not replace Lectern's rules
            };
            Some(ChatMessage::new(role, m.text()))
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
    if question.chars().count() > MAX_QUESTION_CHARS {
        return Err(Error::Invalid(format!(
            "the question is longer than {MAX_QUESTION_CHARS} characters; ask a shorter one"
        ))
        .into());
    }
    let turns = latest_turns(turns, MAX_HISTORY_CHARS);
    let scope = scope_for_model(&ctx, &caller, &body.model).await?;
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
        let a = answerer.refusing_when_busy().answer(q, tx).await?;
        return Ok(HttpResponse::Ok().json(json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": a.answer}, "finish_reason": finish_reason(&a)}],
            "usage": {"prompt_tokens": a.timings.prompt_tokens, "completion_tokens": a.timings.completion_tokens, "total_tokens": a.timings.prompt_tokens + a.timings.completion_tokens},
            "citations": a.citations,
            "abstained": a.abstained,
            "extractive": a.extractive,
            "notice": a.notice,
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
            sse::data(&value)
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
        let result = answerer.refusing_when_busy().answer(q, tokens).await;
        let _ = forward.await;
        let last = match result {
            Ok(a) => {
                let extra = json!({"citations": a.citations, "abstained": a.abstained, "extractive": a.extractive, "notice": a.notice, "sentences": a.sentences, "answer": a.answer});
                chunk(json!({}), Some(finish_reason(&a)), Some(extra))
            }
            Err(e) => sse::data(&OpenAiError(e).body().1),
        };
        let _ = out.send(last);
        let _ = out.send(sse::DONE);
    });
    Ok(sse_response(rx))
}

/// OpenAI's `finish_reason` for an answer: `length` when the model hit its token limit.
fn finish_reason(a: &Answer) -> &'static str {
    match a.timings.finish_reason {
        Some(FinishReason::Length) => "length",
        _ => "stop",
    }
}

/// The caller's workspaces as OpenAI models, plus `lectern` for all of them. A model is
/// the workspace's name where that name selects it, else its id: names are unique per
/// owner, so the caller may see two alike (their own and one shared with them).
#[utoipa::path(get, path = "/v1/models", responses((status = 200, description = "OpenAI model list"), (status = 401, body = OpenAiErrorBody)))]
pub(crate) async fn models(
    ctx: web::Data<Context>,
    caller: std::result::Result<Caller, OpenAiError>,
) -> Result<HttpResponse> {
    let caller = caller?;
    let mut data =
        vec![json!({"id": ALL_WORKSPACES_MODEL, "object": "model", "owned_by": "lectern"})];
    let workspaces = caller.workspaces(&ctx.store).await?;
    let visible: Vec<(Uuid, &str, bool)> = workspaces
        .iter()
        .map(|a| {
            let ws = &a.workspace;
            (ws.id, ws.name.as_str(), ws.owner_id == Some(caller.id()))
        })
        .collect();
    for a in &workspaces {
        let ws = &a.workspace;
        let id = match resolve_workspace_name(&ws.name, visible.iter().copied()) {
            Ok(Some(selected)) if selected == ws.id => ws.name.clone(),
            _ => ws.id.to_string(),
        };
        data.push(json!({"id": id, "object": "model", "owned_by": "lectern", "created": ws.created_at.timestamp()}));
    }
    Ok(HttpResponse::Ok().json(json!({"object": "list", "data": data})))
}

/// The latest turns whose text fits in `chars` characters, oldest first.
fn latest_turns(turns: Vec<ChatMessage>, chars: usize) -> Vec<ChatMessage> {
    let mut left = chars;
    let mut kept: Vec<ChatMessage> = turns
        .into_iter()
        .rev()
        .take_while(|m| {
            let n = m.content.chars().count();
            let fits = n <= left;
            left = left.saturating_sub(n);
            fits
        })
        .collect();
    kept.reverse();
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_take_openai_shape_and_hide_internal_detail() {
        let (status, body) = OpenAiError(Error::NotFound("no workspace named \"x\"".into())).body();
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body.error.kind, "not_found_error");
        assert_eq!(body.error.code.as_deref(), Some("not_found"));
        assert!(body.error.message.contains("no workspace"));

        let (status, body) = OpenAiError(Error::internal(
            "answer failed",
            "llama_decode returned -3 at /srv/models/x.gguf",
        ))
        .body();
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body.error.kind, "server_error");
        assert!(
            !body.error.message.contains("/srv"),
            "{}",
            body.error.message
        );

        let (status, body) = OpenAiError(Error::Unauthenticated("no key".into())).body();
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body.error.kind, "authentication_error");
        let json = serde_json::to_value(&body).unwrap();
        assert!(json["error"]["type"].is_string() && json["error"].get("param").is_some());

        // A busy model: 429, OpenAI's rate-limit type, and when to come back.
        let busy = OpenAiError(Error::Busy {
            message: "the language model is busy".into(),
            retry_after: 7,
        });
        let response = busy.error_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            response
                .headers()
                .get("retry-after")
                .unwrap()
                .to_str()
                .unwrap(),
            "7"
        );
        assert_eq!(busy.body().1.error.kind, "rate_limit_error");
    }

    #[test]
    fn only_the_latest_turns_that_fit_are_kept() {
        let turn = |n: usize| ChatMessage::new(ChatRole::User, "x".repeat(n));
        let kept = latest_turns(vec![turn(5), turn(4), turn(3), turn(2)], 9);
        let sizes: Vec<usize> = kept.iter().map(|m| m.content.len()).collect();
        assert_eq!(sizes, [4, 3, 2], "the oldest turn does not fit");
        assert!(latest_turns(vec![turn(10)], 9).is_empty());
    }
}
