//! Metrics: a small process-wide registry of counters and histograms, rendered in the Prometheus
//! text format (0.0.4) by `GET /_prometheus/metrics` (`api::metrics`).
//!
//! Process-wide because the things measured (HTTP requests, a job actor's flushes and snapshot
//! writes) happen in layers that share no handle; a series is keyed by its labels, so the jobs and
//! endpoints of one process never mix. Values that the store already knows (data counts, model
//! bytes) are not kept here: the endpoint reads them at scrape time and renders them with
//! [`write_family`]. Updates take one short mutex: they happen per request or per flush, not per
//! record.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};

/// Histogram bucket bounds, in seconds: from half a millisecond (a small `_data`) to ten seconds
/// (a large snapshot).
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// `_flush` handling time in the job actor, per job.
pub const JOB_FLUSH_SECONDS: &str = "auspex_job_flush_seconds";
/// Model snapshot persistence time (close, shutdown), per job.
pub const JOB_PERSIST_SECONDS: &str = "auspex_job_persist_seconds";
/// Time a commit spends rescoring past results (renormalization), per job.
pub const JOB_RENORMALIZE_SECONDS: &str = "auspex_job_renormalize_seconds";
/// HTTP requests answered, by endpoint, method and status.
pub const HTTP_REQUESTS_TOTAL: &str = "auspex_http_requests_total";
/// HTTP request handling time, by endpoint.
pub const HTTP_REQUEST_SECONDS: &str = "auspex_http_request_duration_seconds";

/// Label pairs of one series, in a fixed order.
pub type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Clone)]
enum Series {
    Counter(f64),
    Histogram {
        /// Observations at or below each bound of [`LATENCY_BUCKETS`] (cumulative at render).
        buckets: [u64; LATENCY_BUCKETS.len()],
        sum: f64,
        count: u64,
    },
}

#[derive(Debug)]
struct Family {
    help: &'static str,
    kind: &'static str,
    series: BTreeMap<Labels, Series>,
}

/// The registry.
#[derive(Debug, Default)]
pub struct Registry {
    families: Mutex<BTreeMap<&'static str, Family>>,
}

/// The process's registry.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

