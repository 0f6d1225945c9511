//! Pipeline: the deterministic heart of an open job. It turns input entries (record batches and
//! time controls) into finalized buckets, and owns the time rules of Elasticsearch ML: bucket
//! boundaries, latency, finalization, out-of-order records, `advance_time` and `skip_time`.
//!
//! Pure and synchronous: no store, no channels, no wall clock. The actor feeds it; the same entries
//! in the same order always give the same results and the same state, which is what makes "load the
//! snapshot, replay the input stored after it" restore a job exactly (store invariant I4).
//!
//! Time rules (NOTES.md "Flush"): a bucket is `[floor(t/L)*L, +L)`. On the first record (or a first
//! `advance_time`) the last finalized end is `floor(t/L)*L - latency` (rounded down to a bucket
//! boundary so buckets stay aligned). A bucket is finalized when a record or an advance time at or
//! after `bucket end + latency` arrives; empty buckets on the way are finalized too. A record older
//! than the last finalized end is out of order and dropped; everything from the latest record's
//! bucket minus latency on is accepted (Elasticsearch's own rule, `latest - latency`, accepts less).
//! Skip time jumps to `ceil(t/L)*L`, dropping open buckets unscored. Close finalizes nothing: the
//! open buckets are part of the state a snapshot holds, and carry on after the next open.
//!
//! Gap bound: one request (a `_data` body, or a `_flush` with `advance_time`) may finalize at most
//! `max_empty_buckets` buckets after the latest record's bucket that none of its records fall in
//! (the default [`DEFAULT_MAX_EMPTY_BUCKETS`]); beyond that it is refused whole, before anything
//! changes, with a 400 that points at `skip_time`. Every bucket a request finalizes is written in
//! the request's one commit (store I2), so this bounds the commit's size and memory by the
//! request's records plus that many empty buckets.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::ingest::{BucketDiagnostics, DataCounts, Record, RecordReader};
use crate::job::{JobConfig, JobError};
use crate::model::model_plot::ModelPlotSpec;
use crate::model::rules::JobRules;
use crate::model::{AnalysisConfig, AnomalyDetector, BucketResult};

/// One durable unit of job input. The input log (store tree `input`) holds these in order; replaying
/// them through [`Pipeline::apply`] after a snapshot rebuilds the job's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InputEntry {
    /// Records as NDJSON (`ingest::Batch::stored`). `input_bytes` is the share of the request body
    /// this entry accounts for; `received_ms` the wall-clock time it arrived (for `last_data_time`).
    Data {
        input_bytes: u64,
        received_ms: i64,
        ndjson: Vec<u8>,
    },
    /// `_flush` with `skip_time` and/or `advance_time` (epoch ms): the only flush parts that change state.
    Flush {
        skip_time: Option<i64>,
        advance_time: Option<i64>,
    },
    /// `_close`: prune series idle for longer than `model_prune_window`. Nothing is finalized:
    /// the open buckets stay open in the snapshot written next (as ml-cpp's end of input).
    Close,
    /// The scheduled events of the job's calendars from here on (written when a job opens and its
    /// calendars' events differ from the ones in force), so a replay applies exactly the events
    /// the original run did.
    Calendar { events: Vec<ScheduledEvent> },
    /// `_revert` to the snapshot whose state covers input through `to_seq`: the entries between
    /// `to_seq` and this one are superseded. They stay stored, but a replay skips them
    /// (`job::snapshot::restore`); applying the marker itself changes nothing.
    Revert { to_seq: u64 },
    /// The custom rules in force from here on, their filters resolved (written when a job opens
    /// with rules other than those in force, and when an open job's rules or their filters are
    /// updated), so a replay applies exactly the rules the original run did.
    Rules { rules: JobRules },
}

/// A scheduled event as the pipeline applies it to the buckets it overlaps: `skip_result` emits
/// no results for them, `skip_model_update` keeps the model from learning from them (with both, the
/// bucket is dropped like a `skip_time` gap; with only `skip_model_update` it is scored but not
/// learnt from).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledEvent {
    /// `[start, end)`, epoch ms.
    pub start: i64,
    pub end: i64,
    pub skip_result: bool,
    pub skip_model_update: bool,
}

