//! The alert lifecycle, after ThingsBoard's alarms and going beyond them.
//!
//! - Two independent flags: active/cleared and acknowledged/unacknowledged.
//! - At most one active alert per (vehicle, component, type): a repeat updates it and counts an
//!   occurrence; severity may rise and fall while active, the highest reached is kept.
//! - Flap control: the raise condition must hold for `raise_after_s` before an alert is raised,
//!   the clear condition for `clear_after_s` before it clears (between the two, nothing
//!   changes); an alert raised again within `reopen_within_s` of clearing reopens.
//! - Acknowledge, clear, assign, shelve and comment, each recorded as an [`AuditEvent`];
//!   unacknowledged critical alerts escalate after `escalate_after_s`.
//! - While a vehicle is offline its sensor alerts are suppressed and grouped under its
//!   connectivity alert.
//! - A priority score orders the work queue (see [`AlertRecord::priority`]).
//!
//! Times are simulation seconds; the store holds no clock of its own, so it is deterministic.

use std::collections::BTreeMap;



pub use crate::model::{AlertKey, AlertRecord, AuditAction, AuditEvent, Note, Origin};
use crate::model::{Component, Recommendation, RecommendedAction, Severity, VehicleId};

/// Which of an alert's conditions an evaluation found true.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// The raise condition holds.
    Raise,
    /// The clear condition holds.
    Clear,
    /// Neither (between the thresholds): nothing changes.
    Neither,
}

/// One evaluation of an alert's conditions.
#[derive(Debug, Clone)]
pub struct Observation {
    /// Which alert.
    pub key: AlertKey,
    /// When (simulation seconds).
    pub at: f64,
    /// What was found.
    pub condition: Condition,
    /// Severity now, when raising.
    pub severity: Severity,
    /// Who evaluated it.
    pub origin: Origin,
    /// Metric values behind it, by wire name.
    pub evidence: Vec<(String, f32)>,
    /// What to do.
    pub recommendation: Recommendation,
    /// Confidence in [0, 1].
    pub confidence: f32,
    /// Hours to predicted failure, where known.
    pub time_to_failure_h: Option<f32>,
}

/// Flap control and escalation settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertPolicy {
    /// The raise condition must hold this long before an alert is raised.
    pub raise_after_s: f64,
    /// The clear condition must hold this long before an alert clears.
    pub clear_after_s: f64,
    /// Raised again within this long of clearing, an alert reopens instead of a new one.
    pub reopen_within_s: f64,
    /// Unacknowledged critical alerts escalate after this long.
    pub escalate_after_s: f64,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        Self { raise_after_s: 10.0, clear_after_s: 30.0, reopen_within_s: 300.0, escalate_after_s: 600.0 }
    }
}

/// Why an operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertError {
    /// No alert has this id.
    #[error("no alert `{0}`")]
    UnknownId(String),
    /// The operation needs an active alert.
    #[error("alert `{0}` is cleared")]
    Cleared(String),
}

/// Candidate state of a key whose condition is being timed.
#[derive(Debug, Clone, Copy, Default)]
struct Timing {
    raise_since: Option<f64>,
    clear_since: Option<f64>,
}

/// Every alert, keyed by id, with the deduplication index and the audit trail.
#[derive(Debug, Default)]
pub struct AlertStore {
    policy: AlertPolicy,
    alerts: BTreeMap<String, AlertRecord>,
    /// The latest alert per key, active or not (for dedup and reopening).
    by_key: BTreeMap<AlertKey, String>,
    timing: BTreeMap<AlertKey, Timing>,
    offline: BTreeMap<VehicleId, String>,
    next_id: u64,
    audit: Vec<AuditEvent>,
    /// Alerts changed since [`AlertStore::take_changed`] last ran.
    changed: std::collections::BTreeSet<String>,
}

const SYSTEM: &str = "system";

/// The connectivity alert's type.
pub const CONNECTIVITY: &str = "connectivity_lost";

impl AlertStore {
    /// An empty store.
    pub fn new(policy: AlertPolicy) -> Self {
        Self { policy, ..Self::default() }
    }

