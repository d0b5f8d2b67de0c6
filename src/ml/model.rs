//! The failure model: a multilayer perceptron (Burn, on its pure-Rust CPU backend) from a row
//! of features to, for each component, the probability of failing within each horizon and the
//! hours left when a failure is near; and its file, which carries everything needed to use it
//! and to know what it is: the feature list and their normalisation, the components and
//! horizons, the probability calibration, the dataset it saw and its validation figures.
//!
//! The file: the 12 bytes `AEGIS-MODEL\n`, the metadata's length as a little-endian `u32`,
//! the metadata as JSON ([`ModelMeta`]), then the weights as a burnpack record.

use std::path::Path;

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::store::ModuleRecord;
use burn::tensor::activation::relu;
use burn::tensor::{Bytes, Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::MlError;
use super::features::{FEATURES, feature_list_difference};
use super::labels::{COMPONENTS, HORIZONS_H};

/// The model file format this build writes and reads.
pub const MODEL_FORMAT: u32 = 1;

const MAGIC: &[u8; 12] = b"AEGIS-MODEL\n";

/// Probability outputs: one per component and horizon, component-major.
pub const PROBABILITIES: usize = COMPONENTS.len() * HORIZONS_H.len();
/// All outputs: the probabilities' logits, then each component's `ln(1 + hours to failure)`.
pub const OUTPUTS: usize = PROBABILITIES + COMPONENTS.len();
/// Hours to failure beyond which the time head is not trained (and its estimate not trusted).
pub const TIME_HORIZON_H: f32 = 48.0;

/// The index of component `c`'s probability within horizon `h` (indices into [`COMPONENTS`]
/// and [`HORIZONS_H`]).
pub fn probability_index(c: usize, h: usize) -> usize {
    c * HORIZONS_H.len() + h
}

/// The network's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Architecture {
    /// Hidden layer widths, input side first.
    pub hidden: Vec<usize>,
    /// Dropout after each hidden layer, in training.
    pub dropout: f64,
}

/// The network: hidden layers with ReLU and dropout, then one linear head for every output.
#[derive(Module, Debug)]
pub struct Mlp {
    hidden: Vec<Linear>,
    dropout: Dropout,
    head: Linear,
}

impl Mlp {
    /// A freshly initialised network of `architecture` on `device`.
    pub fn new(architecture: &Architecture, device: &Device) -> Mlp {
        let mut width = FEATURES;
        let mut hidden = Vec::new();
        for &w in &architecture.hidden {
            hidden.push(LinearConfig::new(width, w).init(device));
            width = w;
        }
        Mlp { hidden, dropout: DropoutConfig::new(architecture.dropout).init(), head: LinearConfig::new(width, OUTPUTS).init(device) }
    }

    /// `[rows, FEATURES]` normalised features to `[rows, OUTPUTS]` raw outputs.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let mut x = x;
        for layer in &self.hidden {
            x = self.dropout.forward(relu(layer.forward(x)));
        }
        self.head.forward(x)
    }
}

/// A logistic recalibration of one probability output: `p = σ(a·z + b)` of its logit `z`,
/// fitted on out-of-fold predictions (Platt scaling), so that 0.8 means 80%.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Platt {
    /// Slope.
    pub a: f32,
    /// Offset.
    pub b: f32,
}

impl Platt {
    /// No recalibration.
    pub const IDENTITY: Platt = Platt { a: 1.0, b: 0.0 };

    /// The calibrated probability of logit `z`.
    pub fn probability(self, z: f32) -> f32 {
        1.0 / (1.0 + (-(self.a * z + self.b)).exp())
    }
}

