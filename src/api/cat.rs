//! `GET _cat/ml/anomaly_detectors[/<job_id>]`: the jobs' stats as a text table (or JSON).
//!
//! Owns the column table (name, alias, where the value comes from in a `_stats` document, how it is
//! rendered), the default columns, `h` (names, aliases or wildcards), `s` (`col[:asc|:desc]`), `v`
//! (header row), `help`, `bytes` and `time` units, and `format=json` (an array of objects whose
//! values are strings, as Elasticsearch renders cat tables). Text rows are padded to column widths
//! with numeric columns right-aligned. Talks to: `job` (stats).

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::error::ApiError;
use super::params::{ParamSpec, Params};
use super::reply::Reply;
use super::request::ApiRequest;
use super::AppState;

const CAT_JOBS: ParamSpec = ParamSpec {
    api: "cat_ml_jobs",
    query: &["allow_no_match", "bytes", "h", "help", "s", "time", "v"],
    body: None,
};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Text,
    Count,
    Bytes,
    /// Milliseconds rendered as a time value.
    Millis,
    /// Epoch ms rendered as a date.
    Date,
}

/// (name, alias, path in the `_stats` document, kind).
#[rustfmt::skip]
const COLUMNS: &[(&str, &str, &str, Kind)] = &[
    ("id", "id", "job_id", Kind::Text),
    ("state", "s", "state", Kind::Text),
    ("opened_time", "ot", "open_time", Kind::Text),
    ("assignment_explanation", "ae", "assignment_explanation", Kind::Text),
    ("data.processed_records", "dpr", "data_counts.processed_record_count", Kind::Count),
    ("data.processed_fields", "dpf", "data_counts.processed_field_count", Kind::Count),
    ("data.input_bytes", "dib", "data_counts.input_bytes", Kind::Bytes),
    ("data.input_records", "dir", "data_counts.input_record_count", Kind::Count),
    ("data.input_fields", "dif", "data_counts.input_field_count", Kind::Count),
    ("data.invalid_dates", "did", "data_counts.invalid_date_count", Kind::Count),
    ("data.missing_fields", "dmf", "data_counts.missing_field_count", Kind::Count),
    ("data.out_of_order_timestamps", "doot", "data_counts.out_of_order_timestamp_count", Kind::Count),
    ("data.empty_buckets", "deb", "data_counts.empty_bucket_count", Kind::Count),
    ("data.sparse_buckets", "dsb", "data_counts.sparse_bucket_count", Kind::Count),
    ("data.buckets", "db", "data_counts.bucket_count", Kind::Count),
    ("data.earliest_record", "der", "data_counts.earliest_record_timestamp", Kind::Date),
    ("data.latest_record", "dlr", "data_counts.latest_record_timestamp", Kind::Date),
    ("data.last", "dl", "data_counts.last_data_time", Kind::Date),
    ("data.last_empty_bucket", "dleb", "data_counts.latest_empty_bucket_timestamp", Kind::Date),
    ("data.last_sparse_bucket", "dlsb", "data_counts.latest_sparse_bucket_timestamp", Kind::Date),
    ("model.bytes", "mb", "model_size_stats.model_bytes", Kind::Bytes),
    ("model.memory_status", "mms", "model_size_stats.memory_status", Kind::Text),
    ("model.bytes_exceeded", "mbe", "model_size_stats.model_bytes_exceeded", Kind::Bytes),
    ("model.memory_limit", "mml", "model_size_stats.model_bytes_memory_limit", Kind::Bytes),
    ("model.by_fields", "mbf", "model_size_stats.total_by_field_count", Kind::Count),
    ("model.over_fields", "mof", "model_size_stats.total_over_field_count", Kind::Count),
    ("model.partition_fields", "mpf", "model_size_stats.total_partition_field_count", Kind::Count),
    ("model.bucket_allocation_failures", "mbaf", "model_size_stats.bucket_allocation_failures_count", Kind::Count),
    ("model.categorization_status", "mcs", "model_size_stats.categorization_status", Kind::Text),
    ("model.categorized_doc_count", "mcdc", "model_size_stats.categorized_doc_count", Kind::Count),
    ("model.total_category_count", "mtcc", "model_size_stats.total_category_count", Kind::Count),
    ("model.frequent_category_count", "modfcc", "model_size_stats.frequent_category_count", Kind::Count),
    ("model.rare_category_count", "mrcc", "model_size_stats.rare_category_count", Kind::Count),
    ("model.dead_category_count", "mdcc", "model_size_stats.dead_category_count", Kind::Count),
    ("model.failed_category_count", "mfcc", "model_size_stats.failed_category_count", Kind::Count),
    ("model.log_time", "mlt", "model_size_stats.log_time", Kind::Date),
    ("model.timestamp", "mt", "model_size_stats.timestamp", Kind::Date),
    ("forecasts.total", "ft", "forecasts_stats.total", Kind::Count),
    ("forecasts.memory.min", "fmmin", "forecasts_stats.memory_bytes.min", Kind::Bytes),
    ("forecasts.memory.max", "fmmax", "forecasts_stats.memory_bytes.max", Kind::Bytes),
    ("forecasts.memory.avg", "fmavg", "forecasts_stats.memory_bytes.avg", Kind::Bytes),
    ("forecasts.memory.total", "fmt", "forecasts_stats.memory_bytes.total", Kind::Bytes),
    ("forecasts.records.min", "frmin", "forecasts_stats.records.min", Kind::Count),
    ("forecasts.records.max", "frmax", "forecasts_stats.records.max", Kind::Count),
    ("forecasts.records.avg", "fravg", "forecasts_stats.records.avg", Kind::Count),
    ("forecasts.records.total", "frt", "forecasts_stats.records.total", Kind::Count),
    ("forecasts.time.min", "ftmin", "forecasts_stats.processing_time_ms.min", Kind::Millis),
    ("forecasts.time.max", "ftmax", "forecasts_stats.processing_time_ms.max", Kind::Millis),
    ("forecasts.time.avg", "ftavg", "forecasts_stats.processing_time_ms.avg", Kind::Millis),
    ("forecasts.time.total", "ftt", "forecasts_stats.processing_time_ms.total", Kind::Millis),
    ("node.id", "ni", "node.id", Kind::Text),
    ("node.name", "nn", "node.name", Kind::Text),
    ("node.ephemeral_id", "ne", "node.ephemeral_id", Kind::Text),
    ("node.address", "na", "node.transport_address", Kind::Text),
    ("buckets.count", "bc", "timing_stats.bucket_count", Kind::Count),
    ("buckets.time.total", "btt", "timing_stats.total_bucket_processing_time_ms", Kind::Millis),
    ("buckets.time.min", "btmin", "timing_stats.minimum_bucket_processing_time_ms", Kind::Millis),
    ("buckets.time.max", "btmax", "timing_stats.maximum_bucket_processing_time_ms", Kind::Millis),
    ("buckets.time.exp_avg", "btea", "timing_stats.exponential_average_bucket_processing_time_ms", Kind::Millis),
    ("buckets.time.exp_avg_hour", "bteah", "timing_stats.exponential_average_bucket_processing_time_per_hour_ms", Kind::Millis),
];

