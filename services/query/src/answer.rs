//! Answering: rewrite a follow-up into a standalone question, retrieve, abstain when the
//! evidence is weak, otherwise prompt the model with numbered sources and stream its
//! answer, then check its citations sentence by sentence.

use std::sync::Arc;
use std::time::Instant;

pub use lectern_api::query::{Answer, Citation, Timings};
use lectern_core::{DocumentId, Error, Result, SearchMode, WorkspaceScope};
use lectern_llm::{ChatMessage, ChatRole, GenerationRequest, Generator};
use lectern_runtime::QuerySettings;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::cite::{self, Sentence};
use crate::prompt;
use crate::retrieve::{Passage, Retrieved, Retriever, SearchOptions};

/// One question.
#[derive(Debug, Clone)]
pub struct Question {
    pub text: String,
    /// Earlier turns of the conversation, oldest first.
    pub history: Vec<ChatMessage>,
    pub scope: WorkspaceScope,
    pub documents: Option<Vec<Uuid>>,
}

#[derive(Clone)]
pub struct Answerer {
    pub retriever: Retriever,
    pub llm: Option<Arc<dyn Generator>>,
    pub settings: QuerySettings,
    pub max_tokens: u32,
    pub temperature: f32,
}

impl Answerer {
    pub fn search_options(
        &self,
        limit: usize,
        documents: Option<Vec<DocumentId>>,
    ) -> SearchOptions {
        SearchOptions {
            limit,
            candidates: self.settings.candidates.max(limit),
            mode: SearchMode::Hybrid,
            documents,
            duplicate_overlap: self.settings.duplicate_overlap,
        }
    }

    fn llm(&self) -> Result<&Arc<dyn Generator>> {
        self.llm.as_ref().ok_or_else(|| {
            Error::unavailable(
                "no language model is configured (llm.model_path); search works, answers do not",
                "llm.model_path unset",
            )
        })
    }

