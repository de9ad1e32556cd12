//! Lectern's language-model engines behind one seam, [`Generator`]:
//!
//! - [`LlamaEngine`]: llama.cpp in this process (`llama-cpp-2`), one GGUF loaded once,
//!   serving concurrent requests as parallel sequences of one batch (continuous batching,
//!   as llama.cpp's own server does);
//! - [`OpenAiEngine`]: any OpenAI-compatible server (vLLM, SGLang, llama.cpp's server),
//!   for deployments that run inference elsewhere.
//!
//! It also runs GGUF embedding models ([`GgufEmbedder`], EmbeddingGemma), with the same
//! llama.cpp.
//!
//! Tokens stream through a channel as they are generated; the final [`GenerationStats`]
//! say how long the first token took and how fast the rest came.

use std::time::Duration;

use async_trait::async_trait;
pub use lectern_core::FinishReason;
use lectern_core::Result;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

mod embedding;
mod llama;
mod openai;
mod speculative;
#[cfg(feature = "testing")]
pub mod testing;

pub use embedding::{GGUF_MODEL, GgufEmbedder};
pub use llama::{Draft, LlamaEngine, LlamaOptions, gpu_devices};
pub use openai::{OpenAiEngine, OpenAiOptions};

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    System,
    User,
    Assistant,
}

impl ChatRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: ChatRole, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// One generation.
#[derive(Debug, Clone)]
pub struct GenerationRequest {
    pub messages: Vec<ChatMessage>,
    /// Most tokens to generate.
    pub max_tokens: u32,
    /// 0 means greedy (deterministic) decoding.
    pub temperature: f32,
    pub seed: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GenerationStats {
    pub prompt_tokens: u32,
    /// Prompt tokens whose KV cache an earlier request left (not read again).
    pub cached_prompt_tokens: u32,
    pub completion_tokens: u32,
    /// From the request to the first generated token (queueing and prompt processing).
    pub first_token: Option<Duration>,
    pub total: Duration,
    pub finish: FinishReason,
    /// Tokens guessed by speculative decoding, and how many of them the model kept.
    #[serde(default)]
    pub drafted_tokens: u32,
    #[serde(default)]
    pub accepted_tokens: u32,
}

impl GenerationStats {
    /// Decode speed after the first token.
    pub fn tokens_per_second(&self) -> f64 {
        let Some(first) = self.first_token else {
            return 0.0;
        };
        let decode = self.total.saturating_sub(first).as_secs_f64();
        if self.completion_tokens <= 1 || decode <= 0.0 {
            return 0.0;
        }
        f64::from(self.completion_tokens - 1) / decode
    }
}

/// What the engine serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelInfo {
    /// The model's name (file stem or the remote model id).
    pub id: String,
    /// Tokens one request may use, prompt and answer together.
    pub context_length: u32,
}

/// A language model that chats and streams its tokens.
#[async_trait]
pub trait Generator: Send + Sync {
    fn info(&self) -> &ModelInfo;

    /// Tokens the chat takes once rendered with the model's template (for the remote
    /// engine, a conservative estimate), so that callers can trim a prompt to fit.
    async fn count_tokens(&self, messages: &[ChatMessage]) -> Result<u32>;

    /// Generates a reply, sending text pieces to `tokens` as they come. Dropping the
    /// receiver cancels the generation.
    async fn generate(
        &self,
        request: GenerationRequest,
        tokens: mpsc::UnboundedSender<String>,
    ) -> Result<GenerationStats>;

    /// How likely the model finds each of `choices` as the start of its reply to
    /// `messages`: the probability of each choice's first token, read from one forward
    /// pass over the prompt, nothing generated. A judgement read as numbers ("Yes" against
    /// "No"), for ranking rather than for text. Engines that cannot read token
    /// probabilities say so with an error. In process the choice's first token is read;
    /// a server's top tokens are matched by their text, so " Yes" counts with "Yes" there
    /// (the two agree within 0.05 on SmolLM2: `tests/engines.rs`).
    async fn choose(&self, messages: &[ChatMessage], choices: &[&str]) -> Result<Vec<f32>> {
        let _ = (messages, choices);
        Err(lectern_core::Error::Invalid(format!(
            "the language model {} cannot give token probabilities",
            self.info().id
        )))
    }
}

/// Softmax of `logits` read at `tokens`: each token's probability among the whole
/// vocabulary.
pub(crate) fn probabilities(logits: &[f32], tokens: &[usize]) -> Vec<f32> {
    let max = logits
        .iter()
        .copied()
        .filter(|l| l.is_finite())
        .fold(f32::NEG_INFINITY, f32::max);
    let total: f64 = logits
        .iter()
        .filter(|l| l.is_finite())
        .map(|&l| f64::from(l - max).exp())
        .sum();
    tokens
        .iter()
        .map(|&t| match logits.get(t) {
            Some(&l) if l.is_finite() && total > 0.0 => (f64::from(l - max).exp() / total) as f32,
            _ => 0.0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_are_the_softmax_at_the_tokens_asked() {
        let logits = [1.0f32, 3.0, 2.0, f32::NEG_INFINITY];
        let p = probabilities(&logits, &[1, 0, 3, 9]);
        let total = 1f32.exp() + 3f32.exp() + 2f32.exp();
        assert!((p[0] - 3f32.exp() / total).abs() < 1e-6, "{p:?}");
        assert!((p[1] - 1f32.exp() / total).abs() < 1e-6, "{p:?}");
        assert_eq!(p[2], 0.0, "an impossible token");
        assert_eq!(p[3], 0.0, "a token outside the vocabulary");
        // Large logits do not overflow.
        let p = probabilities(&[1000.0, 1000.0], &[0]);
        assert!((p[0] - 0.5).abs() < 1e-6, "{p:?}");
    }
}
