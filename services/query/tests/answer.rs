//! The answer logic around its seams, without model files: a bag-of-words embedder and a
//! scripted language model, over a real SQLite store and Qdrant's embedded engine (both
//! start in milliseconds). What is checked: when it abstains, how it reads the model's
//! refusals, how uncited sentences are attributed, how a follow-up is rewritten, and how
//! the prompt is fitted to the context window.

use std::sync::Arc;

use lectern_core::testing::HashEmbedder;
use lectern_core::{ChunkPoint, Embedder, IndexedChunk, PageRange, Span, WorkspaceScope};
use lectern_llm::testing::ScriptedGenerator;
use lectern_llm::{ChatMessage, Generator};
use lectern_query::answer::{Answer, Answerer, Question, history_messages};
use lectern_query::prompt;
use lectern_query::retrieve::Retriever;
use lectern_runtime::Settings;
use lectern_search::SearchAdapters;
use lectern_store::entity::document;
use lectern_store::testing::TestDatabase;
use lectern_store::{NameScope, NewDocument};
use sea_orm::{ActiveModelTrait, Set};
use uuid::Uuid;

const LEAVE: &str = "Staff get 30 days of annual leave each calendar year.";
const PARKING: &str = "Visitors park for free in the north car park on weekends.";
const PRINTERS: &str = "The colour printers stand on the third floor next to the kitchen.";

struct Fixture {
    answerer: Answerer,
    scope: WorkspaceScope,
    llm: Option<Arc<ScriptedGenerator>>,
    _db: TestDatabase,
    _data: tempfile::TempDir,
}

/// A workspace holding one single-chunk document per text (page n for the n-th), and an
/// answerer over it with `llm` (none: no model configured).
async fn fixture(texts: &[&str], llm: Option<ScriptedGenerator>) -> Fixture {
    let whole: Vec<(&str, Vec<(usize, usize)>)> = texts
        .iter()
        .map(|t| (*t, vec![(0, t.chars().count())]))
        .collect();
    chunked_fixture(&whole, llm).await
}

/// A workspace holding one document per text (page n for the n-th), cut into chunks at
/// the character spans given, and an answerer over it with `llm`.
async fn chunked_fixture(
    documents: &[(&str, Vec<(usize, usize)>)],
    llm: Option<ScriptedGenerator>,
) -> Fixture {
    let db = TestDatabase::sqlite();
    let store = db.store().await;
    let data = tempfile::tempdir().unwrap();
    let mut settings = Settings::default();
    settings.data_dir = data.path().to_owned();
    let embedder = Arc::new(HashEmbedder::new(256));
    let index = lectern_search::open_index(&settings, embedder.as_ref())
        .await
        .unwrap();
    let ws = store.create_workspace("Handbook", None).await.unwrap().id;
    let mut points = Vec::new();
    for (i, (document, spans)) in documents.iter().enumerate() {
        let id = Uuid::new_v4();
        store
            .create_document(NewDocument {
                id,
                workspace_id: ws,
                title: format!("Doc {i}"),
                file_name: format!("doc-{i}.pdf"),
                media_type: "application/pdf".into(),
                sha256: format!("{i}"),
                size_bytes: 1,
                storage_key: id.to_string(),
            })
            .await
            .unwrap();
        for (at, &(start, end)) in spans.iter().enumerate() {
            let text: String = document.chars().skip(start).take(end - start).collect();
            points.push(IndexedChunk {
                dense: embedder.vector(&text),
                chunk: ChunkPoint {
                    workspace_id: ws,
                    document_id: id,
                    version: 1,
                    chunk_index: at as u32,
                    pages: PageRange::single(i as u32 + 1),
                    span: Span { start, end },
                    title: format!("Doc {i}"),
                    text,
                    table_header: None,
                    anchor: None,
                },
            });
        }
    }
    index.upsert(points).await.unwrap();
    let search = SearchAdapters {
        embedder: embedder.clone() as Arc<dyn Embedder>,
        index,
    };
    let llm = llm.map(Arc::new);
    let answerer = Answerer {
        retriever: Retriever::new(store, &search),
        llm: llm.clone().map(|l| l as Arc<dyn Generator>),
        settings: settings.query.clone(),
        max_tokens: 64,
        temperature: 0.0,
        refuse_when_busy: false,
    };
    Fixture {
        answerer,
        scope: WorkspaceScope::local_cli(vec![ws]).unwrap(),
        llm,
        _db: db,
        _data: data,
    }
}

