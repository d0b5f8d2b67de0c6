//! The model in service: the centre's [`FailurePredictor`], keeping each vehicle's feature
//! state as frames arrive (the same [`FleetFeatures`] the dataset was built with) and, when a
//! simulated minute closes, evaluating the whole fleet in one batch. For a component whose
//! probability is worth an alert it says which features raised it most: each feature in turn
//! set to its training mean, the drop in the logit it causes.

use std::collections::BTreeMap;

use super::features::{FeatureRow, FleetFeatures};
use super::labels::{COMPONENTS, HORIZONS_H};
use super::model::{FailureModel, OUTPUTS, probability_index};
use crate::model::{TelemetryFrame, VehicleId, VehicleModel};
use crate::orchestrator::ports::{ComponentOutlook, FailurePredictor, VehiclePrediction};

/// Probability from which a component's outlook carries its evidence (the features behind it).
const EVIDENCE_FROM: f32 = 0.3;
/// Features named as evidence.
const EVIDENCE_FEATURES: usize = 3;

/// The failure model, fed by the centre.
pub struct OnlinePredictor {
    model: FailureModel,
    features: FleetFeatures,
    names: Vec<String>,
    /// Evaluations not yet polled.
    ready: Vec<VehiclePrediction>,
}

impl OnlinePredictor {
    /// A predictor running `model` for a fleet of `models`.
    pub fn new(model: FailureModel, models: BTreeMap<VehicleId, VehicleModel>) -> Self {
        Self { model, features: FleetFeatures::for_fleet(models), names: super::features::feature_names(), ready: Vec::new() }
    }

    /// Evaluates a minute's `rows` (every vehicle with data in it), in one batch.
    fn evaluate(&mut self, rows: Vec<FeatureRow>) {
        if rows.is_empty() {
            return;
        }
        let inputs: Vec<&[f32]> = rows.iter().map(|r| r.values.as_slice()).collect();
        let outputs = self.model.outputs(&inputs);
        for (row, out) in rows.iter().zip(&outputs) {
            let prediction = self.model.prediction(out);
            let components = COMPONENTS
                .iter()
                .enumerate()
                .map(|(c, &component)| {
                    let within: Vec<(u32, f32)> = HORIZONS_H.iter().zip(prediction.probability[c]).map(|(&h, p)| (h, p)).collect();
                    let worth = within.iter().any(|(_, p)| *p >= EVIDENCE_FROM);
                    let evidence = if worth { self.evidence(&row.values, out, c) } else { Vec::new() };
                    ComponentOutlook { component, within, hours_to_failure: prediction.hours_to_failure[c], evidence }
                })
                .collect();
            self.ready.push(VehiclePrediction { vehicle: row.vehicle, sim_s: row.sim_s(), components });
        }
    }

    /// The features that raise component `c`'s longest-horizon logit most in `row`: each set to
    /// its training mean in turn (one batch of as many rows as features).
    fn evidence(&self, row: &[f32], out: &[f32; OUTPUTS], c: usize) -> Vec<(String, f32)> {
        let output = probability_index(c, HORIZONS_H.len() - 1);
        let occluded: Vec<Vec<f32>> = (0..row.len())
            .map(|f| {
                let mut copy = row.to_vec();
                copy[f] = self.model.meta.feature_mean[f];
                copy
            })
            .collect();
        let refs: Vec<&[f32]> = occluded.iter().map(Vec::as_slice).collect();
        let mut drops: Vec<(usize, f32)> = self.model.outputs(&refs).iter().enumerate().map(|(f, o)| (f, out[output] - o[output])).collect();
        drops.sort_by(|a, b| b.1.total_cmp(&a.1));
        drops.into_iter().take(EVIDENCE_FEATURES).filter(|(_, d)| *d > 0.0).map(|(f, _)| (self.names[f].clone(), row[f])).collect()
    }
}

impl FailurePredictor for OnlinePredictor {
    fn observe(&mut self, vehicle: VehicleId, sim_s: f64, frame: &TelemetryFrame) {
        let closed = self.features.observe(vehicle, sim_s, frame);
        self.evaluate(closed);
    }

    fn poll(&mut self) -> Vec<VehiclePrediction> {
        std::mem::take(&mut self.ready)
    }
}