/// Everything a snapshot must hold to resume the job exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineState {
    /// Sequence number of the last input entry applied.
    pub last_seq: u64,
    /// End (exclusive) of the last finalized bucket; `None` before the first record or advance.
    pub finalized_end: Option<i64>,
    /// Latest processed record time (ms).
    pub latest_record_time: Option<i64>,
    /// Start of the latest finalized bucket that had results.
    pub latest_result_time: Option<i64>,
    pub counts: DataCounts,
    /// Where `bucket_count` and its kin come from (record times, as ES counts them).
    pub diagnostics: BucketDiagnostics,
    pub detector: AnomalyDetector,
    /// The events in force (the last `InputEntry::Calendar`).
    pub scheduled_events: Vec<ScheduledEvent>,
}

/// What applying one entry produced.
#[derive(Debug, Default)]
pub struct Applied {
    pub finalized: Vec<BucketResult>,
}

/// How many empty buckets one request may finalize unless configured otherwise (see the module
/// doc): a week of 1-minute buckets, 105 days of 15-minute ones, 14 months of hourly ones. An empty
/// bucket costs about 6 KB while its commit is built and written (measured: 105,120 of them in one
/// request peaked at 620 MB RSS, 3.2 s), so this keeps one such request near 60 MB.
pub const DEFAULT_MAX_EMPTY_BUCKETS: u64 = 10_080;

/// An open job's deterministic state machine.
pub struct Pipeline {
    reader: Arc<RecordReader>,
    bucket_span: i64,
    latency: i64,
    prune_window: Option<i64>,
    max_empty_buckets: u64,
    pub state: PipelineState,
}

impl Pipeline {
    /// A fresh pipeline for a job that has never seen data.
    pub fn new(analysis: &AnalysisConfig, reader: Arc<RecordReader>) -> Pipeline {
        let detector = AnomalyDetector::new(analysis, reader.fields());
        let state = PipelineState {
            last_seq: 0,
            finalized_end: None,
            latest_record_time: None,
            latest_result_time: None,
            counts: DataCounts::default(),
            diagnostics: BucketDiagnostics::new(
                analysis.bucket_span.millis,
                analysis.latency_millis(),
            ),
            detector,
            scheduled_events: Vec::new(),
        };
        Pipeline::resume(analysis, reader, state)
    }

    /// A pipeline continuing from a snapshot's state.
    pub fn resume(
        analysis: &AnalysisConfig,
        reader: Arc<RecordReader>,
        state: PipelineState,
    ) -> Pipeline {
        Pipeline {
            reader,
            bucket_span: analysis.bucket_span.millis.max(1),
            latency: analysis.latency_millis().max(0),
            prune_window: analysis.model_prune_window.as_ref().map(|w| w.millis),
            max_empty_buckets: DEFAULT_MAX_EMPTY_BUCKETS,
            state,
        }
    }

    /// The gap bound from here on (see the module doc). Not part of the state: a replay of input
    /// that was accepted is never refused, whatever the bound is now.
    pub fn with_max_empty_buckets(mut self, max: u64) -> Pipeline {
        self.max_empty_buckets = max;
        self
    }

    /// Enforces the job's `analysis_limits.model_memory_limit` from here on. Every pipeline built
    /// for a job goes through this before it sees input, so a replay obeys the same limit.
    pub fn memory_limited(mut self, config: &crate::job::JobConfig) -> Pipeline {
        let limit = crate::job::snapshot::memory_limit_bytes(config);
        self.state
            .detector
            .set_memory_limit(Some(limit), &config.analysis_config);
        self
    }

    pub fn reader(&self) -> &Arc<RecordReader> {
        &self.reader
    }

    pub fn bucket_span(&self) -> i64 {
        self.bucket_span
    }

    /// Model plot for the buckets finalized from now on, from the job's `model_plot_config`
    /// (not part of the state: results are written once, so a replay does not need it).
    pub fn set_model_plot(&mut self, config: &JobConfig) {
        let spec = ModelPlotSpec::from_config(config.model_plot_config.as_ref());
        self.state.detector.set_model_plot(spec);
    }

