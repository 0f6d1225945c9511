//! `data_counts`: what a job has been sent and what it did with it.
//!
//! Owns the rule behind every counter, as methods the job pipeline calls; the pipeline decides
//! *which* method applies to a record (ordering and bucketing are its business), never how a
//! counter moves. Talks to nothing; pure arithmetic on [`DataCounts`].
//!
//! The rules, as Elasticsearch applies them:
//! - every record read counts in `input_record_count`, its fields in `input_field_count` (see
//!   [`Record::input_fields`]: leaf fields minus the time field), and each analysis field it lacks
//!   in `missing_field_count`, whatever happens to it next; the request body counts in `input_bytes`;
//! - a record whose time is missing or unparseable counts in `invalid_date_count` and goes no further;
//! - a record older than the last finalized bucket end counts in `out_of_order_timestamp_count` and
//!   goes no further;
//! - every other record is processed: `processed_record_count`, each analysis field it carries in
//!   `processed_field_count` (the time field never counts), and it moves
//!   `earliest_record_timestamp` / `latest_record_timestamp`.
//!
//! ES derives `processed_field_count` as `processed_record_count * analysis fields -
//! missing_field_count`; counting the present fields of processed records gives the same number
//! except that a dropped record's missing fields do not lower it.
//!
//! Bucket counters: every finalized bucket counts in `bucket_count`; one with no events in
//! `empty_bucket_count`; one with far fewer events than the recent ones in `sparse_bucket_count`.
//! "Far fewer" is ES's rule: `ln(average) - ln(count) > 2`, i.e. fewer than about 1/7.4 of the
//! average event count of the last [`SparseBucketWindow::LEN`] buckets (this one included).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::ingest::Record;

/// Counters are plain (no `Option` skipping) so the struct round-trips through bincode, which is
/// positional; [`DataCounts::to_json`] renders the Elasticsearch shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataCounts {
    pub processed_record_count: u64,
    pub processed_field_count: u64,
    pub input_bytes: u64,
    pub input_field_count: u64,
    pub invalid_date_count: u64,
    pub missing_field_count: u64,
    pub out_of_order_timestamp_count: u64,
    pub empty_bucket_count: u64,
    pub sparse_bucket_count: u64,
    pub bucket_count: u64,
    pub input_record_count: u64,
    pub earliest_record_timestamp: Option<i64>,
    pub latest_record_timestamp: Option<i64>,
    /// Wall-clock time (ms) of the last `_data` request.
    pub last_data_time: Option<i64>,
    pub latest_empty_bucket_timestamp: Option<i64>,
    pub latest_sparse_bucket_timestamp: Option<i64>,
    pub latest_bucket_timestamp: Option<i64>,
    /// Wall-clock time (ms) these counts were last changed.
    pub log_time: Option<i64>,
}

/// Recent bucket event counts for sparse-bucket detection. Kept beside [`DataCounts`] rather than
/// in it: it is working state, not a counter. Unlike ES, auspex snapshots it with the model, so a
/// reopened job counts sparse buckets exactly as one that never stopped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SparseBucketWindow {
    recent: VecDeque<u64>,
}

impl SparseBucketWindow {
    /// How many recent buckets the average covers (ES uses at least 10).
    pub const LEN: usize = 10;

    /// Adds a bucket's count and returns the window's average, this bucket included.
    fn push(&mut self, event_count: u64) -> f64 {
        if self.recent.len() == Self::LEN {
            self.recent.pop_front();
        }
        self.recent.push_back(event_count);
        self.recent.iter().map(|&c| c as f64).sum::<f64>() / self.recent.len() as f64
    }
}

/// ES's threshold on `ln(average) - ln(count)` above which a bucket is sparse.
const SPARSITY_THRESHOLD: f64 = 2.0;

impl DataCounts {
    /// A `_data` request was accepted: its body size, and the wall clock (ms) now.
    pub fn count_request(&mut self, input_bytes: u64, now_ms: i64) {
        self.input_bytes += input_bytes;
        self.last_data_time = Some(now_ms);
        self.log_time = Some(now_ms);
    }

    /// A record without a usable time: read, not processed.
    pub fn count_invalid_date(&mut self, record: &Record) {
        self.count_input(record);
        self.invalid_date_count += 1;
    }

    /// A record older than the last finalized bucket end: read, not processed.
    pub fn count_out_of_order(&mut self, record: &Record) {
        self.count_input(record);
        self.out_of_order_timestamp_count += 1;
    }

    /// A record that reaches the model; `time_ms` is its (valid) time.
    pub fn count_processed(&mut self, record: &Record, time_ms: i64) {
        self.count_input(record);
        self.processed_record_count += 1;
        self.processed_field_count += record.values.iter().filter(|v| v.is_some()).count() as u64;
        self.earliest_record_timestamp = Some(
            self.earliest_record_timestamp
                .map_or(time_ms, |t| t.min(time_ms)),
        );
        self.latest_record_timestamp = Some(
            self.latest_record_timestamp
                .map_or(time_ms, |t| t.max(time_ms)),
        );
    }

