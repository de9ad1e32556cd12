use lectern_core::{Heading, ParsedDocument};

use super::normalise;

/// Markdown is kept as written (the chunker splits on its structure); ATX headings
/// (`#` to `######`, outside fenced code) become the document's headings, the first
/// level-1 heading its title.
pub fn parse(source: &str) -> ParsedDocument {
    let text = normalise(source);
    let mut headings = Vec::new();
    let mut offset = 0;
    let mut in_fence = false;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_end();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
        } else if !in_fence {
            let level = trimmed.chars().take_while(|&c| c == '#').count();
            if (1..=6).contains(&level) && trimmed[level..].starts_with(' ') {
                let title = trimmed[level..].trim().trim_end_matches('#').trim();
                if !title.is_empty() {
                    headings.push(Heading {
                        level: level as u8,
                        text: title.to_owned(),
                        offset,
                        anchor: None,
                    });
                }
            }
        }
        offset += line.chars().count();
    }
    let title = headings
        .iter()
        .find(|h| h.level == 1)
        .map(|h| h.text.clone());
    ParsedDocument {
        title,
        text,
        page_starts: Vec::new(),
        headings,
        ..ParsedDocument::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_outside_code_are_kept_with_offsets() {
        let doc = parse(
            "# Guide\n\nIntro.\n\n```sh\n# not a heading\n```\n## Install ##\nRun it.\n#hashtag\n",
        );
        let found: Vec<_> = doc
            .headings
            .iter()
            .map(|h| (h.level, h.text.as_str()))
            .collect();
        assert_eq!(found, [(1, "Guide"), (2, "Install")]);
        assert_eq!(doc.title.as_deref(), Some("Guide"));
        let install = &doc.headings[1];
        let at: String = doc.text.chars().skip(install.offset).take(10).collect();
        assert_eq!(at, "## Install");
    }
}
