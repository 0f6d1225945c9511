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
//! Bucket counters follow ES's bucket diagnostics (`DataStreamDiagnostics`): they come from the
//! times of processed records, not from the buckets the model finalizes. [`BucketDiagnostics`]
//! keeps the record counts of the latest `max(latency buckets, 10)` buckets, from the first
//! record's bucket on; a bucket is counted once, when it leaves that window or when a `_data`
//! request ends (every bucket of the window but the latest). So lead buckets before the first
//! record, and `advance_time` over time without records, add no buckets. Counted with no records:
//! `empty_bucket_count`; with far fewer than the window's average: `sparse_bucket_count`. "Far
//! fewer" is ES's rule: `ln(average) - ln(count) > 2`, i.e. fewer than about 1/7.4 of the average.
//!
//! [`DataCounts::since`] gives the counts of one request (the `_data` answer, ES's
//! `incrementalStats()`); the job's running totals are what `_stats` shows.

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

/// ES's bucket diagnostics: the record counts of the latest buckets, oldest first, ending with the
/// latest record's bucket (see the module doc). Part of the pipeline's snapshotted state, so unlike
/// ES (which restarts them from the latest record at each open) a reopened job counts buckets
/// exactly as one that never stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketDiagnostics {
    span_ms: i64,
    capacity: usize,
    window: VecDeque<u64>,
    /// The sum of `window`.
    records: u64,
    /// Start of the window's last bucket; `None` before the first record.
    latest_start: Option<i64>,
    /// Start of the latest bucket counted: no bucket is counted twice.
    counted_through: Option<i64>,
}

/// ES's threshold on `ln(average) - ln(count)` above which a bucket is sparse.
const SPARSITY_THRESHOLD: f64 = 2.0;

/// The fewest buckets the diagnostics window covers (ES `MIN_BUCKETS`).
const MIN_WINDOW_BUCKETS: usize = 10;

impl BucketDiagnostics {
    /// For buckets of `span_ms`; the window covers the job's latency and at least 10 buckets.
    pub fn new(span_ms: i64, latency_ms: i64) -> BucketDiagnostics {
        let span_ms = span_ms.max(1);
        let latency_buckets = (latency_ms.max(0) + span_ms - 1) / span_ms;
        BucketDiagnostics {
            span_ms,
            capacity: usize::try_from(latency_buckets)
                .unwrap_or(usize::MAX)
                .max(MIN_WINDOW_BUCKETS),
            window: VecDeque::new(),
            records: 0,
            latest_start: None,
            counted_through: None,
        }
    }

    /// A processed record at `time_ms`.
    pub fn add_record(&mut self, counts: &mut DataCounts, time_ms: i64) {
        let bucket = time_ms.div_euclid(self.span_ms) * self.span_ms;
        let latest = match self.latest_start {
            Some(latest) => latest,
            None => {
                self.latest_start = Some(bucket);
                self.window.push_back(0);
                bucket
            }
        };
        if bucket > latest {
            self.advance_to(counts, bucket);
        }
        let latest = self.latest_start.unwrap_or(bucket);
        let back = usize::try_from((latest - bucket) / self.span_ms).unwrap_or(usize::MAX);
        // A record before the window's start (possible with latency) widens the window while it
        // has room; older than that, ES's ring would misplace it, and it is not counted.
        while back >= self.window.len() && self.window.len() < self.capacity {
            self.window.push_front(0);
        }
        if back < self.window.len() {
            let index = self.window.len() - 1 - back;
            self.window[index] += 1;
            self.records += 1;
        }
    }

    /// Moves the window's end to `bucket`, counting the buckets that leave it. A gap longer than
    /// the window costs O(window), not O(gap): past the window every bucket is empty.
    fn advance_to(&mut self, counts: &mut DataCounts, bucket: i64) {
        let Some(mut latest) = self.latest_start else {
            return;
        };
        let steps = (bucket - latest) / self.span_ms;
        let exact = steps.min(self.capacity as i64);
        for _ in 0..exact {
            if self.window.len() == self.capacity {
                let start = latest - (self.window.len() as i64 - 1) * self.span_ms;
                let count = self.window[0];
                self.count(counts, start, count);
                self.records -= count;
                self.window.pop_front();
            }
            self.window.push_back(0);
            latest += self.span_ms;
        }
        let rest = steps - exact;
        if rest > 0 {
            // The window holds only empty buckets now; each further step counts one leaving it.
            latest += rest * self.span_ms;
            let last_gone = latest - self.capacity as i64 * self.span_ms;
            counts.bucket_count += rest as u64;
            counts.empty_bucket_count += rest as u64;
            counts.latest_empty_bucket_timestamp = Some(last_gone);
            self.counted_through = Some(last_gone);
        }
        self.latest_start = Some(latest);
    }

