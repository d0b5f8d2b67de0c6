//! Failures that arise by themselves, as in real fleets: a scenario's `[[hazards]]` give each
//! failure mode a Weibull life, and every vehicle's component of that mode begins to fail once
//! its age reaches a threshold drawn from that life. Age is not calendar time: a component ages
//! faster under the stress that wears it (an accelerated-life model), so load, heat, hills and
//! distance bring failures sooner, and a parked vehicle ages slowly. A repair at a depot renews
//! the vehicle's parts, and with them their ages.
//!
//! The threshold is drawn once per component life by inverting the Weibull cumulative hazard
//! `H(a) = (a / η)^β`: a component already `a0` old fails at `η (H(a0) + E)^(1/β)` with `E`
//! exponential, which is the Weibull life conditioned on having survived to `a0`. Draws come
//! from a generator of the vehicle's own, seeded by the run's seed: same seed, same onsets.

use bevy::prelude::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::Exp1;

use super::clock::SimClock;
use super::failures::{InjectFailure, nominal_life_s};
use super::vehicle::{Condition, Drive, Faults, Navigation, Vehicle};
use crate::model::{FailureMode, Metric, VehicleId, VehicleStatus};
use crate::scenario::{HazardSpec, Scenario};
use crate::schedule::SimSystems;

/// One mode's hazard, as the scenario set it.
#[derive(Debug, Clone)]
struct Hazard {
    mode: FailureMode,
    /// η and the initial-age spread, in seconds of nominal-stress age.
    scale_s: f64,
    shape: f64,
    initial_age_s: f64,
    /// The degradation rate that reaches functional failure in `develops_over`.
    rate: f32,
    sensor: Option<Metric>,
}

impl Hazard {
    fn from_spec(spec: &HazardSpec) -> Self {
        Self {
            mode: spec.mode,
            scale_s: spec.characteristic_life.as_secs_f64(),
            shape: f64::from(spec.shape),
            initial_age_s: spec.initial_age.as_secs_f64(),
            rate: nominal_life_s(spec.mode) / spec.develops_over.as_secs_f32(),
            sensor: spec.sensor,
        }
    }

    /// The age at which a component `age_s` old begins to fail.
    fn onset_age(&self, age_s: f64, rng: &mut SmallRng) -> f64 {
        let survived = (age_s / self.scale_s).powf(self.shape);
        let more: f64 = rng.sample(Exp1);
        self.scale_s * (survived + more).powf(1.0 / self.shape)
    }
}

/// One vehicle's component of one mode.
#[derive(Debug, Clone)]
struct Part {
    /// Age in seconds of nominal stress.
    age_s: f64,
    /// The age at which it begins to fail.
    onset_age_s: f64,
    /// Failing now (its onset was injected), until a repair renews it.
    failing: bool,
}

/// Every vehicle's parts, by vehicle slot (V0001 is 0) and hazard; only the fleet's members
/// (the vehicles spawned here) age.
#[derive(Resource, Debug, Default)]
pub struct Hazards {
    hazards: Vec<Hazard>,
    vehicles: Vec<VehicleParts>,
}

#[derive(Debug, Clone)]
struct VehicleParts {
    rng: SmallRng,
    parts: Vec<Part>,
    /// In maintenance at the last step: the parts are renewed when it leaves.
    in_maintenance: bool,
}

impl Hazards {
    /// The scenario's hazards over a fleet of `count` vehicles, each part of an age drawn
    /// evenly up to the hazard's initial age.
    pub fn from_scenario(scenario: &Scenario, count: u32, seed: u64) -> Self {
        let hazards: Vec<Hazard> = scenario.hazards.iter().map(|h| Hazard::from_spec(h.get_ref())).collect();
        let vehicles = (1..=count)
            .map(|id| {
                // Its own stream: hazards draw nothing from the sensors' noise or the drivers'.
                let mut rng = SmallRng::seed_from_u64(super::vehicle::spawn::vehicle_seed(seed ^ 0x4841_5A41_5244_5321, VehicleId(id)));
                let parts = hazards
                    .iter()
                    .map(|hazard| {
                        let age_s = hazard.initial_age_s * rng.random::<f64>();
                        Part { age_s, onset_age_s: hazard.onset_age(age_s, &mut rng), failing: false }
                    })
                    .collect();
                VehicleParts { rng, parts, in_maintenance: false }
            })
            .collect();
        Self { hazards, vehicles }
    }
}

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<Hazards>();
    app.add_systems(FixedUpdate, age_parts.in_set(SimSystems::Failures).before(super::failures::release_scheduled));
}

