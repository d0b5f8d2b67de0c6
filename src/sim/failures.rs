//! Failure injection and progression: each mode degrades its component the way the real fault
//! would, reaches functional failure, and is recorded as ground truth. Depots repair them.

use bevy::prelude::*;
use rand::Rng;

use super::clock::{SimClock, STEP_S};
use super::outbox::{Outbox, SimCounters};
use super::vehicle::{ActiveFailure, BATTERY_MOHM, Condition, Drive, Faults, Navigation, PAD_MM, RuleState, SensorState, Vehicle};
use super::environment::Environment;
use super::fleet::{FleetConfig, Members, VehicleIndex};
use crate::model::{EventKind, FailureMode, FailureTruth, Metric, METRICS, VehicleId, VehicleStatus};
use crate::schedule::SimSystems;

/// Seconds a depot takes to repair a vehicle.
pub const REPAIR_S: f32 = 1800.0;

/// A request to start a failure on a vehicle now (from a scenario schedule, the GUI or a test).
#[derive(Message, Debug, Clone)]
pub struct InjectFailure {
    /// Target vehicle.
    pub vehicle: VehicleId,
    /// Mode.
    pub mode: FailureMode,
    /// Multiplier on the nominal degradation rate.
    pub rate: f32,
    /// Damage at onset, 0-1.
    pub initial_severity: f32,
    /// Sensor for sensor faults; defaults to coolant temperature.
    pub sensor: Option<Metric>,
}

/// Scenario injections not yet due, latest first so the next due is at the end.
#[derive(Resource, Debug, Default)]
pub struct InjectionSchedule(pub Vec<(f64, InjectFailure)>);

impl InjectionSchedule {
    /// Builds the schedule from a scenario, skipping vehicles beyond the fleet size.
    pub fn from_scenario(scenario: &crate::scenario::Scenario, fleet_size: u32, members: Members) -> Self {
        let mut due: Vec<(f64, InjectFailure)> = scenario
            .failures
            .iter()
            .flat_map(|spanned| {
                let spec = spanned.get_ref();
                spec.vehicles.iter().filter(move |v| v.0 >= 1 && v.0 <= fleet_size && members.contains(**v)).map(move |&vehicle| {
                    (spec.start.as_secs_f64(), InjectFailure { vehicle, mode: spec.mode, rate: spec.rate, initial_severity: spec.initial_severity, sensor: spec.sensor })
                })
            })
            .collect();
        due.sort_by(|a, b| b.0.total_cmp(&a.0));
        Self(due)
    }
}

/// Seconds from new to functional failure at rate 1.
pub(super) fn nominal_life_s(mode: FailureMode) -> f32 {
    3600.0
        * match mode {
            FailureMode::CoolantLeak => 3.0,
            FailureMode::BrakePadWear => 5.0,
            FailureMode::BatteryDegradation => 6.0,
            FailureMode::SlowPuncture => 2.5,
            FailureMode::OilPumpFailure => 4.0,
            FailureMode::WheelBearingWear => 5.0,
            FailureMode::SensorStuck => 1.0,
            FailureMode::SensorDrift => 3.0,
        }
}

/// Severity at which a mode counts as functionally failed even without a sudden event.
fn failure_threshold(mode: FailureMode) -> f32 {
    match mode {
        FailureMode::OilPumpFailure => 0.85,
        FailureMode::BatteryDegradation => 0.8,
        // A drift of a third of full scale (5 % of span) makes the reading useless.
        FailureMode::SensorDrift => 1.0 / 3.0,
        _ => 1.0,
    }
}

pub(super) fn plugin(app: &mut App) {
    app.add_message::<InjectFailure>().init_resource::<InjectionSchedule>();
    app.add_systems(
        FixedUpdate,
        (release_scheduled, apply_injections, progress_failures, repair_at_depot).chain().in_set(SimSystems::Failures),
    );
}

pub(super) fn release_scheduled(clock: Res<SimClock>, mut schedule: ResMut<InjectionSchedule>, mut inject: MessageWriter<InjectFailure>) {
    let now = clock.seconds();
    while schedule.0.last().is_some_and(|(at, _)| *at <= now) {
        let (_, injection) = schedule.0.pop().expect("checked above");
        inject.write(injection);
    }
}

