//! Value framing and the one bincode configuration (layout in the `store/mod.rs` doc, section 3).
//! Owns: `frame`/`unframe` (format byte, length, CRC32) and `encode`/`decode`. Knows nothing of trees
//! beyond the name it puts into `StoreError::Corrupt`; the tree files call it for every value (I5).

use bincode::config::{Config, Configuration};
use serde::{de::DeserializeOwned, Serialize};

use super::{keys, StoreError};

/// The only frame format so far; anything else is reported as corrupt.
pub(super) const FRAME_FORMAT: u8 = 1;
/// format u8 + payload length u32 LE + crc32 u32 LE.
pub(super) const HEADER_LEN: usize = 1 + 4 + 4;

/// Wraps a payload in a frame. Payloads are at most a few MiB (input entries, 1 MiB snapshot
/// chunks), far below the u32 length field; a larger one is refused rather than truncated.
pub(super) fn frame(payload: &[u8]) -> Result<Vec<u8>, StoreError> {
    let len = u32::try_from(payload.len()).map_err(|_| {
        StoreError::Encode(format!(
            "value of {} bytes does not fit a frame",
            payload.len()
        ))
    })?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.push(FRAME_FORMAT);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Returns the payload of a framed value after checking format, length, then CRC.
pub(super) fn unframe<'v>(
    tree: &'static str,
    key: &[u8],
    value: &'v [u8],
) -> Result<&'v [u8], StoreError> {
    let corrupt = |reason: String| StoreError::corrupt(tree, key, reason);
    if value.len() < HEADER_LEN {
        return Err(corrupt(format!(
            "value of {} bytes is shorter than the frame header",
            value.len()
        )));
    }
    if value[0] != FRAME_FORMAT {
        return Err(corrupt(format!("unknown frame format {}", value[0])));
    }
    let len = u32::from_le_bytes([value[1], value[2], value[3], value[4]]) as usize;
    let stored_crc = u32::from_le_bytes([value[5], value[6], value[7], value[8]]);
    let payload = &value[HEADER_LEN..];
    if payload.len() != len {
        return Err(corrupt(format!(
            "frame says {len} payload bytes, found {}",
            payload.len()
        )));
    }
    let crc = crc32fast::hash(payload);
    if crc != stored_crc {
        return Err(corrupt(format!(
            "crc32 mismatch: stored {stored_crc:08x}, computed {crc:08x}"
        )));
    }
    Ok(payload)
}

/// `encode` then `frame`.
pub(super) fn frame_bincode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    frame(&encode(value)?)
}

/// `unframe` then bincode, every failure reported as `Corrupt` at (tree, key).
pub(super) fn unframe_bincode<T: DeserializeOwned>(
    tree: &'static str,
    key: &[u8],
    value: &[u8],
) -> Result<T, StoreError> {
    decode_bounded(unframe(tree, key, value)?)
        .map_err(|reason| StoreError::corrupt(tree, key, reason))
}

/// The one bincode configuration of the format. Changing it changes every stored value: that is a
/// new `FORMAT_VERSION` plus a migration.
fn config() -> Configuration {
    bincode::config::standard()
}

/// bincode with the configuration auspex stores with.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    bincode::serde::encode_to_vec(value, config())
        .map_err(|e| StoreError::Encode(format!("bincode encode: {e}")))
}

/// Inverse of [`encode`]. Reports `Encode` (it does not know which tree the bytes came from); the
/// store's own reads report `Corrupt` with tree and key instead.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    decode_bounded(bytes).map_err(|reason| StoreError::Encode(format!("bincode decode: {reason}")))
}

/// Decodes with a byte limit at least the input's length. The limit does not change the encoding;
/// it makes bincode refuse a corrupted length prefix (`vec![0; claimed_len]` for strings and byte
/// buffers) instead of attempting a huge allocation, which would abort the process (I5). A valid
/// value never reads more bytes than it has, so the tier above `bytes.len()` never rejects one.
fn decode_bounded<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    fn run<T: DeserializeOwned, C: Config>(bytes: &[u8], config: C) -> Result<T, String> {
        let (value, read) =
            bincode::serde::decode_from_slice(bytes, config).map_err(|e| e.to_string())?;
        if read != bytes.len() {
            return Err(format!(
                "{} trailing bytes after the value",
                bytes.len() - read
            ));
        }
        Ok(value)
    }
    const SMALL: usize = 64 << 10;
    const MEDIUM: usize = 16 << 20;
    const LARGE: usize = 1 << 30;
    match bytes.len() {
        n if n <= SMALL => run(bytes, config().with_limit::<SMALL>()),
        n if n <= MEDIUM => run(bytes, config().with_limit::<MEDIUM>()),
        n if n <= LARGE => run(bytes, config().with_limit::<LARGE>()),
        _ => run(bytes, config()),
    }
}

