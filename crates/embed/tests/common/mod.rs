//! What every embedder's tests check the same way.

#![allow(dead_code)] // each test file uses its own part

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

/// A multilingual embedder's promise: a question embedded as a question differs from the
/// same words as a passage, and a Spanish, German, English or French question ranks the
/// passage that answers it first, whatever the passage's language.
pub fn assert_finds_answers_across_languages(e: &dyn Embedder) {
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
    assert!(cosine(&as_query, &as_passage) < 0.999, "the prompts differ");
}
