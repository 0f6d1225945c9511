//! Job-layer tests: the manager and actors over a real on-disk store, no HTTP.

use bytes::Bytes;

use super::*;
use crate::store::ResultKind;

const HOUR_S: i64 = 3600;
const START_S: i64 = 1_403_481_600;

fn config() -> String {
    serde_json::json!({
        "analysis_config": {"bucket_span": "1h", "detectors": [
            {"function": "mean", "field_name": "responsetime", "by_field_name": "airline"}]},
        "data_description": {"time_field": "time", "time_format": "epoch"}
    })
    .to_string()
}

/// `hours` hours of data, 6 records an hour for 3 airlines, with one spike.
fn records(from_hour: i64, hours: i64) -> Vec<String> {
    let mut out = Vec::new();
    for hour in from_hour..from_hour + hours {
        for k in 0..6 {
            for (a, airline) in ["AAL", "JZA", "KLM"].iter().enumerate() {
                let t = START_S + hour * HOUR_S + k * 600 + a as i64;
                let wobble = ((hour * 31 + k * 7 + a as i64 * 13) % 17) as f64;
                let value = if hour == 40 && *airline == "JZA" {
                    900.0
                } else {
                    100.0 + wobble
                };
                out.push(format!(
                    "{{\"time\":{t},\"airline\":\"{airline}\",\"responsetime\":{value}}}"
                ));
            }
        }
    }
    out
}

fn body(lines: &[String]) -> Bytes {
    Bytes::from(lines.join("\n") + "\n")
}

/// A manager on the store at `path`. A previous manager's actor threads let go of the store a
/// moment after it is dropped, so the store's file lock is retried for a while.
async fn manager_at(path: &std::path::Path) -> Arc<JobManager> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let store = loop {
        match Store::open(path) {
            Ok(store) => break store,
            Err(error) if std::time::Instant::now() > deadline => {
                panic!("store stays locked: {error}")
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    };
    JobManager::start(store).await.unwrap()
}

/// Results of a job as stored, without the one field that depends on the wall clock.
fn stored_results(jobs: &JobManager, job_id: &str, kind: ResultKind) -> Vec<serde_json::Value> {
    jobs.store()
        .scan_results(job_id, kind, None, None)
        .unwrap()
        .iter()
        .map(|bytes| {
            let mut doc: serde_json::Value = serde_json::from_slice(bytes).unwrap();
            if let Some(map) = doc.as_object_mut() {
                map.remove("processing_time_ms");
            }
            doc
        })
        .collect()
}

/// Stored results of `job_id` without `job_id` itself, so two jobs' results compare.
fn comparable(jobs: &JobManager, job_id: &str, kind: ResultKind) -> Vec<serde_json::Value> {
    let mut docs = stored_results(jobs, job_id, kind);
    for doc in &mut docs {
        doc.as_object_mut().unwrap().remove("job_id");
        if let Some(list) = doc
            .get_mut("bucket_influencers")
            .and_then(|b| b.as_array_mut())
        {
            for influencer in list {
                influencer.as_object_mut().unwrap().remove("job_id");
            }
        }
    }
    docs
}

/// Close persists the open bucket (Elasticsearch's close finalizes nothing): split at a bucket
/// boundary and at several points inside a bucket, a job closed and reopened there answers the
/// same flush before and after, accepts the rest of the open bucket, and ends with exactly the
/// results and counts of a job that never closed.
#[tokio::test]
async fn close_and_reopen_midway_gives_the_results_of_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = manager_at(&dir.path().join("store")).await;
    let all = records(0, 60);
    // 18 records an hour: 540 is a bucket boundary, the others fall inside bucket 30.
    for split in [540, 541, 545, 549, 557] {
        let straight = format!("straight-{split}");
        let interrupted = format!("interrupted-{split}");
        for job in [&straight, &interrupted] {
            jobs.put_job(job, config().as_bytes()).await.unwrap();
            jobs.open_job(job).await.unwrap();
            jobs.post_data(job, body(&all[..split])).await.unwrap();
        }
        let flushed = jobs
            .flush(&interrupted, FlushParams::default())
            .await
            .unwrap();
        jobs.close_jobs(&interrupted, false, false).await.unwrap();
        jobs.open_job(&interrupted).await.unwrap();
        assert_eq!(
            jobs.flush(&interrupted, FlushParams::default())
                .await
                .unwrap(),
            flushed,
            "split {split}: the flush after reopening answers what it did before the close"
        );
        for job in [&straight, &interrupted] {
            let rest = jobs.post_data(job, body(&all[split..])).await.unwrap();
            assert_eq!(rest["out_of_order_timestamp_count"], 0, "split {split}");
            assert_eq!(rest["processed_record_count"], (all.len() - split) as u64);
            jobs.close_jobs(job, false, false).await.unwrap();
        }
        for kind in [
            ResultKind::Bucket,
            ResultKind::Record,
            ResultKind::Influencer,
        ] {
            let expected = comparable(&jobs, &straight, kind);
            assert!(kind == ResultKind::Influencer || !expected.is_empty());
            assert_eq!(
                expected,
                comparable(&jobs, &interrupted, kind),
                "split {split}: {kind:?} results differ"
            );
        }
        let counts = |job: &str| {
            let (_, status) = snapshot::stored_status(jobs.store(), job).unwrap();
            let mut counts = status.counts;
            counts.last_data_time = None;
            counts.log_time = None;
            (counts, status.finalized_end, status.latest_record_time)
        };
        assert_eq!(counts(&straight), counts(&interrupted), "split {split}");
    }
    let records = stored_results(&jobs, "straight-540", ResultKind::Record);
    assert!(
        records
            .iter()
            .any(|r| r["by_field_value"] == "JZA" && r["record_score"].as_f64().unwrap() > 50.0),
        "the spike is found: {records:?}"
    );
}

