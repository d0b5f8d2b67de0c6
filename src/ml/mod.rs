//! Failure prediction (docs/ML.md): features kept incrementally per vehicle, labels from the
//! failure ground truth, datasets as Parquet, and the model. An adapter around the centre: it
//! depends on `model/` only, never on the simulator or Bevy.
//!
//! - [`features`]: one-minute buckets per vehicle, window aggregates, the fleet comparison.
//! - [`labels`]: failure episodes and, for any moment, what fails within each horizon.
//! - [`dataset`]: a run's rows collected and labelled; Parquet files and their manifest.
//! - [`model`]: the network, its calibration, and its file with its metadata.
//! - [`online`]: the model in service, the centre's failure predictor.
//! - [`train`]: grouped folds, search, early stopping, calibration, the final model.
//! - [`metrics`]: ROC AUC, average precision, Brier score.
//! - [`plots`]: training curves as SVG.
//! - [`error`]: what can go wrong ([`MlError`]).

pub mod dataset;
pub mod error;
pub mod features;
pub mod labels;
pub mod metrics;
pub mod model;
pub mod online;
pub mod plots;
pub mod train;

pub use error::MlError;
