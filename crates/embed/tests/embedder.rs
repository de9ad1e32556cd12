//! The real default model (all-MiniLM-L6-v2 int8) through `FastEmbedder`: the `Embedder`
//! contract, and that vectors mean something.

use lectern_core::Embedder;
use lectern_embed::testing::embedder;

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn one_normalised_vector_per_text_in_order() {
    let e = embedder();
    assert_eq!(e.model().dimension, 384);
    let texts: Vec<String> = [
        "The cat sat on the mat.",
        "Quarterly revenue grew by ten percent.",
        "",
        "Ünïcödé ☕ 日本語",
    ]
    .map(String::from)
    .to_vec();
    let vectors = e.embed(&texts).unwrap();
    assert_eq!(vectors.len(), texts.len());
    for v in &vectors {
        assert_eq!(v.len(), 384);
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-3, "norm {norm}");
    }
    // Order kept: each text's vector equals the one it gets alone.
    for (text, v) in texts.iter().zip(&vectors) {
        let alone = e.embed(std::slice::from_ref(text)).unwrap().remove(0);
        assert!(
            cosine(&alone, v) > 0.999,
            "{text:?} changed with its batch-mates"
        );
    }
    assert!(e.embed(&[]).unwrap().is_empty());
}

#[test]
fn similar_meanings_are_closer_than_different_ones() {
    let v = embedder()
        .embed(&[
            "How do I reset my password?".into(),
            "Steps to change a forgotten login password".into(),
            "The museum opens at nine on Sundays".into(),
        ])
        .unwrap();
    assert!(
        cosine(&v[0], &v[1]) > cosine(&v[0], &v[2]) + 0.2,
        "{} vs {}",
        cosine(&v[0], &v[1]),
        cosine(&v[0], &v[2])
    );
}

#[test]
fn a_missing_model_is_a_clear_error() {
    let mut options = lectern_embed::testing::default_options();
    options.model_dir = "/nonexistent/model".into();
    let err = lectern_embed::FastEmbedder::load(&options)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("/nonexistent/model") && err.contains("fetch-assets"),
        "{err}"
    );
}
