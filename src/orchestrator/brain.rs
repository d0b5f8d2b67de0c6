//! The orchestrator's decision loop, independent of the transport: vehicle messages in,
//! alerts raised and cleared, commands out and followed to their verified effect.
//!
//! It turns the vehicles' own rule decisions into alerts, adds central data-quality rules,
//! asks the policy what each alert calls for, sends and tracks that command, clears an alert
//! when its component is repaired, and keeps the scenario's missions assigned to the vehicles
//! best placed to do them.

use std::collections::{BTreeMap, BTreeSet};
use serde::Serialize;

use super::alerts::{AlertKey, AlertPolicy, AlertStore, AuditAction, Condition, Observation, Origin};
use super::commands::{CommandPolicy, CommandTracker, CommandState, Effect};
use super::peers::PeerComparison;
use super::quality::DataQuality;
use super::missions::{Candidate, MissionBoard, MissionFigures, MissionState, health_weight};
pub use crate::model::FleetOverview;
use super::policy::Policy;
use super::ports::{Cursor, KeptState, VehiclePrediction};
use super::tracker::{FleetTracker, Ingested, PresenceChange};
use crate::model::{Body, CommandAction, Component, Envelope, EventKind, Metric, Recommendation, RecommendedAction, RuleDecision, RuleId, Severity, VehicleId, VehicleModel, VehicleStatus};

/// Seconds of silence (three missed heartbeats) after which a vehicle is offline, unless the
/// caller says otherwise.
pub const DEFAULT_OFFLINE_AFTER_S: f64 = (crate::model::HEARTBEAT_INTERVAL_S * super::tracker::MISSED_HEARTBEATS as u64) as f64;

/// The alert type of the failure model's predictions.
pub const PREDICTED_FAILURE: &str = "predicted_failure";

/// Seconds a command stays valid.
const COMMAND_TTL_S: f64 = 900.0;

/// Vehicle numbers up to which models are known for peer comparison.
const MAX_PEER_VEHICLES: usize = 1 << 20;

/// The alert a vehicle rule's decision raises: component, alert type. Exhaustive, so a new
/// rule must say what its alert is.
pub fn alert_of_rule(rule: RuleId) -> (Component, &'static str) {
    use RuleId::*;
    match rule {
        CoolantTempHigh | CoolantTempVeryHigh | CoolantTempCritical | CoolantTempRisingFast => (Component::CoolingSystem, "overheating"),
        CoolantLevelLow => (Component::CoolingSystem, "coolant_low"),
        OilPressureLow | OilPressureLost => (Component::Lubrication, "oil_pressure_low"),
        OilTempHigh => (Component::Lubrication, "oil_overheating"),
        BrakeTempHigh => (Component::Brakes, "brake_overheating"),
        BrakePadLow | BrakePadWornOut => (Component::Brakes, "brake_pads_worn"),
        TyrePressureLow | TyrePressureVeryLow | TyreDeflation => (Component::Tyres, "tyre_pressure_low"),
        BatteryVoltageLow => (Component::Battery, "battery_weak"),
        WheelVibrationHigh | WheelVibrationSevere => (Component::WheelBearings, "wheel_bearing_wear"),
        // The vehicle cannot tell why; the drivetrain is where to look first.
        NoHeadway => (Component::Engine, "no_headway"),
    }
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
    /// Missions generated, completed, re-assigned and missed.
    #[serde(flatten)]
    pub missions: MissionFigures,
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
    /// Data-quality rules' state.
    quality: DataQuality,
    /// Peer-comparison state.
    peers: PeerComparison,
    /// The scenario, for its missions and each vehicle's model.
    scenario: Option<crate::scenario::Scenario>,
    /// Each vehicle's model, by index from vehicle 1, grown as vehicles appear.
    models: Vec<VehicleModel>,
    /// The scenario's missions, when it has any.
    pub missions: Option<MissionBoard>,
    /// Per vehicle and component, how many evaluations in a row a prediction has held
    /// (positive) or been absent (negative): the policy's `sustain` decides when it counts.
    streaks: BTreeMap<(VehicleId, Component), i32>,
}

