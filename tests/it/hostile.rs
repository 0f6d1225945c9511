//! Hostile input. Property tests feed arbitrary bytes and near-valid documents to the record
//! parser, the time parsers, the job config parser, the router, and (through HTTP) the whole
//! request path: nothing panics, nothing answers 5xx. Then the limits: each one is a clear 4xx
//! Elasticsearch error, and a refused request changes nothing.
//!
//! CI runs proptest's default 256 cases per property; a longer run is
//! `PROPTEST_CASES=20000 cargo test --release --test it hostile::`.

use auspex::ingest::{DataDescription, DatePattern, RecordReader, TimeFormat, TimeValue};
use auspex::job::JobConfig;
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::util::{Client, TestServer};
use crate::workload::job_path;

fn reader(time_format: &str) -> RecordReader {
    let description = DataDescription {
        time_field: "t".to_string(),
        time_format: time_format.to_string(),
        ..DataDescription::default()
    };
    let fields = ["host", "value", "a.b"].map(String::from);
    RecordReader::new(&description, &fields).expect("valid description")
}

/// Text that is often almost JSON: fragments of records glued together.
fn near_json() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(",".to_string()),
        Just(":".to_string()),
        Just("\n".to_string()),
        Just("\"t\"".to_string()),
        Just("\"host\"".to_string()),
        Just("\"a\":{\"b\":".to_string()),
        Just("1e400".to_string()),
        Just("-0".to_string()),
        Just("null".to_string()),
        Just("\"\\ud800\"".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
        "\"[^\"\\\\]{0,8}\"",
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

proptest! {
    #[test]
    fn the_record_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300),
                                      text in near_json()) {
        for format in ["epoch", "epoch_ms", "yyyy-MM-dd'T'HH:mm:ssX"] {
            let reader = reader(format);
            let first = reader.read_body(&bytes);
            // Deterministic: the same body reads the same way twice.
            prop_assert_eq!(format!("{first:?}"), format!("{:?}", reader.read_body(&bytes)));
            let _ = reader.read_body(text.as_bytes());
        }
    }

    #[test]
    fn time_parsers_never_panic(format in "[a-zA-Z'\\-:. ]{0,24}", text in ".{0,32}",
                                int in any::<i64>(), uint in any::<u64>(), float in any::<f64>()) {
        if let Ok(parsed) = TimeFormat::parse(&format) {
            let _ = parsed.parse_value(TimeValue::Text(&text));
        }
        let _ = DatePattern::compile(&format).map(|p| p.parse(&text));
        for name in ["epoch", "epoch_ms", "yyyy-MM-dd HH:mm:ss", "dd/MMM/yyyy:HH:mm:ss Z"] {
            let parsed = TimeFormat::parse(name).expect("a supported format");
            let _ = parsed.parse_value(TimeValue::Text(&text));
            let _ = parsed.parse_value(TimeValue::Int(int));
            let _ = parsed.parse_value(TimeValue::UInt(uint));
            let read = parsed.parse_value(TimeValue::Float(float));
            prop_assert!(float.is_finite() || read.is_none(), "{name}: {float} read as {read:?}");
        }
    }

    #[test]
    fn the_job_config_parser_never_panics(id in ".{0,70}", text in near_json(),
                                          span in ".{0,12}", function in "[a-z_]{0,12}") {
        let _ = JobConfig::from_put_body(&id, text.as_bytes(), 0);
        let body = json!({
            "analysis_config": {"bucket_span": span, "detectors": [
                {"function": function, "field_name": text, "by_field_name": id}]},
            "data_description": {"time_field": "t", "time_format": span}
        });
        let _ = JobConfig::from_put_body("fuzzed", body.to_string().as_bytes(), 0);
    }

    #[test]
    fn the_router_never_panics(segments in proptest::collection::vec(".{0,12}", 0..7),
                               method in prop_oneof![Just("GET"), Just("PUT"), Just("POST"),
                                                     Just("DELETE"), Just("HEAD"), Just("PATCH")]) {
        let method = hyper::Method::from_bytes(method.as_bytes()).expect("method");
        let _ = auspex::api::route::route(&method, &segments);
        let _ = auspex::api::route::allowed_methods(&segments);
    }
}

