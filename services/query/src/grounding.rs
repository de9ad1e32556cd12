//! Abstention from evidence, not only from the model's words: an answer's sentences are
//! kept only when the sources carry them, and whether the documents hold an answer at all
//! is judged from measurable evidence (how much of the question the best passages cover,
//! how close they are), combined with the model's own refusal.

use lectern_api::markers;
use lectern_vector::text::Language;

use crate::cite::{MIN_CLAIM_WORDS, Sentence, Terms, content_words};
use crate::retrieve::Passage;

/// The terms of a sentence that must come from somewhere: numbers and anything with a
/// digit, command-like tokens (`--flag`, `file.ext`, `a_b`, `x=1`), code in backticks, and
/// names (capitalised words past the first, and words in capitals). Lower-cased. In a
/// language that capitalises every noun (German) a capital marks no name: there only
/// words in capitals or of mixed case count as names ("GNUTERM", "macOS"), or every noun
/// would have to appear in the sources as written, and an inflected one would not.
pub fn key_terms(sentence: &str) -> Vec<String> {
    let text = markers::rewrite(sentence, |_| " ".to_owned());
    // Only a language told reliably: a German sentence not told checks more terms (as
    // before), but an English one guessed German ("Contact Hans Müller in Berlin.") would
    // check fewer, and let an invented name through.
    let capitals_mark_names = !Language::detect(&text).is_some_and(Language::capitalises_nouns);
    let mut out: Vec<String> = Vec::new();
    let mut push = |t: &str| {
        let t = comparable(t.trim());
        if !t.is_empty() && !out.contains(&t) {
            out.push(t);
        }
    };
    // Code spans, as written.
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            push(part);
        }
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    for (i, raw) in words.iter().enumerate() {
        let w = raw.trim_matches(|c: char| {
            !(c.is_alphanumeric() || "-_./=@#$%+~".contains(c)) || c == '.'
        });
        let w = w.trim_end_matches(['.', ',', ';', ':']);
        if w.chars().count() < 2 && !w.chars().any(|c| c.is_ascii_digit()) {
            continue;
        }
        let has_digit = w.chars().any(|c| c.is_ascii_digit());
        let inner = w.chars().skip(1).collect::<String>();
        let code_like = inner.contains(['_', '/', '=', '@', '#', '$', '%', '\\'])
            || w.starts_with("--")
            || (w.starts_with('-')
                && w.len() > 1
                && w.chars().nth(1).is_some_and(char::is_alphabetic))
            || (inner.contains('.') && !w.ends_with('.'));
        // After a sentence's end, also behind a closing quote or bracket (`."`, `?)`).
        let first = i == 0
            || words[i - 1]
                .trim_end_matches(['"', '\'', ')', ']', '\u{201d}', '\u{2019}', '\u{bb}'])
                .ends_with(['.', ':', '!', '?']);
        let letters: Vec<char> = w.chars().filter(|c| c.is_alphabetic()).collect();
        let capitalised = letters.first().is_some_and(|c| c.is_uppercase());
        let all_caps = letters.len() >= 2 && letters.iter().all(|c| c.is_uppercase());
        let mixed = letters.iter().skip(1).any(|c| c.is_uppercase());
        let name = capitals_mark_names && capitalised && !first && w != "I";
        if has_digit || code_like || all_caps || mixed || name {
            push(w);
        }
    }
    out
}

