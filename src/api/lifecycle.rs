//! Lifecycle endpoints: `_open`, `_close`, `_flush`.
//!
//! Owns their parameters (query string or body), the `_flush` parameter rules (the checks, in
//! Elasticsearch's order and words, that turn the request into a [`FlushParams`]), and the reply
//! shapes. Does not own: what opening, closing or flushing does (`job::JobManager`).
//! Talks to: `job`, `api::root` for the node id.
//!
//! `timeout` is validated as a time value and otherwise unused: auspex answers when the work is done.

use serde_json::json;

use super::error::{ApiError, EsType};
use super::params::{parse_date, ParamSpec, Params};
use super::reply::Reply;
use super::request::ApiRequest;
use super::AppState;
use crate::job::FlushParams;

const OPEN_JOB: ParamSpec = ParamSpec {
    api: "open_job",
    query: &["timeout"],
    body: Some(&["timeout"]),
};

const CLOSE_JOB: ParamSpec = ParamSpec {
    api: "close_job",
    query: &["allow_no_match", "force", "timeout"],
    body: Some(&["allow_no_match", "force", "timeout"]),
};

const FLUSH_JOB: ParamSpec = ParamSpec {
    api: "flush_job",
    query: &["calc_interim", "start", "end", "advance_time", "skip_time"],
    body: Some(&["calc_interim", "start", "end", "advance_time", "skip_time"]),
};

/// With a body, Elasticsearch reads the flush parameters from the body alone: one in the query
/// string too is `contains unrecognized parameter: [advance_time]`.
const FLUSH_JOB_WITH_BODY: ParamSpec = ParamSpec {
    query: &[],
    ..FLUSH_JOB
};

pub async fn open(state: &AppState, job_id: &str, request: &ApiRequest) -> Result<Reply, ApiError> {
    let params = request.params(&OPEN_JOB)?;
    params.time_value("timeout")?;
    state.jobs.open_job(job_id).await?;
    Ok(Reply::ok(
        json!({ "opened": true, "node": state.jobs.node_id() }),
    ))
}

pub async fn close(
    state: &AppState,
    expression: &str,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let params = request.params(&CLOSE_JOB)?;
    let force = params.bool_or("force", false)?;
    let allow_no_match = params.bool_or("allow_no_match", true)?;
    params.time_value("timeout")?;
    state
        .jobs
        .close_jobs(expression, force, allow_no_match)
        .await?;
    Ok(Reply::ok(json!({ "closed": true })))
}

pub async fn flush(
    state: &AppState,
    job_id: &str,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let has_body = !request.body.iter().all(u8::is_ascii_whitespace);
    let spec = if has_body {
        &FLUSH_JOB_WITH_BODY
    } else {
        &FLUSH_JOB
    };
    let params = request.params(spec)?;
    let flush_params = flush_params(&RawFlush::from_params(&params)?)?;
    let last_finalized = state.jobs.flush(job_id, flush_params).await?;
    let mut body = json!({ "flushed": true });
    if let Some(end) = last_finalized {
        body["last_finalized_bucket_end"] = end.into();
    }
    Ok(Reply::ok(body))
}

/// `_flush` parameters as given (absent and `""` are the same, as in Elasticsearch).
#[derive(Debug, Clone, Default, PartialEq)]
struct RawFlush {
    calc_interim: bool,
    start: Option<String>,
    end: Option<String>,
    advance_time: Option<String>,
    skip_time: Option<String>,
}

impl RawFlush {
    fn from_params(params: &Params) -> Result<RawFlush, ApiError> {
        let text = |name: &str| -> Result<Option<String>, ApiError> {
            Ok(params.string(name)?.filter(|value| !value.is_empty()))
        };
        Ok(RawFlush {
            calc_interim: params.bool_or("calc_interim", false)?,
            start: text("start")?,
            end: text("end")?,
            advance_time: text("advance_time")?,
            skip_time: text("skip_time")?,
        })
    }
}

