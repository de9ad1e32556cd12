//! Retrieval: embed the question, search the caller's workspaces (the scope is mandatory
//! and enforced by the index), fuse dense and BM25, drop near-duplicate passages, and
//! return passages that carry everything a citation needs.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub use lectern_api::query::Passage;
use lectern_api::query::{Excerpt, PassageInContext};
use lectern_core::{
    DocumentId, Embedder, Error, Result, ScoredChunk, SearchMode, SearchRequest, VectorIndex,
    WorkspaceScope,
};
use lectern_search::SearchAdapters;
use lectern_store::Store;
use lectern_vector::text::Language;
use uuid::Uuid;

use crate::evidence;

/// What the question retrieved, with the evidence strength used to decide abstention.
#[derive(Debug, Clone)]
pub struct Retrieved {
    pub passages: Vec<Passage>,
    /// The cosine similarity of the best dense match (0 when nothing matched).
    pub best_similarity: f32,
    pub query_vector: Vec<f32>,
    /// Where each passage's chunk sits: its document's version and its index there (by
    /// `chunk_id`), so that the chunks beside it can be read.
    pub places: HashMap<Uuid, (i32, u32)>,
}

#[derive(Clone)]
pub struct Retriever {
    pub store: Store,
    pub embedder: Arc<dyn Embedder>,
    pub index: Arc<dyn VectorIndex>,
}

/// How a search is narrowed and how much it returns.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    pub limit: usize,
    /// Candidates fetched before near-duplicates are dropped (at least `limit`).
    pub candidates: usize,
    pub mode: SearchMode,
    pub documents: Option<Vec<Uuid>>,
    /// Two passages whose word-trigram overlap exceeds this are one passage.
    pub duplicate_overlap: f32,
    /// Most passages from one page of one document (0: no cap), so that the results
    /// hold more distinct pieces of evidence than one page cut into several chunks.
    pub per_page: usize,
    /// A hybrid search whose question is in another language than the passage closest
    /// to it in meaning is made by meaning alone: BM25 matches the question's words, which
    /// a document in another language does not use, so its vote is noise.
    pub cross_language_by_meaning: bool,
    /// Passages that are a table of contents ([`is_navigation`]) come
    /// after every other passage.
    pub navigation_last: bool,
}

impl Retriever {
    pub fn new(store: Store, search: &SearchAdapters) -> Self {
        Self {
            store,
            embedder: search.embedder.clone(),
            index: search.index.clone(),
        }
    }

    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>> {
        let embedder = self.embedder.clone();
        tokio::task::spawn_blocking(move || embedder.embed(&texts))
            .await
            .map_err(|e| Error::internal("embedding task failed", e))?
    }

    /// The question's vector (embedded as a question, for models that tell the sides).
    pub async fn embed_query(&self, question: &str) -> Result<Vec<f32>> {
        let embedder = self.embedder.clone();
        let texts = vec![question.to_owned()];
        tokio::task::spawn_blocking(move || embedder.embed_queries(&texts))
            .await
            .map_err(|e| Error::internal("embedding task failed", e))??
            .pop()
            .ok_or_else(|| Error::internal_msg("the embedder returned no vector"))
    }

