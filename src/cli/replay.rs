//! `auspex replay JOB_ID [--snapshot ID|latest] (--into NEW_JOB_ID [--changes FILE] | --stdout)`:
//! re-runs a stored job over the input it stored, from the start or from one of its model
//! snapshots, into a new job (a copy of its config, optionally changed) or to NDJSON. The source
//! job is only read. A new job is all or nothing: if the replay fails, it is deleted again.

use std::io::BufWriter;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use serde_json::{Map, Value};

use super::progress::{summary, with_progress, Unit};
use super::{flush_store, offline, open_store, ReplayArgs};
use crate::clock::now_ms;
use crate::engine::JobConfig;
use crate::replay::stored::{copy_body, create_in_store, stored_config, StoredReplay};
use crate::replay::{Counters, NdjsonSink};
use crate::store::Store;

pub fn main(args: ReplayArgs) -> ExitCode {
    offline(&args.common, |config| {
        let store = open_store(&config, false)?;
        let source = stored_config(&store, &args.job_id)?;
        let changes = read_changes(&args)?;
        let target_id = args.into.clone().unwrap_or_else(|| args.job_id.clone());
        let body = copy_body(&source, changes.as_ref())?;
        let target = JobConfig::from_put_body(&target_id, &body, now_ms())
            .context("invalid config for the replayed job")?;
        let snapshot = snapshot_id(&store, &args)?;
        let replay = StoredReplay::prepare(&store, &args.job_id, target, snapshot.as_deref())?;
        let from = match &snapshot {
            Some(id) => format!("model snapshot {id}"),
            None => "the start".to_string(),
        };
        let counters = Arc::new(Counters::default());
        if args.stdout {
            let work = || {
                let sink = NdjsonSink::new(BufWriter::new(std::io::stdout().lock()), target_id);
                replay.run(&store, sink, counters.clone()).map(|_| ())
            };
            let (result, last, elapsed) = with_progress(Unit::Entries, counters.clone(), work);
            result?;
            let tail = format!(" (job [{}] from {from})", args.job_id);
            eprintln!("{}", summary("replay", &last, elapsed, &tail));
            return Ok(());
        }
        create_in_store(&store, &replay.target)?;
        let work = || replay.run_into_store(&store, counters.clone());
        let (result, last, elapsed) = with_progress(Unit::Entries, counters.clone(), work);
        if let Err(error) = result {
            store.delete_job(&target_id)?;
            flush_store(&store)?;
            return Err(
                anyhow::Error::new(error).context(format!("job [{target_id}] was not created"))
            );
        }
        flush_store(&store)?;
        let tail = format!(" (job [{}] from {from}) -> job [{target_id}]", args.job_id);
        eprintln!("{}", summary("replay", &last, elapsed, &tail));
        Ok(())
    })
}

/// `--snapshot latest` is the job's active snapshot.
fn snapshot_id(store: &Store, args: &ReplayArgs) -> anyhow::Result<Option<String>> {
    match args.snapshot.as_deref() {
        Some("latest") => {
            let progress = store.get_progress(&args.job_id)?;
            let active = progress.and_then(|p| p.latest_snapshot_id);
            active
                .map(Some)
                .with_context(|| format!("job [{}] has no model snapshot", args.job_id))
        }
        other => Ok(other.map(str::to_string)),
    }
}

fn read_changes(args: &ReplayArgs) -> anyhow::Result<Option<Map<String, Value>>> {
    let Some(path) = &args.changes else {
        return Ok(None);
    };
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    match serde_json::from_slice(&text) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(_) => anyhow::bail!("{}: the changes must be a JSON object", path.display()),
        Err(error) => Err(error).with_context(|| format!("{} is not JSON", path.display())),
    }
}
