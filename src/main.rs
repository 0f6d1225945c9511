//! `auspex`: parse the config, start logging, open the store, serve until SIGINT/SIGTERM; or
//! `auspex verify`: check a stopped store offline.
//!
//! stdout carries exactly one line, `listening on http://ADDR` (the bound address, so `--listen
//! 127.0.0.1:0` is usable: tests read it); logs go to stderr (`AUSPEX_LOG` or `RUST_LOG` filter,
//! default `info`). A startup failure is one message on stderr and exit code 1.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use tokio::signal::unix::{signal, SignalKind};
use tracing_subscriber::EnvFilter;

use auspex::api::AppState;
use auspex::config::{Cli, Command, Config};
use auspex::job::JobManager;
use auspex::store::Store;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    if let Some(Command::Verify(args)) = &cli.command {
        return verify(&args.data);
    }
    let config = cli.into_serve_config();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("auspex: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("auspex: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `auspex verify`: the integrity report on stdout; exit 0 clean, 1 problems, 2 unreadable.
fn verify(data: &std::path::Path) -> ExitCode {
    let path = data.join("store");
    if !path.is_dir() {
        eprintln!("auspex: no store at {}", path.display());
        return ExitCode::from(2);
    }
    let report = match Store::open(&path).and_then(|store| store.check_integrity()) {
        Ok(report) => report,
        Err(error) => {
            eprintln!(
                "auspex: cannot check the store at {} (is a server using it?): {error}",
                path.display()
            );
            return ExitCode::from(2);
        }
    };
    let checked: Vec<String> = report
        .values_checked
        .iter()
        .map(|(tree, n)| format!("{tree} {n}"))
        .collect();
    println!(
        "store {}: values checked: {}",
        path.display(),
        checked.join(", ")
    );
    for problem in &report.problems {
        println!("problem: {problem}");
    }
    if report.is_clean() {
        println!("no problems found");
        ExitCode::SUCCESS
    } else {
        println!(
            "{} problem(s) found",
            report.problems.len() as u64 + report.problems_omitted
        );
        ExitCode::from(1)
    }
}

fn init_tracing() {
    let filter = EnvFilter::try_from_env("AUSPEX_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
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
    let store_path = config.data.join("store");
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
    auspex::server::run(listener, state, shutdown).await;
    Ok(())
}