    /// Takes back the alerts an earlier run kept (from the Redis alerts hash): ids continue
    /// after the highest, repeats update the latest alert of their key, and connectivity
    /// alerts still active mark their vehicles offline until they are heard from.
    pub fn restore(&mut self, records: Vec<AlertRecord>) {
        for record in records {
            let number = record.id.trim_start_matches('A').parse::<u64>().unwrap_or(0);
            self.next_id = self.next_id.max(number);
            let newer = self.by_key.get(&record.key).is_none_or(|id| self.alerts[id].created_at <= record.created_at);
            if newer {
                self.by_key.insert(record.key.clone(), record.id.clone());
            }
            if record.active && record.key.alert_type == CONNECTIVITY {
                self.offline.insert(record.key.vehicle, record.id.clone());
            }
            self.alerts.insert(record.id.clone(), record);
        }
    }

    /// Applies one evaluation; returns the id of the alert it raised, reopened or updated.
    pub fn observe(&mut self, observation: Observation) -> Option<String> {
        let policy = self.policy;
        let timing = self.timing.entry(observation.key.clone()).or_default();
        match observation.condition {
            Condition::Neither => None,
            Condition::Clear => {
                timing.raise_since = None;
                let since = *timing.clear_since.get_or_insert(observation.at);
                let id = self.by_key.get(&observation.key)?.clone();
                let record = self.alerts.get(&id).expect("indexed");
                if record.active && observation.at - since >= policy.clear_after_s {
                    self.clear_record(&id, observation.at, SYSTEM);
                }
                Some(id)
            }
            Condition::Raise => {
                timing.clear_since = None;
                let since = *timing.raise_since.get_or_insert(observation.at);
                let existing = self.by_key.get(&observation.key).cloned();
                if let Some(id) = existing {
                    let record = self.alerts.get(&id).expect("indexed");
                    if record.active {
                        self.update(&id, observation);
                        return Some(id);
                    }
                    let recently = record.cleared_at.is_some_and(|c| observation.at - c <= policy.reopen_within_s);
                    if recently && observation.at - since >= policy.raise_after_s {
                        self.reopen(&id, observation);
                        return Some(id);
                    }
                }
                (observation.at - since >= policy.raise_after_s).then(|| self.raise(observation, since))
            }
        }
    }

    fn raise(&mut self, observation: Observation, since: f64) -> String {
        self.next_id += 1;
        let id = format!("A{:06}", self.next_id);
        let suppressed_by = self.suppressor(&observation.key);
        let record = AlertRecord {
            id: id.clone(),
            severity: observation.severity,
            highest_severity: observation.severity,
            origin: observation.origin,
            evidence: observation.evidence,
            recommendation: observation.recommendation,
            confidence: observation.confidence,
            time_to_failure_h: observation.time_to_failure_h,
            event_at: since,
            created_at: observation.at,
            last_seen_at: observation.at,
            acknowledged_at: None,
            cleared_at: None,
            occurrences: 1,
            assignee: None,
            notes: Vec::new(),
            active: true,
            acknowledged: false,
            shelved_until: None,
            escalated: false,
            suppressed_by,
            key: observation.key.clone(),
        };
        self.alerts.insert(id.clone(), record);
        self.by_key.insert(observation.key, id.clone());
        self.record(&id, observation.at, SYSTEM, AuditAction::Raised);
        id
    }

    fn update(&mut self, id: &str, observation: Observation) {
        self.changed.insert(id.to_owned());
        let record = self.alerts.get_mut(id).expect("indexed");
        record.occurrences += 1;
        record.last_seen_at = observation.at;
        record.evidence = observation.evidence;
        record.recommendation = observation.recommendation;
        record.confidence = observation.confidence;
        record.time_to_failure_h = observation.time_to_failure_h;
        let from = record.severity;
        record.severity = observation.severity;
        // `Severity` orders most severe first.
        record.highest_severity = record.highest_severity.min(observation.severity);
        if from != observation.severity {
            self.record(id, observation.at, SYSTEM, AuditAction::SeverityChanged { from, to: observation.severity });
        }
    }