impl Registry {
    fn update(
        &self,
        name: &'static str,
        help: &'static str,
        kind: &'static str,
        pairs: &[(&'static str, &str)],
        new: impl FnOnce() -> Series,
        change: impl FnOnce(&mut Series),
    ) {
        let mut families = self
            .families
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let family = families.entry(name).or_insert_with(|| Family {
            help,
            kind,
            series: BTreeMap::new(),
        });
        change(family.series.entry(labels(pairs)).or_insert_with(new));
    }

    /// Adds `by` to a counter.
    pub fn inc(
        &self,
        name: &'static str,
        help: &'static str,
        pairs: &[(&'static str, &str)],
        by: f64,
    ) {
        self.update(
            name,
            help,
            "counter",
            pairs,
            || Series::Counter(0.0),
            |series| {
                if let Series::Counter(value) = series {
                    *value += by;
                }
            },
        );
    }

    /// Records one observation (seconds) in a histogram.
    pub fn observe(
        &self,
        name: &'static str,
        help: &'static str,
        pairs: &[(&'static str, &str)],
        seconds: f64,
    ) {
        let empty = || Series::Histogram {
            buckets: [0; LATENCY_BUCKETS.len()],
            sum: 0.0,
            count: 0,
        };
        self.update(name, help, "histogram", pairs, empty, |series| {
            if let Series::Histogram {
                buckets,
                sum,
                count,
            } = series
            {
                if let Some(i) = LATENCY_BUCKETS.iter().position(|bound| seconds <= *bound) {
                    buckets[i] += 1;
                }
                *sum += seconds;
                *count += 1;
            }
        });
    }

    /// Every family in the text format.
    pub fn render(&self, out: &mut String) {
        let families = self
            .families
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (name, family) in families.iter() {
            header(out, name, family.help, family.kind);
            for (labels, series) in &family.series {
                match series {
                    Series::Counter(value) => sample(out, name, labels, None, *value),
                    Series::Histogram {
                        buckets,
                        sum,
                        count,
                    } => {
                        let bucket_name = format!("{name}_bucket");
                        let mut cumulative = 0;
                        for (bound, n) in LATENCY_BUCKETS.iter().zip(buckets) {
                            cumulative += n;
                            let le = ("le", format_value(*bound));
                            sample(out, &bucket_name, labels, Some(le), cumulative as f64);
                        }
                        let inf = ("le", "+Inf".to_string());
                        sample(out, &bucket_name, labels, Some(inf), *count as f64);
                        sample(out, &format!("{name}_sum"), labels, None, *sum);
                        sample(out, &format!("{name}_count"), labels, None, *count as f64);
                    }
                }
            }
        }
    }
}

/// Renders a family whose values were computed at scrape time.
pub fn write_family(out: &mut String, name: &str, help: &str, kind: &str, rows: &[(Labels, f64)]) {
    if rows.is_empty() {
        return;
    }
    header(out, name, help, kind);
    for (labels, value) in rows {
        sample(out, name, labels, None, *value);
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(
    out: &mut String,
    name: &str,
    labels: &Labels,
    extra: Option<(&str, String)>,
    value: f64,
) {
    out.push_str(name);
    let all: Vec<(&str, &str)> = labels
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain(extra.as_ref().map(|(k, v)| (*k, v.as_str())))
        .collect();
    if !all.is_empty() {
        out.push('{');
        for (i, (key, value)) in all.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{key}=\"{}\"", escape(value));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {}", format_value(value));
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{value}")
    }
}

/// Times a job actor step: `_flush` or a snapshot write.
pub fn observe_job(name: &'static str, job_id: &str, seconds: f64) {
    let help = match name {
        JOB_FLUSH_SECONDS => "Time a job takes to handle a _flush, in seconds.",
        JOB_RENORMALIZE_SECONDS => "Time a job spends renormalizing past results, in seconds.",
        _ => "Time a job takes to persist a model snapshot, in seconds.",
    };
    registry().observe(name, help, &[("job_id", job_id)], seconds);
}

/// Counts and times one HTTP request.
pub fn observe_request(endpoint: &str, method: &str, status: u16, seconds: f64) {
    let status = status.to_string();
    registry().inc(
        HTTP_REQUESTS_TOTAL,
        "HTTP requests answered, by endpoint, method and status.",
        &[
            ("endpoint", endpoint),
            ("method", method),
            ("status", &status),
        ],
        1.0,
    );
    registry().observe(
        HTTP_REQUEST_SECONDS,
        "HTTP request handling time in seconds, by endpoint.",
        &[("endpoint", endpoint)],
        seconds,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_render_in_the_text_format() {
        let registry = Registry::default();
        registry.inc("t_total", "Things.", &[("job_id", "a\"b")], 2.0);
        registry.inc("t_total", "Things.", &[("job_id", "a\"b")], 1.0);
        registry.observe("t_seconds", "Time.", &[("job_id", "x")], 0.003);
        registry.observe("t_seconds", "Time.", &[("job_id", "x")], 20.0);
        let mut out = String::new();
        registry.render(&mut out);
        assert!(out.contains("# TYPE t_total counter\n"), "{out}");
        assert!(out.contains("t_total{job_id=\"a\\\"b\"} 3\n"), "{out}");
        assert!(out.contains("# TYPE t_seconds histogram\n"), "{out}");
        assert!(
            out.contains("t_seconds_bucket{job_id=\"x\",le=\"0.0025\"} 0\n"),
            "{out}"
        );
        assert!(
            out.contains("t_seconds_bucket{job_id=\"x\",le=\"0.005\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("t_seconds_bucket{job_id=\"x\",le=\"10\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("t_seconds_bucket{job_id=\"x\",le=\"+Inf\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("t_seconds_sum{job_id=\"x\"} 20.003\n"),
            "{out}"
        );
        assert!(out.contains("t_seconds_count{job_id=\"x\"} 2\n"), "{out}");
    }

    #[test]
    fn scrape_time_families() {
        let mut out = String::new();
        write_family(&mut out, "g", "G.", "gauge", &[]);
        assert!(out.is_empty());
        write_family(
            &mut out,
            "g",
            "G.",
            "gauge",
            &[(vec![("job_id", "j".into())], 1.5)],
        );
        assert_eq!(out, "# HELP g G.\n# TYPE g gauge\ng{job_id=\"j\"} 1.5\n");
    }
}
