//! What the API knows of the fleet, and its topics: fed from the centre's saves (the same
//! [`Changes`] its state store gets, once a simulated second), it keeps the fleet status, every
//! vehicle's summary and every alert, and turns each save into at most one delta per topic,
//! encoded once and shared by every subscriber through a broadcast channel.
//!
//! Each topic numbers its frames; the last [`REPLAY_KEPT`] deltas are kept so a client that
//! reconnects can be given exactly what it missed. A subscriber joins under the same lock the
//! deltas are published under, so nothing falls between its snapshot and its first delta.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use tokio::sync::broadcast;

use super::protocol::Topic;
use crate::model::{AlertRecord, FleetStatus, VehicleId, VehicleSummary};
use crate::orchestrator::ports::{Changes, StateStore};

/// Deltas kept per topic for clients that resume: four minutes of the fleet topic at one
/// delta a second.
pub const REPLAY_KEPT: usize = 256;

/// Deltas a subscriber may fall behind the broadcast before it is given a fresh snapshot.
const BROADCAST_CAPACITY: usize = 64;

/// A topic's frame as it goes on the wire.
#[derive(Serialize)]
struct TopicFrame<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    topic: &'static str,
    seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    resync: Option<bool>,
    data: &'a T,
}

fn encode<T: Serialize>(kind: &'static str, topic: Topic, seq: u64, resync: Option<bool>, data: &T) -> Arc<str> {
    let frame = TopicFrame { kind, topic: topic.name(), seq, resync, data };
    serde_json::to_string(&frame).unwrap_or_else(|e| format!(r#"{{"type":"error","error":"unencodable {} frame: {e}"}}"#, topic.name())).into()
}

/// The fleet topic's data: the summary and vehicles (all of them in a snapshot, those that
/// changed in a delta).
#[derive(Serialize)]
pub struct FleetData<'a> {
    /// The centre's fleet status.
    pub summary: Option<&'a FleetStatus>,
    /// Vehicles by id.
    pub vehicles: BTreeMap<VehicleId, &'a VehicleSummary>,
}

/// The alerts topic's data: whole alert records (all active or recent ones in a snapshot,
/// those that changed in a delta).
#[derive(Serialize)]
pub struct AlertsData<'a> {
    /// The records.
    pub alerts: Vec<&'a AlertRecord>,
}

struct Log {
    seq: u64,
    kept: VecDeque<Numbered>,
    sender: broadcast::Sender<Numbered>,
}

impl Log {
    fn new() -> Self {
        Self { seq: 0, kept: VecDeque::new(), sender: broadcast::channel(BROADCAST_CAPACITY).0 }
    }

    fn publish(&mut self, topic: Topic, data: &impl Serialize) {
        self.seq += 1;
        let frame = encode("delta", topic, self.seq, None, data);
        if self.kept.len() == REPLAY_KEPT {
            self.kept.pop_front();
        }
        self.kept.push_back((self.seq, frame.clone()));
        // No subscriber is not an error.
        let _ = self.sender.send((self.seq, frame));
    }
}

#[derive(Default)]
struct Known {
    status: Option<FleetStatus>,
    vehicles: BTreeMap<VehicleId, VehicleSummary>,
    alerts: BTreeMap<String, AlertRecord>,
}

struct State {
    known: Known,
    logs: BTreeMap<Topic, Log>,
}

/// A topic frame and its sequence number (a snapshot's is the latest delta's).
pub type Numbered = (u64, Arc<str>);

/// A subscriber's start on a topic: the frames to send first (a snapshot, or the deltas it
/// missed), then everything from `receiver`.
pub struct Joined {
    /// Snapshot or replayed deltas, in order.
    pub first: Vec<Numbered>,
    /// Later deltas (some may repeat `first`'s: skip what is not newer).
    pub receiver: broadcast::Receiver<Numbered>,
}

/// The API's view of the fleet.
pub struct Hub {
    state: Mutex<State>,
}

