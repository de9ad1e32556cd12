//! Evidence selection: before the prompt is built, each retrieved passage is narrowed to
//! the run of sentences that bears on the question (with a sentence of context around
//! it), and no page contributes more than a set number of passages. The model reads more
//! distinct evidence in fewer tokens; each narrowed passage keeps an exact character span
//! in its document, so a citation still resolves to the very words on the page.

pub use crate::cite::sentence_ranges;
use crate::cite::{Terms, cosine};
use crate::retrieve::Passage;

/// The share of the question's content words a text holds (0..1), the text analysed as
/// the question was.
pub fn term_coverage(question_terms: &Terms, text: &str) -> f32 {
    let terms = &question_terms.words;
    if terms.is_empty() {
        return 0.0;
    }
    let words = question_terms.words_of(text);
    let found = terms.iter().filter(|t| words.contains(t)).count();
    found as f32 / terms.len() as f32
}

/// The passage narrowed to characters `[start, end)` of its text, its span moved with it.
pub fn narrow(p: &Passage, start: usize, end: usize) -> Passage {
    let text: String = p.text.chars().skip(start).take(end - start).collect();
    let mut out = p.clone();
    out.span.start = p.span.start + start;
    out.span.end = p.span.start + end;
    out.text = text;
    out
}

/// A sentence's score for the question: its embedding similarity and the share of the
/// question's content words it holds, blended.
fn sentence_score(similarity: f32, coverage: f32) -> f32 {
    0.6 * similarity + 0.4 * coverage
}

/// Each passage narrowed to its best run of `max_sentences` consecutive sentences (whole
/// when it has no more). `sentence_vectors[i][j]` embeds sentence j of passage i, as
/// [`sentence_ranges`] cuts it.
pub fn narrow_all(
    question_vector: &[f32],
    question_terms: &Terms,
    passages: &[Passage],
    sentence_vectors: &[Vec<Vec<f32>>],
    max_sentences: usize,
) -> Vec<Passage> {
    passages
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let ranges = sentence_ranges(&p.text);
            if max_sentences == 0 || ranges.len() <= max_sentences {
                return p.clone();
            }
            let chars: Vec<char> = p.text.chars().collect();
            let scores: Vec<f32> = ranges
                .iter()
                .enumerate()
                .map(|(j, &(s, e))| {
                    let text: String = chars[s..e].iter().collect();
                    let similarity = sentence_vectors
                        .get(i)
                        .and_then(|v| v.get(j))
                        .map_or(0.0, |v| cosine(question_vector, v));
                    sentence_score(similarity, term_coverage(question_terms, &text))
                })
                .collect();
            let width = max_sentences;
            let window = |a: usize| -> f32 { scores[a..a + width].iter().sum() };
            // The earliest of the best windows (ties keep the passage's opening).
            let mut best = 0;
            for a in 1..=ranges.len() - width {
                if window(a) > window(best) {
                    best = a;
                }
            }
            narrow(p, ranges[best].0, ranges[best + width - 1].1)
        })
        .collect()
}

/// One sentence of a source, for an extractive answer.
#[derive(Debug, Clone)]
pub struct Quote {
    /// Index of the source (0-based).
    pub source: usize,
    pub text: String,
}

/// Every sentence of every source, in order.
pub fn sentence_ranges_of(sources: &[Passage]) -> Vec<Quote> {
    sources
        .iter()
        .enumerate()
        .flat_map(|(source, p)| {
            let chars: Vec<char> = p.text.chars().collect();
            sentence_ranges(&p.text)
                .into_iter()
                .map(move |(s, e)| Quote {
                    source,
                    text: chars[s..e].iter().collect::<String>(),
                })
        })
        .collect()
}