/// One request of the HTTP fuzz: a method, a path built from tricky segments, a query, a body.
fn request() -> impl Strategy<Value = (String, String, Vec<u8>)> {
    let segment = prop_oneof![
        Just("_ml".to_string()),
        Just("anomaly_detectors".to_string()),
        Just("fuzz".to_string()),
        Just("_data".to_string()),
        Just("_flush".to_string()),
        Just("_open".to_string()),
        Just("_close".to_string()),
        Just("_stats".to_string()),
        Just("results".to_string()),
        Just("buckets".to_string()),
        Just("%ff".to_string()),
        Just("%".to_string()),
        "[a-z_*,.%0-9-]{0,10}",
    ];
    let query = prop_oneof![
        Just(String::new()),
        Just("?start=%zz".to_string()),
        Just("?advance_time=99999999999999999999".to_string()),
        Just("?size=-1&from=1e9".to_string()),
        "\\?[a-z_]{1,8}=[a-zA-Z0-9:.+-]{0,12}",
    ];
    (
        prop_oneof![Just("GET"), Just("PUT"), Just("POST"), Just("DELETE")],
        proptest::collection::vec(segment, 0..6),
        query,
        prop_oneof![
            near_json().prop_map(String::into_bytes),
            proptest::collection::vec(any::<u8>(), 0..64),
        ],
    )
        .prop_map(|(method, segments, query, body)| {
            (
                method.to_string(),
                format!("/{}{query}", segments.join("/")),
                body,
            )
        })
}

