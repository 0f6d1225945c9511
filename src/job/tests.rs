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

#[tokio::test]
async fn close_and_reopen_midway_gives_the_results_of_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = manager_at(&dir.path().join("store")).await;
    let all = records(0, 60);
    // Split at a bucket boundary: close finalizes the open bucket, as Elasticsearch does.
    let split = all.len() / 2;

    jobs.put_job("straight", config().as_bytes()).await.unwrap();
    jobs.open_job("straight").await.unwrap();
    jobs.post_data("straight", body(&all[..split]))
        .await
        .unwrap();
    jobs.post_data("straight", body(&all[split..]))
        .await
        .unwrap();
    jobs.close_jobs("straight", false, false).await.unwrap();

    jobs.put_job("interrupted", config().as_bytes())
        .await
        .unwrap();
    jobs.open_job("interrupted").await.unwrap();
    jobs.post_data("interrupted", body(&all[..split]))
        .await
        .unwrap();
    jobs.close_jobs("interrupted", false, false).await.unwrap();
    jobs.open_job("interrupted").await.unwrap();
    jobs.post_data("interrupted", body(&all[split..]))
        .await
        .unwrap();
    jobs.close_jobs("interrupted", false, false).await.unwrap();

    for kind in [ResultKind::Bucket, ResultKind::Record] {
        let mut straight = stored_results(&jobs, "straight", kind);
        let mut interrupted = stored_results(&jobs, "interrupted", kind);
        for doc in straight.iter_mut().chain(interrupted.iter_mut()) {
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
        assert!(!straight.is_empty());
        assert_eq!(straight, interrupted, "{kind:?} results differ");
    }
    let records = stored_results(&jobs, "straight", ResultKind::Record);
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
        jobs.post_data("kept", body(&all[..200])).await.unwrap();
        jobs.post_data("kept", body(&all[200..])).await.unwrap()
        // Dropped here without `shutdown`: as if the process died after acknowledging.
    };
    let jobs = manager_at(&path).await;
    let stats = jobs.job_stats("kept", false).await.unwrap();
    assert_eq!(stats[0]["state"], "opened");
    assert_eq!(
        stats[0]["data_counts"]["processed_record_count"],
        all.len() as u64
    );
    assert_eq!(
        stats[0]["data_counts"]["input_bytes"],
        expected_counts["input_bytes"]
    );
    // The replayed model carries on: more data is accepted and finalizes buckets.
    let more = records(30, 5);
    let counts = jobs.post_data("kept", body(&more)).await.unwrap();
    assert_eq!(
        counts["processed_record_count"],
        (all.len() + more.len()) as u64
    );
    assert_eq!(counts["out_of_order_timestamp_count"], 0);
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