/// The `k` quotes that bear most on the question (with at least two of its content words
/// or half of them), best first; `vectors[i]` embeds `quotes[i]`. Whole sentences only,
/// when there are any: a passage cut mid-sentence at a chunk's edge gives fragments that
/// read as nonsense when quoted alone.
pub fn best_quotes(
    question_vector: &[f32],
    question_terms: &Terms,
    quotes: &[Quote],
    vectors: &[Vec<f32>],
    k: usize,
) -> Vec<Quote> {
    let needed = (question_terms.words.len() as f32 / 2.0).ceil().min(2.0);
    let mut scored: Vec<(f32, &Quote)> = quotes
        .iter()
        .zip(vectors)
        .filter(|(q, _)| {
            let coverage = term_coverage(question_terms, &q.text);
            coverage * question_terms.words.len() as f32 >= needed && q.text.chars().count() >= 20
        })
        .map(|(q, v)| {
            let score = sentence_score(
                cosine(question_vector, v),
                term_coverage(question_terms, &q.text),
            );
            (score, q)
        })
        .collect();
    if scored.iter().any(|(_, q)| is_whole_sentence(&q.text)) {
        scored.retain(|(_, q)| is_whole_sentence(&q.text));
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(k).map(|(_, q)| q.clone()).collect()
}

/// Whether a sentence is whole: it begins as a sentence begins (not with a small letter
/// or a mark that continues a sentence, after any list mark; so scripts without case
/// count) and ends as one ends.
pub fn is_whole_sentence(text: &str) -> bool {
    let text = text
        .trim()
        .trim_start_matches(['•', '-', '*', '–', '—', ' '])
        .trim_start();
    let starts = text
        .chars()
        .next()
        .is_some_and(|c| (c.is_alphanumeric() && !c.is_lowercase()) || "\"'“‘`".contains(c));
    let ends = text
        .trim_end_matches(['"', '\'', '”', '’', ')', ']'])
        .ends_with(['.', '!', '?', ':', ';', '。', '！', '？']);
    starts && ends
}

#[cfg(test)]
mod tests {
    use lectern_core::{PageRange, Span};
    use uuid::Uuid;

    use super::*;

    fn passage(doc: u128, page: u32, text: &str, start: usize) -> Passage {
        Passage {
            chunk_id: Uuid::new_v4(),
            workspace_id: Uuid::nil(),
            document_id: Uuid::from_u128(doc),
            document: "d.pdf".into(),
            title: "D".into(),
            page,
            pages: PageRange::single(page),
            span: Span {
                start,
                end: start + text.chars().count(),
            },
            text: text.into(),
            table_header: None,
            url: None,
            score: 1.0,
        }
    }

    #[test]
    fn narrowing_keeps_the_span_true_to_the_document() {
        let document = "Intro line here. Parking is free on weekends. Leave is 30 days a year. Leave requests go to the line manager. The canteen opens at noon. Printers are on floor three.";
        let start = 17;
        let text: String = document.chars().skip(start).collect();
        let p = passage(1, 1, &text, start);
        let terms =
            crate::cite::Terms::of("How many days of leave, and who approves leave requests?");
        let ranges = sentence_ranges(&text);
        assert_eq!(ranges.len(), 5);
        // Vectors: only the two leave sentences resemble the question.
        let vectors: Vec<Vec<f32>> = (0..5)
            .map(|j| {
                if j == 1 || j == 2 {
                    vec![1.0, 0.0]
                } else {
                    vec![0.0, 1.0]
                }
            })
            .collect();
        let narrowed = narrow_all(&[1.0, 0.0], &terms, &[p], &[vectors], 2);
        let n = &narrowed[0];
        assert_eq!(
            n.text,
            "Leave is 30 days a year. Leave requests go to the line manager."
        );
        let on_page: String = document
            .chars()
            .skip(n.span.start)
            .take(n.span.end - n.span.start)
            .collect();
        assert_eq!(on_page, n.text, "the span still points at the very words");
    }

    #[test]
    fn quotes_need_the_questions_words() {
        let quotes = vec![
            Quote {
                source: 0,
                text: "The canteen opens at noon every weekday.".into(),
            },
            Quote {
                source: 1,
                text: "Annual leave is 30 days for every member of staff.".into(),
            },
        ];
        let terms = crate::cite::Terms::of("How many days of annual leave do staff get?");
        let best = best_quotes(&[1.0], &terms, &quotes, &[vec![1.0], vec![1.0]], 3);
        assert_eq!(best.len(), 1);
        assert_eq!(best[0].source, 1);
    }

    #[test]
    fn fragments_cut_at_a_chunks_edge_are_not_quoted_when_whole_sentences_are_there() {
        let quote = |text: &str| Quote {
            source: 0,
            text: text.into(),
        };
        let quotes = vec![
            quote("mode, the annual leave of staff is counted in days."),
            quote("Annual leave is 30 days for every member of staff."),
            quote("In two-column mode, annual leave days of staff may contain both a"),
        ];
        let terms = crate::cite::Terms::of("How many days of annual leave do staff get?");
        let vectors = vec![vec![1.0]; 3];
        let best = best_quotes(&[1.0], &terms, &quotes, &vectors, 3);
        assert_eq!(best.len(), 1, "{best:?}");
        assert!(best[0].text.starts_with("Annual leave is 30"));
        // With no whole sentence, the fragments are all there is.
        assert_eq!(
            best_quotes(&[1.0], &terms, &quotes[..1], &vectors[..1], 3).len(),
            1
        );

        assert!(is_whole_sentence("• Use the `set loadpath` command."));
        assert!(is_whole_sentence("数据文件用分号分隔。"));
        assert!(!is_whole_sentence("(Scotch) rules around tables."));
        assert!(!is_whole_sentence(
            "the figure will be placed in one column."
        ));
        assert!(!is_whole_sentence(
            "In two-column mode, a page may contain both a"
        ));
    }
}
