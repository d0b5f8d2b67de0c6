//! `aegis bench predict`: what the failure model costs in service, per vehicle: keeping the
//! feature state (a frame in), reading a minute's rows, and the model's batched evaluation of
//! the whole fleet, with the shipped model.

use std::time::Instant;

use rand::{Rng, SeedableRng, rngs::SmallRng};
use serde::Serialize;

use crate::ml::features::FleetFeatures;
use crate::ml::model::FailureModel;
use crate::model::{METRICS, TelemetryFrame, VehicleId, VehicleModel};

/// Figures from `aegis bench predict`.
#[derive(Debug, Clone, Serialize)]
pub struct PredictBench {
    /// Vehicles in the batch.
    pub vehicles: u32,
    /// Minutes of frames fed (an hour of history fills the windows first).
    pub minutes: u32,
    /// Microseconds to take one frame into a vehicle's feature state.
    pub frame_us: f64,
    /// Microseconds per vehicle to read a minute's rows (window aggregates, fleet medians).
    pub rows_us_per_vehicle: f64,
    /// Microseconds per vehicle of the model's evaluation of the whole fleet in one batch.
    pub inference_us_per_vehicle: f64,
    /// Rows, evaluation and the frames of a minute together, per vehicle and minute.
    pub total_us_per_vehicle_minute: f64,
    /// Bytes of feature state per vehicle.
    pub feature_state_bytes_per_vehicle: usize,
}

impl PredictBench {
    /// The figures for people.
    pub fn human(&self) -> String {
        format!(
            "{} vehicles: a frame in {:.2} µs; a minute's rows {:.1} µs and the model's batch {:.1} µs per vehicle; {:.0} µs per vehicle-minute in all; {} bytes of feature state per vehicle",
            self.vehicles, self.frame_us, self.rows_us_per_vehicle, self.inference_us_per_vehicle, self.total_us_per_vehicle_minute, self.feature_state_bytes_per_vehicle
        )
    }
}

/// Feeds `vehicles` an hour and `minutes` more of plausible frames (each metric at mid-range
/// with noise), timing each part, and evaluates the fleet with the shipped model each minute.
pub fn bench_predict(vehicles: u32, minutes: u32) -> anyhow::Result<PredictBench> {
    let model = FailureModel::shipped()?;
    let mut rng = SmallRng::seed_from_u64(1);
    let mut features = FleetFeatures::new();
    let base: Vec<f32> = METRICS.iter().map(|m| m.min.max(0.0) + (m.max - m.min.max(0.0)) * 0.3).collect();
    let mut frame = TelemetryFrame::default();
    let (mut frame_s, mut rows_s, mut model_s, mut frames, mut rows_n) = (0.0, 0.0, 0.0, 0u64, 0u64);
    let warm = 60;
    for minute in 0..(warm + minutes) {
        let started = Instant::now();
        for second in 0..60 {
            for v in 1..=vehicles {
                for (i, value) in frame.values.iter_mut().enumerate() {
                    *value = base[i] * (1.0 + rng.random_range(-0.02..0.02));
                }
                let model_of = VehicleModel::ALL[v as usize % 3];
                features.add(VehicleId(v), model_of, f64::from(minute * 60 + second), &frame);
            }
        }
        let fed = started.elapsed().as_secs_f64();
        if minute < warm {
            continue;
        }
        frame_s += fed;
        frames += 60 * u64::from(vehicles);
        let started = Instant::now();
        let rows = features.rows(i64::from(minute));
        rows_s += started.elapsed().as_secs_f64();
        rows_n += rows.len() as u64;
        let started = Instant::now();
        let inputs: Vec<&[f32]> = rows.iter().map(|r| r.values.as_slice()).collect();
        let predictions = model.predict(&inputs);
        model_s += started.elapsed().as_secs_f64();
        anyhow::ensure!(predictions.len() == vehicles as usize, "{} predictions for {vehicles} vehicles", predictions.len());
    }
    let per = |s: f64, n: u64| s * 1e6 / n.max(1) as f64;
    let (frame_us, rows_us, model_us) = (per(frame_s, frames), per(rows_s, rows_n), per(model_s, rows_n));
    Ok(PredictBench {
        vehicles,
        minutes,
        frame_us,
        rows_us_per_vehicle: rows_us,
        inference_us_per_vehicle: model_us,
        total_us_per_vehicle_minute: 60.0 * frame_us + rows_us + model_us,
        feature_state_bytes_per_vehicle: FleetFeatures::bytes_per_vehicle(),
    })
}
