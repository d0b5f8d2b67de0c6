//! What the centre publishes about the fleet as a whole and about each vehicle: `aegis fleet
//! status`, the 3D view's counts and (later) the API's fleet topic read these.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Severity, VehicleStatus};

/// The centre's fleet status, published once a second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetStatus {
    /// Wall-clock time of this status, RFC 3339.
    pub updated: String,
    /// The centre's simulation time (the newest any vehicle reported), in seconds.
    pub sim_time: f64,
    /// New messages the centre has processed.
    pub messages: u64,
    /// Messages processed per wall-clock second, over the last few seconds.
    #[serde(default)]
    pub messages_per_second: f64,
    /// Redeliveries dropped by (vehicle, sequence number).
    pub duplicates_dropped: u64,
    /// The fleet at a glance.
    pub fleet: FleetOverview,
}

/// One vehicle as the centre last knew it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VehicleSummary {
    /// Latest reported activity.
    pub status: Option<VehicleStatus>,
    /// Reachable.
    pub online: bool,
    /// Highest sequence number processed.
    pub seq: Option<u64>,
    /// Simulation time of its latest message.
    pub sim_time: f64,
    /// The mission it holds.
    pub mission: Option<String>,
}

/// The fleet at a glance, as `aegis fleet status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetOverview {
    /// Vehicles by presence and status.
    #[serde(flatten)]
    pub fleet: FleetFigures,
    /// Active alerts by severity.
    pub active_alerts_by_severity: BTreeMap<Severity, u64>,
    /// Vehicles holding a mission.
    pub vehicles_on_mission: u64,
    /// Mean over vehicles of the health their active alerts leave them (1 = no alerts).
    pub mean_health: f32,
    /// Mission counts.
    pub missions: MissionFigures,
}

/// Counts over the whole fleet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetFigures {
    /// Vehicles known.
    pub vehicles: u64,
    /// Reachable now.
    pub online: u64,
    /// Silent past the limit.
    pub offline: u64,
    /// Vehicles by latest status.
    pub by_status: BTreeMap<VehicleStatus, u64>,
    /// Distinct sequence numbers processed, over every run of this consumer group.
    pub sequence_numbers_seen: u64,
    /// Sequence numbers missing below each vehicle's highest.
    pub gaps: u64,
}

/// Mission counts, for summaries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissionFigures {
    /// Missions generated.
    pub missions_generated: u64,
    /// Missions whose every stop was reached.
    pub missions_completed: u64,
    /// Times a mission went back to the queue after a recall, a refusal or a failed command.
    pub missions_reassigned: u64,
    /// Missions nobody started before their deadline.
    pub missions_missed: u64,
}
