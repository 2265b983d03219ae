//! `streamhouse`: one binary, embedded defaults. `streamhouse` and `streamhouse serve`
//! both start the server.

mod config;
mod http;
mod http_ask;
mod pg;
mod server;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc malloc: the write path allocates many small Arrow buffers per
/// statement, and glibc's malloc/free showed as ~15% of server CPU under single-row INSERTs.
/// Built with `no_thp` (workspace Cargo.toml): otherwise mimalloc asks for transparent huge
/// pages, and the kernel zeroes 2 MiB at a time on first touch; in the first bulk COPY after
/// a start that zeroing (clear_page_erms) was ~45% of server CPU (1.7-2.1 M rows/s, against
/// 2.6 M rows/s without huge pages).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
