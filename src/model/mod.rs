//! The AEGIS data model: every type that crosses a process boundary, with serde and
//! validation. Nothing here depends on Bevy, so any consumer can use it.

mod alert;
mod message;
mod mission;
mod operator;
mod rule;
mod status;
pub mod metrics;
mod telemetry;
mod time;
mod vehicle;

pub use alert::{AlertKey, AlertUpdate, AlertRecord, AuditAction, AuditEvent, Note, Origin, Recommendation, RecommendedAction, Severity};
pub use message::{
    Body, Command, CommandAck, Presence, CommandAction, CommandOutcome, Envelope, Event, EventKind, Heartbeat,
    HEARTBEAT_INTERVAL_S, MessageKind, PROTOCOL_VERSION, ParseError, RuleDecision,
};
pub use mission::{MissionKind, MissionStop};
pub use operator::{Operation, OperatorReply, OperatorRequest};
pub use rule::{RULE_COUNT, RuleId};
pub use status::{FleetFigures, FleetOverview, FleetStatus, MissionFigures, VehicleSummary};
pub use metrics::{METRIC_COUNT, METRICS, Metric, MetricGroup, MetricSpec};
pub use telemetry::{FailureTruth, Telemetry, TelemetryFrame};
pub use time::WallTime;
pub use vehicle::{
    Capability, ComponentHealth, Pose, VehicleId, VehicleIdentity, VehicleModel, VehicleState,
    VehicleStatus,
};

use serde::{Deserialize, Serialize};

/// A validation failure, naming the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {problem}")]
pub struct ValidationError {
    /// Dotted path of the field.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl ValidationError {
    /// A new error for `field`.
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self { field: field.into(), problem: problem.into() }
    }
}

/// A vehicle component that can wear or fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Component {
    /// Engine block and internals.
    Engine,
    /// Radiator, pump, hoses and coolant.
    CoolingSystem,
    /// Oil pump and lubrication circuit.
    Lubrication,
    /// Starter battery.
    Battery,
    /// Brake pads and discs.
    Brakes,
    /// Tyres.
    Tyres,
    /// Wheel bearings.
    WheelBearings,
    /// Sensors and their wiring.
    Sensors,
    /// The telematics unit and its link to the centre.
    Telematics,
}

impl Component {
    /// Every component, in discriminant order.
    pub const ALL: [Component; 9] = [
        Component::Engine,
        Component::CoolingSystem,
        Component::Lubrication,
        Component::Battery,
        Component::Brakes,
        Component::Tyres,
        Component::WheelBearings,
        Component::Sensors,
        Component::Telematics,
    ];

    /// Wire name, as serde writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Engine => "engine",
            Component::CoolingSystem => "cooling_system",
            Component::Lubrication => "lubrication",
            Component::Battery => "battery",
            Component::Brakes => "brakes",
            Component::Tyres => "tyres",
            Component::WheelBearings => "wheel_bearings",
            Component::Sensors => "sensors",
            Component::Telematics => "telematics",
        }
    }

    /// Whether a failure of it endangers people, not only the vehicle's availability.
    pub fn safety_critical(self) -> bool {
        matches!(self, Component::Brakes | Component::Tyres | Component::WheelBearings)
    }
}

/// The failure modes the simulator can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// Coolant escapes; the engine overheats once the level is low.
    CoolantLeak,
    /// Pads wear faster than normal until metal meets disc.
    BrakePadWear,
    /// Cells lose capacity and gain resistance; voltage sags under load.
    BatteryDegradation,
    /// A tyre loses pressure; hot, under-inflated tyres can blow out.
    SlowPuncture,
    /// The oil pump loses delivery; oil pressure falls, then collapses.
    OilPumpFailure,
    /// A wheel bearing wears; its hub vibrates and heats.
    WheelBearingWear,
    /// A sensor sticks at its last value.
    SensorStuck,
    /// A sensor's reading drifts away from the truth.
    SensorDrift,
}

impl FailureMode {
    /// Every failure mode.
    pub const ALL: [FailureMode; 8] = [
        FailureMode::CoolantLeak,
        FailureMode::BrakePadWear,
        FailureMode::BatteryDegradation,
        FailureMode::SlowPuncture,
        FailureMode::OilPumpFailure,
        FailureMode::WheelBearingWear,
        FailureMode::SensorStuck,
        FailureMode::SensorDrift,
    ];

    /// Wire name, as serde writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureMode::CoolantLeak => "coolant_leak",
            FailureMode::BrakePadWear => "brake_pad_wear",
            FailureMode::BatteryDegradation => "battery_degradation",
            FailureMode::SlowPuncture => "slow_puncture",
            FailureMode::OilPumpFailure => "oil_pump_failure",
            FailureMode::WheelBearingWear => "wheel_bearing_wear",
            FailureMode::SensorStuck => "sensor_stuck",
            FailureMode::SensorDrift => "sensor_drift",
        }
    }

    /// The component this mode damages.
    pub fn component(self) -> Component {
        match self {
            FailureMode::CoolantLeak => Component::CoolingSystem,
            FailureMode::BrakePadWear => Component::Brakes,
            FailureMode::BatteryDegradation => Component::Battery,
            FailureMode::SlowPuncture => Component::Tyres,
            FailureMode::OilPumpFailure => Component::Lubrication,
            FailureMode::WheelBearingWear => Component::WheelBearings,
            FailureMode::SensorStuck | FailureMode::SensorDrift => Component::Sensors,
        }
    }

    /// Whether this is a fault of the measurement rather than of the machine.
    pub fn is_sensor_fault(self) -> bool {
        self.component() == Component::Sensors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_are_what_serde_writes() {
        let serde_name = |v: serde_json::Value| v.as_str().map(str::to_owned);
        for c in Component::ALL {
            assert_eq!(serde_name(serde_json::to_value(c).unwrap()).as_deref(), Some(c.as_str()));
        }
        for m in FailureMode::ALL {
            assert_eq!(serde_name(serde_json::to_value(m).unwrap()).as_deref(), Some(m.as_str()));
        }
        for m in VehicleModel::ALL {
            assert_eq!(serde_name(serde_json::to_value(m).unwrap()).as_deref(), Some(m.as_str()));
        }
    }
}
