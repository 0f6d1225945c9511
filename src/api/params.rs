//! Request parameters: the query string and, for the endpoints that take one, the JSON body's fields.
//!
//! Owns: which parameters an endpoint accepts ([`ParamSpec`]), the unknown-parameter and
//! unknown-field checks (Elasticsearch's `contains unrecognized parameter` message, with its
//! "did you mean" hints), and typed reads (bool, int, double, string, date, time value).
//!
//! Query or body: the 7.x Python, Go and Rust clients send parameters in the query string, the 8.x/9.x
//! clients in the body. Elasticsearch reads only the body when there is one (a parameter then also in
//! the query string is refused as unrecognized); auspex merges the two and the **body value wins**
//! when a name is in both, so a client mixing the two styles is served rather than refused.
//! Global parameters (`pretty`, `human`, `error_trace`, `filter_path`, `format`) are always allowed;
//! `filter_path` is accepted and ignored; `human` adds unit-rendered sizes where an endpoint has them.
//!
//! Does not own: decoding the query string or reading the body (`api::request`).
//! Talks to: `api::date` for dates.

use serde_json::{Map, Value};

use super::date::{now_ms, parse_date_param};
use super::error::{ApiError, EsType};
use crate::job::JobError;

/// Parameters every endpoint accepts in the query string.
pub const GLOBAL_PARAMS: &[&str] = &["pretty", "human", "error_trace", "filter_path", "format"];

/// What one endpoint accepts.
#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    /// The name Elasticsearch's body parser reports in unknown-field errors.
    pub api: &'static str,
    pub query: &'static [&'static str],
    /// `None`: the endpoint takes no parameter body (it may take a raw body, or none at all).
    pub body: Option<&'static [&'static str]>,
}

/// One request's parameters after the unknown-name checks.
#[derive(Debug, Clone, Default)]
pub struct Params {
    api: &'static str,
    query: Vec<(String, String)>,
    body: Map<String, Value>,
}

impl Params {
    /// Checks every query name against `spec` (plus the globals) and every body field against
    /// `spec.body` (`job_id` is always allowed there, and ignored: the path wins, as in Elasticsearch).
    pub fn new(
        path: &str,
        spec: &ParamSpec,
        query: Vec<(String, String)>,
        body: Option<Map<String, Value>>,
    ) -> Result<Params, ApiError> {
        let mut unknown: Vec<&str> = query
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| !spec.query.contains(name) && !GLOBAL_PARAMS.contains(name))
            .collect();
        if !unknown.is_empty() {
            unknown.sort_unstable();
            unknown.dedup();
            return Err(ApiError::illegal_argument(unrecognized_message(
                path, &unknown, spec,
            )));
        }
        let body = body.unwrap_or_default();
        let allowed_body = spec.body.unwrap_or(&[]);
        if let Some(field) = body
            .keys()
            .find(|key| *key != "job_id" && !allowed_body.contains(&key.as_str()))
        {
            return Err(ApiError::new(
                EsType::XContentParse,
                format!("[{}] unknown field [{field}]", spec.api),
            ));
        }
        Ok(Params {
            api: spec.api,
            query,
            body,
        })
    }

    /// The value as text: the body's (a string, or a number/bool rendered as text) or the query's.
    /// Elasticsearch's body parsers read string fields with `text()`, which accepts numbers too.
    fn text(&self, name: &str) -> Result<Option<String>, ApiError> {
        if let Some(value) = self.body.get(name) {
            return match value {
                Value::String(s) => Ok(Some(s.clone())),
                Value::Number(n) => Ok(Some(n.to_string())),
                Value::Bool(b) => Ok(Some(b.to_string())),
                Value::Null => Ok(None),
                Value::Array(_) | Value::Object(_) => Err(self.field_error(name)),
            };
        }
        // Repeated query parameters: the last one wins, as in Elasticsearch.
        Ok(self
            .query
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone()))
    }

    fn field_error(&self, name: &str) -> ApiError {
        ApiError::new(
            EsType::XContentParse,
            format!("[{}] failed to parse field [{name}]", self.api),
        )
    }

    pub fn has(&self, name: &str) -> bool {
        self.body.contains_key(name) || self.query.iter().any(|(key, _)| key == name)
    }

    pub fn string(&self, name: &str) -> Result<Option<String>, ApiError> {
        self.text(name)
    }

    /// `true`/`false`; a query parameter given without a value (`?force`) means `true`.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.text(name)?.as_deref() {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("") if !self.body.contains_key(name) => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(ApiError::illegal_argument(format!(
                "Failed to parse value [{other}] as only [true] or [false] are allowed."
            ))),
        }
    }

    pub fn bool_or(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        Ok(self.bool(name)?.unwrap_or(default))
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.text(name)? {
            None => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| {
                ApiError::illegal_argument(format!(
                    "Failed to parse int parameter [{name}] with value [{text}]"
                ))
            }),
        }
    }

    pub fn double(&self, name: &str) -> Result<Option<f64>, ApiError> {
        match self.text(name)? {
            None => Ok(None),
            Some(text) => match text.parse::<f64>() {
                Ok(value) if value.is_finite() => Ok(Some(value)),
                _ => Err(ApiError::illegal_argument(format!(
                    "Failed to parse double parameter [{name}] with value [{text}]"
                ))),
            },
        }
    }

    /// A date (see `api::date`) as epoch ms, with its text as given (for error messages).
    /// An empty value counts as absent, as Elasticsearch's ML parameters treat `""`.
    pub fn date(&self, name: &str) -> Result<Option<DateParam>, ApiError> {
        match self.text(name)? {
            None => Ok(None),
            Some(text) if text.is_empty() => Ok(None),
            Some(text) => Ok(Some(parse_date(name, text)?)),
        }
    }

    /// A time value such as `30m`, `1h`, `500ms` or `-1` (validated; the value itself is unused
    /// because auspex answers synchronously).
    pub fn time_value(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.text(name)? {
            None => Ok(None),
            Some(text) if is_time_value(&text) => Ok(Some(text)),
            Some(text) => Err(ApiError::new(
                EsType::Parse,
                format!(
                    "failed to parse setting [{name}] with value [{text}] as a time value: unit is missing or unrecognized"
                ),
            )),
        }
    }

    /// The raw body object (for structured fields such as results' `page`).
    pub fn body_field(&self, name: &str) -> Option<&Value> {
        self.body.get(name)
    }

    pub fn api(&self) -> &'static str {
        self.api
    }
}

