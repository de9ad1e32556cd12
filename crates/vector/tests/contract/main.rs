//! The `VectorIndex` contract, run against every real implementation: the embedded
//! engine always, a Qdrant server when `LECTERN_TEST_QDRANT_URL` names one at build time
//! (`build.rs` sets `cfg(qdrant_server)`); without one the server tests are ignored, with
//! the reason, rather than passing unrun (no server can run on the development machines;
//! see the README). Vectors come from the real model.

use std::sync::Arc;

use lectern_core::{
    ChunkPoint, Embedder, Error, IndexedChunk, PageRange, SearchMode, SearchRequest, Span,
    VectorIndex, WorkspaceScope,
};
use lectern_embed::testing::embedder;
use lectern_vector::{Bm25, EdgeIndex, SearchTuning, ServerIndex};
use uuid::Uuid;

/// A fresh, empty index of one implementation; its folder lives as long as the fixture.
struct Fixture {
    index: Arc<dyn VectorIndex>,
    _guard: Option<tempfile::TempDir>,
}

fn edge(tuning: SearchTuning) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let model = embedder().model().clone();
    let index = EdgeIndex::open(
        dir.path(),
        model,
        Bm25::new(Bm25::default_config()).unwrap(),
        tuning,
    )
    .unwrap();
    Fixture {
        index: Arc::new(index),
        _guard: Some(dir),
    }
}

/// A fresh collection on the server named by `LECTERN_TEST_QDRANT_URL` (at run time, else
/// as the build saw it); no URL, or a server that does not answer, fails the test.
async fn server(tuning: SearchTuning) -> Fixture {
    let url = std::env::var("LECTERN_TEST_QDRANT_URL")
        .ok()
        .or(option_env!("LECTERN_TEST_QDRANT_URL").map(str::to_owned))
        .filter(|url| !url.is_empty())
        .expect("LECTERN_TEST_QDRANT_URL names no Qdrant server");
    let collection = format!("lectern_test_{}", Uuid::new_v4().simple());
    let model = embedder().model().clone();
    let index = ServerIndex::open(
        &url,
        None,
        &collection,
        model,
        Bm25::new(Bm25::default_config()).unwrap(),
        tuning,
    )
    .await
    .unwrap_or_else(|e| panic!("Qdrant server at {url}: {e}"));
    Fixture {
        index: Arc::new(index),
        _guard: None,
    }
}

/// Runs one contract check against every implementation available (with the default
/// search tuning unless one is given).
macro_rules! contract {
    ($name:ident, $body:expr) => {
        contract!($name, SearchTuning::default(), $body);
    };
    ($name:ident, $tuning:expr, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn edge() {
                let fixture = super::edge($tuning);
                ($body)(fixture.index.clone()).await;
                drop(fixture);
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(
                not(qdrant_server),
                ignore = "set LECTERN_TEST_QDRANT_URL to a Qdrant server's gRPC URL to run"
            )]
            async fn server() {
                let fixture = super::server($tuning).await;
                ($body)(fixture.index.clone()).await;
            }
        }
    };
}

fn chunk(workspace: Uuid, document: Uuid, version: i32, index: u32, text: &str) -> ChunkPoint {
    ChunkPoint {
        workspace_id: workspace,
        document_id: document,
        version,
        chunk_index: index,
        pages: PageRange::single(index + 1),
        span: Span {
            start: index as usize * 1000,
            end: index as usize * 1000 + text.chars().count(),
        },
        title: "Staff handbook".into(),
        text: text.into(),
        table_header: None,
        anchor: None,
    }
}

fn embed_all(chunks: Vec<ChunkPoint>) -> Vec<IndexedChunk> {
    let texts: Vec<String> = chunks.iter().map(|c| c.text.clone()).collect();
    let vectors = embedder().embed(&texts).unwrap();
    chunks
        .into_iter()
        .zip(vectors)
        .map(|(chunk, dense)| IndexedChunk { chunk, dense })
        .collect()
}

