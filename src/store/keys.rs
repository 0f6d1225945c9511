//! Key encodings for every tree (the layouts are specified in the `store/mod.rs` doc, section 2).
//! Owns: job-id checks, the per-job prefix, big-endian sequence numbers and sign-flipped times,
//! and rendering keys for error messages. Does not touch sled; the tree files build ranges from these.

use super::{ResultKind, StoreError};

/// Ends the job id in every per-job key; job ids never contain it, so prefixes cannot collide.
pub(super) const SEPARATOR: u8 = 0x00;
/// Sub-space of a job's snapshot keys holding metadata (sorts before the chunks, so listing
/// snapshots never pages in multi-megabyte chunks).
pub(super) const SNAPSHOT_META_TAG: u8 = 0x01;
/// Sub-space of a job's snapshot keys holding state chunks.
pub(super) const SNAPSHOT_CHUNK_TAG: u8 = 0x02;

/// Length of what follows the job prefix in a result key: kind u8, time u64, ordinal u32.
pub(super) const RESULT_SUFFIX_LEN: usize = 1 + 8 + 4;

/// The store relies only on what the key layout needs (non-empty, no 0x00 byte); the job layer
/// enforces the full ES id rules before anything reaches here.
fn check_id(what: &str, id: &str) -> Result<(), StoreError> {
    if id.is_empty() || id.as_bytes().contains(&SEPARATOR) {
        return Err(StoreError::Encode(format!(
            "cannot use {what} {id:?} in a key: empty or contains a 0x00 byte"
        )));
    }
    Ok(())
}

/// Key of the `jobs` and `progress` trees: the bare job id.
pub(super) fn job_key(job_id: &str) -> Result<&[u8], StoreError> {
    check_id("job id", job_id)?;
    Ok(job_id.as_bytes())
}

/// `job_id 0x00`: every key of the job in `input`, `results` and `snapshots` starts with it.
pub(super) fn job_prefix(job_id: &str) -> Result<Vec<u8>, StoreError> {
    check_id("job id", job_id)?;
    Ok(raw_job_prefix(job_id.as_bytes()))
}

pub(super) fn raw_job_prefix(job: &[u8]) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(job.len() + 1);
    prefix.extend_from_slice(job);
    prefix.push(SEPARATOR);
    prefix
}

/// `job_id 0x01`: the first key after every key of the job (no id contains 0x00, so no other job
/// sorts between the job's keys and this bound).
pub(super) fn job_end(job: &[u8]) -> Vec<u8> {
    let mut end = Vec::with_capacity(job.len() + 1);
    end.extend_from_slice(job);
    end.push(SEPARATOR + 1);
    end
}

/// The job id part of a per-job key, and whether the key had the separator at all.
pub(super) fn split_job(key: &[u8]) -> (&[u8], Option<&[u8]>) {
    match key.iter().position(|&b| b == SEPARATOR) {
        Some(at) => (&key[..at], Some(&key[at + 1..])),
        None => (key, None),
    }
}

pub(super) fn input_key(prefix: &[u8], seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 8);
    key.extend_from_slice(prefix);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The sequence number of an input key, given what follows the job prefix.
pub(super) fn input_seq(rest: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(rest.try_into().ok()?))
}

/// i64 -> u64 with the sign bit flipped, big-endian: byte order equals numeric order.
pub(super) fn encode_time(timestamp_ms: i64) -> [u8; 8] {
    ((timestamp_ms as u64) ^ (1 << 63)).to_be_bytes()
}

pub(super) fn decode_time(bytes: [u8; 8]) -> i64 {
    (u64::from_be_bytes(bytes) ^ (1 << 63)) as i64
}

pub(super) fn result_key(
    prefix: &[u8],
    kind: ResultKind,
    timestamp_ms: i64,
    ordinal: u32,
) -> Vec<u8> {
    let mut key = result_time_bound(prefix, kind, timestamp_ms);
    key.extend_from_slice(&ordinal.to_be_bytes());
    key
}

