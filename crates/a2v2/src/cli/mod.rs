//! The command line: `serve`, `migrate`, `members add`, `keys create|list|delete`, `agents`,
//! `contacts import|export`, `audit export`, `backup`, `restore`, `seed`.

mod agents;
mod audit;
mod backup;
mod contacts;
mod keys;
mod log_output;
mod members;
mod seed;

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
    /// Manage the members who sign in to the dashboard
    Members {
        #[command(subcommand)]
        command: MembersCommand,
    },
    /// Create, list and delete API keys (a running server applies changes within a second)
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// List and create agents
    Agents {
        #[command(subcommand)]
        command: AgentsCommand,
    },
    /// Import contacts from a CSV file, export them as CSV or JSON Lines
    Contacts {
        #[command(subcommand)]
        command: ContactsCommand,
    },
    /// Read the audit log
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Write a consistent copy of the embedded database while the server runs (the master
    /// key is not included: keep it apart)
    Backup {
        /// File to write; must not exist
        #[arg(long, value_name = "FILE")]
        out: std::path::PathBuf,
    },
    /// Fill the workspace with many generated rows to try it at scale: contacts of one
    /// agent, API keys across agents, audit events on the hash chain (best with the server
    /// stopped; a running server loads the seeded keys on restart)
    Seed(seed::SeedArgs),
    /// Put a backup in place as the database of --data-dir (which must have none), after
    /// checking that the master key given fits it
    Restore {
        /// The backup file
        #[arg(long, value_name = "FILE")]
        from: std::path::PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum AgentsCommand {
    /// List every agent, oldest first
    List {
        /// Print JSON like the management API instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Create an agent; prints its id
    Create {
        /// The agent's name, 1–100 characters
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ContactsCommand {
    /// Import a CSV file: the header row names the columns (Email, First Name, Mobile…;
    /// other columns become attributes); rows are de-duplicated by email. Prints the
    /// created/updated/skipped counts and why each skipped row was skipped.
    Import {
        /// Id of the agent whose contacts these are
        #[arg(long, value_name = "AGENT_ID")]
        agent: String,
        /// What a row whose email the agent already has does: skip or update
        #[arg(long, default_value = "skip")]
        on_duplicate: String,
        /// Print the report as JSON, like the management API
        #[arg(long)]
        json: bool,
        /// The CSV file (UTF-8, UTF-16 with a byte-order mark, or Windows-1252)
        file: std::path::PathBuf,
    },
    /// Export an agent's contacts, oldest first, to --out or standard output
    Export {
        /// Id of the agent
        #[arg(long, value_name = "AGENT_ID")]
        agent: String,
        /// csv or jsonl
        #[arg(long, default_value = "csv")]
        format: String,
        /// Only contacts whose names, email or company contain this text
        #[arg(long)]
        q: Option<String>,
        /// Only contacts with this tag
        #[arg(long)]
        tag: Option<String>,
        /// Only contacts created or last changed by this API key or member id
        #[arg(long)]
        written_by: Option<String>,
        /// File to write instead of standard output
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Export events oldest first as CSV or JSON Lines (to --out or standard output)
    Export {
        /// csv or jsonl
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// Only this action, or a prefix such as `api_key.*`
        #[arg(long)]
        action: Option<String>,
        /// Only events of this agent
        #[arg(long)]
        agent_id: Option<String>,
        /// Only events by this actor
        #[arg(long)]
        actor_id: Option<String>,
        /// From this time on (RFC 3339)
        #[arg(long)]
        since: Option<String>,
        /// Before this time (RFC 3339)
        #[arg(long)]
        until: Option<String>,
        /// File to write instead of standard output
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
    },
    /// Check the audit log's hash chain; names the first event that was changed, deleted or
    /// written around the server, and exits with status 1 then
    Verify,
}

#[derive(Subcommand, Debug)]
pub enum MembersCommand {
    /// Add a member (works before the first setup: the first member must be an owner).
    /// The password comes from --password-file, else A2V2_MEMBER_PASSWORD, else a prompt.
    Add {
        /// Email address the member signs in with
        #[arg(long)]
        email: String,
        /// owner, admin or member
        #[arg(long, value_parser = members::parse_role)]
        role: crate::model::member::Role,
        /// File whose content (without the final newline) is the password
        #[arg(long)]
        password_file: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create an API key; prints its secret once (alone on standard output, or in --json)
    Create {
        /// Id of the agent whose data the key grants
        #[arg(long, value_name = "AGENT_ID")]
        agent: String,
        #[command(flatten)]
        key: keys::NewKey,
        /// Print the whole key as JSON, like the management API, secret in `key`
        #[arg(long)]
        json: bool,
    },
    /// List an agent's API keys, newest first (never their secrets)
    List {
        /// Id of the agent
        #[arg(long, value_name = "AGENT_ID")]
        agent: String,
        /// Print JSON like the management API instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Delete (revoke) an API key: requests with it fail from then on
    Delete {
        /// Id of the agent that owns the key
        #[arg(long, value_name = "AGENT_ID")]
        agent: String,
        /// Id of the key (see `a2v2 keys list`)
        key_id: String,
    },
    /// Roll an API key: a new secret for the same key; prints it once. The old secret keeps
    /// working for --grace-seconds, then fails on every node
    Roll {
        /// Id of the agent that owns the key
        #[arg(long, value_name = "AGENT_ID")]
        agent: String,
        /// Id of the key (see `a2v2 keys list`)
        key_id: String,
        /// Seconds the old secret keeps working, 0–604800
        #[arg(long, default_value_t = 0)]
        grace_seconds: u64,
        /// Print the whole key as JSON, like the management API, secret in `key`
        #[arg(long)]
        json: bool,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(log_output::Batched)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
    log_output::start();
}

/// Runs the command; everything it logged is written out before this returns.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let result = run_command(cli).await;
    log_output::flush();
    result
}

async fn run_command(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config.resolve()?;
    init_logging(config.log_format);
    match cli.command {
        Command::Serve { no_migrate } => {
            tracing::info!(config = ?config, "starting");
            let listener = crate::server::bind(config.listen)
                .map_err(|err| anyhow::anyhow!("cannot listen on {}: {err}", config.listen))?;
            let state = crate::server::open(config, !no_migrate).await?;
            crate::server::serve(state, listener, crate::server::shutdown_signal()).await
        }
        Command::Migrate => {
            crate::config::ensure_dir(&config.data_dir)?;
            let store = crate::store::Store::connect(&config.database_url).await?;
            store.migrate().await?;
            store.close().await;
            println!(
                "migrations applied to {}",
                crate::config::redact_url(&config.database_url)
            );
            Ok(())
        }
        Command::Members { command } => run_members(&config, command).await,
        Command::Keys { command } => run_keys(&config, command).await,
        Command::Agents { command } => run_agents(&config, command).await,
        Command::Contacts { command } => run_contacts(&config, command).await,
        Command::Audit { command } => run_audit(&config, command).await,
        Command::Backup { out } => {
            let bytes = backup::backup(&config, &out).await?;
            println!("backup written to {} ({bytes} bytes)", out.display());
            eprintln!(
                "The master key is not in the backup: keep a copy of it apart; without it no \
                 API key verifies after a restore."
            );
            Ok(())
        }
        Command::Seed(args) => seed::run(&config, &args).await,
        Command::Restore { from } => {
            backup::restore(&config, &from).await?;
            println!(
                "restored {} into {}; start the server with the same master key",
                from.display(),
                config.data_dir.display()
            );
            Ok(())
        }
    }
}

async fn run_keys(config: &crate::config::Config, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create { agent, key, json } => {
            let created = keys::create(config, &agent, &key).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&created)?);
            } else {
                eprintln!(
                    "API key {} ({}) created for agent {agent}; its secret is shown only once:",
                    created.id, created.name
                );
                println!("{}", created.key.unwrap_or_default());
            }
            Ok(())
        }
        KeysCommand::List { agent, json } => {
            let rows = keys::list(config, &agent).await?;
            if json {
                println!("{:#}", keys::list_json(&rows));
            } else if rows.is_empty() {
                eprintln!("agent {agent} has no API keys");
            } else {
                print!("{}", keys::table(&rows));
            }
            Ok(())
        }
        KeysCommand::Delete { agent, key_id } => {
            let row = keys::delete(config, &agent, &key_id).await?;
            println!(
                "API key {} ({}) deleted; it no longer works",
                row.id, row.name
            );
            Ok(())
        }
        KeysCommand::Roll {
            agent,
            key_id,
            grace_seconds,
            json,
        } => {
            let rolled = keys::roll(config, &agent, &key_id, grace_seconds).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rolled)?);
            } else {
                match crate::model::time::opt_rfc3339(rolled.previous_expires_at) {
                    Some(until) => eprintln!(
                        "API key {} ({}) rolled; the old secret works until {until}. \
                         The new secret is shown only once:",
                        rolled.id, rolled.name
                    ),
                    None => eprintln!(
                        "API key {} ({}) rolled; the old secret no longer works. \
                         The new secret is shown only once:",
                        rolled.id, rolled.name
                    ),
                }
                println!("{}", rolled.key.unwrap_or_default());
            }
            Ok(())
        }
    }
}

async fn run_agents(config: &crate::config::Config, command: AgentsCommand) -> anyhow::Result<()> {
    match command {
        AgentsCommand::List { json } => {
            let all = agents::list(config).await?;
            if json {
                let page = crate::model::page::Page::complete(all);
                println!("{}", serde_json::to_string_pretty(&page)?);
            } else if all.is_empty() {
                eprintln!("there are no agents yet");
            } else {
                print!("{}", agents::table(&all));
            }
            Ok(())
        }
        AgentsCommand::Create { name } => {
            let agent = agents::create(config, &name).await?;
            eprintln!("agent {} created", agent.name);
            println!("{}", agent.id);
            Ok(())
        }
    }
}

async fn run_contacts(
    config: &crate::config::Config,
    command: ContactsCommand,
) -> anyhow::Result<()> {
    match command {
        ContactsCommand::Import {
            agent,
            on_duplicate,
            json,
            file,
        } => {
            let report = contacts::import(config, &agent, &file, &on_duplicate).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", contacts::summary(&report));
            }
            Ok(())
        }
        ContactsCommand::Export {
            agent,
            format,
            q,
            tag,
            written_by,
            out,
        } => {
            let query = crate::contacts::ListQuery {
                q,
                tag,
                written_by,
                ..Default::default()
            };
            let written = match &out {
                Some(path) => {
                    let mut file = std::fs::File::create_new(path).map_err(|err| {
                        anyhow::anyhow!("cannot create {}: {err}", path.display())
                    })?;
                    contacts::export(config, &agent, &format, query, &mut file).await?
                }
                None => {
                    contacts::export(
                        config,
                        &agent,
                        &format,
                        query,
                        &mut std::io::stdout().lock(),
                    )
                    .await?
                }
            };
            if let Some(path) = out {
                eprintln!("{written} bytes written to {}", path.display());
            }
            Ok(())
        }
    }
}

