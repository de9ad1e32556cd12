use lectern_core::{ChunkPoint, DocumentId, Error, IndexedChunk, Result};
use qdrant_edge::bm25_embed::{EdgeBm25, EdgeBm25Config};
use qdrant_edge::external::ordered_float::NotNan;
use qdrant_edge::{SparseVector, TokenizerType};

use crate::text::Language;

/// BM25 term weights computed on the client, for both implementations (term ids are
/// murmur3 hashes, the same as Qdrant's own server-side BM25). Inverse document frequency
/// is applied by the index at search time (the sparse vector's IDF modifier), over the
/// workspaces searched.
///
/// Each text is analysed in its own language (stop words, stemmer, and for Chinese and
/// Japanese a word segmenter) when that can be told, else in the default language, whose
/// analysis is exactly the single-language one of earlier versions: text in the default
/// language gets the same vectors as before, so existing indexes stay valid. A question
/// is analysed in the default language and, when its own can be told and differs, in
/// that too (the union of both sets of terms): it may be asked in one language of
/// documents in another, and names and numbers match either way.
pub struct Bm25 {
    /// The language of text whose own cannot be told.
    default: Language,
    /// The default language's configuration, recorded with the index.
    config: EdgeBm25Config,
    /// A model per language this version of qdrant-edge knows, the default's first.
    models: Vec<(Language, EdgeBm25)>,
}

impl Bm25 {
    /// A BM25 whose default language is `config`'s (English when it names none); every
    /// other language is analysed with the same parameters.
    pub fn new(config: EdgeBm25Config) -> Result<Self> {
        let default = match &config.language {
            // qdrant-edge's own default.
            None => Language::English,
            Some(name) => Language::from_name(name).ok_or_else(|| {
                Error::Invalid(format!(
                    "the BM25 language {name:?} is not one Lectern analyses; use one of: {}",
                    Language::names()
                ))
            })?,
        };
        let default_model = EdgeBm25::new(config.clone())
            .map_err(|e| Error::Invalid(format!("invalid BM25 configuration: {e}")))?;
        let mut models = vec![(default, default_model)];
        for language in Language::ALL {
            if language == default {
                continue;
            }
            // A language this version of qdrant-edge does not know is analysed in the
            // default language, as all text was before.
            if let Ok(model) = EdgeBm25::new(EdgeBm25Config {
                language: Some(language.name().into()),
                tokenizer: tokenizer_for(language),
                ..config.clone()
            }) {
                models.push((language, model));
            }
        }
        Ok(Self {
            default,
            config,
            models,
        })
    }

    /// English stemming and stopwords, and an average length near a typical chunk's.
    pub fn default_config() -> EdgeBm25Config {
        Self::config_for(Language::English)
    }

    /// The configuration with `language` as the default language.
    pub fn config_for(language: Language) -> EdgeBm25Config {
        EdgeBm25Config {
            language: Some(language.name().into()),
            avg_len: NotNan::new(200.0).expect("not NaN"),
            tokenizer: tokenizer_for(language),
            ..Default::default()
        }
    }

    pub fn config(&self) -> &EdgeBm25Config {
        &self.config
    }

    pub fn default_language(&self) -> Language {
        self.default
    }

    /// The model for `language`; the default's when qdrant-edge does not know it.
    fn model(&self, language: Language) -> &EdgeBm25 {
        let (_, default) = &self.models[0];
        self.models
            .iter()
            .find(|(l, _)| *l == language)
            .map_or(default, |(_, model)| model)
    }

    /// A document's terms, analysed in `language`.
    pub fn document_in(&self, text: &str, language: Language) -> SparseVector {
        self.model(language).embed_document(text)
    }

    /// A document's terms, analysed in its own language when that can be told, else in
    /// the default language.
    pub fn document(&self, text: &str) -> SparseVector {
        self.document_in(text, Language::detect(text).unwrap_or(self.default))
    }

