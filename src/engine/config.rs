//! JobConfig: the job document (`PUT _ml/anomaly_detectors/<id>`): parsing, validation, defaults.
//!
//! Owns the job-level rules (retention, results index, what may not be set at creation, ...) and the
//! defaults Elasticsearch fills in. The request body's wire shape and its parse errors live in
//! `body`, the `analysis_config` rules in `analysis`, one detector's rules in `detector`, the id rules
//! in `ids`. Does not own storage, nor uniqueness against existing jobs and groups: the job manager
//! checks those.
//!
//! Error types follow Elasticsearch: a body that is not the expected JSON shape is
//! [`JobError::Parse`] (`x_content_parse_exception`), every rule on the values is
//! [`JobError::InvalidArgument`] (`illegal_argument_exception`) with Elasticsearch's message.

mod analysis;
mod body;
mod categorization;
mod detector;
mod ids;
mod rules;

use serde::{Deserialize, Serialize};

use crate::engine::JobError;
use crate::ingest::DataDescription;
use crate::model::{AnalysisConfig, AnalysisLimits, TimeSpan};

use body::PutJobBody;

pub use detector::default_detector_description;
pub use ids::{check_id, validate_group_id, validate_job_id};
pub use rules::{parse_rules, ParsedRule};

/// The Elasticsearch version auspex reports as `job_version` (and should report wherever a version is asked).
pub const ES_COMPAT_VERSION: &str = "8.15.0";

const ANOMALY_DETECTOR_JOB_TYPE: &str = "anomaly_detector";
const DEFAULT_MODEL_SNAPSHOT_RETENTION_DAYS: u64 = 10;
const DEFAULT_DAILY_MODEL_SNAPSHOT_RETENTION_AFTER_DAYS: u64 = 1;
const SHARED_RESULTS_INDEX: &str = "shared";
const CUSTOM_RESULTS_INDEX_PREFIX: &str = "custom-";
const MIN_BACKGROUND_PERSIST_INTERVAL_SECONDS: i64 = 3600;

/// A validated job config with every default filled in; serializes to the `GET` job shape, fields in
/// the order Elasticsearch renders them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobConfig {
    pub job_id: String,
    pub job_type: String,
    pub job_version: String,
    pub create_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_snapshot_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_settings: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub analysis_config: AnalysisConfig,
    pub analysis_limits: AnalysisLimits,
    pub data_description: DataDescription,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_plot_config: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renormalization_window_days: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background_persist_interval: Option<TimeSpan>,
    pub model_snapshot_retention_days: u64,
    pub daily_model_snapshot_retention_after_days: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results_retention_days: Option<u64>,
    pub results_index_name: String,
    pub allow_lazy_open: bool,
}

impl JobConfig {
    /// Builds a job from a `PUT` body: validates the id (and that a body `job_id` matches it),
    /// parses, checks every rule Elasticsearch checks, and fills in defaults.
    pub fn from_put_body(job_id: &str, body: &[u8], now_ms: i64) -> Result<JobConfig, JobError> {
        validate_job_id(job_id)?;
        let body = PutJobBody::parse(body)?;
        if let Some(body_id) = body.job_id.as_deref().filter(|id| *id != job_id) {
            return Err(JobError::InvalidArgument(format!(
                "Inconsistent job_id; '{body_id}' specified in the body differs from '{job_id}' specified as a URL argument"
            )));
        }
        build(job_id, body, now_ms)
    }

    /// `_ml/anomaly_detectors/_validate`: the same checks as a `PUT`. The id is optional there;
    /// Elasticsearch checks a body without one as if it were called `ok`.
    pub fn validate_body(body: &[u8]) -> Result<(), JobError> {
        let body = PutJobBody::parse(body)?;
        let job_id = body.job_id.clone().unwrap_or_else(|| "ok".to_string());
        validate_job_id(&job_id)?;
        build(&job_id, body, 0).map(drop)
    }

    /// The record fields the analysis reads, in the order ingest extracts them.
    pub fn analysis_fields(&self) -> Vec<String> {
        self.analysis_config.analysis_fields()
    }

    /// `analysis_limits.model_memory_limit` in bytes (validation stores it as `<n>mb`).
    pub fn model_memory_limit_bytes(&self) -> u64 {
        let text = self
            .analysis_limits
            .model_memory_limit
            .trim_end_matches("mb");
        text.parse::<u64>().unwrap_or(1024) << 20
    }
}

fn invalid(message: impl Into<String>) -> JobError {
    JobError::InvalidArgument(message.into())
}

