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
    in_heading: bool,
}

/// An element being walked: whether it is a block, and the heading it starts (level,
/// offset in chars, offset in bytes).
struct Frame {
    block: bool,
    heading: Option<(u8, usize, usize)>,
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

    /// Walks the tree with a stack of its own, not the call stack: a hostile page nests
    /// elements 100,000 deep, and ingest parses on threads with 2 MiB stacks.
    fn walk(&mut self, root: ElementRef) {
        let mut stack = Vec::new();
        if let Some(frame) = self.open(root) {
            stack.push((frame, root.children()));
        }
        while let Some((_, children)) = stack.last_mut() {
            let Some(child) = children.next() else {
                let (frame, _) = stack.pop().expect("not empty");
                self.close(frame);
                continue;
            };
            match child.value() {
                Node::Text(t) => self.push_text(t),
                Node::Element(_) => {
                    if let Some(element) = ElementRef::wrap(child)
                        && let Some(frame) = self.open(element)
                    {
                        stack.push((frame, element.children()));
                    }
                }
                _ => {}
            }
        }
    }

    /// Enters an element; `None` when its content is skipped.
    fn open(&mut self, element: ElementRef) -> Option<Frame> {
        let name = element.value().name();
        if SKIPPED.contains(&name) {
            return None;
        }
        let block = BLOCKS.contains(&name);
        if block {
            self.block_break();
        }
        let level = name
            .strip_prefix('h')
            .and_then(|n| n.parse::<u8>().ok())
            .filter(|l| (1..=6).contains(l));
        // A heading inside a heading (`<h1><div><h2>`) is part of the outer one; recording
        // both would copy the text once per level, and break the headings' order.
        let heading = match level {
            Some(level) if !self.in_heading => {
                self.in_heading = true;
                Some((level, self.chars, self.text.len()))
            }
            _ => None,
        };
        Some(Frame { block, heading })
    }

    fn close(&mut self, frame: Frame) {
        if let Some((level, offset, byte)) = frame.heading {
            self.in_heading = false;
            let heading = self.text.get(byte..).unwrap_or_default().trim();
            if !heading.is_empty() {
                self.headings.push(Heading {
                    level,
                    text: heading.to_owned(),
                    offset,
                });
            }
        }
        if frame.block {
            self.block_break();
        }
    }

    fn push_text(&mut self, t: &str) {
        let collapsed = normalise(&t.split_whitespace().collect::<Vec<_>>().join(" "));
        if collapsed.is_empty() {
            return;
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
    fn a_heading_inside_a_heading_is_part_of_it() {
        // Each level used to be a heading of its own holding all the text below it:
        // `<h1><div>` 50,000 times over a long page made 50,000 copies of the page.
        let doc = parse("<h1>Leave<div><h2>and pay</h2></div></h1><p>Body.</p>");
        assert_eq!(doc.text, "Leave\n\nand pay\n\nBody.");
        let h: Vec<_> = doc
            .headings
            .iter()
            .map(|h| (h.level, h.text.as_str(), h.offset))
            .collect();
        assert_eq!(h, [(1, "Leave\n\nand pay", 0)]);
    }

    #[test]
    fn markup_in_text_stays_text() {
        let doc = parse("<p>Use &lt;script&gt; tags carefully</p>");
        assert_eq!(doc.text, "Use <script> tags carefully");
    }
}