impl Fixture {
    async fn ask(&self, text: &str, history: Vec<ChatMessage>) -> lectern_core::Result<Answer> {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        self.answerer
            .answer(
                Question {
                    text: text.into(),
                    history,
                    scope: self.scope.clone(),
                    documents: None,
                },
                tx,
            )
            .await
    }

    fn requests(&self) -> Vec<lectern_llm::GenerationRequest> {
        self.llm.as_ref().map(|l| l.requests()).unwrap_or_default()
    }
}

#[tokio::test]
async fn weak_evidence_abstains_without_asking_the_model() {
    let f = fixture(
        &[LEAVE, PARKING],
        Some(ScriptedGenerator::answering("Anything [1].")),
    )
    .await;
    let a = f
        .ask("Which antivirus scanner is licensed?", vec![])
        .await
        .unwrap();
    assert!(a.abstained, "{a:?}");
    assert_eq!(a.answer, prompt::NOT_FOUND);
    assert!(a.citations.is_empty());
    assert!(f.requests().is_empty(), "the model was not asked");
}

#[tokio::test]
async fn a_cited_answer_keeps_its_citations_and_their_pages() {
    let f = fixture(
        &[PARKING, LEAVE, PRINTERS],
        Some(ScriptedGenerator::answering(
            "Staff get 30 days of annual leave each year [1].",
        )),
    )
    .await;
    let a = f
        .ask("How many days of annual leave do staff get?", vec![])
        .await
        .unwrap();
    assert!(!a.abstained, "{a:?}");
    assert_eq!(a.citations.len(), 1);
    let c = &a.citations[0];
    assert_eq!(
        c.quote, LEAVE,
        "source [1] is the best match: the leave page"
    );
    assert_eq!(c.page, 2);
    assert!(
        c.supported && a.sentences.iter().all(|s| s.supported),
        "{a:?}"
    );
    // The prompt held the sources, best first, and the question.
    let prompt = &f.requests()[0].messages;
    let text: String = prompt.iter().map(|m| m.content.as_str()).collect();
    assert!(text.contains("[1] Doc 1") && text.contains(LEAVE), "{text}");
    assert_eq!(c.url, None, "an uploaded file has no address");

    // The same page read by a web source: its citation links to the page.
    let store = &f.answerer.retriever.store;
    let ws = store
        .find_workspace_by_name(NameScope::Operator, "Handbook")
        .await
        .unwrap()
        .unwrap()
        .id;
    let leave = store
        .find_document_by_file_name(ws, "doc-1.pdf")
        .await
        .unwrap()
        .unwrap();
    let url = "https://intranet.example/hr/leave.html";
    document::ActiveModel {
        id: Set(leave.id),
        source_key: Set(Some(url.into())),
        file_name: Set("leave.html".into()),
        ..Default::default()
    }
    .update(store.connection())
    .await
    .unwrap();
    let a = f
        .ask("How many days of annual leave do staff get?", vec![])
        .await
        .unwrap();
    assert_eq!(a.citations[0].url.as_deref(), Some(url), "{a:?}");
    assert_eq!(a.citations[0].document, "leave.html");
}

