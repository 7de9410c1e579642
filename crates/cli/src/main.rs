//! `switchyard`: the operator's command. Thin: parses arguments, calls the library.
#![recursion_limit = "256"]

mod admin;
mod bench;
mod bench_worker;
mod chaos;
mod config;
mod demo;
mod demo_git;
mod follow;
mod inbound;
mod inspect;
mod load;
mod provision;
mod runtime;
mod scripted;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Switchyard — serverless job orchestrator for edit sessions.
#[derive(Debug, Parser)]
#[command(name = "switchyard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The local runtime: handlers in-process, HTTP API on 127.0.0.1, workers as processes.
    Dev,
    /// A scripted run on the local runtime: emails, API calls, interrupts; then the results.
    Demo {
        /// Run a real coding agent CLI (`claude-code` or `aider`) as the job, against the scripted model
        /// endpoint, and print its progress as it arrives.
        #[arg(long, env = "AGENT")]
        agent: Option<String>,
    },
    /// Email tools.
    Email {
        #[command(subcommand)]
        command: EmailCommand,
    },
    /// Projects.
    Project {
        #[command(subcommand)]
        command: ProjectCommand,
    },
    /// API keys.
    Apikey {
        #[command(subcommand)]
        command: ApikeyCommand,
    },
    /// Put an email on the inbound queue, as SES would.
    Send {
        /// A raw .eml file.
        file: Option<PathBuf>,
        /// Or an instruction to wrap in a minimal email.
        #[arg(long)]
        instruction: Option<String>,
        /// Sender (with --instruction).
        #[arg(long, default_value = "ann@example.com")]
        from: String,
        /// Recipient (with --instruction): client.project@domain.
        #[arg(long, default_value = "acme.website@in.switchyard.local")]
        to: String,
    },
    /// Sessions and their commands.
    Sessions {
        /// One session.
        session: Option<String>,
        /// Watch the session live through the HTTP API (its events stream) until it is idle.
        #[arg(long, requires = "session")]
        follow: bool,
        /// The API's base URL (for --follow).
        #[arg(long, env = "SWITCHYARD_API_URL", default_value = "http://127.0.0.1:8787")]
        api_url: String,
        /// An API key of the session's owner (for --follow).
        #[arg(long, env = "SWITCHYARD_API_KEY", hide_env_values = true, default_value = "")]
        api_key: String,
    },
    /// Containers and their state.
    Containers,
    /// Move a container's dead letters back to its `in` queue.
    Redrive {
        /// Container id.
        container: String,
    },
    /// Cancel a session's running and queued work, or every session of a container.
    Cancel {
        /// Session id.
        session: Option<String>,
        /// Every session of this container.
        #[arg(long)]
        container: Option<String>,
    },
    /// The local runtime under a burst of follow-ups with duplicate deliveries while workers
    /// are killed and stopped; checks that nothing is lost, stuck, failed or answered twice.
    Chaos {
        /// Threads (sessions), spread over three users.
        #[arg(long, default_value_t = 6)]
        threads: usize,
        /// Follow-ups per thread.
        #[arg(long, default_value_t = 4)]
        follow_ups: usize,
        /// Share of emails delivered twice.
        #[arg(long, default_value_t = 0.2)]
        duplicates: f64,
        /// Workers killed with SIGKILL.
        #[arg(long, default_value_t = 2)]
        kills: usize,
        /// Workers stopped with SIGTERM.
        #[arg(long, default_value_t = 2)]
        stops: usize,
        /// Seconds to wait for every outcome.
        #[arg(long, default_value_t = 150)]
        deadline_secs: u64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The seed load and failure suite on the local runtime: every outcome checked against
    /// what was sent; a table, `--json`, and a self-contained HTML report.
    Load {
        /// Scenarios to run (each on a fresh runtime).
        #[arg(value_enum, required = true)]
        scenarios: Vec<load::Scenario>,
        /// Small counts (seconds per scenario), as `make test` runs them.
        #[arg(long)]
        short: bool,
        /// Follow-ups of the `fifo` scenario (1,000; 10,000 for the long form).
        #[arg(long)]
        messages: Option<usize>,
        /// Workers killed with SIGKILL during each scenario.
        #[arg(long, default_value_t = 0)]
        kill_workers: usize,
        /// Workers stopped with SIGTERM during each scenario.
        #[arg(long, default_value_t = 0)]
        stop_workers: usize,
        /// Share of emails delivered twice.
        #[arg(long, default_value_t = 0.0)]
        duplicates: f64,
        /// Share of AWS calls (of the runtime and its workers) that fail: half refused before
        /// the service, half executed with the response lost; the SDK retries them.
        #[arg(long, default_value_t = 0.0)]
        aws_faults: f64,
        /// Share of instructions the workers cannot process (never a thread's last): they
        /// reach the DLQ and their sender gets a failure reply.
        #[arg(long, default_value_t = 0.0)]
        poison: f64,
        /// Seconds to wait for every outcome of a scenario.
        #[arg(long, default_value_t = 300)]
        deadline_secs: u64,
        /// Print the reports as JSON (one array).
        #[arg(long)]
        json: bool,
        /// Write the HTML report here (default: the data directory's load-report.html).
        #[arg(long)]
        html: Option<PathBuf>,
    },
    /// Benchmarks against the emulator; prints `bench <name> = <number> <unit>` lines.
    Bench {
        /// Which benchmark: `route`, `worker` or `all`.
        #[arg(default_value = "all")]
        which: String,
        /// Follow-up messages in the hot-path run.
        #[arg(long, default_value_t = 1000)]
        messages: usize,
        /// Concurrent routers.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
}

#[derive(Debug, Subcommand)]
enum EmailCommand {
    /// Parse an .eml file and print, as one JSON object, how it would be routed.
    Inspect {
        /// The raw email file.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum ProjectCommand {
    /// Create or replace a project from a JSON file (see examples/project.json).
    Add {
        /// The project file.
        file: PathBuf,
    },
    /// List projects.
    List,
}

#[derive(Debug, Subcommand)]
enum ApikeyCommand {
    /// Create a key for a user of a client, scoped to projects.
    Create {
        /// Client slug.
        #[arg(long)]
        client: String,
        /// The user the key acts as.
        #[arg(long)]
        user: String,
        /// Projects the key may use.
        #[arg(long = "project", required = true)]
        projects: Vec<String>,
        /// Also grant the operator scope (GET /v1/containers).
        #[arg(long)]
        operator: bool,
    },
    /// Revoke a key: it authenticates nothing from now on.
    Revoke {
        /// Client slug.
        #[arg(long)]
        client: String,
        /// The key's name: the first 10 characters of its secret, shown at creation.
        #[arg(long)]
        prefix: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let config = config::CliConfig::from_env();
    match Cli::parse().command {
        Command::Dev => admin::dev(&config).await,
        Command::Demo { agent: None } => demo::run(&config).await,
        Command::Demo { agent: Some(kind) } => demo::run_agent(&config, &kind).await,
        Command::Email { command: EmailCommand::Inspect { file } } => inspect::run(&file),
        Command::Project { command: ProjectCommand::Add { file } } => admin::project_add(&config, &file).await,
        Command::Project { command: ProjectCommand::List } => admin::project_list(&config).await,
        Command::Apikey { command: ApikeyCommand::Create { client, user, projects, operator } } => {
            admin::apikey_create(&config, &client, &user, &projects, operator).await
        }
        Command::Apikey { command: ApikeyCommand::Revoke { client, prefix } } => {
            admin::apikey_revoke(&config, &client, &prefix).await
        }
        Command::Send { file, instruction, from, to } => {
            admin::send(&config, file.as_deref(), instruction.as_deref(), &from, &to).await
        }
        Command::Sessions { session: Some(id), follow: true, api_url, api_key } => {
            anyhow::ensure!(!api_key.is_empty(), "--follow needs an API key (--api-key or SWITCHYARD_API_KEY)");
            follow::run(&api_url, &api_key, &id).await
        }
        Command::Sessions { session, .. } => admin::sessions(&config, session.as_deref()).await,
        Command::Containers => admin::containers(&config).await,
        Command::Redrive { container } => admin::redrive(&config, &container).await,
        Command::Cancel { session, container } => {
            admin::cancel(&config, session.as_deref(), container.as_deref()).await
        }
        Command::Chaos { threads, follow_ups, duplicates, kills, stops, deadline_secs, json } => {
            let plan = chaos::ChaosPlan {
                threads,
                follow_ups,
                duplicates,
                kills,
                stops,
                deadline: std::time::Duration::from_secs(deadline_secs),
                visibility_secs: 30,
            };
            let report = chaos::run(&config, &plan).await?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                chaos::print(&report);
            }
            anyhow::ensure!(report.ok(), "chaos invariants violated");
            Ok(())
        }
        Command::Load {
            scenarios,
            short,
            messages,
            kill_workers,
            stop_workers,
            duplicates,
            aws_faults,
            poison,
            deadline_secs,
            json,
            html,
        } => {
            let opts = load::LoadOptions {
                short,
                messages,
                kill_workers,
                stop_workers,
                duplicates,
                aws_faults,
                poison,
                deadline: std::time::Duration::from_secs(deadline_secs),
            };
            let mut reports = Vec::new();
            for s in scenarios {
                reports.push(load::run(&config, s, &opts).await?);
            }
            let path = html.unwrap_or_else(|| load::default_html(&config));
            std::fs::write(&path, load::html(&reports))?;
            if json {
                println!("{}", serde_json::to_string(&reports)?);
            } else {
                load::print_table(&reports);
                println!("HTML report: {}", path.display());
            }
            anyhow::ensure!(reports.iter().all(|r| r.ok()), "a scenario lost, duplicated, reordered or failed work");
            Ok(())
        }
        Command::Bench { which, messages, concurrency } => bench::run(&which, messages, concurrency).await,
    }
}
