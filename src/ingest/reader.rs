//! [`RecordReader`]: the ingest entry point the job pipeline calls, one per open job.
//!
//! Owns the per-job setup (compiling the time format, building the field lookup) and the public
//! `read_body`. Does not own body framing (`framing.rs`), per-value rules (`extract.rs`), field
//! lookup (`paths.rs`) or time parsing (`time.rs`). Pure: no I/O.

use crate::ingest::extract::Wanted;
use crate::ingest::framing::read_documents;
use crate::ingest::paths::FieldPaths;
use crate::ingest::time::TimeFormat;
use crate::ingest::{Batch, DataDescription, IngestError};

/// Reads `_data` bodies for one job: knows the time field path, the time format and the analysis fields.
#[derive(Debug, Clone)]
pub struct RecordReader {
    fields: Vec<String>,
    time_field: String,
    time_format: TimeFormat,
    paths: FieldPaths,
}

impl RecordReader {
    /// Fails only on a `time_format` that cannot be read ([`IngestError::InvalidTimeFormat`]).
    pub fn new(
        description: &DataDescription,
        fields: &[String],
    ) -> Result<RecordReader, IngestError> {
        let time_format = TimeFormat::parse(&description.time_format)?;
        let names: Vec<&str> = fields
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(description.time_field.as_str()))
            .collect();
        Ok(RecordReader {
            fields: fields.to_vec(),
            time_field: description.time_field.clone(),
            time_format,
            paths: FieldPaths::new(&names),
        })
    }

    /// The analysis fields, in slot order.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    pub fn time_field(&self) -> &str {
        &self.time_field
    }

    pub fn time_format(&self) -> &TimeFormat {
        &self.time_format
    }

    /// Parses a whole body (NDJSON, concatenated objects, or JSON arrays of objects). All or
    /// nothing: the first malformed or non-object document is the error.
    pub fn read_body(&self, body: &[u8]) -> Result<Batch, IngestError> {
        let wanted = Wanted {
            paths: &self.paths,
            time_format: &self.time_format,
            time_slot: self.fields.len(),
        };
        read_documents(body, &wanted)
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    pub(crate) fn reader(time_field: &str, time_format: &str, fields: &[&str]) -> RecordReader {
        let description = DataDescription {
            time_field: time_field.to_string(),
            time_format: time_format.to_string(),
            ..DataDescription::default()
        };
        let fields: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
        RecordReader::new(&description, &fields).expect("valid description")
    }

    /// Reads `body`, and checks that `stored` reads back to the same records.
    pub(crate) fn read(reader: &RecordReader, body: &str) -> Batch {
        let batch = reader.read_body(body.as_bytes()).expect("body parses");
        let again = reader.read_body(&batch.stored).expect("stored parses");
        assert_eq!(again.records, batch.records, "stored of {body:?}");
        assert_eq!(
            batch.stored.iter().filter(|&&b| b == b'\n').count(),
            batch.records.len()
        );
        assert_eq!(batch.input_bytes, body.len() as u64);
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{read, reader};
    use super::*;
    use crate::ingest::FieldValue;

    fn text(s: &str) -> Option<FieldValue> {
        Some(FieldValue::Text(s.to_string()))
    }

    #[test]
    fn values_by_json_type() {
        let r = reader(
            "time",
            "epoch_ms",
            &["s", "n", "i", "b", "z", "o", "a", "absent", "e"],
        );
        let body = r#"{"time":1700000000000,"s":"x","n":12.5,"i":-3,"b":true,"z":null,"o":{"k":1},"a":["p",2,null,false,[9],{"q":1}],"e":[]}"#;
        let batch = read(&r, body);
        assert_eq!(batch.records.len(), 1);
        let record = &batch.records[0];
        assert_eq!(record.time_ms, Some(1_700_000_000_000));
        assert_eq!(
            record.values,
            vec![
                text("x"),
                Some(FieldValue::Num(12.5)),
                Some(FieldValue::Num(-3.0)),
                text("true"),
                None,
                None,
                text("p,2,,false"),
                None,
                None
            ]
        );
        // time s n i b z o.k a e = 9 leaves, minus the time field.
        assert_eq!(record.input_fields, 8);
    }

    #[test]
    fn dotted_paths_literal_key_first() {
        let r = reader("event.time", "epoch", &["host.name", "a.b.c"]);
        let batch = read(
            &r,
            concat!(
                r#"{"event":{"time":10},"host":{"name":"h1","ip":"x"},"a":{"b":{"c":1}}}"#,
                "\n",
                r#"{"event.time":20,"host.name":"h2","a.b":{"c":2}}"#,
                "\n",
                r#"{"event":{"time":1},"event.time":30,"host":{"name":"nested"},"host.name":"literal"}"#,
                "\n",
                r#"{"host.name":"literal","host":{"name":"nested"},"a":{"b.c":3}}"#,
                "\n",
                r#"{"event":{"time":{"x":1}},"host":"flat","a":[{"b":{"c":4}}]}"#,
            ),
        );
        let got: Vec<_> = batch
            .records
            .iter()
            .map(|rec| (rec.time_ms, rec.values.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some(10_000), vec![text("h1"), Some(FieldValue::Num(1.0))]),
                (Some(20_000), vec![text("h2"), Some(FieldValue::Num(2.0))]),
                (Some(30_000), vec![text("literal"), None]),
                (None, vec![text("literal"), Some(FieldValue::Num(3.0))]),
                (None, vec![None, None]),
            ]
        );
        // event.time host.name host.ip a.b.c, minus the time field.
        assert_eq!(batch.records[0].input_fields, 3);
        assert_eq!(batch.records[4].input_fields, 2);
    }

    #[test]
    fn missing_or_bad_times_are_none() {
        let r = reader("time", "yyyy-MM-dd HH:mm:ss", &[]);
        let batch = read(
            &r,
            r#"{"time":"2014-06-23 00:00:00"} {"other":1} {"time":"yesterday"} {"time":null} {"time":true} {"time":["2014-06-23 00:00:00"]}"#,
        );
        let times: Vec<_> = batch.records.iter().map(|rec| rec.time_ms).collect();
        assert_eq!(
            times,
            vec![
                Some(1_403_481_600_000),
                None,
                None,
                None,
                None,
                Some(1_403_481_600_000)
            ]
        );
    }

    #[test]
    fn rejects_bad_time_format() {
        let description = DataDescription {
            time_format: "yyyy-MM-dd".to_string(),
            ..DataDescription::default()
        };
        assert_eq!(
            RecordReader::new(&description, &[]).map(|_| ()),
            Err(IngestError::InvalidTimeFormat("yyyy-MM-dd".to_string()))
        );
    }

    /// Throughput of the reader alone: `cargo test --release --lib ingest::reader::tests::throughput -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn throughput() {
        let r = reader("time", "epoch_ms", &["value"]);
        let records = 2_000_000;
        let mut body = String::new();
        for i in 0..records {
            body.push_str(&format!(
                "{{\"time\":{},\"value\":{}.5}}\n",
                1_700_000_000_000i64 + i * 1000,
                i % 100
            ));
        }
        for _ in 0..3 {
            let started = std::time::Instant::now();
            let batch = r.read_body(body.as_bytes()).expect("valid body");
            let seconds = started.elapsed().as_secs_f64();
            assert_eq!(batch.records.len(), records as usize);
            println!(
                "{:.0} records/s, {:.0} MB/s",
                records as f64 / seconds,
                body.len() as f64 / seconds / 1e6
            );
        }
    }
}
