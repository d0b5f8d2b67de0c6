//! Outgoing messages: systems queue vehicle messages here during a step; at the end of the
//! step they are numbered per vehicle and published in vehicle order, so the stream is the same
//! whatever order systems and threads ran in.

use bevy::prelude::*;

use super::clock::SimClock;
use super::fleet::Outages;
use crate::bus::SharedBus;
use crate::model::{Body, Envelope, EventKind, VehicleId};
use crate::schedule::SimSystems;

/// The bus the simulation publishes on and receives commands from.
#[derive(Resource, Clone)]
pub struct BusHandle(pub SharedBus);

/// Messages waiting to be published at the end of this step.
#[derive(Resource, Default)]
pub struct Outbox {
    queued: Vec<(VehicleId, Body)>,
    /// Next sequence number per vehicle, indexed by the id's number.
    next_seq: Vec<u64>,
    /// What vehicles out of touch keep until they are connected again, numbered in order.
    held: std::collections::BTreeMap<VehicleId, Vec<Envelope>>,
}

impl Outbox {
    /// An outbox whose numbering starts where `first_seq` says (0 for vehicles absent).
    pub fn starting_at(first_seq: &std::collections::BTreeMap<VehicleId, u64>) -> Self {
        let mut outbox = Self::default();
        for (vehicle, &seq) in first_seq {
            let slot = vehicle.0 as usize;
            if outbox.next_seq.len() <= slot {
                outbox.next_seq.resize(slot + 1, 0);
            }
            outbox.next_seq[slot] = seq;
        }
        outbox
    }

    /// Queues a message from `vehicle`.
    pub fn send(&mut self, vehicle: VehicleId, body: Body) {
        self.queued.push((vehicle, body));
    }

    /// Queues an event from `vehicle`.
    pub fn event(&mut self, vehicle: VehicleId, event: EventKind) {
        self.send(vehicle, Body::from(event));
    }
}

/// Running totals of what the simulation did, for progress lines and summaries.
#[derive(Resource, Debug, Default, Clone, Copy, serde::Serialize)]
pub struct SimCounters {
    /// Telemetry frames sent.
    pub telemetry_messages: u64,
    /// Events sent.
    pub events: u64,
    /// Heartbeats sent.
    pub heartbeats: u64,
    /// Failures injected.
    pub failures_injected: u64,
    /// Components that reached functional failure.
    pub functional_failures: u64,
    /// Local-rule decisions taken.
    pub local_rule_actions: u64,
    /// Commands applied or rejected.
    pub commands_handled: u64,
    /// Repairs completed.
    pub repairs: u64,
}

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<Outbox>().init_resource::<SimCounters>();
    app.add_systems(FixedUpdate, flush.in_set(SimSystems::Send));
}

fn flush(clock: Res<SimClock>, bus: Res<BusHandle>, outages: Res<Outages>, mut outbox: ResMut<Outbox>, mut counters: ResMut<SimCounters>) {
    if outbox.queued.is_empty() {
        return;
    }
    let outbox = &mut *outbox;
    let now = clock.seconds();
    let mut queued = std::mem::take(&mut outbox.queued);
    // Stable: a vehicle's own messages keep the order they were queued in.
    queued.sort_by_key(|(vehicle, _)| *vehicle);
    for (vehicle, body) in queued.drain(..) {
        match &body {
            crate::model::Body::Telemetry(_) => counters.telemetry_messages += 1,
            crate::model::Body::Event(_) => counters.events += 1,
            crate::model::Body::Heartbeat(_) => counters.heartbeats += 1,
            _ => {}
        }
        let slot = vehicle.0 as usize;
        if outbox.next_seq.len() <= slot {
            outbox.next_seq.resize(slot + 1, 0);
        }
        let seq = outbox.next_seq[slot];
        outbox.next_seq[slot] += 1;
        let envelope = Envelope::new(vehicle, seq, now, body);
        if outages.dark(vehicle, now) {
            outbox.held.entry(vehicle).or_default().push(envelope);
            continue;
        }
        // Connected again: what was kept goes first.
        if let Some(kept) = outbox.held.remove(&vehicle) {
            for envelope in kept {
                bus.0.publish(envelope);
            }
        }
        bus.0.publish(envelope);
    }
    // Hand the allocation back so steady state does not reallocate.
    outbox.queued = queued;
}
