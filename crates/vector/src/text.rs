//! Text analysis by language, shared by the index's BM25 ([`crate::Bm25`]) and the query
//! service's citation check, so that both agree on what a word is: the language of a text
//! (told by whatlang, and only when it can be told reliably), and per language Qdrant's own
//! stop words and the Snowball stemmer Qdrant stems with.

use std::sync::LazyLock;

use qdrant_edge::bm25_embed::{EdgeBm25, EdgeBm25Config};
use qdrant_rust_stemmers::{Algorithm, Stemmer};

/// Letters below which the language of text in a script that many languages share (Latin,
/// Cyrillic, Arabic, Devanagari) is not told: a short question of four or five words.
const MIN_LETTERS: usize = 24;

/// A language Lectern analyses text in: each has Qdrant's stop words, most a Snowball
/// stemmer. Text in any other language is analysed in the configured default language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    Arabic,
    Azerbaijani,
    Bengali,
    Catalan,
    Chinese,
    Danish,
    Dutch,
    English,
    Finnish,
    French,
    German,
    Greek,
    Hebrew,
    Hungarian,
    Indonesian,
    Italian,
    Japanese,
    Nepali,
    Norwegian,
    Portuguese,
    Romanian,
    Russian,
    Slovene,
    Spanish,
    Swedish,
    Turkish,
}

impl Language {
    pub const ALL: [Language; 26] = [
        Self::Arabic,
        Self::Azerbaijani,
        Self::Bengali,
        Self::Catalan,
        Self::Chinese,
        Self::Danish,
        Self::Dutch,
        Self::English,
        Self::Finnish,
        Self::French,
        Self::German,
        Self::Greek,
        Self::Hebrew,
        Self::Hungarian,
        Self::Indonesian,
        Self::Italian,
        Self::Japanese,
        Self::Nepali,
        Self::Norwegian,
        Self::Portuguese,
        Self::Romanian,
        Self::Russian,
        Self::Slovene,
        Self::Spanish,
        Self::Swedish,
        Self::Turkish,
    ];

    /// Qdrant's name of the language (`EdgeBm25Config::language`), which is also how
    /// settings and the index's payload name it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Arabic => "arabic",
            Self::Azerbaijani => "azerbaijani",
            Self::Bengali => "bengali",
            Self::Catalan => "catalan",
            Self::Chinese => "chinese",
            Self::Danish => "danish",
            Self::Dutch => "dutch",
            Self::English => "english",
            Self::Finnish => "finnish",
            Self::French => "french",
            Self::German => "german",
            Self::Greek => "greek",
            Self::Hebrew => "hebrew",
            Self::Hungarian => "hungarian",
            Self::Indonesian => "indonesian",
            Self::Italian => "italian",
            Self::Japanese => "japanese",
            Self::Nepali => "nepali",
            Self::Norwegian => "norwegian",
            Self::Portuguese => "portuguese",
            Self::Romanian => "romanian",
            Self::Russian => "russian",
            Self::Slovene => "slovene",
            Self::Spanish => "spanish",
            Self::Swedish => "swedish",
            Self::Turkish => "turkish",
        }
    }

    /// The language of a name as [`Language::name`] gives it (any case).
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|l| l.name() == name)
    }

    /// Every name, for messages that list them.
    pub fn names() -> String {
        Self::ALL.map(Self::name).join(", ")
    }

    /// The language of `text` when it can be told reliably and is one Lectern analyses;
    /// `None` for short, mixed or ambiguous text (a heading, a table row, "Yes."). Costs
    /// microseconds for a question, a fraction of a millisecond for a chunk.
    pub fn detect(text: &str) -> Option<Self> {
        let info = whatlang::detect(text)?;
        // Trigram statistics of a few words can look decisive and be wrong ("Table 3"):
        // in a script that many languages share, too little text tells nothing.
        let shared_script = matches!(
            info.script(),
            whatlang::Script::Latin
                | whatlang::Script::Cyrillic
                | whatlang::Script::Arabic
                | whatlang::Script::Devanagari
        );
        if !info.is_reliable()
            || (shared_script && text.chars().filter(|c| c.is_alphabetic()).count() < MIN_LETTERS)
        {
            return None;
        }
        Self::from_whatlang(info.lang())
    }

    /// The likeliest language of `text`, however little there is to tell it by: only for
    /// decisions that a wrong guess makes no worse than no guess.
    pub fn guess(text: &str) -> Option<Self> {
        whatlang::detect(text).and_then(|info| Self::from_whatlang(info.lang()))
    }

    fn from_whatlang(lang: whatlang::Lang) -> Option<Self> {
        use whatlang::Lang as W;
        Some(match lang {
            W::Ara => Self::Arabic,
            W::Aze => Self::Azerbaijani,
            W::Ben => Self::Bengali,
            W::Cat => Self::Catalan,
            W::Cmn => Self::Chinese,
            W::Dan => Self::Danish,
            W::Nld => Self::Dutch,
            W::Eng => Self::English,
            W::Fin => Self::Finnish,
            W::Fra => Self::French,
            W::Deu => Self::German,
            W::Ell => Self::Greek,
            W::Heb => Self::Hebrew,
            W::Hun => Self::Hungarian,
            W::Ind => Self::Indonesian,
            W::Ita => Self::Italian,
            W::Jpn => Self::Japanese,
            W::Nep => Self::Nepali,
            W::Nob => Self::Norwegian,
            W::Por => Self::Portuguese,
            W::Ron => Self::Romanian,
            W::Rus => Self::Russian,
            W::Slv => Self::Slovene,
            W::Spa => Self::Spanish,
            W::Swe => Self::Swedish,
            W::Tur => Self::Turkish,
            _ => return None,
        })
    }

    /// The Snowball stemmer of the language, where there is one (Qdrant's default
    /// stemmer for it).
    pub fn stemmer(self) -> Option<Algorithm> {
        Some(match self {
            Self::Arabic => Algorithm::Arabic,
            Self::Danish => Algorithm::Danish,
            Self::Dutch => Algorithm::Dutch,
            Self::English => Algorithm::English,
            Self::Finnish => Algorithm::Finnish,
            Self::French => Algorithm::French,
            Self::German => Algorithm::German,
            Self::Greek => Algorithm::Greek,
            Self::Hungarian => Algorithm::Hungarian,
            Self::Italian => Algorithm::Italian,
            Self::Norwegian => Algorithm::Norwegian,
            Self::Portuguese => Algorithm::Portuguese,
            Self::Romanian => Algorithm::Romanian,
            Self::Russian => Algorithm::Russian,
            Self::Spanish => Algorithm::Spanish,
            Self::Swedish => Algorithm::Swedish,
            Self::Turkish => Algorithm::Turkish,
            _ => return None,
        })
    }

    /// Written without spaces between words: its words are found by Qdrant's
    /// multilingual tokenizer (a dictionary segmenter), not at spaces and punctuation.
    pub fn unspaced(self) -> bool {
        matches!(self, Self::Chinese | Self::Japanese)
    }

    /// Capitalises every noun, so that a capital letter does not mark a name.
    pub fn capitalises_nouns(self) -> bool {
        self == Self::German
    }
}

