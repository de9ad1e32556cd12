//! `lectern`: the one binary for users. `serve` runs the three services in one process on
//! the embedded defaults; `migrate` prepares the database; more tools join as they land.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use lectern_runtime::{Settings, telemetry};

mod accounts;
mod bench;
mod check;
mod eval;
mod ingest;
mod mcp;
mod query;
mod source;

#[derive(Parser, Debug)]
#[command(
    name = "lectern",
    version,
    about = "A self-hosted knowledge assistant that cites its sources"
)]
struct Cli {
    /// Where Lectern keeps its database, index and originals (embedded shape).
    #[arg(long, global = true, env = "LECTERN_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// A TOML configuration file; `LECTERN_*` environment variables override it.
    #[arg(long, global = true, env = "LECTERN_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// The GGUF language model for `ask`, `serve` and `eval` (llama.cpp in this process).
    #[arg(long, global = true, value_name = "PATH")]
    llm_model: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create or upgrade the database schema.
    Migrate {
        /// Revert every migration instead (drops Lectern's tables).
        #[arg(long)]
        down: bool,
    },
    /// Run ingest, query and web in one process.
    Serve {
        /// Address to listen on.
        #[arg(long, value_name = "ADDR")]
        bind: Option<SocketAddr>,
    },
    /// Ingest files and folders (recursively) into a workspace, created if missing.
    Ingest {
        #[arg(long, value_name = "NAME")]
        workspace: String,
        /// Print one JSON object instead of the summary.
        #[arg(long)]
        json: bool,
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Synced sources: folders of this server, or web sites, kept in step with a workspace.
    #[command(subcommand)]
    Source(source::SourceCommand),
    /// Search a workspace: the passages that best match the question.
    Search {
        /// The workspace (repeat to search several).
        #[arg(long = "workspace", value_name = "NAME", required = true)]
        workspaces: Vec<String>,
        #[arg(long, default_value_t = 5)]
        limit: usize,
        /// Print `{"passages": [...]}` instead of the list.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArgs,
        question: String,
    },
    /// Ask a question: a streamed answer from the workspace's documents, with sources.
    Ask {
        #[arg(long = "workspace", value_name = "NAME", required = true)]
        workspaces: Vec<String>,
        /// Print one JSON object (answer, citations, passages, timings).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArgs,
        question: String,
    },
    /// Serve the Model Context Protocol on standard input and output, for an assistant
    /// that starts Lectern as its tool (search, ask, list_workspaces, read_passage). The
    /// tools act for one person: an API key's holder, or a user named with --user.
    Mcp {
        /// Act for the holder of this API key.
        #[arg(
            long,
            env = "LECTERN_API_KEY",
            value_name = "KEY",
            hide_env_values = true
        )]
        api_key: Option<String>,
        /// Act for this user of this machine's Lectern, without a key (wins over a key).
        #[arg(long, value_name = "EMAIL")]
        user: Option<String>,
    },
    /// Check that the database and the index agree: every document ready (its chunk rows
    /// and index points equal), failed with a reason, or waiting for a job; no orphan
    /// points; no document whose synced source is gone. Exits 1 and lists the problems
    /// otherwise. Stop `lectern serve` first.
    Check {
        /// Print one JSON object (totals and problems) instead of the summary.
        #[arg(long)]
        json: bool,
        /// Delete the documents whose source is gone (their points and originals too) and
        /// finish the removal of sources left half removed, then check again.
        #[arg(long)]
        repair: bool,
    },
    /// Print the configuration in force, after files and environment (secrets hidden).
    Config,
    /// Measure retrieval and answer quality (figures for docs/EVALUATION.md).
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Measure end-to-end speed (figures for docs/BENCHMARKS.md).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Manage users.
    #[command(subcommand)]
    User(accounts::UserCommand),
    /// Manage API keys for the HTTP APIs.
    #[command(subcommand)]
    ApiKey(accounts::ApiKeyCommand),
}

/// Ask a running Lectern over its HTTP APIs instead of this machine's data.
#[derive(clap::Args, Debug)]
struct ServerArgs {
    /// The address of a running Lectern, e.g. http://127.0.0.1:8080.
    #[arg(long = "server", env = "LECTERN_SERVER", value_name = "URL")]
    url: Option<String>,
    /// The API key to call it with (only with --server).
    #[arg(
        long,
        env = "LECTERN_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    api_key: Option<String>,
}