#[tokio::test]
async fn a_restart_without_shutdown_reopens_the_job_with_everything_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let all = records(0, 30);
    let expected_counts = {
        let jobs = manager_at(&path).await;
        jobs.put_job("kept", config().as_bytes()).await.unwrap();
        jobs.open_job("kept").await.unwrap();
        let first = jobs.post_data("kept", body(&all[..200])).await.unwrap();
        let second = jobs.post_data("kept", body(&all[200..])).await.unwrap();
        // Each answer holds its own request's counts.
        assert_eq!(second["processed_record_count"], (all.len() - 200) as u64);
        assert!(first.get("earliest_record_timestamp").is_some());
        assert!(second.get("earliest_record_timestamp").is_none());
        first["input_bytes"].as_u64().unwrap() + second["input_bytes"].as_u64().unwrap()
        // Dropped here without `shutdown`: as if the process died after acknowledging.
    };
    let jobs = manager_at(&path).await;
    let stats = jobs.job_stats("kept", false).await.unwrap();
    assert_eq!(stats[0]["state"], "opened");
    assert_eq!(
        stats[0]["data_counts"]["processed_record_count"],
        all.len() as u64
    );
    assert_eq!(stats[0]["data_counts"]["input_bytes"], expected_counts);
    // The replayed model carries on: more data is accepted and finalizes buckets.
    let more = records(30, 5);
    let counts = jobs.post_data("kept", body(&more)).await.unwrap();
    assert_eq!(counts["processed_record_count"], more.len() as u64);
    assert_eq!(counts["out_of_order_timestamp_count"], 0);
    let stats = jobs.job_stats("kept", false).await.unwrap();
    assert_eq!(
        stats[0]["data_counts"]["processed_record_count"],
        (all.len() + more.len()) as u64
    );
}

