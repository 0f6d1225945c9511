//! Many jobs and many requests at once: more than a hundred jobs open together with parallel posts,
//! flushes, result reads and closes end with the same results as the same jobs run one by one;
//! concurrent posts to one job are applied one at a time, each whole; a flood of posts to one job is
//! refused with 429 once its queue is full, and a refused post changes nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::Barrier;

use crate::util::{Client, TestServer};
use crate::workload::{final_results, job_ops, job_path, run_step, Op};

const JOBS: usize = 120;
const BATCHES: usize = 4;

fn ops_of(job: usize) -> Vec<Op> {
    job_ops(job as u64 + 7, &format!("many-{job:03}"), BATCHES)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_and_twenty_jobs_in_parallel_match_a_serial_run() {
    let serial = TestServer::start().await;
    let mut expected = BTreeMap::new();
    for job in 0..JOBS {
        let ops = ops_of(job);
        for op in &ops {
            run_step(&serial, std::slice::from_ref(op)).await;
        }
        let id = ops[0].job().to_string();
        expected.insert(id.clone(), final_results(&serial, &id).await);
    }
    serial.stop().await;

    let server = TestServer::start().await;
    // Every job is open before any posts: all of them are open at once.
    let opened = Arc::new(Barrier::new(JOBS + 1));
    let mut tasks = Vec::new();
    for job in 0..JOBS {
        let client = server.client.clone();
        let opened = opened.clone();
        tasks.push(tokio::spawn(async move {
            let ops = ops_of(job);
            for op in &ops[..2] {
                run_step(&client, std::slice::from_ref(op)).await;
            }
            opened.wait().await;
            for op in &ops[2..] {
                run_step(&client, std::slice::from_ref(op)).await;
                // A reader between writes: results and stats must always answer.
                let path = job_path(op.job());
                assert_eq!(
                    client.get(&format!("{path}/results/buckets")).await.status,
                    200
                );
            }
        }));
    }
    // A job task that fails before the barrier would leave it waiting forever.
    tokio::time::timeout(std::time::Duration::from_secs(300), opened.wait())
        .await
        .expect("every job task reaches the barrier");
    let open_now = open_jobs(&server).await;
    assert!(open_now >= 100, "{open_now} jobs open at once");
    for task in tasks {
        task.await.expect("job task");
    }
    for (job, expected) in &expected {
        assert_eq!(&final_results(&server, job).await, expected, "{job}");
    }
    server.stop().await;
}

async fn open_jobs(client: &Client) -> usize {
    let stats = client.get("/_ml/anomaly_detectors/_stats").await.json();
    stats["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter(|job| job["state"] == "opened")
        .count()
}

/// Batch `i` of the ordering test: `5 * (i + 1)` records in its own ten minutes, so a stored entry
/// names its batch by its first record's time.
fn ordered_batch(i: usize) -> (String, u64) {
    let mut body = String::new();
    let records = 5 * (i as u64 + 1);
    for k in 0..records {
        let t = 1_700_000_000_000 + i as i64 * 600_000 + k as i64 * 1000;
        body.push_str(&format!(
            "{{\"@timestamp\":{t},\"host\":\"h{}\",\"value\":{k}}}\n",
            k % 3
        ));
    }
    (body, records)
}

const POSTS: usize = 12;

/// The batches (`ordered_batch` numbers) of the job's stored `_data` entries, in input-log order.
fn applied_batches(server: &TestServer, job: &str) -> Vec<usize> {
    use auspex::job::pipeline::InputEntry;
    let store = server.state.jobs.store();
    let mut batches = Vec::new();
    for stored in store.scan_input(job, 0).expect("input") {
        let (_, bytes) = stored.expect("entry");
        if let Ok(InputEntry::Data { ndjson, .. }) = auspex::store::decode::<InputEntry>(&bytes) {
            let first: Value =
                serde_json::from_slice(ndjson.split(|&b| b == b'\n').next().unwrap_or_default())
                    .expect("a record");
            let t = first["@timestamp"].as_i64().expect("time");
            batches.push(((t - 1_700_000_000_000) / 600_000) as usize);
        }
    }
    batches
}

async fn put_and_open(client: &Client, job: &str) {
    let config = crate::workload::job_ops(1, job, 0).remove(0);
    run_step(client, &[config]).await;
    run_step(client, &[Op::Open { job: job.into() }]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_posts_to_one_job_apply_one_at_a_time_and_match_a_serial_run() {
    let server = TestServer::start().await;
    put_and_open(&server, "order").await;
    let tasks: Vec<_> = (0..POSTS)
        .map(|i| {
            let client = server.client.clone();
            tokio::spawn(async move {
                let (body, _) = ordered_batch(i);
                let reply = client
                    .post_raw(
                        &format!("{}/_data", job_path("order")),
                        "application/x-ndjson",
                        body,
                    )
                    .await;
                assert_eq!(reply.status, 202, "{}", reply.text());
                (i, reply.json())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("post task"));
    }
    // Each answer holds the counts of its own batch, whole.
    for (i, counts) in &answers {
        assert_eq!(
            counts["input_record_count"],
            ordered_batch(*i).1,
            "batch {i}: {counts}"
        );
    }
    // The input log says in which order they were applied: one entry per batch, each whole.
    let applied = applied_batches(&server, "order");
    let mut sorted = applied.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..POSTS).collect::<Vec<_>>(), "{applied:?}");
    server.post(&format!("{}/_close", job_path("order"))).await;
    let actual = final_results(&server, "order").await;
    server.stop().await;

    // The same batches, one after the other in the order they were applied.
    let serial = TestServer::start().await;
    put_and_open(&serial, "order").await;
    for &i in &applied {
        let (body, _) = ordered_batch(i);
        let reply = serial
            .post_raw(
                &format!("{}/_data", job_path("order")),
                "application/x-ndjson",
                body,
            )
            .await;
        assert_eq!(reply.status, 202);
    }
    serial.post(&format!("{}/_close", job_path("order"))).await;
    assert_eq!(actual, final_results(&serial, "order").await);
    serial.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_posts_is_refused_with_429_and_refused_posts_change_nothing() {
    const FLOOD: usize = 200;
    let server = TestServer::start().await;
    put_and_open(&server, "flood").await;
    let (body, records) = big_batch();
    let tasks: Vec<_> = (0..FLOOD)
        .map(|_| {
            let client = server.client.clone();
            let body = body.clone();
            tokio::spawn(async move {
                client
                    .post_raw(
                        &format!("{}/_data", job_path("flood")),
                        "application/x-ndjson",
                        body,
                    )
                    .await
            })
        })
        .collect();
    let mut accepted = 0;
    let mut refused = 0;
    for task in tasks {
        let reply = task.await.expect("post task");
        match reply.status {
            202 => accepted += 1,
            429 => {
                let (kind, reason) = reply.es_error();
                assert_eq!(kind, "es_rejected_execution_exception");
                assert!(reason.contains("[flood]"), "{reason}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {}", reply.text()),
        }
    }
    assert!(refused > 0, "a flood of {FLOOD} posts fills the queue");
    assert!(accepted >= 16, "the queue's worth is accepted: {accepted}");
    let stats: Value = server
        .get(&format!("{}/_stats", job_path("flood")))
        .await
        .json();
    assert_eq!(
        stats["jobs"][0]["data_counts"]["input_record_count"],
        accepted * records,
        "{accepted} accepted, {refused} refused"
    );
    server.stop().await;
}

/// The same 3000 records each time (later copies are out of order, which is still work to do).
fn big_batch() -> (String, u64) {
    let mut body = String::new();
    for k in 0..3000i64 {
        let t = 1_700_000_000_000 + k * 1000;
        body.push_str(&format!(
            "{{\"@timestamp\":{t},\"host\":\"h{}\",\"value\":{k}}}\n",
            k % 7
        ));
    }
    (body, 3000)
}