    /// The end of a `_data` request: counts every bucket of the window but the latest (ES's
    /// `flush`). They stay in the window for the averages; none is counted again.
    pub fn end_request(&mut self, counts: &mut DataCounts) {
        let Some(latest) = self.latest_start else {
            return;
        };
        let len = self.window.len();
        for index in 0..len.saturating_sub(1) {
            let start = latest - (len - 1 - index) as i64 * self.span_ms;
            let count = self.window[index];
            self.count(counts, start, count);
        }
    }

    /// Counts the bucket at `start` with `records` records, unless it was counted already.
    fn count(&mut self, counts: &mut DataCounts, start: i64, records: u64) {
        if self.counted_through.is_some_and(|through| start <= through) {
            return;
        }
        self.counted_through = Some(start);
        counts.bucket_count += 1;
        if records == 0 {
            counts.empty_bucket_count += 1;
            counts.latest_empty_bucket_timestamp = Some(start);
            return;
        }
        // ES: "the timestamp of the last bucket that had data".
        counts.latest_bucket_timestamp = Some(start);
        let average = self.records as f64 / self.window.len().max(1) as f64;
        if average.ln() - (records as f64).ln() > SPARSITY_THRESHOLD {
            counts.sparse_bucket_count += 1;
            counts.latest_sparse_bucket_timestamp = Some(start);
        }
    }
}

impl DataCounts {
    /// A `_data` request was accepted: its body size, and the wall clock (ms) now.
    pub fn count_request(&mut self, input_bytes: u64, now_ms: i64) {
        self.input_bytes += input_bytes;
        self.last_data_time = Some(now_ms);
        self.log_time = Some(now_ms);
    }

