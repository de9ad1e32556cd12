//! Answer quality on a question file (the format of `tests/data/dev-qa/qa.jsonl`):
//! retrieval page hits, answer keywords, citation correctness, sentence support,
//! abstention on unanswerable questions, and latency, per question and overall.

use std::path::Path;

use lectern_api::query::{Answer, Passage};
use serde::{Deserialize, Serialize};

use crate::metrics::quantile;

#[derive(Debug, Clone, Deserialize)]
pub struct QaItem {
    pub id: String,
    pub question: String,
    pub answerable: bool,
    /// The file name of the document that answers (answerable questions).
    pub doc: Option<String>,
    /// The pages that answer (null or absent for unanswerable questions).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub pages: Vec<u32>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub answer_keywords: Vec<String>,
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

pub fn load(path: &Path) -> anyhow::Result<Vec<QaItem>> {
    crate::read_jsonl(path)
}

/// Whether a passage comes from the expected document and one of the expected pages.
pub fn hits(p: &Passage, doc: &str, pages: &[u32]) -> bool {
    p.document == doc
        && pages
            .iter()
            .any(|&n| p.pages.start <= n && n <= p.pages.end)
}

/// "file p.N" (or "p.N-M") of a passage.
fn page_of(p: &Passage) -> String {
    if p.pages.end > p.pages.start {
        format!("{} p.{}-{}", p.document, p.pages.start, p.pages.end)
    } else {
        format!("{} p.{}", p.document, p.pages.start)
    }
}

/// The share of the keywords found in the answer (case-insensitive).
pub fn keyword_share(answer: &str, keywords: &[String]) -> f64 {
    if keywords.is_empty() {
        return 1.0;
    }
    let a = answer.to_lowercase();
    keywords
        .iter()
        .filter(|k| a.contains(&k.to_lowercase()))
        .count() as f64
        / keywords.len() as f64
}

#[derive(Debug, Clone, Serialize)]
pub struct QaRecord {
    pub id: String,
    pub question: String,
    pub answerable: bool,
    pub hit_at_1: bool,
    pub hit_at_5: bool,
    pub keywords: f64,
    /// Some citation names the expected document and page.
    pub cites_right_page: bool,
    /// Supported sentences among those with a claim to check.
    pub supported_share: f64,
    pub abstained: bool,
    /// The best dense similarity of a passage to the question (the abstention signal).
    pub best_similarity: f32,
    /// The share of the question's content words the best passages hold.
    pub coverage: f32,
    /// The question's names, numbers and commands that none of the best passages holds.
    pub missing: Vec<String>,
    /// The answer quotes the documents (the model refused, or was not asked).
    pub extractive: bool,
    /// What the answer said of itself (sentences left out, why it quotes the passages).
    pub notice: Option<String>,
    pub prompt_tokens: u32,
    /// Prompt tokens the model had cached (read by an earlier request).
    pub cached_prompt_tokens: u32,
    pub completion_tokens: u32,
    /// Speculative decoding: tokens guessed, and kept by the model.
    pub drafted_tokens: u32,
    pub accepted_tokens: u32,
    pub answer: String,
    /// The sources the answer was made from, in their order ("file p.N"), and those it
    /// cites: what tells a wrong citation from wrong evidence.
    pub sources: Vec<String>,
    pub cited: Vec<String>,
    pub retrieval_ms: u64,
    pub first_token_ms: Option<u64>,
    pub total_ms: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct QaSummary {
    pub questions: usize,
    pub answerable: usize,
    pub unanswerable: usize,
    pub page_hit_at_1: f64,
    pub page_hit_at_5: f64,
    pub keyword_accuracy: f64,
    pub citation_correctness: f64,
    pub supported_sentences: f64,
    pub abstention_precision: f64,
    pub abstention_recall: f64,
    /// The share of answerable questions that got an answer (not "not found").
    pub answer_rate: f64,
    /// The share of answers made of the documents' own sentences.
    pub extractive_share: f64,
    pub prompt_tokens_p50: f64,
    /// Prompt tokens the model had to read (not cached), median.
    pub prompt_tokens_read_p50: f64,
    pub retrieval_ms_p50: f64,
    pub first_token_ms_p50: f64,
    pub total_ms_p50: f64,
    pub total_ms_p90: f64,
    /// Generated tokens per answer from the model, median.
    pub completion_tokens_p50: f64,
    /// Of all tokens guessed by speculative decoding, the share the model kept (0 without).
    pub draft_acceptance: f64,
}

/// Scores one question from its search results and its answer.
pub fn record(item: &QaItem, top: &[Passage], best_similarity: f32, answer: &Answer) -> QaRecord {
    let doc = item.doc.as_deref().unwrap_or("");
    let claims: Vec<_> = answer.sentences.iter().collect();
    QaRecord {
        id: item.id.clone(),
        question: item.question.clone(),
        answerable: item.answerable,
        hit_at_1: item.answerable && top.iter().take(1).any(|p| hits(p, doc, &item.pages)),
        hit_at_5: item.answerable && top.iter().take(5).any(|p| hits(p, doc, &item.pages)),
        keywords: if answer.abstained {
            0.0
        } else {
            keyword_share(&answer.answer, &item.answer_keywords)
        },
        cites_right_page: answer.citations.iter().any(|c| {
            c.document == doc
                && answer
                    .passages
                    .iter()
                    .find(|p| p.chunk_id == c.chunk_id)
                    .is_some_and(|p| hits(p, doc, &item.pages))
        }),
        supported_share: if claims.is_empty() {
            0.0
        } else {
            claims.iter().filter(|s| s.supported).count() as f64 / claims.len() as f64
        },
        abstained: answer.abstained,
        best_similarity,
        coverage: answer.evidence.coverage,
        missing: answer.evidence.missing.clone(),
        extractive: answer.extractive,
        notice: answer.notice.clone(),
        prompt_tokens: answer.timings.prompt_tokens,
        cached_prompt_tokens: answer.timings.cached_prompt_tokens,
        completion_tokens: answer.timings.completion_tokens,
        drafted_tokens: answer.timings.drafted_tokens,
        accepted_tokens: answer.timings.accepted_tokens,
        answer: answer.answer.clone(),
        sources: answer.passages.iter().map(page_of).collect(),
        cited: answer
            .citations
            .iter()
            .filter_map(|c| answer.passages.iter().find(|p| p.chunk_id == c.chunk_id))
            .map(page_of)
            .collect(),
        retrieval_ms: answer.timings.retrieval_ms,
        first_token_ms: answer.timings.first_token_ms,
        total_ms: answer.timings.total_ms,
    }
}

/// The averages: retrieval and answer metrics over answerable questions, abstention over
/// all, latency over all.
pub fn summarise(records: &[QaRecord]) -> QaSummary {
    let answerable: Vec<&QaRecord> = records.iter().filter(|r| r.answerable).collect();
    let mean = |f: &dyn Fn(&QaRecord) -> f64| {
        if answerable.is_empty() {
            0.0
        } else {
            answerable.iter().map(|r| f(r)).sum::<f64>() / answerable.len() as f64
        }
    };
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    let answered: Vec<&&QaRecord> = answerable.iter().filter(|r| !r.abstained).collect();
    let abstained_right = records
        .iter()
        .filter(|r| r.abstained && !r.answerable)
        .count();
    let abstained = records.iter().filter(|r| r.abstained).count();
    let unanswerable = records.len() - answerable.len();
    let ms =
        |f: &dyn Fn(&QaRecord) -> Option<f64>| records.iter().filter_map(f).collect::<Vec<f64>>();
    QaSummary {
        questions: records.len(),
        answerable: answerable.len(),
        unanswerable,
        page_hit_at_1: mean(&|r| flag(r.hit_at_1)),
        page_hit_at_5: mean(&|r| flag(r.hit_at_5)),
        keyword_accuracy: mean(&|r| r.keywords),
        citation_correctness: mean(&|r| flag(r.cites_right_page)),
        supported_sentences: if answered.is_empty() {
            0.0
        } else {
            answered.iter().map(|r| r.supported_share).sum::<f64>() / answered.len() as f64
        },
        abstention_precision: if abstained == 0 {
            0.0
        } else {
            abstained_right as f64 / abstained as f64
        },
        abstention_recall: if unanswerable == 0 {
            0.0
        } else {
            abstained_right as f64 / unanswerable as f64
        },
        answer_rate: mean(&|r| flag(!r.abstained)),
        extractive_share: {
            let given: Vec<&QaRecord> = records.iter().filter(|r| !r.abstained).collect();
            if given.is_empty() {
                0.0
            } else {
                given.iter().filter(|r| r.extractive).count() as f64 / given.len() as f64
            }
        },
        prompt_tokens_p50: quantile(
            &ms(&|r| (r.prompt_tokens > 0).then_some(r.prompt_tokens as f64)),
            0.5,
        ),
        prompt_tokens_read_p50: quantile(
            &ms(&|r| {
                (r.prompt_tokens > 0).then_some((r.prompt_tokens - r.cached_prompt_tokens) as f64)
            }),
            0.5,
        ),
        retrieval_ms_p50: quantile(&ms(&|r| Some(r.retrieval_ms as f64)), 0.5),
        first_token_ms_p50: quantile(&ms(&|r| r.first_token_ms.map(|v| v as f64)), 0.5),
        total_ms_p50: quantile(&ms(&|r| Some(r.total_ms as f64)), 0.5),
        total_ms_p90: quantile(&ms(&|r| Some(r.total_ms as f64)), 0.9),
        completion_tokens_p50: quantile(
            &ms(&|r| (r.completion_tokens > 0).then_some(r.completion_tokens as f64)),
            0.5,
        ),
        draft_acceptance: {
            let drafted: u32 = records.iter().map(|r| r.drafted_tokens).sum();
            let accepted: u32 = records.iter().map(|r| r.accepted_tokens).sum();
            if drafted == 0 {
                0.0
            } else {
                f64::from(accepted) / f64::from(drafted)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use lectern_core::{PageRange, Span};
    use uuid::Uuid;

    use super::*;

    fn passage(doc: &str, start: u32, end: u32) -> Passage {
        Passage {
            chunk_id: Uuid::new_v4(),
            workspace_id: Uuid::nil(),
            document_id: Uuid::nil(),
            document: doc.into(),
            title: doc.into(),
            page: start,
            pages: PageRange { start, end },
            span: Span { start: 0, end: 1 },
            text: "x".into(),
            table_header: None,
            url: None,
            score: 1.0,
        }
    }

    #[test]
    fn question_files_read_nulls_as_empty() {
        let item: QaItem = serde_json::from_str(
            r#"{"id": "d", "question": "q?", "answerable": false, "doc": null, "pages": null, "answer_keywords": []}"#,
        )
        .unwrap();
        assert!(item.pages.is_empty() && item.doc.is_none());
        let item: QaItem = serde_json::from_str(
            r#"{"id": "d", "question": "q?", "answerable": true, "doc": "a.pdf", "pages": [3]}"#,
        )
        .unwrap();
        assert_eq!(item.pages, vec![3]);
        assert!(item.answer_keywords.is_empty());
    }

    #[test]
    fn page_hits_and_keywords() {
        assert!(hits(&passage("a.pdf", 3, 4), "a.pdf", &[4]));
        assert!(!hits(&passage("a.pdf", 3, 4), "a.pdf", &[5]));
        assert!(!hits(&passage("b.pdf", 4, 4), "a.pdf", &[4]));
        let kw = vec!["-e".to_owned(), "Libertine".to_owned()];
        assert_eq!(keyword_share("Use the -E option", &kw), 0.5);
        assert_eq!(keyword_share("libertine and -e", &kw), 1.0);
        assert_eq!(keyword_share("anything", &[]), 1.0);
    }

    fn rec(answerable: bool, abstained: bool, hit1: bool, total: u64) -> QaRecord {
        QaRecord {
            id: "q".into(),
            question: "q".into(),
            answerable,
            hit_at_1: hit1,
            hit_at_5: hit1,
            keywords: if hit1 { 1.0 } else { 0.0 },
            cites_right_page: hit1,
            supported_share: 0.5,
            abstained,
            best_similarity: 0.5,
            coverage: 0.5,
            missing: Vec::new(),
            extractive: false,
            notice: None,
            prompt_tokens: 100,
            cached_prompt_tokens: 40,
            completion_tokens: if abstained { 0 } else { 20 },
            drafted_tokens: 10,
            accepted_tokens: if answerable { 4 } else { 1 },
            answer: String::new(),
            sources: Vec::new(),
            cited: Vec::new(),
            retrieval_ms: 10,
            first_token_ms: Some(total / 2),
            total_ms: total,
        }
    }

    #[test]
    fn the_summary_matches_hand_computed_values() {
        // 3 answerable (2 hit, one of which wrongly abstained), 2 unanswerable (1 abstained).
        let records = vec![
            rec(true, false, true, 100),
            rec(true, true, true, 200),
            rec(true, false, false, 300),
            rec(false, true, false, 400),
            rec(false, false, false, 500),
        ];
        let s = summarise(&records);
        assert_eq!((s.questions, s.answerable, s.unanswerable), (5, 3, 2));
        assert!((s.page_hit_at_1 - 2.0 / 3.0).abs() < 1e-12);
        assert!((s.keyword_accuracy - 2.0 / 3.0).abs() < 1e-12);
        assert!(
            (s.abstention_precision - 0.5).abs() < 1e-12,
            "one of two abstentions was right"
        );
        assert!(
            (s.abstention_recall - 0.5).abs() < 1e-12,
            "one of two unanswerable caught"
        );
        assert!((s.supported_sentences - 0.5).abs() < 1e-12);
        assert_eq!(s.total_ms_p50, 300.0);
        assert_eq!(s.total_ms_p90, 500.0);
        assert_eq!(
            (s.prompt_tokens_p50, s.prompt_tokens_read_p50),
            (100.0, 60.0)
        );
        assert_eq!(s.completion_tokens_p50, 20.0);
        // 3 x 4 + 2 x 1 kept of 5 x 10 guessed.
        assert!((s.draft_acceptance - 14.0 / 50.0).abs() < 1e-12);
    }
}