    /// Applies one input entry with sequence number `seq`. Stored entries were accepted once, so
    /// they are applied without the gap bound.
    pub fn apply(&mut self, seq: u64, entry: &InputEntry) -> Result<Applied, JobError> {
        let bound = std::mem::replace(&mut self.max_empty_buckets, u64::MAX);
        let applied = self.apply_checked(seq, entry);
        self.max_empty_buckets = bound;
        applied
    }

    /// [`Pipeline::apply`] for a new entry: refused whole (nothing changes) past the gap bound.
    pub fn apply_checked(&mut self, seq: u64, entry: &InputEntry) -> Result<Applied, JobError> {
        let mut applied = Applied::default();
        match entry {
            InputEntry::Data {
                input_bytes,
                received_ms,
                ndjson,
            } => {
                let batch = self.reader.read_body(ndjson)?;
                applied = self.apply_data(seq, &batch.records, *input_bytes, *received_ms)?;
            }
            InputEntry::Flush {
                skip_time,
                advance_time,
            } => {
                if let Some(advance) = advance_time {
                    let skipped = skip_time.map(|t| ceil_to(t, self.bucket_span));
                    let from = match (skipped, self.state.finalized_end) {
                        (Some(skipped), Some(end)) => Some(skipped.max(end)),
                        (skipped, end) => skipped.or(end),
                    };
                    self.check_gap(from, std::iter::empty(), Some(*advance))?;
                }
                if let Some(skip) = skip_time {
                    self.skip_to(*skip);
                }
                if let Some(advance) = advance_time {
                    self.advance_to(*advance, &mut applied);
                }
            }
            InputEntry::Close => {
                if let (Some(window), Some(latest)) =
                    (self.prune_window, self.state.latest_record_time)
                {
                    self.state.detector.prune(latest - window);
                }
            }
            InputEntry::Calendar { events } => self.state.scheduled_events.clone_from(events),
            InputEntry::Revert { .. } => {}
            InputEntry::Rules { rules } => self.state.detector.set_rules(rules.clone()),
        }
        self.state.last_seq = seq;
        Ok(applied)
    }

    /// Applies the records of one input entry, already parsed (the live path parses once; replay
    /// parses the stored NDJSON), after checking them against the gap bound (an error changes
    /// nothing). `seq` is the entry's sequence number.
    pub fn apply_data(
        &mut self,
        seq: u64,
        records: &[Record],
        input_bytes: u64,
        received_ms: i64,
    ) -> Result<Applied, JobError> {
        self.check_records(records)?;
        let mut applied = Applied::default();
        self.state.last_seq = seq;
        self.state.counts.count_request(input_bytes, received_ms);
        for record in records {
            let Some(time) = record.time_ms else {
                self.state.counts.count_invalid_date(record);
                continue;
            };
            let finalized_end = *self
                .state
                .finalized_end
                .get_or_insert_with(|| first_finalized_end(time, self.bucket_span, self.latency));
            if time < finalized_end {
                self.state.counts.count_out_of_order(record);
                continue;
            }
            self.finalize_through(time, &mut applied);
            let bucket = floor_to(time, self.bucket_span);
            self.state
                .detector
                .add_timed_record(bucket, time, &record.values);
            let state = &mut self.state;
            state.counts.count_processed(record, time);
            state.diagnostics.add_record(&mut state.counts, time);
            state.latest_record_time = Some(state.latest_record_time.map_or(time, |t| t.max(time)));
        }
        let state = &mut self.state;
        state.diagnostics.end_request(&mut state.counts);
        Ok(applied)
    }

    /// Refuses records that would finalize more than `max_empty_buckets` empty buckets (see
    /// [`Pipeline::check_gap`]) without applying anything.
    pub fn check_records(&self, records: &[Record]) -> Result<(), JobError> {
        self.check_gap(None, records.iter().filter_map(|r| r.time_ms), None)
    }