const DEFAULT_COLUMNS: &[&str] = &[
    "id",
    "state",
    "data.processed_records",
    "model.bytes",
    "model.memory_status",
    "forecasts.total",
    "buckets.count",
];

type Column = (&'static str, &'static str, &'static str, Kind);

pub async fn jobs(
    state: &AppState,
    job_id: Option<&str>,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let params = request.params_without_body(&CAT_JOBS)?;
    let allow_no_match = params.bool_or("allow_no_match", true)?;
    let units = Units {
        bytes: unit(&params, "bytes", &["b", "kb", "mb", "gb", "tb", "pb"])?,
        time: unit(
            &params,
            "time",
            &["d", "h", "m", "s", "ms", "micros", "nanos"],
        )?,
    };
    if params.bool_or("help", false)? {
        let help: String = COLUMNS
            .iter()
            .map(|(name, alias, path, _)| format!("{name} | {alias} | {path}\n"))
            .collect();
        return Ok(Reply::text(help));
    }
    let columns = select_columns(params.string("h")?.as_deref())?;
    let stats = state
        .jobs
        .job_stats(job_id.unwrap_or("_all"), allow_no_match)
        .await?;
    let mut rows: Vec<Vec<Option<String>>> = stats
        .iter()
        .map(|doc| columns.iter().map(|c| cell(doc, c, &units)).collect())
        .collect();
    if let Some(sort) = params.string("s")? {
        sort_rows(&mut rows, &columns, &sort)?;
    }
    let json = params.string("format")?.as_deref() == Some("json");
    if json {
        let objects: Vec<Value> = rows
            .into_iter()
            .map(|row| {
                let map: Map<String, Value> = columns
                    .iter()
                    .zip(row)
                    .map(|(c, v)| (c.0.to_string(), v.map_or(Value::Null, Value::String)))
                    .collect();
                Value::Object(map)
            })
            .collect();
        return Ok(Reply::ok(Value::Array(objects)));
    }
    Ok(Reply::text(table(
        &columns,
        &rows,
        params.bool_or("v", false)?,
    )))
}

struct Units {
    bytes: Option<String>,
    time: Option<String>,
}

fn unit(params: &Params, name: &str, allowed: &[&str]) -> Result<Option<String>, ApiError> {
    match params.string(name)? {
        Some(u) if !allowed.contains(&u.as_str()) => Err(ApiError::illegal_argument(format!(
            "Unsupported {name} unit [{u}]; use one of [{}]",
            allowed.join(", ")
        ))),
        other => Ok(other),
    }
}

fn select_columns(h: Option<&str>) -> Result<Vec<Column>, ApiError> {
    let Some(h) = h.filter(|h| !h.is_empty()) else {
        return Ok(COLUMNS
            .iter()
            .filter(|c| DEFAULT_COLUMNS.contains(&c.0))
            .copied()
            .collect());
    };
    let mut out = Vec::new();
    for wanted in h.split(',').map(str::trim) {
        let matched: Vec<Column> = COLUMNS
            .iter()
            .filter(|(name, alias, _, _)| {
                crate::job::wildcard_match(wanted, name) || *alias == wanted
            })
            .copied()
            .collect();
        if matched.is_empty() {
            return Err(ApiError::illegal_argument(format!(
                "header name [{wanted}] does not exist in the cat table"
            )));
        }
        out.extend(matched);
    }
    Ok(out)
}

fn lookup<'v>(doc: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(doc, |v, key| v.get(key))
}