    /// A follow-up rewritten to stand alone (the question itself when there is no history).
    pub async fn standalone(&self, question: &str, history: &[ChatMessage]) -> Result<String> {
        if history.is_empty() {
            return Ok(question.trim().to_owned());
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        let request = GenerationRequest {
            messages: prompt::rewrite_messages(history, question),
            max_tokens: 64,
            temperature: 0.0,
            seed: 0,
        };
        let llm = self.llm()?.clone();
        llm.generate(request, tx).await?;
        let mut rewrite = String::new();
        while let Ok(piece) = rx.try_recv() {
            rewrite.push_str(&piece);
        }
        Ok(prompt::clean_rewrite(&rewrite, question))
    }

    /// Answers, sending the answer's text pieces to `tokens` as the model writes them.
    pub async fn answer(
        &self,
        q: Question,
        tokens: mpsc::UnboundedSender<String>,
    ) -> Result<Answer> {
        let started = Instant::now();
        let llm = self.llm()?.clone();
        let search_query = self.standalone(&q.text, &q.history).await?;
        let options = self.search_options(self.settings.sources, q.documents.clone());
        let retrieved = self
            .retriever
            .search(&q.scope, &search_query, &options)
            .await?;
        let retrieval_ms = started.elapsed().as_millis() as u64;
        let mut timings = Timings {
            retrieval_ms,
            ..Timings::default()
        };

        if retrieved.passages.is_empty() || retrieved.best_similarity < self.settings.abstain_below
        {
            let _ = tokens.send(prompt::NOT_FOUND.to_owned());
            timings.total_ms = started.elapsed().as_millis() as u64;
            return Ok(abstention(search_query, retrieved.passages, timings));
        }

        let (messages, k) = prompt::fit(
            llm.as_ref(),
            &q.text,
            &retrieved.passages,
            &q.history,
            self.max_tokens,
        )
        .await?;
        if k == 0 {
            // Only the instructions and the question fit: an answer would not be grounded.
            timings.total_ms = started.elapsed().as_millis() as u64;
            return Ok(abstention(search_query, retrieved.passages, timings));
        }
        let sources = retrieved.passages[..k].to_vec();

        // Stream the pieces through, keeping the whole text.
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        let forward = tokio::spawn(async move {
            let mut text = String::new();
            while let Some(piece) = rx.recv().await {
                text.push_str(&piece);
                if tokens.send(piece).is_err() {
                    break; // the client went away: dropping rx cancels generation
                }
            }
            text
        });
        let request = GenerationRequest {
            messages,
            max_tokens: self.max_tokens,
            temperature: self.temperature,
            seed: 0,
        };
        let stats = llm.generate(request, tx).await?;
        let raw = forward
            .await
            .map_err(|e| Error::internal("the answer stream failed", e))?;
        timings.first_token_ms = stats.first_token.map(|d| d.as_millis() as u64);
        timings.prompt_tokens = stats.prompt_tokens;
        timings.completion_tokens = stats.completion_tokens;
        timings.tokens_per_second = stats.tokens_per_second();
        timings.finish_reason = Some(stats.finish);

        let (answer, cited_by_model) = cite::clean_markers(&raw, sources.len());
        // The model's own "not found": an answer that cites nothing and says so (a cited
        // sentence such as "the contract does not contain a non-compete clause [2]" is
        // an answer, not a refusal).
        if answer.is_empty() || (cited_by_model.is_empty() && cite::says_not_found(&answer)) {
            timings.total_ms = started.elapsed().as_millis() as u64;
            return Ok(abstention(search_query, sources, timings));
        }
        let (answer, sentences) = self.check_support(&answer, &sources).await?;
        let (answer, cited) = cite::clean_markers(&answer, sources.len());
        let citations = cited
            .iter()
            .map(|&n| {
                let p = &sources[n - 1];
                let claims: Vec<&str> = sentences
                    .iter()
                    .filter(|s| s.sources.contains(&n))
                    .map(|s| s.text.as_str())
                    .collect();
                let (highlight_start, highlight_end) = cite::best_supporting_span(&claims, &p.text);
                Citation {
                    n,
                    chunk_id: p.chunk_id,
                    document_id: p.document_id,
                    document: p.document.clone(),
                    title: p.title.clone(),
                    page: p.page,
                    quote: p.text.clone(),
                    span_start: p.span.start,
                    span_end: p.span.end,
                    highlight_start,
                    highlight_end,
                    supported: sentences
                        .iter()
                        .filter(|s| s.sources.contains(&n))
                        .all(|s| s.supported),
                }
            })
            .collect();
        timings.total_ms = started.elapsed().as_millis() as u64;
        Ok(Answer {
            answer,
            abstained: false,
            search_query,
            citations,
            sentences,
            passages: sources,
            timings,
        })
    }

    /// Scores each sentence against the passages it cites, and attributes uncited claims
    /// to the source that supports them best (one embedding batch for the sentences and
    /// the sources together). Returns the answer (with any attributed markers) and its
    /// sentences.
    async fn check_support(
        &self,
        answer: &str,
        sources: &[Passage],
    ) -> Result<(String, Vec<Sentence>)> {
        let mut sentences = cite::split_sentences(answer);
        let mut texts: Vec<String> = sentences
            .iter()
            .map(|s| cite::content_words(&s.text).join(" "))
            .collect();
        texts.extend(sources.iter().map(|p| p.text.clone()));
        let mut sentence_vectors = self.retriever.embed(texts).await?;
        let source_vectors = sentence_vectors.split_off(sentences.len());
        cite::score_sentences(
            &mut sentences,
            &sentence_vectors,
            |n| sources.get(n.wrapping_sub(1)).map(|p| p.text.clone()),
            |n| source_vectors.get(n.wrapping_sub(1)).cloned(),
            self.settings.support_threshold,
        );
        let sources: Vec<(String, Vec<f32>)> = sources
            .iter()
            .map(|p| p.text.clone())
            .zip(source_vectors)
            .collect();
        Ok(cite::attribute_uncited(
            answer,
            sentences,
            &sentence_vectors,
            &sources,
            self.settings.support_threshold,
        ))
    }

    /// Retrieval only.
    pub async fn search(
        &self,
        scope: &WorkspaceScope,
        question: &str,
        limit: usize,
        documents: Option<Vec<DocumentId>>,
    ) -> Result<Retrieved> {
        let options = self.search_options(limit, documents);
        self.retriever.search(scope, question, &options).await
    }
}

fn abstention(search_query: String, passages: Vec<Passage>, timings: Timings) -> Answer {
    Answer {
        answer: prompt::NOT_FOUND.to_owned(),
        abstained: true,
        search_query,
        citations: Vec::new(),
        sentences: Vec::new(),
        // "You may look here": the closest passages, best first.
        passages: passages.into_iter().take(3).collect(),
        timings,
    }
}

/// The history of a conversation as chat messages (answers without their markers, so
/// the model does not copy stale numbers).
pub fn history_messages(turns: &[(String, String)]) -> Vec<ChatMessage> {
    turns
        .iter()
        .map(|(role, content)| {
            let role = if role == "assistant" {
                ChatRole::Assistant
            } else {
                ChatRole::User
            };
            let (content, _) = cite::clean_markers(content, 0);
            ChatMessage::new(role, content)
        })
        .collect()
}
