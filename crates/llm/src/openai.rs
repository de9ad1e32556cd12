//! An OpenAI-compatible chat server (vLLM, SGLang, llama.cpp's server) as the engine:
//! `POST {base_url}/chat/completions` with `stream: true`, read as Server-Sent Events.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use lectern_core::{Error, Result};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use crate::{ChatMessage, FinishReason, GenerationRequest, GenerationStats, Generator, ModelInfo};

#[derive(Debug, Clone)]
pub struct OpenAiOptions {
    /// E.g. `http://gpu-box:8000/v1`.
    pub base_url: String,
    /// The model name the server knows.
    pub model: String,
    pub api_key: Option<String>,
    /// The server's context window per request.
    pub context_length: u32,
    /// Longest wait for the server to start answering.
    pub timeout: Duration,
}

pub struct OpenAiEngine {
    client: reqwest::Client,
    options: OpenAiOptions,
    info: ModelInfo,
}

impl OpenAiEngine {
    pub fn new(options: OpenAiOptions) -> Result<Self> {
        if !(options.base_url.starts_with("http://") || options.base_url.starts_with("https://")) {
            return Err(Error::Invalid(format!(
                "llm.base_url must be an http(s) URL, not {:?}",
                options.base_url
            )));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(options.timeout)
            .build()
            .map_err(|e| Error::internal("cannot build the HTTP client", e))?;
        let info = ModelInfo {
            id: options.model.clone(),
            context_length: options.context_length,
        };
        Ok(Self {
            client,
            options,
            info,
        })
    }

    /// Sends a chat completion; a refusal or a server error is an error.
    async fn post(&self, body: &serde_json::Value) -> Result<reqwest::Response> {
        let mut call = self.client.post(self.url()).json(body);
        if let Some(key) = &self.options.api_key {
            call = call.bearer_auth(key);
        }
        let unavailable = |e: reqwest::Error| {
            Error::unavailable(
                format!(
                    "the language model server at {} does not answer",
                    self.options.base_url
                ),
                e,
            )
        };
        let res = call.send().await.map_err(unavailable)?;
        let status = res.status();
        if !status.is_success() {
            let text = res.text().await.unwrap_or_default();
            let message = format!(
                "the language model server answered {status}: {}",
                text.chars().take(300).collect::<String>()
            );
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                Error::unavailable(message, "server error")
            } else {
                Error::Invalid(message)
            });
        }
        Ok(res)
    }

    fn url(&self) -> String {
        format!(
            "{}/chat/completions",
            self.options.base_url.trim_end_matches('/')
        )
    }
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Delta,
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct Delta {
    content: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: u32,
    completion_tokens: u32,
    #[serde(default)]
    prompt_tokens_details: Option<PromptTokensDetails>,
}

#[derive(Deserialize)]
struct PromptTokensDetails {
    #[serde(default)]
    cached_tokens: u32,
}

/// A conservative token estimate for text in a tokenizer we cannot see: about 3.5
/// characters per token for English, plus the template's few tokens per message.
pub(crate) fn estimate_tokens(messages: &[ChatMessage]) -> u32 {
    messages
        .iter()
        .map(|m| (m.content.chars().count() as u32).div_ceil(3) + 8)
        .sum::<u32>()
        + 4
}

#[async_trait]
impl Generator for OpenAiEngine {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    async fn count_tokens(&self, messages: &[ChatMessage]) -> Result<u32> {
        Ok(estimate_tokens(messages))
    }

    async fn generate(
        &self,
        request: GenerationRequest,
        tokens: mpsc::UnboundedSender<String>,
    ) -> Result<GenerationStats> {
        let started = Instant::now();
        let body = json!({
            "model": self.options.model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "seed": request.seed,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        let res = self.post(&body).await?;

        let mut events = lectern_api::sse::read(res.bytes_stream());
        let mut first_token = None;
        let mut pieces = 0u32;
        let mut usage = None;
        let mut finish = FinishReason::Length;
        'read: while let Some(frame) = events.next().await {
            let frame = frame.map_err(|e| {
                Error::unavailable(
                    format!(
                        "the language model server at {} broke off the answer",
                        self.options.base_url
                    ),
                    e,
                )
            })?;
            let data = frame.data.trim();
            if data == "[DONE]" {
                break 'read;
            }
            // Servers report failures mid-stream as an error object, not as text.
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(data)
                && (value.get("error").is_some() || value["object"] == "error")
            {
                let message = value["error"]["message"]
                    .as_str()
                    .or(value["message"].as_str())
                    .unwrap_or("unknown error");
                return Err(Error::unavailable(
                    format!("the language model server failed mid-answer: {message}"),
                    data.to_owned(),
                ));
            }
            let chunk: Chunk = serde_json::from_str(data).map_err(|e| {
                Error::internal(format!("unreadable event from the model server: {data}"), e)
            })?;
            if let Some(u) = chunk.usage {
                usage = Some(u);
            }
            for choice in chunk.choices {
                if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                    first_token.get_or_insert_with(|| started.elapsed());
                    pieces += 1;
                    if tokens.send(text).is_err() {
                        finish = FinishReason::Cancelled;
                        break 'read;
                    }
                }
                match choice.finish_reason.as_deref() {
                    Some("stop") => finish = FinishReason::Stop,
                    Some("length") => finish = FinishReason::Length,
                    _ => {}
                }
            }
        }
        let (prompt_tokens, cached_prompt_tokens, completion_tokens) = match usage {
            Some(u) => (
                u.prompt_tokens,
                u.prompt_tokens_details.map_or(0, |d| d.cached_tokens),
                u.completion_tokens,
            ),
            None => (estimate_tokens(&request.messages), 0, pieces),
        };
        Ok(GenerationStats {
            prompt_tokens,
            cached_prompt_tokens,
            completion_tokens,
            first_token,
            total: started.elapsed(),
            finish,
            drafted_tokens: 0,
            accepted_tokens: 0,
        })
    }

    /// One token with the server's most likely first tokens and their log-probabilities
    /// (`logprobs`, `top_logprobs`, which vLLM, SGLang and llama.cpp's server give); a
    /// choice the server does not list among them counts as 0.
    async fn choose(&self, messages: &[ChatMessage], choices: &[&str]) -> Result<Vec<f32>> {
        let body = json!({
            "model": self.options.model,
            "messages": messages,
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": true,
            "top_logprobs": 20,
            "stream": false,
        });
        let res = self.post(&body).await?;
        let value: serde_json::Value = res.json().await.map_err(|e| {
            Error::unavailable(
                format!(
                    "the language model server at {} broke off its reply",
                    self.options.base_url
                ),
                e,
            )
        })?;
        let top = value["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
            .as_array()
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "the language model server at {} gives no token probabilities (top_logprobs)",
                    self.options.base_url
                ))
            })?;
        Ok(choices
            .iter()
            .map(|choice| {
                top.iter()
                    .filter(|t| t["token"].as_str().map(str::trim_start) == Some(*choice))
                    .filter_map(|t| t["logprob"].as_f64())
                    .map(f64::exp)
                    .sum::<f64>() as f32
            })
            .collect())
    }
}
