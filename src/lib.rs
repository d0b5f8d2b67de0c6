//! AEGIS: a fleet digital twin and predictive-maintenance workbench.
//!
//! - [`model`]: the data model every process shares.
//! - [`scenario`]: scenario files.
//! - [`bus`]: the message bus interface, in process and over Redis.
//! - [`sim`]: the simulated fleet (Bevy ECS + rapier).
//! - [`orchestrator`]: the centre that consumes the fleet.
//! - [`console`]: `aegis alerts ...` and `aegis fleet status` against a running orchestrator.
//! - [`processes`]: `aegis fleet`, `vehicle` and `orchestrator` over Redis.
//! - [`app`]: assembling headless and windowed apps, and running them.
//! - `gui` (feature `gui`): the 3D view and panels.

pub mod app;
pub mod bench;
pub mod bus;
pub mod cli;
pub mod console;
#[cfg(feature = "gui")]
pub mod gui;
pub mod model;
pub mod orchestrator;
pub mod processes;
pub mod scenario;
pub mod schedule;
pub mod sim;
mod third_party;
