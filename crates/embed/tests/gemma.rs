//! EmbeddingGemma-300M as a GGUF run by llama.cpp (`embedding.engine = "gguf"`,
//! `scripts/fetch-assets.sh gemma`): the `Embedder` contract, the model's published
//! vectors and similarities (so the conversion and the pipeline in llama.cpp are the
//! model's own), and that a question finds its answer across languages.

mod common;

use std::path::PathBuf;

use common::{assert_contract, assert_finds_answers_across_languages, cosine};
use lectern_core::Embedder;
use lectern_llm::{GGUF_MODEL, GgufEmbedder};

fn dir() -> PathBuf {
    lectern_embed::testing::asset("LECTERN_GEMMA_MODEL_DIR", "gemma")
}

fn gemma() -> GgufEmbedder {
    GgufEmbedder::load("google/embeddinggemma-300m-q8_0", &dir(), 256, 2)
        .unwrap_or_else(|e| panic!("{e} (run scripts/fetch-assets.sh gemma)"))
}

#[test]
fn one_normalised_vector_per_text_in_order_across_batches() {
    // More texts than one batch of 64 sequences, one longer than the 256-token cap, one
    // with a NUL inside, one empty.
    let texts: Vec<String> = (0..70)
        .map(|i| format!("Text number {i} about trains, Züge and trenes."))
        .chain([
            "word ".repeat(400),
            "with a \0 inside".to_owned(),
            String::new(),
        ])
        .collect();
    let e = gemma();
    assert_contract(&e, &texts[60..], 768);
    let all = e.embed(&texts).unwrap();
    assert_eq!(all.len(), texts.len());
    let alone = e.embed(&texts[69..70]).unwrap().remove(0);
    assert!(cosine(&alone, &all[69]) > 0.999);
}

/// The model card's example: the query and document prompts from
/// `config_sentence_transformers.json`, and the similarities sentence-transformers prints
/// for the float32 model (Q8_0 moves them by a little).
#[test]
fn ranks_as_the_model_card_shows() {
    let e = gemma();
    let query = e
        .embed_queries(&["Which planet is known as the Red Planet?".to_owned()])
        .unwrap()
        .remove(0);
    let documents: Vec<String> = [
        "Venus is often called Earth's twin because of its similar size and proximity.",
        "Mars, known for its reddish appearance, is often referred to as the Red Planet.",
        "Jupiter, the largest planet in our solar system, has a prominent red spot.",
        "Saturn, famous for its rings, is sometimes mistaken for the Red Planet.",
    ]
    .map(String::from)
    .to_vec();
    let scores: Vec<f32> = e
        .embed(&documents)
        .unwrap()
        .iter()
        .map(|d| cosine(&query, d))
        .collect();
    for (got, want) in scores.iter().zip([0.3011, 0.6359, 0.4930, 0.4889]) {
        assert!((got - want).abs() < 0.02, "{scores:?}");
    }
}

/// Without prompts (a folder with only the model), "apple" gets the vector
/// sentence-transformers gives it: its first and last three components.
#[test]
fn a_text_without_a_prompt_gets_the_models_own_vector() {
    let bare = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(dir().join(GGUF_MODEL), bare.path().join(GGUF_MODEL)).unwrap();
    let e = GgufEmbedder::load("gemma", bare.path(), 0, 2).unwrap();
    let v = e.embed(&["apple".to_owned()]).unwrap().remove(0);
    let want_head = [-0.184_763_06, 0.001_676_81, 0.037_734_84];
    let want_tail = [-0.079_962_25, -0.023_480_64, 0.009_767_41];
    for (got, want) in v[..3]
        .iter()
        .chain(&v[765..])
        .zip(want_head.iter().chain(&want_tail))
    {
        assert!((got - want).abs() < 0.01, "{:?} … {:?}", &v[..3], &v[765..]);
    }
}

#[test]
fn a_question_finds_its_answer_in_another_language() {
    assert_finds_answers_across_languages(&gemma());
}

#[test]
fn a_missing_model_is_named_with_the_fix() {
    let empty = tempfile::tempdir().unwrap();
    let err = GgufEmbedder::load("gemma", empty.path(), 0, 0)
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("scripts/fetch-assets.sh gemma"),
        "{err}"
    );
    std::fs::write(empty.path().join(GGUF_MODEL), b"not a model").unwrap();
    let err = GgufEmbedder::load("gemma", empty.path(), 0, 0)
        .err()
        .unwrap();
    assert!(err.to_string().contains("GGUF"), "{err}");
}
