use lectern_core::{Heading, ParsedDocument};
use std::borrow::Cow;
use std::collections::HashMap;

use scraper::{ElementRef, Html, Node, Selector};

use super::{escape_cell, one_line, table_rule};

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
    "caption",
    "hr",
];

/// The main text of a page: `<main>` (or an element of role `main`) or `<article>` when
/// there is one, else `<body>`;
/// scripts, styles and navigation dropped; headings kept as structure; blocks separated
/// by blank lines; tables as Markdown table lines (`| a | b |`, the first row set off as
/// the header), so that each value keeps its row and column. A table inside a cell is
/// read into that cell as plain text.
pub fn parse(source: &str) -> ParsedDocument {
    let html = Html::parse_document(&flatten(source));
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
    let root = ["main", "[role=main]", "article", "body"]
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
        ..ParsedDocument::default()
    }
}

/// Elements nested deeper than this lose their tags: their text stays, in the element
/// above them. The HTML parser searches its stack of open elements at many a tag (for a
/// `<p>` to close at each `<div>`), so a hostile page of 100,000 nested `<div>`s took it
/// minutes of quadratic time and failed on the time limit. Browsers stop nesting at a
/// similar depth (Blink at 512), so no page that reads well in one nests deeper.
const MAX_DEPTH: usize = 512;

/// Elements without an end tag.
const VOID: &[&str] = &[
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image", "img",
    "input", "keygen", "link", "meta", "param", "source", "track", "wbr",
];

/// Elements whose end tag may be left out: they are followed (an end tag closes what is
/// open inside them, and a new one closes the one before, as below), but not counted
/// towards the depth.
const OPTIONAL_END: &[&str] = &[
    "html", "head", "body", "p", "li", "dt", "dd", "tr", "td", "th", "thead", "tbody", "tfoot",
    "colgroup", "caption", "option", "optgroup", "rb", "rt", "rtc", "rp",
];

/// What a start tag closes when one is open above the nearest of the others: a `<li>` the
/// `<li>` before it in the same list, a `<td>` the cell before it in the same row, a
/// block the paragraph it is in, an `<a>` the link before it.
const CLOSES: &[(&[&str], &[&str], &[&str])] = &[
    (&["li"], &["li"], &["ul", "ol", "menu"]),
    (&["dt", "dd"], &["dt", "dd"], &["dl"]),
    (&["td", "th"], &["td", "th"], &["tr", "table"]),
    (&["tr"], &["tr"], &["table", "tbody", "thead", "tfoot"]),
    (
        &["tbody", "thead", "tfoot"],
        &["tbody", "thead", "tfoot"],
        &["table"],
    ),
    (
        &["option", "optgroup"],
        &["option"],
        &["select", "optgroup"],
    ),
    (
        &["a"],
        &["a"],
        &[
            "table", "td", "th", "caption", "button", "object", "template",
        ],
    ),
    (
        &[
            "p",
            "div",
            "section",
            "article",
            "aside",
            "nav",
            "header",
            "footer",
            "main",
            "address",
            "blockquote",
            "center",
            "details",
            "dialog",
            "dir",
            "dl",
            "fieldset",
            "figcaption",
            "figure",
            "hgroup",
            "menu",
            "ol",
            "ul",
            "pre",
            "listing",
            "form",
            "table",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "summary",
            "hr",
        ],
        &["p"],
        &[
            "button", "table", "td", "th", "caption", "object", "template", "marquee", "applet",
        ],
    ),
];

/// Elements whose content is text up to their end tag, not markup (`noscript` too: the
/// parser reads pages as a browser with scripts on does).
const RAW_TEXT: &[&str] = &[
    "script",
    "style",
    "textarea",
    "title",
    "xmp",
    "iframe",
    "noembed",
    "noframes",
    "noscript",
    "plaintext",
];

