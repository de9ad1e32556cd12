use unicode_normalization::UnicodeNormalization;

/// The text every extractor (and whoever matches against extracted text, such as the
/// page highlighter) works with: NFKC (ligatures such as "ﬁ" become "fi"), PDFium's
/// hyphenation marks removed, other control characters except newlines and tabs
/// dropped, and line endings unified.
pub fn normalise(text: &str) -> String {
    text.replace("\r\n", "\n")
        .nfkc()
        .filter(|&c| c == '\n' || c == '\t' || !c.is_control())
        .collect()
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
}