async fn run_audit(config: &crate::config::Config, command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Export {
            format,
            action,
            agent_id,
            actor_id,
            since,
            until,
            out,
        } => {
            let query = crate::audit::query::AuditQuery {
                action,
                agent_id,
                actor_id,
                since,
                until,
                format: Some(format),
                ..Default::default()
            };
            let written = match &out {
                Some(path) => {
                    let mut file = std::fs::File::create_new(path).map_err(|err| {
                        anyhow::anyhow!("cannot create {}: {err}", path.display())
                    })?;
                    audit::export(config, &query, &mut file).await?
                }
                None => audit::export(config, &query, &mut std::io::stdout().lock()).await?,
            };
            if let Some(path) = out {
                eprintln!("{written} bytes written to {}", path.display());
            }
            Ok(())
        }
        AuditCommand::Verify => match audit::verify(config).await? {
            crate::audit::chain::Verdict::Intact { events } => {
                println!("audit log intact: {events} events in the chain");
                Ok(())
            }
            crate::audit::chain::Verdict::Broken {
                event_id,
                seq,
                reason,
            } => {
                let position = seq.map(|n| format!(" (link {n})")).unwrap_or_default();
                anyhow::bail!("audit log broken at event {event_id}{position}: {reason}")
            }
        },
    }
}

async fn run_members(
    config: &crate::config::Config,
    command: MembersCommand,
) -> anyhow::Result<()> {
    match command {
        MembersCommand::Add {
            email,
            role,
            password_file,
        } => {
            let env_password = std::env::var(members::PASSWORD_ENV).ok();
            let password = members::read_password(password_file.as_deref(), env_password)?;
            let database = crate::config::redact_url(&config.database_url);
            println!("adding {email} as {} to {database}", role.name());
            let member = members::add(config, &email, role, password).await?;
            let (email, role, id) = (&member.email, member.role.name(), &member.id);
            println!("member added: {email} ({role}, id {id})");
            Ok(())
        }
    }
}
