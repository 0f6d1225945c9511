//! Model: detector functions, one statistical model per series, probabilities and 0..100 scores.
//! Pure: no I/O, no tokio, no sled. The whole state is serde-serializable (bincode) so a snapshot
//! is exactly `bincode(AnomalyDetector)`.
//!
//! The job pipeline owns time: it decides which bucket a record belongs to and when a bucket is
//! finalized, then calls [`AnomalyDetector::add_record`], [`AnomalyDetector::finalize_bucket`],
//! [`AnomalyDetector::interim_bucket`] and [`AnomalyDetector::discard_bucket`]. The model owns
//! everything about values: per-bucket accumulators, per-series models, scoring and normalization.
//!
//! Model plot (`model_plot`: bounds per finalized bucket, when the job sets a spec) and forecasts
//! (`forecast`) read the series models' intervals (`interval`; for population detectors, model
//! plot reads the population mixtures') and never change the models.
//!
//! Determinism: the same calls in the same order give bit-identical results and state (no wall
//! clock, no unseeded randomness, no iteration over hash maps when producing output). Replay after a
//! restart depends on this.
//!
//! | file | owns |
//! |------|------|
//! | `detector/` | [`AnomalyDetector`]: bucket lifecycle, the job's normalizer, results; the model's behaviour tests |
//! | `detector_model/` | one detector: records to series, function semantics, records (population ones too) |
//! | `config.rs`, `function.rs` | `analysis_config` as Elasticsearch names it; the detector functions |
//! | `accumulator.rs`, `input.rs`, `distinct.rs`, `geo.rs` | what records add up to in an open bucket |
//! | `series_table.rs` | the series of one detector |
//! | `series/` | the series model ([`series::SeriesModel`]); `periods.rs` manages found periods |
//! | `predictor.rs`, `profile.rs` | one-step predictors (levels, trend, seasonal profiles) and a profile's storage |
//! | `noise.rs` | the time-of-day widening of a series' spread |
//! | `period/` | periods found in the data |
//! | `distribution.rs`, `interval.rs` | tail probabilities; predictive intervals |
//! | `population/` | population analysis and `rare`, `freq_rare`, `time_of_*`, `lat_long` |
//! | `mixture.rs`, `rare.rs` | clusters over a line, circle or sphere; rarity of categories |
//! | `score.rs`, `misfits.rs`, `renormalize.rs` | scores and the job's score history; what leaves it; renormalization |
//! | `influence/` | influencers and their scores |
//! | `result.rs`, `causes.rs` | result documents |
//! | `rules/` | custom rules |
//! | `model_plot/`, `forecast/` | model plot rows; forecasts |
//! | `memory.rs` | `model_memory_limit` |
//! | `categorize/` | categorization (`mlcategory`) |
//!
//! What was measured on the model, kept and rejected: `docs/model-experiments.md`.

mod accumulator;
pub mod categorize;
pub mod causes;
pub mod config;
mod detector;
mod detector_model;
mod distinct;
mod distribution;
pub mod forecast;
pub mod function;
pub(crate) mod geo;
mod influence;
mod input;
mod interval;
mod memory;
mod misfits;
mod mixture;
pub mod model_plot;
mod noise;
mod period;
mod population;
mod predictor;
mod profile;
mod rare;
pub mod renormalize;
pub mod result;
pub mod rules;
pub mod score;
pub mod series;
mod series_table;

pub use config::{
    AnalysisConfig, AnalysisLimits, Detector, PerPartitionCategorization, TimeSpan, ML_CATEGORY,
};
pub use detector::AnomalyDetector;
pub use function::{DetectorFunction, Tail};
pub use result::{AnomalyRecord, BucketInfluencer, BucketResult, InfluencerResult, ModelSizeStats};