/// The elements open at a point of the page, as [`flatten`] follows them.
#[derive(Default)]
struct OpenElements {
    /// Name, whether it counts towards the depth, whether its tags are kept.
    stack: Vec<(String, bool, bool)>,
    /// Where each name is in `stack` (ascending), so that an end tag finds its element
    /// without a search down the stack.
    at: HashMap<String, Vec<usize>>,
    /// Counted elements in `stack`.
    depth: usize,
    /// Open `<svg>` and `<math>` elements, in which `<x/>` closes itself.
    foreign: usize,
}

impl OpenElements {
    fn last(&self, names: &[&str]) -> Option<usize> {
        names
            .iter()
            .filter_map(|n| self.at.get(*n).and_then(|v| v.last().copied()))
            .max()
    }

    /// Opens an element; whether its tags are kept (within [`MAX_DEPTH`]).
    fn push(&mut self, name: String, counted: bool) -> bool {
        let kept = !counted || self.depth < MAX_DEPTH;
        self.depth += usize::from(counted);
        // A foreign element whose tags are cut is not one to the parser.
        self.foreign += usize::from(kept && is_foreign(&name));
        self.at
            .entry(name.clone())
            .or_default()
            .push(self.stack.len());
        self.stack.push((name, counted, kept));
        kept
    }

    /// Closes the element at `i` and those inside it; whether its tags were kept.
    fn close(&mut self, i: usize) -> bool {
        let kept = self.stack[i].2;
        for (name, counted, kept) in self.stack.drain(i..) {
            self.depth -= usize::from(counted);
            self.foreign -= usize::from(kept && is_foreign(&name));
            if let Some(v) = self.at.get_mut(&name) {
                v.pop();
            }
        }
        kept
    }
}

fn is_foreign(name: &str) -> bool {
    name == "svg" || name == "math"
}

/// The page with the tags of elements nested deeper than [`MAX_DEPTH`] left out (and
/// their end tags), in one pass; everything else, text included, as it was. The nesting
/// is followed much as the parser builds it: an end tag closes the element of its name
/// that is open, with those inside it, and a stray one is ignored; some start tags close
/// an element first ([`CLOSES`]); elements whose end tag may be left out are not counted;
/// `<x/>` closes itself only in SVG and MathML. Where it errs, it errs towards fewer
/// levels than the parser's, so a real page keeps its tags.
fn flatten(source: &str) -> Cow<'_, str> {
    let bytes = source.as_bytes();
    let mut open = OpenElements::default();
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    let mut at = 0;
    while let Some(found) = source[at..].find('<') {
        let start = at + found;
        let rest = &source[start..];
        if rest.starts_with("<!--") {
            at = match rest[4..].find("-->") {
                Some(end) => start + 4 + end + 3,
                None => break,
            };
            continue;
        }
        let closing = rest.starts_with("</");
        let name_at = start + if closing { 2 } else { 1 };
        let name_len = bytes[name_at..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-' || **b == b':')
            .count();
        if name_len == 0 || !bytes[name_at].is_ascii_alphabetic() {
            at = start + 1; // `<!DOCTYPE`, `<?xml`, or a `<` in the text
            continue;
        }
        // A tag left open at the end of the page: the parser drops it, and the rest with it.
        let Some(end) = tag_end(bytes, name_at + name_len) else {
            break;
        };
        at = end + 1;
        let name = source[name_at..name_at + name_len].to_ascii_lowercase();
        if closing {
            if let Some(i) = open.last(&[name.as_str()])
                && !open.close(i)
            {
                cuts.push((start, at));
            }
            continue;
        }
        let self_closing = bytes[end - 1] == b'/';
        if open.foreign == 0 && RAW_TEXT.contains(&name.as_str()) {
            at = raw_text_end(source, at, &name);
            continue;
        }
        if VOID.contains(&name.as_str())
            || (self_closing && (open.foreign > 0 || is_foreign(&name)))
        {
            continue;
        }
        // Inside SVG and MathML no start tag closes another here: there the parser's
        // rules differ (an HTML element in `<foreignObject>` closes nothing outside it).
        for (starts, closes, within) in CLOSES {
            if open.foreign == 0
                && starts.contains(&name.as_str())
                && let Some(i) = open.last(closes)
                && open.last(within).is_none_or(|w| w < i)
            {
                open.close(i);
            }
        }
        let counted = !OPTIONAL_END.contains(&name.as_str());
        if !open.push(name, counted) {
            cuts.push((start, at));
        }
    }
    if cuts.is_empty() {
        return Cow::Borrowed(source);
    }
    let mut out = String::with_capacity(source.len());
    let mut from = 0;
    for (start, end) in cuts {
        out.push_str(&source[from..start]);
        from = end;
    }
    out.push_str(&source[from..]);
    Cow::Owned(out)
}

