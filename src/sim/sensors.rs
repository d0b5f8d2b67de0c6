//! Sensors: once per simulated second, every vehicle reads its physical state through noisy,
//! possibly faulty sensors and sends the frame as telemetry, with ground truth beside it.
//! Heartbeats and status changes go out here too.

use std::sync::LazyLock;

use bevy::prelude::*;
use rand::Rng;
use rand_distr::StandardNormal;

use super::clock::{PHYSICS_HZ, SimClock};
use super::environment::{Environment, EnvironmentModel};
use super::failures::{corrupt_reading, truth_of};
use super::outbox::Outbox;
use super::vehicle::{Condition, Drive, Faults, Navigation, SensorState, Vehicle};
use crate::model::{HEARTBEAT_INTERVAL_S, Body, EventKind, Heartbeat, METRIC_COUNT, METRICS, Metric, Telemetry, TelemetryFrame, VehicleStatus};
use crate::schedule::SimSystems;


pub(super) fn plugin(app: &mut App) {
    app.add_systems(FixedUpdate, sample_telemetry.in_set(SimSystems::Sample));
    app.add_systems(FixedUpdate, (send_heartbeats, announce_status).chain().in_set(SimSystems::Report));
}

/// How a sensor's reading departs from the truth.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Noise {
    /// None: counted or integrated (gear, position, odometer).
    Exact,
    /// A measurement's noise, independent from one reading to the next; its standard deviation
    /// a share of the metric's range.
    White { share: f32 },
    /// An error that carries over from one reading to the next, so it drifts rather than
    /// jumping every reading: an estimate's ([`Metric::is_estimate`]: the vehicle's own model
    /// of what it measures), or a temperature probe's (its thermal lag and the controller's
    /// smoothing). A first-order autoregressive process with the same standard deviation as
    /// [`Noise::White`]: as far off at any one reading, but not from one reading to the next,
    /// which is also what lets a store compress it. Each second the error keeps `keep` of
    /// itself and takes `fresh` of a new draw; made by [`Noise::drifting`].
    Drifting { share: f32, keep: f32, fresh: f32 },
}

impl Noise {
    /// An error correlated over `tau_s` seconds: one second of the process keeps
    /// its variance at 1 from any start drawn from it.
    fn drifting(share: f32, tau_s: f32) -> Self {
        let keep = (-1.0 / tau_s).exp();
        Noise::Drifting { share, keep, fresh: (1.0 - keep * keep).sqrt() }
    }

    /// The standard deviation of the error, as a share of the metric's range (what the
    /// resolutions are checked against).
    #[cfg(test)]
    fn share(self) -> f32 {
        match self {
            Noise::Exact => 0.0,
            Noise::White { share } | Noise::Drifting { share, .. } => share,
        }
    }
}

/// Every metric's noise, in metric order, worked out once rather than at every reading.
static NOISE: LazyLock<[Noise; METRIC_COUNT]> = LazyLock::new(|| std::array::from_fn(|i| noise_of(Metric::ALL[i])));

/// Each metric's noise. A noisy metric's resolution is the coarsest 1-2-5 step within one
/// standard deviation (a test checks): rounding to it adds at most a twelfth of the noise's
/// variance, and each reading costs a store about a bit less than at half the step.
fn noise_of(metric: Metric) -> Noise {
    use Metric::*;
    let share = match metric {
        Gear | OdometerKm | PositionXM | PositionZM => return Noise::Exact,
        ThrottlePct | BrakePedalPct | FuelLevelPct | BrakePadFrontMm | BrakePadRearMm => 0.0005,
        _ => 0.002,
    };
    // A temperature probe's reading lags the fluid, disc or tyre by seconds, and the controller
    // smooths it further: its error changes over about ten.
    if metric.spec().unit == "°C" {
        return Noise::drifting(share, 10.0);
    }
    if !metric.is_estimate() {
        return Noise::White { share };
    }
    // How long each estimate's error takes to change: a model's state (charge, wear) slowly,
    // a controller's torque model within a minute, what the road does within half of one.
    let tau_s = match metric {
        BrakePadFrontMm | BrakePadRearMm => 3600.0,
        BatterySocPct | BatteryResistanceMohm | FuelLevelPct | CoolantLevelPct => 600.0,
        AltitudeM => 300.0,
        EngineLoadPct | EnginePowerKw | FuelRateLph => 60.0,
        _ => 30.0,
    };
    Noise::drifting(share, tau_s)
}