    /// Refuses work that would finalize more than `max_empty_buckets` buckets after the latest
    /// record's bucket holding none of its records: records at `times` (in order), then an
    /// advance to `advance` (from `skipped_to` when a `skip_time` comes first). Mirrors the
    /// watermark rules of `apply_data` and `advance_to` without changing anything; counts with
    /// bucket arithmetic, so a gap of any length costs O(1).
    fn check_gap(
        &self,
        skipped_to: Option<i64>,
        times: impl Iterator<Item = i64>,
        advance: Option<i64>,
    ) -> Result<(), JobError> {
        let span = self.bucket_span;
        let mut finalized_end = skipped_to.or(self.state.finalized_end);
        // Buckets up to this one may hold records already: never counted as empty.
        let mut latest_bucket = self.state.latest_record_time.map(|t| floor_to(t, span));
        let mut empty = 0u64;
        let mut step = |finalized_end: &mut i64, latest_bucket: Option<i64>, time: i64| {
            let buckets = (time - self.latency - *finalized_end)
                .div_euclid(span)
                .max(0);
            let new_end = *finalized_end + buckets * span;
            let first_empty =
                latest_bucket.map_or(*finalized_end, |b| (b + span).max(*finalized_end));
            empty = empty.saturating_add(((new_end - first_empty) / span).max(0) as u64);
            *finalized_end = new_end;
        };
        for time in times {
            let end =
                finalized_end.get_or_insert_with(|| first_finalized_end(time, span, self.latency));
            if time < *end {
                continue;
            }
            step(end, latest_bucket, time);
            latest_bucket =
                Some(latest_bucket.map_or(floor_to(time, span), |b| b.max(floor_to(time, span))));
        }
        if let (Some(time), Some(end)) = (advance, finalized_end.as_mut()) {
            step(end, latest_bucket, time);
        }
        if empty > self.max_empty_buckets {
            return Err(JobError::InvalidArgument(format!(
                "this request would finalize {empty} empty buckets after the latest record, more \
                 than the {} one request may finalize; use _flush with skip_time to jump over a \
                 gap in the data",
                self.max_empty_buckets
            )));
        }
        Ok(())
    }

    /// Finalizes every bucket whose end plus latency is at or before `time`.
    fn finalize_through(&mut self, time: i64, applied: &mut Applied) {
        let latency = self.latency;
        self.finalize_while(applied, |end| end + latency <= time);
    }

    fn finalize_while(&mut self, applied: &mut Applied, mut more: impl FnMut(i64) -> bool) {
        let Some(mut finalized_end) = self.state.finalized_end else {
            return;
        };
        loop {
            let next_end = finalized_end + self.bucket_span;
            if !more(next_end) {
                break;
            }
            if let Some(result) = self.finalize_one(finalized_end) {
                if !result.records.is_empty() || result.event_count > 0 {
                    self.state.latest_result_time = Some(result.timestamp);
                }
                applied.finalized.push(result);
            }
            finalized_end = next_end;
            self.state.finalized_end = Some(finalized_end);
        }
    }

    /// Finalizes the bucket starting at `bucket` under the scheduled events that overlap it; `None`
    /// when they suppress its results (see [`ScheduledEvent`]).
    fn finalize_one(&mut self, bucket: i64) -> Option<BucketResult> {
        let end = bucket + self.bucket_span;
        let (mut skip_result, mut skip_update) = (false, false);
        for event in &self.state.scheduled_events {
            if event.start < end && event.end > bucket {
                skip_result |= event.skip_result;
                skip_update |= event.skip_model_update;
            }
        }
        let detector = &mut self.state.detector;
        match (skip_result, skip_update) {
            (false, false) => Some(detector.finalize_bucket(bucket)),
            (true, false) => {
                detector.finalize_bucket(bucket);
                None
            }
            (false, true) => {
                let mut result = detector.interim_bucket(bucket);
                result.is_interim = false;
                detector.discard_bucket(bucket);
                Some(result)
            }
            (true, true) => {
                detector.discard_bucket(bucket);
                None
            }
        }
    }