/// A synced file moved or renamed keeps its points (nothing is embedded again) while its
/// row takes the new name and title: what a search, a citation and the prompt show is
/// read from the row, never the title the points were written with.
#[tokio::test]
async fn a_renamed_document_is_shown_and_cited_by_its_new_name_and_title() {
    let f = fixture(
        &[PARKING, LEAVE, PRINTERS],
        Some(ScriptedGenerator::answering(
            "Staff get 30 days of annual leave each year [1].",
        )),
    )
    .await;
    let store = &f.answerer.retriever.store;
    let ws = store
        .find_workspace_by_name(NameScope::Operator, "Handbook")
        .await
        .unwrap()
        .unwrap()
        .id;
    let leave = store
        .find_document_by_file_name(ws, "doc-1.pdf")
        .await
        .unwrap()
        .unwrap();
    // What `Store::rename_source_document` changes: the name and the title.
    document::ActiveModel {
        id: Set(leave.id),
        file_name: Set("annual-leave.pdf".into()),
        title: Set("annual leave".into()),
        ..Default::default()
    }
    .update(store.connection())
    .await
    .unwrap();

    let found = f
        .answerer
        .search(&f.scope, "How many days of annual leave?", 3, None)
        .await
        .unwrap();
    let passage = found
        .passages
        .iter()
        .find(|p| p.document_id == leave.id)
        .expect("the leave passage");
    assert_eq!(
        (passage.document.as_str(), passage.title.as_str()),
        ("annual-leave.pdf", "annual leave")
    );
    let a = f
        .ask("How many days of annual leave do staff get?", vec![])
        .await
        .unwrap();
    let c = &a.citations[0];
    assert_eq!(
        (c.document.as_str(), c.title.as_str()),
        ("annual-leave.pdf", "annual leave"),
        "{a:?}"
    );
    let prompt: String = f.requests()[0]
        .messages
        .iter()
        .map(|m| m.content.as_str())
        .collect();
    assert!(prompt.contains("[1] annual leave"), "{prompt}");
    assert!(!prompt.contains("Doc 1"), "the old title: {prompt}");
}

#[tokio::test]
async fn a_refusal_abstains_on_weak_evidence_but_quotes_strong_evidence() {
    // Weak: the passage shares only a word or two with the question.
    let mut weak = fixture(
        &[LEAVE],
        Some(ScriptedGenerator::answering(
            "The documents do not contain information about parental leave.",
        )),
    )
    .await;
    weak.answerer.settings.abstain_below = 0.05;
    let question = "Is parental leave paid for staff at the company?";
    // Less than half of the question's words are in the passages: "not found", and the
    // model is not even asked.
    let a = weak.ask(question, vec![]).await.unwrap();
    assert!(a.abstained && a.evidence.coverage < 0.5, "{a:?}");
    assert!(weak.requests().is_empty(), "the model was not asked");
    // Asked all the same, its refusal stands.
    weak.answerer.settings.abstain_coverage = 0.0;
    let a = weak.ask(question, vec![]).await.unwrap();
    assert_eq!(weak.requests().len(), 1, "the model was asked");
    assert!(a.abstained && !a.extractive, "{a:?}");
    assert!(!a.passages.is_empty(), "it shows where one may look");

    // Strong: the passage answers the question in its own words; the model's refusal is
    // not the last word, the documents' sentences are.
    let strong = fixture(
        &[LEAVE, PARKING],
        Some(ScriptedGenerator::answering(
            "The documents do not contain the answer.",
        )),
    )
    .await;
    let a = strong
        .ask("How many days of annual leave do staff get?", vec![])
        .await
        .unwrap();
    assert!(!a.abstained && a.extractive, "{a:?}");
    assert!(a.answer.contains(LEAVE), "{}", a.answer);
    assert_eq!(a.citations.len(), 1);
    assert_eq!(a.citations[0].quote, LEAVE);
    assert!(a.notice.as_deref().unwrap().contains("own words"), "{a:?}");
}