    pub async fn search(
        &self,
        scope: &WorkspaceScope,
        question: &str,
        options: &SearchOptions,
    ) -> Result<Retrieved> {
        let question = question.trim();
        if question.is_empty() {
            return Err(Error::Invalid("the question is empty".into()));
        }
        let query_vector = self.embed_query(question).await?;
        let request = SearchRequest {
            text: question.to_owned(),
            dense: query_vector.clone(),
            limit: options.candidates.max(options.limit),
            mode: options.mode,
            documents: options.documents.clone(),
        };
        // The passages closest in meaning: the evidence threshold needs the best one's
        // similarity, and a question in another language than the best one is answered
        // from them alone (BM25 matches the question's words, which a document in another
        // language does not use, so its half of the vote would rank noise). One dense
        // search serves both.
        let dense = if options.mode == SearchMode::Sparse {
            Vec::new()
        } else {
            let dense = SearchRequest {
                mode: SearchMode::Dense,
                ..request.clone()
            };
            self.index.search(scope, &dense).await?
        };
        let best_similarity = match options.mode {
            SearchMode::Sparse => 1.0,
            _ => dense.first().map_or(0.0, |c| c.score),
        };
        let by_meaning_alone = options.mode == SearchMode::Dense
            || (options.mode == SearchMode::Hybrid
                && options.cross_language_by_meaning
                && dense
                    .first()
                    .is_some_and(|closest| in_two_languages(question, &closest.chunk.text)));
        let hits = if by_meaning_alone {
            dense
        } else {
            let fused = self.index.search(scope, &request).await?;
            break_ties(fused, &dense)
        };
        let hits = if options.navigation_last {
            navigation_last(hits, |h| h.chunk.text.as_str())
        } else {
            hits
        };
        let hits = per_page(hits, options.per_page, |h| {
            (h.chunk.document_id, h.chunk.pages.start)
        });

        // Document names and titles from SQL, in one query: what can change without the
        // points being written again (a synced file moved or renamed keeps its points) is
        // read here, never from the points' payload. A hit whose document is gone (deleted
        // a moment ago) is skipped.
        let ids: Vec<DocumentId> = hits.iter().map(|h| h.chunk.document_id).collect();
        let names: HashMap<DocumentId, (String, String, Option<String>)> = self
            .store
            .documents(&ids)
            .await?
            .into_iter()
            .map(|d| {
                let url = web_address(&d);
                (d.id, (d.file_name, d.title, url))
            })
            .collect();
        let mut passages: Vec<Passage> = Vec::new();
        let mut places = HashMap::new();
        let mut kept_shingles: Vec<HashSet<u64>> = Vec::new();
        for hit in hits {
            let Some((document, title, url)) = names.get(&hit.chunk.document_id).cloned() else {
                continue;
            };
            let shingles = shingles(&hit.chunk.text);
            if kept_shingles
                .iter()
                .any(|k| overlap(k, &shingles) > options.duplicate_overlap)
            {
                continue;
            }
            kept_shingles.push(shingles);
            let c = hit.chunk;
            let chunk_id = c.point_id();
            places.insert(chunk_id, (c.version, c.chunk_index));
            passages.push(Passage {
                chunk_id,
                workspace_id: c.workspace_id,
                document_id: c.document_id,
                document,
                title,
                page: c.pages.start,
                pages: c.pages,
                span: c.span,
                text: c.text,
                table_header: c.table_header,
                url: url.map(|u| at_anchor(u, c.anchor.as_deref())),
                score: hit.score,
            });
            if passages.len() == options.limit {
                break;
            }
        }
        Ok(Retrieved {
            passages,
            best_similarity,
            query_vector,
            places,
        })
    }

    /// The passages with the sentences their chunks' edges cut through made whole from
    /// the chunks beside them, at most `max_chars` characters at each edge
    /// ([`evidence::complete_sentences`]). A passage whose neighbours cannot be read (its
    /// document re-indexed a moment ago, or the index unavailable) stays as it was: the
    /// answer is still grounded in it.
    pub async fn complete_sentences(
        &self,
        scope: &WorkspaceScope,
        passages: Vec<Passage>,
        places: &HashMap<Uuid, (i32, u32)>,
        max_chars: usize,
    ) -> Vec<Passage> {
        if max_chars == 0 {
            return passages;
        }
        let each = passages.into_iter().map(|p| async move {
            let Some(&(version, at)) = places.get(&p.chunk_id) else {
                return p;
            };
            let indexes: Vec<u32> = [at.checked_sub(1), at.checked_add(1)]
                .into_iter()
                .flatten()
                .collect();
            match self
                .index
                .chunks(scope, p.document_id, version, &indexes)
                .await
            {
                Ok(beside) => {
                    let find = |i: Option<u32>| beside.iter().find(|c| Some(c.chunk_index) == i);
                    evidence::complete_sentences(
                        &p,
                        find(at.checked_sub(1)),
                        find(at.checked_add(1)),
                        max_chars,
                    )
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the chunks beside a source could not be read; it stays as its chunk cut it");
                    p
                }
            }
        });
        futures::future::join_all(each).await
    }

