//! Tables on PDF pages, found from the boxes of the page's characters. Pure: the characters
//! come in as plain values (read from PDFium by `pdf.rs`), so the rules below are tested
//! without a PDF.
//!
//! PDFium gives a page's characters in the order the file draws them, each with its box. A
//! table drawn row by row comes out of PDFium's own text with its cells run together
//! ("Apples 3 1.20"), or glued ("Apples3"), or a row broken where a cell ends. Here the
//! characters are grouped into lines by their boxes, each line is split into segments where
//! a gap between two characters is wide (at least [`CELL_GAP`] character heights; a word
//! space is about a quarter of one), and a run of lines whose segments keep to the same
//! columns is written as Markdown table rows (`| a | b |`, the first row followed by its
//! rule), as DOCX and HTML tables are, so that each value keeps its row and column and a
//! chunk that starts inside the table is given its header.
//!
//! What counts as a table is deliberately narrow, so that everything else stays exactly as
//! PDFium reads it (a page without a table keeps PDFium's own text):
//! - at least [`MIN_ROWS`] consecutive lines, one below the other, each with two or more
//!   segments, each segment within one column, no two in the same one; the columns never
//!   touch, so a white channel runs down the whole run between each two of them;
//! - short cells: in every column the median cell has at most [`MAX_MEDIAN_WORDS`] words,
//!   except the last column of a run of three or more columns (a column of descriptions).
//!   This is what keeps two-column prose out: a page read line by line across its two
//!   columns has two text blocks with a gutter on every line, which line up like a table's
//!   columns, but its lines hold six to twelve words each; a sidebar beside prose fails the
//!   same way, on its prose column;
//! - not a list: a first column of list markers only (`•`, `–`, `1.`, `a)`) is a list;
//! - not a table of contents: no cell of leader dots, and not a last column of page
//!   numbers that never decrease beside text.
//!
//! Not found, and so left as PDFium reads them: a table drawn column by column (its cells
//! come one to a line), and the rows from a cell that wraps onto a second line on (the
//! run ends at that line). On a page with a table, the text around it is PDFium's
//! characters as they come: PDFium's own text but for a line break where that text runs
//! two lines together, and text outside the page's box, which that text leaves out.
//!
//! Characters are never reordered: a cell is a run of consecutive characters, and cells and
//! rows follow PDFium's order. Only bars, rules, spaces and line breaks are added, and the
//! whitespace between cells dropped, so the letters and digits of the text read in the same
//! order as PDFium's characters, which is what the citation highlighter matches a quote
//! against (services/web/src/render.rs); [`TableText::sources`] maps each character of the
//! text back to PDFium's character.

use std::ops::Range;

use super::{escape_cell, table_rule};

/// A gap between two characters of a line of at least this many character heights (the
/// taller of the two) separates cells. A word space is about a quarter of a height; the
/// narrowest gap between columns of a typeset table (LaTeX's, Word's) about one.
const CELL_GAP: f32 = 0.75;
/// Lines in a table, its header included.
const MIN_ROWS: usize = 3;
/// Rows further apart than this many line heights (centre to centre) are not one table.
const MAX_ROW_STEP: f32 = 3.0;
/// The most words in a column's median cell.
const MAX_MEDIAN_WORDS: usize = 4;

/// A character's box in page points, y upwards (PDF's own coordinates).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CharBox {
    pub left: f32,
    pub bottom: f32,
    pub right: f32,
    pub top: f32,
}

impl CharBox {
    fn height(&self) -> f32 {
        self.top - self.bottom
    }
}

/// One of the characters of a page, in PDFium's order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PageChar {
    /// PDFium's index of the character on its page.
    pub index: usize,
    pub ch: char,
    /// Its box; `None`, or an empty box, for a character without extent (PDFium's own
    /// spaces and line breaks have empty ones).
    pub bounds: Option<CharBox>,
}