/// Elasticsearch formats the numbers of this message with thousands separators (`3,600`).
fn check_not_less_than(name: &str, min: i64, value: Option<i64>) -> Result<(), JobError> {
    match value {
        Some(value) if value < min => Err(invalid(format!(
            "{name} cannot be less than {}. Value = {}",
            group_thousands(min),
            group_thousands(value)
        ))),
        _ => Ok(()),
    }
}

fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

/// Runs the checks in Elasticsearch's order (what is parsed first fails first), then auspex's own
/// refusals of what it cannot analyse yet, then fills in the defaults.
fn build(job_id: &str, body: PutJobBody, now_ms: i64) -> Result<JobConfig, JobError> {
    let analysis_limits = body.analysis_limits.map(|l| l.into_limits()).transpose()?;
    let mut analysis_config = body.analysis_config;
    if let Some(config) = analysis_config.as_mut() {
        analysis::check_analysis_config(config)?;
    }
    let mut data_description = body.data_description;
    if let Some(description) = data_description.as_mut() {
        body::check_data_description(description)?;
    }
    if body.datafeed_config.is_some() {
        return Err(invalid(
            "auspex does not support datafeeds: remove [datafeed_config] and send the data with the _data API",
        ));
    }
    let mut analysis_config =
        analysis_config.ok_or_else(|| invalid("An analysis_config must be set"))?;
    let data_description =
        data_description.ok_or_else(|| invalid("A data_description must be set"))?;

    if analysis::analysis_field_names(&analysis_config).contains(&data_description.time_field) {
        return Err(invalid(
            "data_description.time_field may not be used in the analysis_config",
        ));
    }
    if let Some(interval) = &body.background_persist_interval {
        analysis::check_whole_seconds("background_persist_interval", interval)?;
        check_not_less_than(
            "background_persist_interval",
            MIN_BACKGROUND_PERSIST_INTERVAL_SECONDS,
            Some(interval.seconds()),
        )?;
    }
    check_not_less_than(
        "renormalization_window_days",
        0,
        body.renormalization_window_days,
    )?;
    check_not_less_than("results_retention_days", 0, body.results_retention_days)?;
    check_not_less_than(
        "model_snapshot_retention_days",
        0,
        body.model_snapshot_retention_days,
    )?;
    check_not_less_than(
        "daily_model_snapshot_retention_after_days",
        0,
        body.daily_model_snapshot_retention_after_days,
    )?;
    let retention_days = body
        .model_snapshot_retention_days
        .map_or(DEFAULT_MODEL_SNAPSHOT_RETENTION_DAYS, |d| d.unsigned_abs());
    if let Some(daily) = body.daily_model_snapshot_retention_after_days {
        if daily.unsigned_abs() > retention_days {
            return Err(invalid(format!(
                "The value of daily_model_snapshot_retention_after_days [{daily}] cannot be greater than model_snapshot_retention_days [{retention_days}]"
            )));
        }
    }
    let groups = body.groups.unwrap_or_default();
    for group in &groups {
        validate_group_id(group)?;
    }
    if let Some(name) = body.results_index_name.as_deref().filter(|n| !n.is_empty()) {
        ids::check_id("results_index_name", name)?;
    }
    detector::check_detectors_unique(&analysis_config.detectors)?;
    let set_at_creation: Vec<&str> = [
        ("model_snapshot_id", body.model_snapshot_id.is_some()),
        ("finished_time", body.finished_time.is_some()),
        ("create_time", body.create_time.is_some()),
    ]
    .iter()
    .filter(|(_, set)| *set)
    .map(|(name, _)| *name)
    .collect();
    if !set_at_creation.is_empty() {
        return Err(invalid(format!(
            "The job is configured with fields [{}] that are illegal to set at job creation",
            set_at_creation.join(",")
        )));
    }
    analysis::check_supported_by_auspex(&analysis_config)?;

    analysis::fill_model_prune_window(&mut analysis_config);
    Ok(JobConfig {
        job_id: job_id.to_string(),
        job_type: ANOMALY_DETECTOR_JOB_TYPE.to_string(),
        job_version: ES_COMPAT_VERSION.to_string(),
        create_time: now_ms,
        model_snapshot_id: None,
        custom_settings: body.custom_settings.map(serde_json::Value::Object),
        groups,
        description: body.description,
        analysis_config,
        analysis_limits: analysis_limits.unwrap_or_default(),
        data_description,
        model_plot_config: body.model_plot_config.map(serde_json::Value::Object),
        renormalization_window_days: body.renormalization_window_days.map(i64::unsigned_abs),
        background_persist_interval: body.background_persist_interval,
        model_snapshot_retention_days: retention_days,
        // Elasticsearch leaves the daily setting unset when retention is a day or less, which
        // thins nothing; the same value as the retention says so without an Option.
        daily_model_snapshot_retention_after_days: body
            .daily_model_snapshot_retention_after_days
            .map_or(
                DEFAULT_DAILY_MODEL_SNAPSHOT_RETENTION_AFTER_DAYS.min(retention_days),
                i64::unsigned_abs,
            ),
        results_retention_days: body.results_retention_days.map(i64::unsigned_abs),
        results_index_name: results_index_name(body.results_index_name),
        allow_lazy_open: body.allow_lazy_open.unwrap_or(false),
    })
}

