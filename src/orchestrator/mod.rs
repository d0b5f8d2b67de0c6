//! The orchestrator: the centre that consumes the whole fleet. It tracks every vehicle's
//! latest state, sequence numbers and presence; [`service`] runs it over Redis; [`alerts`]
//! is the alert lifecycle it will raise alerts into.

pub mod alerts;
pub mod sequence;
pub mod service;
pub mod tracker;

pub use sequence::SeqSet;
pub use service::{OrchestratorOptions, OrchestratorSummary};
pub use tracker::{FleetTracker, Ingested, PresenceChange};
