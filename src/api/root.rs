//! `GET /` (and `HEAD /`): the Elasticsearch 8.x "you know, for search" document, and the identity
//! (node name, cluster uuid) auspex reports there. The node id of `_open` answers and `_stats` is the
//! job manager's.
//!
//! Clients check this document: the 7.x Python client needs `version.number` 8.x, `tagline` and
//! `build_flavor: "default"`. The version mirrored is [`ES_VERSION`].
//!
//! Identity without storage: the store has no place for a generated id yet, so `cluster_uuid` is
//! derived from the absolute data path (stable across restarts of the same data path,
//! different for different data paths), rendered like Elasticsearch's ids (22 characters of URL-safe
//! base64). The node name is the host name, or `auspex`.
//! Does not own: anything about jobs. Talks to: the config.

use serde_json::json;

use super::error::ApiError;
use super::params::ParamSpec;
use super::reply::Reply;
use super::request::ApiRequest;
use super::AppState;
use crate::config::Config;

/// The Elasticsearch version auspex answers as.
pub const ES_VERSION: &str = "8.15.0";
/// The Lucene version that Elasticsearch version ships (reported, not used).
pub const LUCENE_VERSION: &str = "9.11.1";
/// auspex is not built from an Elasticsearch commit; `unknown` is what Elasticsearch itself reports
/// when it has no build hash, and what clients' `Warning`-header patterns accept.
pub const BUILD_HASH: &str = "unknown";
/// The cluster name every cluster-level response reports.
pub const CLUSTER_NAME: &str = "auspex";
const BUILD_DATE: &str = "2024-08-05T10:05:34.233336849Z";

const ROOT: ParamSpec = ParamSpec {
    api: "info",
    query: &[],
    body: None,
};

pub fn info(state: &AppState, request: &ApiRequest) -> Result<Reply, ApiError> {
    request.params_without_body(&ROOT)?;
    Ok(Reply::ok(json!({
        "name": node_name(),
        "cluster_name": CLUSTER_NAME,
        "cluster_uuid": cluster_uuid(&state.config),
        "version": {
            "number": ES_VERSION,
            "build_flavor": "default",
            "build_type": "tar",
            "build_hash": BUILD_HASH,
            "build_date": BUILD_DATE,
            "build_snapshot": false,
            "lucene_version": LUCENE_VERSION,
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0",
        },
        "tagline": "You Know, for Search",
    })))
}

/// The host name (Linux), else `auspex`.
pub fn node_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "auspex".to_string())
}

pub fn cluster_uuid(config: &Config) -> String {
    derived_id(config, "cluster")
}

fn derived_id(config: &Config, purpose: &str) -> String {
    let path = std::path::absolute(&config.data).unwrap_or_else(|_| config.data.clone());
    let seed = format!("auspex:{purpose}:{}", path.display());
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&fnv1a(seed.as_bytes(), 0xcbf2_9ce4_8422_2325).to_be_bytes());
    bytes[8..].copy_from_slice(&fnv1a(seed.as_bytes(), 0x6c62_272e_07bb_0142).to_be_bytes());
    base64_url(&bytes)
}

fn fnv1a(data: &[u8], offset_basis: u64) -> u64 {
    data.iter().fold(offset_basis, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Unpadded URL-safe base64 (16 bytes -> 22 characters, like Elasticsearch's UUIDs).
fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextets = [(n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63];
        for sextet in sextets.iter().take(chunk.len() + 1) {
            out.push(char::from(ALPHABET[*sextet as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(data: &str) -> Config {
        Config::parse_from(["auspex", "--data", data])
    }

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64_url(b"f"), "Zg");
        assert_eq!(base64_url(b"fo"), "Zm8");
        assert_eq!(base64_url(b"foo"), "Zm9v");
        assert_eq!(base64_url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn ids_are_stable_per_data_path() {
        let a = cluster_uuid(&config("/tmp/a"));
        assert_eq!(a.len(), 22);
        assert_eq!(a, cluster_uuid(&config("/tmp/a")));
        assert_ne!(a, cluster_uuid(&config("/tmp/b")));
    }
}