fn apply_injections(
    clock: Res<SimClock>,
    index: Res<VehicleIndex>,
    mut requests: MessageReader<InjectFailure>,
    mut vehicles: Query<(&Vehicle, &mut Faults, &mut SensorState)>,
    mut outbox: ResMut<Outbox>,
    mut counters: ResMut<SimCounters>,
) {
    for request in requests.read() {
        let Some((vehicle, mut faults, mut sensors)) = index.get(request.vehicle).and_then(|e| vehicles.get_mut(e).ok()) else {
            warn!("failure injection for unknown vehicle {} ignored", request.vehicle);
            continue;
        };
        if faults.0.iter().any(|f| f.mode == request.mode) {
            continue;
        }
        let wheel = sensors.rng.random_range(0..4);
        let drift_sign = if sensors.rng.random_bool(0.5) { 1.0 } else { -1.0 };
        let sensor = request.sensor.unwrap_or(Metric::CoolantTempC);
        let initial = if request.mode == FailureMode::SensorStuck { 1.0 } else { request.initial_severity };
        faults.0.push(ActiveFailure {
            mode: request.mode,
            onset_s: clock.seconds(),
            rate: request.rate,
            severity: initial,
            failed_at_s: None,
            wheel,
            sensor,
            stuck_value: sensors.last.map(|frame| frame.get(sensor)),
            drift_sign,
        });
        counters.failures_injected += 1;
        outbox.event(vehicle.id, EventKind::FailureInjected { mode: request.mode, component: request.mode.component() });
    }
}

#[allow(clippy::type_complexity)]
fn progress_failures(
    clock: Res<SimClock>,
    mut vehicles: Query<(&Vehicle, &mut Faults, &mut Condition, &Drive)>,
    mut outbox: ResMut<Outbox>,
    mut counters: ResMut<SimCounters>,
) {
    let dt = STEP_S as f32;
    let now = clock.seconds();
    for (vehicle, mut faults, mut c, drive) in &mut vehicles {
        if faults.0.is_empty() {
            continue;
        }
        let nominal_kpa = vehicle.spec().tyre_kpa;
        for failure in &mut faults.0 {
            let stress = match failure.mode {
                FailureMode::BrakePadWear => 0.4 + (drive.brake_power_w[0] / 40_000.0).min(3.0),
                FailureMode::WheelBearingWear => 0.3 + drive.speed_mps.abs() / 12.0,
                FailureMode::CoolantLeak => if c.coolant_c > 80.0 { 1.3 } else { 0.7 },
                FailureMode::SensorStuck => 0.0,
                _ => 1.0,
            };
            failure.severity = (failure.severity + dt * failure.rate * stress / nominal_life_s(failure.mode)).min(1.0);
            let s = failure.severity;
            let mut sudden = false;
            match failure.mode {
                FailureMode::CoolantLeak => c.coolant_level = c.coolant_level.min(1.0 - 0.8 * s),
                FailureMode::BrakePadWear => c.pad_mm[0] = c.pad_mm[0].min(PAD_MM * (1.0 - s)),
                FailureMode::BatteryDegradation => {
                    c.battery_mohm = c.battery_mohm.max(BATTERY_MOHM + 60.0 * s);
                    c.battery_capacity = c.battery_capacity.min(1.0 - 0.7 * s);
                }
                FailureMode::SlowPuncture => {
                    let w = failure.wheel;
                    c.tyre_cold_kpa[w] = c.tyre_cold_kpa[w].min(nominal_kpa * (1.0 - 0.85 * s));
                    // A hot, soft tyre at speed can let go all at once.
                    if !c.tyre_blown[w] && c.tyre_kpa[w] < 0.55 * nominal_kpa && drive.speed_mps > 12.0 && c.tyre_c[w] > 40.0 {
                        c.tyre_blown[w] = true;
                        sudden = true;
                    }
                }
                FailureMode::OilPumpFailure => {
                    c.oil_pump = c.oil_pump.min(1.0 - 0.8 * s);
                    if s >= failure_threshold(failure.mode) {
                        // The drive gear shears: delivery collapses.
                        c.oil_pump = 0.05;
                    }
                }
                FailureMode::WheelBearingWear => c.bearing_wear[failure.wheel] = c.bearing_wear[failure.wheel].max(s),
                FailureMode::SensorStuck | FailureMode::SensorDrift => {}
            }
            let overheated = failure.mode == FailureMode::CoolantLeak && c.coolant_c > 125.0;
            if failure.failed_at_s.is_none() && (sudden || overheated || s >= failure_threshold(failure.mode)) {
                failure.failed_at_s = Some(now);
                counters.functional_failures += 1;
                outbox.event(vehicle.id, EventKind::ComponentFailed { mode: failure.mode, component: failure.mode.component() });
            }
        }
    }
}

