//! The orchestrator: the centre that consumes the whole fleet. Here it tracks every vehicle's
//! latest state, sequence numbers and presence; [`service`] runs it over Redis.

pub mod sequence;
pub mod service;
pub mod tracker;

pub use sequence::SeqSet;
pub use service::{OrchestratorOptions, OrchestratorSummary};
pub use tracker::{FleetTracker, Ingested, PresenceChange};
