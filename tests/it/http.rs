//! The HTTP surface that does not depend on what jobs do: the root document, the headers every
//! answer carries, routing errors, body limits, content types and parameter validation (these are
//! all answered before the job layer is asked anything).

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::util::TestServer;

#[tokio::test]
async fn root_document_and_headers() {
    let server = TestServer::start().await;
    let reply = server.get("/").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-elastic-product"), Some("Elasticsearch"));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = reply.json();
    assert!(body["version"]["number"]
        .as_str()
        .expect("version number")
        .starts_with("8."));
    assert_eq!(body["version"]["build_flavor"], "default");
    assert_eq!(body["version"]["build_snapshot"], false);
    assert!(body["version"]["lucene_version"].is_string());
    assert_eq!(body["tagline"], "You Know, for Search");
    assert_eq!(body["cluster_name"], "auspex");
    assert_eq!(body["cluster_uuid"].as_str().map(str::len), Some(22));
    assert!(!body["name"].as_str().unwrap_or_default().is_empty());
    // Stable across requests.
    assert_eq!(
        server.get("/").await.json()["cluster_uuid"],
        body["cluster_uuid"]
    );
    server.stop().await;
}

#[tokio::test]
async fn head_root_has_headers_and_no_body() {
    let server = TestServer::start().await;
    let reply = server.send(server.request(Method::HEAD, "/")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-elastic-product"), Some("Elasticsearch"));
    assert!(reply.body.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn compatible_media_type_is_echoed() {
    let server = TestServer::start().await;
    let request = server.request(Method::GET, "/").header(
        ACCEPT,
        "application/vnd.elasticsearch+json; compatible-with=8",
    );
    let reply = server.send(request).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("application/vnd.elasticsearch+json;compatible-with=8")
    );
    // Errors too.
    let request = server.request(Method::GET, "/nope").header(
        ACCEPT,
        "application/vnd.elasticsearch+json; compatible-with=9",
    );
    let reply = server.send(request).await;
    assert_eq!(
        reply.header("content-type"),
        Some("application/vnd.elasticsearch+json;compatible-with=9")
    );
    server.stop().await;
}

#[tokio::test]
async fn pretty_prints() {
    let server = TestServer::start().await;
    let text = server.get("/?pretty").await.text();
    assert!(text.starts_with("{\n  \""), "{text}");
    assert!(text.ends_with("}\n"));
    let compact = server.get("/?pretty=false").await.text();
    assert!(!compact.contains('\n'));
    server.stop().await;
}

#[tokio::test]
async fn unknown_route_is_400_no_handler() {
    let server = TestServer::start().await;
    let reply = server.get("/nope/x?foo=1").await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.header("x-elastic-product"), Some("Elasticsearch"));
    assert_eq!(
        reply.json(),
        json!({"error": "no handler found for uri [/nope/x?foo=1] and method [GET]"})
    );
    server.stop().await;
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let server = TestServer::start().await;
    let reply = server.delete("/").await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("GET,HEAD"));
    assert_eq!(
        reply.json(),
        json!({
            "error": "Incorrect HTTP method for uri [/] and method [DELETE], allowed: [GET, HEAD]",
            "status": 405
        })
    );
    // A trailing slash still finds the route.
    let reply = server.get("/_ml/anomaly_detectors/j1/_flush/").await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("POST"));
    server.stop().await;
}

#[tokio::test]
async fn options_lists_methods() {
    let server = TestServer::start().await;
    let reply = server
        .send(server.request(Method::OPTIONS, "/_ml/anomaly_detectors/j1"))
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("allow"), Some("GET,PUT,DELETE"));
    server.stop().await;
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let server = TestServer::start_with(|config| config.max_content_length = 1024).await;
    let reply = server
        .post_raw(
            "/_ml/anomaly_detectors/j1/_data",
            "application/x-ndjson",
            vec![b' '; 2048],
        )
        .await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.header("x-elastic-product"), Some("Elasticsearch"));
    let (kind, reason) = reply.es_error();
    assert_eq!(kind, "content_too_long_exception");
    assert!(reason.contains("[1024b]"), "{reason}");
    // The server still answers.
    assert_eq!(server.get("/").await.status, 200);
    server.stop().await;
}

