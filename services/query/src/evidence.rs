//! Evidence selection: before the prompt is built, each retrieved passage is narrowed to
//! the run of sentences that bears on the question (with a sentence of context around
//! it), and no page contributes more than a set number of passages. The model reads more
//! distinct evidence in fewer tokens; each narrowed passage keeps an exact character span
//! in its document, so a citation still resolves to the very words on the page.

use std::collections::HashSet;

use lectern_core::ChunkPoint;

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

/// The passage with the sentences its chunk's edges cut through made whole, from the
/// chunks just before and after it in its document: a chunk often starts or ends inside a
/// sentence ("a, which replaces the old command."), and the words the sentence needs are
/// in its neighbour. At most `max_chars` characters are added at each edge (a "sentence"
/// longer than that is a listing or a table, not prose); the span grows with the text, so
/// it stays the very words of the document, and the page range with it. A passage inside a
/// table is not extended into the table's rows (`table_header`, the passage's own or the
/// next chunk's): rows are not sentences.
pub fn complete_sentences(
    p: &Passage,
    before: Option<&ChunkPoint>,
    after: Option<&ChunkPoint>,
    max_chars: usize,
) -> Passage {
    let mut out = p.clone();
    if max_chars == 0 {
        return out;
    }
    let before = before.filter(|_| p.table_header.is_none());
    let after = after.filter(|a| a.table_header.is_none());
    if let Some((b, prefix)) = before.and_then(|b| Some((b, text_before(b, p)?))) {
        let k = prefix.len();
        let mut chars = prefix;
        chars.extend(p.text.chars());
        let text: String = chars.iter().collect();
        let first = chars.iter().take_while(|c| c.is_whitespace()).count();
        // The sentence the passage starts inside of, when it starts in the neighbour (not
        // at its first character, unless that is the document's).
        let cut = sentence_ranges(&text)
            .into_iter()
            .find(|&(s, e)| s < k && k < e)
            .filter(|&(s, _)| k - s <= max_chars && (s > first || b.span.start == 0));
        if let Some((s, _)) = cut {
            out.text = chars[s..].iter().collect();
            out.span.start = p.span.start - (k - s);
            // The page it is shown and cited on stays its chunk's: the words added are
            // the start of a sentence that goes on there.
            out.pages.start = out.pages.start.min(b.pages.end);
        }
    }
    if let Some((a, suffix)) = after.and_then(|a| Some((a, text_after(a, p)?))) {
        let mut chars: Vec<char> = out.text.chars().collect();
        let n = chars.len();
        chars.extend(suffix);
        let text: String = chars.iter().collect();
        // The sentence the passage ends inside of, when it ends in the neighbour: before
        // its last character, or there with the mark that ends a sentence.
        let last = text.trim_end().chars().count();
        let ends = |e: usize| e < last || ends_as_a_sentence_ends(&text);
        let cut = sentence_ranges(&text)
            .into_iter()
            .find(|&(s, e)| s < n && n < e)
            .filter(|&(_, e)| e - n <= max_chars && ends(e));
        if let Some((_, e)) = cut {
            out.text = chars[..e].iter().collect();
            out.span.end = p.span.end + (e - n);
            out.pages.end = out.pages.end.max(a.pages.start);
        }
    }
    out
}

/// The one white-space character the splitter trimmed between two chunks that neither
/// holds, read as a line break: the splitter cuts at a line break before it cuts between
/// words. Either way it joins the two lines into one sentence ([`sentence_ranges`] reads a
/// lone line break as a space), so the words and the span are the document's; only this
/// character may be a line break where the document has a space.
const TRIMMED: char = '\n';

/// The sources without those that lie inside a better one (an earlier one of the same
/// document whose span holds theirs): two chunks side by side, finished to whole sentences
/// and narrowed, can come to the same words, which the model need not read twice.
pub fn drop_contained(sources: Vec<Passage>) -> Vec<Passage> {
    let mut kept: Vec<Passage> = Vec::new();
    for p in sources {
        let within = |k: &Passage| {
            k.document_id == p.document_id
                && k.span.start <= p.span.start
                && p.span.end <= k.span.end
        };
        if !kept.iter().any(within) {
            kept.push(p);
        }
    }
    kept
}

