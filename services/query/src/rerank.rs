//! Reranking by the chat model: the first passages of a search, each read with the
//! question by the language model, which is asked whether the passage answers it; the
//! probability it gives "Yes" against "No" ([`Generator::choose`]: one forward pass over
//! the prompt, nothing generated) ranks them, and that rank is fused with the search's.
//! The embedder and BM25 match words and meanings; the model reads the passage, so it
//! can find the answer phrased in other words ("the vertical lines" against "bar
//! checks") and in another language.
//!
//! It costs one prompt per passage read: the question and the instructions come first, so
//! the engine's prompt cache reads them once per sequence and each passage after them.
//! Where the model cannot judge (busy, unavailable, an engine without token
//! probabilities) the search keeps its own order.

use std::cmp::Ordering;

use lectern_llm::{ChatMessage, ChatRole, Generator};

use crate::retrieve::Passage;

/// The answer counted as "the passage answers the question", and the other.
const YES: &str = "Yes";
const NO: &str = "No";

/// Most characters of a passage the model reads.
const MAX_CHARS: usize = 1_500;

/// The constant of the reciprocal-rank fusion of the search's order with the model's
/// (the usual 60, the index's default `index.rrf_k`; from 1 to 60 it made no difference
/// on the dev set). A small model's judgement alone is a weak order:
/// on the multilingual dev set it lost the search's right pages as often as it found
/// others (docs/EVALUATION.md), and fused with the search's order it gained on both.
const FUSION_K: f64 = 60.0;

/// Passages judged at once: the rest wait, so that one question's reranking leaves
/// room in the model's queue for others' answers.
const AT_ONCE: usize = 4;

/// Worded so that a small model says "Yes" less readily: of prompts tried on
/// Qwen2.5-Coder-1.5B (docs/EVALUATION.md), this one set answering passages furthest
/// above the others, in one language and across two.
const INSTRUCTIONS: &str = "Judge whether the passage answers the question. Most passages do not: \
say Yes only when the passage itself states the answer. Reply Yes or No. \
The question and the passage may be in different languages.";

/// The chat that asks whether `passage` answers `question`.
pub fn messages(question: &str, passage: &Passage) -> Vec<ChatMessage> {
    let text: String = passage.text.chars().take(MAX_CHARS).collect();
    let header = passage
        .table_header
        .as_deref()
        .map(|h| format!("{h}\n"))
        .unwrap_or_default();
    vec![
        ChatMessage::new(ChatRole::System, INSTRUCTIONS),
        ChatMessage::new(
            ChatRole::User,
            format!("Question: {question}\n\nPassage:\n{header}{text}"),
        ),
    ]
}

/// The first `depth` of `passages` in the order of the model's judgement fused with the
/// search's own ([`fused_order`]), then the rest as they were. When the model cannot
/// judge one of them, the search's order stays.
pub async fn rerank(
    llm: &dyn Generator,
    question: &str,
    mut passages: Vec<Passage>,
    depth: usize,
) -> Vec<Passage> {
    let depth = depth.min(passages.len());
    if depth < 2 {
        return passages;
    }
    let mut scores = Vec::with_capacity(depth);
    for group in passages[..depth].chunks(AT_ONCE) {
        let asks: Vec<Vec<ChatMessage>> = group.iter().map(|p| messages(question, p)).collect();
        let judged =
            futures::future::join_all(asks.iter().map(|m| llm.choose(m, &[YES, NO]))).await;
        for judgement in judged {
            let share = judgement.and_then(|p| match p[..] {
                [yes, no] => Ok(yes_share(yes, no)),
                _ => Err(lectern_core::Error::internal_msg(
                    "the model gave no probability for each choice",
                )),
            });
            match share {
                Ok(share) => scores.push(share),
                Err(e) => {
                    tracing::warn!(error = %e, "the passages could not be reranked; the search's order stays");
                    return passages;
                }
            }
        }
    }
    let rest = passages.split_off(depth);
    let order = fused_order(&scores);
    tracing::debug!(
        scores = ?passages.iter().zip(&scores).map(|(p, s)| (p.page, *s)).collect::<Vec<_>>(),
        "reranked"
    );
    let mut judged: Vec<Option<Passage>> = passages.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|i| judged[i].take())
        .chain(rest)
        .collect()
}