impl Brain {
    /// A loop with `policy`. Vehicle rules have their own persistence, so their alerts raise
    /// and clear without further delay.
    pub fn new(policy: Policy) -> Self {
        Self::with_fleet(policy, FleetTracker::new(DEFAULT_OFFLINE_AFTER_S))
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
            quality: DataQuality::default(),
            peers: PeerComparison::default(),
            scenario: None,
            models: Vec::new(),
            missions: None,
            streaks: BTreeMap::new(),
        }
    }

    /// Knows the fleet's scenario: vehicles are compared with peers of their model, and the
    /// scenario's missions (if it has a `[missions]` table) are generated and assigned.
    pub fn with_scenario(mut self, scenario: &crate::scenario::Scenario) -> Self {
        self.missions = MissionBoard::for_scenario(scenario);
        self.scenario = Some(scenario.clone());
        self
    }

    /// Takes back what an earlier run kept: alerts (ids continue, acknowledgements and notes
    /// stay), commands in flight (still sent, followed and timed out), missions with their
    /// vehicles, and the counters, so nothing is numbered or commanded twice.
    pub fn restore(&mut self, kept: KeptState) {
        self.alerts.restore(kept.alerts);
        self.commands.restore(kept.commands);
        let cursor = kept.cursor.unwrap_or_default();
        self.seq = cursor.downlink_seq;
        self.commanded = cursor.commanded.into_iter().collect();
        if let (Some(board), Some(at)) = (&mut self.missions, cursor.missions) {
            board.restore(at, kept.missions);
        }
    }

    /// The counters a restart continues from (without the centre's own presence numbering).
    pub fn cursor(&self) -> Cursor {
        Cursor {
            downlink_seq: self.seq.clone(),
            central_seq: BTreeMap::new(),
            commanded: self.commanded.iter().cloned().collect(),
            missions: self.missions.as_ref().map(MissionBoard::cursor),
        }
    }

    /// Vehicle `id`'s model, when the scenario is known. A vehicle's model depends only on its
    /// number, so the list grows as higher numbers appear.
    fn model_of(&mut self, id: VehicleId) -> Option<VehicleModel> {
        let scenario = self.scenario.as_ref()?;
        let index = (id.0 as usize).checked_sub(1)?;
        // An id far beyond any fleet (a bad producer) must not make the list huge.
        if index >= MAX_PEER_VEHICLES {
            return None;
        }
        if index >= self.models.len() {
            self.models = scenario.fleet_models((index as u32 + 1).next_power_of_two());
        }
        self.models.get(index).copied()
    }

    /// Applies one message from a vehicle, heard at `now` on the centre's clock; returns what
    /// the fleet tracker made of it (duplicates change nothing else).
    pub fn ingest(&mut self, envelope: &Envelope, now: f64) -> (Ingested, Option<PresenceChange>) {
        let (fresh, change) = self.fleet.ingest(envelope, now);
        if let Some(change) = &change {
            // Back online: a later outage may command again.
            if let Some(id) = self.alerts.connectivity_of(change.vehicle).map(str::to_owned) {
                self.commanded.retain(|(alert, _, _)| *alert != id);
            }
            self.alerts.set_online(change.vehicle, true, envelope.sim_time);
        }
        if fresh == Ingested::Duplicate {
            return (fresh, change);
        }
        let (vehicle, at) = (envelope.vehicle_id, envelope.sim_time);
        self.quality.heard(vehicle, at);
        match &envelope.body {
            Body::Event(event) => match &event.event {
                EventKind::RuleTriggered { rule, metric, value, decision } => self.rule_fired(vehicle, at, *rule, metric, *value, *decision),
                EventKind::Repaired { component } => self.repaired(vehicle, *component, at),
                EventKind::MissionProgress { mission_id, reached, .. } => {
                    if let Some(board) = &mut self.missions {
                        board.progress(vehicle, mission_id, *reached, at);
                    }
                }
                EventKind::MissionCompleted { mission_id } => {
                    if let Some(board) = &mut self.missions {
                        board.completed(vehicle, mission_id, at);
                    }
                }
                EventKind::MissionAbandoned { mission_id, reason } => {
                    if let Some(board) = &mut self.missions {
                        board.abandoned(vehicle, mission_id, reason, at);
                    }
                }
                _ => {}
            },
            Body::CommandAck(ack) => self.commands.acknowledged(ack, at),
            Body::Telemetry(telemetry) => {
                if let Some(model) = self.model_of(vehicle) {
                    self.peers.frame(vehicle, model, &telemetry.metrics, at);
                }
                let observations = self.quality.frame(vehicle, &telemetry.metrics, at);
                self.observe_all(observations, at);
                if let Some(status) = self.fleet.vehicle(vehicle).and_then(|v| v.status) {
                    let effect = Effect { speed_kph: telemetry.metrics.get(Metric::SpeedKph), status };
                    self.commands.observe(vehicle, &effect, at);
                }
            }
            _ => {}
        }
        (fresh, change)
    }

    /// A vehicle went silent: its connectivity alert rises, its sensor alerts group under it,
    /// and whatever the policy says about lost vehicles waits for it to come back.
    pub fn offline(&mut self, vehicle: VehicleId, at: f64) {
        self.alerts.set_online(vehicle, false, at);
        if let Some(id) = self.alerts.connectivity_of(vehicle).map(str::to_owned) {
            self.act_on(&id, vehicle, at);
        }
    }

    fn rule_fired(&mut self, vehicle: VehicleId, at: f64, rule: RuleId, metric: &str, value: f32, decision: RuleDecision) {
        let (component, alert_type) = alert_of_rule(rule);
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
            // A vehicle taken off its route hands its mission on.
            if matches!(command, CommandAction::Stop | CommandAction::ReturnToDepot | CommandAction::ScheduleMaintenance | CommandAction::ChangeMission { .. })
                && let Some(board) = &mut self.missions
            {
                board.release(vehicle, &format!("{vehicle} recalled for alert {id}"), at);
            }
            self.commands.issue(vehicle, command, at, COMMAND_TTL_S);
        }
    }

    /// An operator's command to `vehicle`, sent as `actor` and tracked like the centre's own;
    /// noted on `alert` when one is named (the alert it answers). Returns the command's id, or
    /// why it was refused.
    pub fn operator_command(&mut self, vehicle: VehicleId, action: CommandAction, ttl_s: Option<f64>, actor: &str, alert: &str, at: f64) -> Result<String, String> {
        if self.fleet.vehicle(vehicle).is_none() {
            return Err(format!("no vehicle {vehicle} in the fleet"));
        }
        if matches!(action, CommandAction::AssignMission { .. }) {
            return Err("missions are the mission board's to assign: send change_mission, return_to_depot or schedule_maintenance".into());
        }
        let ttl_s = ttl_s.unwrap_or(COMMAND_TTL_S);
        if !(ttl_s > 0.0 && ttl_s <= 86_400.0) {
            return Err(format!("ttl_s must be above 0 and at most a day (86400), not {ttl_s}"));
        }
        if !alert.is_empty() && self.alerts.get(alert).is_none() {
            return Err(format!("no alert `{alert}`"));
        }
        if matches!(action, CommandAction::Stop | CommandAction::ReturnToDepot | CommandAction::ScheduleMaintenance | CommandAction::ChangeMission { .. })
            && let Some(board) = &mut self.missions
        {
            board.release(vehicle, &format!("{vehicle} recalled by {actor}"), at);
        }
        let what = serde_json::to_string(&action).unwrap_or_default();
        let id = self.commands.issue_as(vehicle, action, at, ttl_s, Some(actor));
        if !alert.is_empty() {
            // The alert exists (checked above), so the note cannot be refused.
            let _ = self.alerts.comment(alert, &format!("sent {vehicle} command {id}: {what}"), actor, at);
        }
        Ok(id)
    }

    /// One evaluation of a vehicle by the failure model. For each component, the shortest
    /// horizon whose probability reaches the policy's threshold is a prediction; held for
    /// `sustain` evaluations in a row it is raised ([`Brain::predicted`], with the model's time
    /// estimate kept between that horizon and the next shorter one), absent as long it is
    /// lifted.
    pub fn prediction(&mut self, evaluation: &VehiclePrediction, at: f64) {
        let settings = self.policy.prediction;
        let sustain = settings.sustain as i32;
        for outlook in &evaluation.components {
            let hit = outlook.within.iter().position(|(_, p)| *p >= settings.probability);
            let key = (evaluation.vehicle, outlook.component);
            let streak = self.streaks.entry(key).or_insert(0);
            *streak = match (hit.is_some(), *streak) {
                (true, s) if s > 0 => s.saturating_add(1),
                (true, _) => 1,
                (false, s) if s < 0 => s.saturating_sub(1),
                (false, _) => -1,
            };
            let streak = *streak;
            match hit {
                Some(i) if streak >= sustain => {
                    // Not within the shorter horizons, within this one: the estimate between.
                    let (horizon, probability) = outlook.within[i];
                    let shorter = if i == 0 { 0.0 } else { outlook.within[i - 1].0 as f32 };
                    let hours = outlook.hours_to_failure.clamp(shorter, horizon as f32);
                    self.predicted(evaluation.vehicle, outlook.component, Some(hours), probability, outlook.evidence.clone(), at);
                }
                // Lifted once, as the absence becomes sustained.
                None if streak == -sustain => {
                    let key = AlertKey { vehicle: evaluation.vehicle, component: outlook.component, alert_type: PREDICTED_FAILURE.to_owned() };
                    if self.alerts.of_key(&key).is_some_and(|a| a.active) {
                        self.predicted(evaluation.vehicle, outlook.component, None, 0.0, Vec::new(), at);
                    }
                }
                _ => {}
            }
        }
    }

    /// A failure prediction for one of `vehicle`'s components: failure expected within
    /// `hours` with `confidence` (and the features that say so as `evidence`), or `None` when
    /// the model no longer expects one. It becomes a
    /// `predicted_failure` alert (origin `prediction`) whose severity grows as the horizon
    /// shrinks, and the policy's `failure_within_h` rules decide what to do about it.
    pub fn predicted(&mut self, vehicle: VehicleId, component: Component, hours: Option<f32>, confidence: f32, evidence: Vec<(String, f32)>, at: f64) {
        let severity = match hours {
            Some(h) if h <= 2.0 => Severity::Critical,
            Some(h) if h <= 8.0 => Severity::Major,
            Some(h) if h <= 24.0 => Severity::Minor,
            _ => Severity::Warning,
        };
        let observation = Observation {
            key: AlertKey { vehicle, component, alert_type: PREDICTED_FAILURE.to_owned() },
            at,
            condition: if hours.is_some() { Condition::Raise } else { Condition::Clear },
            severity,
            origin: Origin::Prediction,
            evidence,
            recommendation: Recommendation {
                action: RecommendedAction::ScheduleMaintenance,
                reason: hours.map_or_else(|| "no failure expected any more".to_owned(), |h| format!("{component:?} predicted to fail within {h:.1} h")),
                within_hours: hours,
            },
            confidence: confidence.clamp(0.0, 1.0),
            time_to_failure_h: hours,
        };
        self.observe_all([observation], at);
    }

    fn observe_all(&mut self, observations: impl IntoIterator<Item = Observation>, at: f64) {
        for observation in observations {
            let vehicle = observation.key.vehicle;
            if let Some(id) = self.alerts.observe(observation) {
                self.act_on(&id, vehicle, at);
            }
        }
    }

    /// A repair clears the repaired component's alerts, and the vehicle's own rule alerts: the
    /// depot re-arms every rule, and one whose condition still holds fires again (reopening its
    /// alert).
    fn repaired(&mut self, vehicle: VehicleId, component: Component, at: f64) {
        let ids: Vec<String> = self
            .alerts
            .all()
            .filter(|a| a.active && a.key.vehicle == vehicle && (a.key.component == component || a.origin == Origin::VehicleRule))
            .map(|a| a.id.clone())
            .collect();
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
        let stale = self.quality.check_stale(|v| fleet.vehicle(v).is_some_and(|s| s.online));
        let driving = |v| fleet.vehicle(v).is_some_and(|s| s.online && s.status == Some(VehicleStatus::EnRoute));
        let deviating = self.peers.check(at, driving);
        self.observe_all(stale.into_iter().chain(deviating), at);
        self.dispatch(at);
        self.recover(at);
        let fleet = &self.fleet;
        let due = self.commands.due(at, |v| fleet.vehicle(v).is_none_or(|s| s.online));
        due.into_iter()
            .map(|(vehicle, command)| {
                let seq = self.seq.entry(vehicle).or_default();
                *seq += 1;
                Envelope::new(vehicle, *seq - 1, at, Body::from(command))
            })
            .collect()
    }

    /// Vehicles standing still for an alert whose policy rule says `recover` are booked in
    /// for maintenance, once per alert.
    fn recover(&mut self, at: f64) {
        let fleet = &self.fleet;
        let policy = &self.policy;
        let stranded: Vec<(String, VehicleId)> = self
            .alerts
            .all()
            .filter(|a| a.active && fleet.vehicle(a.key.vehicle).and_then(|s| s.status) == Some(VehicleStatus::Stopped))
            .filter(|a| policy.decide(a).is_some_and(|d| d.recover))
            .map(|a| (a.id.clone(), a.key.vehicle))
            .collect();
        for (id, vehicle) in stranded {
            if self.commanded.insert((id.clone(), "recovery".to_owned(), Severity::Critical)) {
                self.commands.issue(vehicle, CommandAction::ScheduleMaintenance, at, COMMAND_TTL_S);
            }
        }
    }

    /// Missions: generate what is due, follow the assigning commands, assign what waits.
    fn dispatch(&mut self, at: f64) {
        let Some(board) = &mut self.missions else { return };
        board.generate(at);
        let assigning: Vec<String> = board.all().filter(|m| m.state == MissionState::Assigned).filter_map(|m| m.command.clone()).collect();
        for id in assigning {
            if let Some(command) = self.commands.get(&id).filter(|c| c.state.is_final()) {
                board.command_finished(&id, command.state == CommandState::Succeeded, command.detail.as_deref(), at);
            }
        }
        if !board.has_pending() {
            return;
        }
        let condition = condition_by_vehicle(&self.alerts, &self.policy);
        let candidates: Vec<Candidate> = self
            .fleet
            .vehicles()
            .filter(|(_, state)| state.online && matches!(state.status, Some(VehicleStatus::Idle | VehicleStatus::EnRoute)))
            .filter_map(|(vehicle, state)| {
                let metrics = &state.telemetry.as_ref()?.metrics;
                let (health, held) = condition.get(&vehicle).copied().unwrap_or((1.0, false));
                Some(Candidate {
                    vehicle,
                    position: glam::Vec2::new(metrics.get(Metric::PositionXM), metrics.get(Metric::PositionZM)),
                    fuel_pct: metrics.get(Metric::FuelLevelPct),
                    health,
                    held,
                })
            })
            .collect();
        for (mission, vehicle, action) in board.assign(&candidates) {
            let command = self.commands.issue(vehicle, action, at, super::missions::ASSIGN_TTL_S);
            board.assigned(&mission, vehicle, command, at);
        }
    }

    /// The fleet at a glance: vehicles by status and presence, active alerts by severity,
    /// vehicles on a mission and the mean health estimated from alerts.
    pub fn overview(&self) -> FleetOverview {
        let mut alerts_by_severity = BTreeMap::new();
        for alert in self.alerts.all().filter(|a| a.active) {
            *alerts_by_severity.entry(alert.severity).or_insert(0u64) += 1;
        }
        let condition = condition_by_vehicle(&self.alerts, &self.policy);
        let vehicles = self.fleet.vehicles().count();
        // Vehicles without an active alert count as fully healthy.
        let lost: f32 = condition.values().map(|(health, _)| 1.0 - health).sum();
        FleetOverview {
            fleet: self.fleet.summary(),
            active_alerts_by_severity: alerts_by_severity,
            vehicles_on_mission: self.missions.as_ref().map_or(0, |b| b.under_way() as u64),
            mean_health: if vehicles == 0 { 1.0 } else { (1.0 - lost / vehicles as f32).max(0.0) },
            missions: self.missions.as_ref().map(MissionBoard::figures).unwrap_or_default(),
        }
    }

    /// Whether `vehicle` holds a mission.
    pub fn on_mission(&self, vehicle: VehicleId) -> bool {
        self.missions.as_ref().is_some_and(|b| b.of_vehicle(vehicle).is_some())
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
            missions: self.missions.as_ref().map(MissionBoard::figures).unwrap_or_default(),
        }
    }
}

