//! The OpenAI-compatible surface's types: chat completion requests and OpenAI's error
//! object, which OpenAI clients parse (streamed or not).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The OpenAI-compatible routes, as the query service mounts them.
pub const CHAT_COMPLETIONS_PATH: &str = "/v1/chat/completions";
pub const MODELS_PATH: &str = "/v1/models";

/// Whether a request to `path` is answered in OpenAI's shape, errors included (those
/// clients parse no other): one list for the routes and for middleware that answers
/// before them, such as the rate limiter.
pub fn is_openai_path(path: &str) -> bool {
    path == CHAT_COMPLETIONS_PATH || path == MODELS_PATH
}

/// A chat message in OpenAI's shape.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OpenAiMessage {
    pub role: String,
    /// Text, or a list of `{"type": "text", "text"}` parts.
    #[schema(value_type = Object)]
    pub content: serde_json::Value,
}

impl OpenAiMessage {
    /// The message's text: the string, or its text parts joined by lines.
    pub fn text(&self) -> String {
        match &self.content {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(parts) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(|t| t.as_str()))
                .collect::<Vec<_>>()
                .join("\n"),
            _ => String::new(),
        }
    }
}

/// OpenAI's chat completion request; `model` names the workspace (or `lectern` for all
/// the caller can read).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChatCompletionBody {
    pub model: String,
    pub messages: Vec<OpenAiMessage>,
    #[serde(default)]
    pub stream: bool,
}

/// OpenAI's error object: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OpenAiErrorBody {
    pub error: OpenAiErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OpenAiErrorDetail {
    pub message: String,
    /// OpenAI's error type: invalid_request_error, authentication_error,
    /// permission_error, not_found_error, rate_limit_error or server_error.
    #[serde(rename = "type")]
    pub kind: String,
    pub param: Option<String>,
    /// Lectern's own code (see the query API's errors).
    pub code: Option<String>,
}

impl OpenAiErrorBody {
    /// OpenAI's shape of a Lectern error `code` and `message`.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        let kind = match code {
            "invalid_input" | "conflict" => "invalid_request_error",
            "unauthenticated" => "authentication_error",
            "forbidden" => "permission_error",
            "not_found" => "not_found_error",
            "busy" | "rate_limited" => "rate_limit_error",
            _ => "server_error",
        };
        Self {
            error: OpenAiErrorDetail {
                message: message.into(),
                kind: kind.into(),
                param: None,
                code: Some(code.into()),
            },
        }
    }
}