    /// The terms of chunks about to be indexed, in order. Each chunk is analysed in the
    /// language most chunks of its document in `chunks` are told to be in (a heading, a
    /// table row or a code listing of a German manual is German, whatever its few words
    /// look like); else in its own, for a document none of whose chunks could be told
    /// alone; else in the default language. With each, the language used, if told.
    pub fn chunks(&self, chunks: &[IndexedChunk]) -> Vec<(SparseVector, Option<Language>)> {
        let texts: Vec<String> = chunks.iter().map(|p| indexed_text(&p.chunk)).collect();
        let own: Vec<Option<Language>> = texts.iter().map(|t| Language::detect(t)).collect();
        // (document, language, chunks in it), in the order first met: ties go to the
        // language met first, so the choice does not depend on anything but the input.
        let mut tally: Vec<(DocumentId, Language, usize)> = Vec::new();
        for (p, language) in chunks.iter().zip(&own) {
            let Some(language) = *language else { continue };
            match tally
                .iter_mut()
                .find(|(d, l, _)| *d == p.chunk.document_id && *l == language)
            {
                Some((_, _, n)) => *n += 1,
                None => tally.push((p.chunk.document_id, language, 1)),
            }
        }
        let document_language = |document: DocumentId| {
            let mut best: Option<(Language, usize)> = None;
            for &(d, l, n) in &tally {
                if d == document && best.is_none_or(|(_, m)| n > m) {
                    best = Some((l, n));
                }
            }
            best.map(|(l, _)| l)
        };
        chunks
            .iter()
            .zip(texts.iter().zip(own))
            .map(|(p, (text, own))| {
                let told = document_language(p.chunk.document_id).or(own);
                (self.document_in(text, told.unwrap_or(self.default)), told)
            })
            .collect()
    }

    /// A question's terms: in the default language, and also in the question's own when
    /// that can be told and differs. Terms both analyses make are counted once; every
    /// term weighs the same (the index weighs them by their rarity).
    pub fn query(&self, text: &str) -> SparseVector {
        let mut terms = self.model(self.default).embed_query(text);
        let Some(own) = Language::detect(text).filter(|l| *l != self.default) else {
            return terms;
        };
        let more = self.model(own).embed_query(text);
        for (index, value) in more.indices.into_iter().zip(more.values) {
            match terms.indices.iter().position(|&i| i == index) {
                Some(at) => terms.values[at] = terms.values[at].max(value),
                None => {
                    terms.indices.push(index);
                    terms.values.push(value);
                }
            }
        }
        terms
    }
}

/// Spaced languages are cut into words at spaces and punctuation, as before; Chinese and
/// Japanese by Qdrant's multilingual tokenizer.
fn tokenizer_for(language: Language) -> TokenizerType {
    if language.unspaced() {
        TokenizerType::Multilingual
    } else {
        TokenizerType::default()
    }
}

/// What a point's BM25 terms are made of: its title, then its text.
pub(crate) fn indexed_text(chunk: &ChunkPoint) -> String {
    format!("{}\n{}", chunk.title, chunk.text)
}

#[cfg(test)]
mod tests {
    use lectern_core::{PageRange, Span};
    use uuid::Uuid;

    use super::*;

    const ENGLISH: &str = "Employees are entitled to thirty days of annual leave per calendar year. Unused days expire at the end of March of the following year, unless the line manager approves a carry-over.";
    const GERMAN: &str = "Die Mitarbeiter haben Anspruch auf dreißig Urlaubstage im Kalenderjahr. Nicht genommene Urlaubstage verfallen Ende März des folgenden Jahres, wenn die Führungskraft keine Übertragung genehmigt.";

    fn english_only() -> EdgeBm25 {
        // Exactly the configuration of the versions that analysed everything as English.
        EdgeBm25::new(EdgeBm25Config {
            language: Some("english".into()),
            avg_len: NotNan::new(200.0).expect("not NaN"),
            ..Default::default()
        })
        .unwrap()
    }

    fn bm25() -> Bm25 {
        Bm25::new(Bm25::default_config()).unwrap()
    }

    /// A vector's terms and weights, in its order.
    fn parts(v: &SparseVector) -> (Vec<u32>, Vec<f32>) {
        (v.indices.clone(), v.values.clone())
    }

    fn chunk(document: u128, index: u32, text: &str) -> IndexedChunk {
        IndexedChunk {
            chunk: ChunkPoint {
                workspace_id: Uuid::nil(),
                document_id: Uuid::from_u128(document),
                version: 1,
                chunk_index: index,
                pages: PageRange::single(1),
                span: Span { start: 0, end: 1 },
                title: "Handbook".into(),
                text: text.into(),
                table_header: None,
                anchor: None,
            },
            dense: Vec::new(),
        }
    }

