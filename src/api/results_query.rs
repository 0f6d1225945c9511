//! Results queries as pure functions over stored result documents (`serde_json::Value`s).
//!
//! Owns: the `buckets`, `records` and `influencers` query parameters ([`BucketsQuery`],
//! [`ScoredQuery`]) and what
//! they do to a list of documents already limited to `[start, end)` by the store scan:
//! `exclude_interim`, the score threshold (`anomaly_score` / `record_score` / `influencer_score`, `>=`; like
//! Elasticsearch, only a threshold above 0 filters), `sort` on any field (numbers, strings;
//! documents without the field last, whatever the order; ties keep time order), `desc`, paging
//! (`from`/`size`, `count` is the total before paging), and `expand` (a bucket's records attached).
//! Does not own: reading the store or parsing parameters (`api::results`). Talks to: nothing.

use std::cmp::Ordering;

use serde_json::Value;

/// Elasticsearch's default page and its `from + size` ceiling.
pub const DEFAULT_FROM: usize = 0;
pub const DEFAULT_SIZE: usize = 100;
pub const MAX_FROM_SIZE_SUM: i64 = 10_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub from: usize,
    pub size: usize,
}

impl Default for Page {
    fn default() -> Page {
        Page {
            from: DEFAULT_FROM,
            size: DEFAULT_SIZE,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BucketsQuery {
    pub exclude_interim: bool,
    pub anomaly_score: Option<f64>,
    pub sort: String,
    pub desc: bool,
    pub page: Page,
    pub expand: bool,
}

impl Default for BucketsQuery {
    fn default() -> BucketsQuery {
        BucketsQuery {
            exclude_interim: false,
            anomaly_score: None,
            sort: "timestamp".to_string(),
            desc: false,
            page: Page::default(),
            expand: false,
        }
    }
}

/// A query over documents that carry a score of their own: records (`record_score`) and
/// influencers (`influencer_score`). Elasticsearch's defaults: highest score first.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredQuery {
    pub exclude_interim: bool,
    /// The score field the threshold applies to (and the default sort).
    pub score_field: &'static str,
    pub threshold: Option<f64>,
    pub sort: String,
    pub desc: bool,
    pub page: Page,
}

impl ScoredQuery {
    pub fn new(score_field: &'static str) -> ScoredQuery {
        ScoredQuery {
            exclude_interim: false,
            score_field,
            threshold: None,
            sort: score_field.to_string(),
            desc: true,
            page: Page::default(),
        }
    }
}

/// One page of results and the number that matched before paging.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultsPage {
    pub count: usize,
    pub results: Vec<Value>,
}

pub fn query_buckets(buckets: Vec<Value>, query: &BucketsQuery) -> ResultsPage {
    select(
        buckets,
        query.exclude_interim,
        "anomaly_score",
        query.anomaly_score,
        &query.sort,
        query.desc,
        &query.page,
    )
}

pub fn query_scored(docs: Vec<Value>, query: &ScoredQuery) -> ResultsPage {
    select(
        docs,
        query.exclude_interim,
        query.score_field,
        query.threshold,
        &query.sort,
        query.desc,
        &query.page,
    )
}

/// A query without a score threshold (model plot and forecast rows).
pub fn query_plain(
    docs: Vec<Value>,
    exclude_interim: bool,
    sort: &str,
    desc: bool,
    page: &Page,
) -> ResultsPage {
    select(docs, exclude_interim, "", None, sort, desc, page)
}

fn select(
    docs: Vec<Value>,
    exclude_interim: bool,
    score_field: &str,
    threshold: Option<f64>,
    sort: &str,
    desc: bool,
    page: &Page,
) -> ResultsPage {
    let threshold = threshold.filter(|t| *t > 0.0);
    let mut kept: Vec<Value> = docs
        .into_iter()
        .filter(|doc| !(exclude_interim && is_interim(doc)))
        .filter(|doc| {
            threshold.is_none_or(|t| {
                doc.get(score_field)
                    .and_then(Value::as_f64)
                    .is_some_and(|s| s >= t)
            })
        })
        .collect();
    kept.sort_by(|a, b| compare_field(a.get(sort), b.get(sort), desc));
    let count = kept.len();
    let results = kept.into_iter().skip(page.from).take(page.size).collect();
    ResultsPage { count, results }
}

fn is_interim(doc: &Value) -> bool {
    doc.get("is_interim").and_then(Value::as_bool) == Some(true)
}

/// Present values in the requested order (numbers before strings before anything else), missing
/// ones last either way.
fn compare_field(a: Option<&Value>, b: Option<&Value>, desc: bool) -> Ordering {
    let rank = |v: &Value| match v {
        Value::Number(_) => 0,
        Value::String(_) => 1,
        Value::Bool(_) => 2,
        _ => 3,
    };
    match (a.filter(|v| !v.is_null()), b.filter(|v| !v.is_null())) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => {
            let ordering = match (a, b) {
                (Value::Number(x), Value::Number(y)) => {
                    let x = x.as_f64().unwrap_or(f64::NAN);
                    let y = y.as_f64().unwrap_or(f64::NAN);
                    x.total_cmp(&y)
                }
                (Value::String(x), Value::String(y)) => x.cmp(y),
                (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
                _ => rank(a).cmp(&rank(b)),
            };
            if desc {
                ordering.reverse()
            } else {
                ordering
            }
        }
    }
}

/// `expand=true`: gives each bucket the records with its timestamp (most anomalous, i.e. lowest
/// probability, first), leaving out interim records when asked. A bucket without records gets no
/// `records` key, as Elasticsearch renders it.
pub fn attach_records(buckets: &mut [Value], records: Vec<Value>, exclude_interim: bool) {
    let mut records: Vec<Value> = records
        .into_iter()
        .filter(|record| !(exclude_interim && is_interim(record)))
        .collect();
    records.sort_by(|a, b| compare_field(a.get("probability"), b.get("probability"), false));
    for bucket in buckets.iter_mut() {
        let Some(timestamp) = bucket.get("timestamp").and_then(Value::as_i64) else {
            continue;
        };
        let own: Vec<Value> = records
            .iter()
            .filter(|r| r.get("timestamp").and_then(Value::as_i64) == Some(timestamp))
            .cloned()
            .collect();
        if let (false, Some(map)) = (own.is_empty(), bucket.as_object_mut()) {
            map.insert("records".to_string(), Value::Array(own));
        }
    }
}

/// The time span `[first, last]` of a page of buckets (for fetching their records in one scan).
pub fn timestamp_span(buckets: &[Value]) -> Option<(i64, i64)> {
    let stamps = buckets
        .iter()
        .filter_map(|b| b.get("timestamp").and_then(Value::as_i64));
    stamps.fold(None, |span, t| match span {
        None => Some((t, t)),
        Some((lo, hi)) => Some((lo.min(t), hi.max(t))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bucket(timestamp: i64, score: f64, interim: bool) -> Value {
        json!({"job_id": "j", "result_type": "bucket", "timestamp": timestamp,
               "anomaly_score": score, "is_interim": interim, "bucket_span": 3600})
    }

    fn record(timestamp: i64, score: f64, probability: f64, interim: bool) -> Value {
        json!({"job_id": "j", "result_type": "record", "timestamp": timestamp,
               "record_score": score, "probability": probability, "is_interim": interim})
    }

    fn stamps(page: &ResultsPage) -> Vec<i64> {
        page.results
            .iter()
            .map(|d| d["timestamp"].as_i64().unwrap())
            .collect()
    }

    fn scores(page: &ResultsPage, field: &str) -> Vec<f64> {
        page.results
            .iter()
            .map(|d| d[field].as_f64().unwrap())
            .collect()
    }

    fn four_buckets() -> Vec<Value> {
        vec![
            bucket(1000, 10.0, false),
            bucket(2000, 80.0, false),
            bucket(3000, 0.0, false),
            bucket(4000, 50.0, true),
        ]
    }

    #[test]
    fn buckets_default_to_time_order() {
        let page = query_buckets(four_buckets(), &BucketsQuery::default());
        assert_eq!(page.count, 4);
        assert_eq!(stamps(&page), vec![1000, 2000, 3000, 4000]);
    }

    #[test]
    fn exclude_interim_and_threshold() {
        let query = BucketsQuery {
            exclude_interim: true,
            anomaly_score: Some(10.0),
            ..BucketsQuery::default()
        };
        let page = query_buckets(four_buckets(), &query);
        assert_eq!(page.count, 2);
        assert_eq!(stamps(&page), vec![1000, 2000]);
        // A zero threshold filters nothing, as in Elasticsearch.
        let query = BucketsQuery {
            anomaly_score: Some(0.0),
            ..BucketsQuery::default()
        };
        assert_eq!(query_buckets(four_buckets(), &query).count, 4);
    }

    #[test]
    fn sort_by_score_descending() {
        let query = BucketsQuery {
            sort: "anomaly_score".into(),
            desc: true,
            ..BucketsQuery::default()
        };
        let page = query_buckets(four_buckets(), &query);
        assert_eq!(scores(&page, "anomaly_score"), vec![80.0, 50.0, 10.0, 0.0]);
    }

    #[test]
    fn paging_counts_before_the_page() {
        let query = BucketsQuery {
            page: Page { from: 1, size: 2 },
            ..BucketsQuery::default()
        };
        let page = query_buckets(four_buckets(), &query);
        assert_eq!(page.count, 4);
        assert_eq!(stamps(&page), vec![2000, 3000]);
        let query = BucketsQuery {
            page: Page { from: 10, size: 2 },
            ..BucketsQuery::default()
        };
        let page = query_buckets(four_buckets(), &query);
        assert_eq!(page.count, 4);
        assert!(page.results.is_empty());
    }

    #[test]
    fn missing_sort_field_sorts_last_both_ways() {
        let mut docs = four_buckets();
        docs.push(json!({"timestamp": 5000}));
        for desc in [false, true] {
            let query = BucketsQuery {
                sort: "anomaly_score".into(),
                desc,
                ..BucketsQuery::default()
            };
            let page = query_buckets(docs.clone(), &query);
            assert_eq!(stamps(&page).last(), Some(&5000), "desc={desc}");
        }
    }

    #[test]
    fn records_default_to_score_descending_with_stable_ties() {
        let records = vec![
            record(1000, 5.0, 0.1, false),
            record(1000, 90.0, 0.001, false),
            record(2000, 5.0, 0.2, false),
            record(3000, 40.0, 0.01, true),
        ];
        let page = query_scored(records.clone(), &ScoredQuery::new("record_score"));
        assert_eq!(scores(&page, "record_score"), vec![90.0, 40.0, 5.0, 5.0]);
        // Equal scores keep time order.
        assert_eq!(stamps(&page), vec![1000, 3000, 1000, 2000]);
        let query = ScoredQuery {
            threshold: Some(40.0),
            exclude_interim: true,
            ..ScoredQuery::new("record_score")
        };
        let page = query_scored(records.clone(), &query);
        assert_eq!(page.count, 1);
        assert_eq!(scores(&page, "record_score"), vec![90.0]);
        let query = ScoredQuery {
            sort: "timestamp".into(),
            desc: false,
            ..ScoredQuery::new("record_score")
        };
        assert_eq!(
            stamps(&query_scored(records, &query)),
            vec![1000, 1000, 2000, 3000]
        );
    }

    #[test]
    fn influencers_default_to_score_descending_and_filter_on_influencer_score() {
        let influencer = |timestamp: i64, value: &str, score: f64, interim: bool| {
            json!({"timestamp": timestamp, "influencer_field_value": value,
                   "influencer_score": score, "is_interim": interim})
        };
        let docs = vec![
            influencer(1000, "a", 10.0, false),
            influencer(1000, "b", 90.0, false),
            influencer(2000, "a", 50.0, true),
        ];
        let page = query_scored(docs.clone(), &ScoredQuery::new("influencer_score"));
        assert_eq!(scores(&page, "influencer_score"), vec![90.0, 50.0, 10.0]);
        let query = ScoredQuery {
            threshold: Some(20.0),
            exclude_interim: true,
            ..ScoredQuery::new("influencer_score")
        };
        let page = query_scored(docs.clone(), &query);
        assert_eq!(page.count, 1);
        assert_eq!(page.results[0]["influencer_field_value"], "b");
        let query = ScoredQuery {
            sort: "influencer_field_value".into(),
            desc: false,
            page: Page { from: 1, size: 1 },
            ..ScoredQuery::new("influencer_score")
        };
        let page = query_scored(docs, &query);
        assert_eq!(page.count, 3);
        assert_eq!(stamps(&page), vec![2000]);
    }

    #[test]
    fn string_sort() {
        let docs = vec![
            json!({"timestamp": 1, "function": "mean"}),
            json!({"timestamp": 2, "function": "count"}),
        ];
        let query = ScoredQuery {
            sort: "function".into(),
            desc: false,
            ..ScoredQuery::new("record_score")
        };
        assert_eq!(stamps(&query_scored(docs, &query)), vec![2, 1]);
    }

    #[test]
    fn expand_attaches_same_timestamp_records() {
        let mut buckets = vec![bucket(1000, 10.0, false), bucket(2000, 0.0, false)];
        let records = vec![
            record(1000, 5.0, 0.1, false),
            record(1000, 90.0, 0.001, false),
            record(1000, 50.0, 0.01, true),
            record(3000, 1.0, 0.5, false),
        ];
        attach_records(&mut buckets, records.clone(), false);
        let attached = buckets[0]["records"].as_array().unwrap();
        let probabilities: Vec<f64> = attached
            .iter()
            .map(|r| r["probability"].as_f64().unwrap())
            .collect();
        assert_eq!(probabilities, vec![0.001, 0.01, 0.1]);
        assert!(buckets[1].get("records").is_none());

        let mut buckets = vec![bucket(1000, 10.0, false)];
        attach_records(&mut buckets, records, true);
        assert_eq!(buckets[0]["records"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn span_of_a_page() {
        assert_eq!(timestamp_span(&[]), None);
        assert_eq!(
            timestamp_span(&[bucket(3000, 0.0, false), bucket(1000, 0.0, false)]),
            Some((1000, 3000))
        );
    }
}