    /// The passage `chunk_id` (a search passage's or a citation's) read whole, with up to
    /// `around` chunks of its document on each side. "Not found" when it is outside
    /// `scope`, exactly as when it does not exist (or its document was re-indexed since).
    pub async fn passage_in_context(
        &self,
        scope: &WorkspaceScope,
        chunk_id: Uuid,
        around: u32,
    ) -> Result<PassageInContext> {
        let gone = || {
            Error::NotFound(format!(
                "no passage {chunk_id} in your workspaces (its document may have been re-indexed or deleted since); search again"
            ))
        };
        let row = self.store.chunk(chunk_id).await?.ok_or_else(gone)?;
        let document = self
            .store
            .document(row.document_id)
            .await?
            .filter(|d| scope.contains(d.workspace_id))
            .ok_or_else(gone)?;
        let at = u32::try_from(row.chunk_index).map_err(|_| gone())?;
        let indexes: Vec<u32> = (at.saturating_sub(around)..=at.saturating_add(around)).collect();
        let chunks = self
            .index
            .chunks(scope, row.document_id, row.version, &indexes)
            .await?;
        let (mut before, mut after, mut cited) = (Vec::new(), Vec::new(), None);
        for c in chunks {
            let excerpt = Excerpt {
                chunk_id: c.point_id(),
                pages: c.pages,
                span: c.span,
                text: c.text.clone(),
            };
            match c.chunk_index.cmp(&at) {
                Ordering::Less => before.push(excerpt),
                Ordering::Equal => cited = Some(c),
                Ordering::Greater => after.push(excerpt),
            }
        }
        let c = cited.ok_or_else(gone)?;
        Ok(PassageInContext {
            chunk_id,
            workspace_id: c.workspace_id,
            document_id: c.document_id,
            url: web_address(&document).map(|u| at_anchor(u, c.anchor.as_deref())),
            document: document.file_name,
            title: document.title,
            page: c.pages.start,
            pages: c.pages,
            span: c.span,
            text: c.text,
            table_header: c.table_header,
            before,
            after,
        })
    }
}

/// The address of a document that came from a web source (its source key), if it did.
fn web_address(d: &lectern_store::entity::document::Model) -> Option<String> {
    d.source_key
        .as_ref()
        .filter(|k| k.starts_with("https://") || k.starts_with("http://"))
        .cloned()
}

/// A page's address pointing at a section of it: the anchor as a fragment, with the
/// characters a fragment cannot hold escaped.
fn at_anchor(mut url: String, anchor: Option<&str>) -> String {
    let Some(anchor) = anchor else {
        return url;
    };
    if let Some(hash) = url.find('#') {
        url.truncate(hash);
    }
    url.push('#');
    for c in anchor.chars() {
        match c {
            ' ' | '"' | '<' | '>' | '`' | '#' | '%' => url.push_str(&format!("%{:02X}", c as u32)),
            c if c.is_control() => {}
            c => url.push(c),
        }
    }
    url
}

/// Whether two texts are in two different languages, both told.
pub fn in_two_languages(a: &str, b: &str) -> bool {
    matches!(
        (Language::detect(a), Language::detect(b)),
        (Some(a), Some(b)) if a != b
    )
}

/// The fused hits in an order that does not change from one search to the next. Rank
/// fusion gives two passages the same score whenever their ranks in the two lists are
/// swapped (first by meaning and second by words, and the other way round), and the index
/// returns such ties in any order: the same question then got its sources in another
/// order from one run to the next (EVALUATION, session 16). A tie goes to the passage
/// closer in meaning, then by document and chunk. (A tie at the last place the index
/// returns can still change which of the two comes back; the candidates asked for are
/// several times the sources used.)
fn break_ties(mut hits: Vec<ScoredChunk>, dense: &[ScoredChunk]) -> Vec<ScoredChunk> {
    let key = |h: &ScoredChunk| (h.chunk.document_id, h.chunk.chunk_index);
    let by_meaning: HashMap<_, usize> =
        dense.iter().enumerate().map(|(i, h)| (key(h), i)).collect();
    let place = |h: &ScoredChunk| by_meaning.get(&key(h)).copied().unwrap_or(usize::MAX);
    hits.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| place(a).cmp(&place(b)))
            .then_with(|| key(a).cmp(&key(b)))
    });
    hits
}