    fn reopen(&mut self, id: &str, observation: Observation) {
        let suppressed_by = self.suppressor(&observation.key);
        let record = self.alerts.get_mut(id).expect("indexed");
        record.active = true;
        // A reopened alert needs a person's eyes again.
        record.acknowledged = false;
        record.acknowledged_at = None;
        record.escalated = false;
        record.suppressed_by = suppressed_by;
        record.highest_severity = observation.severity;
        self.record(id, observation.at, SYSTEM, AuditAction::Reopened);
        self.update(id, observation);
    }

    fn clear_record(&mut self, id: &str, at: f64, actor: &str) {
        let record = self.alerts.get_mut(id).expect("indexed");
        record.active = false;
        record.cleared_at = Some(at);
        self.record(id, at, actor, AuditAction::Cleared);
    }

    fn record(&mut self, id: &str, at: f64, actor: &str, action: AuditAction) {
        self.changed.insert(id.to_owned());
        self.audit.push(AuditEvent { alert_id: id.to_owned(), at, actor: actor.to_owned(), action });
    }

    fn get_mut(&mut self, id: &str) -> Result<&mut AlertRecord, AlertError> {
        self.alerts.get_mut(id).ok_or_else(|| AlertError::UnknownId(id.to_owned()))
    }

    /// Acknowledges an alert, active or cleared (acknowledging twice changes nothing).
    pub fn acknowledge(&mut self, id: &str, actor: &str, at: f64) -> Result<(), AlertError> {
        let record = self.get_mut(id)?;
        if !record.acknowledged {
            record.acknowledged = true;
            record.acknowledged_at = Some(at);
            self.record(id, at, actor, AuditAction::Acknowledged);
        }
        Ok(())
    }

    /// Clears an active alert by hand. Its condition still governs it: should the raise
    /// condition hold again, it reopens.
    pub fn clear(&mut self, id: &str, actor: &str, at: f64) -> Result<(), AlertError> {
        if !self.get_mut(id)?.active {
            return Err(AlertError::Cleared(id.to_owned()));
        }
        self.clear_record(id, at, actor);
        Ok(())
    }

    /// Assigns an alert to a person.
    pub fn assign(&mut self, id: &str, assignee: &str, actor: &str, at: f64) -> Result<(), AlertError> {
        self.get_mut(id)?.assignee = Some(assignee.to_owned());
        self.record(id, at, actor, AuditAction::Assigned { assignee: assignee.to_owned() });
        Ok(())
    }

    /// Hides an active alert from the work queue until `until`.
    pub fn shelve(&mut self, id: &str, until: f64, actor: &str, at: f64) -> Result<(), AlertError> {
        let record = self.get_mut(id)?;
        if !record.active {
            return Err(AlertError::Cleared(id.to_owned()));
        }
        record.shelved_until = Some(until);
        self.record(id, at, actor, AuditAction::Shelved { until });
        Ok(())
    }

    /// Adds a comment.
    pub fn comment(&mut self, id: &str, text: &str, actor: &str, at: f64) -> Result<(), AlertError> {
        self.get_mut(id)?.notes.push(Note { at, author: actor.to_owned(), text: text.to_owned() });
        self.record(id, at, actor, AuditAction::Commented);
        Ok(())
    }

    /// Escalates unacknowledged critical alerts older than the policy allows, and ends
    /// shelving that has expired. Returns the ids escalated now.
    pub fn tick(&mut self, at: f64) -> Vec<String> {
        let after = self.policy.escalate_after_s;
        let due: Vec<String> = self
            .alerts
            .values_mut()
            .filter_map(|r| {
                if r.shelved_until.is_some_and(|until| at >= until) {
                    r.shelved_until = None;
                }
                let due = r.active && !r.acknowledged && !r.escalated && r.severity == Severity::Critical && at - r.created_at >= after;
                due.then(|| {
                    r.escalated = true;
                    r.id.clone()
                })
            })
            .collect();
        for id in &due {
            self.record(id, at, SYSTEM, AuditAction::Escalated);
        }
        due
    }