/// One reading's error, in the metric's units: `normal` is this reading's standard normal draw,
/// and `drift` the metric's carried error in standard deviations, moved on by one second.
fn reading_error(noise: Noise, range: f32, normal: f32, drift: &mut f32) -> f32 {
    match noise {
        Noise::Exact => 0.0,
        Noise::White { share } => normal * share * range,
        Noise::Drifting { share, keep, fresh } => {
            *drift = keep * *drift + fresh * normal;
            *drift * share * range
        }
    }
}

/// The true value of every metric, before the sensors see it.
pub fn true_frame(vehicle: &Vehicle, drive: &Drive, c: &Condition, env: &Environment, ambient_c: f32, position: Vec3) -> TelemetryFrame {
    let spec = vehicle.spec();
    let mut f = TelemetryFrame::default();
    let speed = drive.speed_mps.max(0.0);
    let rough = 0.04 + 0.006 * speed;
    let mut set = |m: Metric, v: f32| f.set(m, v);
    set(Metric::SpeedKph, speed * 3.6);
    set(Metric::EngineRpm, drive.rpm);
    set(Metric::EngineLoadPct, drive.engine_load * 100.0);
    set(Metric::ThrottlePct, drive.throttle * 100.0);
    set(Metric::BrakePedalPct, drive.brake * 100.0);
    set(Metric::Gear, if drive.engine_on { f32::from(drive.gear) } else { 0.0 });
    set(Metric::EnginePowerKw, drive.engine_power_w / 1000.0);
    set(Metric::CoolantTempC, c.coolant_c);
    set(Metric::OilTempC, c.oil_c);
    set(Metric::IntakeAirTempC, c.intake_c);
    set(Metric::TransmissionTempC, c.transmission_c);
    set(Metric::OilPressureKpa, c.oil_kpa);
    set(Metric::CoolantLevelPct, c.coolant_level * 100.0);
    set(Metric::FuelLevelPct, drive.fuel_l / spec.tank_l * 100.0);
    set(Metric::FuelRateLph, drive.fuel_rate_lph);
    set(Metric::BatteryVoltageV, c.battery_v);
    set(Metric::BatteryCurrentA, c.battery_a);
    set(Metric::BatterySocPct, c.soc * 100.0);
    set(Metric::BatteryTempC, c.battery_c);
    set(Metric::BatteryResistanceMohm, c.battery_mohm);
    set(Metric::BrakePadFrontMm, c.pad_mm[0]);
    set(Metric::BrakePadRearMm, c.pad_mm[1]);
    set(Metric::BrakeTempFrontC, c.brake_c[0]);
    set(Metric::BrakeTempRearC, c.brake_c[1]);
    let tyres = [
        (Metric::TyrePressureFlKpa, Metric::TyreTempFlC, Metric::VibrationWheelFlG),
        (Metric::TyrePressureFrKpa, Metric::TyreTempFrC, Metric::VibrationWheelFrG),
        (Metric::TyrePressureRlKpa, Metric::TyreTempRlC, Metric::VibrationWheelRlG),
        (Metric::TyrePressureRrKpa, Metric::TyreTempRrC, Metric::VibrationWheelRrG),
    ];
    for (wheel, (pressure, temp, vibration)) in tyres.into_iter().enumerate() {
        set(pressure, c.tyre_kpa[wheel]);
        set(temp, c.tyre_c[wheel]);
        // A worn bearing rumbles in proportion to wheel speed; a blown tyre flails.
        let bearing = c.bearing_wear[wheel] * (1.0 + 0.5 * speed);
        let flat = if c.tyre_blown[wheel] { 2.5 } else { 0.0 };
        set(vibration, rough + bearing + flat);
    }
    set(Metric::VibrationChassisG, rough * 1.5 + c.bearing_wear.iter().sum::<f32>() * 0.1);
    set(Metric::VibrationEngineG, if drive.engine_on { 0.08 + drive.rpm / 12_000.0 + c.engine_damage * 1.5 } else { 0.0 });
    set(Metric::PositionXM, position.x);
    set(Metric::PositionZM, position.z);
    set(Metric::AltitudeM, drive.altitude_m);
    set(Metric::HeadingDeg, drive.heading.to_degrees().rem_euclid(360.0));
    set(Metric::AccelLongG, drive.accel_mps2 / super::dynamics::G);
    set(Metric::AccelLatG, drive.lateral_mps2 / super::dynamics::G);
    set(Metric::YawRateDps, drive.yaw_rate.to_degrees());
    set(Metric::GradePct, drive.grade * 100.0);
    set(Metric::OdometerKm, (drive.odometer_m / 1000.0) as f32);
    set(Metric::AmbientTempC, ambient_c);
    set(Metric::PrecipitationMmH, env.precipitation_mm_h);
    set(Metric::RoadFriction, env.road_friction);
    set(Metric::WindSpeedMps, env.wind_mps);
    f
}