/// Where a tag whose name ends at `from` ends: its `>`, outside an attribute's quoted
/// value (a quote opens one only right after an `=`, as in `title="a>b"`; in
/// `title=it's` it is a letter).
fn tag_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut quote = None;
    let mut after_equals = false;
    for (i, &b) in bytes.iter().enumerate().skip(from) {
        match quote {
            Some(q) => {
                if b == q {
                    quote = None;
                }
            }
            None => match b {
                b'>' => return Some(i),
                b'=' => after_equals = true,
                b'"' | b'\'' if after_equals => {
                    quote = Some(b);
                    after_equals = false;
                }
                b if b.is_ascii_whitespace() => {}
                _ => after_equals = false,
            },
        }
    }
    None
}

/// Where the text of a raw-text element that starts at `from` ends: after its end tag
/// (any case), or at the end of the page.
fn raw_text_end(source: &str, from: usize, name: &str) -> usize {
    let bytes = source.as_bytes();
    let mut at = from;
    while let Some(found) = source[at..].find("</") {
        let start = at + found + 2;
        let matches = bytes
            .get(start..start + name.len())
            .is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes()));
        if matches {
            return tag_end(bytes, start + name.len()).map_or(source.len(), |end| end + 1);
        }
        at = start;
    }
    source.len()
}

#[derive(Default)]
struct Extract {
    text: String,
    chars: usize,
    headings: Vec<Heading>,
    in_heading: bool,
    /// Rows done and cells of the current row, of the open tables (innermost last).
    tables: Vec<(usize, usize)>,
    /// Open cells: while above zero, blocks inside a cell are spaces, not blank lines.
    cells: usize,
}

/// What an element is to the text.
#[derive(PartialEq)]
enum Kind {
    Inline,
    Block,
    Table,
    Row,
    Cell,
}

/// An element being walked: whether it is a block, and the heading it starts.
struct Frame {
    kind: Kind,
    heading: Option<Opened>,
}

/// A heading being read: its level, where it starts (in chars and in bytes), and its
/// anchor.
struct Opened {
    level: u8,
    offset: usize,
    byte: usize,
    anchor: Option<String>,
}

/// Where a link can land on a heading: its own `id`; else an `id` or `name` inside it (an
/// `<a name>` of older pages); else the fragment of a permalink inside it (`<a
/// href="#usage">¶</a>`, as documentation generators write); else the `id` of the section
/// it opens (a heading first in an element with an `id`, as in `<section id>`).
fn anchor_of(heading: ElementRef) -> Option<String> {
    let usable = |id: &str| {
        let id = id.trim();
        (!id.is_empty() && id.len() <= 200).then(|| id.to_owned())
    };
    if let Some(id) = heading.value().id().and_then(usable) {
        return Some(id);
    }
    let inside = || heading.descendants().filter_map(ElementRef::wrap).skip(1);
    if let Some(id) = inside().find_map(|e| {
        e.value()
            .id()
            .or_else(|| e.value().attr("name"))
            .and_then(usable)
    }) {
        return Some(id);
    }
    if let Some(fragment) = inside()
        .filter(|e| e.value().name() == "a")
        .find_map(|e| e.value().attr("href")?.strip_prefix('#').and_then(usable))
    {
        return Some(fragment);
    }
    let parent = heading.parent().and_then(ElementRef::wrap)?;
    let first = parent.children().find(|n| n.value().is_element())?;
    (first.id() == heading.id())
        .then(|| parent.value().id())
        .flatten()
        .and_then(usable)
}