/// Health as the centre knows it, for vehicles with an active alert: 1 less the weights of
/// their alerts' severities (at least 0), and whether the policy keeps them off new work.
fn condition_by_vehicle(alerts: &AlertStore, policy: &Policy) -> BTreeMap<VehicleId, (f32, bool)> {
    let mut condition: BTreeMap<VehicleId, (f32, bool)> = BTreeMap::new();
    for alert in alerts.all().filter(|a| a.active) {
        let entry = condition.entry(alert.key.vehicle).or_insert((1.0, false));
        entry.0 = (entry.0 - health_weight(alert.severity)).max(0.0);
        entry.1 |= policy.decide(alert).is_some_and(|d| d.hold_missions);
    }
    condition
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{METRICS, Telemetry, TelemetryFrame};
    use crate::orchestrator::quality::STUCK_AFTER;

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
    fn a_vehicle_stopped_for_a_critical_fault_is_booked_in_once_it_stands_still() {
        let mut brain = Brain::new(Policy::shipped());
        let now = 0.0;
        let vehicle = VehicleId(5);
        let event = |seq, event| Envelope::new(vehicle, seq, seq as f64, Body::from(event));
        brain.ingest(&event(0, EventKind::StatusChanged { from: VehicleStatus::Idle, to: VehicleStatus::EnRoute }), now);
        brain.ingest(&event(1, EventKind::RuleTriggered { rule: RuleId::OilPressureLost, metric: "oil_pressure_kpa".into(), value: 20.0, decision: RuleDecision::ControlledStop }), now);
        brain.tick(2.0);
        let actions = |brain: &Brain| brain.commands.all().map(|c| c.action.clone()).collect::<Vec<_>>();
        assert_eq!(actions(&brain), [CommandAction::Stop]);
        brain.ingest(&event(2, EventKind::StatusChanged { from: VehicleStatus::EnRoute, to: VehicleStatus::Stopped }), now);
        brain.tick(3.0);
        brain.tick(4.0);
        assert_eq!(actions(&brain), [CommandAction::Stop, CommandAction::ScheduleMaintenance], "booked in, once");
        // The repair clears the alert.
        brain.ingest(&event(3, EventKind::Repaired { component: Component::Lubrication }), now);
        assert!(brain.alerts.all().all(|a| !a.active));
    }

    #[test]
    fn a_predicted_failure_books_maintenance_and_holds_missions_until_the_prediction_lifts() {
        let mut brain = Brain::new(Policy::shipped());
        brain.ingest(&frame(0, false), 0.0);
        brain.predicted(VehicleId(5), Component::Brakes, Some(30.0), 0.8, Vec::new(), 10.0);
        let alert = brain.alerts.all().next().expect("raised").clone();
        assert_eq!((alert.origin, alert.severity, alert.time_to_failure_h), (Origin::Prediction, Severity::Warning, Some(30.0)));
        assert_eq!(brain.figures().commands_issued, 0, "30 h away: nothing to do yet");
        brain.predicted(VehicleId(5), Component::Brakes, Some(6.0), 0.8, Vec::new(), 20.0);
        let alert = brain.alerts.get(&alert.id).unwrap().clone();
        assert_eq!((alert.severity, alert.occurrences), (Severity::Major, 2), "the same alert, more severe");
        let commands: Vec<_> = brain.commands.all().map(|c| c.action.clone()).collect();
        assert_eq!(commands, [CommandAction::ScheduleMaintenance], "within the policy's 8 h");
        assert!(brain.policy.decide(&alert).unwrap().hold_missions);
        brain.predicted(VehicleId(5), Component::Brakes, None, 0.8, Vec::new(), 30.0);
        assert!(!brain.alerts.get(&alert.id).unwrap().active);
    }

    #[test]
    fn a_model_prediction_counts_once_sustained_and_the_policy_books_maintenance() {
        use crate::orchestrator::ports::{ComponentOutlook, VehiclePrediction};
        let mut brain = Brain::new(Policy::shipped());
        brain.ingest(&frame(0, false), 0.0);
        let evaluation = |p6: f32| VehiclePrediction {
            vehicle: VehicleId(5),
            sim_s: 0.0,
            components: vec![ComponentOutlook {
                component: Component::CoolingSystem,
                within: vec![(2, 0.1), (6, p6), (24, 0.95)],
                hours_to_failure: 4.5,
                evidence: vec![("coolant_level_pct_1h_slope_per_h".into(), -3.0)],
            }],
        };
        // The shipped policy: 0.7, held for 3 evaluations. Two are not enough.
        brain.prediction(&evaluation(0.9), 60.0);
        brain.prediction(&evaluation(0.9), 120.0);
        assert_eq!(brain.alerts.all().count(), 0);
        brain.prediction(&evaluation(0.9), 180.0);
        let alert = brain.alerts.all().next().expect("raised on the third").clone();
        assert_eq!((alert.origin, alert.key.alert_type.as_str(), alert.time_to_failure_h, alert.confidence), (Origin::Prediction, "predicted_failure", Some(4.5), 0.9));
        assert_eq!(alert.evidence, vec![("coolant_level_pct_1h_slope_per_h".to_owned(), -3.0)]);
        // Within the policy's 8 h: maintenance, once.
        brain.prediction(&evaluation(0.9), 240.0);
        let commands: Vec<_> = brain.commands.all().map(|c| c.action.clone()).collect();
        assert_eq!(commands, [CommandAction::ScheduleMaintenance]);
        // Below the threshold at 6 h, still above at 24 h: the prediction stays, further out.
        brain.prediction(&evaluation(0.2), 300.0);
        let alert = brain.alerts.get(&alert.id).unwrap().clone();
        assert!(alert.active);
        assert_eq!(alert.time_to_failure_h, Some(6.0), "not within 6 h, so at least 6");
        // Nothing within any horizon for three evaluations: lifted.
        let calm = VehiclePrediction { components: vec![ComponentOutlook { within: vec![(2, 0.0), (6, 0.0), (24, 0.1)], ..evaluation(0.0).components[0].clone() }], ..evaluation(0.0) };
        for at in [360.0, 420.0] {
            brain.prediction(&calm, at);
            assert!(brain.alerts.get(&alert.id).unwrap().active);
        }
        brain.prediction(&calm, 480.0);
        assert!(!brain.alerts.get(&alert.id).unwrap().active, "lifted after three calm evaluations");
    }

    #[test]
    fn a_stuck_sensor_is_a_data_quality_alert_that_clears_when_it_moves_again() {
        let mut brain = Brain::new(Policy::shipped());
        let now = 0.0;
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