#[test]
fn no_request_makes_the_server_fail() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = runtime.block_on(async {
        let server = TestServer::start().await;
        assert_eq!(
            server.put_json(&job_path("fuzz"), &config()).await.status,
            200
        );
        assert_eq!(
            server
                .post(&format!("{}/_open", job_path("fuzz")))
                .await
                .status,
            200
        );
        server
    });
    let mut runner = proptest::test_runner::TestRunner::default();
    runner
        .run(&request(), |(method, path, body)| {
            let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
            let reply = runtime.block_on(
                server.send(
                    server
                        .request(method.clone(), &path)
                        .header("content-type", "application/json")
                        .body(body),
                ),
            );
            prop_assert!(
                reply.status < 500,
                "{method} {path}: {} {}",
                reply.status,
                reply.text()
            );
            Ok(())
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
    runtime.block_on(server.stop());
}

fn config() -> Value {
    json!({
        "analysis_config": {"bucket_span": "10m", "detectors": [
            {"function": "mean", "field_name": "value", "by_field_name": "host"}]},
        "data_description": {"time_field": "t", "time_format": "epoch_ms"}
    })
}

async fn counts(client: &Client, job: &str) -> Value {
    let mut counts = client
        .get(&format!("{}/_stats", job_path(job)))
        .await
        .json()["jobs"][0]["data_counts"]
        .clone();
    counts
        .as_object_mut()
        .expect("counts")
        .remove("last_data_time");
    counts
}

/// Posts `body`; expects a 400 with `kind` and `reason_part`, and the job's counts unchanged.
async fn refused(
    server: &TestServer,
    body: impl Into<bytes::Bytes>,
    kind: &str,
    reason_part: &str,
) {
    let before = counts(server, "limits").await;
    let reply = server
        .post_raw(
            &format!("{}/_data", job_path("limits")),
            "application/x-ndjson",
            body,
        )
        .await;
    assert_eq!(reply.status, 400, "{reason_part}: {}", reply.text());
    let (found_kind, reason) = reply.es_error();
    assert_eq!(found_kind, kind, "{reason}");
    assert!(reason.contains(reason_part), "{reason}");
    assert_eq!(
        counts(server, "limits").await,
        before,
        "{reason_part}: nothing changed"
    );
}

#[tokio::test]
async fn each_limit_is_a_clear_400_and_changes_nothing() {
    let server = TestServer::start().await;
    assert_eq!(
        server.put_json(&job_path("limits"), &config()).await.status,
        200
    );
    assert_eq!(
        server
            .post(&format!("{}/_open", job_path("limits")))
            .await
            .status,
        200
    );
    let good = "{\"t\":1700000000000,\"host\":\"a\",\"value\":1}\n";
    let accepted = server
        .post_raw(
            &format!("{}/_data", job_path("limits")),
            "application/x-ndjson",
            good,
        )
        .await;
    assert_eq!(accepted.status, 202);

    let parse = "x_content_parse_exception";
    // Each bad document comes after a good one: the whole request is refused.
    let with_good = |bad: String| format!("{good}{bad}\n");
    let fields: String = (0..10_001).map(|i| format!("\"f{i}\":1,")).collect();
    refused(
        &server,
        with_good(format!("{{{fields}\"t\":1}}")),
        parse,
        "more than 10000 fields",
    )
    .await;
    let name = "n".repeat(5000);
    refused(
        &server,
        with_good(format!("{{\"{name}\":1}}")),
        parse,
        "field name is longer",
    )
    .await;
    let value = "v".repeat(40_000);
    refused(
        &server,
        with_good(format!("{{\"host\":\"{value}\"}}")),
        parse,
        "value of an analysed field",
    )
    .await;
    let deep = format!("{}1{}", "{\"a\":".repeat(200), "}".repeat(200));
    refused(&server, with_good(deep), parse, "recursion limit").await;
    refused(
        &server,
        with_good("{\"value\":1e400}".into()),
        parse,
        "number out of range",
    )
    .await;
    let mut invalid = good.as_bytes().to_vec();
    invalid.extend_from_slice(b"{\"host\":\"\xff\xfe\"}\n");
    refused(&server, invalid, parse, "invalid UTF-8").await;
    refused(&server, with_good("{\"t\":".into()), parse, "line [2]").await;

    // Numbers a record may hold: huge finite ones are values, a time out of range is a bad date.
    let odd = "{\"t\":1e300,\"host\":\"a\",\"value\":1}\n{\"t\":1700000001000,\"host\":\"a\",\"value\":1.7e308}\n";
    let reply = server
        .post_raw(
            &format!("{}/_data", job_path("limits")),
            "application/x-ndjson",
            odd,
        )
        .await;
    assert_eq!(reply.status, 202, "{}", reply.text());
    assert_eq!(reply.json()["invalid_date_count"], 1);

    // Ids: over 64 characters is a 400 naming the limit.
    let long = "j".repeat(65);
    let reply = server.put_json(&job_path(&long), &config()).await;
    assert_eq!(reply.status, 400);
    assert!(reply
        .es_error()
        .1
        .contains("cannot contain more than 64 characters"));
    server.stop().await;
}

/// Sends `head` then `body_part` on a raw connection; then stalls (`close` false) or closes its
/// side (`close` true). Returns what the server answered, if anything.
async fn partial_request(
    address: std::net::SocketAddr,
    head: &str,
    body_part: &[u8],
    close: bool,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream.write_all(body_part).await.expect("write body");
    if close {
        stream.shutdown().await.expect("shutdown");
    }
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        stream.read_to_end(&mut answer),
    )
    .await;
    assert!(read.is_ok(), "the server ends a stalled request");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_stalled_or_truncated_body_is_dropped_and_changes_nothing() {
    let server = TestServer::start_with(|config| {
        config.body_read_timeout = std::time::Duration::from_millis(500);
    })
    .await;
    assert_eq!(
        server.put_json(&job_path("slow"), &config()).await.status,
        200
    );
    assert_eq!(
        server
            .post(&format!("{}/_open", job_path("slow")))
            .await
            .status,
        200
    );
    let before = counts(&server, "slow").await;
    let record = b"{\"t\":1700000000000,\"host\":\"a\",\"value\":1}\n";
    let head = format!(
        "POST {}/_data HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-ndjson\r\ncontent-length: {}\r\n\r\n",
        job_path("slow"),
        record.len() * 2
    );
    let started = std::time::Instant::now();
    let answer = partial_request(server.address, &head, record, false).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("timeout_exception"), "{answer}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // A client that sends half a body and hangs up: nothing to answer, nothing applied.
    partial_request(server.address, &head, record, true).await;
    assert_eq!(counts(&server, "slow").await, before);
    // The job was never held: it takes data at once.
    let reply = server
        .post_raw(
            &format!("{}/_data", job_path("slow")),
            "application/x-ndjson",
            &record[..],
        )
        .await;
    assert_eq!(reply.status, 202);
    server.stop().await;
}