/// The characters of a page from PDFium's (UTF-16 code unit, box) pairs, in its order, each
/// pair's position its index. A character outside the Basic Multilingual Plane comes as two
/// halves (surrogates), joined here under the first one's index and box; a value that is no
/// character is left out.
pub fn page_chars(units: impl IntoIterator<Item = (u32, Option<CharBox>)>) -> Vec<PageChar> {
    let mut chars = Vec::new();
    let mut high: Option<(usize, u32, Option<CharBox>)> = None;
    for (index, (unit, bounds)) in units.into_iter().enumerate() {
        let pending = high.take();
        if (0xDC00..0xE000).contains(&unit) {
            if let Some((first, half, first_bounds)) = pending
                && let Some(ch) =
                    char::from_u32(0x10000 + ((half - 0xD800) << 10) + (unit - 0xDC00))
            {
                chars.push(PageChar {
                    index: first,
                    ch,
                    bounds: first_bounds,
                });
            }
        } else if (0xD800..0xDC00).contains(&unit) {
            high = Some((index, unit, bounds));
        } else if let Some(ch) = char::from_u32(unit) {
            chars.push(PageChar { index, ch, bounds });
        }
    }
    chars
}

/// A page's text with its tables written as Markdown table rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableText {
    pub text: String,
    /// For each character of `text`, the PDFium index of the character it is; `None` for
    /// what was added: bars, rules, the spaces around and inside cells, line breaks, the
    /// backslash before a bar in a cell. The indices that are there only ever increase.
    pub sources: Vec<Option<usize>>,
}

impl TableText {
    /// Characters of the page as they are.
    fn push_chars(&mut self, chars: &[PageChar]) {
        for c in chars {
            self.text.push(c.ch);
            self.sources.push(Some(c.index));
        }
    }

    /// Text that is not on the page.
    fn push_added(&mut self, text: &str) {
        self.text.push_str(text);
        self.sources.extend(text.chars().map(|_| None));
    }

    fn push_cell(&mut self, cell: &Cell) {
        self.text.push_str(&cell.text);
        self.sources.extend_from_slice(&cell.sources);
    }

    fn trim_end(&mut self) {
        while self.text.ends_with(char::is_whitespace) {
            self.text.pop();
            self.sources.pop();
        }
    }
}

/// The page's text with its tables as Markdown table rows (set off by blank lines), or
/// `None` when the page holds none: the caller keeps PDFium's own text then.
pub fn lay_out_tables(chars: &[PageChar]) -> Option<TableText> {
    let lines = lines(chars);
    let tables = find_tables(chars, &lines);
    if tables.is_empty() {
        return None;
    }
    let mut out = TableText::default();
    let mut at = 0;
    for table in &tables {
        out.push_chars(&chars[at..lines[table.rows.start].start]);
        out.trim_end();
        if !out.text.is_empty() {
            out.push_added("\n\n");
        }
        for (r, row) in table.cells.iter().enumerate() {
            if r == 1 {
                out.push_added(&table_rule(row.len()));
                out.push_added("\n");
            }
            out.push_added("|");
            for cell in row {
                out.push_added(" ");
                out.push_cell(cell);
                out.push_added(" |");
            }
            out.push_added("\n");
        }
        out.push_added("\n");
        at = lines[table.rows.end - 1].end;
        while chars.get(at).is_some_and(|c| c.ch.is_whitespace()) {
            at += 1;
        }
    }
    out.push_chars(&chars[at..]);
    Some(out)
}

/// A character's box when it is seen: not whitespace, and not empty.
fn extent(c: &PageChar) -> Option<CharBox> {
    c.bounds
        .filter(|b| !c.ch.is_whitespace() && b.right > b.left && b.top > b.bottom)
}

/// Whether `next`, drawn after `prev`, continues its line: they overlap by half the
/// smaller height, and `next` does not go back to the left.
fn same_line(prev: CharBox, next: CharBox) -> bool {
    let height = prev.height().min(next.height());
    let overlap = prev.top.min(next.top) - prev.bottom.max(next.bottom);
    overlap > 0.5 * height && next.left >= prev.left - 0.5 * height
}

/// Characters of a line between wide gaps: `first` and `last` are the positions (in the
/// page's characters) of its first and last seen characters.
#[derive(Debug, Clone, Copy)]
struct Segment {
    first: usize,
    last: usize,
    left: f32,
    right: f32,
}

/// A line of a page: the characters from `start` (its first seen one) to `end` (the next
/// line's first seen one), in segments.
#[derive(Debug)]
struct Line {
    start: usize,
    end: usize,
    segments: Vec<Segment>,
    top: f32,
    bottom: f32,
    /// The median height of its characters.
    height: f32,
    heights: Vec<f32>,
    last: CharBox,
}

