//! Missions: work the centre hands to vehicles, as it travels in commands and events.

use serde::{Deserialize, Serialize};

/// What a mission is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MissionKind {
    /// Collect at one depot, deliver to another.
    #[default]
    Delivery,
    /// Visit a round of junctions and come back to the depot it started from.
    Patrol,
}

/// One place a mission visits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MissionStop {
    /// Road node in the scenario's world (both sides build the same world from the scenario).
    pub node: u32,
    /// What people call it: a depot's name, or `junction N`.
    pub name: String,
}