    fn count_input(&mut self, record: &Record) {
        self.input_record_count += 1;
        self.input_field_count += u64::from(record.input_fields);
        self.missing_field_count += record.values.iter().filter(|v| v.is_none()).count() as u64;
    }

    /// A bucket was finalized with `event_count` processed records in it.
    pub fn count_bucket(
        &mut self,
        window: &mut SparseBucketWindow,
        bucket_start_ms: i64,
        event_count: u64,
    ) {
        self.bucket_count += 1;
        let average = window.push(event_count);
        if event_count == 0 {
            self.empty_bucket_count += 1;
            self.latest_empty_bucket_timestamp = Some(bucket_start_ms);
            return;
        }
        // ES: "the timestamp of the last bucket that had data".
        self.latest_bucket_timestamp = Some(bucket_start_ms);
        if average.ln() - (event_count as f64).ln() > SPARSITY_THRESHOLD {
            self.sparse_bucket_count += 1;
            self.latest_sparse_bucket_timestamp = Some(bucket_start_ms);
        }
    }

    /// The Elasticsearch JSON shape; absent timestamps are left out, as ES does.
    pub fn to_json(&self, job_id: &str) -> serde_json::Value {
        let mut out = serde_json::json!({
            "job_id": job_id,
            "processed_record_count": self.processed_record_count,
            "processed_field_count": self.processed_field_count,
            "input_bytes": self.input_bytes,
            "input_field_count": self.input_field_count,
            "invalid_date_count": self.invalid_date_count,
            "missing_field_count": self.missing_field_count,
            "out_of_order_timestamp_count": self.out_of_order_timestamp_count,
            "empty_bucket_count": self.empty_bucket_count,
            "sparse_bucket_count": self.sparse_bucket_count,
            "bucket_count": self.bucket_count,
        });
        let map = out
            .as_object_mut()
            .expect("json! of an object literal is an object");
        let optional = [
            ("earliest_record_timestamp", self.earliest_record_timestamp),
            ("latest_record_timestamp", self.latest_record_timestamp),
            ("last_data_time", self.last_data_time),
            (
                "latest_empty_bucket_timestamp",
                self.latest_empty_bucket_timestamp,
            ),
            (
                "latest_sparse_bucket_timestamp",
                self.latest_sparse_bucket_timestamp,
            ),
            ("latest_bucket_timestamp", self.latest_bucket_timestamp),
        ];
        for (name, value) in optional {
            if let Some(v) = value {
                map.insert(name.to_string(), v.into());
            }
        }
        map.insert(
            "input_record_count".to_string(),
            self.input_record_count.into(),
        );
        if let Some(v) = self.log_time {
            map.insert("log_time".to_string(), v.into());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{DataDescription, FieldValue, RecordReader};

    fn record(input_fields: u32, values: Vec<Option<FieldValue>>) -> Record {
        Record {
            time_ms: Some(0),
            values,
            input_fields,
        }
    }

    /// `body` read as the farequote job reads it: `epoch` times, fields [responsetime, airline].
    fn airline_batch(body: &str) -> crate::ingest::Batch {
        let description = DataDescription {
            time_format: "epoch".to_string(),
            ..DataDescription::default()
        };
        let fields = vec!["responsetime".to_string(), "airline".to_string()];
        let reader = RecordReader::new(&description, &fields).expect("valid description");
        reader.read_body(body.as_bytes()).expect("valid body")
    }

    /// ES's own `_data` test (farequote, `time_format: epoch`, `metric(responsetime) by airline`).
    #[test]
    fn worked_example_from_elasticsearch() {
        let body = concat!(
            r#"{"airline":"AAL","responsetime":"132.2046","sourcetype":"farequote","time":"1403481600"}"#,
            "\n",
            r#"{"airline":"JZA","responsetime":"990.4628","sourcetype":"farequote","time":"1403481700"}"#,
        );
        let batch = airline_batch(body);

        let mut counts = DataCounts::default();
        counts.count_request(batch.input_bytes, 1_700_000_000_000);
        for record in &batch.records {
            match record.time_ms {
                Some(t) => counts.count_processed(record, t),
                None => counts.count_invalid_date(record),
            }
        }
        assert_eq!(counts.processed_record_count, 2);
        assert_eq!(counts.processed_field_count, 4);
        assert_eq!(counts.input_field_count, 6);
        assert_eq!(counts.input_bytes, 177);
        assert_eq!(counts.input_record_count, 2);
        assert_eq!(counts.missing_field_count, 0);
        assert_eq!(counts.invalid_date_count, 0);
        assert_eq!(counts.earliest_record_timestamp, Some(1_403_481_600_000));
        assert_eq!(counts.latest_record_timestamp, Some(1_403_481_700_000));
        assert_eq!(counts.last_data_time, Some(1_700_000_000_000));
    }

    /// A metric value spelled as a number that is not finite cannot be analysed: it counts as a
    /// missing field (and is absent from the record), like a field that is not there at all.
    #[test]
    fn non_finite_number_strings_count_as_missing_fields() {
        let body = concat!(
            r#"{"time":1403481600,"airline":"AAL","responsetime":"NaN"}"#,
            "
",
            r#"{"time":1403481601,"airline":"AAL","responsetime":"Infinity"}"#,
            "
",
            r#"{"time":1403481602,"airline":"AAL","responsetime":"-inf"}"#,
            "
",
            r#"{"time":1403481603,"airline":"AAL","responsetime":"12.5"}"#,
        );
        let batch = airline_batch(body);
        let mut counts = DataCounts::default();
        for record in &batch.records {
            counts.count_processed(record, record.time_ms.expect("valid time"));
        }
        assert_eq!(counts.missing_field_count, 3);
        assert_eq!(counts.processed_field_count, 5);
        assert!(batch.records[..3].iter().all(|r| r.values[0].is_none()));
        assert_eq!(
            batch.records[3].values[0],
            Some(crate::ingest::FieldValue::Text("12.5".into()))
        );
    }

    /// The same example without `sourcetype`, as NOTES.md abbreviates it: the time field does not
    /// count, so two 3-field records add 4, not 6.
    #[test]
    fn time_field_is_not_an_input_field() {
        let body = "{\"time\":1403481600,\"airline\":\"AAL\",\"responsetime\":132.2}\n\
                    {\"time\":1403481700,\"airline\":\"JZA\",\"responsetime\":990.4}\n";
        let batch = airline_batch(body);
        let mut counts = DataCounts::default();
        for record in &batch.records {
            counts.count_processed(record, record.time_ms.expect("valid time"));
        }
        assert_eq!(
            (counts.processed_field_count, counts.input_field_count),
            (4, 4)
        );
        assert_eq!(counts.earliest_record_timestamp, Some(1_403_481_600_000));
        assert_eq!(counts.latest_record_timestamp, Some(1_403_481_700_000));
    }

    #[test]
    fn dropped_records_count_as_input_only() {
        let mut counts = DataCounts::default();
        let full = record(
            3,
            vec![
                Some(FieldValue::Num(1.0)),
                Some(FieldValue::Text("a".into())),
            ],
        );
        let partial = record(1, vec![Some(FieldValue::Num(1.0)), None]);
        counts.count_invalid_date(&partial);
        counts.count_out_of_order(&full);
        counts.count_processed(&partial, 5_000);
        counts.count_processed(&full, 2_000);
        assert_eq!(counts.input_record_count, 4);
        assert_eq!(counts.input_field_count, 8);
        assert_eq!(counts.invalid_date_count, 1);
        assert_eq!(counts.out_of_order_timestamp_count, 1);
        assert_eq!(counts.processed_record_count, 2);
        assert_eq!(counts.processed_field_count, 3);
        assert_eq!(counts.missing_field_count, 2);
        assert_eq!(counts.earliest_record_timestamp, Some(2_000));
        assert_eq!(counts.latest_record_timestamp, Some(5_000));
    }

    #[test]
    fn requests_add_bytes() {
        let mut counts = DataCounts::default();
        counts.count_request(100, 1);
        counts.count_request(50, 2);
        assert_eq!(counts.input_bytes, 150);
        assert_eq!((counts.last_data_time, counts.log_time), (Some(2), Some(2)));
    }

    #[test]
    fn empty_and_sparse_buckets() {
        let mut counts = DataCounts::default();
        let mut window = SparseBucketWindow::default();
        for i in 0..9 {
            counts.count_bucket(&mut window, i * 3_600_000, 100);
        }
        assert_eq!(
            (
                counts.bucket_count,
                counts.sparse_bucket_count,
                counts.empty_bucket_count
            ),
            (9, 0, 0)
        );
        // Average with this bucket: (900 + 10) / 10 = 91; ln(91) - ln(10) = 2.2 > 2.
        counts.count_bucket(&mut window, 9 * 3_600_000, 10);
        assert_eq!(counts.sparse_bucket_count, 1);
        assert_eq!(counts.latest_sparse_bucket_timestamp, Some(9 * 3_600_000));
        // (810 + 10 + 20) / 10 = 84; ln(84) - ln(20) = 1.4: not sparse.
        counts.count_bucket(&mut window, 10 * 3_600_000, 20);
        assert_eq!(counts.sparse_bucket_count, 1);
        counts.count_bucket(&mut window, 11 * 3_600_000, 0);
        assert_eq!(counts.empty_bucket_count, 1);
        assert_eq!(counts.sparse_bucket_count, 1);
        assert_eq!(counts.latest_empty_bucket_timestamp, Some(11 * 3_600_000));
        assert_eq!(counts.latest_bucket_timestamp, Some(10 * 3_600_000));
        assert_eq!(counts.bucket_count, 12);
    }

    #[test]
    fn a_first_small_bucket_is_not_sparse() {
        let mut counts = DataCounts::default();
        let mut window = SparseBucketWindow::default();
        counts.count_bucket(&mut window, 0, 1);
        assert_eq!(counts.sparse_bucket_count, 0);
        assert_eq!(counts.latest_bucket_timestamp, Some(0));
    }
}