impl Line {
    fn new(at: usize, b: CharBox) -> Self {
        Self {
            start: at,
            end: at + 1,
            segments: vec![Segment {
                first: at,
                last: at,
                left: b.left,
                right: b.right,
            }],
            top: b.top,
            bottom: b.bottom,
            height: b.height(),
            heights: vec![b.height()],
            last: b,
        }
    }

    fn push(&mut self, at: usize, b: CharBox) {
        let gap = b.left - self.last.right;
        match self.segments.last_mut() {
            Some(segment) if gap < CELL_GAP * b.height().max(self.last.height()) => {
                segment.last = at;
                segment.left = segment.left.min(b.left);
                segment.right = segment.right.max(b.right);
            }
            _ => self.segments.push(Segment {
                first: at,
                last: at,
                left: b.left,
                right: b.right,
            }),
        }
        self.top = self.top.max(b.top);
        self.bottom = self.bottom.min(b.bottom);
        self.heights.push(b.height());
        self.last = b;
    }

    fn centre(&self) -> f32 {
        (self.top + self.bottom) / 2.0
    }
}

/// The page's lines, in PDFium's order: a seen character starts a new line unless it
/// continues the line of the seen character before it.
fn lines(chars: &[PageChar]) -> Vec<Line> {
    let mut lines: Vec<Line> = Vec::new();
    for (at, c) in chars.iter().enumerate() {
        let Some(b) = extent(c) else { continue };
        match lines.last_mut() {
            Some(line) if same_line(line.last, b) => line.push(at, b),
            _ => lines.push(Line::new(at, b)),
        }
    }
    let ends: Vec<usize> = lines
        .iter()
        .skip(1)
        .map(|l| l.start)
        .chain([chars.len()])
        .collect();
    for (line, end) in lines.iter_mut().zip(ends) {
        line.end = end;
        let mut heights = std::mem::take(&mut line.heights);
        heights.sort_by(f32::total_cmp);
        line.height = heights[heights.len() / 2];
    }
    lines
}

/// A column of a table: from the left of its leftmost cell to the right of its rightmost.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Column {
    left: f32,
    right: f32,
}

fn overlaps(column: Column, segment: &Segment) -> bool {
    segment.left < column.right && segment.right > column.left
}

/// The most columns a table is looked for with.
const MAX_COLUMNS: usize = 64;

/// The columns widened by a line's segments (a segment beside all of them adds one), or
/// `None` when a segment spans two columns, two segments fall in one, or two columns
/// come to touch.
fn fit(columns: &[Column], segments: &[Segment]) -> Option<Vec<Column>> {
    // No table has this many columns; a line of thousands of spaced glyphs (letter-spaced
    // text, axis labels, a hostile page) would cost segments times columns.
    if segments.len() > MAX_COLUMNS || columns.len() > MAX_COLUMNS {
        return None;
    }
    let mut out = columns.to_vec();
    for segment in segments {
        let hits: Vec<usize> = (0..out.len())
            .filter(|&k| overlaps(out[k], segment))
            .collect();
        match hits.as_slice() {
            [] => out.push(Column {
                left: segment.left,
                right: segment.right,
            }),
            [k] => {
                let column = &mut out[*k];
                column.left = column.left.min(segment.left);
                column.right = column.right.max(segment.right);
            }
            _ => return None,
        }
    }
    out.sort_by(|a, b| a.left.total_cmp(&b.left));
    if out.windows(2).any(|w| w[0].right >= w[1].left) {
        return None;
    }
    let mut taken = vec![false; out.len()];
    for segment in segments {
        let k = out.iter().position(|c| overlaps(*c, segment))?;
        if std::mem::replace(&mut taken[k], true) {
            return None;
        }
    }
    Some(out)
}

/// Whether `line` is the next row below `above`: under it, and not far under it.
fn follows(above: &Line, line: &Line) -> bool {
    let step = above.centre() - line.centre();
    line.top <= above.bottom + 0.5 * above.height
        && step <= MAX_ROW_STEP * above.height.max(line.height)
}

