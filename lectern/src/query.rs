//! `lectern search` and `lectern ask`: the query service's pipeline in this process, on a
//! workspace by name.

use std::io::Write;

use anyhow::Context as _;
use lectern::Local;
use lectern_core::WorkspaceScope;
use lectern_query::answer::Question;
use serde_json::json;

pub async fn scope_of(ctx: &Local, workspaces: &[String]) -> anyhow::Result<WorkspaceScope> {
    let mut ids = Vec::new();
    for name in workspaces {
        let ws = ctx
            .store
            .find_workspace_by_name(name)
            .await?
            .with_context(|| format!("no workspace named {name:?}; ingest into it first with `lectern ingest --workspace {name:?} PATH`"))?;
        ids.push(ws.id);
    }
    Ok(WorkspaceScope::local_cli(ids)?)
}

fn pages(p: &lectern_query::retrieve::Passage) -> String {
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
    ctx: &Local,
    workspaces: &[String],
    question: &str,
    limit: usize,
    json_out: bool,
) -> anyhow::Result<()> {
    let scope = scope_of(ctx, workspaces).await?;
    let answerer = ctx.answerer(None);
    let retrieved = answerer.search(&scope, question, limit, None).await?;
    if json_out {
        println!("{}", json!({"passages": retrieved.passages}));
        return Ok(());
    }
    if retrieved.passages.is_empty() {
        println!("nothing found");
    }
    for (i, p) in retrieved.passages.iter().enumerate() {
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
    ctx: &Local,
    workspaces: &[String],
    question: &str,
    json_out: bool,
) -> anyhow::Result<()> {
    let scope = scope_of(ctx, workspaces).await?;
    // Without a model the answer is made of the passages' own sentences, with a notice.
    let llm = lectern_query::open_llm(&ctx.settings)?;
    let answerer = ctx.answerer(llm);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let printer = tokio::spawn(async move {
        let mut out = std::io::stdout();
        while let Some(piece) = rx.recv().await {
            if !json_out {
                let _ = out.write_all(piece.as_bytes());
                let _ = out.flush();
            }
        }
    });
    let q = Question {
        text: question.to_owned(),
        history: Vec::new(),
        scope,
        documents: None,
    };
    let a = answerer.answer(q, tx).await?;
    printer.await?;
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
