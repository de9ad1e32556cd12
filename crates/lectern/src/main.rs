//! `lectern`: the one binary for users. `serve` runs the three services in one process on
//! the embedded defaults; `migrate` prepares the database; more tools join as they land.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use lectern_runtime::{Settings, telemetry};

mod ingest;

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
    /// Print the configuration in force, after files and environment (secrets hidden).
    Config,
}

fn load_settings(cli: &Cli) -> anyhow::Result<Settings> {
    let mut settings = Settings::load(cli.config.as_deref())?;
    if let Some(dir) = &cli.data_dir {
        settings.data_dir = dir.clone();
    }
    Ok(settings)
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
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
            lectern_runtime::serve(
                ctx,
                &[
                    (lectern_ingest::NAME, lectern_ingest::configure),
                    (lectern_query::NAME, lectern_query::configure),
                    (lectern_web::NAME, lectern_web::configure),
                ],
            )
            .await?;
        }
        Command::Ingest {
            workspace,
            json,
            paths,
        } => {
            let ctx = lectern_runtime::Context::open(settings, true)
                .await
                .context("could not start Lectern")?;
            ingest::run(&ctx, &workspace, &paths, json).await?;
        }
        Command::Config => {
            let mut shown = settings.clone();
            if shown.index.qdrant_api_key.is_some() {
                shown.index.qdrant_api_key = Some("***".into());
            }
            shown.database.url = shown.database.url.as_deref().map(lectern_store::redact);
            println!("{}", serde_json::to_string_pretty(&shown)?);
        }
    }
    Ok(())
}
