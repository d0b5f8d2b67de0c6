//! Alerts, the recommendations attached to them, and the records the centre keeps of them
//! (with their audit trail), as operators, storage and the API read them.

use serde::{Deserialize, Serialize};

use super::{Component, VehicleId};

/// How urgent an alert is, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Safety at risk now.
    Critical,
    /// Service-affecting.
    Major,
    /// Needs attention soon.
    Minor,
    /// Worth watching.
    Warning,
    /// For information.
    Info,
}

/// What an operator or vehicle should do about an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecommendedAction {
    /// Keep watching.
    Monitor,
    /// Book the vehicle into a depot.
    ScheduleMaintenance,
    /// Drive slower.
    ReduceSpeed,
    /// Drive back to the home depot now.
    ReturnToDepot,
    /// Stop as soon as it is safe.
    StopVehicle,
    /// Check or replace a sensor.
    InspectSensor,
}

/// A recommendation with its reasoning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recommendation {
    /// What to do.
    pub action: RecommendedAction,
    /// Why, in words.
    pub reason: String,
    /// Act within this many hours, where known.
    pub within_hours: Option<f32>,
}

/// What the centre publishes when an alert's life moves on (raised, reopened, a severity
/// change, acknowledged, assigned, shelved, commented, escalated, suppressed, cleared): the
/// alert as it is now, and the audit events since its last update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertUpdate {
    /// The alert now.
    pub alert: AlertRecord,
    /// What happened to it since the last update, oldest first.
    pub audit: Vec<AuditEvent>,
}

impl AlertUpdate {
    /// Its state in one word: `cleared`, `shelved`, `acknowledged` or `active`.
    pub fn state(&self) -> &'static str {
        let alert = &self.alert;
        if !alert.active {
            "cleared"
        } else if alert.shelved_until.is_some() {
            "shelved"
        } else if alert.acknowledged {
            "acknowledged"
        } else {
            "active"
        }
    }
}

/// Where an alert came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A vehicle's local rule.
    VehicleRule,
    /// A rule evaluated centrally (peer comparison, data quality, connectivity).
    CentralRule,
    /// The failure-prediction model.
    Prediction,
    /// A person.
    Operator,
}

/// What identifies an alert for deduplication.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AlertKey {
    /// The vehicle.
    pub vehicle: VehicleId,
    /// The component.
    pub component: Component,
    /// Machine-readable type, e.g. `overheating`.
    pub alert_type: String,
}

/// A comment on an alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    /// When.
    pub at: f64,
    /// Who.
    pub author: String,
    /// What.
    pub text: String,
}

/// An alert and its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// Unique id, `A000001` onwards.
    pub id: String,
    /// What it is about.
    pub key: AlertKey,
    /// Severity now.
    pub severity: Severity,
    /// Highest severity reached while active.
    pub highest_severity: Severity,
    /// Who raised it.
    pub origin: Origin,
    /// Metric values from the latest occurrence.
    pub evidence: Vec<(String, f32)>,
    /// What to do.
    pub recommendation: Recommendation,
    /// Confidence in [0, 1].
    pub confidence: f32,
    /// Hours to predicted failure, where known.
    pub time_to_failure_h: Option<f32>,
    /// When its raise condition first held.
    pub event_at: f64,
    /// When it was raised.
    pub created_at: f64,
    /// Latest occurrence.
    pub last_seen_at: f64,
    /// When acknowledged.
    pub acknowledged_at: Option<f64>,
    /// When cleared (the latest time).
    pub cleared_at: Option<f64>,
    /// Occurrences, counting the first, repeats and reopenings.
    pub occurrences: u32,
    /// Who is working on it.
    pub assignee: Option<String>,
    /// Comments, oldest first.
    pub notes: Vec<Note>,
    /// Active (not cleared).
    pub active: bool,
    /// Acknowledged.
    pub acknowledged: bool,
    /// Hidden from the work queue until then.
    pub shelved_until: Option<f64>,
    /// Escalated for want of acknowledgement.
    pub escalated: bool,
    /// Hidden because its vehicle is offline: grouped under this connectivity alert.
    pub suppressed_by: Option<String>,
}

impl AlertRecord {
    /// The work-queue priority, 0 to about 190:
    ///
    /// `100 × severity weight × (1.5 if the component is safety-critical, else 1) × confidence
    ///  × urgency × (1.25 if the vehicle is on a mission, else 1)`
    ///
    /// with severity weights critical 1, major 0.6, minor 0.35, warning 0.2, info 0.05, and
    /// urgency `max(0.2, 1 / (1 + h / 24))` for `h` hours to predicted failure (1 when unknown:
    /// an observed fault is due now). Escalated alerts get another factor of 1.2.
    pub fn priority(&self, on_mission: bool) -> f64 {
        let weight = match self.severity {
            Severity::Critical => 1.0,
            Severity::Major => 0.6,
            Severity::Minor => 0.35,
            Severity::Warning => 0.2,
            Severity::Info => 0.05,
        };
        let safety = if self.key.component.safety_critical() { 1.5 } else { 1.0 };
        let urgency = self.time_to_failure_h.map_or(1.0, |h| (1.0 / (1.0 + f64::from(h.max(0.0)) / 24.0)).max(0.2));
        let mission = if on_mission { 1.25 } else { 1.0 };
        let escalation = if self.escalated { 1.2 } else { 1.0 };
        100.0 * weight * safety * f64::from(self.confidence.clamp(0.0, 1.0)) * urgency * mission * escalation
    }
}

/// What an audit event records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum AuditAction {
    /// Raised for the first time.
    Raised,
    /// Raised again after clearing.
    Reopened,
    /// Severity changed while active.
    SeverityChanged {
        /// Before.
        from: Severity,
        /// After.
        to: Severity,
    },
    /// Cleared by its condition or by a person.
    Cleared,
    /// Acknowledged.
    Acknowledged,
    /// Assigned.
    Assigned {
        /// To whom.
        assignee: String,
    },
    /// Shelved.
    Shelved {
        /// Until when.
        until: f64,
    },
    /// Commented.
    Commented,
    /// Escalated for want of acknowledgement.
    Escalated,
    /// Hidden under a connectivity alert, or shown again.
    Suppressed {
        /// Hidden (true) or shown again (false).
        suppressed: bool,
    },
}

/// One entry of the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Which alert.
    pub alert_id: String,
    /// When.
    pub at: f64,
    /// Who (`system` for the store itself).
    pub actor: String,
    /// What.
    pub action: AuditAction,
}