impl ServerArgs {
    async fn target(self, settings: Settings) -> anyhow::Result<query::Target> {
        match self.url {
            Some(url) => query::Target::server(&url, self.api_key),
            None => Ok(query::Target::Local(open(settings).await?)),
        }
    }
}

#[derive(Subcommand, Debug)]
enum EvalCommand {
    /// nDCG@10, Recall@5/10/100 and MRR@10 on a BEIR-format dataset (corpus.jsonl,
    /// queries.jsonl, qrels/test.tsv), for dense, BM25 and hybrid search. The corpus is
    /// ingested into the workspace (default eval-<folder name>) unless it is there.
    Retrieval {
        #[arg(long, value_name = "DIR")]
        dataset: PathBuf,
        #[arg(long, value_name = "NAME")]
        workspace: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Answer every question of a JSONL file (question, answerable, doc, pages,
    /// answer_keywords) and score retrieval, answers, citations, abstention and latency.
    Qa {
        #[arg(long = "workspace", value_name = "NAME", required = true)]
        workspaces: Vec<String>,
        /// Measure retrieval and the abstention threshold only (no answers; the model is
        /// loaded only to rerank, with `query.rerank`): fast, for tuning.
        #[arg(long)]
        retrieval_only: bool,
        #[arg(long)]
        json: bool,
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// OCR's word recall and speed: pages of the text PDFs in DIR are drawn as scans
    /// (image-only PDFs) and read back through ingest's parser with the `ocr` settings;
    /// PDFium's text of each original page is the truth.
    Ocr {
        /// Pages to measure, spread over the PDFs.
        #[arg(long, default_value_t = 50)]
        pages: usize,
        /// Resolution the scans are made at.
        #[arg(long, default_value_t = 300)]
        scan_dpi: u32,
        #[arg(long)]
        json: bool,
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Ingest files into a scratch data dir, then time the embedder alone on the same
    /// chunks: pages/s, chunks/s, time by stage, and the pipeline's share of the
    /// embedder's throughput.
    Ingest {
        #[arg(long)]
        json: bool,
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Hybrid search latency (p50, p99) at the given numbers of indexed chunks, built from
    /// the real chunks of PATH... (vectors repeated with small noise), and peak memory.
    Retrieval {
        /// Indexed chunks to measure at (repeat: --points 10000 --points 100000).
        #[arg(long = "points", required = true)]
        points: Vec<usize>,
        /// Real chunks embedded to build the points from.
        #[arg(long, default_value_t = 2000)]
        real: usize,
        /// A question file (qa.jsonl format) for the queries; default: chunk openings.
        #[arg(long)]
        questions: Option<PathBuf>,
        /// Build in this (new) data dir and keep it, with a workspace `bench`, an admin
        /// user and an API key, so that `lectern serve` can be measured on the points.
        #[arg(long, value_name = "DIR")]
        keep: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Time to first token and decode tokens/s of the in-process model beside llama.cpp's
    /// own server (`--server`, e.g. from scripts/build-llama-server.sh) on the same GGUF.
    Generate {
        #[arg(long, env = "LECTERN_LLAMA_SERVER")]
        server: PathBuf,
        #[arg(long, default_value_t = 1000)]
        prompt_tokens: usize,
        #[arg(long, default_value_t = 128)]
        max_tokens: u32,
        #[arg(long, default_value_t = 5)]
        runs: usize,
        #[arg(long)]
        json: bool,
    },
}

fn load_settings(cli: &Cli) -> anyhow::Result<Settings> {
    let mut settings = Settings::load(cli.config.as_deref())?;
    if let Some(dir) = &cli.data_dir {
        settings.data_dir = dir.clone();
    }
    if let Some(model) = &cli.llm_model {
        settings.llm.model_path = Some(model.clone());
    }
    Ok(settings)
}

/// This machine's Lectern: the schema brought up to date, the search adapters open.
async fn open(settings: Settings) -> anyhow::Result<lectern::Local> {
    lectern::Local::open(settings).await
}

async fn migrated_store(settings: &Settings) -> anyhow::Result<lectern_store::Store> {
    let store = lectern_runtime::Context::open_store(settings).await?;
    store.migrate().await?;
    Ok(store)
}

fn main() -> anyhow::Result<()> {
    // First, before any thread starts: `lectern` is also the worker that parses one file
    // and the one that draws one page of a PDF.
    lectern_runtime::worker::serve_if_worker(&[
        lectern_ingest::parse::PARSE_JOB,
        lectern_web::render::RENDER_JOB,
    ]);
    actix_web::rt::System::new().block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut settings = load_settings(&cli)?;
    telemetry::init(&settings.log);
    match cli.command {
        Command::Migrate { down } => {
            let store = lectern_runtime::Context::open_store(&settings).await?;
            if down {
                store.migrate_down_all().await?;
                println!(
                    "reverted every migration of {}",
                    lectern_store::redact(&settings.database_url())
                );
            } else {
                store.migrate().await?;
                println!(
                    "database {} is up to date",
                    lectern_store::redact(&settings.database_url())
                );
            }
        }
        Command::Serve { bind } => {
            if let Some(bind) = bind {
                settings.server.bind = bind;
            }
            let ctx = lectern_runtime::Context::open(settings, true)
                .await
                .context("could not start Lectern")?;
            let services = lectern::services(&ctx).await?;
            ctx.serve(services).await?;
        }
        Command::Ingest {
            workspace,
            json,
            paths,
        } => {
            let ctx = open(settings).await?;
            ingest::run(&ctx, &workspace, &paths, json).await?;
        }
        Command::Source(command) => source::run(&open(settings).await?, command).await?,
        Command::Search {
            workspaces,
            limit,
            json,
            server,
            question,
        } => {
            let target = server.target(settings).await?;
            query::search(&target, &workspaces, &question, limit, json).await?;
        }
        Command::Ask {
            workspaces,
            json,
            server,
            question,
        } => {
            let target = server.target(settings).await?;
            query::ask(&target, &workspaces, &question, json).await?;
        }
        Command::Mcp { api_key, user } => {
            mcp::serve(settings, api_key, user).await?;
        }
        Command::Eval(EvalCommand::Ocr {
            pages,
            scan_dpi,
            json,
            dir,
        }) => eval::ocr(&settings, &dir, pages, scan_dpi, json).await?,
        Command::Eval(command) => {
            let ctx = open(settings).await?;
            match command {
                EvalCommand::Retrieval {
                    dataset,
                    workspace,
                    json,
                } => eval::retrieval(&ctx, &dataset, workspace, json).await?,
                EvalCommand::Qa {
                    workspaces,
                    retrieval_only,
                    json,
                    file,
                } => eval::qa(&ctx, &workspaces, &file, retrieval_only, json).await?,
                EvalCommand::Ocr { .. } => unreachable!("measured without opening Lectern"),
            }
        }
        Command::Bench(BenchCommand::Ingest { json, paths }) => {
            bench::ingest(settings, &paths, json).await?;
        }
        Command::Bench(BenchCommand::Retrieval {
            points,
            real,
            questions,
            keep,
            json,
            paths,
        }) => {
            bench::retrieval(
                settings,
                &paths,
                &points,
                real,
                questions.as_deref(),
                keep.as_deref(),
                json,
            )
            .await?;
        }
        Command::Bench(BenchCommand::Generate {
            server,
            prompt_tokens,
            max_tokens,
            runs,
            json,
        }) => {
            bench::generate(settings, &server, prompt_tokens, max_tokens, runs, json).await?;
        }
        Command::User(command) => {
            accounts::user(&migrated_store(&settings).await?, command).await?;
        }
        Command::ApiKey(command) => {
            accounts::api_key(&migrated_store(&settings).await?, command).await?;
        }
        Command::Check { json, repair } => {
            // A check migrates nothing: a schema with pending migrations is refused.
            let ctx = lectern_runtime::Context::open(settings, false).await?;
            let search = lectern_search::SearchAdapters::open(&ctx.settings)
                .await
                .context("could not open the embedding model or the index")?;
            let ingestor = if repair {
                Some(lectern_ingest::pipeline::Ingestor::new(&ctx, &search)?)
            } else {
                None
            };
            let consistent =
                check::run(&ctx.store, search.index.as_ref(), ingestor.as_ref(), json).await?;
            drop((ingestor, search, ctx));
            if !consistent {
                std::process::exit(1);
            }
        }
        Command::Config => {
            // Every secret setting serialises as "[redacted]"; the database URL is shown
            // with only its password (and any query, which may hold one) hidden.
            let mut shown = serde_json::to_value(&settings)?;
            if let Some(url) = &settings.database.url {
                let url = url.expose_secret();
                shown["database"]["url"] = match url.split_once('?') {
                    Some((base, _)) => format!("{}?[redacted]", lectern_store::redact(base)),
                    None => lectern_store::redact(url),
                }
                .into();
            }
            println!("{}", serde_json::to_string_pretty(&shown)?);
        }
    }
    Ok(())
}
