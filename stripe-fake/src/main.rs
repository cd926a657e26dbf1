//! The `stripe-fake` binary: parses the command line, binds, prints the one "listening" line tests
//! parse, and serves until Ctrl-C. Everything else lives in the library.

use std::io::Write;

use anyhow::Context;
use clap::Parser;
use stripe_fake::Server;
use stripe_fake::cli::Args;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let config = args.config();
    let server = Server::bind(&args.listen, config.clone()).await?;
    let addr = server.local_addr();
    tracing::info!(%addr, ?config, "stripe-fake started");
    let mut stdout = std::io::stdout();
    writeln!(stdout, "stripe-fake listening on http://{addr}").context("stdout")?;
    stdout.flush().context("stdout")?;
    server
        .run(async {
            // If the signal cannot be watched, serve until killed.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await
        .context("serving")
}