/// The run of lines from `lines[first]` whose segments keep to the same columns: where it
/// ends, and its columns. `None` when the first line has a single segment.
fn aligned_run(lines: &[Line], first: usize) -> Option<(usize, Vec<Column>)> {
    let head = &lines[first];
    if head.segments.len() < 2 {
        return None;
    }
    let mut columns = fit(&[], &head.segments)?;
    let mut end = first + 1;
    while let Some(line) = lines.get(end) {
        if line.segments.len() < 2 || !follows(&lines[end - 1], line) {
            break;
        }
        match fit(&columns, &line.segments) {
            Some(widened) => columns = widened,
            None => break,
        }
        end += 1;
    }
    Some((end, columns))
}

/// A cell's text (whitespace runs as one space, a bar escaped) and where each of its
/// characters came from.
#[derive(Debug, Clone, Default, PartialEq)]
struct Cell {
    text: String,
    sources: Vec<Option<usize>>,
}

impl Cell {
    fn of(chars: &[PageChar], segment: &Segment) -> Self {
        let mut cell = Self::default();
        let mut space = false;
        for c in &chars[segment.first..=segment.last] {
            if c.ch.is_whitespace() {
                space = true;
                continue;
            }
            if space && !cell.text.is_empty() {
                cell.text.push(' ');
                cell.sources.push(None);
            }
            space = false;
            let escaped = escape_cell(c.ch.encode_utf8(&mut [0; 4]));
            let count = escaped.chars().count();
            for (k, e) in escaped.chars().enumerate() {
                cell.text.push(e);
                // The page's character is the last one; an escape's backslash comes first.
                cell.sources.push((k + 1 == count).then_some(c.index));
            }
        }
        cell
    }

    fn words(&self) -> usize {
        self.text.split_whitespace().count()
    }
}

/// A table found on a page: the lines that are its rows, and their cells by column (an
/// empty cell where a row has nothing in a column).
struct Table {
    rows: Range<usize>,
    cells: Vec<Vec<Cell>>,
}

/// The page's tables, in order.
fn find_tables(chars: &[PageChar], lines: &[Line]) -> Vec<Table> {
    let mut tables = Vec::new();
    let mut first = 0;
    while first < lines.len() {
        let Some((end, columns)) = aligned_run(lines, first) else {
            first += 1;
            continue;
        };
        if end - first < MIN_ROWS {
            first += 1;
            continue;
        }
        let cells: Vec<Vec<Cell>> = lines[first..end]
            .iter()
            .map(|line| {
                let mut row = vec![Cell::default(); columns.len()];
                for segment in &line.segments {
                    if let Some(k) = columns.iter().position(|c| overlaps(*c, segment)) {
                        row[k] = Cell::of(chars, segment);
                    }
                }
                row
            })
            .collect();
        if is_table(&cells) {
            tables.push(Table {
                rows: first..end,
                cells,
            });
        }
        // A run that is not a table is not searched for one inside it either: its lines
        // are one block of the page.
        first = end;
    }
    tables
}

/// Whether aligned rows of cells (two or more columns) are a table: short cells, not a
/// list, not a table of contents (see the module's documentation).
fn is_table(rows: &[Vec<Cell>]) -> bool {
    let columns = rows.first().map_or(0, Vec::len);
    if columns < 2 {
        return false;
    }
    let column = |k: usize| {
        rows.iter()
            .map(move |r| &r[k])
            .filter(|c| !c.text.is_empty())
    };
    for k in 0..columns {
        if columns >= 3 && k == columns - 1 {
            continue;
        }
        let mut words: Vec<usize> = column(k).map(Cell::words).collect();
        words.sort_unstable();
        if words
            .get(words.len() / 2)
            .is_some_and(|&w| w > MAX_MEDIAN_WORDS)
        {
            return false;
        }
    }
    if column(0).all(|c| is_list_marker(&c.text)) {
        return false;
    }
    if rows.iter().flatten().any(|c| is_leader(&c.text)) {
        return false;
    }
    // Page numbers: every last cell a number, none smaller than the one above it.
    let pages: Option<Vec<u32>> = rows
        .iter()
        .map(|r| r[columns - 1].text.parse().ok())
        .collect();
    let numbered = column(0).any(|c| c.text.chars().all(|ch| ch.is_ascii_digit() || ch == '.'));
    !(pages.is_some_and(|p| p.is_sorted()) && !numbered)
}