#[tokio::test]
async fn a_refused_question_naming_what_no_passage_holds_is_not_found() {
    // The passages cover most of the question's words, but not the name it asks about.
    let f = fixture(
        &[LEAVE, PARKING],
        Some(ScriptedGenerator::answering(
            "The documents do not contain the answer.",
        )),
    )
    .await;
    let a = f
        .ask(
            "How many days of annual leave do staff get under Workday?",
            vec![],
        )
        .await
        .unwrap();
    assert!(a.abstained && !a.extractive, "{a:?}");
    assert_eq!(a.evidence.missing, vec!["workday"]);
}

#[tokio::test]
async fn a_question_naming_what_no_passage_holds_is_not_found_whatever_the_model_would_say() {
    // The model would answer from a passage about something else (seen with a question
    // about calling gnuplot from Rust, over manuals that never name Rust).
    let mut f = fixture(
        &[LEAVE, PARKING],
        Some(ScriptedGenerator::answering(
            "Staff get 30 days of annual leave [1].",
        )),
    )
    .await;
    let question = "How many days of annual leave do staff get under Workday?";
    let a = f.ask(question, vec![]).await.unwrap();
    assert!(a.abstained && !a.extractive, "{a:?}");
    assert!(f.requests().is_empty(), "the model was not asked");
    assert_eq!(
        a.notice.as_deref(),
        Some("None of the passages found mentions \u{201c}Workday\u{201d}."),
        "the notice names the term as asked"
    );
    // A number or a code-like term is no name: it is often the asker's own example.
    for (i, question) in [
        "How many days of annual leave do staff get in 2025?",
        "How many days of annual leave do staff get, e.g. in leave_plan.xlsx?",
    ]
    .into_iter()
    .enumerate()
    {
        let a = f.ask(question, vec![]).await.unwrap();
        assert!(!a.abstained, "{a:?}");
        assert_eq!(f.requests().len(), i + 1, "the model was asked");
    }
    // Without the rule the model is asked, and its answer stands.
    f.answerer.settings.absent_names_not_found = false;
    let a = f.ask(question, vec![]).await.unwrap();
    assert!(!a.abstained && a.answer.contains("30 days"), "{a:?}");
    assert_eq!(f.requests().len(), 3);
}

#[tokio::test]
async fn a_name_some_document_holds_is_not_absent_though_the_passages_found_lack_it() {
    let f = fixture(
        &[LEAVE, PARKING, "The Workday portal is closed on Sundays."],
        None,
    )
    .await;
    // The passage found for the question lacks the names asked below.
    let options = f.answerer.search_options(1, None);
    let found = f
        .answerer
        .retriever
        .search(
            &f.scope,
            "How many days of annual leave do staff get?",
            &options,
        )
        .await
        .unwrap();
    assert_eq!(found.passages.len(), 1);
    assert!(!found.passages[0].text.contains("Workday"));
    let absent = |question: &'static str| {
        let (f, found) = (&f, &found);
        async move {
            f.answerer
                .named_in_no_document(&f.scope, question, found, None)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        absent("How many days of annual leave do staff get in Workday?").await,
        Vec::<String>::new(),
        "another document names it"
    );
    assert_eq!(
        absent("How many days of annual leave do staff get in Oracle or Workday?").await,
        vec!["oracle"],
        "no document names it"
    );
}

#[tokio::test]
async fn a_cited_negative_is_an_answer() {
    let negative = fixture(
        &[LEAVE],
        Some(ScriptedGenerator::answering(
            "The annual leave policy does not contain a carry-over rule [1].",
        )),
    )
    .await;
    let a = negative
        .ask("Can staff carry annual leave days over?", vec![])
        .await
        .unwrap();
    assert!(
        !a.abstained && !a.extractive,
        "a cited sentence is an answer: {a:?}"
    );
    assert_eq!(a.citations.len(), 1);
}

