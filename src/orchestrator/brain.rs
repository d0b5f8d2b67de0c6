//! The orchestrator's decision loop, independent of the transport: vehicle messages in,
//! alerts raised and cleared, commands out and followed to their verified effect.
//!
//! This first slice turns the vehicles' own rule decisions into alerts, adds a central
//! data-quality rule (stuck sensors), asks the policy what each alert calls for, sends and
//! tracks that command, and clears an alert when its component is repaired. Peer comparison,
//! predictions and missions come next (issue 4).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde::Serialize;

use super::alerts::{AlertKey, AlertPolicy, AlertStore, AuditAction, Condition, Observation, Origin};
use super::commands::{CommandPolicy, CommandTracker, CommandState, Effect};
use super::policy::Policy;
use super::tracker::{FleetTracker, Ingested, PresenceChange};
use crate::model::{Body, Component, Envelope, EventKind, METRIC_COUNT, METRICS, Metric, Recommendation, RecommendedAction, RuleDecision, Severity, TelemetryFrame, VehicleId};

/// Seconds a command stays valid.
const COMMAND_TTL_S: f64 = 900.0;

/// Identical readings in a row after which a sensor counts as stuck: real sensors carry noise,
/// so even a steady quantity never reads exactly the same thirty times.
const STUCK_AFTER: u16 = 30;

/// Metrics that legitimately repeat exactly (counters, positions at rest, pedals, levels that
/// change slowly at fine resolution), left out of the stuck-sensor check.
const STEADY_METRICS: [Metric; 9] = [
    Metric::Gear,
    Metric::OdometerKm,
    Metric::PositionXM,
    Metric::PositionZM,
    Metric::ThrottlePct,
    Metric::BrakePedalPct,
    Metric::FuelLevelPct,
    Metric::BrakePadFrontMm,
    Metric::BrakePadRearMm,
];

/// Per vehicle and metric: the last reading and how often in a row it repeated exactly.
#[derive(Debug, Clone)]
struct Repeats([(f32, u16); METRIC_COUNT]);

/// The alert a vehicle rule's decision raises: component, alert type.
pub fn alert_of_rule(rule: &str) -> Option<(Component, &'static str)> {
    Some(match rule {
        "coolant_temp_high" | "coolant_temp_very_high" | "coolant_temp_critical" | "coolant_temp_rising_fast" => (Component::CoolingSystem, "overheating"),
        "coolant_level_low" => (Component::CoolingSystem, "coolant_low"),
        "oil_pressure_low" | "oil_pressure_lost" => (Component::Lubrication, "oil_pressure_low"),
        "oil_temp_high" => (Component::Lubrication, "oil_overheating"),
        "brake_temp_high" => (Component::Brakes, "brake_overheating"),
        "brake_pad_low" | "brake_pad_worn_out" => (Component::Brakes, "brake_pads_worn"),
        "tyre_pressure_low" | "tyre_pressure_very_low" | "tyre_deflation" => (Component::Tyres, "tyre_pressure_low"),
        "battery_voltage_low" => (Component::Battery, "battery_weak"),
        "wheel_vibration_high" | "wheel_vibration_severe" => (Component::WheelBearings, "wheel_bearing_wear"),
        _ => return None,
    })
}

/// How severe a vehicle's own decision makes its alert.
pub fn severity_of_decision(decision: RuleDecision) -> Severity {
    match decision {
        RuleDecision::Warn => Severity::Minor,
        RuleDecision::DeratePower | RuleDecision::LimpMode => Severity::Major,
        RuleDecision::ControlledStop => Severity::Critical,
    }
}

/// What the loop has done, for summaries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BrainFigures {
    /// Alerts raised (first time or reopened).
    pub alerts_raised: u64,
    /// Alerts cleared.
    pub alerts_cleared: u64,
    /// Critical alerts escalated for want of acknowledgement.
    pub alerts_escalated: u64,
    /// Commands issued.
    pub commands_issued: u64,
    /// Commands whose effect was seen.
    pub commands_succeeded: u64,
    /// Commands rejected, or whose effect never showed.
    pub commands_failed: u64,
    /// Commands never acknowledged, or never sent, within their time to live.
    pub commands_timed_out: u64,
}

/// The decision loop.
pub struct Brain {
    /// Fleet state.
    pub fleet: FleetTracker,
    /// Alerts.
    pub alerts: AlertStore,
    /// Commands.
    pub commands: CommandTracker,
    policy: Policy,
    /// (alert, command, severity) already issued, so a repeat does not command twice; a
    /// rise in severity commands again (a vehicle sent home may since have been disabled).
    commanded: BTreeSet<(String, String, Severity)>,
    /// Sequence numbers of what the centre sends each vehicle.
    seq: BTreeMap<VehicleId, u64>,
    /// Data-quality state for the stuck-sensor rule.
    repeats: BTreeMap<VehicleId, Repeats>,
}

