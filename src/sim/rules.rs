//! Local rules: each vehicle watches its own sensor readings with threshold, rate-of-change
//! and persistence checks, and decides to warn, derate power, limp home or stop. Decisions act
//! on the physics through [`RuleState::decision`] and are announced as events.

use bevy::prelude::*;

use super::outbox::{Outbox, SimCounters};
use super::clock::SimClock;
use super::vehicle::{Navigation, RuleState, SensorState, Vehicle};
use crate::model::{EventKind, Metric, RULE_COUNT, RuleDecision, RuleId, TelemetryFrame, VehicleStatus};
use crate::schedule::SimSystems;

/// What a rule looks at.
#[derive(Debug, Clone, Copy)]
pub enum Signal {
    /// One metric as read.
    Metric(Metric),
    /// The lowest tyre pressure as a share of the model's nominal pressure.
    LowestTyreShare,
    /// The highest wheel-hub vibration.
    HighestWheelVibration,
    /// The thinner brake pad.
    ThinnestPad,
    /// The accelerator while the vehicle stands (or rolls back): a vehicle that cannot make
    /// headway, say up a hill on a seized bearing, reads a floored pedal at no speed.
    ThrottleAtStandstill,
}

/// The condition a rule tests.
#[derive(Debug, Clone, Copy)]
pub enum Test {
    /// Signal above the limit.
    Above(f32),
    /// Signal below the limit.
    Below(f32),
    /// Signal falling faster than this many units per second.
    FallingFaster(f32),
    /// Signal rising faster than this many units per second.
    RisingFaster(f32),
}

/// One local rule.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Which rule, as named in events.
    pub id: RuleId,
    /// What it watches.
    pub signal: Signal,
    /// When it fires.
    pub test: Test,
    /// Seconds the test must hold before the rule fires.
    pub persistence_s: u16,
    /// Only while the engine turns (oil pressure means nothing at rest).
    pub engine_running: bool,
    /// Only while the vehicle means to drive (en route or returning): a parked vehicle holds
    /// itself on a slope with the engine, which reads the same as not making headway.
    pub while_driving: bool,
    /// What the vehicle does.
    pub decision: RuleDecision,
}

const fn rule(id: RuleId, signal: Signal, test: Test, persistence_s: u16, decision: RuleDecision) -> Rule {
    Rule { id, signal, test, persistence_s, engine_running: false, while_driving: false, decision }
}

/// The rules every vehicle runs, documented in docs/RULES.md.
pub const RULES: &[Rule; RULE_COUNT] = &[
    rule(RuleId::CoolantTempHigh, Signal::Metric(Metric::CoolantTempC), Test::Above(108.0), 10, RuleDecision::Warn),
    rule(RuleId::CoolantTempVeryHigh, Signal::Metric(Metric::CoolantTempC), Test::Above(115.0), 10, RuleDecision::DeratePower),
    rule(RuleId::CoolantTempCritical, Signal::Metric(Metric::CoolantTempC), Test::Above(122.0), 10, RuleDecision::ControlledStop),
    rule(RuleId::CoolantTempRisingFast, Signal::Metric(Metric::CoolantTempC), Test::RisingFaster(0.5), 20, RuleDecision::Warn),
    rule(RuleId::CoolantLevelLow, Signal::Metric(Metric::CoolantLevelPct), Test::Below(60.0), 30, RuleDecision::Warn),
    Rule { engine_running: true, ..rule(RuleId::OilPressureLow, Signal::Metric(Metric::OilPressureKpa), Test::Below(120.0), 10, RuleDecision::LimpMode) },
    Rule { engine_running: true, ..rule(RuleId::OilPressureLost, Signal::Metric(Metric::OilPressureKpa), Test::Below(60.0), 5, RuleDecision::ControlledStop) },
    rule(RuleId::OilTempHigh, Signal::Metric(Metric::OilTempC), Test::Above(135.0), 30, RuleDecision::DeratePower),
    rule(RuleId::BrakeTempHigh, Signal::Metric(Metric::BrakeTempFrontC), Test::Above(450.0), 3, RuleDecision::DeratePower),
    rule(RuleId::BrakePadLow, Signal::ThinnestPad, Test::Below(3.0), 30, RuleDecision::Warn),
    rule(RuleId::BrakePadWornOut, Signal::ThinnestPad, Test::Below(1.5), 30, RuleDecision::LimpMode),
    rule(RuleId::TyrePressureLow, Signal::LowestTyreShare, Test::Below(0.8), 30, RuleDecision::Warn),
    rule(RuleId::TyrePressureVeryLow, Signal::LowestTyreShare, Test::Below(0.6), 10, RuleDecision::LimpMode),
    rule(RuleId::TyreDeflation, Signal::LowestTyreShare, Test::FallingFaster(0.05), 1, RuleDecision::ControlledStop),
    rule(RuleId::BatteryVoltageLow, Signal::Metric(Metric::BatteryVoltageV), Test::Below(18.0), 1, RuleDecision::Warn),
    rule(RuleId::WheelVibrationHigh, Signal::HighestWheelVibration, Test::Above(1.2), 30, RuleDecision::Warn),
    rule(RuleId::WheelVibrationSevere, Signal::HighestWheelVibration, Test::Above(2.5), 10, RuleDecision::LimpMode),
    Rule { while_driving: true, ..rule(RuleId::NoHeadway, Signal::ThrottleAtStandstill, Test::Above(60.0), 60, RuleDecision::ControlledStop) },
];

