//! Local rules fire on what the sensors read and act on the physics.

use std::time::Duration;

use aegis::model::{EventKind, FailureMode, Metric, RuleDecision, TelemetryFrame, VehicleStatus};
use aegis::sim::rules::{RULES, rule_holds, rule_signal};

use crate::common::{Harness, with_failure};

#[test]
fn thresholds_rates_and_engine_condition() {
    let rule = |name: &str| RULES.iter().find(|r| r.id.as_str() == name).unwrap();
    let mut frame = TelemetryFrame::default();
    frame.set(Metric::CoolantTempC, 120.0);
    assert_eq!(rule_holds(rule("coolant_temp_very_high"), &frame, None, 450.0), Some(120.0));
    frame.set(Metric::CoolantTempC, 90.0);
    assert_eq!(rule_holds(rule("coolant_temp_very_high"), &frame, None, 450.0), None);
    // Oil pressure means nothing with the engine stopped.
    frame.set(Metric::OilPressureKpa, 0.0);
    assert_eq!(rule_holds(rule("oil_pressure_lost"), &frame, None, 450.0), None);
    frame.set(Metric::EngineRpm, 1500.0);
    assert!(rule_holds(rule("oil_pressure_lost"), &frame, None, 450.0).is_some());
    // Rates need the reading a second earlier.
    let mut before = frame;
    before.set(Metric::CoolantTempC, 89.0);
    assert!(rule_holds(rule("coolant_temp_rising_fast"), &frame, Some(rule_signal(rule("coolant_temp_rising_fast"), &before, 450.0)), 450.0).is_some());
    assert!(rule_holds(rule("coolant_temp_rising_fast"), &frame, None, 450.0).is_none());
    // A floored pedal at no speed is a vehicle that cannot make headway; only while it means
    // to drive, since a parked one holds itself on a slope the same way.
    frame.set(Metric::ThrottlePct, 65.0);
    frame.set(Metric::SpeedKph, 0.5);
    assert_eq!(rule_holds(rule("no_headway"), &frame, None, 450.0), Some(65.0));
    assert!(rule("no_headway").while_driving);
    frame.set(Metric::SpeedKph, 30.0);
    assert_eq!(rule_holds(rule("no_headway"), &frame, None, 450.0), None);
}

fn decisions(h: &Harness, vehicle: u32) -> Vec<(String, RuleDecision)> {
    h.events(vehicle)
        .into_iter()
        .filter_map(|e| match e {
            EventKind::RuleTriggered { rule, decision, .. } => Some((rule.as_str().to_owned(), *decision)),
            _ => None,
        })
        .collect()
}

#[test]
fn oil_pressure_loss_puts_the_vehicle_in_limp_mode_and_then_stops_it() {
    let mut h = Harness::new(with_failure(FailureMode::OilPumpFailure, 10.0, ""));
    h.run_for(Duration::from_secs(40 * 60));
    let taken = decisions(&h, 1);
    assert!(taken.iter().any(|(r, d)| r == "oil_pressure_low" && *d == RuleDecision::LimpMode), "{taken:?}");
    // Limp mode caps the speed the physics produces.
    let telemetry = h.telemetry(1);
    let limp_from = h.first_event_at(1, |e| matches!(e, EventKind::RuleTriggered { decision: RuleDecision::LimpMode, .. })).unwrap();
    let after: Vec<f32> = telemetry.iter().filter(|(t, _)| *t > limp_from + 30.0).map(|(_, t)| t.metrics.get(Metric::SpeedKph)).collect();
    assert!(!after.is_empty());
    assert!(after.iter().all(|s| *s < 36.0), "limp speed cap: max {}", after.iter().copied().fold(0.0, f32::max));
    assert!(decisions(&h, 2).is_empty(), "a healthy vehicle takes no decisions");
}

#[test]
fn overheating_derates_power_and_takes_the_vehicle_off_the_road() {
    let mut h = Harness::new(with_failure(FailureMode::CoolantLeak, 12.0, ""));
    h.run_for(Duration::from_secs(60 * 60));
    let taken = decisions(&h, 1);
    assert!(taken.iter().any(|(_, d)| *d >= RuleDecision::DeratePower), "{taken:?}");
    let stopped = h.events(1).iter().any(|e| matches!(e, EventKind::StatusChanged { to: VehicleStatus::Stopped | VehicleStatus::InMaintenance | VehicleStatus::Returning, .. }));
    assert!(stopped, "the vehicle acted on its rules: {:?}", h.events(1));
    // Derated power shows as a lower peak engine power from the decision until the repair.
    let derated_at = h.first_event_at(1, |e| matches!(e, EventKind::RuleTriggered { decision: RuleDecision::DeratePower, .. })).unwrap();
    let repaired_at = h.first_event_at(1, |e| matches!(e, EventKind::Repaired { .. })).unwrap_or(f64::MAX);
    let peak = h
        .telemetry(1)
        .iter()
        .filter(|(t, _)| *t > derated_at + 1.0 && *t < repaired_at)
        .map(|(_, t)| t.metrics.get(Metric::EnginePowerKw))
        .fold(0.0, f32::max);
    assert!(peak < 65.0, "derated to half of 120 kW: peak {peak}");
}