fn request(text: &str, mode: SearchMode, limit: usize) -> SearchRequest {
    let dense = embedder().embed(&[text.to_owned()]).unwrap().remove(0);
    SearchRequest {
        text: text.into(),
        dense,
        limit,
        mode,
        documents: None,
    }
}

const HANDBOOK: &[&str] = &[
    "Refund policy: customers may return unopened items within 30 days and are reimbursed in full.",
    "The office opens at 8 o'clock; the front desk closes at 6 in the evening on weekdays.",
    "Laptops issued by IT must be encrypted; report a lost device to the service desk at once.",
    "Expense claims need a receipt for every item above twenty euros and the approval of a manager.",
    "Parking permit code QX-7741 is valid for the underground garage on level minus two.",
    "Annual leave is twenty-five days for full-time staff, pro rata for part-time contracts.",
    // Look-alike codes: the dense vector cannot tell them apart, BM25 can.
    "Door code ZB-3390 opens the archive room on the second floor.",
    "Printer PIN KL-5521 releases jobs at the copier next to the kitchen.",
];

async fn handbook(index: &dyn VectorIndex, workspace: Uuid) -> Uuid {
    let document = Uuid::new_v4();
    let chunks = HANDBOOK
        .iter()
        .enumerate()
        .map(|(i, t)| chunk(workspace, document, 1, i as u32, t))
        .collect();
    index.upsert(embed_all(chunks)).await.unwrap();
    document
}

fn texts(hits: &[lectern_core::ScoredChunk]) -> Vec<&str> {
    hits.iter().map(|h| h.chunk.text.as_str()).collect()
}

contract!(hybrid_finds_what_only_bm25_can_match, |index: Arc<
    dyn VectorIndex,
>| async move {
    let ws = Uuid::new_v4();
    handbook(index.as_ref(), ws).await;
    let scope = WorkspaceScope::local_cli(vec![ws]).unwrap();
    // An opaque code: lexical search matches it, its embedding means nothing in particular.
    let sparse = index
        .search(&scope, &request("QX-7741", SearchMode::Sparse, 3))
        .await
        .unwrap();
    assert!(
        texts(&sparse)[0].contains("QX-7741"),
        "{:?}",
        texts(&sparse)
    );
    assert_eq!(
        sparse.len(),
        1,
        "only one chunk holds the term: {:?}",
        texts(&sparse)
    );
    let hybrid = index
        .search(&scope, &request("QX-7741", SearchMode::Hybrid, 3))
        .await
        .unwrap();
    assert!(
        texts(&hybrid)[0].contains("QX-7741"),
        "{:?}",
        texts(&hybrid)
    );
    // Scores are ordered best first.
    assert!(hybrid.windows(2).all(|w| w[0].score >= w[1].score));
});

/// A question whose meaning points at one chunk and whose one exact term at another.
const SPLIT_QUESTION: &str = "How do I get my money back? ZB-3390";

/// The first hit of each side alone and of the fusion, for [`SPLIT_QUESTION`].
async fn first_hits(index: &dyn VectorIndex) -> [String; 3] {
    let ws = Uuid::new_v4();
    handbook(index, ws).await;
    let scope = WorkspaceScope::local_cli(vec![ws]).unwrap();
    let mut first = Vec::new();
    for mode in [SearchMode::Dense, SearchMode::Sparse, SearchMode::Hybrid] {
        let hits = index
            .search(&scope, &request(SPLIT_QUESTION, mode, 3))
            .await
            .unwrap();
        first.push(hits[0].chunk.text.clone());
    }
    let [dense, sparse, hybrid] = first.try_into().unwrap();
    assert!(dense.starts_with("Refund"), "{dense}");
    assert!(sparse.contains("ZB-3390"), "{sparse}");
    [dense, sparse, hybrid]
}

contract!(
    a_zero_sparse_weight_ranks_by_meaning_alone,
    SearchTuning {
        sparse_weight: 0.0,
        ..SearchTuning::default()
    },
    |index: Arc<dyn VectorIndex>| async move {
        let [dense, _, hybrid] = first_hits(index.as_ref()).await;
        assert_eq!(hybrid, dense);
    }
);

