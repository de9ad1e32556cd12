//! Answering: rewrite a follow-up into a standalone question, retrieve, select the
//! evidence, abstain when it is weak, otherwise prompt the model with numbered sources and
//! stream its answer, then check it sentence by sentence and keep only what the sources
//! carry; when the model refuses strong evidence or is not there, answer with the
//! sources' own sentences.

use std::sync::Arc;
use std::time::Instant;

pub use lectern_api::query::{Answer, Citation, EvidenceScore, Timings};
use lectern_core::{DocumentId, Error, Result, SearchMode, SearchRequest, WorkspaceScope};
use lectern_llm::{ChatMessage, ChatRole, GenerationRequest, Generator};
use lectern_runtime::QuerySettings;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::cite::{self, Sentence};
use crate::retrieve::{Passage, Retrieved, Retriever, SearchOptions};
use crate::{evidence, grounding, prompt, rerank, retrieve};

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
    /// A busy model is an error (429 with `Retry-After`) rather than an answer made of the
    /// passages: for clients that retry, such as the OpenAI-compatible API.
    pub refuse_when_busy: bool,
}

impl Answerer {
    /// This answerer, refusing when the model is busy.
    pub fn refusing_when_busy(&self) -> Self {
        Self {
            refuse_when_busy: true,
            ..self.clone()
        }
    }

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
            per_page: self.settings.per_page.max(1),
            cross_language_by_meaning: self.settings.cross_language_by_meaning,
            navigation_last: self.settings.navigation_last,
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
        self.answer_with_sources(q, |_| {}, tokens).await
    }

    /// Answers; `on_sources` sees the sources the moment retrieval and evidence selection
    /// end (before the model reads them), and the text pieces go to `tokens` as they come.
    ///
    /// The decision is made from evidence the code can measure, never from the model's
    /// words alone:
    /// - weak evidence (nothing retrieved, or the best passage too far from the
    ///   question): "not found", without asking the model;
    /// - the model's draft: each sentence checked against the sources; sentences that
    ///   cite nothing or name terms (names, numbers, commands) that no source holds are
    ///   left out, with a notice; a draft with nothing left is not an answer;
    /// - the model refuses, or has nothing grounded to say, or is missing or unavailable:
    ///   with strong evidence, an extractive answer (the sources' own sentences that bear
    ///   on the question, each cited, marked as such); otherwise "not found".
    pub async fn answer_with_sources(
        &self,
        q: Question,
        on_sources: impl FnOnce(&[Passage]) + Send,
        tokens: mpsc::UnboundedSender<String>,
    ) -> Result<Answer> {
        let started = Instant::now();
        let search_query = match (&self.llm, q.history.is_empty()) {
            (Some(_), false) => match self.standalone(&q.text, &q.history).await {
                Ok(rewritten) => rewritten,
                Err(e) if e.is_transient() => {
                    tracing::warn!(error = %e, "the follow-up could not be rewritten; searching it as asked");
                    q.text.trim().to_owned()
                }
                Err(e) => return Err(e),
            },
            _ => q.text.trim().to_owned(),
        };
        let retrieved = self
            .search(
                &q.scope,
                &search_query,
                self.settings.sources * 2,
                q.documents.clone(),
            )
            .await?;
        let mut timings = Timings {
            retrieval_ms: started.elapsed().as_millis() as u64,
            ..Timings::default()
        };
        let draft = Draft {
            search_query,
            evidence: evidence_of(&q.text, &retrieved),
            not_found: prompt::not_found(&q.text),
            started,
        };
        let absent = self
            .not_found_before_asking(
                &q.scope,
                &q.text,
                &retrieved,
                &draft.evidence,
                q.documents.clone(),
            )
            .await?;
        if let Some(unnamed) = absent {
            let _ = tokens.send(draft.not_found.to_owned());
            let mut answer = draft.abstention(retrieved.passages, timings);
            if !unnamed.is_empty() && !answer.passages.is_empty() {
                let as_asked = |term: &String| {
                    q.text
                        .split_whitespace()
                        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
                        .find(|w| grounding::comparable(w) == *term)
                        .unwrap_or(term)
                        .to_owned()
                };
                answer.notice = Some(format!(
                    "None of the passages found mentions {}.",
                    unnamed
                        .iter()
                        .map(|t| format!("\u{201c}{}\u{201d}", as_asked(t)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            return Ok(answer);
        }
        let sources = self
            .select_evidence(&q.scope, &draft.search_query, &retrieved)
            .await?;
        on_sources(&sources);

        let Some(llm) = self.llm.clone() else {
            let notice = "No language model is set up, so this answer is made of the passages that bear most on the question.";
            return self
                .without_model(draft, &retrieved, sources, timings, notice)
                .await;
        };
        let (messages, k) =
            prompt::fit(llm.as_ref(), &q.text, &sources, &q.history, self.max_tokens).await?;
        if k == 0 {
            // Only the instructions and the question fit: an answer would not be grounded.
            return Ok(draft.abstention(sources, timings));
        }
        let sources = sources[..k].to_vec();

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
        let stats = match llm.generate(request, tx).await {
            Ok(stats) => stats,
            Err(e) if e.is_transient() && !(self.refuse_when_busy && e.retry_after().is_some()) => {
                tracing::warn!(error = %e, "the language model is unavailable; answering from the passages");
                let notice = if e.retry_after().is_some() {
                    "The language model is busy with other questions right now, so this answer is made of the passages that bear most on the question."
                } else {
                    "The language model is unavailable right now, so this answer is made of the passages that bear most on the question."
                };
                return self
                    .without_model(draft, &retrieved, sources, timings, notice)
                    .await;
            }
            Err(e) => return Err(e),
        };
        let raw = forward
            .await
            .map_err(|e| Error::internal("the answer stream failed", e))?;
        timings.first_token_ms = stats.first_token.map(|d| d.as_millis() as u64);
        timings.prompt_tokens = stats.prompt_tokens;
        timings.cached_prompt_tokens = stats.cached_prompt_tokens;
        timings.completion_tokens = stats.completion_tokens;
        timings.tokens_per_second = stats.tokens_per_second();
        timings.drafted_tokens = stats.drafted_tokens;
        timings.accepted_tokens = stats.accepted_tokens;
        timings.finish_reason = Some(stats.finish);

        tracing::debug!(draft = %raw, "the model's draft");
        let (answer, cited_by_model) = cite::clean_markers(&raw, sources.len());
        // The model's own "not found": an answer that cites nothing and says so (a cited
        // sentence such as "the contract does not contain a non-compete clause [2]" is
        // an answer, not a refusal).
        if answer.is_empty() || (cited_by_model.is_empty() && cite::says_not_found(&answer)) {
            let notice = "The model found no answer in the passages, but they bear on the question: here are their own words.";
            return self
                .without_model(draft, &retrieved, sources, timings, notice)
                .await;
        }
        let (answer, sentences) = self.check_support(&answer, &sources).await?;
        let grounded = grounding::keep_grounded(&answer, sentences, &sources);
        if !grounded.answers() {
            let notice = if grounded.kept == 0 {
                "The model's draft was not supported by the passages, but they bear on the question: here are their own words."
            } else {
                "Most of the model's draft was not supported by the passages, but they bear on the question: here are their own words."
            };
            return self
                .without_model(draft, &retrieved, sources, timings, notice)
                .await;
        }
        // A draft that only restates the question ("The style file used for author/year
        // citations is [3].") still points at the passage that answers; the passages'
        // own words, quoted instead, were measured to point elsewhere more often
        // (EVALUATION, session 16). It stays, and says what it is.
        let restates = grounded.restates(&q.text, &question_terms(&q.text, &sources));
        let notice = if restates {
            Some("The model's answer only restates the question: the cited passage holds the answer.".to_owned())
        } else {
            (grounded.dropped > 0).then(|| {
                format!(
                    "{} sentence{} of the draft {} left out: no passage supports {}.",
                    grounded.dropped,
                    if grounded.dropped == 1 { "" } else { "s" },
                    if grounded.dropped == 1 { "was" } else { "were" },
                    if grounded.dropped == 1 { "it" } else { "them" },
                )
            })
        };
        let (answer, _) = cite::clean_markers(&grounded.text, sources.len());
        let sentences = grounded.sentences;
        Ok(draft.answer(answer, sentences, sources, timings, false, notice))
    }

    /// Whether the answer is "not found" without asking the model: the evidence is plainly
    /// too weak ([`Answerer::evidently_absent`]), or else the question names something
    /// that no document holds ([`Answerer::named_in_no_document`], looked up only then).
    /// `Some` with those names (empty when the evidence alone decided).
    pub async fn not_found_before_asking(
        &self,
        scope: &WorkspaceScope,
        question: &str,
        retrieved: &Retrieved,
        evidence: &EvidenceScore,
        documents: Option<Vec<DocumentId>>,
    ) -> Result<Option<Vec<String>>> {
        if self.evidently_absent(question, retrieved, evidence) {
            return Ok(Some(Vec::new()));
        }
        let unnamed = self
            .named_in_no_document(scope, question, retrieved, documents)
            .await?;
        Ok((!unnamed.is_empty()).then_some(unnamed))
    }

    /// Whether the documents plainly do not hold the answer, so that no model is asked: no
    /// passage close enough to the question, or the best passages hold less than
    /// `query.abstain_coverage` of its content words (a question of two or more).
    pub fn evidently_absent(
        &self,
        question: &str,
        retrieved: &Retrieved,
        evidence: &EvidenceScore,
    ) -> bool {
        retrieved.passages.is_empty()
            || retrieved.best_similarity < self.settings.abstain_below
            || (cite::content_words(question).len() >= 2
                && evidence.coverage < self.settings.abstain_coverage
                && !across_languages(question, &retrieved.passages))
    }

    /// The question's names and commands that no document in the scope holds, with
    /// `query.absent_names_not_found` (none without it, or when the question and the
    /// passages are in two languages, where names are written differently): those that
    /// none of the retrieved passages holds ([`named_nowhere`]), each then looked up on
    /// its own across the scope by its words (BM25), and kept only when no passage found
    /// so holds it either. A question about "Rust" over manuals that never name it is
    /// then "not found"; the one about the "Enter" key, which a manual calls the return
    /// key but names elsewhere, still goes to the model.
    pub async fn named_in_no_document(
        &self,
        scope: &WorkspaceScope,
        question: &str,
        retrieved: &Retrieved,
        documents: Option<Vec<DocumentId>>,
    ) -> Result<Vec<String>> {
        if !self.settings.absent_names_not_found || across_languages(question, &retrieved.passages)
        {
            return Ok(Vec::new());
        }
        let mut absent = Vec::new();
        for term in named_nowhere(question, &retrieved.passages) {
            let request = SearchRequest {
                text: term.clone(),
                dense: Vec::new(),
                limit: 20,
                mode: SearchMode::Sparse,
                documents: documents.clone(),
            };
            let hits = self.retriever.index.search(scope, &request).await?;
            let texts = hits
                .iter()
                .flat_map(|h| [h.chunk.text.as_str(), h.chunk.title.as_str()])
                .collect::<Vec<_>>();
            if !holds_word(&grounding::comparable(&texts.join("\n")), &term) {
                absent.push(term);
            }
        }
        Ok(absent)
    }

    /// Narrows the retrieved passages (at most `query.per_page` of one page already) to
    /// the evidence the model reads: the best `query.sources`, the sentences their chunks'
    /// edges cut made whole, each cut to its best run of sentences, and none that lies
    /// inside a better one.
    async fn select_evidence(
        &self,
        scope: &WorkspaceScope,
        question: &str,
        retrieved: &Retrieved,
    ) -> Result<Vec<Passage>> {
        let best = retrieved
            .passages
            .iter()
            .take(self.settings.sources)
            .cloned()
            .collect();
        let passages = self
            .retriever
            .complete_sentences(
                scope,
                best,
                &retrieved.places,
                self.settings.complete_sentences,
            )
            .await;
        let narrowed = if self.settings.evidence_sentences == 0 {
            passages
        } else {
            // Every sentence of every passage, embedded in one batch, then regrouped.
            let quotes = evidence::sentence_ranges_of(&passages);
            let texts = quotes.iter().map(|q| q.text.clone()).collect();
            let mut per_passage: Vec<Vec<Vec<f32>>> = vec![Vec::new(); passages.len()];
            for (q, v) in quotes.iter().zip(self.retriever.embed(texts).await?) {
                per_passage[q.source].push(v);
            }
            evidence::narrow_all(
                &retrieved.query_vector,
                &question_terms(question, &retrieved.passages),
                &passages,
                &per_passage,
                self.settings.evidence_sentences,
            )
        };
        Ok(evidence::drop_contained(narrowed))
    }

    /// The answer without the model's words: extractive with strong evidence, otherwise
    /// "not found".
    async fn without_model(
        &self,
        draft: Draft,
        retrieved: &Retrieved,
        sources: Vec<Passage>,
        timings: Timings,
        notice: &str,
    ) -> Result<Answer> {
        let strong = draft.evidence.coverage >= self.settings.strong_coverage
            && draft.evidence.similarity >= self.settings.strong_similarity
            && draft.evidence.missing.is_empty();
        if !strong || sources.is_empty() {
            return Ok(draft.abstention(sources, timings));
        }
        let quotes = evidence::sentence_ranges_of(&sources);
        let texts: Vec<String> = quotes.iter().map(|q| q.text.clone()).collect();
        let vectors = self.retriever.embed(texts).await?;
        let terms = question_terms(&draft.search_query, &sources);
        let chosen = evidence::best_quotes(&retrieved.query_vector, &terms, &quotes, &vectors, 3);
        if chosen.is_empty() {
            return Ok(draft.abstention(sources, timings));
        }
        let text = chosen
            .iter()
            .map(|q| format!("{} [{}]", q.text, q.source + 1))
            .collect::<Vec<_>>()
            .join("\n\n");
        let mut sentences = cite::split_sentences(&text);
        for s in &mut sentences {
            s.support = 1.0;
            s.supported = true;
        }
        Ok(draft.answer(
            text,
            sentences,
            sources,
            timings,
            true,
            Some(notice.to_owned()),
        ))
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

    /// Retrieval: the search, and with `query.rerank` and a model, its first passages
    /// reordered by the model ([`rerank`]).
    pub async fn search(
        &self,
        scope: &WorkspaceScope,
        question: &str,
        limit: usize,
        documents: Option<Vec<DocumentId>>,
    ) -> Result<Retrieved> {
        let depth = match &self.llm {
            Some(_) => self.settings.rerank,
            None => 0,
        };
        let options = self.search_options(limit.max(depth), documents);
        let mut retrieved = self.retriever.search(scope, question, &options).await?;
        // Evidence too weak to answer from is refused whatever its order: nothing to judge.
        let judged = depth > 0 && retrieved.best_similarity >= self.settings.abstain_below;
        if let Some(llm) = self.llm.as_deref().filter(|_| judged) {
            // Tables of contents, put last by the search, stay there: the model reads
            // only the passages before them.
            let depth = match options.navigation_last {
                true => retrieved.passages[..depth.min(retrieved.passages.len())]
                    .iter()
                    .take_while(|p| !retrieve::is_navigation(&p.text))
                    .count(),
                false => depth,
            };
            let passages = std::mem::take(&mut retrieved.passages);
            retrieved.passages = rerank::rerank(llm, question, passages, depth).await;
        }
        retrieved.passages.truncate(limit);
        Ok(retrieved)
    }
}

/// What is known about an answer before its text: the question searched for, the
/// strength of the evidence, and when answering started.
struct Draft {
    search_query: String,
    evidence: EvidenceScore,
    /// "Not found", in the language of the question.
    not_found: &'static str,
    started: Instant,
}

impl Draft {
    fn abstention(self, passages: Vec<Passage>, mut timings: Timings) -> Answer {
        timings.total_ms = self.started.elapsed().as_millis() as u64;
        Answer {
            answer: self.not_found.to_owned(),
            abstained: true,
            search_query: self.search_query,
            // "You may look here": the closest passages, best first.
            passages: passages.into_iter().take(3).collect(),
            timings,
            evidence: self.evidence,
            ..Answer::default()
        }
    }

    /// The answer with its citations resolved against `sources`.
    fn answer(
        self,
        answer: String,
        sentences: Vec<Sentence>,
        sources: Vec<Passage>,
        mut timings: Timings,
        extractive: bool,
        notice: Option<String>,
    ) -> Answer {
        let cited = lectern_api::markers::cited(&answer);
        let citations = cited
            .iter()
            .filter(|&&n| (1..=sources.len()).contains(&n))
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
                    url: p.url.clone(),
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
        timings.total_ms = self.started.elapsed().as_millis() as u64;
        Answer {
            answer,
            abstained: false,
            search_query: self.search_query,
            citations,
            sentences,
            passages: sources,
            timings,
            extractive,
            notice,
            evidence: self.evidence,
        }
    }
}

/// How strongly the retrieved passages bear on the question: the share of its content
/// words that the three best passages hold, the best dense similarity, and the question's
/// key terms (names, numbers, commands) that none of them holds.
pub fn evidence_of(question: &str, retrieved: &Retrieved) -> EvidenceScore {
    let joined = best_text(&retrieved.passages);
    EvidenceScore {
        coverage: evidence::term_coverage(&cite::Terms::of_question(question, &joined), &joined),
        similarity: retrieved.best_similarity,
        missing: grounding::missing_terms(question, &grounding::comparable(&joined)),
    }
}

/// The question's names (its key terms made of letters only: "Rust", "macOS") that none
/// of the retrieved passages holds. The search ranks a passage that holds a rare name high
/// (BM25), so a name that none of them holds is likely in no document: a question about
/// "Rust" over manuals that never name it, which a small model answered from passages
/// about something else. Numbers and code-like terms do not count: they are often the
/// asker's own example ("can a variable be called violin_1?", a file of their own).
pub fn named_nowhere(question: &str, passages: &[Passage]) -> Vec<String> {
    let texts = passages
        .iter()
        .flat_map(|p| [p.text.as_str(), p.title.as_str(), p.document.as_str()]);
    unnamed_in(question, texts)
}

/// The question's names that none of `texts` holds as a word ("rust" is not in "trust";
/// a plural or a possessive counts). A name is a key term of letters only, or of words
/// of letters joined by hyphens; not a command-line flag.
fn unnamed_in<'a>(question: &str, texts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let joined = grounding::comparable(&texts.into_iter().collect::<Vec<_>>().join("\n"));
    grounding::key_terms(question)
        .into_iter()
        .filter(|t| !t.starts_with('-') && t.chars().all(|c| c.is_alphabetic() || c == '-'))
        .filter(|t| !holds_word(&joined, t))
        .collect()
}

/// Whether `text` holds `word`, or `word` without a plural's `s`, as a word: no letter of
/// a cased script or digit right before it, nor right after it but for an `s` (a plural, a
/// possessive's). Scripts without case (Chinese, Thai) write words without spaces, so
/// their letters beside a name do not hide it ("使用docker部署" holds "docker").
fn holds_word(text: &str, word: &str) -> bool {
    let in_word = |c: char| c.is_numeric() || c.is_lowercase() || c.is_uppercase();
    let singular = word.strip_suffix('s').filter(|w| w.chars().count() >= 2);
    [Some(word), singular].into_iter().flatten().any(|word| {
        text.match_indices(word).any(|(at, _)| {
            let before = text[..at].chars().next_back();
            let mut after = text[at + word.len()..].chars();
            let next = match after.next() {
                Some('s') => after.next(),
                c => c,
            };
            !before.is_some_and(in_word) && !next.is_some_and(in_word)
        })
    })
}

/// The text of the three best passages, one after the other.
fn best_text(passages: &[Passage]) -> String {
    passages
        .iter()
        .take(3)
        .map(|p| p.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The question's content words, in its language, or that of the best passages when its
/// own cannot be told.
fn question_terms(question: &str, passages: &[Passage]) -> cite::Terms {
    cite::Terms::of_question(question, &best_text(passages))
}

/// Whether the question and the best passages are in two different languages (both
/// told): their words cannot meet, so how many of the question's words the passages hold
/// says nothing about whether they answer it.
pub fn across_languages(question: &str, passages: &[Passage]) -> bool {
    crate::retrieve::in_two_languages(question, &best_text(passages))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_counts_as_held_only_as_a_word() {
        let texts = [
            "Funds are held in trust.",
            "See the macOS notes; NumPy's arrays; the Chromebook.",
            "使用docker部署",
        ];
        let unnamed = |question: &str| unnamed_in(question, texts);
        // "rust" is inside "trust", but not a word of it.
        assert_eq!(unnamed("Can I call it from Rust?"), vec!["rust"]);
        // A possessive or a plural is the word, either way round; case does not matter.
        assert!(unnamed("Does it run on MacOS with NumPy on Chromebooks?").is_empty());
        // A script without case writes words without spaces.
        assert!(unnamed("How do I deploy with Docker?").is_empty());
        // A capital after a sentence's end, behind a quote or a bracket, is no name.
        assert!(unnamed("Is it \"held in trust.\" Nobody knows?").is_empty());
        assert!(unnamed("Is it held (in trust.) Nobody knows?").is_empty());
        assert_eq!(unnamed("Is it held in trust, Nobody?"), vec!["nobody"]);
        // Flags, numbers and code-like terms are the asker's own, not names.
        assert!(unnamed("Does --dry-run work for violin_1 in 2025?").is_empty());
    }
}
