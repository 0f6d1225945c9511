//! `GET /_prometheus/metrics` after real job work, and structured (JSON) request logs.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::cli_replay::{load_over_http, sample_lines};
use crate::util::{Client, TestServer};

/// The value of the sample `name{labels}` (labels exactly as rendered), if present.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn job_and_http_metrics_in_the_prometheus_text_format() {
    let server = TestServer::start().await;
    load_over_http(&server, "m1", sample_lines(Some(2000))).await;
    let flushed = server
        .post_json("/_ml/anomaly_detectors/m1/_flush", &serde_json::json!({}))
        .await;
    assert_eq!(flushed.status, 409, "a closed job cannot be flushed");
    assert_eq!(
        server.post("/_ml/anomaly_detectors/m1/_open").await.status,
        200
    );
    let flushed = server.post("/_ml/anomaly_detectors/m1/_flush").await;
    assert_eq!(flushed.status, 200);
    let stats = server.get("/_ml/anomaly_detectors/m1/_stats").await.json();
    let buckets = stats["jobs"][0]["timing_stats"]["bucket_count"].as_f64();

    let reply = server.get("/_prometheus/metrics").await;
    assert_eq!(reply.status, 200);
    assert!(reply
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")));
    let page = reply.text();
    let job = "{job_id=\"m1\"}";
    assert_eq!(
        sample(&page, &format!("auspex_job_processed_records_total{job}")),
        Some(2000.0),
        "{page}"
    );
    assert_eq!(
        sample(&page, &format!("auspex_job_buckets_finalized_total{job}")),
        buckets
    );
    assert!(buckets > Some(0.0));
    assert!(sample(&page, &format!("auspex_job_model_bytes{job}")) > Some(0.0));
    assert_eq!(
        sample(
            &page,
            "auspex_job_memory_status{job_id=\"m1\",memory_status=\"ok\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&page, "auspex_job_state{job_id=\"m1\",state=\"opened\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&page, &format!("auspex_job_flush_seconds_count{job}")),
        Some(1.0)
    );
    assert_eq!(
        sample(&page, &format!("auspex_job_persist_seconds_count{job}")),
        Some(1.0),
        "the close"
    );
    assert_eq!(
        sample(
            &page,
            "auspex_job_persist_seconds_bucket{job_id=\"m1\",le=\"+Inf\"}"
        ),
        Some(1.0)
    );
    let posts =
        "auspex_http_requests_total{endpoint=\"ml.post_data\",method=\"POST\",status=\"202\"}";
    assert!(sample(&page, posts) >= Some(1.0), "{page}");
    let conflicts =
        "auspex_http_requests_total{endpoint=\"ml.flush_job\",method=\"POST\",status=\"409\"}";
    assert!(sample(&page, conflicts) >= Some(1.0), "{page}");
    assert!(
        sample(
            &page,
            "auspex_http_request_duration_seconds_count{endpoint=\"ml.post_data\"}"
        ) >= Some(1.0)
    );
    // Every line is a comment or `name{labels} value`.
    for line in page.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        assert!(value == "+Inf" || value.parse::<f64>().is_ok(), "{line}");
        assert!(series.starts_with("auspex_"), "{line}");
    }
    server.stop().await;
}

#[tokio::test]
async fn json_logs_have_one_debug_line_per_request() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_auspex"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--no-security",
            "--log-format",
            "json",
            "--data",
        ])
        .arg(data.path())
        .env("AUSPEX_LOG", "auspex=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("address line");
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .expect("address line")
        .to_string();
    let client = Client::new(base);
    assert_eq!(
        client.get("/_ml/anomaly_detectors?pretty").await.status,
        200
    );
    let pid = child.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    let output = child.wait_with_output().expect("exit");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let logs: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let request = logs
        .iter()
        .find(|l| l["fields"]["message"] == "request")
        .unwrap_or_else(|| panic!("no request line in {stderr}"));
    assert_eq!(request["level"], "DEBUG");
    assert_eq!(request["fields"]["path"], "/_ml/anomaly_detectors");
    assert_eq!(request["fields"]["endpoint"], "ml.get_jobs");
    assert_eq!(request["fields"]["status"], 200);
    assert!(logs
        .iter()
        .any(|l| l["fields"]["message"] == "auspex started"));
}
