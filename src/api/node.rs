//! The node auspex runs as: `GET _ml/memory[/<node_id>]/_stats` and the machine-memory figures
//! `GET _ml/info` reports in `limits`.
//!
//! Elasticsearch answers these per cluster node; auspex is a one-node cluster, so a node filter
//! either selects this node or nothing. The figures are real: physical memory from the OS, the
//! machine-learning share of it (Elasticsearch's default `xpack.ml.max_machine_memory_percent`
//! of 30 %), and the model bytes of the jobs open now. There is no JVM: its fields are 0.
//!
//! Talks to: `job` (open jobs' model sizes).

use serde_json::{json, Map, Value};

use super::cat::render_bytes;
use super::error::ApiError;
use super::params::ParamSpec;
use super::reply::Reply;
use super::request::ApiRequest;
use super::root::{node_name, CLUSTER_NAME};
use super::AppState;

/// Elasticsearch's default `xpack.ml.max_machine_memory_percent`.
const ML_MEMORY_PERCENT: u64 = 30;

/// Physical memory in bytes (`MemTotal` of `/proc/meminfo`), or `None` where that is not readable.
pub fn machine_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_total(&text)
}

fn parse_mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The memory machine learning may use on this node (`mem.ml.max_in_bytes`, `total_ml_memory`).
pub fn ml_memory_bytes(machine: u64) -> u64 {
    machine / 100 * ML_MEMORY_PERCENT
}

/// Whether a `<node_id>` expression selects this node: its id or name, `_all`, `_local`, `_master`,
/// `*`, a wildcard matching either, or a role filter this node has (`ml:true`, `master:true`).
fn selects_this_node(expression: &str, node_id: &str) -> bool {
    expression.split(',').map(str::trim).any(|part| {
        matches!(
            part,
            "_all" | "_local" | "_master" | "*" | "ml:true" | "master:true"
        ) || crate::job::wildcard_match(part, node_id)
            || crate::job::wildcard_match(part, &node_name())
    })
}

const MEMORY_STATS: ParamSpec = ParamSpec {
    api: "get_memory_stats",
    query: &["master_timeout", "timeout"],
    body: None,
};

pub fn memory_stats(
    state: &AppState,
    node_filter: Option<&str>,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let params = request.params_without_body(&MEMORY_STATS)?;
    params.time_value("master_timeout")?;
    params.time_value("timeout")?;
    let human = params.bool_or("human", false)?;
    let node_id = state.jobs.node_id().to_string();
    let mut nodes = Map::new();
    if node_filter.is_none_or(|f| selects_this_node(f, &node_id)) {
        let machine = machine_memory_bytes().unwrap_or(0);
        let figures = MemoryFigures {
            machine,
            ml_max: ml_memory_bytes(machine),
            anomaly_detectors: state.jobs.open_jobs_model_bytes(),
        };
        nodes.insert(node_id.clone(), node_memory_json(&node_id, &figures, human));
    }
    let selected = nodes.len();
    Ok(Reply::ok(json!({
        "_nodes": {"total": selected, "successful": selected, "failed": 0},
        "cluster_name": CLUSTER_NAME,
        "nodes": nodes,
    })))
}

struct MemoryFigures {
    machine: u64,
    ml_max: u64,
    anomaly_detectors: u64,
}

fn node_memory_json(node_id: &str, figures: &MemoryFigures, human: bool) -> Value {
    let sizes = |pairs: &[(&str, u64)]| {
        let mut map = Map::new();
        for (name, bytes) in pairs {
            if human {
                map.insert((*name).into(), render_bytes(*bytes as f64, None).into());
            }
            map.insert(format!("{name}_in_bytes"), (*bytes).into());
        }
        map
    };
    let mut ml = sizes(&[
        ("max", figures.ml_max),
        ("native_code_overhead", 0),
        ("anomaly_detectors", figures.anomaly_detectors),
        ("data_frame_analytics", 0),
        ("native_inference", 0),
    ]);
    let mut mem = sizes(&[
        ("total", figures.machine),
        ("adjusted_total", figures.machine),
    ]);
    mem.insert("ml".into(), Value::Object(std::mem::take(&mut ml)));
    let jvm = sizes(&[
        ("heap_max", 0),
        ("java_inference_max", 0),
        ("java_inference", 0),
    ]);
    json!({
        "name": node_name(),
        "ephemeral_id": node_id,
        "transport_address": "127.0.0.1:9300",
        "attributes": {
            "ml.machine_memory": figures.machine.to_string(),
            "ml.max_jvm_size": "0",
        },
        "roles": ["master", "ml"],
        "mem": mem,
        "jvm": jvm,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_total_is_read_in_kib() {
        let meminfo = "MemTotal:       16303528 kB\nMemFree:         1234 kB\n";
        assert_eq!(parse_mem_total(meminfo), Some(16303528 * 1024));
        assert_eq!(parse_mem_total("MemFree: 1 kB\n"), None);
        assert_eq!(parse_mem_total("MemTotal: lots kB\n"), None);
    }

    #[test]
    fn node_filters_select_this_node_by_id_name_wildcard_or_role() {
        for filter in ["_all", "abc123", "ml:true", "other,abc123", "abc*", "*"] {
            assert!(selects_this_node(filter, "abc123"), "{filter}");
        }
        for filter in ["other", "ml:false", "data:true", "abd*"] {
            assert!(!selects_this_node(filter, "abc123"), "{filter}");
        }
    }

    #[test]
    fn human_adds_unit_fields_beside_the_byte_counts() {
        let figures = MemoryFigures {
            machine: 64 << 30,
            ml_max: ml_memory_bytes(64 << 30),
            anomaly_detectors: 2048,
        };
        let plain = node_memory_json("n1", &figures, false);
        assert_eq!(plain["mem"]["total_in_bytes"], 64u64 << 30);
        assert!(plain["mem"].get("total").is_none());
        assert_eq!(plain["mem"]["ml"]["anomaly_detectors_in_bytes"], 2048);
        let human = node_memory_json("n1", &figures, true);
        assert_eq!(human["mem"]["total"], "64gb");
        assert_eq!(human["mem"]["ml"]["anomaly_detectors"], "2kb");
        assert_eq!(
            human["mem"]["ml"]["max_in_bytes"],
            (64u64 << 30) / 100 * ML_MEMORY_PERCENT
        );
    }
}