    /// `advance_time`: finalize every bucket that ends (plus latency) at or before `time`.
    fn advance_to(&mut self, time: i64, applied: &mut Applied) {
        if self.state.finalized_end.is_none() {
            // Nothing seen yet: there is nothing to finalize, but time has moved on, as for a first
            // record (latency included); records before it are now out of order.
            self.state.finalized_end =
                Some(first_finalized_end(time, self.bucket_span, self.latency));
            return;
        }
        self.finalize_through(time, applied);
    }

    /// `skip_time`: jump to `ceil(time/L)*L` without scoring or learning from the buckets skipped.
    fn skip_to(&mut self, time: i64) {
        let target = ceil_to(time, self.bucket_span);
        if let Some(from) = self.state.finalized_end {
            if target <= from {
                return;
            }
            // Only buckets up to the latest record can hold data; a long gap costs nothing.
            let last_with_data = self
                .state
                .latest_record_time
                .map_or(from, |t| floor_to(t, self.bucket_span) + self.bucket_span);
            let mut bucket = from;
            while bucket < target.min(last_with_data) {
                self.state.detector.discard_bucket(bucket);
                bucket += self.bucket_span;
            }
        }
        self.state.finalized_end = Some(target);
    }

    /// Interim results for the open buckets in `[start, end)` (default: the buckets latency keeps open
    /// plus the current one), scored against the current models without changing them.
    pub fn interim(&self, start: Option<i64>, end: Option<i64>) -> Vec<BucketResult> {
        let Some(finalized_end) = self.state.finalized_end else {
            return Vec::new();
        };
        let latency_buckets = (self.latency + self.bucket_span - 1) / self.bucket_span;
        let start = floor_to(
            start.unwrap_or(finalized_end).max(finalized_end),
            self.bucket_span,
        );
        let default_end = finalized_end + (latency_buckets + 1) * self.bucket_span;
        // Only buckets that can hold data: up to the one holding the latest record.
        let data_end = self
            .state
            .latest_record_time
            .map_or(start, |t| floor_to(t, self.bucket_span) + self.bucket_span);
        let end = end.unwrap_or(default_end).min(data_end);
        let mut out = Vec::new();
        let mut bucket = start;
        while bucket < end {
            out.push(self.state.detector.interim_bucket(bucket));
            bucket += self.bucket_span;
        }
        out
    }
}

fn first_finalized_end(time: i64, bucket_span: i64, latency: i64) -> i64 {
    floor_to(floor_to(time, bucket_span) - latency, bucket_span)
}

pub(crate) fn floor_to(time: i64, span: i64) -> i64 {
    time.div_euclid(span) * span
}

