//! A simulated vehicle: its components ([`components`]), its model's physical specification
//! ([`spec`]) and the one path that spawns a fleet of them ([`spawn`]).

pub mod components;
pub mod spec;
pub mod spawn;

pub use components::{ActiveFailure, ActiveMission, CommandMemory, Condition, Drive, Faults, Navigation, Plan, RuleState, SensorState, Vehicle, VehicleBody};
pub use spawn::vehicle_seed;
pub use spec::{BATTERY_MOHM, PAD_MM, VehicleSpec, spec};
