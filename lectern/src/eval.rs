//! `lectern eval retrieval` and `lectern eval qa`: quality figures for docs/EVALUATION.md.

use std::path::Path;

use anyhow::Context as _;
use lectern::Local;

pub async fn retrieval(
    ctx: &Local,
    dataset: &Path,
    workspace: Option<String>,
    json_out: bool,
) -> anyhow::Result<()> {
    let name = workspace.unwrap_or_else(|| {
        format!(
            "eval-{}",
            dataset
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "beir".into())
        )
    });
    let report = lectern::evaluation::retrieval(ctx, dataset, &name).await?;
    if json_out {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    println!(
        "{}: {} documents, {} queries (workspace {name:?}; fusion: RRF, k = {})",
        report.dataset, report.documents, report.queries, report.rrf_k
    );
    println!(
        "{:<8} {:>8} {:>9} {:>10} {:>11} {:>7}",
        "mode", "nDCG@10", "Recall@5", "Recall@10", "Recall@100", "MRR@10"
    );
    for m in &report.modes {
        let s = &m.scores;
        println!(
            "{:<8} {:>8.4} {:>9.4} {:>10.4} {:>11.4} {:>7.4}",
            format!("{:?}", m.mode).to_lowercase(),
            s.ndcg_at_10,
            s.recall_at_5,
            s.recall_at_10,
            s.recall_at_100,
            s.mrr_at_10
        );
    }
    Ok(())
}

pub async fn qa(
    ctx: &Local,
    workspaces: &[String],
    file: &Path,
    retrieval_only: bool,
    json_out: bool,
) -> anyhow::Result<()> {
    let items = lectern_eval::qa::load(file)?;
    let scope = crate::query::scope_of(ctx, workspaces).await?;
    // Retrieval alone needs no model, unless the model reranks what the search finds.
    let llm = if retrieval_only && ctx.settings.query.rerank == 0 {
        None
    } else {
        Some(
            lectern_query::open_llm(&ctx.settings)?
                .context("no language model: pass --llm-model PATH.gguf or set llm.model_path")?,
        )
    };
    let model = llm.as_ref().map_or_else(
        || "none (retrieval only)".to_owned(),
        |l| l.info().id.clone(),
    );
    let answerer = ctx.answerer(llm);
    let (summary, records) =
        lectern::evaluation::qa(&answerer, &scope, &items, !retrieval_only, |r| {
            if !json_out {
                eprintln!(
                    "{:<10} hit@1 {} hit@5 {} keywords {:.2} cites-page {} abstained {} {} ms",
                    r.id,
                    r.hit_at_1 as u8,
                    r.hit_at_5 as u8,
                    r.keywords,
                    r.cites_right_page as u8,
                    r.abstained as u8,
                    r.total_ms
                );
            }
        })
        .await?;
    if json_out {
        println!(
            "{}",
            serde_json::json!({"model": model, "summary": summary, "questions": records})
        );
        return Ok(());
    }
    let s = &summary;
    println!(
        "model {model}: {} questions ({} answerable, {} not)",
        s.questions, s.answerable, s.unanswerable
    );
    println!("retrieval page-hit@1        {:.3}", s.page_hit_at_1);
    println!("retrieval page-hit@5        {:.3}", s.page_hit_at_5);
    println!("answer keyword accuracy     {:.3}", s.keyword_accuracy);
    println!("citation correctness        {:.3}", s.citation_correctness);
    println!("supported sentences         {:.3}", s.supported_sentences);
    println!("abstention precision        {:.3}", s.abstention_precision);
    println!("abstention recall           {:.3}", s.abstention_recall);
    println!("answerable answered         {:.3}", s.answer_rate);
    println!("extractive answers          {:.3}", s.extractive_share);
    println!("prompt tokens p50           {:.0}", s.prompt_tokens_p50);
    println!(
        "  of which read (not cached) {:.0}",
        s.prompt_tokens_read_p50
    );
    println!(
        "latency p50 retrieval {:.0} ms, first token {:.0} ms, total {:.0} ms (p90 {:.0} ms)",
        s.retrieval_ms_p50, s.first_token_ms_p50, s.total_ms_p50, s.total_ms_p90
    );
    Ok(())
}

pub async fn ocr(
    settings: &lectern_runtime::Settings,
    dir: &Path,
    pages: usize,
    scan_dpi: u32,
    json_out: bool,
) -> anyhow::Result<()> {
    let library = settings
        .ingest
        .pdfium_lib
        .clone()
        .filter(|p| p.is_file())
        .context("OCR needs PDFium (ingest.pdfium_lib; scripts/fetch-assets.sh pdfium)")?;
    let engine = settings
        .ocr
        .engine()
        .context("OCR is off (ocr.enabled = false)")?;
    let dir = dir.to_owned();
    let report = tokio::task::spawn_blocking(move || {
        lectern::evaluation::ocr::ocr(&library, &engine, &dir, pages, scan_dpi)
    })
    .await??;
    if json_out {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    println!(
        "{} ({}), scans at {} dpi read at {} dpi: {} pages, {} words",
        report.engine,
        report.languages.join("+"),
        report.scan_dpi,
        report.ocr_dpi,
        report.pages,
        report.words
    );
    println!(
        "word recall {:.4}, word precision {:.4}; {:.2} s a page (p50), {:.2} s (p90), {:.2} pages/s",
        report.recall,
        report.precision,
        report.seconds_p50,
        report.seconds_p90,
        report.pages_per_second
    );
    for f in &report.files {
        println!(
            "  {:<28} recall {:.4}  pages {:?}",
            f.file, f.recall, f.pages
        );
    }
    Ok(())
}
