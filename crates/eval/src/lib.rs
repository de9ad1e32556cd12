//! Lectern's evaluation measures: ranking metrics on BEIR-format datasets (`lectern eval
//! retrieval`) and answer quality on question files (`lectern eval qa`), with the formats
//! of both. Pure and unit-tested against hand-computed values; it depends on the wire
//! types only, never on a service. The runs that drive the services live above them, in
//! the `lectern` command (`lectern::evaluation`).

pub mod beir;
pub mod metrics;
pub mod qa;

/// Reads a JSON Lines file (blank lines skipped), naming the line of any error.
pub fn read_jsonl<T: for<'de> serde::Deserialize<'de>>(
    path: &std::path::Path,
) -> anyhow::Result<Vec<T>> {
    use anyhow::Context as _;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{} line {}", path.display(), i + 1))
        })
        .collect()
}
