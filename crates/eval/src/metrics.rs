//! Ranking metrics as BEIR reports them (trec_eval's definitions): nDCG@k with linear
//! gain, Recall@k and MRR@k, per query, then averaged over queries.

use std::collections::HashMap;

/// Graded relevance of documents for one query (0 means not relevant).
pub type Qrels = HashMap<String, u32>;

/// The words of a text as OCR is scored on them: NFKC, lower case, runs of letters and
/// digits.
pub fn words(text: &str) -> Vec<String> {
    lectern_core::normalise(text)
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// How many of `truth`'s words `read` holds, each counted as often as both hold it (a
/// multiset intersection): `(found, words in truth, words in read)`. Recall is found over
/// the truth's words, precision found over the read ones.
pub fn word_overlap(truth: &str, read: &str) -> (usize, usize, usize) {
    let mut wanted: HashMap<String, usize> = HashMap::new();
    let truth = words(truth);
    for w in &truth {
        *wanted.entry(w.clone()).or_default() += 1;
    }
    let read = words(read);
    let mut found = 0;
    for w in &read {
        if let Some(n) = wanted.get_mut(w)
            && *n > 0
        {
            *n -= 1;
            found += 1;
        }
    }
    (found, truth.len(), read.len())
}

/// nDCG@k: the discounted gain of the ranking over that of the ideal ranking.
pub fn ndcg_at(ranked: &[String], qrels: &Qrels, k: usize) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, doc)| f64::from(*qrels.get(doc).unwrap_or(&0)) / (i as f64 + 2.0).log2())
        .sum();
    let mut ideal: Vec<u32> = qrels.values().copied().filter(|&r| r > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, &r)| f64::from(r) / (i as f64 + 2.0).log2())
        .sum();
    if idcg == 0.0 { 0.0 } else { dcg / idcg }
}

/// The share of the relevant documents found in the first k.
pub fn recall_at(ranked: &[String], qrels: &Qrels, k: usize) -> f64 {
    let relevant = qrels.values().filter(|&&r| r > 0).count();
    if relevant == 0 {
        return 0.0;
    }
    let found = ranked
        .iter()
        .take(k)
        .filter(|d| qrels.get(*d).is_some_and(|&r| r > 0))
        .count();
    found as f64 / relevant as f64
}

/// The reciprocal rank of the first relevant document within the first k (0 if none).
pub fn mrr_at(ranked: &[String], qrels: &Qrels, k: usize) -> f64 {
    ranked
        .iter()
        .take(k)
        .position(|d| qrels.get(d).is_some_and(|&r| r > 0))
        .map_or(0.0, |i| 1.0 / (i as f64 + 1.0))
}

/// The metrics of one ranking.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct RankingScores {
    pub ndcg_at_10: f64,
    pub recall_at_5: f64,
    pub recall_at_10: f64,
    pub recall_at_100: f64,
    pub mrr_at_10: f64,
}

impl RankingScores {
    pub fn of(ranked: &[String], qrels: &Qrels) -> Self {
        Self {
            ndcg_at_10: ndcg_at(ranked, qrels, 10),
            recall_at_5: recall_at(ranked, qrels, 5),
            recall_at_10: recall_at(ranked, qrels, 10),
            recall_at_100: recall_at(ranked, qrels, 100),
            mrr_at_10: mrr_at(ranked, qrels, 10),
        }
    }

    /// The mean over queries.
    pub fn mean(all: &[Self]) -> Self {
        let n = all.len().max(1) as f64;
        let sum = |f: fn(&Self) -> f64| all.iter().map(f).sum::<f64>() / n;
        Self {
            ndcg_at_10: sum(|s| s.ndcg_at_10),
            recall_at_5: sum(|s| s.recall_at_5),
            recall_at_10: sum(|s| s.recall_at_10),
            recall_at_100: sum(|s| s.recall_at_100),
            mrr_at_10: sum(|s| s.mrr_at_10),
        }
    }
}

/// The value at quantile `q` (0..1) of `values`, nearest rank.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_overlap_counts_each_word_as_often_as_both_hold_it() {
        // "the" twice in the truth, three times read: two found; "ﬁnal" is "final".
        let (found, truth, read) =
            word_overlap("The ﬁnal report, the end.", "the final repart the the end");
        assert_eq!((found, truth, read), (4, 5, 6));
        assert_eq!(word_overlap("", "anything"), (0, 0, 1));
    }

    fn docs(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    fn qrels(pairs: &[(&str, u32)]) -> Qrels {
        pairs.iter().map(|(d, r)| (d.to_string(), *r)).collect()
    }

    #[test]
    fn metrics_match_hand_computed_values() {
        // Relevant: a (2), c (1). Ranking: b, a, d, c.
        let q = qrels(&[("a", 2), ("c", 1), ("x", 0)]);
        let r = docs(&["b", "a", "d", "c"]);
        // DCG = 2/log2(3) + 1/log2(5) = 1.261860 + 0.430677 = 1.692537
        // IDCG = 2/log2(2) + 1/log2(3) = 2 + 0.630930 = 2.630930
        let expected = (2.0 / 3f64.log2() + 1.0 / 5f64.log2()) / (2.0 + 1.0 / 3f64.log2());
        assert!((ndcg_at(&r, &q, 10) - expected).abs() < 1e-12);
        assert!((ndcg_at(&r, &q, 10) - 0.643322).abs() < 1e-6);
        // Cut at 2: only a counts; IDCG@2 is still 2.630930.
        assert!(
            (ndcg_at(&r, &q, 2) - (2.0 / 3f64.log2()) / (2.0 + 1.0 / 3f64.log2())).abs() < 1e-12
        );
        assert_eq!(recall_at(&r, &q, 1), 0.0);
        assert_eq!(recall_at(&r, &q, 2), 0.5);
        assert_eq!(recall_at(&r, &q, 4), 1.0);
        assert_eq!(mrr_at(&r, &q, 10), 0.5);
        assert_eq!(mrr_at(&r, &q, 1), 0.0);
        // A perfect ranking scores 1; nothing relevant scores 0.
        assert!((ndcg_at(&docs(&["a", "c"]), &q, 10) - 1.0).abs() < 1e-12);
        assert_eq!(ndcg_at(&docs(&["b"]), &qrels(&[]), 10), 0.0);

        let s = RankingScores::of(&r, &q);
        let mean = RankingScores::mean(&[s, RankingScores::default()]);
        assert!((mean.recall_at_10 - 0.5).abs() < 1e-12);
        assert!((mean.mrr_at_10 - 0.25).abs() < 1e-12);
    }

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let v = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 0.99), 5.0);
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}
