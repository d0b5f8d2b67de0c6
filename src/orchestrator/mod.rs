//! The orchestrator: the centre that consumes the whole fleet. It tracks every vehicle's
//! latest state, sequence numbers and presence; [`service`] runs it over Redis; [`alerts`]
//! and [`commands`] are the alert and command lifecycles it will drive, [`policy`] the rules
//! that map alerts to commands.

pub mod alerts;
pub mod brain;
pub mod commands;
pub mod in_process;
pub mod missions;
pub mod operator;
pub mod peers;
pub mod policy;
pub mod quality;
pub mod sequence;
pub mod service;
pub mod tracker;

pub use sequence::SeqSet;
pub use service::{OrchestratorOptions, OrchestratorSummary};
pub use tracker::{FleetTracker, Ingested, PresenceChange};
