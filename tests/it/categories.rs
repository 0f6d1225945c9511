//! Categorization over HTTP: the classic `count by mlcategory` job over synthetic log lines. A
//! burst of one message type gives a record whose `mlcategory` names its category, and
//! `results/categories` serves that category (terms, regex, capped examples, match count).

use serde_json::{json, Value};

use crate::util::{Client, TestServer};

const BASE: &str = "/_ml/anomaly_detectors";
const SPAN: i64 = 900;
const START: i64 = 1_704_067_200;

fn line(kind: u64, i: u64) -> String {
    match kind {
        0 => format!("User user{i} logged in from 10.0.{}.{}", i % 200, i % 250),
        1 => format!(
            "Disk quota exceeded on volume vol{} for tenant t{}",
            i % 50,
            i % 7
        ),
        _ => format!("Request {i} served in {} ms by worker w{}", i % 900, i % 16),
    }
}

/// `buckets` buckets of a few lines of each kind (seeded counts), plus `burst` extra disk lines in
/// bucket `burst_at`.
fn ndjson(buckets: i64, burst_at: i64, burst: u64) -> String {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut out = String::new();
    let mut i = 0u64;
    for b in 0..buckets {
        for kind in 0..3u64 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut n = 4 + state % 4;
            if kind == 1 && b == burst_at {
                n += burst;
            }
            for _ in 0..n {
                i += 1;
                let time = START + b * SPAN + (i % 800) as i64;
                let doc = json!({"time": time, "message": line(kind, i)});
                out += &format!("{doc}\n");
            }
        }
    }
    out
}

async fn put_job(client: &Client, job_id: &str, analysis: Value) -> u16 {
    let body = json!({
        "analysis_config": analysis,
        "data_description": {"time_field": "time", "time_format": "epoch"}
    });
    client
        .put_json(&format!("{BASE}/{job_id}"), &body)
        .await
        .status
}

#[tokio::test]
async fn count_by_mlcategory_finds_a_burst_and_serves_its_category() {
    let server = TestServer::start().await;
    let analysis = json!({"bucket_span": "15m", "categorization_field_name": "message",
        "detectors": [{"function": "count", "by_field_name": "mlcategory"}]});
    assert_eq!(put_job(&server, "logs", analysis).await, 200);
    assert_eq!(server.post(&format!("{BASE}/logs/_open")).await.status, 200);
    let reply = server
        .post_raw(
            &format!("{BASE}/logs/_data"),
            "application/x-ndjson",
            ndjson(200, 180, 120),
        )
        .await;
    assert_eq!(reply.status, 202, "{}", reply.text());
    assert_eq!(
        server.post(&format!("{BASE}/logs/_close")).await.status,
        200
    );

    let categories = server.get(&format!("{BASE}/logs/results/categories")).await;
    assert_eq!(categories.status, 200, "{}", categories.text());
    let categories = categories.json();
    assert_eq!(categories["count"], 3, "{categories}");
    let disk = categories["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["terms"].as_str().unwrap_or("").contains("quota"))
        .expect("a disk category")
        .clone();
    assert_eq!(disk["result_type"], "category_definition");
    assert_eq!(disk["job_id"], "logs");
    let id = disk["category_id"].as_u64().unwrap();
    assert_eq!(disk["mlcategory"], id.to_string());
    assert_eq!(disk["examples"].as_array().unwrap().len(), 4);
    assert!(disk["regex"]
        .as_str()
        .unwrap()
        .starts_with(".*?Disk.+?quota"));
    assert!(disk["num_matches"].as_u64().unwrap() > 120);

    let records = server
        .get(&format!(
            "{BASE}/logs/results/records?sort=record_score&desc=true"
        ))
        .await
        .json();
    let top = &records["records"][0];
    assert_eq!(top["by_field_name"], "mlcategory", "{records}");
    assert_eq!(top["by_field_value"], id.to_string());
    assert_eq!(top["mlcategory"], json!([id.to_string()]));
    assert_eq!(top["timestamp"], (START + 180 * SPAN) * 1000);

    let one = server
        .get(&format!("{BASE}/logs/results/categories/{id}"))
        .await
        .json();
    assert_eq!(one["count"], 1);
    assert_eq!(one["categories"][0], disk);
    let paged = server
        .post_json(
            &format!("{BASE}/logs/results/categories"),
            &json!({"page": {"from": 1, "size": 1}}),
        )
        .await
        .json();
    assert_eq!(paged["count"], 3);
    assert_eq!(paged["categories"][0]["category_id"], 2);
    assert_eq!(
        server
            .get(&format!("{BASE}/logs/results/categories/99"))
            .await
            .status,
        404
    );

    let stats = server.get(&format!("{BASE}/logs/_stats")).await.json();
    let model = &stats["jobs"][0]["model_size_stats"];
    assert_eq!(model["total_category_count"], 3, "{model}");
    assert_eq!(model["frequent_category_count"], 3);
    assert_eq!(model["categorization_status"], "ok");
    assert_eq!(
        model["categorized_doc_count"],
        stats["jobs"][0]["data_counts"]["processed_record_count"]
    );
    server.stop().await;
}

#[tokio::test]
async fn unsupported_analyzers_and_bad_filters_are_refused() {
    let server = TestServer::start().await;
    let with = |extra: Value| {
        let mut analysis = json!({"categorization_field_name": "message",
            "detectors": [{"function": "count", "by_field_name": "mlcategory"}]});
        for (k, v) in extra.as_object().unwrap() {
            analysis[k] = v.clone();
        }
        json!({"analysis_config": analysis, "data_description": {"time_field": "time"}})
    };
    let reply = server
        .put_json(
            &format!("{BASE}/a1"),
            &with(json!({"categorization_analyzer": {"tokenizer": "whitespace"}})),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.es_error().1.contains("not supported by auspex"),
        "{}",
        reply.text()
    );
    let reply = server
        .put_json(
            &format!("{BASE}/a2"),
            &with(json!({"categorization_filters": ["(oops"]})),
        )
        .await;
    assert_eq!(
        reply.es_error().1,
        "categorization_filters contains invalid regular expression '(oops'"
    );
    let reply = server
        .put_json(
            &format!("{BASE}/a3"),
            &with(json!({"categorization_analyzer": {"tokenizer": "ml_standard",
                "char_filter": ["first_line_with_letters", {"type": "pattern_replace", "pattern": "\\[.*?\\]"}]}})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    server.stop().await;
}