/// The `_flush` rules, checked in this order (Elasticsearch builds the `TimeRange` first, then
/// `FlushJobParams` checks the combination):
/// 1. `start` and `end` are parsed (a bad date is a `parse_exception`); with `start`, a missing
///    `end`, or one equal to `start`, becomes `start + 1s`; `end < start` -> `Invalid time range: ...`;
/// 2. `start`/`end` without `calc_interim` -> `Invalid flush parameters: unexpected 'start'.`;
/// 3. `calc_interim` with `end` but no `start` -> `Invalid flush parameters: 'start' has not been specified.`;
/// 4. `advance_time` and `skip_time` are parsed; both given and `advance_time <= skip_time` ->
///    `advance_time [A] must be later than skip_time [S]` (a 400 `status_exception` in Elasticsearch).
///
/// Elasticsearch works in whole epoch seconds here; the times handed on are those seconds in ms.
fn flush_params(raw: &RawFlush) -> Result<FlushParams, ApiError> {
    let start = raw
        .start
        .as_deref()
        .map(|t| seconds("start", t))
        .transpose()?;
    let end = raw.end.as_deref().map(|t| seconds("end", t)).transpose()?;
    let range = match (start, end) {
        (Some(start), end) => {
            let end = end.filter(|&end| end != start).unwrap_or(start + 1);
            if end < start {
                return Err(ApiError::illegal_argument(format!(
                    "Invalid time range: end time '{}' is earlier than start time '{}'.",
                    raw.end.as_deref().unwrap_or_default(),
                    raw.start.as_deref().unwrap_or_default()
                )));
            }
            Some((start, end))
        }
        (None, _) => None,
    };
    if !raw.calc_interim {
        for (name, value) in [("start", &raw.start), ("end", &raw.end)] {
            if value.is_some() {
                return Err(ApiError::illegal_argument(format!(
                    "Invalid flush parameters: unexpected '{name}'."
                )));
            }
        }
    } else if raw.start.is_none() && raw.end.is_some() {
        return Err(ApiError::illegal_argument(
            "Invalid flush parameters: 'start' has not been specified.",
        ));
    }

    let mut params = FlushParams {
        calc_interim: raw.calc_interim,
        ..FlushParams::default()
    };
    if let Some((start, end)) = range {
        params.start = Some(start * 1000);
        params.end = Some(end * 1000);
    }

    let advance = raw
        .advance_time
        .as_deref()
        .map(|text| seconds("advance_time", text))
        .transpose()?;
    let skip = raw
        .skip_time
        .as_deref()
        .map(|text| seconds("skip_time", text))
        .transpose()?;
    if let (Some(advance), Some(skip)) = (advance, skip) {
        if advance <= skip {
            return Err(ApiError::new(
                EsType::BadRequestStatus,
                format!(
                    "advance_time [{}] must be later than skip_time [{}]",
                    raw.advance_time.as_deref().unwrap_or_default(),
                    raw.skip_time.as_deref().unwrap_or_default()
                ),
            ));
        }
    }
    params.advance_time = advance.map(|s| s * 1000);
    params.skip_time = skip.map(|s| s * 1000);
    Ok(params)
}

