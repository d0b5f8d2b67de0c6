//! Alerts and the recommendations attached to them.

use serde::{Deserialize, Serialize};

use super::{Component, Metric, VehicleId};

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

/// An anomaly worth a person's attention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alert {
    /// Unique id.
    pub id: String,
    /// The vehicle concerned.
    pub vehicle_id: VehicleId,
    /// The component concerned.
    pub component: Component,
    /// Short machine-readable type, e.g. `overheating`.
    pub alert_type: String,
    /// Severity.
    pub severity: Severity,
    /// Metric values that raised it, by wire name.
    pub evidence: Vec<(String, f32)>,
    /// What to do about it.
    pub recommendation: Recommendation,
    /// Simulation time it was raised, in seconds.
    pub raised_at_s: f64,
}

impl Alert {
    /// Evidence entry for a metric.
    pub fn evidence_of(metric: Metric, value: f32) -> (String, f32) {
        (metric.name().to_owned(), value)
    }
}
