//! The outward face: an authenticated WebSocket and HTTP API over the centre's state, served
//! by `aegis run --listen ADDR` (headless or in the 3D view) and `aegis orchestrator --listen
//! ADDR`. It reads the centre only through what the centre saves (the [`hub::Hub`] is its
//! `Watcher`), acts only through its operator channel ([`server::OperatorGate`]) and reads
//! history through the store's query service, so it never blocks the simulation or the centre.
//!
//! - [`auth`]: tokens and roles.
//! - [`protocol`]: the WebSocket frames (docs/asyncapi.yaml).
//! - [`hub`]: the fleet as the API knows it, and its numbered topics.
//! - [`http`]: the HTTP routes, live and (from the store) history.
//! - [`client`]: `aegis watch` and the benchmark's clients.
//! - [`server`]: routes, the WebSocket connection, `serve`.
//! - [`RunningApi`]: the server on its own thread beside a simulation.

pub mod auth;
pub mod client;
mod error;
pub mod http;
pub mod hub;
pub mod protocol;
mod running;
pub mod server;

pub use error::ApiError;
pub use running::{ApiSettings, RunningApi};
pub use server::{Api, serve};