/// How fast a part of `mode` ages now, against 1 at nominal stress: load and heat (twice as
/// fast for every 10 °C over the part's design temperature, the rule of thumb of Arrhenius
/// ageing), hills and braking, distance. A parked vehicle's parts age at a tenth of the rate or
/// less, but for the battery and the sensors, which age by the calendar.
fn stress(mode: FailureMode, drive: &Drive, c: &Condition) -> f32 {
    let heat = |celsius: f32, design: f32| 2f32.powf((celsius - design) / 10.0).clamp(0.25, 8.0);
    let running = if drive.engine_on { 1.0 } else { 0.0 };
    let moving = (drive.speed_mps.abs() / 12.0).min(3.0);
    match mode {
        FailureMode::CoolantLeak => 0.1 + running * (1.0 + 2.0 * drive.engine_load) * heat(c.coolant_c, 90.0),
        FailureMode::OilPumpFailure => 0.05 + running * (1.0 + 2.0 * drive.engine_load) * heat(c.oil_c, 100.0),
        FailureMode::BrakePadWear => 0.05 + (drive.brake_power_w[0] / 40_000.0).min(3.0) + 8.0 * drive.grade.abs() * moving,
        FailureMode::BatteryDegradation => heat(c.battery_c, 20.0) + (c.battery_a.abs() / 100.0).min(2.0),
        FailureMode::SlowPuncture => 0.05 + moving,
        FailureMode::WheelBearingWear => 0.05 + moving * (0.6 + 0.8 * drive.engine_load),
        FailureMode::SensorStuck | FailureMode::SensorDrift => 1.0,
    }
}

/// Ages every part by the second just gone (once a second: stress changes little within one),
/// renews a repaired vehicle's, and injects the onsets due.
fn age_parts(
    clock: Res<SimClock>,
    mut hazards: ResMut<Hazards>,
    vehicles: Query<(&Vehicle, &Drive, &Condition, &Faults, &Navigation)>,
    mut inject: MessageWriter<InjectFailure>,
) {
    if hazards.hazards.is_empty() || !clock.is_sample_step() {
        return;
    }
    let Hazards { hazards, vehicles: fleet_parts } = &mut *hazards;
    for (vehicle, drive, condition, faults, nav) in &vehicles {
        let Some(own) = fleet_parts.get_mut(vehicle.id.0 as usize - 1) else { continue };
        let in_maintenance = nav.status == VehicleStatus::InMaintenance;
        if own.in_maintenance && !in_maintenance {
            // Repaired: new parts, new lives.
            for (part, hazard) in own.parts.iter_mut().zip(hazards.iter()) {
                *part = Part { age_s: 0.0, onset_age_s: hazard.onset_age(0.0, &mut own.rng), failing: false };
            }
        }
        own.in_maintenance = in_maintenance;
        for (part, hazard) in own.parts.iter_mut().zip(hazards.iter()) {
            if part.failing {
                continue;
            }
            // A second of age at this stress.
            part.age_s += f64::from(stress(hazard.mode, drive, condition));
            // A fault of the mode injected by hand or by the scenario counts as this part's.
            if part.age_s >= part.onset_age_s && !faults.0.iter().any(|f| f.mode == hazard.mode) {
                part.failing = true;
                inject.write(InjectFailure { vehicle: vehicle.id, mode: hazard.mode, rate: hazard.rate, initial_severity: 0.0, sensor: hazard.sensor });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::model::FailureMode;
    use crate::sim::hazards::Hazard;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    #[test]
    fn onset_ages_follow_the_weibull_life_and_its_survivors() {
        let hazard = Hazard { mode: FailureMode::CoolantLeak, scale_s: 100.0, shape: 2.0, initial_age_s: 0.0, rate: 1.0, sensor: None };
        let mut rng = SmallRng::seed_from_u64(3);
        let n = 100_000;
        let new: Vec<f64> = (0..n).map(|_| hazard.onset_age(0.0, &mut rng)).collect();
        // The share failed by η is 1 - 1/e; the Weibull mean is η Γ(1 + 1/β) = 88.62 for β = 2.
        let by_scale = new.iter().filter(|a| **a <= 100.0).count() as f64 / n as f64;
        assert!((by_scale - (1.0 - (-1.0f64).exp())).abs() < 0.005, "{by_scale}");
        let mean = new.iter().sum::<f64>() / n as f64;
        assert!((mean - 88.62).abs() < 0.5, "{mean}");
        // Of parts that reached 100, as many fail by 150 as the life says: 1 - exp(1 - 2.25).
        let old: Vec<f64> = (0..n).map(|_| hazard.onset_age(100.0, &mut rng)).collect();
        assert!(old.iter().all(|a| *a >= 100.0));
        let by_150 = old.iter().filter(|a| **a <= 150.0).count() as f64 / n as f64;
        assert!((by_150 - (1.0 - (-1.25f64).exp())).abs() < 0.005, "{by_150}");
    }
}