#[tokio::test]
async fn sentences_naming_what_no_source_holds_are_left_out_with_a_notice() {
    let f = fixture(
        &[LEAVE, PARKING],
        Some(ScriptedGenerator::answering(
            "Staff get 30 days of annual leave [1]. Requests go through the Workday portal within 14 days [1].",
        )),
    )
    .await;
    let a = f
        .ask("How many days of annual leave do staff get?", vec![])
        .await
        .unwrap();
    assert!(!a.abstained && !a.extractive, "{a:?}");
    assert_eq!(a.answer, "Staff get 30 days of annual leave [1].");
    assert_eq!(a.sentences.len(), 1);
    assert!(a.notice.as_deref().unwrap().contains("1 sentence"), "{a:?}");

    // A draft with nothing grounded is not an answer: the documents' words are.
    let invented = fixture(
        &[LEAVE],
        Some(ScriptedGenerator::answering(
            "Use the Workday portal to book leave; HR approves it within 14 days.",
        )),
    )
    .await;
    let a = invented
        .ask("How many days of annual leave do staff get?", vec![])
        .await
        .unwrap();
    assert!(a.extractive && !a.answer.contains("Workday"), "{a:?}");
}

#[tokio::test]
async fn a_table_of_contents_comes_after_the_page_it_points_to() {
    // The contents hold more of the question's words than the page that answers it.
    let contents = "1 Annual leave: the days staff get each year . . . . . . . . 2\n\
                    1.1 How many days of leave staff get . . . . 2\n\
                    1.2 Annual leave in each calendar year . . . . 2\n\
                    2 Parking . . . . . . . . . . . . . . . 3";
    let answer = "Employees are entitled to 30 days of annual leave.";
    let f = fixture(&[contents, answer, PARKING, PRINTERS], None).await;
    let question = "How many days of annual leave do staff get each year?";
    let mut options = f.answerer.search_options(2, None);
    let first_pages = |found: lectern_query::retrieve::Retrieved| {
        found.passages.iter().map(|p| p.page).collect::<Vec<_>>()
    };
    options.navigation_last = false;
    let before = f
        .answerer
        .retriever
        .search(&f.scope, question, &options)
        .await
        .unwrap();
    assert_eq!(
        first_pages(before),
        [1, 2],
        "without the rule the contents come first"
    );
    options.navigation_last = true;
    let after = first_pages(
        f.answerer
            .retriever
            .search(&f.scope, question, &options)
            .await
            .unwrap(),
    );
    assert_eq!(after[0], 2, "the page that answers comes first");
    assert!(
        !after.contains(&1),
        "prose pages come before the contents: {after:?}"
    );
    assert!(
        f.answerer.search_options(2, None).navigation_last,
        "the default puts navigation last"
    );
}

#[tokio::test]
async fn with_reranking_the_model_s_judgement_orders_the_first_passages() {
    let question = "How many days of annual leave do staff get?";
    let judge = ScriptedGenerator::new(4096, vec![Ok("0.05".into()), Ok("0.9".into())]);
    let mut f = fixture(&[LEAVE, PARKING, PRINTERS], Some(judge)).await;
    async fn pages(f: &Fixture, question: &str, limit: usize) -> Vec<u32> {
        let found = f.answerer.search(&f.scope, question, limit, None).await;
        found.unwrap().passages.iter().map(|p| p.page).collect()
    }
    let searched = pages(&f, question, 2).await;
    assert_eq!(searched[0], 1, "off by default: the search's order");
    assert!(
        f.llm.as_ref().unwrap().requests().is_empty(),
        "no judgement without query.rerank"
    );

    f.answerer.settings.rerank = 2;
    let reranked = pages(&f, question, 1).await;
    assert_eq!(
        reranked,
        [searched[1]],
        "the second passage, judged the likelier answer, comes first; the limit holds"
    );
    let asked = f.llm.as_ref().unwrap().requests();
    assert_eq!(asked.len(), 2, "one judgement per passage read");
    assert!(
        asked[0].messages[1]
            .content
            .contains("Question: How many days")
    );

    // Evidence too weak to answer from is refused whatever its order: nothing is judged.
    f.answerer.settings.abstain_below = 1.1;
    let weak = pages(&f, question, 2).await;
    assert_eq!(weak, searched, "the search's order");
    assert_eq!(f.llm.as_ref().unwrap().requests().len(), 2, "no judgement");
}

