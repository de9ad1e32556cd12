//! The citation markers of an answer: `[1]`, `[1, 2]`, `[1;3]`, `[Source 2]`. The one
//! parser of them, used where answers are checked (the query service) and where they
//! are shown (the web app).

use std::sync::LazyLock;

use regex::Regex;

/// One or more source numbers in brackets, optionally after "Source"/"Sources".
static MARKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\[(?:(?i:sources?)\s*)?(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]").expect("marker regex")
});

/// A piece of an answer: text, or a marker with its source numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment<'a> {
    Text(&'a str),
    Marker {
        /// The marker as written.
        raw: &'a str,
        numbers: Vec<usize>,
    },
}

fn numbers_of(inner: &str) -> Vec<usize> {
    inner
        .split([',', ';'])
        .filter_map(|n| n.trim().parse().ok())
        .collect()
}

/// The answer cut into text and markers, in order; joining the pieces gives it back.
pub fn segments(text: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    let mut at = 0;
    for caps in MARKER.captures_iter(text) {
        let whole = caps.get(0).expect("the whole match");
        if whole.start() > at {
            out.push(Segment::Text(&text[at..whole.start()]));
        }
        out.push(Segment::Marker {
            raw: whole.as_str(),
            numbers: numbers_of(&caps[1]),
        });
        at = whole.end();
    }
    if at < text.len() {
        out.push(Segment::Text(&text[at..]));
    }
    out
}

/// The text with every marker replaced by `replace(numbers)`.
pub fn rewrite(text: &str, mut replace: impl FnMut(&[usize]) -> String) -> String {
    MARKER
        .replace_all(text, |caps: &regex::Captures<'_>| {
            replace(&numbers_of(&caps[1]))
        })
        .into_owned()
}

/// The distinct source numbers the text cites, in first-use order.
pub fn cited(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for s in segments(text) {
        if let Segment::Marker { numbers, .. } = s {
            for n in numbers {
                if !out.contains(&n) {
                    out.push(n);
                }
            }
        }
    }
    out
}

/// The markers at the very start of `text` (with the spaces before them): the byte length
/// up to the end of the last one and the numbers they cite; `None` when the text starts
/// with anything else.
pub fn leading(text: &str) -> Option<(usize, Vec<usize>)> {
    let (mut at, mut end) = (0, 0);
    let mut numbers = Vec::new();
    for s in segments(text) {
        match s {
            Segment::Marker { raw, numbers: n } => {
                at += raw.len();
                end = at;
                numbers.extend(n);
            }
            Segment::Text(t) if t.trim().is_empty() => at += t.len(),
            Segment::Text(_) => break,
        }
    }
    (!numbers.is_empty()).then_some((end, numbers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_join_back_to_the_text() {
        let text = "Leave is 25 days [1]. See [Source 2; 3] and [x] [].";
        let segs = segments(text);
        let joined: String = segs
            .iter()
            .map(|s| match s {
                Segment::Text(t) => *t,
                Segment::Marker { raw, .. } => raw,
            })
            .collect();
        assert_eq!(joined, text);
        let markers: Vec<Vec<usize>> = segs
            .into_iter()
            .filter_map(|s| match s {
                Segment::Marker { numbers, .. } => Some(numbers),
                _ => None,
            })
            .collect();
        assert_eq!(markers, vec![vec![1], vec![2, 3]]);
    }

    #[test]
    fn cited_and_rewrite_and_leading() {
        assert_eq!(cited("a [2] b [1, 2] c [3]"), vec![2, 1, 3]);
        assert_eq!(
            rewrite("a [1,2] b", |n| format!("<{}>", n.len())),
            "a <2> b"
        );
        assert_eq!(leading(" [2] [3] Next"), Some((8, vec![2, 3])));
        assert_eq!(leading("Next [2]"), None);
        assert_eq!(leading("   "), None);
    }
}