contract!(
    a_heavy_sparse_weight_ranks_by_the_exact_words,
    SearchTuning {
        sparse_weight: 10.0,
        ..SearchTuning::default()
    },
    |index: Arc<dyn VectorIndex>| async move {
        let [_, sparse, hybrid] = first_hits(index.as_ref()).await;
        assert_eq!(hybrid, sparse);
    }
);

contract!(
    hybrid_finds_what_only_the_dense_vector_can_match,
    |index: Arc<dyn VectorIndex>| async move {
        let ws = Uuid::new_v4();
        handbook(index.as_ref(), ws).await;
        let scope = WorkspaceScope::local_cli(vec![ws]).unwrap();
        // No word in common with the refund chunk, but the same meaning.
        let question = "How do I get my money back for a purchase I regret?";
        let sparse = index
            .search(&scope, &request(question, SearchMode::Sparse, 6))
            .await
            .unwrap();
        assert!(
            !texts(&sparse).iter().any(|t| t.starts_with("Refund")),
            "BM25 should not see it: {:?}",
            texts(&sparse)
        );
        let dense = index
            .search(&scope, &request(question, SearchMode::Dense, 3))
            .await
            .unwrap();
        assert!(
            texts(&dense)[0].starts_with("Refund"),
            "{:?}",
            texts(&dense)
        );
        let hybrid = index
            .search(&scope, &request(question, SearchMode::Hybrid, 3))
            .await
            .unwrap();
        assert!(
            texts(&hybrid)[0].starts_with("Refund"),
            "{:?}",
            texts(&hybrid)
        );
    }
);

contract!(german_is_indexed_and_searched_as_german, |index: Arc<
    dyn VectorIndex,
>| async move {
    let ws = Uuid::new_v4();
    let document = Uuid::new_v4();
    let chunks = [
        "Die Mitarbeiter haben Anspruch auf dreißig Urlaubstage im Kalenderjahr; nicht genommene Urlaubstage verfallen Ende März des folgenden Jahres.",
        "Reisekosten werden nur gegen Vorlage der Belege erstattet, die innerhalb von vier Wochen bei der Buchhaltung einzureichen sind.",
        "Das Büro öffnet werktags um acht Uhr, der Empfang schließt um achtzehn Uhr.",
    ]
    .iter()
    .enumerate()
    .map(|(i, t)| chunk(ws, document, 1, i as u32, t))
    .collect();
    index.upsert(embed_all(chunks)).await.unwrap();
    let scope = WorkspaceScope::local_cli(vec![ws]).unwrap();
    // Every word of the question is inflected otherwise than in the chunk: only German
    // stemming, of the chunk and of the question, makes them meet (English stemming
    // leaves "Urlaubstagen", "genommenen" and "verfallen" as they are).
    let question = "Wann verfallen die nicht genommenen Urlaubstagen der Mitarbeiterinnen?";
    let hits = index
        .search(&scope, &request(question, SearchMode::Sparse, 3))
        .await
        .unwrap();
    assert!(!hits.is_empty(), "BM25 found nothing");
    assert!(
        texts(&hits)[0].contains("Urlaubstage"),
        "{:?}",
        texts(&hits)
    );
});

contract!(search_never_leaves_the_scope, |index: Arc<
    dyn VectorIndex,
>| async move {
    let (mine, theirs, third) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    handbook(index.as_ref(), mine).await;
    handbook(index.as_ref(), theirs).await;
    for mode in [SearchMode::Hybrid, SearchMode::Dense, SearchMode::Sparse] {
        let hits = index
            .search(
                &WorkspaceScope::local_cli(vec![mine]).unwrap(),
                &request("parking permit QX-7741", mode, 20),
            )
            .await
            .unwrap();
        assert!(!hits.is_empty());
        assert!(
            hits.iter().all(|h| h.chunk.workspace_id == mine),
            "{mode:?} leaked another workspace"
        );
    }
    let both = WorkspaceScope::local_cli(vec![mine, theirs]).unwrap();
    let hits = index
        .search(
            &both,
            &request("parking permit QX-7741", SearchMode::Hybrid, 20),
        )
        .await
        .unwrap();
    assert!(
        hits.iter().any(|h| h.chunk.workspace_id == mine)
            && hits.iter().any(|h| h.chunk.workspace_id == theirs)
    );
    let empty = index
        .search(
            &WorkspaceScope::local_cli(vec![third]).unwrap(),
            &request("parking", SearchMode::Hybrid, 20),
        )
        .await
        .unwrap();
    assert!(empty.is_empty());
});