#[tokio::test]
async fn the_sources_are_known_before_the_model_writes() {
    let f = fixture(
        &[LEAVE, PARKING],
        Some(ScriptedGenerator::answering("Staff get 30 days [1].")),
    )
    .await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let record = seen.clone();
    let a = f
        .answerer
        .answer_with_sources(
            Question {
                text: "How many days of annual leave do staff get?".into(),
                history: vec![],
                scope: f.scope.clone(),
                documents: None,
            },
            move |sources: &[lectern_query::retrieve::Passage]| {
                *record.lock().unwrap() = Some(sources.to_vec());
            },
            tx,
        )
        .await
        .unwrap();
    let sources = seen
        .lock()
        .unwrap()
        .clone()
        .expect("the sources were announced");
    assert_eq!(
        sources, a.passages,
        "the announced sources are the answer's"
    );
    assert!(rx.try_recv().is_ok(), "the tokens followed");
}

#[tokio::test]
async fn the_model_reads_the_sentences_its_sources_chunks_cut_whole_and_their_spans_stay_true() {
    let manual = "Tables are set with the tabular environment of the manual. The colsep option \
        sets the space between the columns of every table, 6pt when nothing is said. Rules go \
        between rows and are drawn with hline. Floats are placed by the engine at the top \
        of a page.";
    let at = |needle: &str| manual[..manual.find(needle).unwrap()].chars().count();
    let after = |needle: &str| at(needle) + needle.chars().count();
    // Overlapping chunks that start and end inside sentences, trimmed, as the splitter
    // cuts them.
    let spans = vec![
        (0, after("The colsep option sets")),
        (at("colsep option"), after("Rules go between rows")),
        (at("between rows"), manual.chars().count()),
    ];
    let f = chunked_fixture(
        &[
            (manual, spans),
            (PARKING, vec![(0, PARKING.chars().count())]),
        ],
        Some(ScriptedGenerator::answering(
            "The colsep option sets the space between columns, 6pt by default [1].",
        )),
    )
    .await;
    let a = f
        .ask(
            "What sets the space between the columns of a table?",
            vec![],
        )
        .await
        .unwrap();
    let whole = "The colsep option sets the space between the columns of every table, 6pt when nothing is said.";
    let prompt = &f.requests()[0].messages;
    assert!(
        prompt.iter().any(|m| m.content.contains(whole)),
        "the model read the whole sentence: {prompt:?}"
    );
    let from_manual: Vec<_> = a
        .passages
        .iter()
        .filter(|p| p.document == "doc-0.pdf")
        .collect();
    assert!(!from_manual.is_empty());
    for source in &from_manual {
        let on_page: String = manual
            .chars()
            .skip(source.span.start)
            .take(source.span.end - source.span.start)
            .collect();
        assert_eq!(on_page, source.text, "its span is still the very words");
        assert!(
            source.text.starts_with(char::is_uppercase) && source.text.ends_with('.'),
            "whole sentences: {:?}",
            source.text
        );
    }
    let cited = &a.citations[0];
    let on_page: String = manual
        .chars()
        .skip(cited.span_start)
        .take(cited.span_end - cited.span_start)
        .collect();
    assert_eq!(
        on_page, cited.quote,
        "the citation's span is its quote's words"
    );
    assert!(cited.quote.contains(whole), "{:?}", cited.quote);
}

#[tokio::test]
async fn an_uncited_claim_is_attributed_to_the_source_that_supports_it() {
    let f = fixture(
        &[LEAVE, PRINTERS],
        Some(ScriptedGenerator::answering(
            "Staff get 30 days of annual leave [1]. The colour printers stand on the third floor next to the kitchen.",
        )),
    )
    .await;
    let a = f
        .ask("annual leave days staff and colour printers floor", vec![])
        .await
        .unwrap();
    assert!(!a.abstained, "{a:?}");
    let printers = a
        .sentences
        .iter()
        .find(|s| s.text.contains("printers"))
        .expect("the second sentence");
    assert!(printers.inferred, "Lectern added the marker: {printers:?}");
    assert_eq!(printers.sources.len(), 1);
    let n = printers.sources[0];
    let cited = a.citations.iter().find(|c| c.n == n).unwrap();
    assert_eq!(cited.quote, PRINTERS);
    assert!(
        a.answer.ends_with(&format!("kitchen. [{n}]")),
        "{}",
        a.answer
    );
}

