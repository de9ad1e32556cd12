//! `lectern search` and `lectern ask`: in this process on this machine's data, or, with
//! `--server`, through the typed client of a running Lectern's HTTP APIs. Both paths give
//! the same wire types, so one printer serves them.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use futures::StreamExt;
use lectern::Local;
use lectern_api::query::{Answer, AnswerBody, AnswerEvent, Passage, SearchBody};
use lectern_api::{Auth, Client};
use lectern_core::{WorkspaceScope, resolve_workspace_name};
use lectern_query::answer::Question;
use lectern_store::NameScope;
use serde_json::json;
use uuid::Uuid;

/// Where the questions go.
pub enum Target {
    /// The pipeline in this process, on workspaces by name.
    Local(Local),
    /// A running Lectern, as the holder of an API key.
    Server(Client),
}

impl Target {
    /// A client of the Lectern at `url` (one address serves both APIs under `lectern serve`).
    pub fn server(url: &str, api_key: Option<String>) -> anyhow::Result<Self> {
        let key = api_key.context(
            "--server needs an API key: pass --api-key or set LECTERN_API_KEY (make one with `lectern api-key create`)",
        )?;
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()?;
        Ok(Self::Server(Client::new(http, url, url, Auth::ApiKey(key))))
    }

    pub async fn search(
        &self,
        workspaces: &[String],
        question: &str,
        limit: usize,
    ) -> anyhow::Result<Vec<Passage>> {
        Ok(match self {
            Self::Local(local) => {
                let scope = scope_of(local, workspaces).await?;
                // The model is loaded for a search only to rerank it (`query.rerank`).
                // One that cannot be loaded leaves the search's order.
                let llm = if local.settings.query.rerank > 0 {
                    lectern_query::open_llm(&local.settings).unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "no language model to rerank with");
                        None
                    })
                } else {
                    None
                };
                let answerer = local.answerer(llm);
                answerer
                    .search(&scope, question, limit, None)
                    .await?
                    .passages
            }
            Self::Server(client) => {
                let body = SearchBody {
                    question: question.to_owned(),
                    workspaces: workspace_ids(client, workspaces).await?,
                    documents: None,
                    limit: Some(limit),
                };
                client.search(&body).await?.passages
            }
        })
    }

    /// The checked answer; `on_token` sees the model's draft as it is written.
    pub async fn ask(
        &self,
        workspaces: &[String],
        question: &str,
        mut on_token: impl FnMut(&str) + Send + 'static,
    ) -> anyhow::Result<Answer> {
        match self {
            Self::Local(local) => {
                let scope = scope_of(local, workspaces).await?;
                // Without a model the answer is made of the passages' own sentences, with a
                // notice.
                let llm = lectern_query::open_llm(&local.settings)?;
                let answerer = local.answerer(llm);
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
                let printer = tokio::spawn(async move {
                    while let Some(piece) = rx.recv().await {
                        on_token(&piece);
                    }
                });
                let q = Question {
                    text: question.to_owned(),
                    history: Vec::new(),
                    scope,
                    documents: None,
                };
                let answer = answerer.answer(q, tx).await?;
                printer.await?;
                Ok(answer)
            }
            Self::Server(client) => {
                let body = AnswerBody {
                    question: question.to_owned(),
                    workspaces: workspace_ids(client, workspaces).await?,
                    ..AnswerBody::default()
                };
                let mut events = client.answer_stream(&body).await?;
                while let Some(event) = events.next().await {
                    match event? {
                        AnswerEvent::Token(piece) => on_token(&piece),
                        AnswerEvent::Answer(result) => return Ok(result.answer),
                        AnswerEvent::Error(body) => return Err(body.into_error().into()),
                        AnswerEvent::Sources(_) | AnswerEvent::Done => {}
                    }
                }
                anyhow::bail!("the answer broke off before it was complete; ask again")
            }
        }
    }
}

/// The scope of the named workspaces (or ids), as the operator at this machine's command
/// line names them: any workspace here, those made at the command line first where two
/// share a name (`lectern_store::NameScope::Operator`).
pub async fn scope_of(ctx: &Local, workspaces: &[String]) -> anyhow::Result<WorkspaceScope> {
    let mut ids = Vec::new();
    for name in workspaces {
        let ws = ctx
            .store
            .find_workspace_by_name(NameScope::Operator, name)
            .await?
            .with_context(|| format!("no workspace named {name:?}; ingest into it first with `lectern ingest --workspace {name:?} PATH`"))?;
        ids.push(ws.id);
    }
    Ok(WorkspaceScope::local_cli(ids)?)
}