/// The characters of the document just before `p`, as far back as chunk `b` reaches: its
/// text up to where `p` starts (a chunk overlaps the one after it, and what they share
/// must read the same), or all of it and the one white-space character trimmed between
/// them ([`TRIMMED`]). None when the chunk does not reach `p` or its text is not its span.
fn text_before(b: &ChunkPoint, p: &Passage) -> Option<Vec<char>> {
    let chars: Vec<char> = b.text.chars().collect();
    let (start, end) = (b.span.start, b.span.end);
    if chars.len() != end.checked_sub(start)? || start >= p.span.start {
        return None;
    }
    if end < p.span.start {
        let mut chars = chars;
        (end + 1 == p.span.start).then(|| {
            chars.push(TRIMMED);
            chars
        })
    } else {
        let own = p.span.start - start;
        let shared = &chars[own..];
        p.text
            .chars()
            .zip(shared)
            .all(|(x, &y)| x == y)
            .then(|| chars[..own].to_vec())
    }
}

/// The characters of the document just after `p`, as far as chunk `a` reaches (see
/// [`text_before`]).
fn text_after(a: &ChunkPoint, p: &Passage) -> Option<Vec<char>> {
    let chars: Vec<char> = a.text.chars().collect();
    let (start, end) = (a.span.start, a.span.end);
    if chars.len() != end.checked_sub(start)? || end <= p.span.end {
        return None;
    }
    if start > p.span.end {
        (start == p.span.end + 1).then(|| std::iter::once(TRIMMED).chain(chars).collect())
    } else {
        let own = p.span.end - start;
        let text: Vec<char> = p.text.chars().collect();
        let shared = &text[text.len().saturating_sub(own)..];
        (shared.len() == own && shared == &chars[..own]).then(|| chars[own..].to_vec())
    }
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
    // Sources side by side in a document share words (chunks overlap, and each is
    // finished to whole sentences): a sentence is quoted once, from its best source.
    let mut seen = HashSet::new();
    scored
        .into_iter()
        .filter(|(_, q)| seen.insert(q.text.split_whitespace().collect::<Vec<_>>().join(" ")))
        .take(k)
        .map(|(_, q)| q.clone())
        .collect()
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
    starts && ends_as_a_sentence_ends(text)
}

/// Whether a text ends as a sentence ends: with its mark, before any closing quote or
/// bracket.
fn ends_as_a_sentence_ends(text: &str) -> bool {
    text.trim_end()
        .trim_end_matches(['"', '\'', '”', '’', ')', ']'])
        .ends_with(['.', '!', '?', ':', ';', '。', '！', '？'])
}

#[cfg(test)]
mod tests {
    use lectern_core::{ChunkPoint, PageRange, Span};
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

    /// Chunk `index` of the document `text`: its characters `[start, end)`, on `page`.
    fn chunk_of(text: &str, index: u32, start: usize, end: usize, page: u32) -> ChunkPoint {
        ChunkPoint {
            workspace_id: Uuid::nil(),
            document_id: Uuid::from_u128(1),
            version: 1,
            chunk_index: index,
            pages: PageRange::single(page),
            span: Span { start, end },
            title: "D".into(),
            text: text.chars().skip(start).take(end - start).collect(),
            table_header: None,
            anchor: None,
        }
    }

    #[test]
    fn sentences_cut_by_a_chunks_edges_are_made_whole_and_the_span_stays_true() {
        let document = "Tables are set with the tabular environment — café style. The option cols=8.31a sets the widths of all eight columns at once. Rules go between rows. The caption goes above the table, and the label after the caption. Floats are placed by the engine.";
        let at = |needle: &str| {
            document
                .find(needle)
                .map(|b| document[..b].chars().count())
                .unwrap()
        };
        // Three chunks that overlap, as the splitter makes them; the middle one starts
        // and ends inside a sentence.
        let (s, e) = (at("the widths"), at(", and the label"));
        let before = chunk_of(document, 0, 0, at("of all"), 3);
        let after = chunk_of(document, 2, at("caption goes"), document.chars().count(), 5);
        let mut middle = chunk_of(document, 1, s, e, 4);
        middle.pages = PageRange { start: 4, end: 4 };
        let p = passage(1, 4, &middle.text, s);

        let whole = complete_sentences(&p, Some(&before), Some(&after), 300);
        assert!(whole.text.starts_with("The option"), "{}", whole.text);
        assert!(whole.text.ends_with("after the caption."), "{}", whole.text);
        let on_page: String = document
            .chars()
            .skip(whole.span.start)
            .take(whole.span.end - whole.span.start)
            .collect();
        assert_eq!(
            on_page, whole.text,
            "the span still points at the very words"
        );
        assert_eq!((whole.page, whole.pages.start, whole.pages.end), (4, 3, 5));

        // A sentence longer than the limit is left cut; so is one whose neighbour does
        // not read as the passage does where they overlap (another version's chunk).
        let short = complete_sentences(&p, Some(&before), Some(&after), 10);
        assert_eq!(short.text, p.text);
        assert_eq!(short.span, p.span);
        let mut stale = before.clone();
        stale.text = stale.text.replace("widths", "sizes!");
        let one_side = complete_sentences(&p, Some(&stale), None, 300);
        assert_eq!(one_side.text, p.text);
        // A neighbour that ends inside the sentence too cannot finish it; one that starts
        // inside the sentence cannot begin it.
        let cut_short = chunk_of(document, 2, at("caption goes"), at(" after the caption"), 5);
        assert_eq!(
            complete_sentences(&p, None, Some(&cut_short), 300).text,
            p.text
        );
        // Nor is one extended into a table's rows.
        let mut rows = after.clone();
        rows.table_header = Some("| a | b |\n|---|---|".into());
        assert_eq!(complete_sentences(&p, None, Some(&rows), 300).text, p.text);
        let late = chunk_of(document, 0, at("option cols"), at("of all"), 3);
        assert_eq!(complete_sentences(&p, Some(&late), None, 300).text, p.text);
        // Rows of a table are not sentences: a passage inside one keeps its start.
        let mut in_table = p.clone();
        in_table.table_header = Some("| a | b |\n|---|---|".into());
        assert!(
            complete_sentences(&in_table, Some(&before), None, 300)
                .text
                .starts_with("the widths")
        );
    }