impl Default for Hub {
    fn default() -> Self {
        Self { state: Mutex::new(State { known: Known::default(), logs: Topic::ALL.into_iter().map(|t| (t, Log::new())).collect() }) }
    }
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes in one save of the centre: at most one delta per topic.
    pub fn apply(&self, changes: &Changes) {
        let mut state = self.lock();
        let State { known, logs } = &mut *state;
        if let Some(status) = &changes.status {
            known.status = Some(status.clone());
        }
        for (id, summary) in &changes.vehicles {
            known.vehicles.insert(*id, summary.clone());
        }
        if changes.status.is_some() || !changes.vehicles.is_empty() {
            let data = FleetData { summary: changes.status.as_ref(), vehicles: changes.vehicles.iter().map(|(id, s)| (*id, s)).collect() };
            logs.get_mut(&Topic::Fleet).expect("every topic has a log").publish(Topic::Fleet, &data);
        }
        if !changes.alerts.is_empty() {
            for alert in &changes.alerts {
                known.alerts.insert(alert.id.clone(), alert.clone());
            }
            let data = AlertsData { alerts: changes.alerts.iter().collect() };
            logs.get_mut(&Topic::Alerts).expect("every topic has a log").publish(Topic::Alerts, &data);
        }
    }

    /// Joins `topic`: the deltas after `since` when all of them are still kept, else a
    /// snapshot (flagged `resync` when the client asked to resume and could not).
    pub fn join(&self, topic: Topic, since: Option<u64>) -> Joined {
        let state = self.lock();
        let log = &state.logs[&topic];
        let receiver = log.sender.subscribe();
        if let Some(since) = since {
            let oldest_kept = log.kept.front().map_or(log.seq + 1, |(seq, _)| *seq);
            // Resuming from the present, or from a point whose every later delta is kept.
            if since <= log.seq && since + 1 >= oldest_kept {
                let first = log.kept.iter().filter(|(seq, _)| *seq > since).cloned().collect();
                return Joined { first, receiver };
            }
        }
        Joined { first: vec![Self::snapshot_of(&state, topic, since.is_some())], receiver }
    }

    /// A snapshot of `topic` now, as a frame numbered with the topic's latest sequence number.
    pub fn snapshot(&self, topic: Topic, resync: bool) -> Numbered {
        Self::snapshot_of(&self.lock(), topic, resync)
    }

    fn snapshot_of(state: &State, topic: Topic, resync: bool) -> Numbered {
        let seq = state.logs[&topic].seq;
        let known = &state.known;
        let frame = match topic {
            Topic::Fleet => {
                let data = FleetData { summary: known.status.as_ref(), vehicles: known.vehicles.iter().map(|(id, s)| (*id, s)).collect() };
                encode("snapshot", topic, seq, Some(resync), &data)
            }
            Topic::Alerts => encode("snapshot", topic, seq, Some(resync), &AlertsData { alerts: known.alerts.values().collect() }),
        };
        (seq, frame)
    }

    /// The fleet summary and vehicles, for HTTP.
    pub fn fleet_json(&self) -> serde_json::Value {
        let state = self.lock();
        let data = FleetData { summary: state.known.status.as_ref(), vehicles: state.known.vehicles.iter().map(|(id, s)| (*id, s)).collect() };
        serde_json::to_value(&data).unwrap_or_default()
    }

    /// One vehicle's summary, for HTTP.
    pub fn vehicle(&self, id: VehicleId) -> Option<VehicleSummary> {
        self.lock().known.vehicles.get(&id).cloned()
    }

    /// Alerts that pass `keep`, newest first, for HTTP.
    pub fn alerts(&self, keep: impl Fn(&AlertRecord) -> bool) -> Vec<AlertRecord> {
        let mut alerts: Vec<AlertRecord> = self.lock().known.alerts.values().filter(|a| keep(a)).cloned().collect();
        alerts.sort_by(|a, b| b.last_seen_at.total_cmp(&a.last_seen_at));
        alerts
    }

    /// A topic's latest sequence number.
    pub fn seq(&self, topic: Topic) -> u64 {
        self.lock().logs[&topic].seq
    }

    /// Subscribers now, over all topics.
    pub fn subscribers(&self) -> usize {
        self.lock().logs.values().map(|log| log.sender.receiver_count()).sum()
    }
}

/// The centre's state store that also feeds a [`Hub`]: whatever the centre saves goes to
/// `inner` as before and, unchanged, to the hub (a short lock and one encoding per topic,
/// once a simulated second).
pub struct Feeding<S> {
    /// The store the centre had.
    pub inner: S,
    /// The hub fed.
    pub hub: Arc<Hub>,
}

impl<S: StateStore> StateStore for Feeding<S> {
    fn save(&mut self, changes: Changes) {
        self.hub.apply(&changes);
        self.inner.save(changes);
    }
}
