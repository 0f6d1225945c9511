//! The config file: TOML, every key optional, unknown keys refused (a typo must not be silently
//! ignored). `auspex.example.toml` at the repository root lists every key with its default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use super::LogFormat;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub data: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub retention: Retention,
    #[serde(default)]
    pub security: Security,
    #[serde(default)]
    pub tls: Tls,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// A byte size such as `100mb`.
    pub max_content_length: Option<String>,
    /// A duration such as `60s` or `500ms`.
    pub body_read_timeout: Option<String>,
    /// A byte size such as `512mb`.
    pub max_in_flight_bytes: Option<String>,
    pub max_connections: Option<usize>,
    pub reserved_connections: Option<usize>,
    pub max_connections_per_address: Option<usize>,
    /// A duration such as `10s`.
    pub header_read_timeout: Option<String>,
    pub max_empty_buckets: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    pub model_snapshot_retention_days: Option<u64>,
    pub daily_model_snapshot_retention_after_days: Option<u64>,
    pub results_retention_days: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Security {
    pub enabled: Option<bool>,
    pub login_free_failures: Option<u32>,
    /// Durations such as `300s`.
    pub login_failure_window: Option<String>,
    pub login_max_delay: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub enabled: Option<bool>,
    pub certificate: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Plain HTTP on a non-loopback address.
    pub insecure_http: Option<bool>,
}

impl FileConfig {
    pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_parses_and_unknown_keys_are_refused() {
        let example: FileConfig =
            toml::from_str(include_str!("../../auspex.example.toml")).expect("example parses");
        assert_eq!(
            example.listen,
            Some(SocketAddr::from(([127, 0, 0, 1], 9200)))
        );
        assert_eq!(example.limits.max_content_length.as_deref(), Some("100mb"));
        let error = toml::from_str::<FileConfig>("lisen = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(error.to_string().contains("lisen"), "{error}");
    }
}
