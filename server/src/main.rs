//! `streamhouse`: one binary, embedded defaults. `streamhouse` and `streamhouse serve`
//! both start the server.

mod config;
mod pg;
mod server;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "streamhouse", version, about = "A streaming warehouse: stream tables over the Postgres wire protocol")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    flags: config::Flags,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server (the default).
    Serve,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {}
    }
    let config = match config::Config::load(&cli.flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("streamhouse: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    server::init_logging(config.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(server::run(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            eprintln!("streamhouse: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
