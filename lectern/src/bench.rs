//! `lectern bench ...`: end-to-end figures for docs/BENCHMARKS.md, measured side by side in
//! one run so that the ratios hold on a noisy machine.

use std::path::PathBuf;
use std::time::Instant;

use lectern::Local;
use lectern_core::InContext;
use lectern_runtime::Settings;
use serde_json::json;

/// The embedded defaults on a throw-away data dir (removed when the guard drops).
async fn scratch_context(mut settings: Settings) -> anyhow::Result<(Local, tempfile::TempDir)> {
    let scratch = tempfile::tempdir()?;
    settings.data_dir = scratch.path().to_owned();
    settings.database.url = None;
    settings.index.qdrant_url = None;
    Ok((Local::open(settings).await?, scratch))
}

/// Ingests `paths` into a scratch data dir with the embedded defaults, then times the
/// embedder alone on the very same chunk texts, and reports both and their ratio.
pub async fn ingest(settings: Settings, paths: &[PathBuf], json_out: bool) -> anyhow::Result<()> {
    let (ctx, _scratch) = scratch_context(settings).await?;
    let summary = crate::ingest::run(&ctx, "bench", paths, true).await?;

    // The embedder alone, in the pipeline's batches, on the same texts.
    let ingestor = ctx.ingestor()?;
    let mut texts = Vec::new();
    for file in &summary.files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bytes = std::fs::read(file)?;
        if let Ok(t) = ingestor.embedding_texts(&name, &bytes) {
            texts.extend(t);
        }
    }
    let embedder = ctx.search.embedder.clone();
    let count = texts.len();
    let embed_seconds = tokio::task::spawn_blocking(move || -> anyhow::Result<f64> {
        let started = Instant::now();
        for batch in texts.chunks(64) {
            embedder.embed_in_context(batch)?;
        }
        Ok(started.elapsed().as_secs_f64())
    })
    .await??;

    let ingest_chunks_per_s = summary.chunks as f64 / summary.seconds;
    let embed_chunks_per_s = count as f64 / embed_seconds;
    let s = &summary.stages;
    let report = json!({
        "pages": summary.pages,
        "chunks": summary.chunks,
        "seconds": summary.seconds,
        "pages_per_second": summary.pages as f64 / summary.seconds,
        "chunks_per_second": ingest_chunks_per_s,
        "stage_seconds": {"parse": s.parse.as_secs_f64(), "chunk": s.chunk.as_secs_f64(), "embed": s.embed.as_secs_f64(), "index": s.index.as_secs_f64()},
        "embedder_alone": {"chunks": count, "seconds": embed_seconds, "chunks_per_second": embed_chunks_per_s},
        "ratio_to_embedder": ingest_chunks_per_s / embed_chunks_per_s,
    });
    if json_out {
        println!("{report}");
    } else {
        println!(
            "ingest: {} pages, {} chunks in {:.1} s = {:.2} pages/s, {:.2} chunks/s",
            summary.pages,
            summary.chunks,
            summary.seconds,
            summary.pages as f64 / summary.seconds,
            ingest_chunks_per_s
        );
        println!(
            "embedder alone on the same {count} chunks: {embed_seconds:.1} s = {embed_chunks_per_s:.2} chunks/s"
        );
        println!(
            "ingest / embedder throughput: {:.3}",
            ingest_chunks_per_s / embed_chunks_per_s
        );
    }
    Ok(())
}

/// This process's peak resident memory (VmHWM), in MiB.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A small deterministic generator (xorshift), so runs index the same points.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
}