    /// Marks a vehicle offline (raising its connectivity alert and suppressing its sensor
    /// alerts under it) or back online (clearing both).
    pub fn set_online(&mut self, vehicle: VehicleId, online: bool, at: f64) {
        let key = AlertKey { vehicle, component: Component::Telematics, alert_type: CONNECTIVITY.to_owned() };
        if online {
            let Some(connectivity) = self.offline.remove(&vehicle) else { return };
            if self.alerts.get(&connectivity).is_some_and(|r| r.active) {
                self.clear_record(&connectivity, at, SYSTEM);
            }
            self.timing.remove(&key);
            self.set_suppression(vehicle, None, at);
            return;
        }
        if self.offline.contains_key(&vehicle) {
            return;
        }
        // Going offline is already timed by the presence tracker: raise at once.
        let observation = Observation {
            key: key.clone(),
            at,
            condition: Condition::Raise,
            severity: Severity::Major,
            origin: Origin::CentralRule,
            evidence: Vec::new(),
            recommendation: Recommendation { action: RecommendedAction::Monitor, reason: "no messages from the vehicle".into(), within_hours: None },
            confidence: 1.0,
            time_to_failure_h: None,
        };
        let id = match self.by_key.get(&key).cloned() {
            Some(id) if self.alerts[&id].active => {
                self.update(&id, observation);
                id
            }
            Some(id) => {
                self.reopen(&id, observation);
                id
            }
            None => self.raise(observation, at),
        };
        self.offline.insert(vehicle, id.clone());
        self.set_suppression(vehicle, Some(id), at);
    }

    fn suppressor(&self, key: &AlertKey) -> Option<String> {
        (key.component == Component::Sensors).then(|| self.offline.get(&key.vehicle).cloned()).flatten()
    }

    fn set_suppression(&mut self, vehicle: VehicleId, by: Option<String>, at: f64) {
        let ids: Vec<String> = self
            .alerts
            .values_mut()
            .filter(|r| r.key.vehicle == vehicle && r.key.component == Component::Sensors && r.active && r.suppressed_by != by)
            .map(|r| {
                r.suppressed_by = by.clone();
                r.id.clone()
            })
            .collect();
        for id in ids {
            self.record(&id, at, SYSTEM, AuditAction::Suppressed { suppressed: by.is_some() });
        }
    }

    /// The connectivity alert of a vehicle now offline.
    pub fn connectivity_of(&self, vehicle: VehicleId) -> Option<&str> {
        self.offline.get(&vehicle).map(String::as_str)
    }

    /// One alert.
    pub fn get(&self, id: &str) -> Option<&AlertRecord> {
        self.alerts.get(id)
    }

    /// The latest alert of `key`, active or not.
    pub fn of_key(&self, key: &AlertKey) -> Option<&AlertRecord> {
        self.by_key.get(key).and_then(|id| self.alerts.get(id))
    }

    /// How many alerts there are, active or not.
    pub fn len(&self) -> usize {
        self.alerts.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
    }

    /// Every alert, by id.
    pub fn all(&self) -> impl Iterator<Item = &AlertRecord> {
        self.alerts.values()
    }

    /// Alerts grouped under a vehicle's connectivity alert.
    pub fn grouped_under(&self, connectivity: &str) -> Vec<&AlertRecord> {
        self.alerts.values().filter(|r| r.suppressed_by.as_deref() == Some(connectivity)).collect()
    }

    /// Active alerts an operator should work on at `at`, highest priority first: neither
    /// shelved nor suppressed. `on_mission` says which vehicles are on a mission.
    pub fn work_queue(&self, at: f64, on_mission: impl Fn(VehicleId) -> bool) -> Vec<(f64, &AlertRecord)> {
        let mut queue: Vec<(f64, &AlertRecord)> = self
            .alerts
            .values()
            .filter(|r| r.active && r.suppressed_by.is_none() && r.shelved_until.is_none_or(|until| at >= until))
            .map(|r| (r.priority(on_mission(r.key.vehicle)), r))
            .collect();
        queue.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
        queue
    }

    /// Ids of the alerts changed since the last call (every change is audited or an update of
    /// an active alert), and forgets them.
    pub fn take_changed(&mut self) -> Vec<String> {
        std::mem::take(&mut self.changed).into_iter().collect()
    }

