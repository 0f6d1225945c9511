//! The command line's commands: `serve` (the HTTP server) and the offline commands that work on a
//! data path with no server running (`run`, `replay`, `inspect`, `verify`, `jobs`, `users`, `roles`). `main.rs` parses the command line
//! (`config::Cli`) and calls one `main` here; each prints its errors as one line on stderr and
//! returns the exit code.
//!
//! Offline commands open the store themselves; sled locks it, so they refuse a data path a server
//! is using (and a server refuses one an offline command is using). Long work draws a progress bar
//! on stderr (when it is a terminal) and ends with a one-line summary on stderr, so stdout carries
//! only results (`--stdout`) or the report (`inspect`).

mod inspect;
mod jobs;
mod logging;
mod progress;
mod replay;
mod run;
mod serve;
mod users;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::config::{CommonArgs, Config};
use crate::store::Store;

pub use inspect::main as inspect;
pub use jobs::{main as jobs, JobsArgs};
pub use logging::init as init_logging;
pub use replay::main as replay;
pub use run::main as run;
pub use serve::main as serve;
pub use users::{roles, users, RolesArgs, UsersArgs};
pub use verify::main as verify;

/// `auspex run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Job id: a new job (with --job) or an existing one, whose model carries on from its last state
    pub job_id: String,
    /// Config of a new job: a `PUT _ml/anomaly_detectors/<id>` body (JSON file)
    #[arg(long, value_name = "FILE")]
    pub job: Option<PathBuf>,
    /// Write result documents as NDJSON to stdout instead of into the store (needs --job)
    #[arg(long, requires = "job")]
    pub stdout: bool,
    /// Input files, in time order: NDJSON (one document per line), or CSV (*.csv, with a header
    /// row); `-` reads NDJSON from stdin
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// `auspex replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Stored job whose input is replayed (it is only read)
    pub job_id: String,
    /// Start from this model snapshot of the job (`latest` = its active one) instead of the start
    #[arg(long, value_name = "SNAPSHOT_ID")]
    pub snapshot: Option<String>,
    /// Write the results into a new job with this id (a copy of the job's config)
    #[arg(long, value_name = "NEW_JOB_ID", required_unless_present = "stdout")]
    pub into: Option<String>,
    /// JSON object of job config fields to change in the copy, e.g. a new analysis_config
    #[arg(long, value_name = "FILE")]
    pub changes: Option<PathBuf>,
    /// Write result documents as NDJSON to stdout (nothing is written to the store)
    #[arg(long)]
    pub stdout: bool,
}

/// `auspex verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// After the report, accept the losses of flushed writes it names (the store is taken as it
    /// now is: the jobs and the security data it names are served again)
    #[arg(long)]
    pub accept_loss: bool,
}

/// `auspex inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Show this job only, with its snapshots
    pub job_id: Option<String>,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

/// Runs an offline command body: resolves the config, starts logging, reports an error as one line.
fn offline(common: &CommonArgs, body: impl FnOnce(Config) -> anyhow::Result<()>) -> ExitCode {
    let config = match common.resolve() {
        Ok(config) => config,
        Err(error) => return fail(&error),
    };
    init_logging(config.log_format);
    match body(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

fn fail(error: &anyhow::Error) -> ExitCode {
    eprintln!("auspex: {error:#}");
    ExitCode::FAILURE
}

/// Opens the store of a data path for an offline command.
fn open_store(config: &Config, create: bool) -> anyhow::Result<Store> {
    let path = config.store_path();
    if !create && !path.is_dir() {
        anyhow::bail!("no store at {} (is --data right?)", path.display());
    }
    std::fs::create_dir_all(&config.data)
        .with_context(|| format!("cannot create data path {}", config.data.display()))?;
    Store::open(&path).with_context(|| {
        format!(
            "cannot open the store at {} (is a server running on this data path?)",
            path.display()
        )
    })
}

/// Flushes the store to disk (offline commands have no runtime of their own otherwise).
fn flush_store(store: &Store) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .context("cannot start a runtime to flush the store")?
        .block_on(store.flush())
        .context("cannot flush the store")
}

/// `1234567` -> `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_separators() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1000), "1,000");
        assert_eq!(super::thousands(1234567), "1,234,567");
    }
}
