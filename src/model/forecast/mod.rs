//! Forecasts: each series' model run forward from the end of the last finalized bucket, one row
//! per future bucket with the 95% interval and the prediction.
//!
//! Owns what can be forecast (Elasticsearch's prerequisites and their messages) and the rows.
//! Reads the model only (`&AnomalyDetector`): a forecast never changes the model, so it needs no
//! place in the input log and a replay stays exactly what it was. The job layer decides when it
//! runs, gives it the ids and times, and stores the rows.

use crate::model::detector::AnomalyDetector;
use crate::model::interval::CONFIDENCE;
use crate::model::model_plot::{model_feature, SeriesFields};

/// Why a forecast cannot run, in ml-cpp's words (ES prefixes them with `Cannot run forecast: `).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForecastError {
    NoDataProcessed,
    PopulationOnly,
    NoSupportedFunction,
    MemoryLimit { limit_bytes: u64 },
}

impl std::fmt::Display for ForecastError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ForecastError::NoDataProcessed => f.write_str(
                "Forecast cannot be executed as job requires data to have been processed and modeled",
            ),
            ForecastError::PopulationOnly => {
                f.write_str("Forecast is not supported for population analysis")
            }
            ForecastError::NoSupportedFunction => {
                f.write_str("Forecast is not supported for the used functions")
            }
            ForecastError::MemoryLimit { limit_bytes } => write!(
                f,
                "Forecast cannot be executed as forecast memory usage is predicted to exceed {}MB",
                limit_bytes >> 20
            ),
        }
    }
}

/// Elasticsearch's message when no series has enough history (the forecast still finishes).
pub const INSUFFICIENT_HISTORY: &str = "Insufficient history to forecast for all models";

/// Rough bytes one forecast row costs while it is built and written.
const ROW_BYTES: u64 = 256;

/// One forecast bucket of one series' feature.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastRow {
    /// Bucket start, epoch ms.
    pub timestamp: i64,
    pub detector_index: usize,
    pub model_feature: &'static str,
    pub series: SeriesFields,
    pub lower: f64,
    pub prediction: f64,
    pub upper: f64,
}

/// A forecast over `[start_ms, end_ms)` in buckets of `bucket_span_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForecastWindow {
    pub start_ms: i64,
    pub end_ms: i64,
    pub bucket_span_ms: i64,
}

impl ForecastWindow {
    fn buckets(&self) -> impl Iterator<Item = (u64, i64)> + '_ {
        let span = self.bucket_span_ms.max(1);
        (0u64..)
            .map(move |k| (k, self.start_ms.saturating_add(k as i64 * span)))
            .take_while(move |(_, t)| *t < self.end_ms)
    }
}

/// What a forecast of a model would cover: checked before any row is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForecastPlan {
    /// Series features with a model.
    pub models: usize,
    /// Those with enough history to forecast.
    pub forecastable: usize,
    /// Model bytes of the forecastable series plus the rows: `forecast_memory_bytes`.
    pub memory_bytes: u64,
    pub rows: u64,
}

/// Checks Elasticsearch's prerequisites and sizes the forecast; `max_memory_bytes` bounds it.
pub fn plan(
    detector: &AnomalyDetector,
    window: ForecastWindow,
    max_memory_bytes: u64,
) -> Result<ForecastPlan, ForecastError> {
    let detectors = detector.detectors();
    if !detectors.iter().any(|d| !d.has_over_field()) {
        return Err(ForecastError::PopulationOnly);
    }
    if !detectors
        .iter()
        .any(|d| !d.has_over_field() && !d.features().is_empty())
    {
        return Err(ForecastError::NoSupportedFunction);
    }
    let start = window.start_ms.div_euclid(1000);
    let mut plan = ForecastPlan {
        models: 0,
        forecastable: 0,
        memory_bytes: 0,
        rows: 0,
    };
    let buckets = window.buckets().count() as u64;
    for d in detectors.iter().filter(|d| !d.has_over_field()) {
        for entry in d.series().entries() {
            for model in entry.models.iter().take(d.features().len()) {
                plan.models += 1;
                if model.interval(start, CONFIDENCE).is_some() {
                    plan.forecastable += 1;
                    plan.memory_bytes += model.approximate_bytes() as u64 + buckets * ROW_BYTES;
                    plan.rows += buckets;
                }
            }
        }
    }
    if plan.memory_bytes > max_memory_bytes {
        return Err(ForecastError::MemoryLimit {
            limit_bytes: max_memory_bytes,
        });
    }
    Ok(plan)
}

/// The forecast rows, series by series (detector, then series order), each in time order.
pub fn run(detector: &AnomalyDetector, window: ForecastWindow) -> Vec<ForecastRow> {
    let mut rows = Vec::new();
    for d in detector.detectors().iter().filter(|d| !d.has_over_field()) {
        for entry in d.series().entries() {
            for ((feature, _), model) in d.features().iter().zip(&entry.models) {
                let series = SeriesFields::of(d, entry);
                for (steps, t) in window.buckets() {
                    let Some(interval) =
                        model.forecast_interval(t.div_euclid(1000), steps, CONFIDENCE)
                    else {
                        break;
                    };
                    rows.push(ForecastRow {
                        timestamp: t,
                        detector_index: d.detector_index(),
                        model_feature: model_feature(d.function(), *feature),
                        series: series.clone(),
                        lower: interval.lower,
                        prediction: interval.median,
                        upper: interval.upper,
                    });
                }
            }
        }
    }
    rows
}

#[cfg(test)]
mod tests;