/// A language's stop words and stems, as Qdrant's BM25 makes them for the index.
pub struct Words {
    /// The language's BM25 analysis: a word of which it keeps nothing is a stop word.
    /// Asking it keeps the lists Qdrant's (the index drops exactly these words). `None`
    /// where this version of qdrant-edge does not know the language: no stop words.
    analysis: Option<EdgeBm25>,
    stemmer: Option<Stemmer>,
}

static WORDS: LazyLock<Vec<(Language, Words)>> = LazyLock::new(|| {
    Language::ALL
        .into_iter()
        .map(|language| (language, Words::new(language)))
        .collect()
});

impl Words {
    fn new(language: Language) -> Self {
        let analysis = EdgeBm25::new(EdgeBm25Config {
            language: Some(language.name().into()),
            ..Default::default()
        })
        .ok();
        Self {
            analysis,
            stemmer: language.stemmer().map(Stemmer::create),
        }
    }

    /// The words of `language`, made once per process.
    pub fn of(language: Language) -> &'static Words {
        let (_, words) = WORDS
            .iter()
            .find(|(l, _)| *l == language)
            .expect("every language has its words");
        words
    }

    /// Whether `word` (one lower-case word) is one of the language's stop words.
    pub fn is_stop_word(&self, word: &str) -> bool {
        self.analysis
            .as_ref()
            .is_some_and(|bm25| bm25.embed_query(word).indices.is_empty())
    }

    /// `word` (lower case) stemmed as the index stems it; as it is without a stemmer.
    pub fn stem(&self, word: &str) -> String {
        match &self.stemmer {
            Some(stemmer) => stemmer.stem(word).to_string(),
            None => word.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_are_told_only_when_they_can_be() {
        assert_eq!(
            Language::detect(
                "Die Mitarbeiter haben Anspruch auf dreißig Tage Urlaub im Jahr, der bis zum März des folgenden Jahres genommen werden muss."
            ),
            Some(Language::German)
        );
        assert_eq!(
            Language::detect(
                "Los empleados tienen derecho a treinta días de vacaciones al año, que deben tomarse antes de marzo del año siguiente."
            ),
            Some(Language::Spanish)
        );
        assert_eq!(
            Language::detect(
                "Οι υπάλληλοι δικαιούνται τριάντα ημέρες άδειας τον χρόνο, που πρέπει να ληφθούν έως τον Μάρτιο."
            ),
            Some(Language::Greek)
        );
        assert_eq!(
            Language::detect(
                "Employees are entitled to thirty days of annual leave, which must be taken before March of the following year."
            ),
            Some(Language::English)
        );
        assert_eq!(
            Language::detect("12 345 | 7.5"),
            None,
            "no words to tell it by"
        );
        assert_eq!(Language::detect("Table 3. Rates"), None, "too few letters");
        assert_eq!(
            Language::detect("Ημέρες άδειας"),
            Some(Language::Greek),
            "a script of one language tells it at once"
        );
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for language in Language::ALL {
            assert_eq!(Language::from_name(language.name()), Some(language));
        }
        assert_eq!(Language::from_name(" German "), Some(Language::German));
        assert_eq!(Language::from_name("klingon"), None);
        assert!(Language::names().starts_with("arabic, azerbaijani"));
    }

    #[test]
    fn stop_words_and_stems_are_the_index_s() {
        let german = Words::of(Language::German);
        for stop in ["der", "und", "nicht", "werden"] {
            assert!(german.is_stop_word(stop), "{stop}");
        }
        assert!(!german.is_stop_word("urlaub"));
        assert_eq!(german.stem("urlaubstage"), german.stem("urlaubstagen"));

        let spanish = Words::of(Language::Spanish);
        assert!(spanish.is_stop_word("los") && spanish.is_stop_word("que"));
        assert_eq!(spanish.stem("empleados"), spanish.stem("empleado"));

        let russian = Words::of(Language::Russian);
        assert!(russian.is_stop_word("и"));
        assert_eq!(russian.stem("отпуска"), russian.stem("отпуск"));

        // Without a stemmer, a word stays as it is.
        assert_eq!(Words::of(Language::Hebrew).stem("חופשה"), "חופשה");
    }
}