/// A chunked body declares no length: the limit must hold while reading.
#[tokio::test]
async fn chunked_body_over_the_limit_is_413() {
    let server = TestServer::start_with(|config| config.max_content_length = 1024).await;
    let mut stream = tokio::net::TcpStream::connect(server.address)
        .await
        .expect("connect");
    let mut request = b"POST /_ml/anomaly_detectors/j1/_data HTTP/1.1\r\nHost: x\r\n\
        Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"
        .to_vec();
    for _ in 0..4 {
        request.extend_from_slice(b"200\r\n");
        request.extend_from_slice(&[b' '; 0x200]);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    // The server may answer (and close) before reading everything; a failed write is fine.
    let _ = stream.write_all(&request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("content_too_long_exception"), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn unsupported_content_type_is_406() {
    let server = TestServer::start().await;
    let reply = server
        .post_raw(
            "/_ml/anomaly_detectors/j1/_flush",
            "application/xml",
            "<a/>",
        )
        .await;
    assert_eq!(reply.status, 406);
    assert_eq!(
        reply.json(),
        json!({"error": "Content-Type header [application/xml] is not supported", "status": 406})
    );
    server.stop().await;
}

#[tokio::test]
async fn unknown_parameter_is_400() {
    let server = TestServer::start().await;
    let reply = server
        .get("/_ml/anomaly_detectors/j1/results/buckets?exclude_interm=true")
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.es_error(),
        (
            "illegal_argument_exception".to_string(),
            "request [/_ml/anomaly_detectors/j1/results/buckets] contains unrecognized parameter: \
             [exclude_interm] -> did you mean [exclude_interim]?"
                .to_string()
        )
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_date_parameter_is_a_parse_exception() {
    let server = TestServer::start().await;
    let reply = server
        .get("/_ml/anomaly_detectors/j1/results/records?start=yesterday")
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.es_error(),
        (
            "parse_exception".to_string(),
            "Query param [start] with value [yesterday] cannot be parsed as a date or converted \
             to a number (epoch)."
                .to_string()
        )
    );
    server.stop().await;
}

#[tokio::test]
async fn flush_parameters_are_checked_before_the_job() {
    let server = TestServer::start().await;
    let reply = server
        .post("/_ml/anomaly_detectors/j1/_flush?start=1")
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.es_error().1,
        "Invalid flush parameters: unexpected 'start'."
    );
    let reply = server
        .post_json(
            "/_ml/anomaly_detectors/j1/_flush",
            &json!({"calc_interim": true, "end": "1403481600"}),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.es_error().1,
        "Invalid flush parameters: 'start' has not been specified."
    );
    let reply = server
        .post_json(
            "/_ml/anomaly_detectors/j1/_flush",
            &json!({"advance_time": "1403481600", "skip_time": "1403481700"}),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.es_error(),
        (
            "status_exception".to_string(),
            "advance_time [1403481600] must be later than skip_time [1403481700]".to_string()
        )
    );
    server.stop().await;
}

#[tokio::test]
async fn unknown_body_field_is_an_x_content_parse_exception() {
    let server = TestServer::start().await;
    let reply = server
        .post_json("/_ml/anomaly_detectors/j1/_close", &json!({"forse": true}))
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.es_error(),
        (
            "x_content_parse_exception".to_string(),
            "[close_job] unknown field [forse]".to_string()
        )
    );
    let reply = server
        .post_raw("/_ml/anomaly_detectors/j1/_close", "application/json", "{")
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.es_error().0, "x_content_parse_exception");
    server.stop().await;
}

#[tokio::test]
async fn body_on_a_bodiless_endpoint_is_refused() {
    let server = TestServer::start().await;
    let request = server
        .request(Method::GET, "/")
        .header(CONTENT_TYPE, "application/json")
        .body("{}");
    let reply = server.send(request).await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.es_error().1,
        "request [GET /] does not support having a body"
    );
    server.stop().await;
}

#[tokio::test]
async fn memory_stats_report_this_node_and_the_open_jobs_models() {
    let server = TestServer::start().await;
    let job = json!({"analysis_config": {"bucket_span": "1h",
        "detectors": [{"function": "mean", "field_name": "v", "by_field_name": "host"}]},
        "data_description": {"time_field": "t"}});
    assert_eq!(
        server
            .put_json("/_ml/anomaly_detectors/memory-stats", &job)
            .await
            .status,
        200
    );
    let idle = server.get("/_ml/memory/_stats").await;
    assert_eq!(idle.status, 200, "{}", idle.text());
    let idle = idle.json();
    assert_eq!(idle["_nodes"]["total"], 1);
    let (node_id, node) = idle["nodes"].as_object().unwrap().iter().next().unwrap();
    assert_eq!(node["mem"]["ml"]["anomaly_detectors_in_bytes"], 0);
    assert!(node["mem"]["total_in_bytes"].as_u64().unwrap() > 0);
    assert!(
        node["mem"]["total"].is_null(),
        "sizes with units only with ?human"
    );

    assert_eq!(
        server
            .post("/_ml/anomaly_detectors/memory-stats/_open")
            .await
            .status,
        200
    );
    let records: String = (0..50)
        .map(|i| {
            format!(
                "{{\"t\":{},\"v\":{},\"host\":\"h{}\"}}\n",
                i * 600_000,
                i % 7,
                i % 5
            )
        })
        .collect();
    let posted = server
        .post_raw(
            "/_ml/anomaly_detectors/memory-stats/_data",
            "application/x-ndjson",
            records,
        )
        .await;
    assert_eq!(posted.status, 202, "{}", posted.text());
    assert_eq!(
        server
            .post("/_ml/anomaly_detectors/memory-stats/_flush")
            .await
            .status,
        200
    );
    let open = server
        .get(&format!("/_ml/memory/{node_id}/_stats?human"))
        .await
        .json();
    let ml = &open["nodes"][node_id]["mem"]["ml"];
    let job_bytes = server
        .get("/_ml/anomaly_detectors/memory-stats/_stats")
        .await
        .json()["jobs"][0]["model_size_stats"]["model_bytes"]
        .as_u64()
        .unwrap();
    assert!(
        job_bytes > 0,
        "{}",
        server
            .get("/_ml/anomaly_detectors/memory-stats/_stats")
            .await
            .text()
    );
    assert_eq!(ml["anomaly_detectors_in_bytes"].as_u64(), Some(job_bytes));
    assert!(ml["anomaly_detectors"].is_string(), "{ml}");

    let none = server
        .get("/_ml/memory/some-other-node/_stats")
        .await
        .json();
    assert_eq!(none["_nodes"]["total"], 0);
    assert_eq!(none["nodes"], json!({}));
    let bad = server.get("/_ml/memory/_stats?size=3").await;
    assert_eq!(bad.status, 400);
    server.stop().await;
}

#[tokio::test]
async fn percent_encoded_path_parts_are_decoded() {
    let server = TestServer::start().await;
    // `%5F` is `_`: the decoded path is `/_ml/anomaly_detectors/j1/_flush`, which takes only POST.
    let reply = server.get("/_ml/anomaly%5Fdetectors/j1/%5Fflush").await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("POST"));
    server.stop().await;
}