    /// A record without a usable time: read, not processed. A record without the time field
    /// also misses an input field (ES counts the time field among them).
    pub fn count_invalid_date(&mut self, record: &Record) {
        self.count_input(record);
        self.invalid_date_count += 1;
        if record.time_missing {
            self.missing_field_count += 1;
        }
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

    /// The counts of one request, `self` being the job's totals after it and `before` those
    /// before it: ES's `incrementalStats()`. `earliest_record_timestamp` only when this request
    /// carried the job's first record ever, `latest_record_timestamp` only when it processed a
    /// record, no `log_time`; the latest bucket timestamps are the job's, as ES reports them.
    pub fn since(&self, before: &DataCounts) -> DataCounts {
        let minus = |after: u64, before: u64| after.saturating_sub(before);
        let processed = minus(self.processed_record_count, before.processed_record_count);
        DataCounts {
            processed_record_count: processed,
            processed_field_count: minus(self.processed_field_count, before.processed_field_count),
            input_bytes: minus(self.input_bytes, before.input_bytes),
            input_field_count: minus(self.input_field_count, before.input_field_count),
            invalid_date_count: minus(self.invalid_date_count, before.invalid_date_count),
            missing_field_count: minus(self.missing_field_count, before.missing_field_count),
            out_of_order_timestamp_count: minus(
                self.out_of_order_timestamp_count,
                before.out_of_order_timestamp_count,
            ),
            empty_bucket_count: minus(self.empty_bucket_count, before.empty_bucket_count),
            sparse_bucket_count: minus(self.sparse_bucket_count, before.sparse_bucket_count),
            bucket_count: minus(self.bucket_count, before.bucket_count),
            input_record_count: minus(self.input_record_count, before.input_record_count),
            earliest_record_timestamp: before
                .earliest_record_timestamp
                .is_none()
                .then_some(self.earliest_record_timestamp)
                .flatten(),
            latest_record_timestamp: (processed > 0)
                .then_some(self.latest_record_timestamp)
                .flatten(),
            last_data_time: self.last_data_time,
            latest_empty_bucket_timestamp: self.latest_empty_bucket_timestamp,
            latest_sparse_bucket_timestamp: self.latest_sparse_bucket_timestamp,
            latest_bucket_timestamp: self.latest_bucket_timestamp,
            log_time: None,
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
            time_missing: false,
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

    const H: i64 = 3_600_000;

    /// Records at the given hours (one record per entry), then the end of the request.
    fn diagnosed(diagnostics: &mut BucketDiagnostics, counts: &mut DataCounts, hours: &[i64]) {
        for hour in hours {
            diagnostics.add_record(counts, hour * H + 60_000);
        }
        diagnostics.end_request(counts);
    }

    fn bucket_counters(counts: &DataCounts) -> (u64, u64, u64) {
        (
            counts.bucket_count,
            counts.empty_bucket_count,
            counts.sparse_bucket_count,
        )
    }

    #[test]
    fn buckets_are_counted_from_record_times_and_the_latest_stays_open() {
        let mut counts = DataCounts::default();
        let mut diagnostics = BucketDiagnostics::new(H, 0);
        diagnosed(&mut diagnostics, &mut counts, &[100, 100, 101, 103]);
        // 100, 101 and the empty 102 are counted; 103 is the latest and stays open.
        assert_eq!(bucket_counters(&counts), (3, 1, 0));
        assert_eq!(counts.latest_empty_bucket_timestamp, Some(102 * H));
        assert_eq!(counts.latest_bucket_timestamp, Some(101 * H));
        // A second request counts 103 once, and nothing twice.
        diagnosed(&mut diagnostics, &mut counts, &[104]);
        assert_eq!(bucket_counters(&counts), (4, 1, 0));
        diagnosed(&mut diagnostics, &mut counts, &[]);
        assert_eq!(bucket_counters(&counts), (4, 1, 0));
    }

    #[test]
    fn a_sparse_bucket_is_far_below_the_window_average() {
        let mut counts = DataCounts::default();
        let mut diagnostics = BucketDiagnostics::new(H, 0);
        let mut hours = Vec::new();
        for hour in 0..9 {
            hours.extend(std::iter::repeat_n(hour, 100));
        }
        hours.extend(std::iter::repeat_n(9, 10));
        hours.extend(std::iter::repeat_n(10, 100));
        diagnosed(&mut diagnostics, &mut counts, &hours);
        // Bucket 9: average (900 + 10 + 100) / 11... the window holds the latest ten: (800 + 10 + 100) / 10.
        assert_eq!(bucket_counters(&counts), (10, 0, 1));
        assert_eq!(counts.latest_sparse_bucket_timestamp, Some(9 * H));
    }

    #[test]
    fn a_long_gap_costs_the_window_not_the_gap() {
        let mut counts = DataCounts::default();
        let mut diagnostics = BucketDiagnostics::new(H, 0);
        let ten_years = 10 * 365 * 24;
        diagnosed(&mut diagnostics, &mut counts, &[0, ten_years]);
        assert_eq!(
            bucket_counters(&counts),
            (ten_years as u64, ten_years as u64 - 1, 0)
        );
        assert_eq!(
            counts.latest_empty_bucket_timestamp,
            Some((ten_years - 1) * H)
        );
        // The same as stepping through it bucket by bucket.
        let mut stepped = DataCounts::default();
        let mut slow = BucketDiagnostics::new(H, 0);
        for hour in (0..=ten_years).step_by(7) {
            slow.add_record(&mut stepped, hour * H);
        }
        let mut direct = DataCounts::default();
        let mut fast = BucketDiagnostics::new(H, 0);
        fast.add_record(&mut direct, 0);
        for hour in (7..=ten_years).step_by(7) {
            fast.add_record(&mut direct, hour * H);
        }
        assert_eq!(stepped, direct);
        assert_eq!(slow, fast);
    }

    #[test]
    fn latency_widens_the_window_and_late_records_land_in_their_bucket() {
        let mut counts = DataCounts::default();
        let mut diagnostics = BucketDiagnostics::new(H, 12 * H);
        assert_eq!(diagnostics.capacity, 12);
        diagnostics.add_record(&mut counts, 20 * H);
        diagnostics.add_record(&mut counts, 18 * H);
        diagnostics.end_request(&mut counts);
        // 18 (one record) and the empty 19 are counted; 20 is the latest.
        assert_eq!(bucket_counters(&counts), (2, 1, 0));
        assert_eq!(counts.latest_bucket_timestamp, Some(18 * H));
    }

    #[test]
    fn one_request_answers_its_own_counts() {
        let mut before = DataCounts::default();
        before.count_request(100, 1);
        let full = record(
            2,
            vec![Some(FieldValue::Num(1.0)), Some(FieldValue::Num(2.0))],
        );
        before.count_processed(&full, 5_000);
        let first = before.since(&DataCounts::default());
        assert_eq!(first.earliest_record_timestamp, Some(5_000));
        assert_eq!(first.log_time, None);
        let mut after = before.clone();
        after.count_request(40, 2);
        after.count_processed(&full, 7_000);
        let second = after.since(&before);
        assert_eq!(
            (
                second.processed_record_count,
                second.input_bytes,
                second.input_field_count
            ),
            (1, 40, 2)
        );
        assert_eq!(second.earliest_record_timestamp, None);
        assert_eq!(second.latest_record_timestamp, Some(7_000));
        assert_eq!(second.last_data_time, Some(2));
        let json = second.to_json("j");
        assert!(json.get("log_time").is_none() && json.get("earliest_record_timestamp").is_none());
        // An empty request: zeros, no record times.
        let mut empty = after.clone();
        empty.count_request(0, 3);
        let zeros = empty.since(&after);
        assert_eq!(
            zeros.processed_record_count + zeros.input_bytes + zeros.input_record_count,
            0
        );
        assert_eq!(zeros.latest_record_timestamp, None);
    }

    #[test]
    fn a_record_without_the_time_field_misses_a_field() {
        let batch = airline_batch("{\"airline\":\"AAL\",\"responsetime\":1}\n{\"time\":\"soon\",\"airline\":\"AAL\",\"responsetime\":1}\n");
        let mut counts = DataCounts::default();
        for record in &batch.records {
            counts.count_invalid_date(record);
        }
        assert_eq!(counts.invalid_date_count, 2);
        assert_eq!(counts.missing_field_count, 1);
    }
}