contract!(search_can_be_narrowed_to_documents, |index: Arc<
    dyn VectorIndex,
>| async move {
    let ws = Uuid::new_v4();
    let first = handbook(index.as_ref(), ws).await;
    let second = handbook(index.as_ref(), ws).await;
    let mut req = request("annual leave", SearchMode::Hybrid, 20);
    req.documents = Some(vec![second]);
    let hits = index
        .search(&WorkspaceScope::local_cli(vec![ws]).unwrap(), &req)
        .await
        .unwrap();
    assert!(!hits.is_empty() && hits.iter().all(|h| h.chunk.document_id == second));
    assert!(!hits.iter().any(|h| h.chunk.document_id == first));
});

contract!(
    upsert_is_idempotent_and_payload_round_trips,
    |index: Arc<dyn VectorIndex>| async move {
        let ws = Uuid::new_v4();
        let doc = handbook(index.as_ref(), ws).await;
        handbook_again(index.as_ref(), ws, doc).await;
        assert_eq!(
            index.count_document(ws, doc, None).await.unwrap(),
            HANDBOOK.len()
        );
        let hits = index
            .search(
                &WorkspaceScope::local_cli(vec![ws]).unwrap(),
                &request("encrypted laptops", SearchMode::Hybrid, 1),
            )
            .await
            .unwrap();
        let expected = chunk(ws, doc, 1, 2, HANDBOOK[2]);
        assert_eq!(
            hits[0].chunk, expected,
            "page, span, title and text come back as stored"
        );
    }
);

async fn handbook_again(index: &dyn VectorIndex, ws: Uuid, doc: Uuid) {
    let chunks = HANDBOOK
        .iter()
        .enumerate()
        .map(|(i, t)| chunk(ws, doc, 1, i as u32, t))
        .collect();
    index.upsert(embed_all(chunks)).await.unwrap();
}

contract!(deletes_by_version_and_by_document, |index: Arc<
    dyn VectorIndex,
>| async move {
    let ws = Uuid::new_v4();
    let doc = handbook(index.as_ref(), ws).await;
    let v2: Vec<_> = HANDBOOK[..2]
        .iter()
        .enumerate()
        .map(|(i, t)| chunk(ws, doc, 2, i as u32, t))
        .collect();
    index.upsert(embed_all(v2)).await.unwrap();
    assert_eq!(
        index.count_document(ws, doc, Some(1)).await.unwrap(),
        HANDBOOK.len()
    );
    assert_eq!(index.count_document(ws, doc, Some(2)).await.unwrap(), 2);

    index.delete_document(ws, doc, Some(1)).await.unwrap();
    assert_eq!(index.count_document(ws, doc, Some(1)).await.unwrap(), 0);
    assert_eq!(index.count_document(ws, doc, None).await.unwrap(), 2);

    index.delete_document(ws, doc, None).await.unwrap();
    assert_eq!(index.count_document(ws, doc, None).await.unwrap(), 0);
    // Deleting what is not there succeeds.
    index.delete_document(ws, doc, None).await.unwrap();
});

