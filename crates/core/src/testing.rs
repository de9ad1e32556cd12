//! Fakes of the seams, for unit tests of the logic around them (feature `testing`). Each
//! real implementation has its own contract tests on the real thing; these only make the
//! logic above a seam testable in milliseconds and without model files.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::{Embedder, EmbeddingModelInfo, Error, Result};

/// A bag-of-words embedder: each lower-cased word is hashed into one of `dimension`
/// buckets, and the counts are L2-normalised. Texts that share words are similar, texts
/// that share none are orthogonal, and the same text always gets the same vector, which
/// is all the answer logic needs from an embedder. It keeps the [`Embedder`] contract
/// (one vector per text, in order, of the declared width, normalised).
pub struct HashEmbedder {
    model: EmbeddingModelInfo,
    calls: AtomicUsize,
    fail: bool,
}

impl HashEmbedder {
    pub fn new(dimension: usize) -> Self {
        Self {
            model: EmbeddingModelInfo {
                id: format!("test/hash-{dimension}"),
                dimension,
            },
            calls: AtomicUsize::new(0),
            fail: false,
        }
    }

    /// An embedder whose every call fails as an unavailable model would.
    pub fn failing(dimension: usize) -> Self {
        Self {
            fail: true,
            ..Self::new(dimension)
        }
    }

    /// How many times `embed` was called.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// The vector of one text.
    pub fn vector(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0f32; self.model.dimension];
        for word in text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            let mut h: u64 = 0xcbf29ce484222325;
            for b in word.to_lowercase().bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x100000001b3);
            }
            v[(h % self.model.dimension as u64) as usize] += 1.0;
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|x| *x /= norm);
        }
        v
    }
}

impl Embedder for HashEmbedder {
    fn model(&self) -> &EmbeddingModelInfo {
        &self.model
    }

    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if self.fail {
            return Err(Error::unavailable(
                "the embedding model is unavailable",
                std::io::Error::other("test embedder set to fail"),
            ));
        }
        Ok(texts.iter().map(|t| self.vector(t)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn keeps_the_embedder_contract_and_ranks_by_shared_words() {
        let e = HashEmbedder::new(256);
        let texts = vec![
            "annual leave is 25 days".to_owned(),
            "Annual LEAVE is 25 days!".to_owned(),
            "the printer is on floor three".to_owned(),
        ];
        let v = e.embed(&texts).unwrap();
        assert_eq!(v.len(), 3);
        assert!(v.iter().all(|x| x.len() == 256));
        assert!((dot(&v[0], &v[0]) - 1.0).abs() < 1e-5);
        assert!(
            (dot(&v[0], &v[1]) - 1.0).abs() < 1e-5,
            "case and punctuation ignored"
        );
        assert!(dot(&v[0], &v[2]) < dot(&v[0], &v[1]));
        assert!(HashEmbedder::failing(8).embed(&texts).is_err());
    }
}
