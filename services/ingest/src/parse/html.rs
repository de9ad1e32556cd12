use lectern_core::{Heading, ParsedDocument};
use scraper::{ElementRef, Html, Node, Selector};

use super::normalise;

const SKIPPED: &[&str] = &[
    "script", "style", "noscript", "template", "svg", "nav", "header", "footer", "aside", "form",
    "button",
];
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "li",
    "ul",
    "ol",
    "table",
    "tr",
    "br",
    "pre",
    "blockquote",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "dt",
    "dd",
    "figcaption",
    "hr",
];

/// The main text of a page: `<main>` or `<article>` when there is one, else `<body>`;
/// scripts, styles and navigation dropped; headings kept as structure; blocks separated
/// by blank lines.
pub fn parse(source: &str) -> ParsedDocument {
    let html = Html::parse_document(source);
    let select = |s: &str| Selector::parse(s).expect("static selector");
    let title = html
        .select(&select("title"))
        .next()
        .map(|t| {
            t.text()
                .collect::<String>()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|t| !t.is_empty());
    let root = ["main", "article", "body"]
        .iter()
        .find_map(|s| html.select(&select(s)).next())
        .unwrap_or_else(|| html.root_element());
    let mut out = Extract::default();
    out.walk(root);
    let text = out.finish();
    let headings = out.headings;
    let title = title.or_else(|| {
        headings
            .iter()
            .find(|h| h.level == 1)
            .map(|h| h.text.clone())
    });
    ParsedDocument {
        title,
        text,
        page_starts: Vec::new(),
        headings,
    }
}

#[derive(Default)]
struct Extract {
    text: String,
    chars: usize,
    headings: Vec<Heading>,
}

impl Extract {
    fn push(&mut self, s: &str) {
        self.chars += s.chars().count();
        self.text.push_str(s);
    }

    fn block_break(&mut self) {
        while self.text.ends_with(' ') {
            self.text.pop();
            self.chars -= 1;
        }
        if !self.text.is_empty() && !self.text.ends_with("\n\n") {
            let missing = if self.text.ends_with('\n') {
                "\n"
            } else {
                "\n\n"
            };
            self.push(missing);
        }
    }

    fn walk(&mut self, element: ElementRef) {
        let name = element.value().name();
        if SKIPPED.contains(&name) {
            return;
        }
        let block = BLOCKS.contains(&name);
        if block {
            self.block_break();
        }
        let heading_level = name
            .strip_prefix('h')
            .and_then(|n| n.parse::<u8>().ok())
            .filter(|l| (1..=6).contains(l));
        let start = self.chars;
        for child in element.children() {
            match child.value() {
                Node::Text(t) => {
                    let collapsed = normalise(&t.split_whitespace().collect::<Vec<_>>().join(" "));
                    if collapsed.is_empty() {
                        continue;
                    }
                    let lead = t.starts_with(char::is_whitespace)
                        && !self.text.is_empty()
                        && !self.text.ends_with(['\n', ' ']);
                    if lead {
                        self.push(" ");
                    }
                    self.push(&collapsed);
                    if t.ends_with(char::is_whitespace) {
                        self.push(" ");
                    }
                }
                Node::Element(_) => {
                    if let Some(e) = ElementRef::wrap(child) {
                        self.walk(e);
                    }
                }
                _ => {}
            }
        }
        if let Some(level) = heading_level {
            let heading: String = self
                .text
                .chars()
                .skip(start)
                .collect::<String>()
                .trim()
                .to_owned();
            if !heading.is_empty() {
                self.headings.push(Heading {
                    level,
                    text: heading,
                    offset: start,
                });
            }
        }
        if block {
            self.block_break();
        }
    }

    /// Text nodes were normalised as they came, so heading offsets stay exact.
    fn finish(&mut self) -> String {
        self.text.trim_end().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_text_and_headings_without_scripts() {
        let doc = parse(
            r#"<html><head><title>Leave  policy</title><style>p{color:red}</style></head>
            <body><nav>Home | About</nav><main><h1>Annual leave</h1>
            <p>Staff get <b>25 days</b> a year.</p><script>alert("x")</script>
            <h2>Carry-over</h2><p>Up to five days &amp; no more.</p></main></body></html>"#,
        );
        assert_eq!(doc.title.as_deref(), Some("Leave policy"));
        assert_eq!(
            doc.text,
            "Annual leave\n\nStaff get 25 days a year.\n\nCarry-over\n\nUp to five days & no more."
        );
        assert!(!doc.text.contains("alert") && !doc.text.contains("Home"));
        let h: Vec<_> = doc
            .headings
            .iter()
            .map(|h| (h.level, h.text.as_str()))
            .collect();
        assert_eq!(h, [(1, "Annual leave"), (2, "Carry-over")]);
        let at: String = doc
            .text
            .chars()
            .skip(doc.headings[1].offset)
            .take(10)
            .collect();
        assert_eq!(at, "Carry-over");
    }

    #[test]
    fn markup_in_text_stays_text() {
        let doc = parse("<p>Use &lt;script&gt; tags carefully</p>");
        assert_eq!(doc.text, "Use <script> tags carefully");
    }
}