/// Whether a text is a table of contents: three or more lines that lead with dots to a
/// page number and end there ("Phrasing slurs . . . . . . 27", "Index ..........iv"),
/// and at least half of its lines such. It holds many questions' words, since it lists
/// every heading, and the answer to none of them: in a manual's searches the contents and
/// an index set the same way took places in the top five from the page they point to
/// (EVALUATION, session 18). A line that ends in a unit or a price after its dots ("230
/// V", "3.50") is a table of values, not an entry.
pub fn is_navigation(text: &str) -> bool {
    static ENTRY: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"(?:(?:[.·]\s?){4,}|(?:…\s?){2,})\s*(?:\d{1,4}|x{1,2}(?:ix|iv|vi{0,3}|i{0,3})|ix|iv|vi{0,3}|i{1,3}|X{1,2}(?:IX|IV|VI{0,3}|I{0,3})|IX|IV|VI{0,3}|I{1,3})\s*$",
        )
        .expect("a valid pattern")
    });
    let (lines, entries) = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .fold((0, 0), |(n, e), l| {
            (n + 1, e + usize::from(ENTRY.is_match(l)))
        });
    entries >= 3 && entries * 2 >= lines
}

/// The items (best first) with those whose text is navigation ([`is_navigation`]) moved
/// after the rest, each part in its order.
fn navigation_last<T>(items: Vec<T>, text: impl Fn(&T) -> &str) -> Vec<T> {
    let (navigation, rest): (Vec<T>, Vec<T>) = items
        .into_iter()
        .partition(|item| is_navigation(text(item)));
    rest.into_iter().chain(navigation).collect()
}

/// The items (best first) with at most `cap` of one page of one document (all of them when
/// `cap` is 0).
fn per_page<T>(items: Vec<T>, cap: usize, page: impl Fn(&T) -> (DocumentId, u32)) -> Vec<T> {
    if cap == 0 {
        return items;
    }
    let mut seen: HashMap<(DocumentId, u32), usize> = HashMap::new();
    items
        .into_iter()
        .filter(|item| {
            let n = seen.entry(page(item)).or_default();
            *n += 1;
            *n <= cap
        })
        .collect()
}

/// Hashes of the lower-cased word trigrams of a text.
fn shingles(text: &str) -> HashSet<u64> {
    use std::hash::{Hash, Hasher};
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let n = 3.min(words.len().max(1));
    words
        .windows(n)
        .map(|w| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            w.hash(&mut h);
            h.finish()
        })
        .collect()
}

