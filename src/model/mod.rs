//! Model: detector functions, one statistical model per series, probabilities and 0..100 scores.
//! Pure: no I/O, no tokio, no sled. The whole state is serde-serializable (bincode) so a snapshot
//! is exactly `bincode(AnomalyDetector)`.
//!
//! The job pipeline owns time: it decides which bucket a record belongs to and when a bucket is
//! finalized, then calls [`AnomalyDetector::add_record`], [`AnomalyDetector::finalize_bucket`],
//! [`AnomalyDetector::interim_bucket`] and [`AnomalyDetector::discard_bucket`]. The model owns
//! everything about values: per-bucket accumulators, per-series models, scoring and normalization.
//!
//! Determinism: the same calls in the same order give bit-identical results and state (no wall
//! clock, no unseeded randomness, no iteration over hash maps when producing output). Replay after a
//! restart depends on this.

mod accumulator;
pub mod config;
mod detector;
mod detector_model;
mod distribution;
pub mod function;
mod memory;
mod predictor;
mod profile;
pub mod result;
pub mod score;
pub mod series;
mod series_table;

pub use config::{AnalysisConfig, AnalysisLimits, Detector, TimeSpan};
pub use detector::AnomalyDetector;
pub use function::{DetectorFunction, Tail};
pub use result::{AnomalyRecord, BucketInfluencer, BucketResult, ModelSizeStats};