/// A flush date in whole epoch seconds (Java's truncating division, as Elasticsearch does it).
fn seconds(name: &str, text: &str) -> Result<i64, ApiError> {
    Ok(parse_date(name, text.to_string())?.millis / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::date::now_ms;

    fn raw(calc_interim: bool, fields: &[(&str, &str)]) -> RawFlush {
        let get = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        RawFlush {
            calc_interim,
            start: get("start"),
            end: get("end"),
            advance_time: get("advance_time"),
            skip_time: get("skip_time"),
        }
    }

    fn error(raw: &RawFlush) -> (EsType, String) {
        let error = flush_params(raw).unwrap_err();
        (error.kind, error.reason)
    }

    #[test]
    fn no_parameters() {
        assert_eq!(
            flush_params(&raw(false, &[])).unwrap(),
            FlushParams::default()
        );
    }

    #[test]
    fn start_or_end_without_calc_interim() {
        assert_eq!(
            error(&raw(false, &[("start", "1")])),
            (
                EsType::IllegalArgument,
                "Invalid flush parameters: unexpected 'start'.".to_string()
            )
        );
        assert_eq!(
            error(&raw(false, &[("end", "1")])),
            (
                EsType::IllegalArgument,
                "Invalid flush parameters: unexpected 'end'.".to_string()
            )
        );
        // Dates are parsed and ordered before the combination is checked, as in Elasticsearch.
        let (kind, reason) = error(&raw(false, &[("start", "garbage")]));
        assert_eq!(kind, EsType::Parse);
        assert!(reason.starts_with("Query param [start] with value [garbage]"));
        assert_eq!(
            error(&raw(
                false,
                &[("start", "1403481600"), ("end", "1403481500")]
            ))
            .1,
            "Invalid time range: end time '1403481500' is earlier than start time '1403481600'."
        );
        assert_eq!(
            error(&raw(true, &[("end", "soon")])).0,
            EsType::Parse,
            "end is parsed before the missing start is reported"
        );
    }

    #[test]
    fn end_without_start() {
        assert_eq!(
            error(&raw(true, &[("end", "1403481600")])),
            (
                EsType::IllegalArgument,
                "Invalid flush parameters: 'start' has not been specified.".to_string()
            )
        );
    }

    #[test]
    fn end_defaults_to_one_second_after_start() {
        let params = flush_params(&raw(true, &[("start", "1403481600")])).unwrap();
        assert_eq!(params.start, Some(1_403_481_600_000));
        assert_eq!(params.end, Some(1_403_481_601_000));
        let params = flush_params(&raw(
            true,
            &[("start", "1403481600"), ("end", "1403481600000")],
        ))
        .unwrap();
        assert_eq!(params.end, Some(1_403_481_601_000));
        let params = flush_params(&raw(
            true,
            &[("start", "2014-06-23T00:00:00Z"), ("end", "1403485200")],
        ))
        .unwrap();
        assert_eq!(params.start, Some(1_403_481_600_000));
        assert_eq!(params.end, Some(1_403_485_200_000));
        assert!(params.calc_interim);
    }

    #[test]
    fn end_before_start() {
        assert_eq!(
            error(&raw(true, &[("start", "1403481600"), ("end", "1403481500")])),
            (
                EsType::IllegalArgument,
                "Invalid time range: end time '1403481500' is earlier than start time '1403481600'."
                    .to_string()
            )
        );
    }

    #[test]
    fn advance_must_be_after_skip() {
        let (kind, reason) = error(&raw(
            false,
            &[("advance_time", "1403481600"), ("skip_time", "1403481600")],
        ));
        assert_eq!(kind, EsType::BadRequestStatus);
        assert_eq!(kind.status(), 400);
        assert_eq!(kind.type_name(), "status_exception");
        assert_eq!(
            reason,
            "advance_time [1403481600] must be later than skip_time [1403481600]"
        );
        let params = flush_params(&raw(
            false,
            &[("advance_time", "1403481700"), ("skip_time", "1403481600")],
        ))
        .unwrap();
        assert_eq!(params.advance_time, Some(1_403_481_700_000));
        assert_eq!(params.skip_time, Some(1_403_481_600_000));
    }

    #[test]
    fn times_become_whole_seconds() {
        let params = flush_params(&raw(false, &[("advance_time", "1514804400999")])).unwrap();
        assert_eq!(params.advance_time, Some(1_514_804_400_000));
        let params = flush_params(&raw(false, &[("advance_time", "1514804400")])).unwrap();
        assert_eq!(params.advance_time, Some(1_514_804_400_000));
    }

    #[test]
    fn bad_dates_are_parse_exceptions() {
        for (field, calc_interim) in [
            ("start", true),
            ("advance_time", false),
            ("skip_time", false),
        ] {
            let (kind, reason) = error(&raw(calc_interim, &[(field, "soon")]));
            assert_eq!(kind, EsType::Parse);
            assert_eq!(
                reason,
                format!("Query param [{field}] with value [soon] cannot be parsed as a date or converted to a number (epoch).")
            );
        }
        let (kind, reason) = error(&raw(true, &[("start", "1"), ("end", "soon")]));
        assert_eq!(kind, EsType::Parse);
        assert!(reason.starts_with("Query param [end] with value [soon]"));
    }

    #[test]
    fn now_is_accepted() {
        let params = flush_params(&raw(false, &[("advance_time", "now")])).unwrap();
        let advance = params.advance_time.unwrap();
        assert!((now_ms() - advance).abs() < 60_000);
        assert_eq!(advance % 1000, 0);
    }
}