contract!(
    chunks_are_read_back_by_index_within_the_scope,
    |index: Arc<dyn VectorIndex>| async move {
        let (mine, theirs) = (Uuid::new_v4(), Uuid::new_v4());
        let doc = handbook(index.as_ref(), mine).await;
        let scope = WorkspaceScope::local_cli(vec![mine]).unwrap();
        let read = index.chunks(&scope, doc, 1, &[4, 2, 3, 99]).await.unwrap();
        assert_eq!(
            read.iter().map(|c| c.chunk_index).collect::<Vec<_>>(),
            vec![2, 3, 4],
            "in chunk order, the missing index skipped"
        );
        assert_eq!(read[0], chunk(mine, doc, 1, 2, HANDBOOK[2]));
        assert!(
            index
                .chunks(
                    &WorkspaceScope::local_cli(vec![theirs]).unwrap(),
                    doc,
                    1,
                    &[2, 3]
                )
                .await
                .unwrap()
                .is_empty(),
            "another tenant's scope reads nothing"
        );
        assert!(
            index.chunks(&scope, doc, 2, &[2]).await.unwrap().is_empty(),
            "nor does another version"
        );
        assert!(index.chunks(&scope, doc, 1, &[]).await.unwrap().is_empty());
    }
);

contract!(points_are_counted_by_workspace_and_in_all, |index: Arc<
    dyn VectorIndex,
>| async move {
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    assert_eq!(
        index.count_points(None).await.unwrap(),
        0,
        "a fresh index is empty"
    );
    let doc = handbook(index.as_ref(), a).await;
    handbook(index.as_ref(), b).await;
    let v2: Vec<_> = HANDBOOK[..3]
        .iter()
        .enumerate()
        .map(|(i, t)| chunk(a, doc, 2, i as u32, t))
        .collect();
    index.upsert(embed_all(v2)).await.unwrap();
    assert_eq!(
        index.count_points(Some(a)).await.unwrap(),
        HANDBOOK.len() + 3,
        "every document and version of the workspace"
    );
    assert_eq!(index.count_points(Some(b)).await.unwrap(), HANDBOOK.len());
    assert_eq!(
        index.count_points(None).await.unwrap(),
        2 * HANDBOOK.len() + 3
    );
    assert_eq!(index.count_points(Some(Uuid::new_v4())).await.unwrap(), 0);
});

contract!(a_vector_of_the_wrong_width_is_refused, |index: Arc<
    dyn VectorIndex,
>| async move {
    let ws = Uuid::new_v4();
    let bad = IndexedChunk {
        chunk: chunk(ws, Uuid::new_v4(), 1, 0, "x"),
        dense: vec![0.1; 7],
    };
    assert!(matches!(
        index.upsert(vec![bad]).await,
        Err(Error::Invalid(_))
    ));
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_index_survives_a_restart_and_refuses_another_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = embedder().model().clone();
    let bm25 = || Bm25::new(Bm25::default_config()).unwrap();
    let ws = Uuid::new_v4();
    let doc = {
        let index =
            EdgeIndex::open(dir.path(), model.clone(), bm25(), SearchTuning::default()).unwrap();
        // One process, one opener: a second open of the same folder is refused.
        let second = EdgeIndex::open(dir.path(), model.clone(), bm25(), SearchTuning::default());
        assert!(
            matches!(second, Err(Error::Conflict(_))),
            "{:?}",
            second.err()
        );
        handbook(&index, ws).await
    };
    let index =
        EdgeIndex::open(dir.path(), model.clone(), bm25(), SearchTuning::default()).unwrap();
    assert_eq!(
        index.count_document(ws, doc, None).await.unwrap(),
        HANDBOOK.len()
    );
    index.optimize().await.unwrap();
    let hits = index
        .search(
            &WorkspaceScope::local_cli(vec![ws]).unwrap(),
            &request("annual leave days", SearchMode::Hybrid, 1),
        )
        .await
        .unwrap();
    assert!(hits[0].chunk.text.starts_with("Annual leave"));
    drop(index);

    let mut other = model.clone();
    other.id = "another/model".into();
    let err = EdgeIndex::open(dir.path(), other, bm25(), SearchTuning::default())
        .err()
        .expect("refused");
    assert!(
        matches!(err, Error::Invalid(_)) && err.to_string().contains("another/model"),
        "{err}"
    );
    let mut wider = model;
    wider.dimension = 768;
    assert!(matches!(
        EdgeIndex::open(dir.path(), wider, bm25(), SearchTuning::default()),
        Err(Error::Invalid(_))
    ));
}
