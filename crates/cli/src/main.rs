//! `switchyard`: the operator's command. Thin: parses arguments, calls the library.

mod bench;
mod bench_worker;
mod config;
mod demo_git;
mod inspect;
mod provision;

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
    /// Email tools.
    Email {
        #[command(subcommand)]
        command: EmailCommand,
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
        file: std::path::PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Email { command: EmailCommand::Inspect { file } } => inspect::run(&file),
        Command::Bench { which, messages, concurrency } => bench::run(&which, messages, concurrency).await,
    }
}
