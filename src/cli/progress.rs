//! The progress bar of long offline work (indicatif, on stderr, drawn only when stderr is a
//! terminal) and the summary line that ends it. The work runs on its own thread and publishes
//! [`Counters`]; this thread redraws from them ten times a second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::thousands;
use crate::replay::{Counters, CountersSnapshot};

/// What `Counters::total`/`done` count.
#[derive(Debug, Clone, Copy)]
pub enum Unit {
    Bytes,
    Entries,
}

/// Runs `work` while drawing its progress; returns its result, the final counters and the time.
pub fn with_progress<T: Send>(
    unit: Unit,
    counters: Arc<Counters>,
    work: impl FnOnce() -> T + Send,
) -> (T, CountersSnapshot, Duration) {
    let started = Instant::now();
    let total = counters.snapshot().total;
    let bar = ProgressBar::with_draw_target(
        (total > 0).then_some(total),
        ProgressDrawTarget::stderr_with_hz(10),
    );
    let template = match unit {
        Unit::Bytes => "{spinner} {elapsed_precise} [{wide_bar}] {bytes}/{total_bytes} {msg}",
        Unit::Entries => "{spinner} {elapsed_precise} [{wide_bar}] {pos}/{len} entries {msg}",
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    let result = std::thread::scope(|scope| {
        let worker = scope.spawn(work);
        while !worker.is_finished() {
            draw(&bar, &counters.snapshot(), started.elapsed());
            std::thread::sleep(Duration::from_millis(100));
        }
        worker.join()
    });
    let last = counters.snapshot();
    draw(&bar, &last, started.elapsed());
    bar.finish_and_clear();
    match result {
        Ok(value) => (value, last, started.elapsed()),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

fn draw(bar: &ProgressBar, now: &CountersSnapshot, elapsed: Duration) {
    bar.set_position(now.done);
    bar.set_message(format!(
        "{} records ({}/s), {} buckets",
        thousands(now.records),
        thousands(rate(now.records, elapsed)),
        thousands(now.buckets)
    ));
}

fn rate(count: u64, elapsed: Duration) -> u64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        0
    } else {
        (count as f64 / secs) as u64
    }
}

/// The closing line: `<what>: N records in T s (R records/s), B buckets, A anomaly records<tail>`.
/// Records read but not analysed are named, so a wrong time format or unsorted input shows.
pub fn summary(what: &str, counters: &CountersSnapshot, elapsed: Duration, tail: &str) -> String {
    let skipped = if counters.skipped > 0 {
        format!(
            " ({} more not analysed: out of order or without a valid time)",
            thousands(counters.skipped)
        )
    } else {
        String::new()
    };
    format!(
        "{what}: {} records in {:.2} s ({} records/s), {} buckets, {} anomaly records{tail}{skipped}",
        thousands(counters.records),
        elapsed.as_secs_f64(),
        thousands(rate(counters.records, elapsed)),
        thousands(counters.buckets),
        thousands(counters.anomaly_records),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_what_was_not_analysed() {
        let mut counters = CountersSnapshot {
            records: 7611,
            buckets: 384,
            anomaly_records: 82,
            ..CountersSnapshot::default()
        };
        let line = summary("run", &counters, Duration::from_secs(2), " -> job [j]");
        assert_eq!(
            line,
            "run: 7,611 records in 2.00 s (3,805 records/s), 384 buckets, 82 anomaly records -> job [j]"
        );
        counters.skipped = 1200;
        let line = summary("run", &counters, Duration::from_secs(2), "");
        assert!(line.ends_with("(1,200 more not analysed: out of order or without a valid time)"));
    }
}