/// Text as terms are compared: lower case, typographic quotes and dashes as their ASCII
/// forms, runs of white space as one space. PDFs typeset code with curly quotes
/// (`set decimalsign ’,’`) and break it across lines, while a model writes it plainly.
pub fn comparable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = match c {
            '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' | '`' => '\'',
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' => '"',
            '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2212}' => '-',
            c if c.is_whitespace() => ' ',
            c => c,
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.extend(c.to_lowercase());
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// Whether a term is in the sources (both in [`comparable`] form).
fn found(term: &str, sources: &str) -> bool {
    if sources.contains(term) {
        return true;
    }
    // "days" for "day", "25%" for "25 %": compare without trailing punctuation and a plural s.
    let stem = term.trim_end_matches(['s', '%', ')']);
    stem.chars().count() >= 2 && sources.contains(stem)
}

/// The key terms of `sentence` that appear in none of the sources (`sources` in
/// [`comparable`] form).
pub fn missing_terms(sentence: &str, sources: &str) -> Vec<String> {
    key_terms(sentence)
        .into_iter()
        .filter(|t| !found(t, sources))
        .collect()
}

/// The draft with the sentences the sources do not carry left out.
#[derive(Debug, Clone)]
pub struct Grounded {
    pub text: String,
    pub sentences: Vec<Sentence>,
    /// Sentences with a claim that stayed.
    pub kept: usize,
    /// Sentences with a claim that were left out.
    pub dropped: usize,
}

/// A draft is no answer when at least this many of its sentences were left out...
const MOSTLY_DROPPED_MIN: usize = 3;
/// ... and at least this many times as many as were kept.
const MOSTLY_DROPPED_RATIO: usize = 3;

impl Grounded {
    /// Whether anything that answers is left: a sentence with a claim kept, and the draft
    /// not mostly left out. A draft three quarters of which no source carries (at least
    /// three sentences) was written from the model's own knowledge, and the sentence or
    /// two that happen to match a passage are its generic remnants, not an answer (seen
    /// on questions the documents do not answer; EVALUATION). Fewer left out (one or two
    /// of a short draft), and what stays is an answer with a notice.
    pub fn answers(&self) -> bool {
        self.kept > 0
            && !(self.dropped >= MOSTLY_DROPPED_MIN
                && self.dropped >= MOSTLY_DROPPED_RATIO * self.kept)
    }
}

impl Grounded {
    /// Whether every sentence kept with a claim only restates the question: the place
    /// of the answer left empty (the words before its citation end in a word without
    /// content: "... is [3].") and its content words and key terms all the question's
    /// own, in the question's analysis ("The style file used for author/year citations is
    /// [3]."). Such a draft tells the user nothing they did not say, in any language. An
    /// answer to a yes-or-no question repeats the question's words too, but it ends on
    /// one of them ("Visitors park for free on weekends [1].").
    pub fn restates(&self, question: &str, question_terms: &Terms) -> bool {
        let asked = comparable(question);
        let mut claims = self
            .sentences
            .iter()
            .filter(|s| content_words(&s.text).len() >= MIN_CLAIM_WORDS && !is_lead_in(&s.text))
            .peekable();
        claims.peek().is_some()
            && claims.all(|s| {
                answer_slot_empty(&s.text, question_terms)
                    && question_terms
                        .words_of(&s.text)
                        .iter()
                        .all(|w| question_terms.words.iter().any(|q| same_word(w, q)))
                    && key_terms(&s.text).iter().all(|t| found(t, &asked))
            })
    }
}

/// Two content words that are one word's forms ("used" and "use", "wählte" and "wählt"),
/// where a light stemmer leaves them apart: one begins with the other, three letters or
/// more. Numbers only as written.
fn same_word(a: &str, b: &str) -> bool {
    let (short, long) = if a.chars().count() <= b.chars().count() {
        (a, b)
    } else {
        (b, a)
    };
    short == long
        || (short.chars().count() >= 3
            && !short.chars().any(|c| c.is_ascii_digit())
            && long.starts_with(short))
}

/// Whether the words before a sentence's first citation end in a word without content
/// in the question's analysis (a stop word, or a word too short to count): the place an
/// answer would fill is empty.
fn answer_slot_empty(sentence: &str, question_terms: &Terms) -> bool {
    use lectern_api::markers::Segment;
    let before: String = lectern_api::markers::segments(sentence)
        .iter()
        .map_while(|s| match s {
            Segment::Text(t) => Some(*t),
            _ => None,
        })
        .collect();
    before
        .trim_end_matches(|c: char| !c.is_alphanumeric())
        .split_whitespace()
        .last()
        .is_some_and(|last| question_terms.words_of(last).is_empty())
}

/// A sentence that announces what follows it (ends with a colon, markers aside).
fn is_lead_in(sentence: &str) -> bool {
    lectern_api::markers::segments(sentence)
        .iter()
        .filter_map(|s| match s {
            lectern_api::markers::Segment::Text(t) => Some(*t),
            _ => None,
        })
        .collect::<String>()
        .trim_end()
        .ends_with(':')
}

/// A Markdown list item's mark: `-`, `*`, `+`, `•`, or a number with `.` or `)`.
fn is_list_mark(mark: &str) -> bool {
    matches!(mark, "-" | "*" | "+" | "•")
        || mark
            .strip_suffix(['.', ')'])
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// Leaves out every sentence with a claim that cites no source (after attribution) or
/// names a term that no source holds; the rest keeps its text, markers and scores.
pub fn keep_grounded(answer: &str, sentences: Vec<Sentence>, sources: &[Passage]) -> Grounded {
    let sources_lower = sources
        .iter()
        .map(|p| comparable(&p.text))
        .collect::<Vec<_>>()
        .join("\n");
    let chars: Vec<char> = answer.chars().collect();
    let mut text = String::new();
    let mut kept_sentences = Vec::new();
    let (mut kept, mut dropped) = (0, 0);
    let mut at = 0;
    // A list mark the splitter made a sentence of ("1."), held until the item after it
    // is kept (then it is written) or left out (then it goes too: no empty items).
    let mut mark: Option<(String, Sentence)> = None;
    let keep =
        |text: &mut String, kept_sentences: &mut Vec<Sentence>, gap: &str, mut s: Sentence| {
            text.push_str(gap);
            let start = text.chars().count();
            text.extend(&chars[s.start..s.end]);
            s.end = start + (s.end - s.start);
            s.start = start;
            kept_sentences.push(s);
        };
    for s in sentences {
        let claim = content_words(&s.text).len() >= MIN_CLAIM_WORDS;
        let ungrounded =
            claim && (s.sources.is_empty() || !missing_terms(&s.text, &sources_lower).is_empty());
        // What lies between sentences (spaces, line breaks) is kept.
        let gap: String = chars[at.min(s.start)..s.start].iter().collect();
        at = s.end;
        if !claim && is_list_mark(s.text.trim()) {
            if let Some((gap, held)) = mark.replace((gap, s)) {
                keep(&mut text, &mut kept_sentences, &gap, held);
            }
            continue;
        }
        if ungrounded {
            match mark.take() {
                Some((before_mark, _)) => text.push_str(&before_mark),
                None => {
                    // A mark written into the gap ("- ") goes with its item too.
                    let line = gap.rfind('\n').map_or(0, |i| i + 1);
                    let inline_mark = is_list_mark(gap[line..].trim());
                    text.push_str(if inline_mark { &gap[..line] } else { &gap });
                    // A lead-in right before it ("add this line to your preamble:")
                    // announced it, and would point at nothing: it goes too.
                    let list_item = s.text.split_whitespace().next().is_some_and(is_list_mark);
                    if !inline_mark
                        && !list_item
                        && let Some(last) = kept_sentences.last()
                        && is_lead_in(&last.text)
                        && text.chars().skip(last.end).all(char::is_whitespace)
                    {
                        text = text.chars().take(last.start).collect::<String>();
                        text.truncate(text.trim_end().len());
                        kept_sentences.pop();
                    }
                }
            }
            dropped += 1;
            continue;
        }
        if let Some((before_mark, held)) = mark.take() {
            keep(&mut text, &mut kept_sentences, &before_mark, held);
        }
        // A lead-in ("To do it, follow these steps:") is kept as text but is no answer by
        // itself: a draft whose steps were all left out is not an answer.
        kept += usize::from(claim && !is_lead_in(&s.text));
        keep(&mut text, &mut kept_sentences, &gap, s);
    }
    if let Some((before_mark, held)) = mark.take() {
        keep(&mut text, &mut kept_sentences, &before_mark, held);
    }
    text.extend(&chars[at.min(chars.len())..]);
    // A lead-in left last ("Here is how:") announces what was left out: it goes too.
    while kept_sentences.len() > 1
        && let Some(last) = kept_sentences.last()
        && is_lead_in(&last.text)
        && text.chars().skip(last.end).all(char::is_whitespace)
    {
        text = text.chars().take(last.start).collect();
        kept_sentences.pop();
    }
    // Spans stay true after trimming only if nothing before the first sentence is cut.
    let lead = text.chars().take_while(|c| c.is_whitespace()).count();
    let text: String = text.trim().to_owned();
    for s in &mut kept_sentences {
        s.start -= lead.min(s.start);
        s.end -= lead.min(s.end);
    }
    Grounded {
        text,
        sentences: kept_sentences,
        kept,
        dropped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_terms_are_names_numbers_and_commands() {
        let t = key_terms("Set GNUTERM to `qt` and run gnuplot -e \"a=2\" with 30 days [1].");
        for want in ["gnuterm", "qt", "-e", "30"] {
            assert!(t.contains(&want.to_owned()), "{want} in {t:?}");
        }
        assert!(
            !t.contains(&"set".to_owned()),
            "the first word is not a name: {t:?}"
        );
        assert!(!t.contains(&"1".to_owned()), "markers are not terms: {t:?}");
        assert!(key_terms("Use the default settings.").is_empty());
    }

    #[test]
    fn german_nouns_are_not_taken_for_names() {
        let answer = "Die Mitarbeiter erhalten jedes Jahr dreißig Urlaubstage, die der Vorgesetzte genehmigt [1].";
        assert!(key_terms(answer).is_empty(), "{:?}", key_terms(answer));
        // What marks a name in any language still does.
        let t = key_terms(
            "Die Umgebungsvariable GNUTERM wählt unter macOS das Terminal aus, seit der Version 5.4 [1].",
        );
        for want in ["gnuterm", "macos", "5.4"] {
            assert!(t.contains(&want.to_owned()), "{want} in {t:?}");
        }
        assert!(
            !t.contains(&"umgebungsvariable".to_owned()) && !t.contains(&"terminal".to_owned())
        );
        // The same sentence in English: its capitalised words past the first are names.
        let t =
            key_terms("The employees of Acme Corporation get thirty days of leave each year [1].");
        assert!(
            t.contains(&"acme".to_owned()) && t.contains(&"corporation".to_owned()),
            "{t:?}"
        );

        // A German answer whose nouns the source inflects otherwise is not left out.
        let mut source = gnuterm_source();
        source.text = "Jeder Mitarbeiter hat Anspruch auf dreißig Urlaubstagen im Jahr; der Vorgesetzte genehmigt den Urlaub.".into();
        let sentences = crate::cite::split_sentences(answer);
        let g = keep_grounded(answer, sentences, &[source]);
        assert_eq!((g.kept, g.dropped), (1, 0), "{g:?}");
    }

    /// One passage, about the GNUTERM variable.
    fn gnuterm_source() -> Passage {
        use lectern_core::{PageRange, Span};
        Passage {
            chunk_id: uuid::Uuid::nil(),
            workspace_id: uuid::Uuid::nil(),
            document_id: uuid::Uuid::nil(),
            document: "g.pdf".into(),
            title: "G".into(),
            page: 1,
            pages: PageRange::single(1),
            span: Span { start: 0, end: 10 },
            text: "The GNUTERM variable selects the terminal at start-up.".into(),
            table_header: None,
            url: None,
            score: 1.0,
        }
    }

    #[test]
    fn ungrounded_sentences_are_left_out_and_spans_stay_true() {
        let source = gnuterm_source();
        let answer = "Homebrew installs gnuplot on macOS quickly [1]. The GNUTERM variable selects the terminal [1]. It is a great and useful tool overall.";
        let sentences = crate::cite::split_sentences(answer);
        let g = keep_grounded(answer, sentences, &[source]);
        assert_eq!((g.kept, g.dropped), (1, 2), "{g:?}");
        assert_eq!(g.text, "The GNUTERM variable selects the terminal [1].");
        for s in &g.sentences {
            let on_text: String = g.text.chars().skip(s.start).take(s.end - s.start).collect();
            assert_eq!(on_text, s.text);
        }
    }

    #[test]
    fn a_draft_mostly_left_out_is_no_answer() {
        let source = gnuterm_source();
        let answer = "Homebrew installs gnuplot on macOS quickly [1]. Then open a terminal window. Run the installer again. The GNUTERM variable selects the terminal [1].";
        let g = keep_grounded(
            answer,
            crate::cite::split_sentences(answer),
            &[source.clone()],
        );
        assert_eq!((g.kept, g.dropped), (1, 3), "{g:?}");
        assert!(!g.answers(), "three of four sentences no source carries");
        // Two of three left out: what stays is an answer.
        let answer = "Homebrew installs gnuplot on macOS quickly [1]. Run the installer again. The GNUTERM variable selects the terminal [1].";
        let g = keep_grounded(answer, crate::cite::split_sentences(answer), &[source]);
        assert_eq!((g.kept, g.dropped), (1, 2), "{g:?}");
        assert!(g.answers());
    }

    #[test]
    fn a_draft_that_only_restates_the_question_is_told() {
        let question =
            "Which environment variable does gnuplot use to set the terminal type at start-up?";
        let terms = Terms::of(question);
        let grounded = |answer: &str| {
            let sentences = crate::cite::split_sentences(answer);
            keep_grounded(answer, sentences, &[gnuterm_source()])
        };
        // The marker stands where the answer should be; "used" is the question's "use".
        let g =
            grounded("The environment variable used to set the terminal type at start-up is [1].");
        assert_eq!(g.kept, 1, "{g:?}");
        assert!(g.restates(question, &terms));
        // A name, a number or a word the question lacks is an answer.
        for answer in [
            "The GNUTERM environment variable sets the terminal type at start-up [1].",
            "The terminal type at start-up is taken from the environment variable named in the manual, if defined [1].",
        ] {
            assert!(!grounded(answer).restates(question, &terms), "{answer}");
        }
        // An answer to a yes-or-no question repeats the question's words, but fills the
        // place of the answer; so does a negation.
        for (question, answer) in [
            (
                "Does gnuplot set the terminal type at start-up?",
                "Gnuplot sets the terminal type at start-up [1].",
            ),
            (
                "Does gnuplot set the terminal type at start-up?",
                "Gnuplot does not set the terminal type at start-up [1].",
            ),
        ] {
            let g = grounded(answer);
            assert_eq!(g.kept, 1, "{g:?}");
            assert!(!g.restates(question, &Terms::of(question)), "{answer}");
        }
        assert!(same_word("used", "use") && same_word("use", "used"));
        assert!(!same_word("20", "2024") && same_word("2024", "2024"));
        assert!(!same_word("us", "use"), "too short to tell");
        // In another language, by that language's analysis.
        let question = "Welche Umgebungsvariable wählt den Terminaltyp beim Start?";
        let mut source = gnuterm_source();
        source.text = "Die Umgebungsvariable GNUTERM wählt beim Start den Terminaltyp, wenn sie gesetzt ist. Sonst wird das Terminal gewählt, das beim Übersetzen eingestellt wurde.".into();
        // A question too short to tell is read in its sources' language, as answers do.
        let terms = Terms::of_question(question, &source.text);
        let g = |answer: &str| {
            keep_grounded(
                answer,
                crate::cite::split_sentences(answer),
                std::slice::from_ref(&source),
            )
        };
        let restating = g("Die Umgebungsvariable, die den Terminaltyp beim Start wählt, ist [1].");
        assert!(
            restating.restates(question, &terms),
            "{restating:?} {terms:?} {:?}",
            terms.words_of(&restating.text)
        );
        assert!(
            !g("Die Umgebungsvariable GNUTERM wählt den Terminaltyp beim Start [1].")
                .restates(question, &terms)
        );
    }

    #[test]
    fn a_left_out_list_item_takes_its_mark_with_it() {
        let source = gnuterm_source();
        let answer = "Steps:\n1. Install Homebrew on macOS first.\n2. The GNUTERM variable selects the terminal [1].\n- Then run brew install gnuplot today.";
        let sentences = crate::cite::split_sentences(answer);
        let g = keep_grounded(answer, sentences, &[source]);
        assert_eq!(g.dropped, 2, "{g:?}");
        assert_eq!(
            g.text,
            "Steps:\n\n2. The GNUTERM variable selects the terminal [1]."
        );
        for s in &g.sentences {
            let on_text: String = g.text.chars().skip(s.start).take(s.end - s.start).collect();
            assert_eq!(on_text, s.text);
        }
        assert!(is_list_mark("1.") && is_list_mark("12)") && is_list_mark("-"));
        assert!(is_lead_in("To use it, follow these steps: [4]"));
        assert!(!is_lead_in("Use the eqsecnum option [1]."));
        assert!(!is_list_mark("") && !is_list_mark("e.g.") && !is_list_mark("."));
    }

    #[test]
    fn a_lead_in_left_last_goes_with_what_it_announced() {
        let answer = "The GNUTERM variable selects the terminal [1]. Here is how to set it:\n\n1. Install Homebrew on macOS first.";
        let sentences = crate::cite::split_sentences(answer);
        let g = keep_grounded(answer, sentences, &[gnuterm_source()]);
        assert_eq!(g.text, "The GNUTERM variable selects the terminal [1].");
        assert_eq!(g.sentences.len(), 1, "{g:?}");
    }

    #[test]
    fn a_lead_in_goes_with_the_line_it_announced_when_that_is_left_out() {
        let answer = "The GNUTERM variable selects the terminal [1]. Add this line to your shell profile: [1]\nexport GNUTERM=wxt\nThen gnuplot starts with the chosen terminal type [1].";
        let sentences = crate::cite::split_sentences(answer);
        let g = keep_grounded(answer, sentences, &[gnuterm_source()]);
        assert_eq!((g.kept, g.dropped), (2, 1), "{g:?}");
        assert!(
            !g.text.contains("profile") && !g.text.contains("wxt"),
            "{}",
            g.text
        );
        assert!(
            g.text
                .starts_with("The GNUTERM variable selects the terminal [1].")
        );
        assert!(
            g.text
                .ends_with("Then gnuplot starts with the chosen terminal type [1].")
        );
        let chars: Vec<char> = g.text.chars().collect();
        for s in &g.sentences {
            assert_eq!(chars[s.start..s.end].iter().collect::<String>(), s.text);
        }
        // A lead-in whose list lost one item but kept another stays, whatever the marks.
        for marks in [["- ", "- "], ["\n1. ", "2. "]] {
            let answer = format!(
                "Set the terminal in two steps: [1]\n{}Install Homebrew on macOS first.\n{}The GNUTERM variable selects the terminal [1].",
                marks[0], marks[1]
            );
            let g = keep_grounded(
                &answer,
                crate::cite::split_sentences(&answer),
                &[gnuterm_source()],
            );
            assert!(
                g.text.starts_with("Set the terminal in two steps:"),
                "{}",
                g.text
            );
        }
    }

    #[test]
    fn missing_terms_are_those_no_source_holds() {
        let sources = "to install, run brew install foo. gnuterm selects the terminal.".to_owned();
        assert!(missing_terms("Run `brew install foo` [1].", &sources).is_empty());
        assert_eq!(
            missing_terms("Install it with Homebrew on macOS 14 [1].", &sources),
            vec!["homebrew", "macos", "14"]
        );
    }

    #[test]
    fn code_is_found_as_typeset() {
        // As a PDF typesets it: curly quotes, a line break inside the command.
        let pdf = comparable(
            "Correct typesetting requires:\nset  decimalsign\n\u{2019},\u{2019} and \u{201C}x\u{201D} \u{2013}1",
        );
        assert_eq!(
            pdf,
            "correct typesetting requires: set decimalsign ',' and \"x\" -1"
        );
        assert!(missing_terms("Use `set decimalsign ','` [1].", &pdf).is_empty());
        assert_eq!(
            missing_terms("Use `set decimalsign '.'` [1].", &pdf),
            vec!["set decimalsign '.'"]
        );
    }
}