/// The ids of the named workspaces (or ids) among those the key can read; where two share
/// a name, the key's owner's own ([`resolve_workspace_name`]).
async fn workspace_ids(client: &Client, names: &[String]) -> anyhow::Result<Vec<Uuid>> {
    let readable = client.workspaces().await?;
    names
        .iter()
        .map(|name| -> anyhow::Result<Uuid> {
            let visible = readable.iter().map(|w| (w.id, w.name.as_str(), w.owned));
            resolve_workspace_name(name, visible)?
                .with_context(|| format!("no workspace named {name:?} that this API key can read"))
        })
        .collect()
}

fn pages(p: &Passage) -> String {
    if p.pages.end > p.pages.start {
        format!("pages {}-{}", p.pages.start, p.pages.end)
    } else {
        format!("page {}", p.pages.start)
    }
}

fn snippet(text: &str, chars: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= chars {
        flat
    } else {
        format!("{}...", flat.chars().take(chars).collect::<String>())
    }
}

pub async fn search(
    target: &Target,
    workspaces: &[String],
    question: &str,
    limit: usize,
    json_out: bool,
) -> anyhow::Result<()> {
    let passages = target.search(workspaces, question, limit).await?;
    if json_out {
        println!("{}", json!({ "passages": passages }));
        return Ok(());
    }
    if passages.is_empty() {
        println!("nothing found");
    }
    for (i, p) in passages.iter().enumerate() {
        println!(
            "[{}] {} ({}), score {:.3}",
            i + 1,
            p.document,
            pages(p),
            p.score
        );
        println!("    {}\n", snippet(&p.text, 300));
    }
    Ok(())
}

pub async fn ask(
    target: &Target,
    workspaces: &[String],
    question: &str,
    json_out: bool,
) -> anyhow::Result<()> {
    let streamed = Arc::new(AtomicBool::new(false));
    let a = target
        .ask(workspaces, question, {
            let streamed = streamed.clone();
            move |piece| {
                if !json_out {
                    streamed.store(true, Ordering::Relaxed);
                    let mut out = std::io::stdout();
                    let _ = out.write_all(piece.as_bytes());
                    let _ = out.flush();
                }
            }
        })
        .await?;
    if json_out {
        let citations: Vec<_> = a
            .citations
            .iter()
            .map(|c| json!({"n": c.n, "document": c.document, "title": c.title, "page": c.page, "quote": c.quote, "chunk_id": c.chunk_id, "supported": c.supported}))
            .collect();
        println!(
            "{}",
            json!({
                "answer": a.answer,
                "abstained": a.abstained,
                "extractive": a.extractive,
                "notice": a.notice,
                "citations": citations,
                "sentences": a.sentences,
                "passages": a.passages,
                "timings": a.timings,
            })
        );
        return Ok(());
    }
    if !streamed.load(Ordering::Relaxed) && a.notice.is_none() {
        // Nothing was streamed (an abstention decided from the evidence alone).
        print!("{}", a.answer);
    }
    println!("\n");
    if a.abstained {
        if !a.passages.is_empty() {
            println!("You may look here:");
            for p in &a.passages {
                println!(
                    "  - {} ({}): {}",
                    p.document,
                    pages(p),
                    snippet(&p.text, 160)
                );
            }
        }
        return Ok(());
    }
    if let Some(notice) = &a.notice {
        // What was streamed was the model's draft; this is the checked answer.
        println!("{notice}\n\n{}\n", a.answer);
    }
    println!("Sources:");
    for c in &a.citations {
        println!(
            "  [{}] {}, page {}{}",
            c.n,
            c.document,
            c.page,
            if c.supported {
                ""
            } else {
                "  (not supported by this passage)"
            }
        );
    }
    let unsupported: Vec<_> = a.sentences.iter().filter(|s| !s.supported).collect();
    if !unsupported.is_empty() {
        println!("Not supported by the cited sources:");
        for s in unsupported {
            println!("  - {}", s.text);
        }
    }
    let t = &a.timings;
    eprintln!(
        "\nretrieval {} ms, first token {} ms, total {} ms, {} tokens at {:.1} tokens/s",
        t.retrieval_ms,
        t.first_token_ms.unwrap_or(0),
        t.total_ms,
        t.completion_tokens,
        t.tokens_per_second
    );
    Ok(())
}