/// The order of passages given in the search's order with the model's `scores`: the
/// search's rank and the model's, fused by reciprocal rank (k = [`FUSION_K`]); where the
/// two disagree equally, the model's reading decides.
fn fused_order(scores: &[f32]) -> Vec<usize> {
    let mut by_model: Vec<usize> = (0..scores.len()).collect();
    // A stable sort: equal judgements keep the search's order.
    by_model.sort_by(|&a, &b| scores[b].partial_cmp(&scores[a]).unwrap_or(Ordering::Equal));
    let mut model_rank = vec![0; scores.len()];
    for (rank, &i) in by_model.iter().enumerate() {
        model_rank[i] = rank;
    }
    let fused = |i: usize| 1.0 / (FUSION_K + i as f64) + 1.0 / (FUSION_K + model_rank[i] as f64);
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| {
        fused(b)
            .partial_cmp(&fused(a))
            .unwrap_or(Ordering::Equal)
            .then(model_rank[a].cmp(&model_rank[b]))
    });
    order
}

/// "Yes" against "No": the share of the two the model gives "Yes" (a half when it
/// gives neither).
fn yes_share(yes: f32, no: f32) -> f32 {
    if yes + no > 0.0 {
        yes / (yes + no)
    } else {
        0.5
    }
}

#[cfg(test)]
mod tests {
    use lectern_core::{PageRange, Span};
    use lectern_llm::testing::ScriptedGenerator;
    use uuid::Uuid;

    use super::*;

    fn passage(page: u32, text: &str) -> Passage {
        Passage {
            chunk_id: Uuid::new_v4(),
            workspace_id: Uuid::nil(),
            document_id: Uuid::nil(),
            document: "manual.pdf".into(),
            title: "Manual".into(),
            page,
            pages: PageRange::single(page),
            span: Span { start: 0, end: 1 },
            text: text.into(),
            table_header: None,
            url: None,
            score: 1.0 / f32::from(page as u16),
        }
    }

    fn pages(passages: &[Passage]) -> Vec<u32> {
        passages.iter().map(|p| p.page).collect()
    }

    #[tokio::test]
    async fn the_passages_the_model_judges_answers_come_first_and_the_rest_stay() {
        let passages: Vec<Passage> = (1..=5).map(|n| passage(n, &format!("text {n}"))).collect();
        // Judgements of pages 1..4 in order; page 5 is below the depth.
        let llm = ScriptedGenerator::new(
            4096,
            ["0.1", "0.9", "0.1", "0.6"]
                .iter()
                .map(|s| Ok(s.to_string()))
                .collect(),
        );
        let ranked = rerank(&llm, "Which page?", passages, 4).await;
        // Search ranks 0-3 and the model's 2, 0, 3, 1: page 2 (1 and 0) first, page 1 (0
        // and 2) before page 4 (3 and 1).
        assert_eq!(pages(&ranked), [2, 1, 4, 3, 5]);
        let requests = llm.requests();
        assert_eq!(requests.len(), 4, "one judgement per passage read");
        let asked = &requests[0].messages[1].content;
        assert!(
            asked.starts_with("Question: Which page?"),
            "the question comes first, for the prompt cache: {asked}"
        );
        assert!(asked.contains("text 1"), "{asked}");
    }

    #[tokio::test]
    async fn a_model_that_cannot_judge_leaves_the_search_s_order() {
        let passages: Vec<Passage> = (1..=3).map(|n| passage(n, "text")).collect();
        let llm = ScriptedGenerator::new(
            4096,
            vec![
                Ok("0.1".into()),
                Ok("0.9".into()),
                Err("busy: the queue is full".into()),
            ],
        );
        // Judged, the second would come first; with one judgement missing none moves.
        assert_eq!(pages(&rerank(&llm, "q", passages, 3).await), [1, 2, 3]);
    }

    #[test]
    fn the_search_s_order_and_the_model_s_are_fused() {
        // The model alone would put the search's first last.
        assert_eq!(fused_order(&[0.1, 0.9, 0.8, 0.7]), [1, 0, 2, 3]);
        // Where the two disagree equally, the model decides.
        assert_eq!(fused_order(&[0.2, 0.7]), [1, 0]);
        // Where the model cannot tell them apart, the search's order stays.
        assert_eq!(fused_order(&[0.5, 0.5, 0.5]), [0, 1, 2]);
        // The passage both put first stays first, one far down in both stays there.
        assert_eq!(fused_order(&[0.9, 0.1, 0.5, 0.6, 0.2]), [0, 3, 2, 1, 4]);
    }

    #[test]
    fn yes_against_no() {
        assert!((yes_share(0.3, 0.1) - 0.75).abs() < 1e-6);
        assert_eq!(yes_share(0.0, 0.0), 0.5);
    }
}