fn cell(doc: &Value, column: &Column, units: &Units) -> Option<String> {
    let value = lookup(doc, column.2).filter(|v| !v.is_null())?;
    let number = value.as_f64();
    Some(match (column.3, number) {
        (Kind::Bytes, Some(n)) => render_bytes(n, units.bytes.as_deref()),
        (Kind::Millis, Some(n)) => render_millis(n, units.time.as_deref()),
        (Kind::Date, Some(n)) => chrono::DateTime::from_timestamp_millis(n as i64).map_or_else(
            || n.to_string(),
            |d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        ),
        _ => match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
    })
}

/// Elasticsearch's `ByteSizeValue` rendering (`1.2mb`), or a whole number in the asked unit.
pub(super) fn render_bytes(bytes: f64, unit: Option<&str>) -> String {
    const UNITS: [&str; 6] = ["b", "kb", "mb", "gb", "tb", "pb"];
    if let Some(unit) = unit {
        let power = UNITS.iter().position(|u| *u == unit).unwrap_or(0) as i32;
        return ((bytes / 1024f64.powi(power)).floor() as i64).to_string();
    }
    let mut value = bytes;
    let mut index = 0;
    while value >= 1024.0 && index < UNITS.len() - 1 {
        value /= 1024.0;
        index += 1;
    }
    trim_number(value, UNITS[index])
}

/// Elasticsearch's `TimeValue` rendering (`1.5s`), or a whole number in the asked unit.
fn render_millis(millis: f64, unit: Option<&str>) -> String {
    const UNITS: [(&str, f64); 7] = [
        ("nanos", 1e-6),
        ("micros", 1e-3),
        ("ms", 1.0),
        ("s", 1e3),
        ("m", 6e4),
        ("h", 3.6e6),
        ("d", 8.64e7),
    ];
    if let Some((_, scale)) = unit.and_then(|u| UNITS.iter().find(|(name, _)| *name == u)) {
        return ((millis / scale).floor() as i64).to_string();
    }
    let (name, scale) = UNITS[2..]
        .iter()
        .rev()
        .find(|(_, scale)| millis >= *scale)
        .copied()
        .unwrap_or(UNITS[2]);
    trim_number(millis / scale, name)
}