#[allow(clippy::too_many_arguments)]
fn sample_telemetry(
    clock: Res<SimClock>,
    env: Res<Environment>,
    env_model: Res<EnvironmentModel>,
    mut vehicles: Query<(&Vehicle, &Transform, &Drive, &Condition, &Faults, &Navigation, &mut SensorState)>,
    mut outbox: ResMut<Outbox>,
) {
    if !clock.is_sample_step() {
        return;
    }
    let now = clock.seconds();
    for (vehicle, transform, drive, condition, faults, nav, mut sensors) in &mut vehicles {
        if nav.status == VehicleStatus::Offline {
            continue;
        }
        let ambient = env_model.ambient_at(&env, drive.altitude_m);
        let truth = true_frame(vehicle, drive, condition, &env, ambient, transform.translation);
        let mut reading = TelemetryFrame::default();
        for (i, spec) in METRICS.iter().enumerate() {
            let metric = Metric::ALL[i];
            let normal: f32 = sensors.rng.sample(StandardNormal);
            let mut value = truth.values[i] + reading_error(NOISE[i], spec.max - spec.min, normal, &mut sensors.carried_error[i]);
            for failure in &faults.0 {
                value = corrupt_reading(failure, metric, value);
            }
            // Real sensors saturate at the ends of their range, and report in whole steps.
            reading.values[i] = spec.quantise(value.clamp(spec.min, spec.max));
        }
        sensors.last = Some(reading);
        outbox.send(vehicle.id, Body::Telemetry(Box::new(Telemetry { metrics: reading, truth: truth_of(faults, now) })));
    }
}

/// Each vehicle's heartbeat every [`HEARTBEAT_INTERVAL_S`], on a whole second set by its id:
/// a fifth of the fleet each second rather than all of it every fifth second, so neither the
/// outbox nor the bus nor the centre sees the whole fleet's heartbeats in one step.
fn send_heartbeats(clock: Res<SimClock>, vehicles: Query<(&Vehicle, &Navigation)>, mut outbox: ResMut<Outbox>) {
    if !clock.is_sample_step() {
        return;
    }
    let second = clock.steps / u64::from(PHYSICS_HZ);
    let uptime_s = clock.seconds();
    for (vehicle, nav) in &vehicles {
        if (second + u64::from(vehicle.id.0)).is_multiple_of(HEARTBEAT_INTERVAL_S) && nav.status != VehicleStatus::Offline {
            outbox.send(vehicle.id, Body::Heartbeat(Heartbeat { status: nav.status, uptime_s }));
        }
    }
}

