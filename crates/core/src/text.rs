use std::borrow::Cow;

use unicode_normalization::UnicodeNormalization;

/// Spacing accents, which PDFs made with TeX often draw as a glyph of their own before the
/// letter they sit on (`k¨onnen`, `f´e`, `p´ı`), with their combining forms.
const SPACING_ACCENTS: [(char, char); 12] = [
    ('\u{A8}', '\u{308}'),  // diaeresis
    ('\u{B4}', '\u{301}'),  // acute
    ('\u{2C6}', '\u{302}'), // circumflex
    ('\u{2DC}', '\u{303}'), // tilde
    ('\u{AF}', '\u{304}'),  // macron
    ('\u{2D8}', '\u{306}'), // breve
    ('\u{2D9}', '\u{307}'), // dot above
    ('\u{2DA}', '\u{30A}'), // ring above
    ('\u{2DD}', '\u{30B}'), // double acute
    ('\u{2C7}', '\u{30C}'), // caron
    ('\u{B8}', '\u{327}'),  // cedilla
    ('\u{2DB}', '\u{328}'), // ogonek
];

/// The text every extractor (and whoever matches against extracted text, such as the
/// page highlighter) works with: a spacing accent drawn before its letter put on it
/// (`k¨onnen` is `können`), NFKC (ligatures such as "ﬁ" become "fi"), PDFium's
/// hyphenation marks removed, other control characters except newlines and tabs
/// dropped, and line endings unified.
pub fn normalise(text: &str) -> String {
    attach_accents(&text.replace("\r\n", "\n"))
        .nfkc()
        .filter(|&c| c == '\n' || c == '\t' || !c.is_control())
        .collect()
}

/// A grave accent drawn as a glyph of its own before its vowel, as PDFs made with TeX draw
/// it (`troisi`eme`, `o`u`, `` `a ``, `cos`ı`), put on the vowel: inside a word, or on a
/// small vowel that is a word of its own (French "à", Italian "è"). A backtick anywhere
/// else stays, TeX's quotes too (` ``I am'' `, `` `a' ``), and this is for text extracted
/// from PDFs only: in Markdown, HTML or code a backtick before a vowel is a backtick
/// (`` `a` ``).
pub fn attach_graves(text: &str) -> Cow<'_, str> {
    if !text.contains('`') {
        return Cow::Borrowed(text);
    }
    let chars: Vec<char> = text.chars().collect();
    let at = |i: Option<usize>| i.and_then(|i| chars.get(i)).copied();
    let letter = |i: Option<usize>| at(i).is_some_and(char::is_alphanumeric);
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '`'
            && let Some(&vowel) = chars.get(i + 1)
            && "aeiouAEIOU\u{131}".contains(vowel)
            // TeX's opening quotes (``I am'', `a' key) are no accents.
            && at(i.checked_sub(1)) != Some('`')
            && !matches!(at(Some(i + 2)), Some('`' | '\'' | '\u{2019}'))
        {
            let inside = letter(i.checked_sub(1));
            let alone = vowel.is_lowercase() && !letter(Some(i + 2));
            if inside || alone {
                // TeX draws "ì" on a dotless i.
                let vowel = if vowel == '\u{131}' { 'i' } else { vowel };
                out.extend([vowel, '\u{300}'].into_iter().nfc());
                i += 2;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    Cow::Owned(out)
}

/// Letters and digits of a text without their accents, lower case: what a passage and a
/// page's characters are matched on, so that `können` meets `k¨onnen` drawn in two
/// glyphs.
pub fn bare_letters(text: &str) -> impl Iterator<Item = char> + '_ {
    text.nfkd()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
}

/// Each spacing accent followed by a letter that takes it as one character (`¨o` is
/// `ö`; a dotless `ı` takes it as `i` does) becomes that character; any other is left.
fn attach_accents(text: &str) -> Cow<'_, str> {
    let accent = |c: char| SPACING_ACCENTS.iter().find(|(s, _)| *s == c).map(|p| p.1);
    if !text.chars().any(|c| accent(c).is_some()) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if let (Some(combining), Some(&next)) = (accent(c), chars.peek())
            && next.is_alphabetic()
        {
            let base = match next {
                '\u{131}' => 'i',
                '\u{237}' => 'j',
                other => other,
            };
            let mut composed = [base, combining].into_iter().nfc();
            if let (Some(one), None) = (composed.next(), composed.next()) {
                out.push(one);
                chars.next();
                continue;
            }
        }
        out.push(c);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalising_unfolds_ligatures_and_drops_controls() {
        assert_eq!(
            normalise("e\u{FB03}cient\r\nhy\u{2}phen\u{0}"),
            "efficient\nhyphen"
        );
    }

    #[test]
    fn accents_drawn_before_their_letter_are_put_on_it() {
        assert_eq!(
            normalise("Sie k\u{A8}onnen f\u{A8}ur p\u{B4}\u{131}xeles d\u{B4}ej\u{E0} \u{B8}ca"),
            "Sie können für píxeles déjà ça"
        );
        // An accent that no letter takes is left as NFKC has it: "don´t" keeps its mark.
        assert_eq!(normalise("don\u{B4}t"), "don \u{301}t");
        assert_eq!(normalise("a \u{A8} b"), "a  \u{308} b");
    }

    #[test]
    fn graves_drawn_before_their_vowel_are_put_on_it_and_backticks_stay() {
        assert_eq!(
            attach_graves(
                "dans la troisi`eme mesure o`u `a tr`es c\u{F4}t\u{E9} perch`e cos`\u{131}"
            ),
            "dans la troisième mesure où à très côté perchè così"
        );
        // Backticks that are no accent: quoting, code, a consonant after.
        for text in [
            "`echo $x`",
            "run `ls`",
            "`a`",
            "`bar`",
            "` a",
            // TeX's quotes drawn as backticks.
            "``I am''",
            "`I'm",
            "press the `a' key",
        ] {
            assert_eq!(attach_graves(text), text);
        }
    }

    #[test]
    fn bare_letters_meet_across_accents_drawn_apart() {
        let a: String = bare_letters("Können, FÜR").collect();
        let b: String = bare_letters("k\u{A8}onnen f\u{A8}ur").collect();
        assert_eq!(a, "konnenfur");
        assert_eq!(a, b);
    }
}