    #[test]
    fn english_text_gets_exactly_the_vectors_of_before() {
        let before = english_only();
        let now = bm25();
        assert_eq!(now.config(), &Bm25::default_config());
        for text in [
            ENGLISH,
            "Yes.",
            "12 345 | 7.5",
            "How many days of annual leave do staff get?",
        ] {
            assert_eq!(
                parts(&now.document(text)),
                parts(&before.embed_document(text)),
                "{text}"
            );
            assert_eq!(
                parts(&now.query(text)),
                parts(&before.embed_query(text)),
                "{text}"
            );
        }
        let chunks = [chunk(1, 0, ENGLISH), chunk(1, 1, "Table 3")];
        let made = now.chunks(&chunks);
        for ((vector, _), c) in made.iter().zip(&chunks) {
            assert_eq!(
                parts(vector),
                parts(&before.embed_document(&indexed_text(&c.chunk)))
            );
        }
        assert_eq!(made[0].1, Some(Language::English));
    }

    #[test]
    fn german_is_stemmed_as_german_not_as_english() {
        let now = bm25();
        let german = EdgeBm25::new(EdgeBm25Config {
            language: Some("german".into()),
            ..Bm25::default_config()
        })
        .unwrap();
        assert_eq!(Language::detect(GERMAN), Some(Language::German));
        assert_eq!(
            parts(&now.document(GERMAN)),
            parts(&german.embed_document(GERMAN))
        );
        assert_ne!(
            parts(&now.document(GERMAN)),
            parts(&english_only().embed_document(GERMAN))
        );
        // "Urlaubstage" and "Urlaubstagen" are one German term; English stemming keeps
        // them apart.
        let question = "Wie viele Urlaubstagen haben die Mitarbeiter im Kalenderjahr?";
        assert_eq!(Language::detect(question), Some(Language::German));
        let terms = now.query(question);
        let document = now.document(GERMAN);
        let shared = terms
            .indices
            .iter()
            .filter(|i| document.indices.contains(i))
            .count();
        assert!(shared >= 3, "urlaubstag, mitarbeit, kalenderjahr: {shared}");
    }

    #[test]
    fn a_question_holds_its_own_language_s_terms_and_the_default_s() {
        let now = bm25();
        let question = "Wie viele Urlaubstage haben die Mitarbeiter im Kalenderjahr?";
        let q = now.query(question);
        let english = english_only().embed_query(question);
        let german = now.model(Language::German).embed_query(question);
        for i in english.indices.iter().chain(&german.indices) {
            assert!(q.indices.contains(i), "every term of both analyses");
        }
        let mut unique = q.indices.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), q.indices.len(), "no term twice");
        assert!(q.values.iter().all(|&v| v == 1.0));
    }

    #[test]
    fn a_chunk_too_short_to_tell_takes_its_document_s_language() {
        let now = bm25();
        let chunks = [
            chunk(1, 0, GERMAN),
            chunk(1, 1, "Anlage 3"),
            chunk(2, 0, "Anlage 3"),
        ];
        let made = now.chunks(&chunks);
        assert_eq!(made[0].1, Some(Language::German));
        assert_eq!(made[1].1, Some(Language::German), "its document is German");
        assert_eq!(
            parts(&made[1].0),
            parts(&now.document_in(&indexed_text(&chunks[1].chunk), Language::German))
        );
        assert_eq!(made[2].1, None, "nothing to tell it by: the default");
        assert_eq!(
            parts(&made[2].0),
            parts(&english_only().embed_document(&indexed_text(&chunks[2].chunk)))
        );

        // A document mostly in English is analysed in English throughout, the odd chunk
        // that looks German too (a quotation, a misjudged listing).
        let english = "Employees are entitled to thirty days of paid annual leave every calendar year, and unused days expire at the end of March.";
        let chunks = [
            chunk(3, 0, english),
            chunk(3, 1, GERMAN),
            chunk(3, 2, english),
        ];
        let made = now.chunks(&chunks);
        assert!(made.iter().all(|(_, l)| *l == Some(Language::English)));
        assert_eq!(
            parts(&made[1].0),
            parts(&english_only().embed_document(&indexed_text(&chunks[1].chunk)))
        );
    }

    #[test]
    fn chinese_is_cut_into_words() {
        let now = bm25();
        let text = "员工每年享有三十天带薪年假。未使用的假期在次年三月底失效。";
        assert_eq!(Language::detect(text), Some(Language::Chinese));
        let segmented = now.document(text);
        let whole_runs = english_only().embed_document(text);
        assert!(
            segmented.indices.len() > whole_runs.indices.len(),
            "words, not whole clauses: {} vs {}",
            segmented.indices.len(),
            whole_runs.indices.len()
        );
    }

    #[test]
    fn an_unknown_default_language_is_refused() {
        let err = Bm25::new(EdgeBm25Config {
            language: Some("klingon".into()),
            ..Bm25::default_config()
        })
        .err()
        .expect("refused");
        assert!(err.to_string().contains("german"), "{err}");
    }
}