#[tokio::test]
async fn lifecycle_errors() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = manager_at(&dir.path().join("store")).await;
    assert!(matches!(
        jobs.open_job("nope").await,
        Err(JobError::NotFound { .. })
    ));
    jobs.put_job("j1", config().as_bytes()).await.unwrap();
    assert!(matches!(
        jobs.put_job("j1", config().as_bytes()).await,
        Err(JobError::AlreadyExists { .. })
    ));
    let not_open = jobs
        .post_data("j1", body(&records(0, 1)))
        .await
        .unwrap_err();
    assert_eq!(
        not_open.to_string(),
        "Cannot perform requested action because job [j1] is not open"
    );
    assert!(matches!(
        jobs.flush("j1", FlushParams::default()).await,
        Err(JobError::NotOpen { .. })
    ));
    // A job that does not exist, or a wildcard, is "not open" too (ES looks for a running task).
    for id in ["nope", "j*", "_all"] {
        let error = jobs.post_data(id, body(&records(0, 1))).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("Cannot perform requested action because job [{id}] is not open")
        );
        assert!(matches!(
            jobs.flush(id, FlushParams::default()).await,
            Err(JobError::NotOpen { .. })
        ));
    }
    jobs.open_job("j1").await.unwrap();
    jobs.open_job("j1").await.unwrap();
    let delete = jobs.delete_job("j1", false).await.unwrap_err();
    assert_eq!(
        delete.to_string(),
        "Cannot delete job [j1] because the job is opened"
    );
    jobs.delete_job("j1", true).await.unwrap();
    assert!(matches!(
        jobs.require_job("j1"),
        Err(JobError::NotFound { .. })
    ));
    // Nothing of the deleted job is left to leak into a new job of the same id.
    jobs.put_job("j1", config().as_bytes()).await.unwrap();
    let stats = jobs.job_stats("j1", false).await.unwrap();
    assert_eq!(stats[0]["data_counts"]["input_record_count"], 0);
    assert_eq!(stats[0]["state"], "closed");
}

#[tokio::test]
async fn a_malformed_body_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = manager_at(&dir.path().join("store")).await;
    jobs.put_job("j", config().as_bytes()).await.unwrap();
    jobs.open_job("j").await.unwrap();
    jobs.post_data("j", body(&records(0, 1))).await.unwrap();
    let before = jobs.job_stats("j", false).await.unwrap()[0]["data_counts"].clone();
    let bad = Bytes::from_static(b"{\"time\":1403481600,\"airline\":\"AAL\"}\n{\"time\":14034");
    assert!(matches!(
        jobs.post_data("j", bad).await,
        Err(JobError::Ingest(_))
    ));
    let after = jobs.job_stats("j", false).await.unwrap()[0]["data_counts"].clone();
    assert_eq!(before, after);
}

#[tokio::test]
async fn flush_with_interim_results_replaces_them_when_final() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = manager_at(&dir.path().join("store")).await;
    jobs.put_job("j", config().as_bytes()).await.unwrap();
    jobs.open_job("j").await.unwrap();
    jobs.post_data("j", body(&records(0, 3))).await.unwrap();
    let end = jobs
        .flush(
            "j",
            FlushParams {
                calc_interim: true,
                ..FlushParams::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(end, Some((START_S + 2 * HOUR_S) * 1000));
    let buckets = stored_results(&jobs, "j", ResultKind::Bucket);
    let interim: Vec<_> = buckets.iter().filter(|b| b["is_interim"] == true).collect();
    assert_eq!(interim.len(), 1);
    assert_eq!(interim[0]["timestamp"], (START_S + 2 * HOUR_S) * 1000);
    let advance = (START_S + 3 * HOUR_S) * 1000;
    jobs.flush(
        "j",
        FlushParams {
            advance_time: Some(advance),
            ..FlushParams::default()
        },
    )
    .await
    .unwrap();
    let buckets = stored_results(&jobs, "j", ResultKind::Bucket);
    assert_eq!(buckets.len(), 3);
    assert!(buckets.iter().all(|b| b["is_interim"] == false));
}
