//! The query API's types: search, answers with checked citations, conversations, and
//! the events of a streamed answer.

use chrono::{DateTime, Utc};
use lectern_core::{FinishReason, PageRange, Span};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ErrorBody;

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct SearchBody {
    pub question: String,
    /// Workspaces to search; all the caller can read when absent.
    #[serde(default)]
    pub workspaces: Vec<Uuid>,
    /// Narrow to these documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documents: Option<Vec<Uuid>>,
    /// Passages to return (1-50, default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchResult {
    pub passages: Vec<Passage>,
    pub timings: SearchTimings,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchTimings {
    pub retrieval_ms: u64,
}

/// A retrieved passage: the chunk's text and where it sits in which document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Passage {
    pub chunk_id: Uuid,
    pub workspace_id: Uuid,
    pub document_id: Uuid,
    /// The original file name.
    pub document: String,
    /// The document's title, as it is now (a synced file moved or renamed shows its new
    /// one).
    pub title: String,
    /// The page the passage is shown and cited on (1-based): where its chunk starts.
    pub page: u32,
    /// The pages of the chunk it comes from, and of the words a source was finished with
    /// from the chunks beside it.
    #[schema(value_type = Object)]
    pub pages: PageRange,
    /// Character span in the document's extracted text.
    #[schema(value_type = Object)]
    pub span: Span,
    pub text: String,
    /// The header row and rule of the table `text` starts inside of, below them: the
    /// text is a span of the document, the header is the context the model reads with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_header: Option<String>,
    /// The page's address, for a document of a web source (a citation links to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The fused rank score (higher is better; comparable within one search only).
    pub score: f32,
}

/// A passage read whole, with the chunks just before and after it in its document: the
/// text of a cited span with its neighbours (the MCP tool `read_passage`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassageInContext {
    pub chunk_id: Uuid,
    pub workspace_id: Uuid,
    pub document_id: Uuid,
    /// The original file name.
    pub document: String,
    pub title: String,
    /// The first page of the passage (1-based).
    pub page: u32,
    pub pages: PageRange,
    /// Character span in the document's extracted text.
    pub span: Span,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_header: Option<String>,
    /// The page's address, for a document of a web source (a citation links to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The chunks before it, in document order.
    pub before: Vec<Excerpt>,
    /// The chunks after it, in document order.
    pub after: Vec<Excerpt>,
}

/// A chunk next to a passage, in its document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Excerpt {
    pub chunk_id: Uuid,
    pub pages: PageRange,
    pub span: Span,
    pub text: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct AnswerBody {
    pub question: String,
    /// Workspaces to search; all the caller can read when absent. A follow-up
    /// (`conversation_id`) searches its conversation's workspaces; naming others is refused.
    #[serde(default)]
    pub workspaces: Vec<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documents: Option<Vec<Uuid>>,
    /// Continue this conversation (its history shapes the search); a new one otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<Uuid>,
    /// Answer as Server-Sent Events (also chosen by `Accept: text/event-stream`).
    #[serde(default)]
    pub stream: bool,
}

/// A citation: a marker `[n]` of the answer resolved to its passage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Citation {
    pub n: usize,
    pub chunk_id: Uuid,
    pub document_id: Uuid,
    /// The original file name.
    pub document: String,
    pub title: String,
    pub page: u32,
    /// The page's address, for a document of a web source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The cited passage.
    pub quote: String,
    pub span_start: usize,
    pub span_end: usize,
    /// The part of `quote` (character offsets) that best supports the sentences citing
    /// it (0, 0 in answers stored before it was recorded: mark the whole quote).
    #[serde(default)]
    pub highlight_start: usize,
    #[serde(default)]
    pub highlight_end: usize,
    /// Whether every sentence citing it is supported by it.
    pub supported: bool,
}

/// One sentence of the answer with the sources it cites (1-based numbers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Sentence {
    pub text: String,
    /// Character span in the cleaned answer.
    pub start: usize,
    pub end: usize,
    pub sources: Vec<usize>,
    /// 0..1: how well the cited passages support the sentence (the best of them).
    pub support: f32,
    /// Whether `support` reaches the threshold; sentences too short to carry a claim
    /// count as supported.
    pub supported: bool,
    /// The model wrote no marker here; Lectern attributed the sentence to the source
    /// that supports it best.
    #[serde(default)]
    pub inferred: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Timings {
    pub retrieval_ms: u64,
    /// From the request to the first token of the answer (None when the model was not asked).
    pub first_token_ms: Option<u64>,
    pub total_ms: u64,
    pub prompt_tokens: u32,
    /// Prompt tokens the model had cached from earlier requests (the fixed instructions).
    pub cached_prompt_tokens: u32,
    pub completion_tokens: u32,
    pub tokens_per_second: f64,
    /// Tokens guessed by speculative decoding (`llm.speculative`), and those the model
    /// kept (absent without it).
    #[serde(skip_serializing_if = "is_zero")]
    pub drafted_tokens: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub accepted_tokens: u32,
    /// Why generation stopped (absent when the model was not asked).
    #[schema(value_type = Option<String>)]
    pub finish_reason: Option<FinishReason>,
}