/// A permalink next to a heading or a term (`<a class="headerlink" href="#x">¶</a>`): a
/// link within the page whose text is a symbol, not words. Its symbol is not text.
fn is_permalink(element: ElementRef) -> bool {
    element.value().name() == "a"
        && element
            .value()
            .attr("href")
            .is_some_and(|h| h.starts_with('#'))
        && {
            let text: String = element.text().collect();
            let text = text.trim();
            !text.is_empty()
                && text.chars().count() <= 2
                && !text.chars().any(char::is_alphanumeric)
        }
}

impl Extract {
    fn push(&mut self, s: &str) {
        self.chars += s.chars().count();
        self.text.push_str(s);
    }

    fn block_break(&mut self) {
        self.trim_spaces();
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
        if SKIPPED.contains(&name) || is_permalink(element) {
            return None;
        }
        // Cells of the innermost table only: a table inside a cell is that cell's text.
        let in_table = self.tables.len() > self.cells;
        let kind = match name {
            "table" if self.cells == 0 => Kind::Table,
            "tr" if in_table => Kind::Row,
            "td" | "th" if in_table => Kind::Cell,
            // The cells of a table inside a cell: words apart.
            "td" | "th" if self.cells > 0 => Kind::Block,
            _ if BLOCKS.contains(&name) => Kind::Block,
            _ => Kind::Inline,
        };
        match kind {
            Kind::Table => {
                self.block_break();
                self.tables.push((0, 0));
            }
            Kind::Row => {
                if !self.text.is_empty() && !self.text.ends_with('\n') {
                    self.trim_spaces();
                    self.push("\n");
                }
                if let Some(table) = self.tables.last_mut() {
                    table.1 = 0;
                }
            }
            Kind::Cell => {
                let first = self.tables.last().is_some_and(|t| t.1 == 0);
                self.push(if first { "| " } else { " | " });
                if let Some(table) = self.tables.last_mut() {
                    table.1 += 1;
                }
                self.cells += 1;
            }
            Kind::Block if self.cells > 0 => self.space(),
            Kind::Block => self.block_break(),
            Kind::Inline => {}
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
                Some(Opened {
                    level,
                    offset: self.chars,
                    byte: self.text.len(),
                    anchor: anchor_of(element),
                })
            }
            _ => None,
        };
        Some(Frame { kind, heading })
    }

    fn close(&mut self, frame: Frame) {
        if let Some(opened) = frame.heading {
            self.in_heading = false;
            let heading = self.text.get(opened.byte..).unwrap_or_default().trim();
            if !heading.is_empty() {
                self.headings.push(Heading {
                    level: opened.level,
                    text: heading.to_owned(),
                    offset: opened.offset,
                    anchor: opened.anchor,
                });
            }
        }
        match frame.kind {
            Kind::Table => {
                self.tables.pop();
                self.block_break();
            }
            Kind::Row => {
                let Some(&(rows, cells)) = self.tables.last() else {
                    return;
                };
                if cells == 0 {
                    return;
                }
                self.trim_spaces();
                self.push(" |\n");
                if rows == 0 {
                    self.push(&table_rule(cells));
                    self.push("\n");
                }
                if let Some(table) = self.tables.last_mut() {
                    table.0 += 1;
                }
            }
            Kind::Cell => {
                self.trim_spaces();
                self.cells -= 1;
            }
            Kind::Block if self.cells > 0 => self.space(),
            Kind::Block => self.block_break(),
            Kind::Inline => {}
        }
    }

    fn trim_spaces(&mut self) {
        while self.text.ends_with(' ') {
            self.text.pop();
            self.chars -= 1;
        }
    }

    /// A block's edge inside a table cell: one space.
    fn space(&mut self) {
        if !self.text.ends_with([' ', '\n']) {
            self.push(" ");
        }
    }

    fn push_text(&mut self, t: &str) {
        let collapsed = one_line(t);
        if collapsed.is_empty() {
            return;
        }
        let lead = t.starts_with(char::is_whitespace)
            && !self.text.is_empty()
            && !self.text.ends_with(['\n', ' ']);
        if lead {
            self.push(" ");
        }
        if self.cells > 0 {
            self.push(&escape_cell(&collapsed));
        } else {
            self.push(&collapsed);
        }
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
    fn elements_nested_past_the_limit_lose_their_tags_and_keep_their_text() {
        for tag in ["div", "section", "blockquote", "table", "b"] {
            for closed in [false, true] {
                let page = format!(
                    "<p>Top.</p>{}<p>Deep down.</p>{}<h2>After</h2><p>More.</p>",
                    format!("<{tag} class=\"x>y\">").repeat(100_000),
                    if closed {
                        format!("</{tag}>").repeat(100_000)
                    } else {
                        String::new()
                    },
                );
                let flat = flatten(&page);
                assert_eq!(
                    flat.matches(&format!("<{tag} ")).count(),
                    MAX_DEPTH,
                    "{tag}"
                );
                assert_eq!(
                    flat.matches(&format!("</{tag}>")).count(),
                    if closed { MAX_DEPTH } else { 0 },
                    "{tag}: an end tag goes with its start tag"
                );
                let doc = parse(&page);
                assert!(doc.text.starts_with("Top."), "{tag}");
                for words in ["Deep down.", "After", "More."] {
                    assert!(doc.text.contains(words), "{tag}: {words}");
                }
                if closed {
                    assert_eq!(
                        doc.headings.len(),
                        1,
                        "{tag}: the heading after them is a heading"
                    );
                }
            }
        }
    }

    #[test]
    fn real_pages_are_not_flattened() {
        // Unclosed paragraphs and list items, void elements, comments, scripts holding
        // tags, SVG drawn with self-closing elements, attributes holding `>`: none nests.
        let mut page = String::from("<!DOCTYPE html><html><head><title>T</title>");
        page += "<script>for (i = 0; i < n; i++) document.write('<div>');</script></head><body>";
        for i in 0..2_000 {
            page += &format!("<p>Para {i}<br><img src=a.png alt=\"a>b\"><li>item<!-- <div> -->");
        }
        page += "<svg>";
        page += &"<path d=\"M0 0\"/>".repeat(2_000);
        page += "</svg><div><h2>End</h2></div></body></html>";
        assert!(matches!(flatten(&page), Cow::Borrowed(_)));
        assert_eq!(parse(&page).headings.len(), 1);
        // Stray end tags do not make room for more levels.
        let stray = "<div></span>".repeat(2 * MAX_DEPTH);
        assert_eq!(flatten(&stray).matches("<div>").count(), MAX_DEPTH);

        // Sloppy pages: elements left open inside paragraphs, cells and list items close
        // with them; an unclosed link closes at the next one.
        let n = 2 * MAX_DEPTH;
        for sloppy in [
            "<p><span>Line</p>".repeat(n),
            format!(
                "<table>{}</table>",
                "<tr><td><font size=2>x</td><td><b>y".repeat(n)
            ),
            format!("<ul>{}</ul>", "<li><em>item".repeat(n)),
            "<a name=x>Anchor <a href=\"#x\">link ".repeat(n),
        ] {
            let page = format!("{sloppy}<h2>End</h2><p>Last.</p>");
            assert!(
                matches!(flatten(&page), Cow::Borrowed(_)),
                "{}",
                &page[..60]
            );
            assert_eq!(parse(&page).headings.len(), 1, "{}", &page[..60]);
        }
        // Elements left out inside one that closes are forgotten with it: a later end tag
        // of their name belongs to an element that was kept.
        let page = format!(
            "<section>{}</section><div>After</div>",
            "<div>".repeat(MAX_DEPTH + 100)
        );
        let flat = flatten(&page);
        assert!(
            flat.ends_with("</section><div>After</div>"),
            "{}",
            &flat[flat.len() - 60..]
        );
    }

    #[test]
    fn pages_made_to_slip_past_the_count_are_flattened_too() {
        let deep = "<div/>".repeat(10 * MAX_DEPTH);
        for page in [
            // An `<svg>` past the limit loses its tags, so what follows is not in SVG.
            format!("{}<svg>{deep}", "<div>".repeat(MAX_DEPTH)),
            // `<div/>` is a `<div>` outside SVG; an `<svg/>` closes itself.
            format!("<svg/>{deep}"),
            // A quote inside an unquoted value does not open a quoted one.
            format!("<a title=it's>{deep}"),
            // A `</div>` inside `<noscript>` is its text, not an end tag.
            "<div><noscript></div></noscript>".repeat(10 * MAX_DEPTH),
        ] {
            let flat = flatten(&page);
            assert!(
                flat.matches("<div").count() <= MAX_DEPTH,
                "{}: {} left",
                &page[..30],
                flat.matches("<div").count()
            );
        }
    }

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
    fn an_element_of_role_main_is_the_main_text() {
        // As documentation generators write pages: navigation in `div`s around it.
        let doc = parse(
            "<body><div role=\"navigation\">previous | next | index</div>\
             <div class=\"body\" role=\"main\"><h1>Lists</h1><p>Lists hold items.</p></div>\
             <div class=\"footer\">Copyright</div></body>",
        );
        assert_eq!(doc.text, "Lists\n\nLists hold items.");
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
    fn tables_keep_their_rows_and_columns() {
        let doc = parse(
            "<h2>Rates</h2><table><caption>Daily rates</caption>\
             <thead><tr><th>Grade</th><th>Daily <b>rate</b></th></tr></thead>\
             <tbody><tr><td>A | B</td><td><p>120</p><p>EUR</p></td></tr>\
             <tr><td>C</td><td><table><tr><td>150</td><td>EUR</td></tr></table></td></tr>\
             </tbody></table><p>After the table.</p>",
        );
        assert_eq!(
            doc.text,
            "Rates\n\nDaily rates\n\n| Grade | Daily rate |\n| --- | --- |\n\
             | A \\| B | 120 EUR |\n| C | 150 EUR |\n\nAfter the table."
        );
    }

    #[test]
    fn headings_know_where_a_link_to_them_lands() {
        // As documentation generators write them: a section's id, a permalink, an
        // `<a name>`, the heading's own id; and a heading with none.
        let doc = parse(
            "<main><section id=\"install\"><h1>Install<a class=\"headerlink\" href=\"#install\" \
             title=\"Permalink\">¶</a></h1><p>Run the installer.</p>\
             <h2>Linux<a href=\"#on-linux\">#</a></h2><p>Use the package.</p>\
             <h2><a name=\"mac\"></a>macOS</h2><p>Drag the app.</p>\
             <h3 id=\"arm\">Apple silicon</h3><p>Native.</p>\
             <div id=\"content\"><p>Intro.</p><h2>Windows</h2><p>Run setup.</p></div>\
             </section></main>",
        );
        let h: Vec<_> = doc
            .headings
            .iter()
            .map(|h| (h.text.as_str(), h.anchor.as_deref()))
            .collect();
        assert_eq!(
            h,
            [
                ("Install", Some("install")),
                ("Linux", Some("on-linux")),
                ("macOS", Some("mac")),
                ("Apple silicon", Some("arm")),
                // Not first in its element: the `div`'s id is not its anchor.
                ("Windows", None),
            ]
        );
        // The permalinks' symbols are not text.
        assert!(
            !doc.text.contains('¶') && !doc.text.contains('#'),
            "{}",
            doc.text
        );
        let windows = doc.text.find("Run setup").unwrap();
        let at = doc.text[..windows].chars().count();
        assert_eq!(doc.anchor_at(at), Some("arm"));
        // A link whose text is words stays text.
        let doc = parse("<p>See <a href=\"#usage\">usage</a>.</p>");
        assert_eq!(doc.text, "See usage.");
    }

    #[test]
    fn markup_in_text_stays_text() {
        let doc = parse("<p>Use &lt;script&gt; tags carefully</p>");
        assert_eq!(doc.text, "Use <script> tags carefully");
    }
}