/// Everything about a model but its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelMeta {
    /// [`MODEL_FORMAT`] when written.
    pub format: u32,
    /// The network's shape.
    pub architecture: Architecture,
    /// The features, in input order.
    pub features: Vec<String>,
    /// Each feature's training mean and standard deviation, subtracted and divided before
    /// the network sees it.
    pub feature_mean: Vec<f32>,
    /// See `feature_mean`.
    pub feature_std: Vec<f32>,
    /// The components predicted, in output order.
    pub components: Vec<String>,
    /// The horizons, in hours.
    pub horizons_h: Vec<u32>,
    /// One recalibration per probability output.
    pub calibration: Vec<Platt>,
    /// What it was trained on and how, and how it did in cross-validation.
    pub provenance: serde_json::Value,
}

/// One row's prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Calibrated probability that component `c` fails within horizon `h`: `[c][h]`.
    pub probability: [[f32; HORIZONS_H.len()]; COMPONENTS.len()],
    /// Estimated hours to failure of each component (meaningful when a failure is near:
    /// below [`TIME_HORIZON_H`]).
    pub hours_to_failure: [f32; COMPONENTS.len()],
}

/// A trained model, ready to predict.
#[derive(Debug)]
pub struct FailureModel {
    /// Its metadata.
    pub meta: ModelMeta,
    net: Mlp,
}

impl FailureModel {
    /// A model of `net` and `meta`, moved to the plain CPU device for inference.
    pub fn new(meta: ModelMeta, net: Mlp) -> FailureModel {
        FailureModel { meta, net: net.valid().to_device(&Device::flex()) }
    }

    /// Raw outputs for `rows` (each [`FEATURES`] long, not yet normalised): `[rows][OUTPUTS]`.
    pub fn outputs(&self, rows: &[&[f32]]) -> Vec<[f32; OUTPUTS]> {
        forward_rows(&self.net, rows, &self.meta.feature_mean, &self.meta.feature_std)
    }

    /// Predictions for `rows`, in one batch.
    pub fn predict(&self, rows: &[&[f32]]) -> Vec<Prediction> {
        self.outputs(rows).iter().map(|o| self.prediction(o)).collect()
    }

    /// The calibrated prediction of one row's raw outputs.
    pub fn prediction(&self, outputs: &[f32; OUTPUTS]) -> Prediction {
        let probability = std::array::from_fn(|c| std::array::from_fn(|h| self.meta.calibration[probability_index(c, h)].probability(outputs[probability_index(c, h)])));
        let hours_to_failure = std::array::from_fn(|c| outputs[PROBABILITIES + c].exp_m1().max(0.0));
        Prediction { probability, hours_to_failure }
    }

    /// Writes the model to `path` (through a temporary file renamed into place).
    pub fn save(&self, path: &Path) -> Result<(), MlError> {
        let bad = |problem: String| MlError::Model { path: path.to_owned(), problem };
        let meta = serde_json::to_vec(&self.meta).map_err(|e| bad(e.to_string()))?;
        let weights = self.net.clone().into_record().into_bytes().map_err(|e| bad(e.to_string()))?;
        let mut bytes = Vec::with_capacity(MAGIC.len() + 4 + meta.len() + weights.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(meta.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&meta);
        bytes.extend_from_slice(&weights);
        let partial = path.with_extension("partial");
        std::fs::write(&partial, bytes).map_err(MlError::io(&partial))?;
        std::fs::rename(&partial, path).map_err(MlError::io(path))
    }

    /// The model built into this binary: assets/models/failure.aegis when it was compiled.
    pub fn shipped() -> Result<FailureModel, MlError> {
        const SHIPPED: &[u8] = include_bytes!("../../assets/models/failure.aegis");
        Self::from_bytes(SHIPPED).map_err(|problem| MlError::Model { path: "assets/models/failure.aegis (built in)".into(), problem })
    }

    /// Reads a model file, refusing one that is malformed or that was made for other features,
    /// components or horizons than this build's, with what is wrong.
    pub fn load(path: &Path) -> Result<FailureModel, MlError> {
        let bytes = std::fs::read(path).map_err(MlError::io(path))?;
        Self::from_bytes(&bytes).map_err(|problem| MlError::Model { path: path.to_owned(), problem })
    }

    fn from_bytes(bytes: &[u8]) -> Result<FailureModel, String> {
        let Some(rest) = bytes.strip_prefix(MAGIC) else {
            return Err("not an AEGIS model file (it does not start with `AEGIS-MODEL`)".into());
        };
        let (length, rest) = rest.split_at_checked(4).ok_or("truncated before its metadata")?;
        let length = u32::from_le_bytes(length.try_into().expect("four bytes")) as usize;
        let (meta, weights) = rest.split_at_checked(length).ok_or_else(|| format!("truncated: its metadata is {length} bytes, the file holds {}", rest.len()))?;
        let meta: ModelMeta = serde_json::from_slice(meta).map_err(|e| format!("metadata: {e}"))?;
        meta.check()?;
        let device = Device::flex();
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(weights.to_vec())).map_err(|e| format!("weights: {e}"))?;
        let net = Mlp::new(&meta.architecture, &device).try_load_record(record).map_err(|e| format!("weights: {e}"))?;
        Ok(FailureModel { meta, net })
    }
}

