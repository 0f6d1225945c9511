//! `auspex run JOB_ID [--job CONFIG.json] [--stdout] FILES...`: a job over files, offline, as if the
//! files had been posted to `_data` and the job closed: results, input log, counts and a closing
//! model snapshot land in the store, so a server started later serves them and can carry on.
//! With `--stdout` the result documents are printed as NDJSON and the store is not touched.

use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Context;

use super::progress::{summary, with_progress, Unit};
use super::{flush_store, offline, open_store, RunArgs};
use crate::job::pipeline::InputEntry;
use crate::job::{now_ms, snapshot, JobConfig, JobStatus};
use crate::replay::files::{file_len, FileChunks};
use crate::replay::stored::{create_in_store, reader_for, stored_config};
use crate::replay::{Counters, NdjsonSink, Replayer, Sink, StoreSink};

pub fn main(args: RunArgs) -> ExitCode {
    offline(&args.common, |config| {
        let counters = Arc::new(Counters::default());
        let total: u64 = args.files.iter().filter_map(|f| file_len(f)).sum();
        counters.total.store(total, Ordering::Relaxed);
        if args.stdout {
            let job = read_job(&args)?;
            let job_id = job.job_id.clone();
            let pipeline = crate::job::snapshot::fresh_pipeline(&job, reader_for(&job)?)
                .with_max_empty_buckets(config.max_empty_buckets);
            let work = || {
                let out = BufWriter::new(std::io::stdout().lock());
                let sink = NdjsonSink::new(out, job_id);
                feed(
                    Replayer::new(pipeline, sink, counters.clone()),
                    &args.files,
                    &counters,
                )
                .map(|_| ())
            };
            let (result, last, elapsed) = with_progress(Unit::Bytes, counters.clone(), work);
            result?;
            eprintln!("{}", summary("run", &last, elapsed, ""));
            return Ok(());
        }
        let store = open_store(&config, true)?;
        let description = "State persisted after auspex run";
        let created = args.job.is_some();
        let (job, pipeline, sink) = match &args.job {
            Some(_) => {
                let job = Arc::new(read_job(&args)?);
                create_in_store(&store, &job)?;
                let pipeline = crate::job::snapshot::fresh_pipeline(&job, reader_for(&job)?)
                    .with_max_empty_buckets(config.max_empty_buckets);
                let sink = StoreSink::new_job(store.clone(), job.clone(), description);
                (job, pipeline, sink)
            }
            None => {
                let job = Arc::new(stored_config(&store, &args.job_id)?);
                let restored = snapshot::restore(&job, &store, reader_for(&job)?)?;
                let status = JobStatus::from_progress(&restored.progress)?;
                let sink = StoreSink::new(
                    store.clone(),
                    job.clone(),
                    restored.progress,
                    status,
                    description,
                );
                let pipeline = restored
                    .pipeline
                    .with_max_empty_buckets(config.max_empty_buckets);
                (job, pipeline, sink)
            }
        };
        let work = || {
            feed(
                Replayer::new(pipeline, sink, counters.clone()),
                &args.files,
                &counters,
            )
        };
        let (result, last, elapsed) = with_progress(Unit::Bytes, counters.clone(), work);
        let sink = match result {
            Ok(sink) => sink,
            Err(error) if created => {
                // A new job is all or nothing; an existing one keeps the whole parts committed.
                store.delete_job(&job.job_id)?;
                flush_store(&store)?;
                return Err(error.context(format!("job [{}] was not created", job.job_id)));
            }
            Err(error) => {
                flush_store(&store)?;
                return Err(error);
            }
        };
        flush_store(&store)?;
        let tail = format!(
            " -> job [{}] (closed, model snapshot {})",
            job.job_id,
            sink.progress()
                .latest_snapshot_id
                .as_deref()
                .unwrap_or("none")
        );
        eprintln!("{}", summary("run", &last, elapsed, &tail));
        Ok(())
    })
}

fn read_job(args: &RunArgs) -> anyhow::Result<JobConfig> {
    let path = args.job.as_ref().context("--job is required")?;
    let body = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    JobConfig::from_put_body(&args.job_id, &body, now_ms())
        .with_context(|| format!("invalid job config {}", path.display()))
}

/// Every file's records in order, then a close (which, as `_close`, finalizes nothing: the last
/// bucket stays open in the closing snapshot and a later `auspex run` carries on with it).
fn feed<S: Sink>(
    mut replayer: Replayer<S>,
    files: &[PathBuf],
    counters: &Counters,
) -> anyhow::Result<S> {
    let reader = replayer.pipeline().reader().clone();
    for path in files {
        for chunk in FileChunks::open(path)? {
            let chunk = chunk?;
            let batch = reader.read_body(&chunk.body).with_context(|| {
                format!(
                    "in {} (the part starting at line {})",
                    path.display(),
                    chunk.first_line
                )
            })?;
            replayer.apply_batch(&batch, chunk.raw_bytes)?;
            counters.done.fetch_add(chunk.raw_bytes, Ordering::Relaxed);
        }
    }
    replayer.apply_new(&InputEntry::Close)?;
    let (_, sink) = replayer.finish()?;
    Ok(sink)
}
