//! The command line: `serve`, `migrate`.

use clap::{Parser, Subcommand};

use crate::config::{ConfigArgs, LogFormat};

#[derive(Parser, Debug)]
#[command(
    name = "a2v2",
    version,
    about = "Self-hosted server for AI-agent workspaces: contacts, documents and scoped API keys",
    long_about = "Self-hosted server for AI-agent workspaces: contacts, documents and scoped API keys.\n\n\
        With no configuration `a2v2 serve` listens on 127.0.0.1:8080 and keeps everything under ./data.\n\
        Settings come from flags, then A2V2_* environment variables, then the --config TOML file."
)]
pub struct Cli {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (applies pending migrations first)
    Serve {
        /// Do not apply migrations at start-up
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply pending database migrations and exit
    Migrate,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config.resolve()?;
    init_logging(config.log_format);
    match cli.command {
        Command::Serve { no_migrate } => {
            tracing::info!(config = ?config, "starting");
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .map_err(|err| anyhow::anyhow!("cannot listen on {}: {err}", config.listen))?;
            let state = crate::app::open(config, !no_migrate).await?;
            crate::app::serve(state, listener, crate::app::shutdown_signal()).await
        }
        Command::Migrate => {
            crate::config::ensure_dir(&config.data_dir)?;
            let store = crate::store::Store::connect(&config.database_url).await?;
            store.migrate().await?;
            println!(
                "migrations applied to {}",
                crate::config::redact_url(&config.database_url)
            );
            Ok(())
        }
    }
}