/// `prefix kind time`: the first key of `kind` at or after `timestamp_ms` (any ordinal).
pub(super) fn result_time_bound(prefix: &[u8], kind: ResultKind, timestamp_ms: i64) -> Vec<u8> {
    let mut key = result_kind_bound(prefix, kind as u8);
    key.extend_from_slice(&encode_time(timestamp_ms));
    key
}

/// `prefix kind`: the first possible key of a kind; with `kind + 1` the end of that kind.
pub(super) fn result_kind_bound(prefix: &[u8], kind: u8) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + RESULT_SUFFIX_LEN);
    key.extend_from_slice(prefix);
    key.push(kind);
    key
}

/// Decodes what follows the job prefix of a result key: (kind, time, ordinal).
pub(super) fn parse_result_suffix(rest: &[u8]) -> Option<(ResultKind, i64, u32)> {
    if rest.len() != RESULT_SUFFIX_LEN {
        return None;
    }
    let kind = ResultKind::from_u8(rest[0])?;
    let time = decode_time(rest[1..9].try_into().ok()?);
    let ordinal = u32::from_be_bytes(rest[9..13].try_into().ok()?);
    Some((kind, time, ordinal))
}

pub(super) fn check_snapshot_id(snapshot_id: &str) -> Result<(), StoreError> {
    check_id("snapshot id", snapshot_id)
}

/// `prefix 0x01`: start of the job's snapshot metadata keys.
pub(super) fn snapshot_meta_space(prefix: &[u8]) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.push(SNAPSHOT_META_TAG);
    key
}

/// `prefix 0x01 snapshot_id`.
pub(super) fn snapshot_meta_key(prefix: &[u8], snapshot_id: &str) -> Vec<u8> {
    let mut key = snapshot_meta_space(prefix);
    key.extend_from_slice(snapshot_id.as_bytes());
    key
}

/// `prefix 0x02 snapshot_id 0x00`: every chunk key of the snapshot starts with it.
pub(super) fn snapshot_chunk_prefix(prefix: &[u8], snapshot_id: &str) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.push(SNAPSHOT_CHUNK_TAG);
    key.extend_from_slice(snapshot_id.as_bytes());
    key.push(SEPARATOR);
    key
}

