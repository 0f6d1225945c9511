//! `auspex serve` (the default command): resolve the config, start logging, open the store, serve
//! until SIGINT/SIGTERM.
//!
//! stdout carries exactly one line, `listening on http://ADDR` (the bound address, so `--listen
//! 127.0.0.1:0` is usable: tests read it); logs go to stderr. A startup failure is one message on
//! stderr and exit code 1.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};

use super::{fail, init_logging};
use crate::api::AppState;
use crate::config::{Config, ServeArgs};
use crate::job::JobManager;
use crate::store::Store;

pub fn main(args: ServeArgs) -> ExitCode {
    let config = match args.resolve() {
        Ok(config) => config,
        Err(error) => return fail(&error),
    };
    init_logging(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            return fail(&anyhow::Error::new(error).context("cannot start the async runtime"))
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // Signal handlers first, so a signal sent right after the "listening" line is not lost.
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;

    // Bind before opening the store: a taken port is reported without touching the data.
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener
        .local_addr()
        .context("cannot read the bound address")?;
    std::fs::create_dir_all(&config.data)
        .with_context(|| format!("cannot create data path {}", config.data.display()))?;
    let store_path = config.store_path();
    let store = Store::open(&store_path)
        .with_context(|| format!("cannot open the store at {}", store_path.display()))?;
    let jobs = JobManager::start(store)
        .await
        .context("cannot start the job manager")?;

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://{address}").context("cannot write to stdout")?;
    stdout.flush().context("cannot write to stdout")?;
    drop(stdout);
    tracing::info!(%address, data = %config.data.display(), "auspex started");

    let state = Arc::new(AppState { config, jobs });
    let shutdown = async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT received"),
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
        }
    };
    crate::server::run(listener, state, shutdown).await;
    Ok(())
}