/// Ground truth of a vehicle's failures at time `now`.
pub fn truth_of(faults: &Faults, now: f64) -> Vec<FailureTruth> {
    faults
        .0
        .iter()
        .map(|f| {
            let remaining = (failure_threshold(f.mode) - f.severity).max(0.0);
            let per_second = f.rate / nominal_life_s(f.mode);
            let predicted = if f.failed_at_s.is_some() || remaining == 0.0 {
                f.failed_at_s
            } else if per_second > 0.0 && f.mode != FailureMode::SensorStuck {
                Some(now + f64::from(remaining / per_second))
            } else {
                None
            };
            FailureTruth {
                mode: f.mode,
                component: f.mode.component(),
                onset_s: f.onset_s,
                functional_failure_s: f.failed_at_s,
                predicted_failure_s: predicted,
                severity: f.severity,
            }
        })
        .collect()
}

/// What a drifting or stuck sensor reports instead of `truth`.
pub fn corrupt_reading(failure: &ActiveFailure, metric: Metric, truth: f32) -> f32 {
    if failure.sensor != metric {
        return truth;
    }
    match failure.mode {
        FailureMode::SensorStuck => failure.stuck_value.unwrap_or(truth),
        FailureMode::SensorDrift => {
            let spec = &METRICS[metric as usize];
            truth + failure.drift_sign * failure.severity * 0.15 * (spec.max - spec.min)
        }
        _ => truth,
    }
}

#[allow(clippy::type_complexity)]
fn repair_at_depot(
    env: Res<Environment>,
    mut vehicles: Query<(&Vehicle, &mut Navigation, &mut Faults, &mut Condition, &mut RuleState, &mut SensorState, &mut Drive)>,
    mut outbox: ResMut<Outbox>,
    mut counters: ResMut<SimCounters>,
    fleet: Res<FleetConfig>,
) {
    let dt = STEP_S as f32;
    for (vehicle, mut nav, mut faults, mut c, mut rules, mut sensors, mut drive) in &mut vehicles {
        if nav.status != VehicleStatus::InMaintenance {
            continue;
        }
        nav.repair_s -= dt;
        if nav.repair_s > 0.0 {
            continue;
        }
        let mut components: Vec<_> = faults.0.drain(..).map(|f| f.mode.component()).collect();
        if c.engine_damage > 0.0 {
            components.push(crate::model::Component::Engine);
        }
        if c.pad_mm.iter().any(|p| *p < 3.0) {
            components.push(crate::model::Component::Brakes);
        }
        components.sort();
        components.dedup();
        // New parts, fresh fluids; temperatures stay as they are.
        let fresh = Condition::new(vehicle.spec(), env.ambient_c);
        *c = Condition { coolant_c: c.coolant_c, oil_c: c.oil_c, intake_c: c.intake_c, transmission_c: c.transmission_c, brake_c: c.brake_c, tyre_c: c.tyre_c, battery_c: c.battery_c, soc: c.soc.max(0.8), ..fresh };
        *rules = RuleState::default();
        // A vehicle recovered after running dry leaves with a full tank too.
        drive.fuel_l = vehicle.spec().tank_l;
        sensors.last = None;
        nav.maintenance_due = false;
        nav.stop_commanded = false;
        nav.status = VehicleStatus::Idle;
        nav.dwell_s = fleet.dwell_s;
        counters.repairs += 1;
        for component in components {
            outbox.event(vehicle.id, EventKind::Repaired { component });
        }
    }
}