    #[test]
    fn a_passage_after_a_trimmed_line_break_reads_its_neighbour_and_one_that_starts_a_sentence_stays()
     {
        let document =
            "Leave is counted in working days,\nnot in calendar days. Requests go to the manager.";
        let at = |needle: &str| document[..document.find(needle).unwrap()].chars().count();
        let cut = at("not in");
        // Trimmed chunks with the line break between them in neither.
        let before = chunk_of(document, 0, 0, cut - 1, 1);
        let text: String = document
            .chars()
            .skip(cut)
            .take(at(" Requests") - cut)
            .collect();
        let p = passage(1, 1, &text, cut);
        let whole = complete_sentences(&p, Some(&before), None, 300);
        assert_eq!(
            whole.text,
            "Leave is counted in working days,\nnot in calendar days."
        );
        assert_eq!(whole.span.start, 0);

        let next = at("Requests");
        let first = chunk_of(document, 0, 0, next - 1, 1);
        let text: String = document.chars().skip(next).collect();
        let p = passage(1, 1, &text, next);
        let same = complete_sentences(&p, Some(&first), None, 300);
        assert_eq!(same.text, "Requests go to the manager.");
        // More than one character between two chunks: what it was is not known.
        let far = chunk_of(document, 0, 0, cut - 2, 1);
        let p = passage(1, 1, &document[cut..], cut);
        assert_eq!(complete_sentences(&p, Some(&far), None, 300).text, p.text);
    }

    #[test]
    fn a_source_inside_a_better_one_is_dropped() {
        let a = passage(1, 1, "Leave is 30 days. Requests go to the manager.", 10);
        let inside = passage(1, 1, "Requests go to the manager.", 28);
        let other_document = passage(2, 1, "Requests go to the manager.", 28);
        let around = passage(
            1,
            1,
            "x. Leave is 30 days. Requests go to the manager. More.",
            7,
        );
        let kept = drop_contained(vec![
            a.clone(),
            inside,
            other_document.clone(),
            around.clone(),
        ]);
        let kept: Vec<_> = kept.iter().map(|p| (p.document_id, p.span.start)).collect();
        assert_eq!(
            kept,
            vec![
                (a.document_id, 10),
                (other_document.document_id, 28),
                (around.document_id, 7)
            ]
        );
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
    fn a_sentence_two_sources_share_is_quoted_once() {
        let quote = |source: usize, text: &str| Quote {
            source,
            text: text.into(),
        };
        let quotes = vec![
            quote(0, "Annual leave is 30 days for every member of staff."),
            quote(1, "Annual leave is 30\ndays for every member of staff."),
            quote(1, "Staff take their annual leave in blocks of five days."),
        ];
        let terms = crate::cite::Terms::of("How many days of annual leave do staff get?");
        let best = best_quotes(
            &[1.0],
            &terms,
            &quotes,
            &[vec![1.0], vec![1.0], vec![0.5]],
            3,
        );
        assert_eq!(best.len(), 2, "{best:?}");
        assert!(
            best.iter()
                .any(|q| q.source == 0 && q.text.starts_with("Annual"))
        );
        assert!(best.iter().any(|q| q.text.starts_with("Staff take")));
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
