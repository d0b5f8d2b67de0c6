//! The centre: consumes the whole fleet's messages, keeps its state, raises alerts, decides
//! and follows commands, and dispatches missions. It depends on the data model, the world
//! and the scenario only (a test checks it): never on the simulator, a transport or Bevy.
//!
//! [`brain`] is the decision loop, [`centre`] runs it with its [`ports`] (operators, state
//! store); the transports in `bus/` implement those ports and feed it.

pub mod alerts;
pub mod brain;
pub mod centre;
pub mod commands;
pub mod missions;
pub mod operator;
pub mod peers;
pub mod policy;
pub mod ports;
pub mod quality;
pub mod sequence;
pub mod tracker;

pub use centre::{Centre, CentreCounters};
pub use sequence::SeqSet;
pub use tracker::{FleetTracker, Ingested, PresenceChange};
