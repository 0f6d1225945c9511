//! Seasonal periods the model finds in the data (neither daily nor weekly) through the HTTP API:
//! a job fed weeks of a 36-hour cycle learns it, so its peaks stop being anomalies, and a cycle
//! that then fails to peak is one.

use serde_json::{json, Value};

use crate::scenarios::{max_score, Noise, START};
use crate::util::{run_hourly_job, TestServer};

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;
const CYCLE: i64 = 36 * HOUR;
/// Detection needs three cycles in its window, the new predictor one more to learn and two to
/// prove itself: two weeks is warm-up enough.
const WARM_UP: i64 = 14 * DAY;
/// The broken cycle: the one starting 24 cycles in (36 days) has no peak.
const BROKEN: i64 = START + 24 * CYCLE;

fn cycle(t: i64) -> f64 {
    let phase = (t - START).rem_euclid(CYCLE) as f64 / CYCLE as f64;
    100.0 + 30.0 * (std::f64::consts::TAU * phase).sin()
}

#[tokio::test]
async fn a_thirty_six_hour_cycle_is_learnt_and_a_missing_peak_is_found() {
    let server = TestServer::start().await;
    let mut noise = Noise(0x36);
    let docs: Vec<Value> = (0..(BROKEN + CYCLE - START) / HOUR)
        .map(|h| {
            let t = START + h * HOUR;
            // The broken cycle stays at its mean through the first half, where the peak was.
            let broken = (BROKEN..BROKEN + CYCLE / 2).contains(&t);
            let clean = if broken { 100.0 } else { cycle(t) };
            json!({"time": t, "value": clean + 3.0 * noise.normal()})
        })
        .collect();
    let detector = json!({"function": "mean", "field_name": "value"});
    let records = run_hourly_job(&server.client, "cycle-36h", detector, &docs).await;
    let clean = max_score(&records, START + WARM_UP, BROKEN, |_| true);
    let broken = max_score(&records, BROKEN, BROKEN + CYCLE / 2, |_| true);
    println!("36-hour cycle: clean max {clean:.1}, broken cycle {broken:.1}");
    assert!(clean < 25.0, "clean cycles scored {clean:.1} after warm-up");
    // The first hours without the peak score high; then the model takes the missing peak for a
    // level shift (three outliers in a row) and what follows is judged against the new level.
    assert!(
        broken >= 30.0 && broken > 2.0 * clean,
        "the missing peak scored {broken:.1} (clean max {clean:.1})"
    );
    server.stop().await;
}