/// Checks that a framed JSON payload is well-formed without building it (used by `check`).
pub(super) fn check_json(tree: &'static str, key: &[u8], payload: &[u8]) -> Result<(), StoreError> {
    serde_json::from_slice::<serde::de::IgnoredAny>(payload)
        .map(|_| ())
        .map_err(|e| StoreError::corrupt(tree, key, format!("payload is not JSON: {e}")))
}

impl StoreError {
    pub(super) fn corrupt(tree: &'static str, key: &[u8], reason: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            tree,
            key: keys::render(key),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{PersistedState, Progress};

    fn reason(result: Result<&[u8], StoreError>) -> String {
        match result {
            Err(StoreError::Corrupt { tree, key, reason }) => {
                assert_eq!((tree, key.as_str()), ("results", "k\\x00"));
                reason
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn frame_round_trips_including_empty_payloads() {
        for payload in [&b""[..], b"x", &[0xffu8; 5000]] {
            let framed = frame(payload).unwrap();
            assert_eq!(framed.len(), HEADER_LEN + payload.len());
            assert_eq!(unframe("results", b"k\0", &framed).unwrap(), payload);
        }
    }

    #[test]
    fn every_flipped_payload_byte_is_a_crc_mismatch() {
        let framed = frame(br#"{"bucket_span":900}"#).unwrap();
        for at in HEADER_LEN..framed.len() {
            let mut bad = framed.clone();
            bad[at] ^= 0x10;
            assert!(
                reason(unframe("results", b"k\0", &bad)).contains("crc32 mismatch"),
                "byte {at}"
            );
        }
    }

    #[test]
    fn truncated_and_extended_frames_are_length_errors() {
        let framed = frame(b"0123456789").unwrap();
        assert!(
            reason(unframe("results", b"k\0", &framed[..framed.len() - 1]))
                .contains("frame says 10 payload bytes, found 9")
        );
        assert!(reason(unframe("results", b"k\0", &framed[..4]))
            .contains("shorter than the frame header"));
        let mut longer = framed.clone();
        longer.push(0);
        assert!(reason(unframe("results", b"k\0", &longer)).contains("found 11"));
    }

    #[test]
    fn unknown_frame_format_is_reported() {
        let mut framed = frame(b"abc").unwrap();
        framed[0] = 7;
        assert!(reason(unframe("results", b"k\0", &framed)).contains("unknown frame format 7"));
    }

    #[test]
    fn bincode_round_trip_and_bad_payload_under_a_valid_crc() {
        let progress = Progress {
            state: PersistedState::Opened,
            last_seq: 42,
            latest_snapshot_id: Some("1700000000".into()),
            status: vec![1, 2, 3],
        };
        let framed = frame_bincode(&progress).unwrap();
        assert_eq!(
            unframe_bincode::<Progress>("progress", b"j", &framed).unwrap(),
            progress
        );
        assert_eq!(
            decode::<Progress>(&encode(&progress).unwrap()).unwrap(),
            progress
        );

        // A well-framed payload that is not a Progress (enum tag 9 does not exist).
        let garbage = frame(&[9, 0, 0, 0]).unwrap();
        assert!(matches!(
            unframe_bincode::<Progress>("progress", b"j", &garbage),
            Err(StoreError::Corrupt {
                tree: "progress",
                ..
            })
        ));
        // Trailing bytes mean the reader's idea of the layout differs from the writer's.
        let mut longer = encode(&progress).unwrap();
        longer.push(0);
        assert!(
            matches!(decode::<Progress>(&longer), Err(StoreError::Encode(m)) if m.contains("trailing"))
        );
    }

    #[test]
    fn huge_length_prefix_is_an_error_not_an_allocation() {
        // Progress { state: Closed, last_seq: 0, latest_snapshot_id: Some(<string of 2^40 bytes>), .. }
        let mut bytes = vec![0, 0, 1, 253];
        bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
        bytes.extend_from_slice(b"abc");
        assert!(decode::<Progress>(&bytes).is_err());
    }
}
