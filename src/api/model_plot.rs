//! auspex extension `GET/POST _ml/anomaly_detectors/<job_id>/results/model_plot`: the job's
//! model plot documents (Elasticsearch serves them only through a search of its results index).
//!
//! Owns the row queries shared with forecast rows ([`RowsQuery`]): the paging, time and sort
//! parameters of the other results endpoints (default `sort` = `timestamp` ascending) plus the
//! series filters `detector_index`, `by_field_value`, `partition_field_value` and
//! `over_field_value` (a population member's rows). The reply is
//! `{"count": N, "model_plot": [...]}`. Talks to: `job` (does the job exist), `store` (scan).

use serde_json::{json, Value};

use super::error::ApiError;
use super::params::{ParamSpec, Params};
use super::reply::Reply;
use super::request::ApiRequest;
use super::results::{blocking, page, scan, time_range};
use super::results_query::{query_plain, Page, ResultsPage};
use super::AppState;
use crate::store::ResultKind;

/// Parameters of a row query, in the query string or the body (`page` only in the body).
macro_rules! row_params {
    ($($extra:literal),*) => {
        &[
            "start", "end", "from", "size", "sort", "desc", "detector_index",
            "by_field_value", "partition_field_value", "over_field_value" $(, $extra)*
        ]
    };
}

const GET_MODEL_PLOT: ParamSpec = ParamSpec {
    api: "get_model_plot",
    query: row_params!("exclude_interim"),
    body: Some(row_params!("exclude_interim", "page")),
};

/// What a row query keeps and returns.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RowsQuery {
    pub range: (Option<i64>, Option<i64>),
    pub exclude_interim: bool,
    pub sort: String,
    pub desc: bool,
    pub page: Page,
    pub detector_index: Option<i64>,
    pub by_field_value: Option<String>,
    pub partition_field_value: Option<String>,
    pub over_field_value: Option<String>,
}

impl RowsQuery {
    pub(super) fn parse(params: &Params) -> Result<RowsQuery, ApiError> {
        Ok(RowsQuery {
            range: time_range(params)?,
            exclude_interim: params.bool_or("exclude_interim", false)?,
            sort: params.string("sort")?.unwrap_or_else(|| "timestamp".into()),
            desc: params.bool_or("desc", false)?,
            page: page(params)?.unwrap_or_default(),
            detector_index: params.int("detector_index")?,
            by_field_value: params.string("by_field_value")?,
            partition_field_value: params.string("partition_field_value")?,
            over_field_value: params.string("over_field_value")?,
        })
    }

    fn keeps(&self, doc: &Value) -> bool {
        let (start, end) = self.range;
        let time = doc.get("timestamp").and_then(Value::as_i64);
        let in_range =
            time.is_some_and(|t| start.is_none_or(|s| t >= s) && end.is_none_or(|e| t < e));
        let text = |name: &str, wanted: &Option<String>| {
            wanted
                .as_deref()
                .is_none_or(|w| doc.get(name).and_then(Value::as_str) == Some(w))
        };
        in_range
            && self
                .detector_index
                .is_none_or(|d| doc.get("detector_index").and_then(Value::as_i64) == Some(d))
            && text("by_field_value", &self.by_field_value)
            && text("partition_field_value", &self.partition_field_value)
            && text("over_field_value", &self.over_field_value)
    }

    /// Filters, sorts and pages `docs` (the time range is checked here too, so callers may pass
    /// documents not scanned by time).
    pub(super) fn apply(&self, docs: Vec<Value>) -> ResultsPage {
        let kept = docs.into_iter().filter(|d| self.keeps(d)).collect();
        query_plain(
            kept,
            self.exclude_interim,
            &self.sort,
            self.desc,
            &self.page,
        )
    }
}

pub async fn get(
    state: &AppState,
    job_id: String,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let params = request.params(&GET_MODEL_PLOT)?;
    let query = RowsQuery::parse(&params)?;
    state.jobs.require_job(&job_id)?;
    let store = state.jobs.store().clone();
    let page = blocking(move || {
        let docs = scan(&store, &job_id, ResultKind::ModelPlot, query.range)?;
        Ok(query.apply(docs))
    })
    .await?;
    Ok(Reply::ok(
        json!({ "count": page.count, "model_plot": page.results }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> RowsQuery {
        let query = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let params = Params::new("/p", &GET_MODEL_PLOT, query, None).expect("valid params");
        RowsQuery::parse(&params).expect("valid query")
    }

    /// Row times are seconds after an epoch-ms base, so `end` reads as a date in ms.
    const BASE: i64 = 1_700_000_000_000;

    fn row(t: i64, detector: i64, by: &str) -> Value {
        json!({"timestamp": BASE + t * 1000, "detector_index": detector, "by_field_value": by})
    }

    #[test]
    fn filters_sort_and_page() {
        let docs = vec![
            row(3, 0, "a"),
            row(1, 0, "b"),
            row(2, 1, "a"),
            row(4, 0, "a"),
        ];
        let stamps = |page: ResultsPage| -> Vec<i64> {
            page.results
                .iter()
                .map(|d| (d["timestamp"].as_i64().unwrap() - BASE) / 1000)
                .collect()
        };
        assert_eq!(stamps(query(&[]).apply(docs.clone())), vec![1, 2, 3, 4]);
        let by_a = query(&[("by_field_value", "a"), ("detector_index", "0")]);
        assert_eq!(stamps(by_a.apply(docs.clone())), vec![3, 4]);
        let end = (BASE + 4000).to_string();
        let page = query(&[
            ("desc", "true"),
            ("from", "1"),
            ("size", "2"),
            ("end", &end),
        ])
        .apply(docs);
        assert_eq!(page.count, 3);
        assert_eq!(stamps(page), vec![2, 1]);
    }
}