/// Retrieval latency at `points` indexed chunks: real chunk texts and embeddings from
/// `paths` (up to `real` of them), repeated with small noise on the vectors up to
/// `points`, in a scratch embedded index; then `queries` real questions (or chunk
/// sentences) timed through hybrid search, without and with embedding the question.
#[allow(clippy::too_many_arguments)]
pub async fn retrieval(
    settings: Settings,
    paths: &[PathBuf],
    points: &[usize],
    real: usize,
    questions: Option<&std::path::Path>,
    keep: Option<&std::path::Path>,
    json_out: bool,
) -> anyhow::Result<()> {
    use lectern_core::{ChunkPoint, IndexedChunk, PageRange, SearchMode, Span, WorkspaceScope};
    let (ctx, _scratch) = match keep {
        // A data dir to keep, for measuring `lectern serve` on the same points.
        Some(dir) => {
            anyhow::ensure!(
                !dir.exists() || std::fs::read_dir(dir)?.next().is_none(),
                "{} must be a new or empty directory",
                dir.display()
            );
            let mut settings = settings;
            settings.data_dir = dir.to_owned();
            settings.database.url = None;
            settings.index.qdrant_url = None;
            (Local::open(settings).await?, None)
        }
        None => {
            let (ctx, scratch) = scratch_context(settings).await?;
            (ctx, Some(scratch))
        }
    };
    let ingestor = ctx.ingestor()?;
    let mut texts = Vec::new();
    for file in crate::ingest::collect(paths)? {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Ok(t) = ingestor.embedding_texts(&name, &std::fs::read(&file)?) {
            texts.extend(t);
        }
    }
    anyhow::ensure!(!texts.is_empty(), "no text in the given files");
    // Spread the sample over the whole corpus.
    let step = (texts.len() / real.max(1)).max(1);
    let sample: Vec<InContext> = texts.into_iter().step_by(step).take(real).collect();
    eprintln!("embedding {} real chunks...", sample.len());
    let embedder = ctx.search.embedder.clone();
    let batch = sample.clone();
    let vectors = tokio::task::spawn_blocking(move || embedder.embed_in_context(&batch)).await??;
    let sample: Vec<String> = sample.iter().map(InContext::joined).collect();

    let questions: Vec<String> = match questions {
        Some(file) => lectern_eval::qa::load(file)?
            .into_iter()
            .map(|q| q.question)
            .collect(),
        None => sample
            .iter()
            .step_by(sample.len().div_ceil(50).max(1))
            .map(|t| t.chars().take(120).collect())
            .collect(),
    };
    let query_vectors = {
        let embedder = ctx.search.embedder.clone();
        let q = questions.clone();
        tokio::task::spawn_blocking(move || embedder.embed_queries(&q)).await??
    };

    let workspace = match keep {
        // The kept index is served as a real workspace: its documents exist in SQL.
        Some(_) => {
            let ws = ctx.store.create_workspace("bench", None).await?.id;
            let documents = points.iter().max().copied().unwrap_or(0).div_ceil(500);
            for d in 0..documents {
                let new = lectern_store::NewDocument {
                    id: uuid::Uuid::from_u128(d as u128 + 1),
                    workspace_id: ws,
                    title: format!("bench {d}"),
                    file_name: format!("bench-{d}.txt"),
                    media_type: "text/plain".into(),
                    sha256: format!("{d:064x}"),
                    size_bytes: 0,
                    storage_key: String::new(),
                };
                ctx.store
                    .create_failed_document(new, "benchmark points, no original")
                    .await?;
            }
            ws
        }
        None => uuid::Uuid::new_v4(),
    };
    let scope = WorkspaceScope::local_cli(vec![workspace])?;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut indexed = 0usize;
    let mut rows = Vec::new();
    let mut targets = points.to_vec();
    targets.sort_unstable();
    for target in targets {
        let started = Instant::now();
        while indexed < target {
            let n = (target - indexed).min(512);
            let batch: Vec<IndexedChunk> = (indexed..indexed + n)
                .map(|i| {
                    let j = i % sample.len();
                    let mut dense: Vec<f32> =
                        vectors[j].iter().map(|v| v + 0.02 * rng.next()).collect();
                    let norm = dense.iter().map(|v| v * v).sum::<f32>().sqrt();
                    dense.iter_mut().for_each(|v| *v /= norm);
                    IndexedChunk {
                        chunk: ChunkPoint {
                            workspace_id: workspace,
                            document_id: uuid::Uuid::from_u128((i / 500) as u128 + 1),
                            version: 1,
                            chunk_index: (i % 500) as u32,
                            pages: PageRange::single(1 + (i % 500) as u32 / 4),
                            span: Span {
                                start: 0,
                                end: sample[j].chars().count(),
                            },
                            title: "bench".into(),
                            text: sample[j].clone(),
                            table_header: None,
                            anchor: None,
                        },
                        dense,
                    }
                })
                .collect();
            ctx.search.index.upsert(batch).await?;
            indexed += n;
        }
        ctx.search.index.optimize().await?;
        let build_seconds = started.elapsed().as_secs_f64();
        // Warm up, then time every question three times.
        let mut search_ms = Vec::new();
        let mut total_ms = Vec::new();
        for round in 0..4 {
            for (q, v) in questions.iter().zip(&query_vectors) {
                let request = lectern_core::SearchRequest {
                    text: q.clone(),
                    dense: v.clone(),
                    limit: 24,
                    mode: SearchMode::Hybrid,
                    documents: None,
                };
                let t = Instant::now();
                ctx.search.index.search(&scope, &request).await?;
                let searched = t.elapsed().as_secs_f64() * 1000.0;
                if round > 0 {
                    search_ms.push(searched);
                }
            }
        }
        for q in &questions {
            let t = Instant::now();
            let embedder = ctx.search.embedder.clone();
            let text = vec![q.clone()];
            let v = tokio::task::spawn_blocking(move || embedder.embed(&text))
                .await??
                .remove(0);
            let request = lectern_core::SearchRequest {
                text: q.clone(),
                dense: v,
                limit: 24,
                mode: SearchMode::Hybrid,
                documents: None,
            };
            ctx.search.index.search(&scope, &request).await?;
            total_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let q = lectern_eval::metrics::quantile;
        let row = json!({
            "points": indexed,
            "index_seconds": build_seconds,
            "search_ms_p50": q(&search_ms, 0.5),
            "search_ms_p99": q(&search_ms, 0.99),
            "with_embedding_ms_p50": q(&total_ms, 0.5),
            "with_embedding_ms_p99": q(&total_ms, 0.99),
            "searches": search_ms.len(),
            "peak_rss_mib": peak_rss_mib(),
        });
        if !json_out {
            println!(
                "{:>7} points: hybrid search p50 {:.2} ms, p99 {:.2} ms; with question embedding p50 {:.1} ms, p99 {:.1} ms; peak RSS {:.0} MiB",
                indexed,
                q(&search_ms, 0.5),
                q(&search_ms, 0.99),
                q(&total_ms, 0.5),
                q(&total_ms, 0.99),
                peak_rss_mib()
            );
        }
        rows.push(row);
    }
    let kept = match keep {
        Some(dir) => {
            let user = ctx
                .store
                .create_user(lectern_store::NewUser {
                    email: "bench@localhost.localdomain".into(),
                    display_name: None,
                    password_hash: None,
                    is_admin: true,
                    verified: Some(lectern_store::EmailProof::Administrator),
                })
                .await?;
            let (_, key) = ctx.store.create_api_key(user.id, "bench").await?;
            if !json_out {
                println!(
                    "kept in {}: workspace {workspace}, API key {key}",
                    dir.display()
                );
            }
            Some(json!({"data_dir": dir, "workspace": workspace, "api_key": key}))
        }
        None => None,
    };
    if json_out {
        println!(
            "{}",
            json!({"real_chunks": sample.len(), "questions": questions.len(), "results": rows, "kept": kept})
        );
    }
    Ok(())
}

/// Time to first token and decode speed of the in-process engine beside llama.cpp's own
/// server on the same GGUF, prompt and thread count, alternating runs; medians and ratios.
pub async fn generate(
    settings: Settings,
    server_exe: &std::path::Path,
    prompt_tokens: usize,
    max_tokens: u32,
    runs: usize,
    json_out: bool,
) -> anyhow::Result<()> {
    use lectern_llm::{ChatMessage, ChatRole, GenerationRequest, Generator};
    let model = settings
        .llm
        .model_path
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no model: pass --llm-model"))?;
    let threads = if settings.llm.threads == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get()) as u32
    } else {
        settings.llm.threads
    };
    let mut options = lectern_llm::LlamaOptions::new(&model);
    options.threads = threads;
    options.context_length = settings.llm.context_length;
    options.parallel = 1;
    let local = lectern_llm::LlamaEngine::load(&options)?;

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut child = std::process::Command::new(server_exe)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "-c",
            &settings.llm.context_length.to_string(),
        ])
        .args(["-t", &threads.to_string(), "-np", "1", "-ngl", "0"])
        .arg("-m")
        .arg(&model)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let base_url = format!("http://127.0.0.1:{port}/v1");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + std::time::Duration::from_secs(120);
    while client
        .get(format!("http://127.0.0.1:{port}/health"))
        .send()
        .await
        .map(|r| r.status().is_success())
        .ok()
        != Some(true)
    {
        anyhow::ensure!(Instant::now() < deadline, "llama-server did not start");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let remote = lectern_llm::OpenAiEngine::new(lectern_llm::OpenAiOptions {
        base_url,
        model: "bench".into(),
        api_key: None,
        context_length: settings.llm.context_length,
        timeout: std::time::Duration::from_secs(600),
    })?;

    // A RAG-shaped prompt of about `prompt_tokens` tokens: numbered passages, a question.
    let passage = "The gnuplot command set terminal selects the output device; set output names the file that receives the plot. ";
    let mut sources = String::new();
    let mut n = 1;
    while local
        .count_tokens(&[ChatMessage::new(ChatRole::System, sources.clone())])
        .await?
        < prompt_tokens as u32
    {
        sources.push_str(&format!(
            "[{n}] Manual (page {n})\n{}\n\n",
            passage.repeat(3)
        ));
        n += 1;
    }
    let messages = vec![
        ChatMessage::new(
            ChatRole::System,
            format!("Answer from the sources only.\n\n{sources}"),
        ),
        ChatMessage::new(
            ChatRole::User,
            "How do I write a plot to a PNG file? Explain in detail.",
        ),
    ];
    let prompt = local.count_tokens(&messages).await?;
    // Each run's prompt differs in its first line, so neither engine can reuse a cached
    // prompt (llama.cpp's server caches the previous prompt of a slot by default).
    let request_for = |run: usize| {
        let mut messages = messages.clone();
        messages[0].content = format!("Run {run}. {}", messages[0].content);
        GenerationRequest {
            messages,
            max_tokens,
            temperature: 0.0,
            seed: 1,
        }
    };
    let mut stats: [Vec<(f64, f64, u32)>; 2] = [Vec::new(), Vec::new()];
    for run in 0..=runs {
        for (i, engine) in [&local as &dyn Generator, &remote as &dyn Generator]
            .into_iter()
            .enumerate()
        {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
            let s = engine.generate(request_for(run), tx).await?;
            drain.await?;
            if run > 0 {
                // Run 0 warms caches and is not counted.
                stats[i].push((
                    s.first_token.map_or(0.0, |d| d.as_secs_f64() * 1000.0),
                    s.tokens_per_second(),
                    s.completion_tokens,
                ));
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let median = |v: &[(f64, f64, u32)], f: fn(&(f64, f64, u32)) -> f64| {
        lectern_eval::metrics::quantile(&v.iter().map(f).collect::<Vec<_>>(), 0.5)
    };
    let (l_ttft, l_tps) = (median(&stats[0], |s| s.0), median(&stats[0], |s| s.1));
    let (r_ttft, r_tps) = (median(&stats[1], |s| s.0), median(&stats[1], |s| s.1));
    let report = json!({
        "model": model,
        "threads": threads,
        "prompt_tokens": prompt,
        "max_tokens": max_tokens,
        "runs": runs,
        "lectern": {"first_token_ms_p50": l_ttft, "decode_tokens_per_s_p50": l_tps, "completion_tokens": stats[0].iter().map(|s| s.2).collect::<Vec<_>>()},
        "llama_server": {"first_token_ms_p50": r_ttft, "decode_tokens_per_s_p50": r_tps, "completion_tokens": stats[1].iter().map(|s| s.2).collect::<Vec<_>>()},
        "decode_ratio": l_tps / r_tps,
        "first_token_ratio": l_ttft / r_ttft,
        "model_mib": std::fs::metadata(&model).map(|m| m.len() as f64 / 1_048_576.0).unwrap_or(0.0),
        "peak_rss_mib": peak_rss_mib(),
    });
    if json_out {
        println!("{report}");
    } else {
        println!(
            "{} ({prompt} prompt tokens, up to {max_tokens} new, {threads} threads, {runs} runs each, medians)",
            model.display()
        );
        println!("lectern (in process): first token {l_ttft:.0} ms, decode {l_tps:.2} tokens/s");
        println!("llama.cpp server:     first token {r_ttft:.0} ms, decode {r_tps:.2} tokens/s");
        println!(
            "decode ratio {:.3}, first-token ratio {:.3}; peak RSS of this process {:.0} MiB",
            l_tps / r_tps,
            l_ttft / r_ttft,
            peak_rss_mib()
        );
    }
    Ok(())
}
