//! Body framing: a `_data` body is NDJSON, concatenated JSON objects (whitespace between them
//! optional), or JSON arrays of objects (the 8.x Python client sends one array); top-level arrays
//! and objects may even be mixed. Blank lines and `\r\n` are whitespace; a leading UTF-8 BOM is
//! skipped.
//!
//! Owns splitting a body into documents, the all-or-nothing rule (the first bad document rejects the
//! request with its 1-based line and column), and building [`Batch`]. Does not own per-field rules
//! (`extract.rs`) nor the reader's setup (`reader.rs`).
//!
//! Each document is parsed once by serde_json, straight into a [`Record`], from a fresh
//! `Deserializer` over the rest of the body; turning that deserializer into a stream afterwards
//! reports how far it read, which gives the document's raw bytes for [`Batch::stored`] without a
//! second parse.

use serde::de::{DeserializeSeed, IgnoredAny};
use serde::Deserialize;

use crate::ingest::extract::{Extracted, RecordSeed, Wanted};
use crate::ingest::{Batch, IngestError, Record};

/// Most records a batch reserves room for up front, whatever the first record suggests.
const MAX_RESERVED_RECORDS: usize = 1 << 20;

pub(crate) fn read_documents(body: &[u8], wanted: &Wanted<'_>) -> Result<Batch, IngestError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| malformed_at(body, e.valid_up_to(), "invalid UTF-8".to_string()))?;
    let mut reader = BodyReader {
        text,
        pos: text.strip_prefix('\u{feff}').map_or(0, |_| 3),
        wanted,
        scratch: Extracted::new(wanted.time_slot + 1),
        batch: Batch {
            records: Vec::new(),
            stored: Vec::with_capacity(body.len() + 1),
            input_bytes: body.len() as u64,
        },
    };
    reader.read_all()?;
    Ok(reader.batch)
}

struct BodyReader<'t, 'w> {
    text: &'t str,
    pos: usize,
    wanted: &'w Wanted<'w>,
    scratch: Extracted,
    batch: Batch,
}

impl<'t> BodyReader<'t, '_> {
    fn read_all(&mut self) -> Result<(), IngestError> {
        while self.skip_whitespace() {
            match self.peek() {
                Some(b'{') => self.read_object()?,
                Some(b'[') => self.read_array()?,
                _ => return Err(self.not_an_object()),
            }
        }
        Ok(())
    }

    fn bytes(&self) -> &[u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    /// Skips JSON whitespace; returns whether anything is left.
    fn skip_whitespace(&mut self) -> bool {
        let text: &'t str = self.text;
        let rest = &text.as_bytes()[self.pos..];
        self.pos += rest
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
            .count();
        self.pos < self.text.len()
    }

    /// `[ {..}, {..} ]`; anything but objects inside is rejected like a non-object document.
    fn read_array(&mut self) -> Result<(), IngestError> {
        self.pos += 1;
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip_whitespace();
            match self.peek() {
                Some(b'{') => self.read_object()?,
                None => return Err(self.malformed_here("EOF while parsing a list")),
                Some(_) => return Err(self.not_an_object()),
            }
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                None => return Err(self.malformed_here("EOF while parsing a list")),
                Some(_) => return Err(self.malformed_here("expected `,` or `]`")),
            }
        }
    }

    fn read_object(&mut self) -> Result<(), IngestError> {
        let start = self.pos;
        let text: &'t str = self.text;
        let rest = text.get(start..).unwrap_or_default();
        let mut deserializer = serde_json::Deserializer::from_str(rest);
        self.scratch.reset(self.wanted.time_slot);
        RecordSeed {
            wanted: self.wanted,
            out: &mut self.scratch,
        }
        .deserialize(&mut deserializer)
        .map_err(|e| self.malformed_from(start, &e))?;
        let used = deserializer.into_iter::<IgnoredAny>().byte_offset();
        let end = start + used;
        self.pos = end;
        if self.batch.records.is_empty() {
            // Records in one body are usually alike: size the batch from the first one.
            let estimate = (self.text.len() - start) / (used + 1).max(32) + 1;
            self.batch
                .records
                .reserve(estimate.min(MAX_RESERVED_RECORDS));
        }
        self.batch.records.push(Record {
            time_ms: self.scratch.time_ms,
            time_missing: !self.scratch.found(self.wanted.time_slot),
            values: std::mem::take(&mut self.scratch.values),
            // ES: "time field doesn't count", whether or not the record has one.
            input_fields: self.scratch.leaves.saturating_sub(1),
        });
        self.store(start, end);
        Ok(())
    }

    /// Appends the record's bytes plus a newline; line breaks inside a pretty-printed record can only
    /// be insignificant whitespace, so they become spaces to keep one record per line.
    fn store(&mut self, start: usize, end: usize) {
        let raw = &self.text.as_bytes()[start..end];
        let stored = &mut self.batch.stored;
        let from = stored.len();
        stored.extend_from_slice(raw);
        // Most records are one line and skip the rewrite. Bytes below 0x20 inside a valid document
        // can only be whitespace; a non-short-circuiting fold vectorizes.
        if raw.iter().fold(false, |any, &b| any | (b < b' ')) {
            for byte in &mut stored[from..] {
                if matches!(*byte, b'\n' | b'\r') {
                    *byte = b' ';
                }
            }
        }
        stored.push(b'\n');
    }

    /// A document that is not an object: valid JSON of another kind, or not JSON at all.
    fn not_an_object(&self) -> IngestError {
        let rest = self.text.get(self.pos..).unwrap_or_default();
        match IgnoredAny::deserialize(&mut serde_json::Deserializer::from_str(rest)) {
            Ok(_) => IngestError::NotAnObject {
                line: position(self.bytes(), self.pos).0,
            },
            Err(e) => self.malformed_from(self.pos, &e),
        }
    }

    fn malformed_here(&self, message: &str) -> IngestError {
        malformed_at(self.bytes(), self.pos, message.to_string())
    }

    /// Moves serde_json's position (relative to `start`) to the whole body. serde_json puts an
    /// error on a line break (a raw newline inside a string) at column 0 of the next line; mapped
    /// to a byte it lands back on the break, so the line reported is the one that holds it.
    fn malformed_from(&self, start: usize, error: &serde_json::Error) -> IngestError {
        let bytes = self.bytes();
        let mut line_start = start;
        for _ in 1..error.line() {
            match bytes[line_start..].iter().position(|&b| b == b'\n') {
                Some(i) => line_start += i + 1,
                None => break,
            }
        }
        let index = (line_start + error.column()).saturating_sub(1).max(start);
        let text = error.to_string();
        let message = match text.rfind(" at line ") {
            Some(i) => text[..i].to_string(),
            None => text,
        };
        malformed_at(bytes, index, message)
    }
}

