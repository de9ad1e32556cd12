//! `lectern`: the one binary for users. `serve` runs the three services in one process on
//! the embedded defaults; `migrate` prepares the database; more tools join as they land.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use lectern_runtime::{Settings, telemetry};

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
    /// Print the configuration in force, after files and environment.
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
                println!("reverted every migration of {}", settings.database_url());
            } else {
                store.migrate().await?;
                println!("database {} is up to date", settings.database_url());
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
        Command::Config => {
            println!("{}", toml_like(&settings)?);
        }
    }
    Ok(())
}

fn toml_like(settings: &Settings) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(settings)?)
}