#[tokio::test]
async fn a_follow_up_is_rewritten_to_stand_alone_before_the_search() {
    let f = fixture(
        &[LEAVE, PARKING],
        Some(ScriptedGenerator::new(
            4096,
            vec![
                Ok("Where do visitors park on weekends?".into()),
                Ok("Visitors park for free in the north car park on weekends [1].".into()),
            ],
        )),
    )
    .await;
    // As the API reads a stored conversation.
    let history = history_messages(&[
        (
            "user".into(),
            "How many days of annual leave do staff get?".into(),
        ),
        ("assistant".into(), "Staff get 30 days [1].".into()),
    ]);
    let a = f.ask("And the visitors?", history).await.unwrap();
    assert_eq!(a.search_query, "Where do visitors park on weekends?");
    let requests = f.requests();
    assert_eq!(requests.len(), 2, "one rewrite, one answer");
    let rewrite: String = requests[0]
        .messages
        .iter()
        .map(|m| m.content.as_str())
        .collect();
    assert!(rewrite.contains("And the visitors?"), "{rewrite}");
    assert!(!a.abstained);
    assert_eq!(
        a.citations[0].quote, PARKING,
        "the rewrite found the parking page"
    );
    // History is stripped of stale markers before it reaches the model.
    let answer_prompt = &requests[1].messages;
    assert!(
        answer_prompt
            .iter()
            .all(|m| !m.content.contains("30 days [1]")),
        "{answer_prompt:?}"
    );
}

#[tokio::test]
async fn a_context_too_small_for_any_source_abstains() {
    // Room for the instructions and the question only.
    let instructions = prompt::INSTRUCTIONS.split_whitespace().count() as u32;
    let f = fixture(
        &[LEAVE],
        Some(ScriptedGenerator::new(
            instructions + 64 + 12,
            vec![Ok("Staff get 30 days [1].".into())],
        )),
    )
    .await;
    let a = f
        .ask("How many days of annual leave do staff get?", vec![])
        .await
        .unwrap();
    assert!(
        a.abstained,
        "an answer without sources would not be grounded: {a:?}"
    );
    assert!(f.requests().is_empty());
}

#[tokio::test]
async fn a_draft_left_with_only_its_lead_in_is_not_an_answer() {
    // Every step names what no passage holds; what would remain announces nothing.
    let f = fixture(
        &[LEAVE, PARKING],
        Some(ScriptedGenerator::answering(
            "To book your leave, follow these steps: [1]\n\n1. Open Workday on your laptop today.\n2. Submit the Workday absence form to HR now.",
        )),
    )
    .await;
    let a = f
        .ask("How many days of annual leave do staff get?", vec![])
        .await
        .unwrap();
    assert!(a.extractive, "{a:?}");
    assert!(
        !a.answer.contains("Workday") && !a.answer.contains("steps"),
        "{}",
        a.answer
    );
}

#[tokio::test]
async fn a_draft_mostly_from_the_models_own_knowledge_is_not_an_answer() {
    // One sentence matches a passage; the three others name what no passage holds. The
    // one left would be shown as if the documents answered: the documents' words are.
    let f = fixture(
        &[LEAVE, PARKING],
        Some(ScriptedGenerator::answering(
            "Staff get 30 days of annual leave [1]. Book it in Workday first. HR approves it within 14 days. Unused days expire in March 2027.",
        )),
    )
    .await;
    let a = f
        .ask("How many days of annual leave do staff get?", vec![])
        .await
        .unwrap();
    assert!(a.extractive, "{a:?}");
    assert!(
        a.notice
            .as_deref()
            .is_some_and(|n| n.starts_with("Most of the model's draft")),
        "{a:?}"
    );
    assert!(!a.answer.contains("Workday"), "{}", a.answer);
}

