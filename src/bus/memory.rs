//! The in-process bus: crossbeam channels, one per subscriber.

use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::{Sender, TrySendError};

use super::{Backlog, Bus, BusStats, Channel, Filter, Subscription};
use crate::model::Envelope;

struct Subscriber {
    filter: Filter,
    sender: Sender<Envelope>,
}

/// An in-process [`Bus`]. Deterministic: subscribers see messages in publish order.
#[derive(Default)]
pub struct MemoryBus {
    subscribers: RwLock<Vec<Subscriber>>,
    published: AtomicU64,
    delivered: AtomicU64,
    dropped: AtomicU64,
}

impl MemoryBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Bus for MemoryBus {
    fn publish(&self, envelope: Envelope) {
        self.published.fetch_add(1, Ordering::Relaxed);
        let channel = Channel::of(&envelope);
        let mut subscribers = self.subscribers.write().expect("bus lock poisoned");
        // Subscribers whose receiver was dropped are forgotten here.
        let mut delivered = 0;
        let mut dropped = 0;
        subscribers.retain(|subscriber| {
            if !subscriber.filter.matches(&channel) {
                return true;
            }
            match subscriber.sender.try_send(envelope.clone()) {
                Ok(()) => {
                    delivered += 1;
                    true
                }
                Err(TrySendError::Full(_)) => {
                    dropped += 1;
                    true
                }
                Err(TrySendError::Disconnected(_)) => false,
            }
        });
        self.delivered.fetch_add(delivered, Ordering::Relaxed);
        self.dropped.fetch_add(dropped, Ordering::Relaxed);
    }

    fn subscribe(&self, filter: Filter, backlog: Backlog) -> Subscription {
        let (sender, receiver) = match backlog {
            Backlog::Bounded(capacity) => crossbeam_channel::bounded(capacity),
            Backlog::Lossless => crossbeam_channel::unbounded(),
        };
        self.subscribers.write().expect("bus lock poisoned").push(Subscriber { filter, sender });
        Subscription { receiver }
    }

    fn stats(&self) -> BusStats {
        let published = self.published.load(Ordering::Relaxed);
        BusStats {
            published,
            acknowledged: published,
            delivered: self.delivered.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            ..BusStats::default()
        }
    }
}