impl Brain {
    /// A loop with `policy`. Vehicle rules have their own persistence, so their alerts raise
    /// and clear without further delay.
    pub fn new(policy: Policy) -> Self {
        Self::with_fleet(policy, FleetTracker::new(std::time::Duration::from_secs(15)))
    }

    /// A loop over an existing fleet tracker (restored sequence numbers, presence settings).
    pub fn with_fleet(policy: Policy, fleet: FleetTracker) -> Self {
        Self {
            fleet,
            alerts: AlertStore::new(AlertPolicy {
                raise_after_s: 0.0,
                clear_after_s: 0.0,
                reopen_within_s: policy.alerts.reopen_within,
                escalate_after_s: policy.alerts.escalate_after,
            }),
            commands: CommandTracker::new(CommandPolicy::default()),
            policy,
            commanded: BTreeSet::new(),
            seq: BTreeMap::new(),
            repeats: BTreeMap::new(),
        }
    }

    /// Applies one message from a vehicle, received at `now`; returns what the fleet tracker
    /// made of it (duplicates change nothing else).
    pub fn ingest(&mut self, envelope: &Envelope, now: Instant) -> (Ingested, Option<PresenceChange>) {
        let (fresh, change) = self.fleet.ingest(envelope, now);
        if let Some(change) = &change {
            self.alerts.set_online(change.vehicle, true, envelope.sim_time);
        }
        if fresh == Ingested::Duplicate {
            return (fresh, change);
        }
        let (vehicle, at) = (envelope.vehicle_id, envelope.sim_time);
        match &envelope.body {
            Body::Event(event) => match &event.event {
                EventKind::RuleTriggered { rule, metric, value, decision } => self.rule_fired(vehicle, at, rule, metric, *value, *decision),
                EventKind::Repaired { component } => self.repaired(vehicle, *component, at),
                _ => {}
            },
            Body::CommandAck(ack) => self.commands.acknowledged(ack, at),
            Body::Telemetry(telemetry) => {
                self.check_sensors(vehicle, &telemetry.metrics, at);
                if let Some(status) = self.fleet.vehicle(vehicle).and_then(|v| v.status) {
                    let effect = Effect { speed_kph: telemetry.metrics.get(Metric::SpeedKph), status };
                    self.commands.observe(vehicle, &effect, at);
                }
            }
            _ => {}
        }
        (fresh, change)
    }

    /// A vehicle went silent: its connectivity alert rises and its sensor alerts group under it.
    pub fn offline(&mut self, vehicle: VehicleId, at: f64) {
        self.alerts.set_online(vehicle, false, at);
    }

    fn rule_fired(&mut self, vehicle: VehicleId, at: f64, rule: &str, metric: &str, value: f32, decision: RuleDecision) {
        let Some((component, alert_type)) = alert_of_rule(rule) else { return };
        let severity = severity_of_decision(decision);
        let key = AlertKey { vehicle, component, alert_type: alert_type.to_owned() };
        let observation = Observation {
            key,
            at,
            condition: Condition::Raise,
            severity,
            origin: Origin::VehicleRule,
            evidence: vec![(metric.to_owned(), value)],
            recommendation: Recommendation { action: RecommendedAction::Monitor, reason: format!("vehicle rule `{rule}`"), within_hours: None },
            confidence: 1.0,
            time_to_failure_h: None,
        };
        if let Some(id) = self.alerts.observe(observation) {
            self.act_on(&id, vehicle, at);
        }
    }

    /// Sends what the policy says an active alert calls for, once per alert, action and
    /// severity.
    fn act_on(&mut self, id: &str, vehicle: VehicleId, at: f64) {
        let Some(alert) = self.alerts.get(id).filter(|a| a.active) else { return };
        let Some(decision) = self.policy.decide(alert) else { return };
        let Some(command) = decision.command else { return };
        if self.commanded.insert((id.to_owned(), format!("{command:?}"), alert.severity)) {
            self.commands.issue(vehicle, command, at, COMMAND_TTL_S);
        }
    }