/// Bit of the RuleState that says a rule has fired.
fn bit(index: usize) -> u64 {
    1 << index
}

fn signal_value(signal: Signal, frame: &TelemetryFrame, nominal_kpa: f32) -> f32 {
    match signal {
        Signal::Metric(metric) => frame.get(metric),
        Signal::LowestTyreShare => {
            [Metric::TyrePressureFlKpa, Metric::TyrePressureFrKpa, Metric::TyrePressureRlKpa, Metric::TyrePressureRrKpa]
                .iter()
                .map(|m| frame.get(*m) / nominal_kpa)
                .fold(f32::MAX, f32::min)
        }
        Signal::HighestWheelVibration => {
            [Metric::VibrationWheelFlG, Metric::VibrationWheelFrG, Metric::VibrationWheelRlG, Metric::VibrationWheelRrG]
                .iter()
                .map(|m| frame.get(*m))
                .fold(0.0, f32::max)
        }
        Signal::ThinnestPad => frame.get(Metric::BrakePadFrontMm).min(frame.get(Metric::BrakePadRearMm)),
        Signal::ThrottleAtStandstill => {
            if frame.get(Metric::SpeedKph) < 2.0 { frame.get(Metric::ThrottlePct) } else { 0.0 }
        }
    }
}

/// The value a rule watches on this frame.
pub fn rule_signal(rule: &Rule, frame: &TelemetryFrame, nominal_kpa: f32) -> f32 {
    signal_value(rule.signal, frame, nominal_kpa)
}

/// Whether a rule's test holds on this frame, given its signal a second earlier (none before
/// a second reading: then no rate holds). Returns the signal's value when it holds.
pub fn rule_holds(rule: &Rule, frame: &TelemetryFrame, previous: Option<f32>, nominal_kpa: f32) -> Option<f32> {
    let value = rule_signal(rule, frame, nominal_kpa);
    test_holds(rule, frame, value, previous).then_some(value)
}

/// Whether a rule's test holds for its signal's `value` on `frame`.
fn test_holds(rule: &Rule, frame: &TelemetryFrame, value: f32, previous: Option<f32>) -> bool {
    if rule.engine_running && frame.get(Metric::EngineRpm) < 300.0 {
        return false;
    }
    match rule.test {
        Test::Above(limit) => value > limit,
        Test::Below(limit) => value < limit,
        Test::FallingFaster(rate) => previous.is_some_and(|p| p - value > rate),
        Test::RisingFaster(rate) => previous.is_some_and(|p| value - p > rate),
    }
}

pub(super) fn plugin(app: &mut App) {
    app.add_systems(FixedUpdate, evaluate_rules.in_set(SimSystems::Judge));
}

fn evaluate_rules(
    clock: Res<SimClock>,
    mut vehicles: Query<(&Vehicle, &SensorState, &mut RuleState, &mut Navigation)>,
    mut outbox: ResMut<Outbox>,
    mut counters: ResMut<SimCounters>,
) {
    if !clock.is_sample_step() {
        return;
    }
    for (vehicle, sensors, mut state, mut nav) in &mut vehicles {
        let Some(frame) = sensors.last else { continue };
        let nominal_kpa = vehicle.spec().tyre_kpa;
        for (index, rule) in RULES.iter().enumerate() {
            let driving = matches!(nav.status, VehicleStatus::EnRoute | VehicleStatus::Returning);
            let value = rule_signal(rule, &frame, nominal_kpa);
            let previous = Some(std::mem::replace(&mut state.previous[index], value)).filter(|p| !p.is_nan());
            let holds = ((driving || !rule.while_driving) && test_holds(rule, &frame, value, previous)).then_some(value);
            match holds {
                Some(value) => {
                    state.held_s[index] = state.held_s[index].saturating_add(1);
                    if state.held_s[index] >= rule.persistence_s && state.fired & bit(index) == 0 {
                        state.fired |= bit(index);
                        // Decisions only escalate until a repair or a `resume` command.
                        state.decision = state.decision.max(Some(rule.decision));
                        counters.local_rule_actions += 1;
                        outbox.event(
                            vehicle.id,
                            EventKind::RuleTriggered { rule: rule.id, metric: signal_name(rule.signal).into(), value, decision: rule.decision },
                        );
                        apply_decision(rule.decision, &mut nav);
                    }
                }
                None => {
                    state.held_s[index] = 0;
                    // Re-arm, so a recurrence is reported again.
                    state.fired &= !bit(index);
                }
            }
        }
    }
}

fn apply_decision(decision: RuleDecision, nav: &mut Navigation) {
    match decision {
        RuleDecision::ControlledStop if matches!(nav.status, VehicleStatus::EnRoute | VehicleStatus::Returning) => {
            nav.status = VehicleStatus::Stopped;
        }
        RuleDecision::LimpMode if nav.status == VehicleStatus::EnRoute => {
            nav.status = VehicleStatus::Returning;
            nav.maintenance_due = true;
        }
        RuleDecision::DeratePower => nav.maintenance_due = true,
        _ => {}
    }
}

fn signal_name(signal: Signal) -> &'static str {
    match signal {
        Signal::Metric(metric) => metric.name(),
        Signal::LowestTyreShare => "tyre_pressure_min_share",
        Signal::HighestWheelVibration => "vibration_wheel_max_g",
        Signal::ThinnestPad => "brake_pad_min_mm",
        Signal::ThrottleAtStandstill => "throttle_pct_at_standstill",
    }
}
