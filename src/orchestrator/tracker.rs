//! The orchestrator's picture of the fleet: every vehicle's latest state, the sequence numbers
//! it has sent, and whether it is reachable.

use std::collections::BTreeMap;



use super::sequence::SeqSet;
pub use crate::model::FleetFigures;
use crate::model::{Body, Envelope, EventKind, MessageKind, Presence, Telemetry, VehicleId, VehicleStatus};

pub use crate::model::HEARTBEAT_INTERVAL_S;

/// Heartbeats a vehicle may miss before it is declared offline.
pub const MISSED_HEARTBEATS: u32 = 3;

/// One vehicle as the centre knows it.
#[derive(Debug, Clone)]
pub struct VehicleState {
    /// Sequence numbers processed.
    pub seen: SeqSet,
    /// Latest reported activity.
    pub status: Option<VehicleStatus>,
    /// Latest telemetry.
    pub telemetry: Option<Box<Telemetry>>,
    /// Simulation time of the latest message.
    pub last_sim_time: f64,
    /// When the latest message arrived, on the centre's clock (seconds); `None` when only
    /// known from stored sequence numbers.
    pub last_seen: Option<f64>,
    /// Reachable.
    pub online: bool,
    /// Changed since [`FleetTracker::take_changed`] last ran.
    changed: bool,
}

impl VehicleState {
    fn new() -> Self {
        Self { seen: SeqSet::default(), status: None, telemetry: None, last_sim_time: 0.0, last_seen: None, online: false, changed: true }
    }
}

/// What [`FleetTracker::ingest`] made of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// New: applied.
    New,
    /// Seen before: dropped.
    Duplicate,
}

/// A change of reachability.
#[derive(Debug, Clone, PartialEq)]
pub struct PresenceChange {
    /// Whose.
    pub vehicle: VehicleId,
    /// What.
    pub presence: Presence,
}

/// Fleet state kept current from the bus.
#[derive(Debug)]
pub struct FleetTracker {
    vehicles: BTreeMap<VehicleId, VehicleState>,
    offline_after_s: f64,
    /// Messages applied, by kind.
    pub by_kind: BTreeMap<MessageKind, u64>,
    /// Messages dropped as duplicates.
    pub duplicates: u64,
}

impl FleetTracker {
    /// A tracker that declares a vehicle offline after `offline_after_s` seconds of silence on
    /// the centre's clock: simulated seconds in process, wall seconds over Redis (where a
    /// silent vehicle may be a stopped process whose clock stopped with it).
    pub fn new(offline_after_s: f64) -> Self {
        Self { vehicles: BTreeMap::new(), offline_after_s, by_kind: BTreeMap::new(), duplicates: 0 }
    }

    /// Restores the sequence numbers a previous run of this consumer group processed.
    pub fn restore(&mut self, vehicle: VehicleId, seen: SeqSet) {
        let state = self.vehicles.entry(vehicle).or_insert_with(VehicleState::new);
        state.seen = seen;
        state.changed = false;
    }

    /// Applies one message heard at `now` (the centre's clock, seconds). Returns whether it was new, and a presence
    /// change when the vehicle was offline. A duplicate changes nothing but liveness: it still
    /// proves the vehicle is there.
    pub fn ingest(&mut self, envelope: &Envelope, now: f64) -> (Ingested, Option<PresenceChange>) {
        let state = self.vehicles.entry(envelope.vehicle_id).or_insert_with(VehicleState::new);
        let fresh = state.seen.insert(envelope.seq);
        state.last_seen = Some(now);
        let change = (!state.online).then(|| {
            state.online = true;
            state.changed = true;
            PresenceChange { vehicle: envelope.vehicle_id, presence: Presence { online: true, last_seen_sim_time: envelope.sim_time, silent_s: 0.0 } }
        });
        if !fresh {
            self.duplicates += 1;
            return (Ingested::Duplicate, change);
        }
        *self.by_kind.entry(envelope.kind()).or_default() += 1;
        state.changed = true;
        state.last_sim_time = state.last_sim_time.max(envelope.sim_time);
        match &envelope.body {
            Body::Telemetry(t) => state.telemetry = Some(t.clone()),
            Body::Heartbeat(h) => state.status = Some(h.status),
            Body::Event(e) => {
                if let EventKind::StatusChanged { to, .. } = e.event {
                    state.status = Some(to);
                }
            }
            _ => {}
        }
        (Ingested::New, change)
    }

    /// Declares offline every online vehicle silent for longer than the limit at `now`.
    pub fn check_presence(&mut self, now: f64) -> Vec<PresenceChange> {
        let mut changes = Vec::new();
        for (&vehicle, state) in &mut self.vehicles {
            let Some(last) = state.last_seen else { continue };
            let silent = (now - last).max(0.0);
            if state.online && silent > self.offline_after_s {
                state.online = false;
                state.changed = true;
                changes.push(PresenceChange {
                    vehicle,
                    presence: Presence { online: false, last_seen_sim_time: state.last_sim_time, silent_s: silent },
                });
            }
        }
        changes
    }

    /// One vehicle.
    pub fn vehicle(&self, id: VehicleId) -> Option<&VehicleState> {
        self.vehicles.get(&id)
    }

    /// Every vehicle, in id order.
    pub fn vehicles(&self) -> impl Iterator<Item = (VehicleId, &VehicleState)> {
        self.vehicles.iter().map(|(id, s)| (*id, s))
    }

    /// Vehicles changed since the last call, and clears the mark.
    pub fn take_changed(&mut self) -> Vec<VehicleId> {
        self.vehicles.iter_mut().filter_map(|(id, s)| std::mem::take(&mut s.changed).then_some(*id)).collect()
    }

    /// Fleet-wide figures.
    pub fn summary(&self) -> FleetFigures {
        let mut figures = FleetFigures { vehicles: self.vehicles.len() as u64, ..FleetFigures::default() };
        for state in self.vehicles.values() {
            figures.sequence_numbers_seen += state.seen.count();
            figures.gaps += state.seen.missing();
            if state.online {
                figures.online += 1;
            } else if state.last_seen.is_some() {
                figures.offline += 1;
            }
            if let Some(status) = state.status {
                *figures.by_status.entry(status).or_default() += 1;
            }
        }
        figures
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Body, Heartbeat};

    fn heartbeat(vehicle: u32, seq: u64) -> Envelope {
        Envelope::new(VehicleId(vehicle), seq, seq as f64 * 5.0, Body::Heartbeat(Heartbeat { status: VehicleStatus::EnRoute, uptime_s: 1.0 }))
    }

    #[test]
    fn silence_makes_a_vehicle_offline_and_a_message_brings_it_back() {
        let start = 100.0;
        let mut tracker = FleetTracker::new(15.0);
        let (_, change) = tracker.ingest(&heartbeat(1, 0), start);
        assert!(change.is_some_and(|c| c.presence.online), "first contact is a connect");
        assert!(tracker.check_presence(start + 10.0).is_empty());
        let offline = tracker.check_presence(start + 16.0);
        assert_eq!(offline.len(), 1);
        assert!(!offline[0].presence.online && offline[0].presence.silent_s >= 16.0);
        assert!(tracker.check_presence(start + 30.0).is_empty(), "reported once");
        let (_, back) = tracker.ingest(&heartbeat(1, 1), start + 31.0);
        assert!(back.is_some_and(|c| c.presence.online));
        assert_eq!(tracker.ingest(&heartbeat(1, 1), start).0, Ingested::Duplicate);
        assert_eq!(tracker.summary().online, 1);
    }
}