pub(crate) fn ceil_to(time: i64, span: i64) -> i64 {
    let floor = floor_to(time, span);
    if floor == time {
        time
    } else {
        floor + span
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::DataDescription;

    const HOUR: i64 = 3_600_000;

    fn pipeline(detector: serde_json::Value, latency: Option<&str>) -> Pipeline {
        let mut analysis = serde_json::json!({"bucket_span": "1h", "detectors": [detector]});
        if let Some(latency) = latency {
            analysis["latency"] = latency.into();
        }
        let analysis: AnalysisConfig = serde_json::from_value(analysis).unwrap();
        let description = DataDescription {
            time_format: "epoch".into(),
            ..DataDescription::default()
        };
        let reader = RecordReader::new(&description, &analysis.analysis_fields()).unwrap();
        Pipeline::new(&analysis, Arc::new(reader))
    }

    fn airline_pipeline() -> Pipeline {
        pipeline(
            serde_json::json!({"function": "metric", "field_name": "responsetime", "by_field_name": "airline"}),
            None,
        )
    }

    fn data(times: &[i64]) -> InputEntry {
        let ndjson: String = times
            .iter()
            .map(|t| {
                format!("{{\"time\":{t},\"airline\":\"AAL\",\"responsetime\":132.2,\"sourcetype\":\"farequote\"}}\n")
            })
            .collect();
        InputEntry::Data {
            input_bytes: ndjson.len() as u64,
            received_ms: 0,
            ndjson: ndjson.into_bytes(),
        }
    }

    fn run(p: &mut Pipeline, entries: &[InputEntry]) -> Vec<BucketResult> {
        let mut out = Vec::new();
        for entry in entries {
            let seq = p.state.last_seq + 1;
            out.extend(p.apply(seq, entry).unwrap().finalized);
        }
        out
    }

    #[test]
    fn worked_example_counts_and_first_watermark() {
        let mut p = airline_pipeline();
        let finalized = run(&mut p, &[data(&[1403481600, 1403481700])]);
        assert!(finalized.is_empty());
        let c = &p.state.counts;
        assert_eq!(
            (
                c.processed_record_count,
                c.processed_field_count,
                c.input_field_count
            ),
            (2, 4, 6)
        );
        assert_eq!(c.earliest_record_timestamp, Some(1403481600000));
        assert_eq!(c.latest_record_timestamp, Some(1403481700000));
        // A flush with no parameters finalizes nothing: the watermark is the first bucket's start.
        assert_eq!(p.state.finalized_end, Some(1403481600000));
    }

    fn advance(ms: i64) -> InputEntry {
        InputEntry::Flush {
            skip_time: None,
            advance_time: Some(ms),
        }
    }

    /// Elasticsearch's REST test "Test flush with skip_time": two buckets; the bucket of the last
    /// record is still open at close, and close finalizes nothing.
    #[test]
    fn worked_example_skip_time_then_close() {
        let mut p = airline_pipeline();
        let mut buckets = run(&mut p, &[data(&[1403481600, 1403485200])]);
        buckets.extend(run(
            &mut p,
            &[InputEntry::Flush {
                skip_time: Some(1403488700000),
                advance_time: None,
            }],
        ));
        assert_eq!(p.state.finalized_end, Some(1403488800000));
        buckets.extend(run(&mut p, &[data(&[1403488600, 1403488700])]));
        assert_eq!(p.state.counts.out_of_order_timestamp_count, 2);
        buckets.extend(run(
            &mut p,
            &[data(&[1403488900, 1403492400]), InputEntry::Close],
        ));
        let seen: Vec<(i64, u64)> = buckets
            .iter()
            .map(|b| (b.timestamp, b.event_count))
            .collect();
        assert_eq!(seen, vec![(1403481600000, 1), (1403488800000, 1)]);
        assert_eq!(p.state.finalized_end, Some(1403492400000));
        assert_eq!(p.state.latest_record_time, Some(1403492400000));
    }

    #[test]
    fn advance_time_finalizes_empty_buckets_on_the_way() {
        let mut p = airline_pipeline();
        run(&mut p, &[data(&[1514790000])]);
        let buckets = run(
            &mut p,
            &[InputEntry::Flush {
                skip_time: None,
                advance_time: Some(1514804400000),
            }],
        );
        assert_eq!(p.state.finalized_end, Some(1514804400000));
        let starts: Vec<i64> = buckets.iter().map(|b| b.timestamp).collect();
        assert_eq!(
            starts,
            vec![1514790000000, 1514793600000, 1514797200000, 1514800800000]
        );
        assert_eq!(buckets[0].event_count, 1);
        // Bucket counts come from record times: advancing over time without records adds none.
        assert_eq!(
            (
                p.state.counts.bucket_count,
                p.state.counts.empty_bucket_count
            ),
            (0, 0)
        );
    }

    #[test]
    fn advance_before_any_data_sets_the_watermark() {
        let mut p = airline_pipeline();
        let buckets = run(
            &mut p,
            &[InputEntry::Flush {
                skip_time: None,
                advance_time: Some(1514804400000),
            }],
        );
        assert!(buckets.is_empty());
        assert_eq!(p.state.finalized_end, Some(1514804400000));
        // With latency, the watermark starts latency before the bucket, as for a first record.
        let mut late = pipeline(serde_json::json!({"function": "count"}), Some("2h"));
        run(&mut late, &[advance(1514804400000)]);
        assert_eq!(late.state.finalized_end, Some(1514804400000 - 2 * HOUR));
        let buckets = run(&mut late, &[data(&[1514797200 + 60])]);
        assert!(buckets.is_empty());
        assert_eq!(late.state.counts.out_of_order_timestamp_count, 0);
    }

    #[test]
    fn scheduled_events_suppress_results_or_learning() {
        let event = |skip_result, skip_model_update| InputEntry::Calendar {
            events: vec![ScheduledEvent {
                start: 1403485200000,
                end: 1403485200001,
                skip_result,
                skip_model_update,
            }],
        };
        let stamps = |entries: &[InputEntry]| {
            let mut p = airline_pipeline();
            let buckets = run(&mut p, entries);
            buckets.iter().map(|b| b.timestamp).collect::<Vec<i64>>()
        };
        let records = data(&[1403481600, 1403485200, 1403488800]);
        let all = vec![1403481600000, 1403485200000, 1403488800000];
        let end = advance(1403492400000);
        assert_eq!(stamps(&[records.clone(), end.clone()]), all);
        let without_event_hour = vec![1403481600000, 1403488800000];
        for (skip_result, skip_update, expected) in [
            (true, true, &without_event_hour),
            (true, false, &without_event_hour),
            (false, true, &all),
        ] {
            let got = stamps(&[
                event(skip_result, skip_update),
                records.clone(),
                end.clone(),
            ]);
            assert_eq!(
                &got, expected,
                "skip_result={skip_result} skip_model_update={skip_update}"
            );
        }
        // Events set later replace the earlier ones.
        let cleared = stamps(&[
            event(true, true),
            InputEntry::Calendar { events: Vec::new() },
            records,
            end,
        ]);
        assert_eq!(cleared, all);
    }

    #[test]
    fn records_before_the_watermark_are_out_of_order() {
        let mut p = airline_pipeline();
        run(
            &mut p,
            &[data(&[1403485200, 1403488800, 1403481600, 1403488900])],
        );
        assert_eq!(p.state.counts.out_of_order_timestamp_count, 1);
        assert_eq!(p.state.counts.processed_record_count, 3);
    }

    #[test]
    fn latency_holds_buckets_open() {
        let mut p = pipeline(serde_json::json!({"function": "count"}), Some("2h"));
        let t0 = 1403481600;
        // First record: the watermark starts latency before its bucket.
        run(&mut p, &[data(&[t0])]);
        assert_eq!(p.state.finalized_end, Some(t0 * 1000 - 2 * HOUR));
        // A record one bucket later is not late: bucket t0 stays open (its end + 2h is in the future).
        let buckets = run(&mut p, &[data(&[t0 + 3600, t0 + 1800])]);
        assert_eq!(p.state.counts.out_of_order_timestamp_count, 0);
        assert!(buckets.iter().all(|b| b.timestamp < t0 * 1000));
        // Three hours on, bucket t0 (2 records) is finalized.
        let buckets = run(&mut p, &[data(&[t0 + 3 * 3600])]);
        let t0_bucket = buckets.iter().find(|b| b.timestamp == t0 * 1000).unwrap();
        assert_eq!(t0_bucket.event_count, 2);
    }

    #[test]
    fn invalid_dates_are_counted_not_processed() {
        let mut p = airline_pipeline();
        let ndjson = b"{\"time\":\"yesterday\",\"airline\":\"AAL\",\"responsetime\":1}\n{\"airline\":\"AAL\"}\n".to_vec();
        run(
            &mut p,
            &[InputEntry::Data {
                input_bytes: ndjson.len() as u64,
                received_ms: 0,
                ndjson,
            }],
        );
        assert_eq!(p.state.counts.invalid_date_count, 2);
        assert_eq!(p.state.counts.processed_record_count, 0);
        assert_eq!(p.state.counts.input_record_count, 2);
    }

    /// Split mid-bucket at several offsets (records every 900 s, 1 h buckets): the second half,
    /// applied to the state restored from the bytes of a snapshot taken after a close, gives what
    /// an uninterrupted run gives, the open bucket's records included.
    #[test]
    fn resuming_from_serialized_state_matches_an_uninterrupted_run() {
        let times: Vec<i64> = (0..400)
            .map(|i| 1403481600 + i * 900 + (i * 37) % 600)
            .collect();
        for split in [199, 200, 201, 202, 203] {
            let (first, second) = times.split_at(split);
            let mut straight = airline_pipeline();
            let expected = run(
                &mut straight,
                &[data(first), data(second), advance(1_403_900_000_000)],
            );

            let mut before = airline_pipeline();
            let mut got = run(&mut before, &[data(first), InputEntry::Close]);
            let bytes = crate::store::encode(&before.state).unwrap();
            let state: PipelineState = crate::store::decode(&bytes).unwrap();
            let mut after = Pipeline::resume(
                &serde_json::from_value(serde_json::json!({"bucket_span": "1h", "detectors": [
                    {"function": "metric", "field_name": "responsetime", "by_field_name": "airline"}]}))
                .unwrap(),
                before.reader().clone(),
                state,
            );
            assert_eq!(after.state.finalized_end, before.state.finalized_end);
            got.extend(run(&mut after, &[data(second), advance(1_403_900_000_000)]));
            assert_eq!(
                after.state.counts.out_of_order_timestamp_count, 0,
                "split {split}"
            );
            assert_eq!(got, expected, "split {split}");
            assert_eq!(after.state.counts, straight.state.counts, "split {split}");
        }
    }

    #[test]
    fn a_gap_past_the_bound_is_refused_before_anything_changes() {
        let quarter_hour = serde_json::json!({"bucket_span": "15m", "detectors": [
            {"function": "mean", "field_name": "responsetime", "by_field_name": "airline"}]});
        let analysis: AnalysisConfig = serde_json::from_value(quarter_hour).unwrap();
        let fresh = || {
            let description = DataDescription {
                time_format: "epoch".into(),
                ..DataDescription::default()
            };
            let reader = RecordReader::new(&description, &analysis.analysis_fields()).unwrap();
            Pipeline::new(&analysis, Arc::new(reader)).with_max_empty_buckets(1000)
        };
        let mut p = fresh();
        p.apply_checked(1, &data(&[1_600_000_000])).unwrap();
        let before = crate::store::encode(&p.state).unwrap();
        // Ten years later: 350,000 empty buckets.
        let error = p.apply_checked(2, &data(&[1_915_360_000])).unwrap_err();
        assert!(
            matches!(&error, JobError::InvalidArgument(m) if m.contains("350") && m.contains("skip_time")),
            "{error}"
        );
        let error = p.apply_checked(2, &advance(1_915_360_000_000)).unwrap_err();
        assert!(matches!(error, JobError::InvalidArgument(_)), "{error}");
        assert_eq!(
            crate::store::encode(&p.state).unwrap(),
            before,
            "nothing changed"
        );
        // Many small gaps in one request add up; records inside the gap do not count as empty.
        let steps: Vec<i64> = (1..=3).map(|i| 1_600_000_000 + i * 400 * 900).collect();
        assert!(p.apply_checked(2, &data(&steps)).is_err());
        let dense: Vec<i64> = (1..=3000).map(|i| 1_600_000_000 + i * 900).collect();
        assert!(p.apply_checked(2, &data(&dense)).is_ok());
        // Exactly at the bound is fine; skip_time jumps a gap of any length.
        let mut q = fresh();
        q.apply_checked(1, &data(&[1_600_000_000])).unwrap();
        let at_bound = (1_600_000_000 / 900 + 1 + 1000) * 900;
        assert!(q.apply_checked(2, &data(&[at_bound])).is_ok());
        let far = 1_915_360_000_000;
        let skip_then_advance = InputEntry::Flush {
            skip_time: Some(far),
            advance_time: Some(far + 3_600_000),
        };
        assert!(q.apply_checked(3, &skip_then_advance).is_ok());
        assert!(q.apply_checked(4, &data(&[1_915_360_000 + 7200])).is_ok());
        // A stored entry was accepted once: replaying it is never refused.
        let mut r = fresh();
        r.apply(1, &data(&[1_600_000_000])).unwrap();
        assert!(r.apply(2, &data(&[1_600_000_000 + 2000 * 900])).is_ok());
    }
}
