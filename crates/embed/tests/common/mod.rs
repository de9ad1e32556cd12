//! What every embedder's tests check the same way.

use lectern_core::Embedder;

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The `Embedder` contract on `texts`: one vector per text, of the model's dimension
/// (`dimension`) and L2-normalised; each text's vector the one it gets alone (order
/// kept, whatever its batch-mates); no texts, no vectors.
pub fn assert_contract(e: &dyn Embedder, texts: &[String], dimension: usize) {
    assert_eq!(e.model().dimension, dimension);
    let vectors = e.embed(texts).unwrap();
    assert_eq!(vectors.len(), texts.len());
    for v in &vectors {
        assert_eq!(v.len(), dimension);
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-3, "norm {norm}");
    }
    for (text, v) in texts.iter().zip(&vectors) {
        let alone = e.embed(std::slice::from_ref(text)).unwrap().remove(0);
        assert!(
            cosine(&alone, v) > 0.999,
            "{text:?} changed with its batch-mates"
        );
    }
    assert!(e.embed(&[]).unwrap().is_empty());
}