#[tokio::test]
async fn a_draft_that_only_restates_the_question_says_so() {
    // The marker stands where the answer should be: nothing the user did not say, but
    // the passage it cites holds the answer.
    let f = fixture(
        &[LEAVE, PARKING],
        Some(ScriptedGenerator::answering(
            "The days of annual leave that staff get are [1].",
        )),
    )
    .await;
    let a = f
        .ask("How many days of annual leave do staff get?", vec![])
        .await
        .unwrap();
    assert!(!a.extractive && !a.abstained, "{a:?}");
    assert!(
        a.notice.as_deref().is_some_and(|n| n.contains("restates")),
        "{a:?}"
    );
    assert_eq!(a.citations.len(), 1, "{a:?}");
    assert_eq!(a.citations[0].quote, LEAVE);

    // A draft that says what the passage says has no such notice.
    let f = fixture(
        &[LEAVE, PARKING],
        Some(ScriptedGenerator::answering(
            "Staff get 30 days of annual leave per year [1].",
        )),
    )
    .await;
    let a = f
        .ask("How many days of annual leave do staff get?", vec![])
        .await
        .unwrap();
    assert!(!a.extractive && !a.abstained && a.notice.is_none(), "{a:?}");
}

#[tokio::test]
async fn without_a_model_or_with_it_down_the_documents_answer_with_a_notice() {
    let f = fixture(&[LEAVE, PARKING], None).await;
    let a = f
        .ask("How many days of annual leave do staff get?", vec![])
        .await
        .unwrap();
    assert!(!a.abstained && a.extractive, "{a:?}");
    assert!(
        a.notice.as_deref().unwrap().contains("No language model"),
        "{a:?}"
    );
    assert!(
        a.answer.contains(LEAVE) && a.answer.ends_with("[1]"),
        "{}",
        a.answer
    );
    // Weak evidence without a model: "not found", not an error.
    let a = f
        .ask("Which antivirus scanner is licensed?", vec![])
        .await
        .unwrap();
    assert!(a.abstained);
    let found = f
        .answerer
        .search(&f.scope, "annual leave days", 5, None)
        .await
        .unwrap();
    assert_eq!(found.passages[0].text, LEAVE);

    let down = fixture(
        &[LEAVE, PARKING],
        Some(ScriptedGenerator::new(
            4096,
            vec![Err("the model server is restarting".into())],
        )),
    )
    .await;
    let a = down
        .ask("How many days of annual leave do staff get?", vec![])
        .await
        .unwrap();
    assert!(a.extractive, "{a:?}");
    assert!(
        a.notice.as_deref().unwrap().contains("unavailable"),
        "{a:?}"
    );

    // A model busy with other questions: the same answer from the passages, said so; a
    // client that retries (the OpenAI-compatible API) is told to come back instead.
    let busy = fixture(
        &[LEAVE, PARKING],
        Some(ScriptedGenerator::new(
            4096,
            vec![Err("busy: 2 answered, 16 wait".into())],
        )),
    )
    .await;
    let a = busy
        .ask("How many days of annual leave do staff get?", vec![])
        .await
        .unwrap();
    assert!(a.extractive && a.answer.contains(LEAVE), "{a:?}");
    assert!(a.notice.as_deref().unwrap().contains("busy"), "{a:?}");
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let err = busy
        .answerer
        .refusing_when_busy()
        .answer(
            Question {
                text: "How many days of annual leave do staff get?".into(),
                history: vec![],
                scope: busy.scope.clone(),
                documents: None,
            },
            tx,
        )
        .await
        .unwrap_err();
    assert_eq!(err.retry_after(), Some(5), "{err}");
}