    /// Central data-quality rule: a reading that repeats exactly, away from the ends of its
    /// range (where real sensors saturate), is a stuck sensor: a data-quality alert on the
    /// sensors, distinct from any mechanical fault.
    fn check_sensors(&mut self, vehicle: VehicleId, frame: &TelemetryFrame, at: f64) {
        let repeats = self.repeats.entry(vehicle).or_insert_with(|| Repeats([(f32::NAN, 0); METRIC_COUNT]));
        let mut observations = Vec::new();
        for (i, spec) in METRICS.iter().enumerate() {
            let metric = Metric::ALL[i];
            if STEADY_METRICS.contains(&metric) {
                continue;
            }
            let value = frame.get(metric);
            let (last, count) = &mut repeats.0[i];
            let was_stuck = *count >= STUCK_AFTER;
            let saturated = value <= spec.min || value >= spec.max;
            *count = if value == *last && !saturated { count.saturating_add(1) } else { 0 };
            *last = value;
            let stuck = *count >= STUCK_AFTER;
            if stuck == was_stuck {
                continue;
            }
            observations.push(Observation {
                key: AlertKey { vehicle, component: Component::Sensors, alert_type: format!("sensor_stuck:{}", spec.name) },
                at,
                condition: if stuck { Condition::Raise } else { Condition::Clear },
                severity: Severity::Warning,
                origin: Origin::CentralRule,
                evidence: vec![(spec.name.to_owned(), value)],
                recommendation: Recommendation { action: RecommendedAction::InspectSensor, reason: format!("{} read {value} {STUCK_AFTER} times in a row", spec.name), within_hours: None },
                confidence: 0.9,
                time_to_failure_h: None,
            });
        }
        for observation in observations {
            if let Some(id) = self.alerts.observe(observation) {
                self.act_on(&id, vehicle, at);
            }
        }
    }

    fn repaired(&mut self, vehicle: VehicleId, component: Component, at: f64) {
        let ids: Vec<String> = self.alerts.all().filter(|a| a.active && a.key.vehicle == vehicle && a.key.component == component).map(|a| a.id.clone()).collect();
        for id in ids {
            let _ = self.alerts.clear(&id, "maintenance", at);
            self.commanded.retain(|(alert, _, _)| *alert != id);
        }
    }

    /// Advances timers to `at` and returns the commands to send now (held back for vehicles
    /// the tracker knows to be offline).
    pub fn tick(&mut self, at: f64) -> Vec<Envelope> {
        self.alerts.tick(at);
        self.commands.tick(at);
        let fleet = &self.fleet;
        let due = self.commands.due(at, |v| fleet.vehicle(v).is_none_or(|s| s.online));
        due.into_iter()
            .map(|(vehicle, command)| {
                let seq = self.seq.entry(vehicle).or_default();
                *seq += 1;
                Envelope::new(vehicle, *seq - 1, at, Body::Command(command))
            })
            .collect()
    }

    /// Figures so far, from the audit trail and the commands' states.
    pub fn figures(&self) -> BrainFigures {
        let audited = |wanted: fn(&AuditAction) -> bool| self.alerts.audit().iter().filter(|e| wanted(&e.action)).count() as u64;
        let commands = |wanted: fn(CommandState) -> bool| self.commands.all().filter(|c| wanted(c.state)).count() as u64;
        BrainFigures {
            alerts_raised: audited(|a| matches!(a, AuditAction::Raised | AuditAction::Reopened)),
            alerts_cleared: audited(|a| matches!(a, AuditAction::Cleared)),
            alerts_escalated: audited(|a| matches!(a, AuditAction::Escalated)),
            commands_issued: commands(|_| true),
            commands_succeeded: commands(|s| s == CommandState::Succeeded),
            commands_failed: commands(|s| s == CommandState::Failed),
            commands_timed_out: commands(|s| matches!(s, CommandState::Timeout | CommandState::Expired)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Telemetry, TelemetryFrame};

    fn frame(step: u32, stuck_oil: bool) -> Envelope {
        let mut metrics = TelemetryFrame::default();
        for (i, spec) in METRICS.iter().enumerate() {
            // Noisy mid-range readings that never repeat.
            metrics.values[i] = spec.min + (spec.max - spec.min) * (0.4 + 0.001 * ((step * 7 + i as u32) % 97) as f32);
        }
        if stuck_oil {
            metrics.set(Metric::OilPressureKpa, 312.5);
        }
        Envelope::new(VehicleId(5), u64::from(step), f64::from(step), Body::Telemetry(Box::new(Telemetry { metrics, truth: Vec::new() })))
    }

    #[test]
    fn a_stuck_sensor_is_a_data_quality_alert_that_clears_when_it_moves_again() {
        let mut brain = Brain::new(Policy::shipped());
        let now = Instant::now();
        for step in 0..40 {
            brain.ingest(&frame(step, false), now);
        }
        assert_eq!(brain.alerts.len(), 0, "noisy readings are not stuck");
        for step in 40..(40 + u32::from(STUCK_AFTER)) {
            brain.ingest(&frame(step, true), now);
        }
        assert_eq!(brain.alerts.len(), 0, "not yet {STUCK_AFTER} repeats");
        brain.ingest(&frame(100, true), now);
        let alert = brain.alerts.all().next().expect("raised").clone();
        assert_eq!((alert.key.component, alert.key.alert_type.as_str(), alert.severity), (Component::Sensors, "sensor_stuck:oil_pressure_kpa", Severity::Warning));
        assert!(alert.active);
        assert_eq!(brain.figures().commands_issued, 1, "the policy has the sensor replaced");
        brain.ingest(&frame(101, false), now);
        assert!(!brain.alerts.get(&alert.id).unwrap().active, "moving again clears it");
    }
}
