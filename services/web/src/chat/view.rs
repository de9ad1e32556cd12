//! An answer as the page shows it: escaped text with its `[n]` markers turned into
//! citation links (parsed by `lectern_api::markers`, the same parser the query service
//! checks them with), sentences the sources do not support marked, the sources, where
//! to look when it abstained, and its timing.

use std::collections::HashSet;

use lectern_api::markers::{self, Segment};
use lectern_api::query::{Answer, Passage};
use uuid::Uuid;

/// One question and its answer, as shown.
pub struct Exchange {
    pub conversation_id: Uuid,
    pub message_id: Uuid,
    pub question: String,
    /// The answer as HTML: escaped text, citation links, unsupported sentences marked.
    pub html: String,
    pub abstained: bool,
    pub has_unsupported: bool,
    pub citations: Vec<CitationLink>,
    pub look_here: Vec<PassageLink>,
    pub feedback: Option<bool>,
    pub comment: String,
    pub timing: Option<String>,
}

pub struct CitationLink {
    pub n: usize,
    pub title: String,
    pub page: u32,
    pub supported: bool,
    pub href: String,
}

pub struct PassageLink {
    pub title: String,
    pub page: u32,
    pub snippet: String,
    pub href: String,
}

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes `text` and turns the markers of known citations into links; a marker naming a
/// source the answer does not have stays text.
fn linkify(text: &str, cited: &HashSet<usize>, href: &dyn Fn(usize) -> String) -> String {
    let mut out = String::new();
    for segment in markers::segments(text) {
        match segment {
            Segment::Marker { numbers, .. } if numbers.iter().all(|n| cited.contains(n)) => {
                for n in numbers {
                    out.push_str(&format!(
                        "<a class=\"cite\" href=\"{}\" data-n=\"{n}\" aria-label=\"Source {n}\">[{n}]</a>",
                        escape(&href(n))
                    ));
                }
            }
            Segment::Marker { raw, .. } => out.push_str(&escape(raw)),
            Segment::Text(t) => out.push_str(&escape(t)),
        }
    }
    out
}

/// The answer as HTML; sentences the cited passages do not support are marked.
pub fn answer_html(answer: &Answer, href: &dyn Fn(usize) -> String) -> (String, bool) {
    let cited: HashSet<usize> = answer.citations.iter().map(|c| c.n).collect();
    let chars: Vec<char> = answer.answer.chars().collect();
    let text = |a: usize, b: usize| -> String {
        chars[a.min(chars.len())..b.min(chars.len())]
            .iter()
            .collect()
    };
    let mut out = String::new();
    let mut at = 0;
    let mut any_unsupported = false;
    let mut sentences: Vec<_> = answer
        .sentences
        .iter()
        .filter(|s| s.end > s.start)
        .collect();
    sentences.sort_by_key(|s| s.start);
    for s in sentences {
        if s.start < at || s.end > chars.len() {
            continue;
        }
        out.push_str(&linkify(&text(at, s.start), &cited, href));
        let body = linkify(&text(s.start, s.end), &cited, href);
        if s.supported || answer.abstained {
            out.push_str(&body);
        } else {
            any_unsupported = true;
            out.push_str(&format!(
                "<span class=\"unsupported\" title=\"Not supported by the passage it cites\">{body}</span>"
            ));
        }
        at = s.end;
    }
    out.push_str(&linkify(&text(at, chars.len()), &cited, href));
    (out, any_unsupported)
}

pub fn cite_href(conversation: Uuid, message: Uuid, n: usize) -> String {
    format!("/chat/{conversation}/m/{message}/cite/{n}")
}

/// The original of a passage's document, opened at its page.
pub fn original_href(workspace: Uuid, document: Uuid, page: u32) -> String {
    format!("/w/{workspace}/documents/{document}/original#page={page}")
}

