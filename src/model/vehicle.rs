//! Vehicle identity and state.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Component, ValidationError};

/// Identifier of a vehicle: `V` followed by at least four digits, e.g. `V0042`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VehicleId(pub u32);

impl fmt::Display for VehicleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "V{:04}", self.0)
    }
}

impl FromStr for VehicleId {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.strip_prefix('V').filter(|d| d.len() >= 4 && d.bytes().all(|b| b.is_ascii_digit()));
        digits
            .and_then(|d| d.parse().ok())
            .map(VehicleId)
            .ok_or_else(|| ValidationError::new("vehicle_id", format!("`{s}` is not of the form V0001")))
    }
}

impl Serialize for VehicleId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for VehicleId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What a vehicle is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VehicleStatus {
    /// Parked at a depot, available.
    #[default]
    Idle,
    /// Driving a route.
    EnRoute,
    /// Driving back to its home depot.
    Returning,
    /// Being repaired at a depot.
    InMaintenance,
    /// Stopped at the roadside by a rule or a command.
    Stopped,
    /// Not reporting.
    Offline,
}

/// What a vehicle can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// Carries freight.
    Cargo,
    /// Carries passengers.
    Passengers,
    /// Refrigerated body.
    Refrigerated,
    /// Cleared for motorway speeds.
    Highway,
}

/// The vehicle models the simulator knows, with their physical specifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VehicleModel {
    /// 3.5 t delivery van.
    Van,
    /// 18 t rigid truck.
    Truck,
    /// 12 m city bus.
    Bus,
}

impl VehicleModel {
    /// Every model.
    pub const ALL: [VehicleModel; 3] = [VehicleModel::Van, VehicleModel::Truck, VehicleModel::Bus];

    /// Wire name, as serde writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            VehicleModel::Van => "van",
            VehicleModel::Truck => "truck",
            VehicleModel::Bus => "bus",
        }
    }

    /// Capabilities this model comes with.
    pub fn capabilities(self) -> &'static [Capability] {
        match self {
            VehicleModel::Van => &[Capability::Cargo, Capability::Highway],
            VehicleModel::Truck => &[Capability::Cargo, Capability::Refrigerated, Capability::Highway],
            VehicleModel::Bus => &[Capability::Passengers],
        }
    }
}

/// Who a vehicle is: fixed for its life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VehicleIdentity {
    /// Identifier.
    pub id: VehicleId,
    /// Model.
    pub model: VehicleModel,
    /// Name of the depot it belongs to.
    pub home_depot: String,
    /// What it can do.
    pub capabilities: Vec<Capability>,
}

/// Position and orientation on the ground plane.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pose {
    /// East position in metres.
    pub x_m: f32,
    /// South position in metres.
    pub z_m: f32,
    /// Altitude in metres.
    pub altitude_m: f32,
    /// Heading in degrees clockwise from north.
    pub heading_deg: f32,
}

/// Health of every component, from 1 (new) to 0 (failed).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentHealth {
    /// Health indexed by [`Component`] discriminant.
    pub values: [f32; Component::ALL.len()],
}

impl Default for ComponentHealth {
    fn default() -> Self {
        Self { values: [1.0; Component::ALL.len()] }
    }
}

impl ComponentHealth {
    /// Health of one component.
    pub fn get(&self, component: Component) -> f32 {
        self.values[component as usize]
    }

    /// Sets the health of one component, clamped to [0, 1].
    pub fn set(&mut self, component: Component, health: f32) {
        self.values[component as usize] = health.clamp(0.0, 1.0);
    }

    /// The worst component health.
    pub fn worst(&self) -> f32 {
        self.values.iter().copied().fold(1.0, f32::min)
    }
}

/// What a vehicle is doing now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VehicleState {
    /// Activity.
    pub status: VehicleStatus,
    /// Where it is.
    pub pose: Pose,
    /// Speed in metres per second.
    pub speed_mps: f32,
    /// Per-component health.
    pub health: ComponentHealth,
}