fn announce_status(mut vehicles: Query<(&Vehicle, &mut Navigation)>, mut outbox: ResMut<Outbox>) {
    for (vehicle, mut nav) in &mut vehicles {
        if nav.status != nav.announced_status {
            outbox.event(vehicle.id, EventKind::StatusChanged { from: nav.announced_status, to: nav.status });
            nav.announced_status = nav.status;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::sim::sensors::{Noise, noise_of, reading_error};
    use crate::model::{METRICS, Metric};
    use rand::{Rng, SeedableRng, rngs::SmallRng};
    use rand_distr::StandardNormal;

    /// The next step after `step` in the series 1, 2, 5, 10, 20, 50... (times any power of ten).
    fn coarser(step: f64) -> f64 {
        let decade = 10f64.powf(step.log10().floor());
        match (step / decade).round() as u32 {
            1 => 2.0 * decade,
            2 => 5.0 * decade,
            _ => 10.0 * decade,
        }
    }

    #[test]
    fn each_noisy_resolution_is_the_coarsest_step_within_its_noise_and_quantised_readings_read_back_the_same() {
        for (spec, &metric) in METRICS.iter().zip(Metric::ALL) {
            let sigma = f64::from(noise_of(metric).share() * (spec.max - spec.min));
            if sigma > 0.0 {
                // A 1-2-5 step, the largest at or under one standard deviation (with a margin
                // for the f32 shares).
                assert!(spec.resolution <= sigma * 1.000_001, "{}: resolution {} is coarser than its noise {sigma}", spec.name, spec.resolution);
                assert!(coarser(spec.resolution) > sigma * 1.000_001, "{}: resolution {} could be {} within its noise {sigma}", spec.name, spec.resolution, coarser(spec.resolution));
            }
            for value in [spec.min, spec.max, (spec.min + spec.max) / 2.0 + 0.123] {
                let quantised = spec.quantise(value);
                assert_eq!(spec.from_steps(spec.steps(quantised).unwrap()), quantised, "{}: {value}", spec.name);
            }
        }
    }

    /// Sample standard deviation of the errors, and of their changes from one reading to the next.
    fn spread(noise: Noise, readings: usize) -> (f64, f64) {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut drift: f32 = rng.sample(StandardNormal);
        let errors: Vec<f64> = (0..readings).map(|_| f64::from(reading_error(noise, 1.0, rng.sample(StandardNormal), &mut drift))).collect();
        let sd = |xs: &[f64]| {
            let mean = xs.iter().sum::<f64>() / xs.len() as f64;
            (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64).sqrt()
        };
        let steps: Vec<f64> = errors.windows(2).map(|w| w[1] - w[0]).collect();
        (sd(&errors), sd(&steps))
    }

    #[test]
    fn an_estimates_error_is_as_large_as_a_measurements_but_changes_slowly() {
        let (white, white_step) = spread(Noise::White { share: 0.01 }, 200_000);
        let (drifting, drifting_step) = spread(Noise::drifting(0.01, 100.0), 200_000);
        assert!((white - 0.01).abs() < 0.0005, "white noise's deviation {white}");
        assert!((drifting - 0.01).abs() < 0.001, "an estimate's deviation {drifting}");
        // Independent errors change by √2 σ a reading; one correlated over 100 s by √(2/100) σ.
        assert!((white_step / white - 2f64.sqrt()).abs() < 0.02, "{white_step}");
        assert!((drifting_step / drifting - (2.0f64 / 100.0).sqrt()).abs() < 0.02, "{drifting_step}");
        assert_eq!(spread(Noise::Exact, 10), (0.0, 0.0));
    }
}