impl ModelMeta {
    /// Whether this build can use a model with this metadata.
    pub fn check(&self) -> Result<(), String> {
        if self.format != MODEL_FORMAT {
            return Err(format!("model format {} (this build reads {MODEL_FORMAT}); retrain it with `aegis train`", self.format));
        }
        if let Some(difference) = feature_list_difference(&self.features) {
            return Err(format!("{difference}; retrain it"));
        }
        let components: Vec<&str> = COMPONENTS.iter().map(|c| c.as_str()).collect();
        if self.components != components {
            return Err(format!("it predicts components {:?}, this build {components:?}; retrain it", self.components));
        }
        if self.horizons_h != HORIZONS_H {
            return Err(format!("its horizons are {:?} h, this build's {HORIZONS_H:?} h; retrain it", self.horizons_h));
        }
        if self.feature_mean.len() != FEATURES || self.feature_std.len() != FEATURES {
            return Err(format!("its normalisation has {} means and {} deviations for {FEATURES} features", self.feature_mean.len(), self.feature_std.len()));
        }
        if self.feature_mean.iter().chain(&self.feature_std).any(|v| !v.is_finite()) || self.feature_std.iter().any(|s| *s <= 0.0) {
            return Err("its normalisation holds a non-finite mean or a deviation that is not positive".into());
        }
        if self.calibration.len() != PROBABILITIES || self.calibration.iter().any(|p| !(p.a.is_finite() && p.b.is_finite())) {
            return Err(format!("its calibration needs {PROBABILITIES} finite pairs, it has {}", self.calibration.len()));
        }
        if self.architecture.hidden.is_empty() || self.architecture.hidden.iter().any(|&w| w == 0 || w > 4096) || !(0.0..1.0).contains(&self.architecture.dropout) {
            return Err(format!("its architecture {:?} is not one this build makes", self.architecture));
        }
        Ok(())
    }
}

/// Raw outputs of `net` (on the plain CPU device) for `rows`, normalised by `mean` and `std`, in
/// one batch: `[rows][OUTPUTS]`.
pub fn forward_rows(net: &Mlp, rows: &[&[f32]], mean: &[f32], std: &[f32]) -> Vec<[f32; OUTPUTS]> {
    if rows.is_empty() {
        return Vec::new();
    }
    let x = Tensor::from_data(TensorData::new(normalise(rows, mean, std), [rows.len(), FEATURES]), &Device::flex());
    let flat: Vec<f32> = net.forward(x).into_data().try_to_vec::<f32>().unwrap_or_default();
    flat.chunks_exact(OUTPUTS).map(|c| c.try_into().expect("chunks of OUTPUTS")).collect()
}

/// `rows` normalised into one row-major block.
pub fn normalise(rows: &[&[f32]], mean: &[f32], std: &[f32]) -> Vec<f32> {
    let mut x = Vec::with_capacity(rows.len() * FEATURES);
    for row in rows {
        x.extend(row.iter().zip(mean).zip(std).map(|((v, m), s)| (v - m) / s));
    }
    x
}
