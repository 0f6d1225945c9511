//! `auspex jobs delete ID`: removes a job and everything stored for it, offline, on a data path no
//! server is using. It needs nothing of the job but its id, so it also removes a job whose stored
//! config or progress is damaged (the server lists such a job as `failed`, with the reason).

use std::process::ExitCode;

use super::{flush_store, offline, open_store};
use crate::config::CommonArgs;

/// `auspex jobs`.
#[derive(Debug, clap::Args)]
pub struct JobsArgs {
    #[command(subcommand)]
    pub command: JobsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum JobsCommand {
    /// Delete a job with its input, results and model snapshots (even one whose stored config
    /// is damaged)
    Delete(JobDelete),
}

#[derive(Debug, clap::Args)]
pub struct JobDelete {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The job id
    pub job_id: String,
}

pub fn main(args: JobsArgs) -> ExitCode {
    match args.command {
        JobsCommand::Delete(args) => offline(&args.common, |config| {
            let store = open_store(&config, false)?;
            if !store.delete_job(&args.job_id)? {
                anyhow::bail!("no job [{}] in the store", args.job_id);
            }
            flush_store(&store)?;
            println!("deleted job [{}]", args.job_id);
            Ok(())
        }),
    }
}
