//! The message bus: every message a vehicle sends or receives goes through [`Bus`], on a named
//! [`Channel`]. The in-process [`MemoryBus`] is the embedded default; other transports
//! implement the same trait.

mod memory;

use std::sync::Arc;

use crossbeam_channel::Receiver;

use crate::model::{Envelope, MessageKind, VehicleId};

pub use memory::MemoryBus;

/// A named channel. Names follow `aegis:{kind}:{vehicle}`; the braces are a Redis Cluster hash
/// tag so that all of one vehicle's channels share a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Channel {
    /// What travels on it.
    pub kind: MessageKind,
    /// Whose channel it is.
    pub vehicle: VehicleId,
}

impl Channel {
    /// The channel an envelope belongs on.
    pub fn of(envelope: &Envelope) -> Channel {
        Channel { kind: envelope.kind(), vehicle: envelope.vehicle_id }
    }

    /// The channel's name, e.g. `aegis:telemetry:{V0001}`.
    pub fn name(&self) -> String {
        format!("aegis:{}:{{{}}}", self.kind.as_str(), self.vehicle)
    }
}

/// Which channels a subscription receives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Kinds to receive; empty means all.
    pub kinds: Vec<MessageKind>,
    /// Only this vehicle's channels; `None` means every vehicle.
    pub vehicle: Option<VehicleId>,
}

impl Filter {
    /// Every channel.
    pub fn all() -> Self {
        Self::default()
    }

    /// Every vehicle's channels of these kinds.
    pub fn kinds(kinds: &[MessageKind]) -> Self {
        Self { kinds: kinds.to_vec(), vehicle: None }
    }

    /// Whether `channel` passes the filter.
    pub fn matches(&self, channel: &Channel) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&channel.kind))
            && self.vehicle.is_none_or(|v| v == channel.vehicle)
    }
}

/// How much a subscriber may fall behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backlog {
    /// At most this many messages wait; beyond that new messages are dropped and counted.
    Bounded(usize),
    /// Nothing is dropped. For consumers that are drained every frame by their owner, such as
    /// the telemetry recorder, whose backlog is bounded by one frame's output.
    Lossless,
}

/// The receiving end of a subscription.
pub struct Subscription {
    receiver: Receiver<Envelope>,
}

impl Subscription {
    /// Messages waiting now, without blocking.
    pub fn try_iter(&self) -> impl Iterator<Item = Envelope> + '_ {
        self.receiver.try_iter()
    }

    /// The underlying channel, for consumers on their own thread.
    pub fn receiver(&self) -> &Receiver<Envelope> {
        &self.receiver
    }
}

/// Totals a bus keeps, for progress lines and summaries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct BusStats {
    /// Messages handed to `publish`.
    pub published: u64,
    /// Copies delivered to subscribers.
    pub delivered: u64,
    /// Copies dropped because a bounded subscriber was full.
    pub dropped: u64,
}

/// A publish/subscribe transport. Publishing never blocks: the simulation must not stall on
/// its consumers.
pub trait Bus: Send + Sync + 'static {
    /// Sends an envelope on its channel.
    fn publish(&self, envelope: Envelope);
    /// Receives every later message whose channel passes `filter`.
    fn subscribe(&self, filter: Filter, backlog: Backlog) -> Subscription;
    /// Totals so far.
    fn stats(&self) -> BusStats;
}

/// A shared bus handle.
pub type SharedBus = Arc<dyn Bus>;