/// Elasticsearch prefixes a user-chosen results index with `custom-` (once).
fn results_index_name(requested: Option<String>) -> String {
    match requested.filter(|n| !n.is_empty()) {
        None => SHARED_RESULTS_INDEX.to_string(),
        Some(name)
            if name == SHARED_RESULTS_INDEX || name.starts_with(CUSTOM_RESULTS_INDEX_PREFIX) =>
        {
            name
        }
        Some(name) => format!("{CUSTOM_RESULTS_INDEX_PREFIX}{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_656_087_283_340;

    fn put(job_id: &str, body: serde_json::Value) -> Result<JobConfig, JobError> {
        JobConfig::from_put_body(job_id, body.to_string().as_bytes(), NOW)
    }

    fn minimal() -> serde_json::Value {
        json!({"analysis_config": {"detectors": [{"function": "count"}]}, "data_description": {}})
    }

    /// The reason of a refused minimal body with `extra` merged in at the top level.
    fn refused(extra: serde_json::Value) -> String {
        let mut body = minimal();
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        match put("job-1", body) {
            Err(JobError::InvalidArgument(reason)) => reason,
            other => panic!("expected illegal_argument, got {other:?}"),
        }
    }

    #[test]
    fn group_and_results_index_ids() {
        assert_eq!(
            refused(json!({"groups": ["ok", "Bad"]})),
            "Invalid group id 'Bad'; must be non-empty string and may contain lowercase alphanumeric (a-z and 0-9), hyphens or underscores; must start and end with alphanumeric"
        );
        assert!(refused(json!({"groups": [""]})).starts_with("Invalid group id ''"));
        assert_eq!(
            refused(json!({"results_index_name": "Res"})),
            "Invalid results_index_name; 'Res' can contain lowercase alphanumeric (a-z and 0-9), hyphens or underscores; must start and end with alphanumeric"
        );
    }

    #[test]
    fn url_id_is_checked_and_must_match_the_body() {
        assert!(put("Bad", minimal())
            .unwrap_err()
            .to_string()
            .starts_with("Invalid job_id; 'Bad'"));
        let mut body = minimal();
        body["job_id"] = json!("other");
        assert_eq!(
            put("job-1", body.clone()).unwrap_err().to_string(),
            "Inconsistent job_id; 'other' specified in the body differs from 'job-1' specified as a URL argument"
        );
        body["job_id"] = json!("job-1");
        assert_eq!(put("job-1", body).unwrap().job_id, "job-1");
    }

    #[test]
    fn defaults_are_filled_in_elasticsearch_order() {
        let job = put("job-1", minimal()).unwrap();
        let rendered = serde_json::to_string(&job).unwrap();
        let expected = json!({
            "job_id": "job-1",
            "job_type": "anomaly_detector",
            "job_version": ES_COMPAT_VERSION,
            "create_time": NOW,
            "analysis_config": {
                "bucket_span": "5m",
                "detectors": [{"detector_description": "count", "function": "count", "detector_index": 0}],
                "influencers": [],
                "model_prune_window": "30d"
            },
            "analysis_limits": {"model_memory_limit": "1024mb", "categorization_examples_limit": 4},
            "data_description": {"time_field": "time", "time_format": "epoch_ms"},
            "model_snapshot_retention_days": 10,
            "daily_model_snapshot_retention_after_days": 1,
            "results_index_name": "shared",
            "allow_lazy_open": false
        });
        assert_eq!(
            rendered,
            expected.to_string(),
            "same fields, values and order"
        );
    }

    /// Elasticsearch's own example (`put_job` request and response), without the datafeed.
    #[test]
    fn elasticsearch_example_gives_elasticsearch_response() {
        let body = json!({
            "analysis_config": {"bucket_span": "15m", "detectors": [
                {"detector_description": "Sum of bytes", "function": "sum", "field_name": "bytes"}]},
            "data_description": {"time_field": "timestamp", "time_format": "epoch_ms"},
            "analysis_limits": {"model_memory_limit": "11MB"},
            "model_plot_config": {"enabled": true, "annotations_enabled": true},
            "results_index_name": "test-job1"
        });
        let job = serde_json::to_value(put("test-job1", body).unwrap()).unwrap();
        let expected = json!({
            "job_id": "test-job1", "job_type": "anomaly_detector", "job_version": ES_COMPAT_VERSION,
            "create_time": NOW,
            "analysis_config": {"bucket_span": "15m", "detectors": [
                {"detector_description": "Sum of bytes", "function": "sum", "field_name": "bytes", "detector_index": 0}],
                "influencers": [], "model_prune_window": "30d"},
            "analysis_limits": {"model_memory_limit": "11mb", "categorization_examples_limit": 4},
            "data_description": {"time_field": "timestamp", "time_format": "epoch_ms"},
            "model_plot_config": {"enabled": true, "annotations_enabled": true},
            "model_snapshot_retention_days": 10, "daily_model_snapshot_retention_after_days": 1,
            "results_index_name": "custom-test-job1", "allow_lazy_open": false
        });
        assert_eq!(job, expected);
    }

    #[test]
    fn stored_json_round_trips() {
        let body = json!({
            "description": "web", "groups": ["g1", "g2"], "custom_settings": {"owner": "ops"},
            "analysis_config": {"bucket_span": "1h", "latency": "30s", "influencers": ["host"], "detectors": [
                {"function": "high_mean", "field_name": "rt", "by_field_name": "host", "use_null": true,
                 "exclude_frequent": "over", "over_field_name": "uri", "custom_rules": [{"actions": ["skip_result"], "conditions": [{"applies_to": "actual", "operator": "gt", "value": 1}]}]}]},
            "data_description": {"time_field": "ts", "time_format": "epoch"},
            "analysis_limits": {"model_memory_limit": 64, "categorization_examples_limit": 2},
            "model_plot_config": {"enabled": false},
            "renormalization_window_days": 7, "background_persist_interval": "2h",
            "model_snapshot_retention_days": 3, "daily_model_snapshot_retention_after_days": 2,
            "results_retention_days": 30, "results_index_name": "custom-web", "allow_lazy_open": true
        });
        let job = put("web-1", body).unwrap();
        let stored = serde_json::to_vec(&job).unwrap();
        let back: JobConfig = serde_json::from_slice(&stored).unwrap();
        assert_eq!(back, job);
        assert_eq!(
            job.results_index_name, "custom-web",
            "the prefix is not doubled"
        );
        assert_eq!(job.analysis_limits.model_memory_limit, "64mb");
        assert_eq!(
            job.model_plot_config,
            Some(json!({"enabled": false, "annotations_enabled": false}))
        );
        assert_eq!(job.analysis_fields(), ["rt", "host", "uri"]);
    }

    #[test]
    fn required_sections() {
        let no_analysis = json!({"data_description": {}});
        assert_eq!(
            put("j", no_analysis).unwrap_err().to_string(),
            "An analysis_config must be set"
        );
        let no_data = json!({"analysis_config": {"detectors": [{"function": "count"}]}});
        assert_eq!(
            put("j", no_data).unwrap_err().to_string(),
            "A data_description must be set"
        );
    }

    #[test]
    fn datafeeds_are_refused() {
        assert_eq!(
            refused(json!({"datafeed_config": {"indices": ["logs"]}})),
            "auspex does not support datafeeds: remove [datafeed_config] and send the data with the _data API"
        );
    }

    #[test]
    fn time_field_is_not_an_analysis_field() {
        let body = json!({
            "analysis_config": {"detectors": [{"function": "count"}], "influencers": ["timestamp"]},
            "data_description": {"time_field": "timestamp"}
        });
        assert_eq!(
            put("j", body).unwrap_err().to_string(),
            "data_description.time_field may not be used in the analysis_config"
        );
        let by_time = json!({
            "analysis_config": {"detectors": [{"function": "count", "by_field_name": "time"}]},
            "data_description": {}
        });
        assert_eq!(
            put("j", by_time).unwrap_err().to_string(),
            "data_description.time_field may not be used in the analysis_config",
            "the default time field counts too"
        );
    }

    #[test]
    fn retention_rules() {
        assert_eq!(
            refused(json!({"model_snapshot_retention_days": 3, "daily_model_snapshot_retention_after_days": 4})),
            "The value of daily_model_snapshot_retention_after_days [4] cannot be greater than model_snapshot_retention_days [3]"
        );
        assert_eq!(
            refused(json!({"daily_model_snapshot_retention_after_days": 11})),
            "The value of daily_model_snapshot_retention_after_days [11] cannot be greater than model_snapshot_retention_days [10]"
        );
        assert_eq!(
            refused(json!({"model_snapshot_retention_days": -1})),
            "model_snapshot_retention_days cannot be less than 0. Value = -1"
        );
        assert_eq!(
            refused(json!({"renormalization_window_days": -2})),
            "renormalization_window_days cannot be less than 0. Value = -2"
        );
        assert_eq!(
            refused(json!({"results_retention_days": -1500})),
            "results_retention_days cannot be less than 0. Value = -1,500"
        );
        let mut body = minimal();
        body["model_snapshot_retention_days"] = json!(0);
        let job = put("j", body).unwrap();
        assert_eq!(
            job.daily_model_snapshot_retention_after_days, 0,
            "never more than the retention"
        );
    }

    #[test]
    fn background_persist_interval_rules() {
        assert_eq!(
            refused(json!({"background_persist_interval": "1m"})),
            "background_persist_interval cannot be less than 3,600. Value = 60"
        );
        assert_eq!(
            refused(json!({"background_persist_interval": "3600500ms"})),
            "background_persist_interval has to be a multiple of 1s; actual was '3600500ms'"
        );
    }

    #[test]
    fn fields_that_cannot_be_set_at_creation() {
        assert_eq!(
            refused(json!({"create_time": 1, "model_snapshot_id": "s", "finished_time": "x"})),
            "The job is configured with fields [model_snapshot_id,finished_time,create_time] that are illegal to set at job creation"
        );
        let mut body = minimal();
        body["job_type"] = json!("anomaly_detector");
        body["job_version"] = json!("7.0.0");
        assert_eq!(
            put("j", body).unwrap().job_version,
            ES_COMPAT_VERSION,
            "a sent version is ignored"
        );
    }

    #[test]
    fn duplicates_and_invalid_rare_detectors_are_refused_at_put() {
        let body = json!({
            "analysis_config": {"detectors": [{"function": "count"}, {"function": "count"}]},
            "data_description": {}
        });
        assert_eq!(
            put("j", body).unwrap_err().to_string(),
            "Duplicate detectors are not allowed: [count]"
        );
        let rare = json!({
            "analysis_config": {"detectors": [{"function": "freq_rare", "by_field_name": "a"}]},
            "data_description": {}
        });
        assert_eq!(
            put("j", rare).unwrap_err().to_string(),
            "over_field_name must be set when the 'freq_rare' function is used"
        );
        let fine = json!({
            "analysis_config": {"detectors": [{"function": "freq_rare", "by_field_name": "a", "over_field_name": "b"}]},
            "data_description": {}
        });
        assert!(put("j", fine).is_ok());
    }

    #[test]
    fn parse_errors_keep_their_type() {
        let err = JobConfig::from_put_body("j", br#"{"foo": 1}"#, NOW).unwrap_err();
        assert!(
            matches!(err, JobError::Parse(ref r) if r.ends_with("[job_details] unknown field [foo]")),
            "{err:?}"
        );
        let err = JobConfig::from_put_body("j", b"", NOW).unwrap_err();
        assert!(matches!(err, JobError::Parse(_)));
    }

    #[test]
    fn validate_body_shares_the_checks() {
        assert!(JobConfig::validate_body(minimal().to_string().as_bytes()).is_ok());
        let mut bad_id = minimal();
        bad_id["job_id"] = json!("Nope");
        assert!(JobConfig::validate_body(bad_id.to_string().as_bytes())
            .unwrap_err()
            .to_string()
            .starts_with("Invalid job_id; 'Nope'"));
        let no_detectors = json!({"analysis_config": {"detectors": []}, "data_description": {}});
        assert_eq!(
            JobConfig::validate_body(no_detectors.to_string().as_bytes())
                .unwrap_err()
                .to_string(),
            "No detectors configured"
        );
    }

    #[test]
    fn thousands_are_grouped_like_elasticsearch() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(3600), "3,600");
        assert_eq!(group_thousands(-1_234_567), "-1,234,567");
    }
}
