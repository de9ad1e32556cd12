//! `lectern bench ...`: end-to-end figures for docs/BENCHMARKS.md, measured side by side in
//! one run so that the ratios hold on a noisy machine.

use std::path::PathBuf;
use std::time::Instant;

use lectern_runtime::{Context, Settings};
use serde_json::json;

/// Ingests `paths` into a scratch data dir with the embedded defaults, then times the
/// embedder alone on the very same chunk texts, and reports both and their ratio.
pub async fn ingest(
    mut settings: Settings,
    paths: &[PathBuf],
    json_out: bool,
) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    settings.data_dir = scratch.path().to_owned();
    settings.database.url = None;
    settings.index.qdrant_url = None;
    let ctx = Context::open(settings, true).await?;
    let summary = crate::ingest::run(&ctx, "bench", paths, true).await?;

    // The embedder alone, in the pipeline's batches, on the same texts.
    let ingestor = lectern_ingest::pipeline::Ingestor::new(&ctx)?;
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
    let embedder = ctx.embedder.clone();
    let count = texts.len();
    let embed_seconds = tokio::task::spawn_blocking(move || -> anyhow::Result<f64> {
        let started = Instant::now();
        for batch in texts.chunks(64) {
            embedder.embed(batch)?;
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