/// The share of the smaller set found in the other (containment), so that a passage
/// inside a longer one counts as its duplicate.
fn overlap(a: &HashSet<u64>, b: &HashSet<u64>) -> f32 {
    let smaller = a.len().min(b.len());
    if smaller == 0 {
        return 0.0;
    }
    a.intersection(b).count() as f32 / smaller as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_of_contents_and_indexes_go_last_and_prose_stays() {
        let contents = "4.2 Slurs . . . . . . . . . . . . 27\n4.3 Phrasing slurs . . . . . . . 28\n\
            4.4 Ties\n. . . . . . . . . . . . . . . 29\nAppendix ..........iv";
        let index = "phrasing · · · · · · 26\nslur · · · · · 27\nties …… 29 ";
        assert!(is_navigation(contents));
        assert!(is_navigation(index));
        // An entry or two in prose, an ellipsis, a version, dots with no page after them,
        // tables of values set with dots, a roman numeral's letters inside words.
        for prose in [
            "Phrasing slurs are entered with \\( and \\). See Slurs . . . . . 27\n\
             Both kinds may occur at once . . . . 12\nThey nest.\nThey cross.",
            "Wait for it... and then... and then 3 more...",
            "Version 2.24.1 of the manual, 1.2.3.4.5 of the list.",
            "A table of dots . . . . . . . . . . and no page.\n. . . . . . . . and none here.\n. . . . . . none.",
            "Voltage ....... 230 V\nCurrent ....... 10 A\nWeight ....... 2 kg",
            "Coffee ....... 3.50\nTea ....... 2.80\nCake ....... 4.20",
            "Annual leave ..... 25 days\nSick leave ..... 10 days\nParental leave ..... 14 weeks",
            "Then.... mix\nAnd.... civil\nOr.... vivid\nSo.... XML",
            ". . . . . . . .\n. . . . . . . .\n. . . . . . . .",
        ] {
            assert!(!is_navigation(prose), "{prose}");
        }
        // Navigation goes last; each part keeps its order.
        let items = vec![index, "first prose", contents, "second prose"];
        assert_eq!(
            navigation_last(items, |t| *t),
            vec!["first prose", "second prose", index, contents]
        );
    }

    #[test]
    fn a_web_citation_points_at_its_section() {
        let page = "https://docs.example/tutorial/intro.html".to_owned();
        assert_eq!(at_anchor(page.clone(), None), page);
        assert_eq!(
            at_anchor(page.clone(), Some("using-lists")),
            "https://docs.example/tutorial/intro.html#using-lists"
        );
        // A fragment already there is replaced; what a fragment cannot hold is escaped.
        assert_eq!(
            at_anchor(format!("{page}#top"), Some("a b#c\"ü")),
            "https://docs.example/tutorial/intro.html#a%20b%23c%22ü"
        );
    }

    #[test]
    fn fused_ties_come_in_one_order_whatever_order_the_index_gives() {
        use lectern_core::{ChunkPoint, PageRange, Span};
        let hit = |chunk_index: u32, score: f32| ScoredChunk {
            chunk: ChunkPoint {
                workspace_id: Uuid::nil(),
                document_id: Uuid::from_u128(7),
                version: 1,
                chunk_index,
                pages: PageRange::single(1),
                span: Span { start: 0, end: 1 },
                title: String::new(),
                text: String::new(),
                table_header: None,
                anchor: None,
            },
            score,
        };
        let order = |hits: Vec<ScoredChunk>| -> Vec<u32> {
            hits.iter().map(|h| h.chunk.chunk_index).collect()
        };
        // Chunks 4 and 9 tie (their ranks swapped in the two lists); 9 is closer in meaning.
        let dense = vec![hit(9, 0.8), hit(4, 0.7), hit(1, 0.6)];
        let a = vec![hit(2, 0.05), hit(4, 0.03), hit(9, 0.03), hit(1, 0.01)];
        let b = vec![hit(2, 0.05), hit(9, 0.03), hit(4, 0.03), hit(1, 0.01)];
        assert_eq!(order(break_ties(a.clone(), &dense)), [2, 9, 4, 1]);
        assert_eq!(order(break_ties(b.clone(), &dense)), [2, 9, 4, 1]);
        // Neither found by meaning: the earlier chunk first, in either order given.
        assert_eq!(order(break_ties(b.clone(), &[])), [2, 4, 9, 1]);
    }

    #[test]
    fn two_languages_are_told_only_when_both_are_sure() {
        let german = "Die Versionsbezeichnung ist aus zwei Gründen wichtig, und sie steht am Anfang jeder Datei.";
        let spanish = "¿Por qué debo poner una línea de versión al principio de cada archivo?";
        let english = "Why should I put a version line at the top of every file?";
        assert!(in_two_languages(spanish, german));
        assert!(in_two_languages(english, german));
        assert!(!in_two_languages(german, german));
        assert!(
            !in_two_languages("\\relative c'", german),
            "too little to tell"
        );
    }

    #[test]
    fn one_page_gives_at_most_its_share() {
        let (d1, d2) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let items = vec![
            (d1, 4, "a"),
            (d1, 4, "b"),
            (d1, 4, "c"),
            (d1, 5, "d"),
            (d2, 4, "e"),
        ];
        let kept = |cap| -> Vec<&str> {
            per_page(items.clone(), cap, |i| (i.0, i.1))
                .into_iter()
                .map(|i| i.2)
                .collect()
        };
        assert_eq!(kept(2), vec!["a", "b", "d", "e"]);
        assert_eq!(kept(1), vec!["a", "d", "e"]);
        assert_eq!(kept(0), vec!["a", "b", "c", "d", "e"]);
    }

    #[test]
    fn near_duplicates_overlap_and_distinct_texts_do_not() {
        let a = shingles("Staff get thirty days of annual leave each calendar year.");
        let b = shingles("All staff get thirty days of annual leave each calendar year, pro rata.");
        let c = shingles("Parking is free for visitors on weekends only.");
        assert!(overlap(&a, &b) > 0.8, "{}", overlap(&a, &b));
        assert!(overlap(&a, &c) < 0.1);
        assert_eq!(overlap(&a, &HashSet::new()), 0.0);
    }
}
