//! AEGIS: a fleet digital twin and predictive-maintenance workbench.
//!
//! - [`model`]: the data model every process shares (no Bevy).
//! - [`world`]: terrain, roads, depots and routing, shared by the simulator and the centre (no
//!   Bevy).
//! - [`scenario`]: scenario files.
//! - [`bus`]: the message bus interface, in process and over Redis.
//! - [`sim`]: the simulated fleet (Bevy ECS + rapier).
//! - [`orchestrator`]: the centre that consumes the fleet; depends on neither the simulator,
//!   nor a transport, nor Bevy.
//! - [`console`]: `aegis alerts ...` and `aegis fleet status` against a running orchestrator.
//! - [`processes`]: `aegis fleet`, `vehicle` and `orchestrator` over Redis, with injected
//!   shutdown.
//! - [`store`]: fleet history in SQLite, fed from the bus, and queries over it.
//! - [`api`]: the WebSocket and HTTP API for outside clients.
//! - [`ml`]: failure prediction: features, labels, datasets, the model.
//! - [`app`]: assembling headless and windowed apps, and running them.
//! - `gui` (feature `gui`): the 3D view and panels.

pub mod api;
pub mod app;
pub mod bench;
pub mod bus;
pub mod cli;
pub mod console;
#[cfg(feature = "gui")]
pub mod gui;
pub mod ml;
pub mod model;
pub mod orchestrator;
pub mod processes;
pub mod scenario;
pub mod schedule;
pub mod sim;
pub mod store;
mod third_party;
pub mod world;