pub fn exchange(
    conversation_id: Uuid,
    message_id: Uuid,
    question: String,
    answer: &Answer,
    feedback: Option<&lectern_store::entity::feedback::Model>,
) -> Exchange {
    let href = |n: usize| cite_href(conversation_id, message_id, n);
    let (html, has_unsupported) = answer_html(answer, &href);
    let passage_link = |p: &Passage| PassageLink {
        title: p.title.clone(),
        page: p.page,
        snippet: p.text.chars().take(160).collect::<String>() + "…",
        href: original_href(p.workspace_id, p.document_id, p.page),
    };
    let t = &answer.timings;
    Exchange {
        conversation_id,
        message_id,
        question,
        html,
        abstained: answer.abstained,
        has_unsupported,
        citations: answer
            .citations
            .iter()
            .map(|c| CitationLink {
                n: c.n,
                title: c.title.clone(),
                page: c.page,
                supported: c.supported,
                href: href(c.n),
            })
            .collect(),
        look_here: answer.passages.iter().take(4).map(passage_link).collect(),
        feedback: feedback.map(|f| f.helpful),
        comment: feedback.and_then(|f| f.comment.clone()).unwrap_or_default(),
        // Answers stored before timings were recorded have none to show.
        timing: (t.total_ms > 0).then(|| {
            format!(
                "{:.1} s{}",
                t.total_ms as f64 / 1000.0,
                t.first_token_ms
                    .map(|f| format!(
                        ", first words after {:.1} s, {} tokens",
                        f as f64 / 1000.0,
                        t.completion_tokens
                    ))
                    .unwrap_or_default()
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use lectern_api::query::{Citation, Sentence};

    use super::*;

    fn answer(text: &str, sentences: Vec<(usize, usize, bool)>, cited: &[usize]) -> Answer {
        Answer {
            answer: text.into(),
            sentences: sentences
                .into_iter()
                .map(|(start, end, supported)| Sentence {
                    text: text.chars().skip(start).take(end - start).collect(),
                    start,
                    end,
                    sources: vec![],
                    support: 0.0,
                    supported,
                    inferred: false,
                })
                .collect(),
            citations: cited
                .iter()
                .map(|&n| Citation {
                    n,
                    chunk_id: Uuid::nil(),
                    document_id: Uuid::nil(),
                    document: "d.pdf".into(),
                    title: "D".into(),
                    page: 1,
                    quote: String::new(),
                    span_start: 0,
                    span_end: 0,
                    highlight_start: 0,
                    highlight_end: 0,
                    supported: true,
                })
                .collect(),
            ..Answer::default()
        }
    }

    #[test]
    fn markers_become_links_and_text_is_escaped() {
        let a = answer(
            "Use <b>care</b> [1]. See [2, 3] and [9].",
            vec![],
            &[1, 2, 3],
        );
        let (html, _) = answer_html(&a, &|n| format!("/c/{n}"));
        assert!(
            html.contains("Use &lt;b&gt;care&lt;/b&gt; <a class=\"cite\" href=\"/c/1\""),
            "{html}"
        );
        assert!(
            html.contains("href=\"/c/2\"") && html.contains("href=\"/c/3\""),
            "{html}"
        );
        // An unknown marker stays text.
        assert!(html.contains("[9]"), "{html}");
        assert!(!html.contains("<b>"));
    }

    #[test]
    fn unsupported_sentences_are_marked() {
        let text = "Supported claim [1]. Invented claim [1].";
        let a = answer(text, vec![(0, 20, true), (21, 40, false)], &[1]);
        let (html, any) = answer_html(&a, &|n| format!("/c/{n}"));
        assert!(any);
        assert_eq!(html.matches("class=\"unsupported\"").count(), 1, "{html}");
        let marked = html.split("class=\"unsupported\"").nth(1).unwrap();
        assert!(marked.contains("Invented claim"), "{html}");
        assert!(
            !html
                .split("class=\"unsupported\"")
                .next()
                .unwrap()
                .contains("Invented")
        );
    }
}
