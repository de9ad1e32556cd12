//! After generation: map the answer's `[n]` markers to sources, drop markers that point at
//! no source, split the answer into sentences, and score how well each sentence is
//! supported by the passages it cites (lexical overlap and embedding similarity).
//! Pure functions; the embeddings come from the caller.
//!
//! Words are compared in the language of the text (the index's own analysis: Qdrant's
//! stop words and stemmer, see [`lectern_vector::text`]); English, and text whose language
//! cannot be told, keep the light English analysis below. A sentence and a passage in two
//! different languages share no words to count: there the embedding alone measures
//! support.

use std::collections::HashSet;

use lectern_api::markers;
pub use lectern_api::query::Sentence;
use lectern_vector::text::{Language, Words};
use unicode_segmentation::UnicodeSegmentation;

/// The answer with markers cleaned: those naming no source removed, the rest written as
/// `[n]`. Returns the text and the distinct source numbers cited, in first-use order.
pub fn clean_markers(answer: &str, sources: usize) -> (String, Vec<usize>) {
    let mut cited = Vec::new();
    let cleaned = markers::rewrite(answer, |numbers| {
        let mut out = String::new();
        for &n in numbers {
            if (1..=sources).contains(&n) {
                if !cited.contains(&n) {
                    cited.push(n);
                }
                out.push_str(&format!("[{n}]"));
            }
        }
        out
    });
    // Removing a marker can leave "word ." or double spaces behind; tidied to a fixed
    // point, so that cleaning a clean answer changes nothing (sentence spans stay true).
    let mut tidy = cleaned;
    loop {
        let next = tidy
            .replace(" .", ".")
            .replace(" ,", ",")
            .replace("  ", " ");
        if next == tidy {
            break;
        }
        tidy = next;
    }
    (tidy.trim().to_owned(), cited)
}