    /// The audit trail, oldest first.
    pub fn audit(&self) -> &[AuditEvent] {
        &self.audit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(vehicle: u32, component: Component, alert_type: &str) -> AlertKey {
        AlertKey { vehicle: VehicleId(vehicle), component, alert_type: alert_type.to_owned() }
    }

    fn seen(key: &AlertKey, at: f64, condition: Condition, severity: Severity) -> Observation {
        Observation {
            key: key.clone(),
            at,
            condition,
            severity,
            origin: Origin::CentralRule,
            evidence: vec![("coolant_temp_c".into(), 108.0)],
            recommendation: Recommendation { action: RecommendedAction::ReturnToDepot, reason: "hot".into(), within_hours: None },
            confidence: 0.9,
            time_to_failure_h: None,
        }
    }

    fn store() -> AlertStore {
        AlertStore::new(AlertPolicy { raise_after_s: 10.0, clear_after_s: 30.0, reopen_within_s: 300.0, escalate_after_s: 600.0 })
    }

    #[test]
    fn a_repeat_updates_the_active_alert_and_keeps_the_highest_severity() {
        let mut alerts = store();
        let hot = key(1, Component::CoolingSystem, "overheating");
        assert_eq!(alerts.observe(seen(&hot, 0.0, Condition::Raise, Severity::Minor)), None, "not yet held long enough");
        let id = alerts.observe(seen(&hot, 10.0, Condition::Raise, Severity::Minor)).unwrap();
        assert_eq!(alerts.observe(seen(&hot, 20.0, Condition::Raise, Severity::Critical)).as_deref(), Some(id.as_str()));
        assert_eq!(alerts.observe(seen(&hot, 30.0, Condition::Raise, Severity::Major)).as_deref(), Some(id.as_str()));
        let record = alerts.get(&id).unwrap();
        assert_eq!((record.occurrences, record.severity, record.highest_severity), (3, Severity::Major, Severity::Critical));
        assert_eq!((record.event_at, record.created_at, record.last_seen_at), (0.0, 10.0, 30.0));
        assert_eq!(alerts.all().count(), 1, "one alert per (vehicle, component, type)");
        let other = alerts.observe(seen(&key(2, Component::CoolingSystem, "overheating"), 40.0, Condition::Raise, Severity::Minor));
        assert!(other.is_none(), "another vehicle has its own timing");
    }

    #[test]
    fn flapping_conditions_neither_raise_nor_clear_nor_multiply() {
        let mut alerts = store();
        let hot = key(1, Component::CoolingSystem, "overheating");
        // Brief spikes below the raise duration never raise.
        for t in 0..20 {
            let condition = if t % 2 == 0 { Condition::Raise } else { Condition::Clear };
            assert_eq!(alerts.observe(seen(&hot, f64::from(t) * 5.0, condition, Severity::Major)), None);
        }
        let id = alerts.observe(seen(&hot, 100.0, Condition::Raise, Severity::Major));
        assert!(id.is_none());
        let id = alerts.observe(seen(&hot, 110.0, Condition::Raise, Severity::Major)).unwrap();
        // A short clear, then the band between the thresholds: still active.
        alerts.observe(seen(&hot, 120.0, Condition::Clear, Severity::Major));
        alerts.observe(seen(&hot, 140.0, Condition::Neither, Severity::Major));
        alerts.observe(seen(&hot, 145.0, Condition::Raise, Severity::Major));
        alerts.observe(seen(&hot, 150.0, Condition::Clear, Severity::Major));
        alerts.observe(seen(&hot, 170.0, Condition::Clear, Severity::Major));
        assert!(alerts.get(&id).unwrap().active, "clear held only 20 s");
        alerts.observe(seen(&hot, 180.0, Condition::Clear, Severity::Major));
        assert!(!alerts.get(&id).unwrap().active, "clear held 30 s");
        // Back within the reopen window: the same alert reopens.
        alerts.observe(seen(&hot, 200.0, Condition::Raise, Severity::Minor));
        assert_eq!(alerts.observe(seen(&hot, 210.0, Condition::Raise, Severity::Minor)).as_deref(), Some(id.as_str()));
        let record = alerts.get(&id).unwrap();
        assert!(record.active && record.occurrences >= 2);
        assert_eq!(alerts.all().count(), 1);
        // Long after clearing, a new alert.
        alerts.observe(seen(&hot, 240.0, Condition::Clear, Severity::Minor));
        alerts.observe(seen(&hot, 270.0, Condition::Clear, Severity::Minor));
        alerts.observe(seen(&hot, 900.0, Condition::Raise, Severity::Minor));
        let later = alerts.observe(seen(&hot, 910.0, Condition::Raise, Severity::Minor)).unwrap();
        assert_ne!(later, id);
    }

    #[test]
    fn acknowledged_and_active_are_independent_and_operations_are_audited() {
        let mut alerts = store();
        let pads = key(3, Component::Brakes, "brake_pads_low");
        alerts.observe(seen(&pads, 0.0, Condition::Raise, Severity::Major));
        let id = alerts.observe(seen(&pads, 10.0, Condition::Raise, Severity::Major)).unwrap();
        alerts.acknowledge(&id, "ana", 20.0).unwrap();
        alerts.assign(&id, "ben", "ana", 21.0).unwrap();
        alerts.comment(&id, "booked for Tuesday", "ben", 22.0).unwrap();
        let record = alerts.get(&id).unwrap();
        assert!(record.active && record.acknowledged);
        alerts.clear(&id, "ben", 30.0).unwrap();
        let record = alerts.get(&id).unwrap();
        assert!(!record.active && record.acknowledged);
        assert_eq!(record.assignee.as_deref(), Some("ben"));
        assert_eq!(record.notes[0].text, "booked for Tuesday");
        assert_eq!(alerts.clear(&id, "ben", 31.0), Err(AlertError::Cleared(id.clone())));
        assert_eq!(alerts.acknowledge("A999999", "ana", 32.0), Err(AlertError::UnknownId("A999999".into())));
        let actions: Vec<_> = alerts.audit().iter().map(|e| (e.actor.as_str(), e.action.clone())).collect();
        assert_eq!(
            actions,
            [
                ("system", AuditAction::Raised),
                ("ana", AuditAction::Acknowledged),
                ("ana", AuditAction::Assigned { assignee: "ben".into() }),
                ("ben", AuditAction::Commented),
                ("ben", AuditAction::Cleared),
            ]
        );
    }

    #[test]
    fn a_restored_store_continues_ids_and_deduplicates_against_what_it_had() {
        let immediate = || AlertStore::new(AlertPolicy { raise_after_s: 0.0, clear_after_s: 0.0, reopen_within_s: 300.0, escalate_after_s: 600.0 });
        let hot = key(1, Component::CoolingSystem, "overheating");
        let mut first = immediate();
        let kept = first.observe(seen(&hot, 10.0, Condition::Raise, Severity::Major)).unwrap();
        let mut second = immediate();
        second.restore(first.all().cloned().collect());
        assert_eq!(second.observe(seen(&hot, 20.0, Condition::Raise, Severity::Major)), Some(kept.clone()), "a repeat updates the kept alert");
        assert_eq!(second.get(&kept).unwrap().occurrences, 2);
        let other = second.observe(seen(&key(2, Component::CoolingSystem, "overheating"), 20.0, Condition::Raise, Severity::Major)).unwrap();
        assert_eq!(other, "A000002", "new ids continue after the kept ones");
    }

    #[test]
    fn unacknowledged_critical_alerts_escalate_once() {
        let mut alerts = store();
        let oil = key(4, Component::Lubrication, "oil_pressure_low");
        alerts.observe(seen(&oil, 0.0, Condition::Raise, Severity::Critical));
        let id = alerts.observe(seen(&oil, 10.0, Condition::Raise, Severity::Critical)).unwrap();
        let minor = key(5, Component::Battery, "battery_weak");
        alerts.observe(seen(&minor, 0.0, Condition::Raise, Severity::Minor));
        alerts.observe(seen(&minor, 10.0, Condition::Raise, Severity::Minor)).unwrap();
        assert!(alerts.tick(500.0).is_empty());
        assert_eq!(alerts.tick(610.0), std::slice::from_ref(&id));
        assert!(alerts.tick(700.0).is_empty(), "once");
        assert!(alerts.get(&id).unwrap().escalated);
        // An acknowledged one would not have.
        let brakes = key(6, Component::Brakes, "brake_failure");
        alerts.observe(seen(&brakes, 0.0, Condition::Raise, Severity::Critical));
        let acked = alerts.observe(seen(&brakes, 10.0, Condition::Raise, Severity::Critical)).unwrap();
        alerts.acknowledge(&acked, "ana", 11.0).unwrap();
        assert!(alerts.tick(2000.0).is_empty());
    }

    #[test]
    fn the_work_queue_is_ordered_by_priority_and_skips_shelved_alerts() {
        let mut alerts = store();
        let mut raise = |k: &AlertKey, severity: Severity, ttf: Option<f32>| {
            let mut first = seen(k, 0.0, Condition::Raise, severity);
            first.time_to_failure_h = ttf;
            alerts.observe(first.clone());
            first.at = 10.0;
            alerts.observe(first).unwrap()
        };
        let brakes = raise(&key(1, Component::Brakes, "brake_pads_low"), Severity::Major, None);
        let cooling = raise(&key(2, Component::CoolingSystem, "overheating"), Severity::Major, None);
        let battery_later = raise(&key(3, Component::Battery, "battery_weak"), Severity::Major, Some(72.0));
        let info = raise(&key(4, Component::Engine, "service_due"), Severity::Info, None);
        let twin = raise(&key(5, Component::CoolingSystem, "overheating"), Severity::Major, None);
        let order: Vec<&str> = alerts.work_queue(20.0, |_| false).iter().map(|(_, r)| r.id.as_str()).collect();
        assert_eq!(order, [brakes.as_str(), cooling.as_str(), twin.as_str(), battery_later.as_str(), info.as_str()]);
        // Of two equal alerts, the one whose vehicle is on a mission comes first.
        let order: Vec<&str> = alerts.work_queue(20.0, |v| v == VehicleId(5)).iter().map(|(_, r)| r.id.as_str()).collect();
        assert_eq!(&order[..3], [brakes.as_str(), twin.as_str(), cooling.as_str()]);
        alerts.shelve(&brakes, 100.0, "ana", 20.0).unwrap();
        assert!(alerts.work_queue(50.0, |_| false).iter().all(|(_, r)| r.id != brakes));
        alerts.tick(100.0);
        assert_eq!(alerts.work_queue(100.0, |_| false)[0].1.id, brakes, "back after shelving");
    }

    #[test]
    fn an_offline_vehicles_sensor_alerts_are_grouped_under_its_connectivity_alert() {
        let mut alerts = store();
        let stuck = key(7, Component::Sensors, "sensor_stuck");
        alerts.observe(seen(&stuck, 0.0, Condition::Raise, Severity::Warning));
        let sensor = alerts.observe(seen(&stuck, 10.0, Condition::Raise, Severity::Warning)).unwrap();
        let hot = key(7, Component::CoolingSystem, "overheating");
        alerts.observe(seen(&hot, 0.0, Condition::Raise, Severity::Major));
        let mechanical = alerts.observe(seen(&hot, 10.0, Condition::Raise, Severity::Major)).unwrap();
        alerts.set_online(VehicleId(7), false, 20.0);
        let connectivity = alerts.work_queue(20.0, |_| false).iter().find(|(_, r)| r.key.alert_type == CONNECTIVITY).map(|(_, r)| r.id.clone()).unwrap();
        let grouped: Vec<&str> = alerts.grouped_under(&connectivity).iter().map(|r| r.id.as_str()).collect();
        assert_eq!(grouped, [sensor.as_str()]);
        let queue: Vec<String> = alerts.work_queue(20.0, |_| false).iter().map(|(_, r)| r.id.clone()).collect();
        assert!(!queue.contains(&sensor) && queue.contains(&mechanical) && queue.contains(&connectivity));
        alerts.set_online(VehicleId(7), true, 60.0);
        assert!(!alerts.get(&connectivity).unwrap().active);
        assert!(alerts.work_queue(60.0, |_| false).iter().any(|(_, r)| r.id == sensor), "shown again");
    }
}