/// A parsed date parameter and the text it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct DateParam {
    pub millis: i64,
    pub text: String,
}

/// Parses `text` as the date parameter `name`, or the `parse_exception` Elasticsearch answers.
pub fn parse_date(name: &str, text: String) -> Result<DateParam, ApiError> {
    match parse_date_param(&text, now_ms()) {
        Some(millis) => Ok(DateParam { millis, text }),
        None => Err(ApiError::from(JobError::BadDate {
            param: name.to_string(),
            value: text,
        })),
    }
}

fn is_time_value(text: &str) -> bool {
    if text == "-1" || text == "0" {
        return true;
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    !number.is_empty()
        && number.parse::<f64>().is_ok()
        && ["nanos", "micros", "ms", "s", "m", "h", "d"].contains(&unit)
}

/// `request [/path] contains unrecognized parameter: [foo] -> did you mean [force]?`, as
/// Elasticsearch's `BaseRestHandler` words it (candidates are the endpoint's own parameters).
fn unrecognized_message(path: &str, unknown: &[&str], spec: &ParamSpec) -> String {
    let plural = if unknown.len() > 1 { "s" } else { "" };
    let mut message = format!("request [{path}] contains unrecognized parameter{plural}: ");
    for (i, name) in unknown.iter().enumerate() {
        if i > 0 {
            message.push_str(", ");
        }
        message.push_str(&format!("[{name}]"));
        let mut scored: Vec<(f32, &str)> = spec
            .query
            .iter()
            .map(|candidate| (similarity(name, candidate), *candidate))
            .filter(|(score, _)| *score > 0.5)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        match scored.as_slice() {
            [] => {}
            [(_, only)] => message.push_str(&format!(" -> did you mean [{only}]?")),
            many => {
                let names: Vec<&str> = many.iter().map(|(_, name)| *name).collect();
                message.push_str(&format!(" -> did you mean any of [{}]?", names.join(", ")));
            }
        }
    }
    message
}

/// Lucene's normalized Levenshtein similarity: `1 - distance / max(len)`.
fn similarity(a: &str, b: &str) -> f32 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let longest = a.len().max(b.len());
    if longest == 0 {
        return 1.0;
    }
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    1.0 - previous[b.len()] as f32 / longest as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: ParamSpec = ParamSpec {
        api: "close_job",
        query: &["allow_no_match", "force", "timeout"],
        body: Some(&["allow_no_match", "force", "timeout"]),
    };

    fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn params(pairs: &[(&str, &str)], body: Option<Value>) -> Result<Params, ApiError> {
        let body = body.map(|v| v.as_object().cloned().expect("test bodies are objects"));
        Params::new("/_ml/anomaly_detectors/x/_close", &SPEC, query(pairs), body)
    }

    #[test]
    fn unknown_query_parameter_is_refused_with_a_hint() {
        let error = params(&[("forse", "true")], None).unwrap_err();
        assert_eq!(error.kind, EsType::IllegalArgument);
        assert_eq!(
            error.reason,
            "request [/_ml/anomaly_detectors/x/_close] contains unrecognized parameter: [forse] -> did you mean [force]?"
        );
        let error = params(&[("zzz", "1"), ("aaa", "2")], None).unwrap_err();
        assert_eq!(
            error.reason,
            "request [/_ml/anomaly_detectors/x/_close] contains unrecognized parameters: [aaa], [zzz]"
        );
    }

    #[test]
    fn global_parameters_are_always_allowed() {
        let p = params(
            &[
                ("pretty", ""),
                ("filter_path", "a.b"),
                ("error_trace", "true"),
            ],
            None,
        );
        assert!(p.is_ok());
    }

    #[test]
    fn unknown_body_field_is_a_parse_error() {
        let error = params(&[], Some(serde_json::json!({"forse": true}))).unwrap_err();
        assert_eq!(error.kind, EsType::XContentParse);
        assert_eq!(error.reason, "[close_job] unknown field [forse]");
        assert!(params(&[], Some(serde_json::json!({"job_id": "x"}))).is_ok());
    }

    #[test]
    fn booleans() {
        let p = params(&[("force", ""), ("allow_no_match", "false")], None).unwrap();
        assert_eq!(p.bool("force").unwrap(), Some(true));
        assert_eq!(p.bool("allow_no_match").unwrap(), Some(false));
        assert_eq!(p.bool("timeout").unwrap(), None);
        let p = params(&[("force", "yes")], None).unwrap();
        assert_eq!(
            p.bool("force").unwrap_err().reason,
            "Failed to parse value [yes] as only [true] or [false] are allowed."
        );
        let p = params(&[], Some(serde_json::json!({"force": "true"}))).unwrap();
        assert_eq!(p.bool("force").unwrap(), Some(true));
        let p = params(&[], Some(serde_json::json!({"force": ""}))).unwrap();
        assert!(p.bool("force").is_err());
    }

    #[test]
    fn body_wins_over_query() {
        let p = params(
            &[("force", "false"), ("timeout", "1m")],
            Some(serde_json::json!({"force": true})),
        )
        .unwrap();
        assert_eq!(p.bool("force").unwrap(), Some(true));
        assert_eq!(p.string("timeout").unwrap().as_deref(), Some("1m"));
    }

    #[test]
    fn last_repeated_query_parameter_wins() {
        let p = params(&[("force", "false"), ("force", "true")], None).unwrap();
        assert_eq!(p.bool("force").unwrap(), Some(true));
    }

    #[test]
    fn ints_and_doubles() {
        let spec = ParamSpec {
            api: "get_buckets",
            query: &["from", "anomaly_score"],
            body: None,
        };
        let p = Params::new(
            "/p",
            &spec,
            query(&[("from", "5"), ("anomaly_score", "2.5")]),
            None,
        )
        .unwrap();
        assert_eq!(p.int("from").unwrap(), Some(5));
        assert_eq!(p.double("anomaly_score").unwrap(), Some(2.5));
        let p = Params::new("/p", &spec, query(&[("from", "five")]), None).unwrap();
        assert_eq!(
            p.int("from").unwrap_err().reason,
            "Failed to parse int parameter [from] with value [five]"
        );
        let p = Params::new("/p", &spec, query(&[("anomaly_score", "NaN")]), None).unwrap();
        assert!(p.double("anomaly_score").is_err());
    }

    #[test]
    fn dates_from_query_and_body() {
        let spec = ParamSpec {
            api: "flush_job",
            query: &["start", "end"],
            body: Some(&["start", "end"]),
        };
        let body = serde_json::json!({"start": 1403481600, "end": ""});
        let p = Params::new(
            "/p",
            &spec,
            vec![],
            Some(body.as_object().cloned().unwrap()),
        )
        .unwrap();
        assert_eq!(p.date("start").unwrap().unwrap().millis, 1_403_481_600_000);
        assert_eq!(p.date("end").unwrap(), None);
        let p = Params::new("/p", &spec, query(&[("start", "nope")]), None).unwrap();
        let error = p.date("start").unwrap_err();
        assert_eq!(error.kind, EsType::Parse);
        assert_eq!(
            error.reason,
            "Query param [start] with value [nope] cannot be parsed as a date or converted to a number (epoch)."
        );
    }

    #[test]
    fn structured_body_value_for_a_scalar_is_a_parse_error() {
        let p = params(&[], Some(serde_json::json!({"timeout": {"a": 1}}))).unwrap();
        assert_eq!(
            p.string("timeout").unwrap_err().reason,
            "[close_job] failed to parse field [timeout]"
        );
    }

    #[test]
    fn time_values() {
        for good in ["30m", "1h", "500ms", "-1", "0", "1.5s", "2d"] {
            let p = params(&[("timeout", good)], None).unwrap();
            assert!(p.time_value("timeout").is_ok(), "{good}");
        }
        for bad in ["30", "abc", "m", "5 m"] {
            let p = params(&[("timeout", bad)], None).unwrap();
            let error = p.time_value("timeout").unwrap_err();
            assert_eq!(error.kind, EsType::Parse, "{bad}");
        }
    }

    #[test]
    fn similarity_matches_lucene() {
        assert_eq!(similarity("force", "force"), 1.0);
        assert!((similarity("forse", "force") - 0.8).abs() < 1e-6);
        assert!(similarity("abc", "timeout") <= 0.5);
    }
}
