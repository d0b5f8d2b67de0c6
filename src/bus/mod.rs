//! The message bus: every message a vehicle sends or receives goes through [`Bus`], on a
//! [`Channel`]. The in-process [`MemoryBus`] is the embedded default; [`RedisBus`] carries the
//! same envelopes between processes (docs/PROTOCOL.md). Each transport also implements the
//! centre's ports (operators, state store): [`local`] in process, [`redis`] over Redis.

pub mod keys;
pub mod local;
mod memory;
pub mod redis;

use std::sync::Arc;

use crossbeam_channel::Receiver;

use crate::model::{Envelope, MessageKind, VehicleId};

pub use memory::MemoryBus;
pub use redis::{RedisBus, RedisConfig};

/// What a message is and whose it is; subscriptions filter on it.
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
    /// Messages the transport confirmed as stored (Redis replied to `XADD`); the in-process bus
    /// confirms on publish.
    pub acknowledged: u64,
    /// Copies delivered to subscribers of this process.
    pub delivered: u64,
    /// Message sends that failed and were tried again.
    pub retried: u64,
    /// Messages that waited in memory because the transport was unreachable (held when a send
    /// failed, or arriving while it was failing).
    pub buffered: u64,
    /// Messages written to the local spill file because the memory buffer was full.
    pub spilled: u64,
    /// Messages lost: a full bounded subscriber, or a full spill file.
    pub dropped: u64,
    /// Messages published but not yet confirmed, now.
    pub backlog: u64,
}

impl BusStats {
    /// The counters in one short line, for progress output.
    pub fn line(&self) -> String {
        format!(
            "published {} acked {} retried {} buffered {} spilled {} dropped {} backlog {}",
            self.published, self.acknowledged, self.retried, self.buffered, self.spilled, self.dropped, self.backlog
        )
    }
}

/// A publish/subscribe transport. Publishing never blocks: the simulation must not stall on
/// its consumers or on the network.
pub trait Bus: Send + Sync + 'static {
    /// Sends an envelope on its channel.
    fn publish(&self, envelope: Envelope);
    /// Receives every later message whose channel passes `filter`.
    fn subscribe(&self, filter: Filter, backlog: Backlog) -> Subscription;
    /// Totals so far.
    fn stats(&self) -> BusStats;
    /// Waits until everything published so far is confirmed by the transport, for at most
    /// `timeout`; returns whether it was.
    fn flush(&self, timeout: std::time::Duration) -> bool {
        let _ = timeout;
        true
    }
    /// Why the transport cannot take more messages without growing its memory (its spill
    /// file refuses writes), while that lasts. The simulation slows down rather than lose
    /// them.
    fn held_up(&self) -> Option<String> {
        None
    }
}

/// A shared bus handle.
pub type SharedBus = Arc<dyn Bus>;
