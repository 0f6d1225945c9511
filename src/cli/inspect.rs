//! `auspex inspect [JOB_ID] [--json]`: what a store holds, read-only: per job its state, data
//! counts, input log, results and model snapshots with their sizes; the store's size on disk.

use std::path::Path;
use std::process::ExitCode;

use serde_json::{json, Value};

use super::{offline, open_store, thousands, InspectArgs};
use crate::engine::snapshot::stored_status;
use crate::store::{PersistedState, ResultKind, Store, FORMAT_VERSION};

pub fn main(args: InspectArgs) -> ExitCode {
    offline(&args.common, |config| {
        let store = open_store(&config, false)?;
        let ids: Vec<String> = match &args.job_id {
            Some(id) => {
                crate::replay::stored::stored_config(&store, id)?;
                vec![id.clone()]
            }
            None => store
                .scan_job_configs()?
                .into_iter()
                .map(|(id, _)| id)
                .collect(),
        };
        let jobs = ids
            .iter()
            .map(|id| job_report(&store, id, args.job_id.is_some()))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let path = config.store_path();
        let report = json!({
            "store": path.display().to_string(),
            "format_version": FORMAT_VERSION,
            "size_on_disk_bytes": dir_size(&path),
            "jobs": jobs,
        });
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", render(&report));
        }
        Ok(())
    })
}

fn job_report(store: &Store, job_id: &str, with_snapshots: bool) -> anyhow::Result<Value> {
    let (progress, status) = stored_status(store, job_id)?;
    let state = match progress.as_ref().map(|p| p.state) {
        Some(PersistedState::Opened) => "opened",
        Some(PersistedState::Failed) => "failed",
        _ => "closed",
    };
    let (mut input_entries, mut input_bytes) = (0u64, 0u64);
    for entry in store.scan_input(job_id, 0)? {
        let (_, bytes) = entry?;
        input_entries += 1;
        input_bytes += bytes.len() as u64;
    }
    let mut results = serde_json::Map::new();
    let mut results_bytes = 0u64;
    for (kind, name) in [
        (ResultKind::Bucket, "buckets"),
        (ResultKind::Record, "records"),
        (ResultKind::Influencer, "influencers"),
    ] {
        let docs = store.scan_results(job_id, kind, None, None)?;
        results_bytes += docs.iter().map(|d| d.len() as u64).sum::<u64>();
        results.insert(name.into(), docs.len().into());
    }
    results.insert("bytes".into(), results_bytes.into());
    let mut snapshots = Vec::new();
    let mut snapshot_bytes = 0u64;
    let mut docs = store.list_snapshots(job_id)?;
    docs.sort_by_key(|doc| (doc.last_seq, doc.timestamp_ms));
    for doc in docs {
        let size = store
            .get_snapshot_state(job_id, &doc.snapshot_id)
            .map_or(0, |state| state.len() as u64);
        snapshot_bytes += size;
        let meta: Value = serde_json::from_slice(&doc.json).unwrap_or(Value::Null);
        snapshots.push(json!({
            "snapshot_id": doc.snapshot_id,
            "timestamp": doc.timestamp_ms,
            "last_seq": doc.last_seq,
            "state_bytes": size,
            "description": meta["description"],
        }));
    }
    let counts = &status.counts;
    let mut report = json!({
        "job_id": job_id,
        "state": state,
        "processed_record_count": counts.processed_record_count,
        "input_record_count": counts.input_record_count,
        "bucket_count": status.timing.bucket_count,
        "earliest_record_timestamp": counts.earliest_record_timestamp,
        "latest_record_timestamp": counts.latest_record_timestamp,
        "model_bytes": status.model_size_stats.model_bytes,
        "input": {"entries": input_entries, "bytes": input_bytes,
                  "last_seq": progress.as_ref().map_or(0, |p| p.last_seq)},
        "results": results,
        "snapshot_count": snapshots.len(),
        "snapshot_bytes": snapshot_bytes,
        "active_snapshot_id": progress.and_then(|p| p.latest_snapshot_id),
    });
    if with_snapshots {
        report["snapshots"] = Value::Array(snapshots);
    }
    Ok(report)
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => dir_size(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

fn render(report: &Value) -> String {
    let n = |v: &Value| thousands(v.as_u64().unwrap_or(0));
    let mut out = format!(
        "store {} (format {}, {} bytes on disk)\n",
        report["store"].as_str().unwrap_or_default(),
        report["format_version"],
        n(&report["size_on_disk_bytes"])
    );
    out.push_str(&format!(
        "{:<24} {:<7} {:>12} {:>9} {:>9} {:>14} {:>9} {:>14}\n",
        "job",
        "state",
        "records",
        "buckets",
        "anomalies",
        "input bytes",
        "snapshots",
        "model bytes"
    ));
    for job in report["jobs"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{:<24} {:<7} {:>12} {:>9} {:>9} {:>14} {:>9} {:>14}\n",
            job["job_id"].as_str().unwrap_or_default(),
            job["state"].as_str().unwrap_or_default(),
            n(&job["processed_record_count"]),
            n(&job["bucket_count"]),
            n(&job["results"]["records"]),
            n(&job["input"]["bytes"]),
            n(&job["snapshot_count"]),
            n(&job["model_bytes"]),
        ));
        for snapshot in job["snapshots"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "  snapshot {} at {} covers input through {} ({} bytes): {}\n",
                snapshot["snapshot_id"].as_str().unwrap_or_default(),
                snapshot["timestamp"],
                snapshot["last_seq"],
                n(&snapshot["state_bytes"]),
                snapshot["description"].as_str().unwrap_or_default(),
            ));
        }
    }
    out
}
