//! The answer's Markdown, rendered safely: raw HTML in the answer is shown as text, the
//! output is sanitised (only the tags an answer needs, no script, no `javascript:` link),
//! citation markers become links only outside code, and sentences the sources do not
//! support are marked.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use lectern_api::markers::{self, Segment};
use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd, TextMergeStream};

use super::view::escape;

/// Where an unsupported sentence starts and ends in the answer's text (private-use
/// characters that a model does not write; removed wherever they cannot become a mark).
const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';

static SANITISER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut b = ammonia::Builder::empty();
    b.add_tags([
        "p",
        "br",
        "em",
        "strong",
        "del",
        "code",
        "pre",
        "ul",
        "ol",
        "li",
        "blockquote",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "a",
        "span",
    ])
    .add_tag_attributes("a", ["href", "data-n", "aria-label"])
    .add_tag_attributes("span", ["title"])
    .add_tag_attributes("ol", ["start"])
    .allowed_classes(HashMap::from([
        ("a", HashSet::from(["cite"])),
        ("span", HashSet::from(["unsupported"])),
    ]))
    .url_schemes(HashSet::from(["http", "https", "mailto"]))
    .link_rel(Some("noopener noreferrer nofollow"));
    b
});

/// The answer's text with the unsupported character ranges (`[start, end)` in chars)
/// wrapped in sentinels.
fn mark(text: &str, unsupported: &[(usize, usize)]) -> String {
    let mut out = String::with_capacity(text.len() + unsupported.len() * 6);
    for (i, c) in text.chars().enumerate() {
        if unsupported.iter().any(|&(s, _)| s == i) {
            out.push(OPEN);
        }
        if c != OPEN && c != CLOSE {
            out.push(c);
        }
        if unsupported.iter().any(|&(_, e)| e == i + 1) {
            out.push(CLOSE);
        }
    }
    out
}

fn strip_sentinels(text: &str) -> String {
    text.chars().filter(|&c| c != OPEN && c != CLOSE).collect()
}

/// Escaped text with citation links and unsupported marks.
fn inline_html(text: &str, cited: &HashSet<usize>, href: &dyn Fn(usize) -> String) -> String {
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
            Segment::Text(t) => {
                for c in t.chars() {
                    match c {
                        OPEN => out.push_str(
                            "<span class=\"unsupported\" title=\"Not supported by the passage it cites\">",
                        ),
                        CLOSE => out.push_str("</span>"),
                        c => out.push_str(&escape(&c.to_string())),
                    }
                }
            }
        }
    }
    out
}

/// The answer (Markdown with `[n]` markers) as safe HTML. `unsupported`: character
/// ranges of sentences to mark; `cited`: the markers that resolve to a citation.
pub fn render(
    text: &str,
    unsupported: &[(usize, usize)],
    cited: &HashSet<usize>,
    href: &dyn Fn(usize) -> String,
) -> String {
    let marked = mark(text, unsupported);
    let mut in_code_block = false;
    let parser = Parser::new_ext(
        &marked,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH,
    );
    let events = TextMergeStream::new(parser).map(|event| match event {
        Event::Start(Tag::CodeBlock(kind)) => {
            in_code_block = true;
            Event::Start(Tag::CodeBlock(kind))
        }
        Event::End(TagEnd::CodeBlock) => {
            in_code_block = false;
            Event::End(TagEnd::CodeBlock)
        }
        Event::Text(t) if in_code_block => Event::Text(CowStr::from(strip_sentinels(&t))),
        Event::Text(t) => Event::InlineHtml(CowStr::from(inline_html(&t, cited, href))),
        Event::Code(c) => Event::Code(CowStr::from(strip_sentinels(&c))),
        // The model's (or a document's) HTML is shown as text, never interpreted.
        Event::Html(h) | Event::InlineHtml(h) => Event::Text(CowStr::from(strip_sentinels(&h))),
        other => other,
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    SANITISER.clean(&html).to_string()
}