pub(super) fn snapshot_chunk_key(chunk_prefix: &[u8], index: u32) -> Vec<u8> {
    let mut key = chunk_prefix.to_vec();
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// What follows the job prefix of a snapshot key.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum SnapshotKey<'k> {
    Meta { snapshot_id: &'k [u8] },
    Chunk { snapshot_id: &'k [u8], index: u32 },
}

pub(super) fn parse_snapshot_suffix(rest: &[u8]) -> Option<SnapshotKey<'_>> {
    let (&tag, rest) = rest.split_first()?;
    match tag {
        SNAPSHOT_META_TAG if !rest.is_empty() && !rest.contains(&SEPARATOR) => {
            Some(SnapshotKey::Meta { snapshot_id: rest })
        }
        SNAPSHOT_CHUNK_TAG => {
            let (snapshot_id, index) = split_job(rest);
            let index = u32::from_be_bytes(index?.try_into().ok()?);
            (!snapshot_id.is_empty()).then_some(SnapshotKey::Chunk { snapshot_id, index })
        }
        _ => None,
    }
}

/// Printable form of a key for error messages: ASCII as is, other bytes as `\xNN`.
pub(super) fn render(key: &[u8]) -> String {
    let mut out = String::with_capacity(key.len());
    for &b in key {
        if b.is_ascii_graphic() && b != b'\\' {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_encoding_orders_like_numbers_including_extremes() {
        let times = [
            i64::MIN,
            i64::MIN + 1,
            -86_400_000,
            -1,
            0,
            1,
            1_700_000_000_000,
            i64::MAX - 1,
            i64::MAX,
        ];
        for pair in times.windows(2) {
            assert!(
                encode_time(pair[0]) < encode_time(pair[1]),
                "{} vs {}",
                pair[0],
                pair[1]
            );
        }
        for t in times {
            assert_eq!(decode_time(encode_time(t)), t);
        }
    }

    #[test]
    fn result_keys_sort_by_kind_then_time_then_ordinal() {
        let prefix = job_prefix("job").unwrap();
        let ordered = [
            result_key(&prefix, ResultKind::Bucket, i64::MIN, 0),
            result_key(&prefix, ResultKind::Bucket, -5, 7),
            result_key(&prefix, ResultKind::Bucket, -5, 8),
            result_key(&prefix, ResultKind::Bucket, 0, 0),
            result_key(&prefix, ResultKind::Bucket, i64::MAX, u32::MAX),
            result_key(&prefix, ResultKind::Record, i64::MIN, 0),
            result_key(&prefix, ResultKind::Influencer, -1, 0),
        ];
        for pair in ordered.windows(2) {
            assert!(pair[0] < pair[1]);
        }
        let (_, rest) = split_job(&ordered[2]);
        assert_eq!(
            parse_result_suffix(rest.unwrap()),
            Some((ResultKind::Bucket, -5, 8))
        );
    }

    #[test]
    fn job_prefix_of_a_never_matches_keys_of_ab() {
        let a = job_prefix("a").unwrap();
        let ab = job_prefix("ab").unwrap();
        let ab_keys = [
            input_key(&ab, 0),
            input_key(&ab, u64::MAX),
            result_key(&ab, ResultKind::Bucket, i64::MIN, 0),
            snapshot_meta_key(&ab, "1"),
            snapshot_chunk_key(&snapshot_chunk_prefix(&ab, "1"), 0),
        ];
        for key in &ab_keys {
            assert!(!key.starts_with(&a), "{}", render(key));
            // ...and the range end of `a` sorts before every key of `ab`.
            assert!(job_end(b"a").as_slice() < key.as_slice());
        }
        for key in [
            input_key(&a, u64::MAX),
            snapshot_chunk_key(&snapshot_chunk_prefix(&a, "9"), u32::MAX),
        ] {
            assert!(key.starts_with(&a) && key < job_end(b"a"));
        }
    }

    #[test]
    fn ids_that_would_break_the_layout_are_refused() {
        assert!(matches!(job_prefix(""), Err(StoreError::Encode(_))));
        assert!(matches!(job_key("a\0b"), Err(StoreError::Encode(_))));
        assert!(matches!(
            check_snapshot_id("1\x002"),
            Err(StoreError::Encode(_))
        ));
        assert!(job_key("farequote-1_x").is_ok());
    }

    #[test]
    fn snapshot_keys_round_trip_and_metadata_sorts_before_chunks() {
        let prefix = job_prefix("j").unwrap();
        let meta = snapshot_meta_key(&prefix, "1700000000");
        let chunk = snapshot_chunk_key(&snapshot_chunk_prefix(&prefix, "1"), 3);
        assert!(meta < chunk);
        let (_, rest) = split_job(&meta);
        assert_eq!(
            parse_snapshot_suffix(rest.unwrap()),
            Some(SnapshotKey::Meta {
                snapshot_id: b"1700000000"
            })
        );
        let (_, rest) = split_job(&chunk);
        assert_eq!(
            parse_snapshot_suffix(rest.unwrap()),
            Some(SnapshotKey::Chunk {
                snapshot_id: b"1",
                index: 3
            })
        );
        assert_eq!(
            parse_snapshot_suffix(&[SNAPSHOT_CHUNK_TAG, b'1', 0, 1]),
            None
        );
        assert_eq!(parse_snapshot_suffix(&[9]), None);
    }

    #[test]
    fn render_escapes_non_printable_bytes() {
        assert_eq!(render(b"ab\x00\xff\\"), "ab\\x00\\xff\\x5c");
    }
}
