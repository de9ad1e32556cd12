//! `lectern eval retrieval` end to end on a small BEIR-format dataset made here from real
//! text, with the real embedding model: rankings of unambiguous queries are perfect, and
//! a judged document missing from the corpus halves recall exactly.

use lectern_core::SearchMode;

use crate::helpers::test_settings;

const CORPUS: &[(&str, &str, &str)] = &[
    (
        "leave",
        "Annual leave",
        "Employees are entitled to thirty days of paid annual leave per calendar year. Unused leave may be carried over until the end of March.",
    ),
    (
        "travel",
        "Business travel",
        "Economy class is booked for flights shorter than six hours; business class may be booked for longer flights with approval.",
    ),
    (
        "parking",
        "Parking",
        "The staff car park opens at six in the morning. Visitors park on level two and register at the front desk.",
    ),
    (
        "laptops",
        "Laptops",
        "Every new employee receives a laptop with an encrypted disk. Lost laptops must be reported to IT security within one hour.",
    ),
    (
        "canteen",
        "Canteen",
        "The canteen serves breakfast from seven to ten and lunch from noon to two. Vegetarian dishes are available every day.",
    ),
];

fn write_dataset(dir: &std::path::Path) {
    let corpus: String = CORPUS
        .iter()
        .map(|(id, title, text)| {
            format!(
                "{}\n",
                serde_json::json!({"_id": id, "title": title, "text": text})
            )
        })
        .collect();
    std::fs::write(dir.join("corpus.jsonl"), corpus).unwrap();
    let queries = [
        ("q1", "How many days of paid annual leave do employees get?"),
        (
            "q2",
            "Which class is booked for flights shorter than six hours?",
        ),
        ("q3", "When does the staff car park open?"),
        ("q4", "What must happen when a laptop is lost?"),
        ("q5", "This query has no judgements and is not scored."),
    ];
    let q: String = queries
        .iter()
        .map(|(id, text)| format!("{}\n", serde_json::json!({"_id": id, "text": text})))
        .collect();
    std::fs::write(dir.join("queries.jsonl"), q).unwrap();
    std::fs::create_dir_all(dir.join("qrels")).unwrap();
    // q4 also judges a document that is not in the corpus: at best half of it is found.
    std::fs::write(
        dir.join("qrels/test.tsv"),
        "query-id\tcorpus-id\tscore\nq1\tleave\t1\nq2\ttravel\t1\nq3\tparking\t1\nq4\tlaptops\t1\nq4\tmissing\t1\n",
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrieval_evaluation_scores_a_small_real_dataset() {
    let data = tempfile::tempdir().unwrap();
    let dataset = tempfile::tempdir().unwrap();
    write_dataset(dataset.path());
    let ctx = lectern::Local::open(test_settings(data.path()))
        .await
        .unwrap();
    let report = lectern::evaluation::retrieval(&ctx, dataset.path(), "eval")
        .await
        .unwrap();
    assert_eq!(report.documents, 5);
    assert_eq!(report.queries, 4, "the unjudged query is not scored");
    assert_eq!(report.rrf_k, 60);
    assert_eq!(report.modes.len(), 3);
    for m in &report.modes {
        let s = &m.scores;
        // Each query names its document unambiguously: first place every time.
        assert_eq!(s.mrr_at_10, 1.0, "{:?}: {s:?}", m.mode);
        // Recall: 1 for q1-q3, 1/2 for q4 (its second judged document does not exist).
        assert!(
            (s.recall_at_100 - (3.0 + 0.5) / 4.0).abs() < 1e-9,
            "{:?}: {s:?}",
            m.mode
        );
        assert!((s.recall_at_5 - s.recall_at_100).abs() < 1e-9);
        // nDCG for q4: DCG 1, IDCG 1 + 1/log2(3).
        let q4 = 1.0 / (1.0 + 1.0 / 3f64.log2());
        assert!(
            (s.ndcg_at_10 - (3.0 + q4) / 4.0).abs() < 1e-9,
            "{:?}: {s:?}",
            m.mode
        );
    }
    assert!(report.modes.iter().any(|m| m.mode == SearchMode::Hybrid));

    // A second run reuses the ingested workspace.
    let documents = || async {
        let ws = ctx
            .store
            .find_workspace_by_name(lectern_store::NameScope::Operator, "eval")
            .await
            .unwrap()
            .unwrap();
        ctx.store.list_documents(ws.id).await.unwrap().len()
    };
    let before = documents().await;
    lectern::evaluation::retrieval(&ctx, dataset.path(), "eval")
        .await
        .unwrap();
    assert_eq!(documents().await, before);
}
