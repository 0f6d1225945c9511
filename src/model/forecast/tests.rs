//! Forecasts: a daily pattern is carried forward with intervals that hold it and grow with the
//! horizon; Elasticsearch's prerequisites refuse what cannot be forecast.

use serde_json::json;

use super::*;
use crate::model::model_plot::tests::{detector, feed, SPAN};
use crate::model::series::tests::TestRng;

fn daily(i: i64) -> f64 {
    let phase = (i % 24) as f64 / 24.0;
    100.0 + 30.0 * (2.0 * std::f64::consts::PI * phase).sin()
}

fn window(from: i64, buckets: i64) -> ForecastWindow {
    ForecastWindow {
        start_ms: from * SPAN,
        end_ms: (from + buckets) * SPAN,
        bucket_span_ms: SPAN,
    }
}

#[test]
fn a_daily_pattern_is_forecast() {
    let (config, mut d) = detector(
        json!({"bucket_span": "1h", "detectors": [{"function": "mean", "field_name": "value"}]}),
    );
    let mut rng = TestRng::new(5);
    let days = 14;
    feed(&config, &mut d, 0..days * 24, &[""], |i| {
        daily(i) + rng.gaussian(0.0, 2.0)
    });
    let start = days * 24;
    let before = crate::store::encode(&d).unwrap();
    let plan = plan(&d, window(start, 48), 20 << 20).expect("forecastable");
    assert_eq!((plan.models, plan.forecastable, plan.rows), (1, 1, 48));
    let rows = run(&d, window(start, 48));
    assert_eq!(
        crate::store::encode(&d).unwrap(),
        before,
        "the model is unchanged"
    );
    assert_eq!(rows.len(), 48);
    for (k, row) in rows.iter().enumerate() {
        let i = start + k as i64;
        assert_eq!(row.timestamp, i * SPAN);
        assert!((row.prediction - daily(i)).abs() < 6.0, "{k}: {row:?}");
        assert!(row.lower < daily(i) && daily(i) < row.upper, "{k}: {row:?}");
        assert_eq!(row.model_feature, "'arithmetic mean value by person'");
    }
    // Same phase a day later: a wider interval.
    let width = |r: &ForecastRow| r.upper - r.lower;
    assert!(width(&rows[30]) > width(&rows[6]));
    // The peak and the trough are told apart: it is the pattern, not a flat mean.
    assert!(rows[6].prediction - rows[18].prediction > 40.0);
}

#[test]
fn prerequisites_follow_elasticsearch() {
    let (config, mut d) = detector(
        json!({"bucket_span": "1h", "detectors": [{"function": "count", "by_field_name": "host"}]}),
    );
    feed(&config, &mut d, 0..3, &["a"], |_| 1.0);
    // Three buckets are not enough history: nothing to forecast, but no error either.
    let early = plan(&d, window(3, 24), 20 << 20).unwrap();
    assert_eq!((early.models, early.forecastable), (1, 0));
    assert!(run(&d, window(3, 24)).is_empty());
    feed(&config, &mut d, 3..40, &["a", "b"], |_| 1.0);
    let later = plan(&d, window(40, 24), 20 << 20).unwrap();
    assert_eq!(later.models, 2);
    assert_eq!(
        super::plan(&d, window(40, 100_000), 1 << 20),
        Err(ForecastError::MemoryLimit {
            limit_bytes: 1 << 20
        })
    );
    assert_eq!(
        ForecastError::MemoryLimit {
            limit_bytes: 20 << 20
        }
        .to_string(),
        "Forecast cannot be executed as forecast memory usage is predicted to exceed 20MB"
    );
    let (_, population) = detector(json!({"bucket_span": "1h", "detectors": [
        {"function": "count", "over_field_name": "client"}]}));
    assert_eq!(
        super::plan(&population, window(0, 24), 20 << 20),
        Err(ForecastError::PopulationOnly)
    );
    let (_, rare) = detector(json!({"bucket_span": "1h", "detectors": [
        {"function": "rare", "by_field_name": "client"}]}));
    assert_eq!(
        super::plan(&rare, window(0, 24), 20 << 20),
        Err(ForecastError::NoSupportedFunction)
    );
}
