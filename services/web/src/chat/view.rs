//! An answer as the page shows it: its Markdown rendered safely with the `[n]` markers
//! turned into citation links (see [`super::markdown`]), sentences the sources do not
//! support marked, the sources, where to look when it abstained, and its timing.

use std::collections::HashSet;

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
    /// How the answer was made, when the reader should know (extractive, sentences left out).
    pub notice: Option<String>,
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

/// The answer as HTML: its Markdown rendered safely, citation markers as links (never
/// inside code), sentences the cited passages do not support marked. Returns whether any
/// sentence is marked.
pub fn answer_html(answer: &Answer, href: &dyn Fn(usize) -> String) -> (String, bool) {
    let cited: HashSet<usize> = answer.citations.iter().map(|c| c.n).collect();
    let unsupported: Vec<(usize, usize)> = if answer.abstained {
        Vec::new()
    } else {
        answer
            .sentences
            .iter()
            .filter(|s| s.end > s.start && !s.supported)
            .map(|s| (s.start, s.end))
            .collect()
    };
    let html = super::markdown::render(&answer.answer, &unsupported, &cited, href);
    (html, !unsupported.is_empty())
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
        notice: answer.notice.clone(),
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
                    url: None,
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

    #[test]
    fn markdown_is_rendered_and_cannot_inject_html() {
        let text = "Run `gnuplot -e [1]` then:\n\n- open the `.gnuplot` file [1]\n- **save** it [2]\n\n<script>alert(1)</script> [x](javascript:alert(2)) <img src=x onerror=alert(3)>";
        let a = answer(text, vec![], &[1, 2]);
        let (html, _) = answer_html(&a, &|n| format!("/c/{n}"));
        assert!(
            html.contains("<ul>") && html.contains("<strong>save</strong>"),
            "{html}"
        );
        assert!(html.contains("<code>.gnuplot</code>"), "{html}");
        // A marker inside code stays code; outside it is a link.
        assert!(html.contains("<code>gnuplot -e [1]</code>"), "{html}");
        assert_eq!(html.matches("class=\"cite\"").count(), 2, "{html}");
        // Nothing the answer (or a document quoted in it) carries can run.
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "shown as text: {html}");
        // A Markdown link to script keeps its text and loses its target.
        let a = answer("See [the manual](javascript:alert(2)) [1].", vec![], &[1]);
        let (html, _) = answer_html(&a, &|n| format!("/c/{n}"));
        assert!(!html.contains("href=\"javascript"), "{html}");
        assert!(html.contains("the manual"), "{html}");
    }
}

/// Passage text made readable for the citation panel: the PDF's line breaks joined into
/// paragraphs (a blank line stays a paragraph break), a word hyphenated across a line
/// break mended, and footnote numbers glued between words ("policy5The") set apart as
/// superscripts ("policy⁵ The"). For display only: stored spans are never changed.
pub fn reflow(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let paragraphs: Vec<&str> = text.split("\n\n").collect();
    for (i, paragraph) in paragraphs.iter().enumerate() {
        if i > 0 {
            out.push_str("\n\n");
        }
        let mut joined = String::new();
        for line in paragraph.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let mended = joined.ends_with('-')
                && joined
                    .chars()
                    .rev()
                    .nth(1)
                    .is_some_and(|c| c.is_lowercase())
                && line.chars().next().is_some_and(|c| c.is_lowercase());
            if mended {
                joined.pop();
            } else if !joined.is_empty() {
                joined.push(' ');
            }
            joined.push_str(line);
        }
        out.push_str(&footnotes_apart(&joined));
    }
    out
}

/// "word5Next" -> "word⁵ Next": one or two digits between a lower-case letter (or a
/// closing punctuation mark) and a capital are a footnote marker, not part of a word.
fn footnotes_apart(text: &str) -> String {
    const SUPERSCRIPT: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let before_ok = i > 0 && (chars[i - 1].is_lowercase() || ".,;:)".contains(chars[i - 1]));
        if c.is_ascii_digit() && before_ok {
            let digits = chars[i..].iter().take_while(|d| d.is_ascii_digit()).count();
            if digits <= 2 && chars.get(i + digits).is_some_and(|n| n.is_uppercase()) {
                for d in &chars[i..i + digits] {
                    out.push(SUPERSCRIPT[d.to_digit(10).unwrap_or(0) as usize]);
                }
                out.push(' ');
                i += digits;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

#[cfg(test)]
mod reflow_tests {
    use super::reflow;

    #[test]
    fn line_breaks_hyphens_and_footnotes() {
        assert_eq!(
            reflow(
                "The terminal is se-\nlected by the GNUTERM\nvariable.\n\nNext para-\nGraph stays."
            ),
            "The terminal is selected by the GNUTERM variable.\n\nNext para- Graph stays."
        );
        assert_eq!(
            reflow("as the policy says.5The next rule"),
            "as the policy says.⁵ The next rule"
        );
        assert_eq!(
            reflow("utf8 and UTF8Decoder and x86"),
            "utf8 and UTF8Decoder and x86"
        );
    }
}
