//! Chunking: a parsed document in, token-budgeted chunks out, each with the page(s) and
//! character span it came from. Pure and deterministic.
//!
//! Sizes are counted with the embedding model's own tokenizer (text-splitter with
//! tokenizers), so no chunk is silently truncated by the model. Splits prefer, in order,
//! headings (Markdown), blank lines, line ends, sentences, then words.

use std::path::Path;

use lectern_core::{Error, InContext, PageRange, ParsedDocument, Result, Span};
use text_splitter::{ChunkConfig, MarkdownSplitter, TextSplitter};
use tokenizers::Tokenizer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkerConfig {
    /// Most tokens in a chunk's text. Leave room under the model's limit for the title
    /// and heading prefixed to it (see [`embedding_text`]).
    pub max_tokens: usize,
    /// Tokens shared by neighbouring chunks, so a sentence cut at a boundary is whole in one.
    pub overlap_tokens: usize,
    /// Whether the embedder sees the document title and nearest heading before the chunk.
    pub context_prefix: bool,
}

impl Default for ChunkerConfig {
    fn default() -> Self {
        Self {
            max_tokens: 128,
            overlap_tokens: 16,
            context_prefix: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub index: u32,
    pub text: String,
    pub span: Span,
    pub pages: PageRange,
    /// The innermost heading in force where the chunk starts.
    pub heading: Option<String>,
    /// The header row and rule of the Markdown table the chunk starts inside of, when
    /// the chunk starts below them: the embedder reads it before the rows (see
    /// [`embedding_text`]), so a row cut off from its header still says what its columns
    /// hold.
    pub table_header: Option<String>,
    /// Where a link to the chunk lands in its page (see [`ParsedDocument::anchor_at`]).
    pub anchor: Option<String>,
    pub token_count: usize,
}

pub struct Chunker {
    text: TextSplitter<Tokenizer>,
    markdown: MarkdownSplitter<Tokenizer>,
    tokenizer: Tokenizer,
    config: ChunkerConfig,
}

impl Chunker {
    pub fn new(mut tokenizer: Tokenizer, config: ChunkerConfig) -> Result<Self> {
        // Model tokenizers often pad and truncate to a fixed length (MiniLM's to 128): that
        // would make every text look the same size. Count real tokens.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| Error::Invalid(format!("cannot configure the tokenizer: {e}")))?;
        let chunk_config = |t: Tokenizer| {
            ChunkConfig::new(config.max_tokens)
                .with_sizer(t)
                .with_overlap(config.overlap_tokens)
                .map_err(|e| Error::Invalid(format!("invalid chunk settings: {e}")))
        };
        Ok(Self {
            text: TextSplitter::new(chunk_config(tokenizer.clone())?),
            markdown: MarkdownSplitter::new(chunk_config(tokenizer.clone())?),
            tokenizer,
            config,
        })
    }

    /// Loads the model's `tokenizer.json`.
    pub fn from_tokenizer_file(path: &Path, config: ChunkerConfig) -> Result<Self> {
        let tokenizer = Tokenizer::from_file(path).map_err(|e| {
            Error::Invalid(format!("cannot read the tokenizer {}: {e}", path.display()))
        })?;
        Self::new(tokenizer, config)
    }

    pub fn config(&self) -> ChunkerConfig {
        self.config
    }

    /// What the embedder sees of `chunk`: with [`ChunkerConfig::context_prefix`], the
    /// title and heading before its text ([`embedding_text`]); otherwise the text alone.
    pub fn embedding_text(&self, title: &str, chunk: &Chunk) -> InContext {
        if self.config.context_prefix {
            embedding_text(title, chunk)
        } else {
            InContext {
                context: String::new(),
                text: chunk.text.clone(),
            }
        }
    }

    pub fn count_tokens(&self, text: &str) -> usize {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.len())
            .unwrap_or(0)
    }

    /// Chunks in document order. `markdown` splits on Markdown structure first.
    pub fn chunk(&self, doc: &ParsedDocument, markdown: bool) -> Vec<Chunk> {
        let pieces: Vec<(usize, usize, &str)> = if markdown {
            self.markdown
                .chunk_char_indices(&doc.text)
                .map(|c| (c.char_offset, c.byte_offset, c.chunk))
                .collect()
        } else {
            self.text
                .chunk_char_indices(&doc.text)
                .map(|c| (c.char_offset, c.byte_offset, c.chunk))
                .collect()
        };
        let mut tables = TableScan::new(&doc.text);
        pieces
            .into_iter()
            .filter(|(_, _, text)| !text.trim().is_empty())
            .enumerate()
            .map(|(index, (start, byte, text))| {
                let end = start + text.chars().count();
                Chunk {
                    index: index as u32,
                    text: text.to_owned(),
                    span: Span { start, end },
                    pages: PageRange {
                        start: doc.page_at(start),
                        end: doc.page_at(end.saturating_sub(1).max(start)),
                    },
                    heading: doc.heading_at(start).map(|h| h.text.clone()),
                    table_header: tables.header_at(byte, text),
                    anchor: doc.anchor_at(start).map(str::to_owned),
                    token_count: self.count_tokens(text),
                }
            })
            .collect()
    }
}

/// What the embedder sees: the document title and the nearest heading give a chunk the
/// context its own words may lack ("it", "this section").
pub fn embedding_text(title: &str, chunk: &Chunk) -> InContext {
    let context = match &chunk.heading {
        Some(h) if !chunk.text.starts_with(h.as_str()) && h != title => format!("{title} — {h}"),
        _ => title.to_owned(),
    };
    let text = match &chunk.table_header {
        Some(header) => format!("{header}\n{}", chunk.text),
        None => chunk.text.clone(),
    };
    InContext { context, text }
}

/// Whether a line is a row of a Markdown table.
fn is_row(line: &str) -> bool {
    let line = line.trim();
    line.starts_with('|') && line.ends_with('|') && line.len() > 1
}

/// Whether a line is a Markdown table's rule (`| --- | :-: |`).
fn is_rule(line: &str) -> bool {
    is_row(line)
        && line.trim().trim_matches('|').split('|').all(|cell| {
            let cell = cell.trim();
            cell.contains('-') && cell.chars().all(|c| matches!(c, '-' | ':'))
        })
}

/// The tables of a document read once, front to back, as chunks come in document order:
/// for each chunk, the header and rule of the table it begins inside of.
struct TableScan<'a> {
    text: &'a str,
    /// Bytes read so far, at a line start.
    at: usize,
    /// The first two lines of the run of table rows that ends where reading stopped.
    run: Vec<&'a str>,
}

impl<'a> TableScan<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            at: 0,
            run: Vec::new(),
        }
    }

    /// The header and rule of the table the chunk at `byte` begins inside of: found when
    /// the chunk opens with a row (or mid-row) and the rows above it, up the same table,
    /// begin with a header row and its rule. `byte` never goes back.
    fn header_at(&mut self, byte: usize, chunk: &str) -> Option<String> {
        let before = &self.text[..byte];
        // Whole lines only: a chunk that starts mid-line starts in the row that line ends.
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        if line_start > self.at {
            for line in self.text[self.at..line_start].lines() {
                if !is_row(line) {
                    self.run.clear();
                } else if self.run.len() < 2 {
                    self.run.push(line);
                }
            }
            self.at = line_start;
        }
        let first = chunk.trim_start().lines().next()?;
        let mid_row = line_start < byte && first.trim_end().ends_with('|');
        if !(is_row(first) || mid_row) {
            return None;
        }
        match self.run.as_slice() {
            [header, rule] if is_rule(rule) && !is_rule(header) => {
                Some(format!("{}\n{}", header.trim(), rule.trim()))
            }
            _ => None,
        }
    }
}