/// `•`, `–`, `1.`, `a)`, `iv.`: one short token, with no letter or digit or ending a
/// number or letter with a full stop or parenthesis.
fn is_list_marker(text: &str) -> bool {
    text.chars().count() <= 4
        && !text.contains(char::is_whitespace)
        && (!text.chars().any(char::is_alphanumeric) || text.ends_with(['.', ')']))
}

/// Leader dots, as between a title and its page number in a table of contents.
fn is_leader(text: &str) -> bool {
    text.chars().count() >= 3
        && text
            .chars()
            .all(|c| matches!(c, '.' | '·' | '…' | '\u{2024}' | '\u{2025}' | ' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text laid out as a PDF writer draws it: each piece at (x, baseline y) in 10-point
    /// type whose characters are half as wide as tall, its spaces with boxes of their own,
    /// and after it the line break PDFium generates, with an empty box.
    fn page(pieces: &[(f32, f32, &str)]) -> Vec<PageChar> {
        let size = 10.0;
        let mut units = Vec::new();
        for &(x, y, text) in pieces {
            let mut left = x;
            for ch in text.chars() {
                let right = left + size * 0.5;
                let b = CharBox {
                    left,
                    bottom: y - 0.2 * size,
                    right,
                    top: y + size,
                };
                units.push((ch as u32, Some(b)));
                left = right;
            }
            let empty = CharBox {
                left,
                bottom: y,
                right: left,
                top: y,
            };
            units.push(('\r' as u32, Some(empty)));
            units.push(('\n' as u32, Some(empty)));
        }
        page_chars(units)
    }

    /// Rows of cells at the given column positions, 14 points apart from y = 700 down; an
    /// empty cell is not drawn.
    fn grid(columns: &[f32], rows: &[&[&'static str]]) -> Vec<(f32, f32, &'static str)> {
        let mut pieces = Vec::new();
        for (r, row) in rows.iter().enumerate() {
            let y = 700.0 - 14.0 * r as f32;
            for (&x, &cell) in columns.iter().zip(row.iter()) {
                if !cell.is_empty() {
                    pieces.push((x, y, cell));
                }
            }
        }
        pieces
    }

    fn letters(text: impl Iterator<Item = char>) -> String {
        text.filter(|c| c.is_alphanumeric()).collect()
    }

    #[test]
    fn aligned_rows_become_markdown_rows_with_the_header_first() {
        let mut pieces = vec![(72.0, 740.0, "Fruit prices")];
        pieces.extend(grid(
            &[72.0, 200.0, 300.0],
            &[
                &["Item", "Quantity", "Price"],
                &["Apples", "3", "1.20"],
                &["Pears", "12", "0.80"],
                &["Plums", "7", "2.45"],
            ],
        ));
        pieces.push((72.0, 600.0, "Prices include VAT."));
        let laid = lay_out_tables(&page(&pieces)).expect("a table");
        assert_eq!(
            laid.text,
            "Fruit prices\n\n| Item | Quantity | Price |\n| --- | --- | --- |\n\
             | Apples | 3 | 1.20 |\n| Pears | 12 | 0.80 |\n| Plums | 7 | 2.45 |\n\n\
             Prices include VAT.\r\n"
        );
    }

    #[test]
    fn every_character_maps_to_its_page_character_and_additions_to_none() {
        let chars = page(&grid(
            &[72.0, 200.0],
            &[&["Code", "Meaning"], &["a|b", "either"], &["x y", "both"]],
        ));
        let laid = lay_out_tables(&chars).expect("a table");
        assert_eq!(
            laid.text,
            "| Code | Meaning |\n| --- | --- |\n| a\\|b | either |\n| x y | both |\n\n"
        );
        assert_eq!(laid.text.chars().count(), laid.sources.len());
        for (c, source) in laid.text.chars().zip(&laid.sources) {
            if let Some(index) = source {
                assert_eq!(chars[*index].ch, c, "{c:?} maps to its own character");
            }
        }
        // The bar inside a cell is the page's and its backslash is not; every other bar,
        // the rule, the padding and the line breaks are added.
        let a = chars
            .windows(3)
            .position(|w| w[0].ch == 'a' && w[1].ch == '|' && w[2].ch == 'b')
            .unwrap();
        let at = laid.text[..laid.text.find("a\\|b").unwrap()]
            .chars()
            .count();
        assert_eq!(
            laid.sources[at..at + 4],
            [Some(a), None, Some(a + 1), Some(a + 2)]
        );
        let page_bars = laid
            .text
            .chars()
            .zip(&laid.sources)
            .filter(|(c, s)| *c == '|' && s.is_some())
            .count();
        assert_eq!(page_bars, 1);
        let space = laid.text[..laid.text.find("x y").unwrap()].chars().count() + 1;
        assert_eq!(laid.sources[space], None);
        let mapped: Vec<usize> = laid.sources.iter().flatten().copied().collect();
        assert!(mapped.is_sorted(), "never reordered: {mapped:?}");
        assert_eq!(
            letters(laid.text.chars()),
            letters(chars.iter().map(|c| c.ch)),
            "every letter and digit of the page, in the page's order"
        );
    }

    #[test]
    fn a_page_without_a_table_keeps_pdfiums_text() {
        let prose = page(&[
            (
                72.0,
                700.0,
                "Travel within the country is booked through the office, which",
            ),
            (
                72.0,
                688.0,
                "holds the contracts with the rail and air carriers. Staff who",
            ),
            (
                72.0,
                676.0,
                "book privately are reimbursed at the rate of the cheapest fare.",
            ),
        ]);
        assert_eq!(lay_out_tables(&prose), None);
        assert_eq!(lay_out_tables(&[]), None);
    }

    #[test]
    fn two_column_prose_read_across_its_columns_is_not_a_table() {
        let left = [
            "Travel within the country is booked",
            "through the office, which holds the",
            "contracts with the rail and air carriers.",
            "Staff who book privately are paid the",
            "cheapest fare that was available.",
        ];
        let right = [
            "Meals are reimbursed up to the daily",
            "allowance for the city of travel, and",
            "alcohol is not reimbursed. Claims are",
            "paid with the next salary after approval",
            "by the line manager.",
        ];
        let mut pieces = Vec::new();
        for (i, (l, r)) in left.into_iter().zip(right).enumerate() {
            let y = 700.0 - 12.0 * i as f32;
            pieces.push((72.0, y, l));
            pieces.push((320.0, y, r));
        }
        assert_eq!(lay_out_tables(&page(&pieces)), None);
    }

    #[test]
    fn a_sidebar_beside_prose_is_not_a_table() {
        let pieces = grid(
            &[72.0, 200.0],
            &[
                &[
                    "Contents",
                    "The office books all travel within the country and",
                ],
                &[
                    "Rail",
                    "holds the contracts with the rail and air carriers, so",
                ],
                &[
                    "Air",
                    "that staff who book privately are paid the cheapest fare.",
                ],
            ],
        );
        assert_eq!(lay_out_tables(&page(&pieces)), None);
    }

    #[test]
    fn a_description_column_may_come_last_in_three_or_more_columns() {
        let pieces = grid(
            &[72.0, 160.0, 240.0],
            &[
                &["Function", "Arguments", "Returns"],
                &["abs(x)", "any", "the absolute value of x, of the same type"],
                &["acos(x)", "any", "the inverse cosine of x, in radians"],
            ],
        );
        let laid = lay_out_tables(&page(&pieces)).expect("a table");
        assert!(
            laid.text
                .contains("\n| abs(x) | any | the absolute value of x, of the same type |\n"),
            "{}",
            laid.text
        );
    }

    #[test]
    fn lists_and_tables_of_contents_are_not_tables() {
        let numbered = grid(
            &[80.0, 100.0],
            &[&["1.", "Apples"], &["2.", "Pears"], &["3.", "Plums"]],
        );
        assert_eq!(lay_out_tables(&page(&numbered)), None);
        let bullets = grid(
            &[80.0, 100.0],
            &[&["•", "Rail"], &["•", "Air"], &["•", "Taxi"]],
        );
        assert_eq!(lay_out_tables(&page(&bullets)), None);
        let contents = grid(
            &[72.0, 520.0],
            &[
                &["Introduction", "1"],
                &["Booking travel", "3"],
                &["Claims", "3"],
                &["Index", "12"],
            ],
        );
        assert_eq!(lay_out_tables(&page(&contents)), None);
        let leaders = grid(
            &[72.0, 200.0, 520.0],
            &[
                &["Introduction", "........", "9"],
                &["Booking", "........", "3"],
                &["Claims", "........", "1"],
            ],
        );
        assert_eq!(lay_out_tables(&page(&leaders)), None);
        // Numbers that fall are data, not page numbers.
        let years = grid(
            &[72.0, 200.0],
            &[
                &["Year", "Cases"],
                &["1965", "103"],
                &["1970", "55"],
                &["1975", "34"],
            ],
        );
        assert!(lay_out_tables(&page(&years)).is_some());
    }

    #[test]
    fn two_aligned_lines_or_a_cell_across_a_column_make_no_table() {
        let two = grid(&[72.0, 200.0], &[&["Item", "Price"], &["Apples", "1.20"]]);
        assert_eq!(lay_out_tables(&page(&two)), None);
        // The third line's first segment reaches into the second column.
        let mut across = grid(&[72.0, 160.0], &[&["Item", "Price"], &["Apples", "1.20"]]);
        across.extend([(72.0, 672.0, "Very long pear name"), (200.0, 672.0, "0.80")]);
        assert_eq!(lay_out_tables(&page(&across)), None);
    }

    #[test]
    fn rows_far_apart_are_not_one_table() {
        let mut pieces = Vec::new();
        for (i, (a, b)) in [("Item", "Price"), ("Apples", "1.20"), ("Pears", "0.80")]
            .into_iter()
            .enumerate()
        {
            let y = 700.0 - 100.0 * i as f32;
            pieces.push((72.0, y, a));
            pieces.push((200.0, y, b));
        }
        assert_eq!(lay_out_tables(&page(&pieces)), None);
    }

    #[test]
    fn an_empty_cell_keeps_its_place() {
        let pieces = grid(
            &[72.0, 200.0, 300.0],
            &[
                &["Item", "Quantity", "Price"],
                &["Apples", "", "1.20"],
                &["Pears", "12", "0.80"],
            ],
        );
        let laid = lay_out_tables(&page(&pieces)).expect("a table");
        assert!(
            laid.text.contains("\n| Apples |  | 1.20 |\n"),
            "{}",
            laid.text
        );
    }

    #[test]
    fn text_around_a_table_is_kept_as_it_came() {
        let mut pieces = vec![(72.0, 740.0, "Before the table.")];
        pieces.extend(grid(
            &[72.0, 200.0],
            &[&["Item", "Price"], &["Apples", "1.20"], &["Pears", "0.80"]],
        ));
        pieces.extend([
            (72.0, 600.0, "After the table."),
            (72.0, 588.0, "And more."),
        ]);
        let laid = lay_out_tables(&page(&pieces)).expect("a table");
        assert!(
            laid.text
                .starts_with("Before the table.\n\n| Item | Price |\n")
        );
        assert!(
            laid.text
                .ends_with("| Pears | 0.80 |\n\nAfter the table.\r\nAnd more.\r\n"),
            "{:?}",
            laid.text
        );
    }

    #[test]
    fn characters_beyond_the_basic_plane_are_joined_from_their_halves() {
        let b = |x: f32| {
            Some(CharBox {
                left: x,
                bottom: 0.0,
                right: x + 5.0,
                top: 10.0,
            })
        };
        // U+1D70B (mathematical italic pi) as PDFium gives it, in two code units; then a
        // lone first half before a letter, and a lone second half.
        let chars = page_chars([
            (0x61, b(0.0)),
            (0xD835, b(5.0)),
            (0xDF0B, b(5.0)),
            (0xD835, b(10.0)),
            (0x62, b(15.0)),
            (0xDC00, b(20.0)),
        ]);
        let read: Vec<(usize, char)> = chars.iter().map(|c| (c.index, c.ch)).collect();
        assert_eq!(read, [(0, 'a'), (1, '\u{1D70B}'), (4, 'b')]);
        assert_eq!(chars[1].bounds, b(5.0));
    }
}
