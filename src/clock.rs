//! The process's one reading of the wall clock: arrival times of input, `log_time`s, snapshot
//! timestamps, task times, API key expiry. The engine never calls it: its callers (the job actor,
//! replay) read it and hand the time in, and times the pipeline needs travel inside the input
//! entries, so a replay computes exactly what the live run did.

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