/// One decimal at most, none when it is zero: `1.2kb`, `3mb`.
fn trim_number(value: f64, unit: &str) -> String {
    let rounded = (value * 10.0).round() / 10.0;
    if rounded.fract() == 0.0 {
        format!("{}{unit}", rounded as i64)
    } else {
        format!("{rounded:.1}{unit}")
    }
}

fn sort_rows(
    rows: &mut [Vec<Option<String>>],
    columns: &[Column],
    sort: &str,
) -> Result<(), ApiError> {
    let mut keys = Vec::new();
    for part in sort.split(',').map(str::trim) {
        let (name, desc) = match part.rsplit_once(':') {
            Some((name, "desc")) => (name, true),
            Some((name, "asc")) => (name, false),
            _ => (part, false),
        };
        let index = columns
            .iter()
            .position(|(n, alias, _, _)| *n == name || *alias == name)
            .ok_or_else(|| {
                ApiError::illegal_argument(format!("Unable to sort by unknown sort key `{name}`"))
            })?;
        keys.push((index, desc));
    }
    rows.sort_by(|a, b| {
        keys.iter()
            .map(|&(i, desc)| {
                let ordering = compare_cells(a[i].as_deref(), b[i].as_deref());
                if desc {
                    ordering.reverse()
                } else {
                    ordering
                }
            })
            .find(|o| *o != Ordering::Equal)
            .unwrap_or(Ordering::Equal)
    });
    Ok(())
}

fn compare_cells(a: Option<&str>, b: Option<&str>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(x), Ok(y)) => x.total_cmp(&y),
            _ => a.cmp(b),
        },
        (a, b) => a.is_some().cmp(&b.is_some()).reverse(),
    }
}

fn table(columns: &[Column], rows: &[Vec<Option<String>>], header: bool) -> String {
    let mut lines: Vec<Vec<String>> = Vec::new();
    if header {
        lines.push(columns.iter().map(|c| c.0.to_string()).collect());
    }
    for row in rows {
        lines.push(row.iter().map(|v| v.clone().unwrap_or_default()).collect());
    }
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .enumerate()
            .map(|(i, text)| {
                if columns[i].3 == Kind::Text || columns[i].3 == Kind::Date {
                    format!("{text:<width$}", width = widths[i])
                } else {
                    format!("{text:>width$}", width = widths[i])
                }
            })
            .collect();
        out.push_str(cells.join(" ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_and_time_rendering() {
        assert_eq!(render_bytes(0.0, None), "0b");
        assert_eq!(render_bytes(1536.0, None), "1.5kb");
        assert_eq!(render_bytes(3.0 * 1048576.0, None), "3mb");
        assert_eq!(render_bytes(3.0 * 1048576.0, Some("kb")), "3072");
        assert_eq!(render_millis(1500.0, None), "1.5s");
        assert_eq!(render_millis(0.25, None), "0.3ms");
        assert_eq!(render_millis(7_200_000.0, Some("m")), "120");
    }

    #[test]
    fn columns_by_name_alias_and_wildcard() {
        let names = |h| {
            select_columns(Some(h))
                .unwrap()
                .iter()
                .map(|c| c.0)
                .collect::<Vec<_>>()
        };
        assert_eq!(names("id,s,dpr"), ["id", "state", "data.processed_records"]);
        assert_eq!(names("node.*").len(), 4);
        assert!(select_columns(Some("nope")).is_err());
        assert_eq!(select_columns(None).unwrap().len(), DEFAULT_COLUMNS.len());
    }

    #[test]
    fn tables_align_and_sort_numerically() {
        let columns = select_columns(Some("id,dpr")).unwrap();
        let mut rows = vec![
            vec![Some("a".to_string()), Some("100".to_string())],
            vec![Some("bb".to_string()), Some("9".to_string())],
        ];
        sort_rows(&mut rows, &columns, "dpr").unwrap();
        assert_eq!(
            table(&columns, &rows, true),
            "id data.processed_records\nbb                      9\na                     100\n"
        );
        sort_rows(&mut rows, &columns, "id:desc").unwrap();
        assert_eq!(rows[0][0].as_deref(), Some("bb"));
        assert!(sort_rows(&mut rows, &columns, "nope").is_err());
    }
}