fn malformed_at(body: &[u8], pos: usize, message: String) -> IngestError {
    let (line, column) = position(body, pos);
    IngestError::Malformed {
        line,
        column,
        message,
    }
}

/// 1-based line and column of byte `pos`.
fn position(body: &[u8], pos: usize) -> (usize, usize) {
    let before = &body[..pos.min(body.len())];
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    (line, before.len() - line_start + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::reader::test_support::{read, reader};

    #[test]
    fn ndjson_with_crlf_blank_lines_and_bom() {
        let r = reader("time", "epoch", &["v"]);
        let body = "\u{feff}{\"time\":1,\"v\":1}\r\n\r\n  \n{\"time\":2,\"v\":2}\r\n";
        let batch = read(&r, body);
        let times: Vec<_> = batch.records.iter().map(|rec| rec.time_ms).collect();
        assert_eq!(times, vec![Some(1000), Some(2000)]);
        assert_eq!(
            batch.stored,
            b"{\"time\":1,\"v\":1}\n{\"time\":2,\"v\":2}\n".to_vec()
        );
    }

    #[test]
    fn all_body_formats_give_the_same_records() {
        let r = reader("time", "epoch_ms", &["v", "h"]);
        let docs = [
            r#"{"time":1,"v":1.5,"h":"a"}"#,
            r#"{"time":2,"v":"2","h":"b"}"#,
            r#"{"time":3}"#,
        ];
        let ndjson = read(&r, &docs.join("\n"));
        assert_eq!(ndjson.records.len(), 3);
        for body in [
            docs.join(""),
            docs.join(" "),
            format!("[{}]", docs.join(",")),
            format!(" [\n  {} \n]\n", docs.join(" ,\n  ")),
            format!("[{}]\n[{}]", docs[..1].join(","), docs[1..].join(",")),
            "{\n  \"time\": 1,\n  \"v\": 1.5,\n  \"h\": \"a\"\n}\n{\"time\":2,\"v\":\"2\",\"h\":\"b\"}{\"time\":3}".to_string(),
        ] {
            let batch = read(&r, &body);
            assert_eq!(batch.records, ndjson.records, "{body:?}");
        }
    }

    #[test]
    fn empty_bodies_are_empty_batches() {
        let r = reader("time", "epoch_ms", &["v"]);
        for body in ["", "  \n\r\n", "[]", "[ ]\n"] {
            let batch = read(&r, body);
            assert!(batch.records.is_empty(), "{body:?}");
            assert!(batch.stored.is_empty());
        }
    }

    #[test]
    fn malformed_documents_name_their_line() {
        let r = reader("time", "epoch_ms", &["v"]);
        let cases: &[(&str, usize, usize)] = &[
            ("{\"time\":1}\n{\"time\":}\n{\"time\":3}", 2, 9),
            ("{\"time\":1}\n\n   {\"time\":2,}", 3, 14),
            ("{\"time\":1}{\"time\"", 1, 17),
            ("{\"time\":1}\n{\"v\":\"a\nb\"}", 2, 8),
            ("[{\"time\":1},]", 1, 13),
            ("[{\"time\":1} {\"time\":2}]", 1, 13),
            ("[{\"time\":1}", 1, 12),
            ("{\"time\":1}\nnope", 2, 2),
            ("{\"time\":1}\n{\"time\":1e999}", 2, 13),
            ("\n\n{\"a\":\"\\uD800\"}", 3, 13),
        ];
        for (body, line, column) in cases {
            match r.read_body(body.as_bytes()) {
                Err(IngestError::Malformed {
                    line: l,
                    column: c,
                    message,
                }) => {
                    assert_eq!((l, c), (*line, *column), "{body:?}: {message}");
                    assert!(!message.contains(" at line "), "{message}");
                }
                other => panic!("{body:?}: expected Malformed, got {other:?}"),
            }
        }
        let error = r
            .read_body(b"{\"time\":1}\n{\"time\":}")
            .expect_err("malformed");
        assert_eq!(
            error.to_string(),
            "Failed to parse the data at line [2], column [9]: expected value"
        );
    }

    #[test]
    fn invalid_utf8_is_malformed() {
        let r = reader("time", "epoch_ms", &["v"]);
        let body = b"{\"time\":1}\n{\"v\":\"\xff\"}";
        assert_eq!(
            r.read_body(body),
            Err(IngestError::Malformed {
                line: 2,
                column: 7,
                message: "invalid UTF-8".to_string()
            })
        );
    }

    #[test]
    fn non_objects_are_rejected() {
        let r = reader("time", "epoch_ms", &["v"]);
        let cases: &[(&str, usize)] = &[
            ("{\"time\":1}\n42\n", 2),
            ("\"text\"", 1),
            ("[1,2]", 1),
            ("{}\n\n[{}, null]", 3),
            ("[[{}]]", 1),
            ("{}{}true", 1),
        ];
        for (body, line) in cases {
            assert_eq!(
                r.read_body(body.as_bytes()).map(|b| b.records),
                Err(IngestError::NotAnObject { line: *line }),
                "{body:?}"
            );
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let r = reader("a.a.a", "epoch_ms", &["a.a"]);
        for body in [
            "[".repeat(100_000),
            "{\"a\":".repeat(100_000),
            format!("{{\"a\":{}1{}}}", "{\"a\":".repeat(200), "}".repeat(200)),
        ] {
            assert!(
                matches!(
                    r.read_body(body.as_bytes()),
                    Err(IngestError::Malformed { .. })
                ),
                "{}",
                &body[..20]
            );
        }
        // Within serde_json's limit (128), deep values are fine, wanted or skipped...
        let ok = format!("{{\"a\":{}1{}}}", "{\"a\":".repeat(100), "}".repeat(100));
        assert_eq!(read(&r, &ok).records.len(), 1);
        let skipped = format!("{{\"x\":{}1{}}}", "[".repeat(100), "]".repeat(100));
        assert_eq!(read(&r, &skipped).records.len(), 1);
        // ...and beyond it, a value is refused whether a wanted field needs it or not: arrays
        // and objects no field asks for, in any position.
        for deep in [
            format!("{{\"x\":{}1{}}}", "[".repeat(200_000), "]".repeat(200_000)),
            format!("{{\"a\":[{}1{}]}}", "[".repeat(200), "]".repeat(200)),
            format!("{{\"x\":{}1{}}}", "{\"y\":".repeat(200), "}".repeat(200)),
            format!(
                "{{\"a\":{{\"z\":{}1{}}}}}",
                "[".repeat(200),
                "]".repeat(200)
            ),
        ] {
            assert!(
                matches!(
                    r.read_body(deep.as_bytes()),
                    Err(IngestError::Malformed { .. })
                ),
                "{}",
                &deep[..30]
            );
        }
    }
}
