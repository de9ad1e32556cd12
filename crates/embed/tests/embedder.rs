//! The real default model (all-MiniLM-L6-v2 int8) through `FastEmbedder`: the `Embedder`
//! contract, and that vectors mean something.

mod common;

use common::{assert_contract, cosine};
use lectern_core::Embedder;
use lectern_embed::testing::embedder;

#[test]
fn one_normalised_vector_per_text_in_order() {
    let texts: Vec<String> = [
        "The cat sat on the mat.",
        "Quarterly revenue grew by ten percent.",
        "",
        "Ünïcödé ☕ 日本語",
    ]
    .map(String::from)
    .to_vec();
    assert_contract(embedder().as_ref(), &texts, 384);
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