/// The full answer, after generation and checking. Every field has a default, so that
/// answers stored by earlier versions still read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Answer {
    /// The answer with `[n]` markers that all resolve to `citations`.
    pub answer: String,
    /// True when the documents do not hold the answer ("not found in your documents").
    pub abstained: bool,
    /// The question searched for (a follow-up rewritten to stand alone).
    pub search_query: String,
    pub citations: Vec<Citation>,
    pub sentences: Vec<Sentence>,
    /// The sources given to the model; when abstaining, where the user may look.
    pub passages: Vec<Passage>,
    pub timings: Timings,
    /// The answer is made of the documents' own sentences, each cited, because the
    /// model refused although the evidence was strong, or no model was available.
    pub extractive: bool,
    /// What the reader should know about how this answer was made (sentences left out
    /// because no source supports them; the model unavailable), said for a person.
    pub notice: Option<String>,
    /// How strongly the retrieved passages bear on the question.
    pub evidence: EvidenceScore,
}

/// How strongly the retrieved passages bear on the question (each 0..1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct EvidenceScore {
    /// The share of the question's content words that the best passages hold.
    pub coverage: f32,
    /// The best dense similarity of a passage to the question.
    pub similarity: f32,
    /// Names, numbers and commands of the question that none of the best passages holds
    /// (a question about "LuaLaTeX" answered by passages that never name it).
    pub missing: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AnswerResult {
    pub conversation_id: Uuid,
    pub message_id: Uuid,
    #[serde(flatten)]
    pub answer: Answer,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConversationOut {
    pub id: Uuid,
    pub title: String,
    /// The workspaces every question of the conversation searches.
    pub workspaces: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageOut {
    pub id: Uuid,
    /// user or assistant.
    pub role: String,
    pub content: String,
    /// For answers: citations, sentences, passages, abstention and timings.
    pub details: Option<Answer>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConversationDetail {
    #[serde(flatten)]
    pub conversation: ConversationOut,
    pub messages: Vec<MessageOut>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConversationList {
    pub conversations: Vec<ConversationOut>,
}

/// A piece of the answer's text, as the model writes it (the `token` event).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenEvent {
    pub text: String,
}

/// The sources of a streamed answer, sent the moment retrieval ends (the `sources` event).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SourcesEvent {
    pub passages: Vec<Passage>,
}

/// The events of a streamed answer, in order: `sources` (as soon as retrieval ends),
/// `token`..., then `answer` and `done`, or one `error` instead.
#[derive(Debug, Clone)]
pub enum AnswerEvent {
    Sources(Vec<Passage>),
    Token(String),
    Answer(Box<AnswerResult>),
    Done,
    Error(ErrorBody),
}

impl AnswerEvent {
    pub const SOURCES: &str = "sources";
    pub const TOKEN: &str = "token";
    pub const ANSWER: &str = "answer";
    pub const DONE: &str = "done";
    pub const ERROR: &str = "error";

    /// The event as SSE bytes.
    pub fn to_sse(&self) -> bytes::Bytes {
        use crate::sse::event;
        match self {
            Self::Sources(passages) => event(
                Self::SOURCES,
                &SourcesEvent {
                    passages: passages.clone(),
                },
            ),
            Self::Token(text) => event(Self::TOKEN, &TokenEvent { text: text.clone() }),
            Self::Answer(result) => event(Self::ANSWER, result),
            Self::Done => event(Self::DONE, &serde_json::json!({})),
            Self::Error(body) => event(Self::ERROR, body),
        }
    }

    /// The event of a named SSE frame; `None` for an event this client does not know.
    pub fn from_sse(name: &str, data: &str) -> Result<Option<Self>, serde_json::Error> {
        Ok(Some(match name {
            Self::SOURCES => Self::Sources(serde_json::from_str::<SourcesEvent>(data)?.passages),
            Self::TOKEN => Self::Token(serde_json::from_str::<TokenEvent>(data)?.text),
            Self::ANSWER => Self::Answer(Box::new(serde_json::from_str(data)?)),
            Self::DONE => Self::Done,
            Self::ERROR => Self::Error(serde_json::from_str(data)?),
            _ => return Ok(None),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_stored_by_earlier_versions_still_read() {
        // No search_query, no timings, citations without highlights.
        let old = serde_json::json!({
            "answer": "Leave is 25 days [1].",
            "abstained": false,
            "citations": [{"n": 1, "chunk_id": Uuid::nil(), "document_id": Uuid::nil(),
                "document": "h.pdf", "title": "H", "page": 3, "quote": "25 days",
                "span_start": 0, "span_end": 7, "supported": true}],
        });
        let a: Answer = serde_json::from_value(old).unwrap();
        assert_eq!(a.citations[0].page, 3);
        assert_eq!(
            (a.citations[0].highlight_start, a.citations[0].highlight_end),
            (0, 0)
        );
        assert!(a.timings.finish_reason.is_none());
    }

    #[test]
    fn stream_events_round_trip_through_sse_frames() {
        let events = [
            AnswerEvent::Token("Leave ".into()),
            AnswerEvent::Done,
            AnswerEvent::Error(ErrorBody {
                code: "unavailable".into(),
                message: "busy".into(),
            }),
        ];
        for e in events {
            let bytes = e.to_sse();
            let text = std::str::from_utf8(&bytes).unwrap();
            let name = text
                .lines()
                .next()
                .unwrap()
                .strip_prefix("event: ")
                .unwrap();
            let data = text.lines().nth(1).unwrap().strip_prefix("data: ").unwrap();
            let back = AnswerEvent::from_sse(name, data).unwrap().unwrap();
            assert_eq!(format!("{back:?}"), format!("{e:?}"));
        }
        assert!(AnswerEvent::from_sse("progress", "{}").unwrap().is_none());
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