/// Unicode sentence pieces, except that a piece never ends where the sentence plainly goes
/// on:
/// - inside a code span or block: "Edit `~/.gnuplot` first." is one sentence, though its
///   dot looks like a full stop;
/// - inside parentheses or brackets, up to [`MAX_HELD_OPEN`] characters: "(see p. 122)";
/// - after an abbreviation followed by a number: "p. 122", "S. 5", "pp. 4-6", "No. 3" (one
///   letter, a letter doubled, or two letters with a capital first; "it is. 5 more" ends).
///
/// Unicode's rules cut all three, and a citation marker attached at the cut lands inside
/// the reference ("(p. [2] 122)").
fn sentence_pieces(text: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    let mut start = 0;
    let mut at = 0;
    let mut ticks = 0;
    let mut depth = 0usize;
    let pieces: Vec<&str> = text.split_sentence_bounds().collect();
    for (i, piece) in pieces.iter().enumerate() {
        at += piece.len();
        ticks += piece.matches('`').count();
        for c in piece.chars() {
            match c {
                '(' | '[' => depth += 1,
                ')' | ']' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        let held = &text[start..at];
        // A line break ends a sentence whatever was left open (outside code).
        let open = depth > 0 && held.chars().count() < MAX_HELD_OPEN && !held.ends_with('\n');
        let next = pieces.get(i + 1).copied().unwrap_or("");
        if ticks % 2 == 0 && !open && !abbreviation_before_number(held, next) {
            out.push(held);
            start = at;
            ticks = 0;
            depth = 0;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// How long a sentence is held open by a parenthesis that is not closed (a stray one, or a
/// list's "1)", must not join a whole passage into one sentence).
const MAX_HELD_OPEN: usize = 300;

/// `piece` ends with an abbreviation and a full stop ("p.", "pp.", "No.": see
/// [`sentence_pieces`]), and `next` begins with a digit.
fn abbreviation_before_number(piece: &str, next: &str) -> bool {
    let Some(word) = piece.trim_end().strip_suffix('.') else {
        return false;
    };
    let letters: Vec<char> = word
        .chars()
        .rev()
        .take_while(|c| c.is_alphabetic())
        .collect();
    let before = word.chars().rev().nth(letters.len());
    let abbreviation = match letters[..] {
        [_] => true,
        [second, first] => first == second || first.is_uppercase(),
        _ => false,
    };
    abbreviation
        && before.is_none_or(|c| !c.is_alphanumeric())
        && next.trim_start().starts_with(|c: char| c.is_ascii_digit())
}

/// Splits the answer into sentences (Unicode sentence boundaries, never inside code) with
/// their markers. A marker placed after the full stop, as in "... leave. [2] Next",
/// belongs to the sentence before it.
pub fn split_sentences(answer: &str) -> Vec<Sentence> {
    let chars: Vec<char> = answer.chars().collect();
    let text_of = |start: usize, end: usize| -> String { chars[start..end].iter().collect() };
    let mut out: Vec<Sentence> = Vec::new();
    let mut offset = 0; // in chars
    for piece in sentence_pieces(answer) {
        let len = piece.chars().count();
        let mut body = piece;
        let mut body_start = offset;
        if let Some((lead_end, numbers)) = markers::leading(piece)
            && let Some(prev) = out.last_mut()
        {
            for n in numbers {
                if !prev.sources.contains(&n) {
                    prev.sources.push(n);
                }
            }
            let lead_chars = piece[..lead_end].chars().count();
            prev.end = offset + lead_chars;
            prev.text = text_of(prev.start, prev.end);
            body = &piece[lead_end..];
            body_start = offset + lead_chars;
        }
        let trimmed = body.trim();
        if !trimmed.is_empty() {
            let lead = body.chars().take_while(|c| c.is_whitespace()).count();
            let trail = body.chars().rev().take_while(|c| c.is_whitespace()).count();
            let start = body_start + lead;
            let end = body_start + body.chars().count() - trail;
            out.push(Sentence {
                text: text_of(start, end),
                start,
                end,
                sources: markers::cited(trimmed),
                support: 0.0,
                supported: false,
                inferred: false,
            });
        }
        offset += len;
    }
    out
}

const STOPWORDS: &[&str] = &[
    "the",
    "and",
    "for",
    "are",
    "but",
    "not",
    "you",
    "all",
    "any",
    "can",
    "had",
    "her",
    "was",
    "one",
    "our",
    "out",
    "has",
    "have",
    "his",
    "how",
    "its",
    "may",
    "who",
    "did",
    "yes",
    "this",
    "that",
    "with",
    "from",
    "they",
    "will",
    "would",
    "there",
    "their",
    "what",
    "which",
    "when",
    "where",
    "your",
    "into",
    "than",
    "then",
    "them",
    "these",
    "those",
    "been",
    "were",
    "also",
    "such",
    "each",
    "only",
    "some",
    "should",
    "could",
    "about",
    "over",
    "under",
    "more",
    "most",
    "other",
    "does",
    "according",
    "source",
    "sources",
    "document",
    "documents",
];

/// The content words of a text, in its own language when that can be told (see
/// [`words_in`]).
pub fn content_words(text: &str) -> Vec<String> {
    words_in(text, Language::detect(text))
}

/// The content words of a text analysed as `language`'s: lower-cased, three letters or
/// more (or a number), no stop words, stemmed. English, and text of no known language
/// (`None`), keep a short list of stop words (with the words answers use to talk about
/// their sources) and a light plural/inflection trim so "days" meets "day". Other
/// languages: the index's stop words and stemmer. Chinese and Japanese, written without
/// spaces: overlapping pairs of characters, which need no dictionary.
pub fn words_in(text: &str, language: Option<Language>) -> Vec<String> {
    let text = markers::rewrite(text, |_| " ".to_owned());
    let words = text
        .split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase);
    let long_enough = |w: &String| w.chars().count() >= 3 || w.chars().all(|c| c.is_ascii_digit());
    match language {
        None | Some(Language::English) => words
            .filter(long_enough)
            .filter(|w| !w.is_empty() && !STOPWORDS.contains(&w.as_str()))
            .map(|w| stem(&w))
            .collect(),
        Some(language) if language.unspaced() => words
            .filter(|w| !w.is_empty())
            .flat_map(|w| {
                if w.is_ascii() {
                    return if long_enough(&w) { vec![w] } else { Vec::new() };
                }
                let chars: Vec<char> = w.chars().collect();
                if chars.len() == 1 {
                    return vec![w];
                }
                chars
                    .windows(2)
                    .map(|pair| pair.iter().collect::<String>())
                    .collect()
            })
            .collect(),
        Some(language) => {
            let analysis = Words::of(language);
            words
                .filter(long_enough)
                .filter(|w| !w.is_empty() && !analysis.is_stop_word(w))
                .map(|w| analysis.stem(&w))
                .collect()
        }
    }
}

/// Content words made by one analysis, for comparing with other text analysed the same
/// way: a question's words with the passages'.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Terms {
    pub language: Option<Language>,
    pub words: Vec<String>,
}

impl Terms {
    /// The content words of `text`, in its own language when that can be told.
    pub fn of(text: &str) -> Self {
        Self::in_language(text, Language::detect(text))
    }

    /// The content words of a question, in its own language when that can be told, else
    /// in that of `context` (the passages it will be compared with): a question too short
    /// to tell is most likely in the language of what answers it.
    pub fn of_question(question: &str, context: &str) -> Self {
        let language = Language::detect(question).or_else(|| Language::detect(context));
        Self::in_language(question, language)
    }

    fn in_language(text: &str, language: Option<Language>) -> Self {
        Self {
            language,
            words: words_in(text, language),
        }
    }

    /// The content words of `text` in the same analysis.
    pub fn words_of(&self, text: &str) -> Vec<String> {
        words_in(text, self.language)
    }
}

fn stem(word: &str) -> String {
    for suffix in ["ing", "ed", "es", "s"] {
        if word.len() > suffix.len() + 3
            && let Some(stripped) = word.strip_suffix(suffix)
        {
            return stripped.to_owned();
        }
    }
    word.to_owned()
}

/// The share of the sentence's content words found in the passage, both analysed in the
/// sentence's language (the passage's when the sentence's cannot be told).
pub fn lexical_support(sentence: &str, passage: &str) -> f32 {
    let language = Language::detect(sentence).or_else(|| Language::detect(passage));
    overlap(sentence, passage, language)
}

fn overlap(sentence: &str, passage: &str, language: Option<Language>) -> f32 {
    let words = words_in(sentence, language);
    if words.is_empty() {
        return 0.0;
    }
    let passage: HashSet<String> = words_in(passage, language).into_iter().collect();
    let found = words.iter().filter(|w| passage.contains(*w)).count();
    found as f32 / words.len() as f32
}

/// How well a passage supports a sentence, given the similarity of their embeddings:
/// [`support_score`] of their lexical overlap and the similarity. When the two are told to
/// be in different languages, shared words may say nothing (a translation shares none), so
/// the similarity alone counts if it is the higher (with a multilingual embedding model, a
/// faithful translation is close); the words still count when they are shared, since a
/// language told wrongly (a passage of code and commands, a table) must not cost a
/// sentence that copies it its support.
pub fn support(sentence: &str, passage: &str, similarity: f32) -> f32 {
    let (a, b) = (Language::detect(sentence), Language::detect(passage));
    let both = support_score(overlap(sentence, passage, a.or(b)), similarity);
    match (a, b) {
        (Some(a), Some(b)) if a != b => both.max(similarity.max(0.0)),
        _ => both,
    }
}

/// The sentence of `passage` sharing the most content words with `claims`, as a character
/// span of the passage (what a reader should look at); the whole passage when no sentence
/// shares a word.
pub fn best_supporting_span(claims: &[&str], passage: &str) -> (usize, usize) {
    let language = Language::detect(passage).or_else(|| Language::detect(&claims.join(" ")));
    let words: HashSet<String> = claims.iter().flat_map(|c| words_in(c, language)).collect();
    let chars: Vec<char> = passage.chars().collect();
    let mut best = (0usize, 0usize, chars.len());
    for (start, end) in sentence_ranges(passage) {
        let sentence: String = chars[start..end].iter().collect();
        let shared: HashSet<String> = words_in(&sentence, language)
            .into_iter()
            .filter(|w| words.contains(w))
            .collect();
        if shared.len() > best.0 {
            best = (shared.len(), start, end);
        }
    }
    (best.1, best.2)
}

/// A line that holds a number only: a page's running number (or a listing's line number),
/// which is no part of the sentence on the next line.
fn is_number_line(line: &[char]) -> bool {
    line.iter().any(char::is_ascii_digit)
        && line.iter().all(|c| c.is_ascii_digit() || c.is_whitespace())
}

/// A passage's sentences (Unicode sentence boundaries, as [`sentence_pieces`] keeps them):
/// character ranges `[start, end)`,
/// whitespace trimmed, in order. A PDF breaks its lines mid-sentence, and Unicode ends a
/// sentence at every line break, so a single line break is read as a space (the same
/// length, so the ranges stay ranges of `text`); a blank line still ends a sentence, and so
/// does a line that holds a number only (a page's running number is not the start of the
/// page's first sentence).
pub fn sentence_ranges(text: &str) -> Vec<(usize, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let mut line_start = 0;
    let joined: String = chars
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            if c != '\n' {
                return c;
            }
            let lone_break = chars.get(i + 1) != Some(&'\n') && (i == 0 || chars[i - 1] != '\n');
            let line = &chars[line_start..i];
            line_start = i + 1;
            if lone_break && !is_number_line(line) {
                ' '
            } else {
                c
            }
        })
        .collect();
    let mut out = Vec::new();
    let mut offset = 0;
    for piece in sentence_pieces(&joined) {
        let len = piece.chars().count();
        let lead = piece.chars().take_while(|c| c.is_whitespace()).count();
        let trail = piece
            .chars()
            .rev()
            .take_while(|c| c.is_whitespace())
            .count();
        if lead < len {
            out.push((offset + lead, offset + len - trail));
        }
        offset += len;
    }
    out
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// The support score of a sentence by one passage: the mean of lexical overlap and
/// (non-negative) embedding similarity. Lexical overlap catches copied facts and numbers;
/// the embedding catches paraphrase.
pub fn support_score(lexical: f32, similarity: f32) -> f32 {
    0.5 * lexical + 0.5 * similarity.max(0.0)
}

/// Sentences with fewer content words than this carry no claim to check ("Yes.").
pub const MIN_CLAIM_WORDS: usize = 3;

/// Scores each sentence against the passages it cites. `passage_text(n)` and
/// `passage_vector(n)` give source n's text and embedding; `sentence_vectors` are the
/// sentences' embeddings in order. Uncited sentences with a claim are unsupported.
pub fn score_sentences(
    sentences: &mut [Sentence],
    sentence_vectors: &[Vec<f32>],
    passage_text: impl Fn(usize) -> Option<String>,
    passage_vector: impl Fn(usize) -> Option<Vec<f32>>,
    threshold: f32,
) {
    for (sentence, vector) in sentences.iter_mut().zip(sentence_vectors) {
        let claim = content_words(&sentence.text).len() >= MIN_CLAIM_WORDS;
        let best = sentence
            .sources
            .iter()
            .filter_map(|&n| {
                let text = passage_text(n)?;
                let pv = passage_vector(n)?;
                Some(support(&sentence.text, &text, cosine(vector, &pv)))
            })
            .fold(0.0f32, f32::max);
        sentence.support = best;
        sentence.supported = !claim || best >= threshold;
    }
}

/// For sentences with a claim but no marker, finds the source that supports them best;
/// where it reaches `threshold` the sentence is attributed to it (`inferred`) and a marker
/// is written after the sentence. Returns the answer with those markers and the sentences
/// re-split over it, scores kept.
pub fn attribute_uncited(
    answer: &str,
    mut sentences: Vec<Sentence>,
    sentence_vectors: &[Vec<f32>],
    sources: &[(String, Vec<f32>)],
    threshold: f32,
) -> (String, Vec<Sentence>) {
    let chars: Vec<char> = answer.chars().collect();
    let mut out = String::new();
    let mut copied = 0;
    let mut changed = false;
    for (sentence, vector) in sentences.iter_mut().zip(sentence_vectors) {
        if !sentence.sources.is_empty() || content_words(&sentence.text).len() < MIN_CLAIM_WORDS {
            continue;
        }
        let best = sources
            .iter()
            .enumerate()
            .map(|(i, (text, pv))| (i + 1, support(&sentence.text, text, cosine(vector, pv))))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let Some((n, score)) = best else { continue };
        sentence.support = score;
        if score < threshold {
            continue;
        }
        sentence.sources = vec![n];
        sentence.supported = true;
        sentence.inferred = true;
        out.extend(&chars[copied..sentence.end]);
        out.push_str(&format!(" [{n}]"));
        copied = sentence.end;
        changed = true;
    }
    if !changed {
        return (answer.to_owned(), sentences);
    }
    out.extend(&chars[copied..]);
    let mut resplit = split_sentences(&out);
    if resplit.len() == sentences.len() {
        for (new, old) in resplit.iter_mut().zip(&sentences) {
            new.support = old.support;
            new.supported = old.supported;
            new.inferred = old.inferred;
        }
    }
    (out, resplit)
}

/// Phrases with which a model says the sources do not hold the answer: the one it is told
/// to use ([`crate::prompt::NOT_FOUND`]), what models say instead, and both in the
/// languages models most often answer in when they translate it.
pub fn says_not_found(answer: &str) -> bool {
    let a = answer.to_lowercase().replace('\u{2019}', "'");
    [
        "do not contain",
        "does not contain",
        "don't contain",
        "doesn't contain",
        "not found in your documents",
        "not in the provided",
        "not mentioned in the",
        "no information about",
        "cannot find",
        "can't find",
        "could not find",
        "couldn't find",
        "unable to find",
        "i don't know",
        "i do not know",
        "not provided in the",
        "there is no mention",
        // German
        "enthalten die antwort nicht",
        "enthalten keine",
        "enthält keine",
        "enthält die antwort nicht",
        "keine informationen",
        "keine angaben",
        "nicht erwähnt",
        "nicht gefunden",
        "nicht finden",
        "weiß ich nicht",
        "ich weiß es nicht",
        // French
        "ne contiennent pas",
        "ne contient pas",
        "aucune information",
        "pas d'information",
        "ne mentionnent pas",
        "ne mentionne pas",
        "n'est pas mentionné",
        "ne trouve pas",
        "n'ai pas trouvé",
        "je ne sais pas",
        // Spanish
        "no contienen",
        "no contiene",
        "no hay información",
        "ninguna información",
        "no se menciona",
        "no encuentro",
        "no he encontrado",
        "no pude encontrar",
        "no puedo encontrar",
        "no lo sé",
        // Italian, Portuguese, Dutch: the fixed answer as they translate it
        "non contengono",
        "não contêm",
        "bevatten het antwoord niet",
        "bevatten geen",
    ]
    .iter()
    .any(|p| a.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_map_to_sources_and_bad_ones_are_dropped() {
        let (text, cited) = clean_markers(
            "Staff get 30 days [2]. Carry-over is 5 days [1, 2]. Parking is free [7].",
            3,
        );
        assert_eq!(
            text,
            "Staff get 30 days [2]. Carry-over is 5 days [1][2]. Parking is free."
        );
        assert_eq!(cited, vec![2, 1]);

        let (text, cited) = clean_markers("See [Source 3] and [0] and [sources 1; 3].", 3);
        assert_eq!(text, "See [3] and and [1][3].");
        assert_eq!(cited, vec![3, 1]);

        // Cleaning is idempotent, however many markers were removed in a row.
        let (once, _) = clean_markers("Thirty days [7] [8] [9].  Next   [1].", 1);
        assert_eq!(once, "Thirty days. Next [1].");
        assert_eq!(clean_markers(&once, 1).0, once);

        // Brackets that are not markers stay as they are.
        let (text, cited) = clean_markers("Use x[i] or [a-z] here [1].", 1);
        assert_eq!(text, "Use x[i] or [a-z] here [1].");
        assert_eq!(cited, vec![1]);
    }

    #[test]
    fn sentences_keep_their_markers_and_spans() {
        let answer = "Staff get 30 days of leave [1]. Unused days expire in March. [2] Ask HR.";
        let s = split_sentences(answer);
        assert_eq!(s.len(), 3, "{s:#?}");
        assert_eq!(s[0].text, "Staff get 30 days of leave [1].");
        assert_eq!(s[0].sources, vec![1]);
        assert_eq!(s[1].text, "Unused days expire in March. [2]");
        assert_eq!(s[1].sources, vec![2]);
        assert_eq!(s[2].text, "Ask HR.");
        assert!(s[2].sources.is_empty());
        for sentence in &s {
            let span: String = answer
                .chars()
                .skip(sentence.start)
                .take(sentence.end - sentence.start)
                .collect();
            assert_eq!(span, sentence.text);
        }
        // Non-ASCII text: spans are in characters, not bytes.
        let s = split_sentences("Zürich liegt am See [1]. Größe: 88 km² [2].");
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].start, "Zürich liegt am See [1]. ".chars().count());
    }

    #[test]
    fn support_follows_the_words_and_the_meaning() {
        let passage = "Employees are entitled to 30 days of annual leave per calendar year.";
        assert!(lexical_support("Employees get 30 days of annual leave [1].", passage) > 0.7);
        assert!(lexical_support("The cafeteria serves pizza on Fridays.", passage) < 0.2);
        assert_eq!(lexical_support("Yes.", passage), 0.0);
        assert!((support_score(1.0, 1.0) - 1.0).abs() < 1e-6);
        assert_eq!(support_score(0.0, -0.5), 0.0);
        assert!((cosine(&[1.0, 0.0], &[0.0, 1.0])).abs() < 1e-6);
        assert!((cosine(&[1.0, 1.0], &[2.0, 2.0]) - 1.0).abs() < 1e-6);

        let mut s = split_sentences(
            "Employees get 30 days of annual leave [1]. The cafeteria serves pizza on Fridays [1]. Great.",
        );
        let vectors = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![1.0, 0.0]];
        score_sentences(
            &mut s,
            &vectors,
            |n| (n == 1).then(|| passage.to_owned()),
            |n| (n == 1).then(|| vec![1.0, 0.0]),
            0.5,
        );
        assert!(s[0].supported && s[0].support > 0.8, "{:?}", s[0]);
        assert!(!s[1].supported && s[1].support < 0.3, "{:?}", s[1]);
        assert!(s[2].supported, "no claim to check: {:?}", s[2]);
    }

    #[test]
    fn uncited_claims_are_attributed_to_the_source_that_supports_them() {
        let answer = "Employees get 30 days of annual leave. Flights under six hours are economy [2]. Hello there.";
        let sentences = split_sentences(answer);
        let vectors = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![0.5, 0.5]];
        let sources = vec![
            (
                "Employees are entitled to 30 days of annual leave.".to_owned(),
                vec![1.0, 0.0],
            ),
            (
                "Economy class is booked for flights under six hours.".to_owned(),
                vec![0.0, 1.0],
            ),
        ];
        let (text, s) = attribute_uncited(answer, sentences, &vectors, &sources, 0.5);
        assert_eq!(
            text,
            "Employees get 30 days of annual leave. [1] Flights under six hours are economy [2]. Hello there."
        );
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].sources, vec![1]);
        assert!(s[0].inferred && s[0].supported);
        assert_eq!(s[1].sources, vec![2]);
        assert!(!s[1].inferred);
        assert!(
            s[2].sources.is_empty(),
            "nothing to attribute a greeting to"
        );

        // Below the threshold nothing is attributed.
        let sentences = split_sentences("The moon is made of cheese entirely.");
        let (text, s) = attribute_uncited(
            "The moon is made of cheese entirely.",
            sentences,
            &[vec![0.0, 1.0]],
            &sources[..1],
            0.5,
        );
        assert_eq!(text, "The moon is made of cheese entirely.");
        assert!(s[0].sources.is_empty() && !s[0].inferred);
    }

    #[test]
    fn the_supporting_sentence_of_a_passage_is_found() {
        let passage = "Staff may work remotely. Annual leave is 25 days per year, taken in agreement with the manager. Sick leave needs a note.";
        let (start, end) =
            best_supporting_span(&["Employees get 25 days of annual leave [1]."], passage);
        let span: String = passage.chars().skip(start).take(end - start).collect();
        assert_eq!(
            span,
            "Annual leave is 25 days per year, taken in agreement with the manager."
        );
        // Nothing shared: the whole passage.
        assert_eq!(
            best_supporting_span(&["Unrelated words"], passage),
            (0, passage.chars().count())
        );
    }

    /// The text of each of [`sentence_ranges`].
    fn sentences_of(text: &str) -> Vec<String> {
        sentence_ranges(text)
            .into_iter()
            .map(|(a, b)| text.chars().skip(a).take(b - a).collect())
            .collect()
    }

    #[test]
    fn references_and_parentheses_do_not_end_sentences() {
        let answer = "Use set samples to change it (see plot sampling, p. 122). The default is 100 [2]. Set it per plot (rarely needed.\nOr not) [1].";
        let got: Vec<String> = split_sentences(answer)
            .into_iter()
            .map(|s| s.text)
            .collect();
        assert_eq!(
            got,
            [
                "Use set samples to change it (see plot sampling, p. 122).",
                "The default is 100 [2].",
                "Set it per plot (rarely needed.",
                "Or not) [1].",
            ]
        );
        // A passage's sentences, by the same rules; "It is." is no abbreviation.
        let passage = "See S. 12 and pp. 4-6 of the guide. It is at No. 3 (in part. Mostly) here. It is. 5 Rules follow.";
        assert_eq!(
            sentences_of(passage),
            [
                "See S. 12 and pp. 4-6 of the guide.",
                "It is at No. 3 (in part. Mostly) here.",
                "It is.",
                "5 Rules follow."
            ]
        );
        // A stray parenthesis holds a sentence open only so long.
        let stray = format!("1) {} Next one.", "Words go on. ".repeat(40));
        assert!(sentence_ranges(&stray).len() > 5);
    }

    #[test]
    fn a_pdfs_line_breaks_do_not_end_sentences_but_blank_lines_do() {
        let text = "Figures are set to the width of the column in\nwhich they are placed. In two-column\nmode, a figure is narrow.\n\nTables\nspan pages.";
        assert_eq!(
            sentences_of("17\nThe ruledtabular environment draws\nthe rules. See\n100 samples."),
            [
                "17",
                "The ruledtabular environment draws\nthe rules.",
                "See\n100 samples."
            ],
            "a page's number is no part of its first sentence"
        );
        assert_eq!(
            sentences_of(text),
            [
                "Figures are set to the width of the column in\nwhich they are placed.",
                "In two-column\nmode, a figure is narrow.",
                "Tables\nspan pages.",
            ]
        );
    }

    const GERMAN_PASSAGE: &str = "Alle Mitarbeiter haben Anspruch auf dreißig Urlaubstagen im Kalenderjahr. Nicht genommener Urlaub verfällt Ende März des folgenden Jahres.";

    #[test]
    fn german_support_is_measured_with_german_words() {
        assert_eq!(Language::detect(GERMAN_PASSAGE), Some(Language::German));
        let supported = "Die Mitarbeiter erhalten dreißig Urlaubstage im Kalenderjahr [1].";
        let unsupported = "Die Kantine serviert freitags immer eine frische Pizza mit Salat [1].";
        assert!(
            lexical_support(supported, GERMAN_PASSAGE) > 0.7,
            "{}",
            lexical_support(supported, GERMAN_PASSAGE)
        );
        assert!(lexical_support(unsupported, GERMAN_PASSAGE) < 0.2);
        // German stems meet "Urlaubstage" and "Urlaubstagen", and "die" is no content
        // word: the English analysis sees less of the support.
        assert!(
            overlap(supported, GERMAN_PASSAGE, Some(Language::German))
                > overlap(supported, GERMAN_PASSAGE, None)
        );

        let mut s = split_sentences(&format!("{supported} {unsupported}"));
        score_sentences(
            &mut s,
            &[vec![1.0, 0.0], vec![0.0, 1.0]],
            |n| (n == 1).then(|| GERMAN_PASSAGE.to_owned()),
            |n| (n == 1).then(|| vec![1.0, 0.0]),
            0.5,
        );
        assert!(s[0].supported && s[0].support > 0.8, "{:?}", s[0]);
        assert!(!s[1].supported && s[1].support < 0.3, "{:?}", s[1]);
    }

    #[test]
    fn spanish_support_is_measured_with_spanish_words() {
        let passage = "Los empleados tienen derecho a treinta días de vacaciones pagadas por cada año de servicio.";
        assert_eq!(Language::detect(passage), Some(Language::Spanish));
        let supported = "Cada empleado tiene treinta días de vacaciones pagadas al año [1].";
        let unsupported = "La cafetería sirve pizza los viernes por la tarde [1].";
        assert!(
            lexical_support(supported, passage) > 0.7,
            "{}",
            lexical_support(supported, passage)
        );
        assert!(lexical_support(unsupported, passage) < 0.2);
        // "los", "de", "por": stop words, never content.
        let words = content_words(passage);
        assert!(!words.iter().any(|w| w == "los" || w == "por"), "{words:?}");
    }

    #[test]
    fn support_is_found_in_a_non_latin_script() {
        let passage = "Сотрудники имеют право на тридцать дней оплачиваемого отпуска в каждом календарном году.";
        assert_eq!(Language::detect(passage), Some(Language::Russian));
        let supported = "Каждый сотрудник получает тридцать дней оплачиваемого отпуска в году [1].";
        let unsupported = "Столовая подаёт пиццу по пятницам вечером [1].";
        assert!(
            lexical_support(supported, passage) > 0.6,
            "{}",
            lexical_support(supported, passage)
        );
        assert!(lexical_support(unsupported, passage) < 0.2);

        // Chinese, written without spaces: pairs of characters.
        let chinese = "根据规定，员工每年享有三十天带薪年假。";
        assert!(
            words_in("员工每年享有三十天年假", Some(Language::Chinese))
                .contains(&"年假".to_owned())
        );
        assert!(lexical_support("员工每年享有三十天年假。", chinese) > 0.7);
        assert!(lexical_support("食堂每周五供应披萨。", chinese) < 0.2);
    }

    #[test]
    fn across_languages_the_embedding_alone_measures_support() {
        let english = "Employees get thirty days of paid annual leave every calendar year [1].";
        assert_eq!(Language::detect(english), Some(Language::English));
        assert!((support(english, GERMAN_PASSAGE, 0.8) - 0.8).abs() < 1e-6);
        assert!(support(english, GERMAN_PASSAGE, -0.3) < 0.05);
        // A passage told to be in another language that holds the sentence's own words
        // (code, a quoted command, a table): the shared words count.
        let mixed = format!(
            "{GERMAN_PASSAGE} Die Regel lautet: Employees get thirty days of paid annual leave every calendar year."
        );
        assert_eq!(Language::detect(&mixed), Some(Language::German));
        assert!(
            support(english, &mixed, 0.2) > 0.5,
            "{}",
            support(english, &mixed, 0.2)
        );
        let passage =
            "Employees are entitled to thirty days of paid annual leave per calendar year.";
        assert!(
            (support(english, passage, 0.8)
                - support_score(lexical_support(english, passage), 0.8))
            .abs()
                < 1e-6,
            "one language: words and meaning"
        );
        // English keeps its analysis, whether told or not.
        assert_eq!(
            words_in(english, Some(Language::English)),
            words_in(english, None)
        );
    }

    #[test]
    fn refusals_in_other_languages_are_recognised() {
        for refusal in [
            "Die Dokumente enthalten keine Informationen über Parkplätze.",
            "Les documents ne contiennent pas la réponse.",
            "Je ne trouve pas cette information dans les documents.",
            "Los documentos no contienen información sobre el aparcamiento.",
            "No se menciona en los documentos.",
        ] {
            assert!(says_not_found(refusal), "{refusal}");
        }
        assert!(!says_not_found(
            "Die Mitarbeiter erhalten dreißig Urlaubstage im Jahr [1]."
        ));
        assert!(!says_not_found(
            "Los empleados tienen treinta días de vacaciones [1]."
        ));
    }

    #[test]
    fn refusals_are_recognised() {
        assert!(says_not_found(
            "The provided sources do not contain information about parking."
        ));
        assert!(says_not_found("I cannot find this in the documents."));
        assert!(!says_not_found("Staff get 30 days of annual leave [1]."));
    }

    #[test]
    fn a_dot_inside_code_does_not_end_a_sentence_and_markers_stay_outside_code() {
        let answer =
            "Put your settings in `~/.gnuplot` in your home directory. Then run `gnuplot`.";
        let sentences = split_sentences(answer);
        assert_eq!(sentences.len(), 2, "{sentences:?}");
        assert!(
            sentences[0].text.ends_with("home directory."),
            "{sentences:?}"
        );
        // An uncited sentence attributed to its source gets its marker after the code.
        let sources = vec![(
            "Settings are read from ~/.gnuplot in the home directory.".to_owned(),
            vec![1.0, 0.0],
        )];
        let vectors = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
        let (text, _) = attribute_uncited(answer, sentences, &vectors, &sources, 0.3);
        let code_spans: Vec<&str> = text.split('`').skip(1).step_by(2).collect();
        assert!(
            code_spans.iter().all(|c| !c.contains('[')),
            "no marker inside code: {text}"
        );
        assert!(text.contains("home directory. [1]"), "{text}");
    }
}
