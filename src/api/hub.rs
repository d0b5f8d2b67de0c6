//! What the API knows of the fleet, and its topics: fed from the centre's saves (the same
//! [`Changes`] its state store gets, once a simulated second) and from the vehicles' messages
//! on the bus (telemetry for maps and vehicle subscriptions, events), it keeps the fleet
//! status, every vehicle's summary, every alert, the recent commands, missions and events, and
//! turns each save or batch into at most one delta per topic, encoded once and shared by every
//! subscriber through a broadcast channel.
//!
//! Each topic numbers its frames; the last [`REPLAY_KEPT`] deltas are kept so a client that
//! reconnects can be given exactly what it missed. A subscriber joins under the same lock the
//! deltas are published under, so nothing falls between its snapshot and its first delta.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use tokio::sync::broadcast;

use super::protocol::Topic;
use crate::model::{AlertRecord, Body, Envelope, EventKind, FleetStatus, Metric, TelemetryFrame, VehicleId, VehicleSummary};
use crate::orchestrator::commands::TrackedCommand;
use crate::orchestrator::missions::{Mission, MissionState};
use crate::orchestrator::ports::{Changes, Watcher};

/// Deltas kept per topic for clients that resume: four minutes of the fleet topic at one
/// delta a second.
pub const REPLAY_KEPT: usize = 256;

/// Deltas a subscriber may fall behind the broadcast before it is given a fresh snapshot.
const BROADCAST_CAPACITY: usize = 64;

/// Vehicle events kept for the events topic's snapshot and `GET /api/v1/events`.
pub const EVENTS_KEPT: usize = 500;

/// Commands and missions kept (the newest; those still under way are never dropped). Older
/// ones are the store's: `aegis query commands`.
pub const RECORDS_KEPT: usize = 2000;

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
    pub vehicles: BTreeMap<VehicleId, FleetVehicle<'a>>,
}

/// A vehicle as the fleet topic shows it: the centre's summary, and where it is from its
/// latest telemetry (for maps).
#[derive(Serialize)]
pub struct FleetVehicle<'a> {
    /// The centre's summary.
    #[serde(flatten)]
    pub summary: &'a VehicleSummary,
    /// East and south position in the world frame, metres.
    pub position: Option<[f32; 2]>,
    /// Speed, km/h.
    pub speed_kph: Option<f32>,
}

/// One vehicle's telemetry frame, as the hub passes it to vehicle subscriptions.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The vehicle.
    pub vehicle: VehicleId,
    /// Its sequence number.
    pub seq: u64,
    /// Simulation seconds.
    pub sim_time: f64,
    /// The readings.
    pub metrics: TelemetryFrame,
}

/// The alerts topic's data: whole alert records (all active or recent ones in a snapshot,
/// those that changed in a delta).
#[derive(Serialize)]
pub struct AlertsData<'a> {
    /// The records.
    pub alerts: Vec<&'a AlertRecord>,
}

/// The commands topic's data: whole command records (the kept ones in a snapshot, those that
/// changed in a delta).
#[derive(Serialize)]
pub struct CommandsData<'a> {
    /// The records.
    pub commands: Vec<&'a TrackedCommand>,
}

/// A vehicle event as the events topic shows it.
#[derive(Debug, Clone, Serialize)]
pub struct VehicleEvent {
    /// The vehicle.
    pub vehicle: VehicleId,
    /// Its message's sequence number.
    pub seq: u64,
    /// Simulation seconds.
    pub sim_time: f64,
    /// What happened.
    pub event: EventKind,
}

/// The events topic's data: the latest [`EVENTS_KEPT`] events in a snapshot, those that came
/// since the last delta in a delta, oldest first.
#[derive(Serialize)]
pub struct EventsData<'a> {
    /// The events.
    pub events: Vec<&'a VehicleEvent>,
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
    commands: BTreeMap<String, TrackedCommand>,
    missions: BTreeMap<String, Mission>,
    events: VecDeque<VehicleEvent>,
    /// Each vehicle's latest (east, south, speed).
    whereabouts: BTreeMap<VehicleId, (f32, f32, f32)>,
    /// Telemetry frames and events taken in.
    messages_in: u64,
}

/// Drops the oldest records past [`RECORDS_KEPT`] that `finished` says are done; ids number
/// records in order, so the first are the oldest.
fn prune<T>(records: &mut BTreeMap<String, T>, finished: impl Fn(&T) -> bool) {
    if records.len() <= RECORDS_KEPT {
        return;
    }
    let excess = records.len() - RECORDS_KEPT;
    let old: Vec<String> = records.iter().filter(|(_, r)| finished(r)).take(excess).map(|(id, _)| id.clone()).collect();
    for id in old {
        records.remove(&id);
    }
}

impl Known {
    fn vehicle<'a>(&'a self, id: VehicleId, summary: &'a VehicleSummary) -> FleetVehicle<'a> {
        let at = self.whereabouts.get(&id);
        FleetVehicle { summary, position: at.map(|(x, z, _)| [*x, *z]), speed_kph: at.map(|(_, _, speed)| *speed) }
    }
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

/// Telemetry samples a vehicle subscription may fall behind before it skips ahead.
const SAMPLES_CAPACITY: usize = 4096;

/// The API's view of the fleet.
pub struct Hub {
    state: Mutex<State>,
    samples: broadcast::Sender<Arc<Sample>>,
    world: serde_json::Value,
    /// Gauges the hosting process reports for `/metrics` (store lag, bus backlog): name to
    /// (help, value).
    reported: Mutex<BTreeMap<String, (String, f64)>>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new(serde_json::Value::Null)
    }
}

impl Hub {
    /// A hub that serves `world` (roads, depots, extent) to maps.
    pub fn new(world: serde_json::Value) -> Self {
        let logs = Topic::SHARED.into_iter().map(|t| (t, Log::new())).collect();
        Self { state: Mutex::new(State { known: Known::default(), logs }), samples: broadcast::channel(SAMPLES_CAPACITY).0, world, reported: Mutex::default() }
    }

    /// The world, as `GET /api/v1/world` serves it.
    pub fn world(&self) -> &serde_json::Value {
        &self.world
    }

    /// Takes in a telemetry message: see [`Hub::take_in`].
    pub fn telemetry(&self, envelope: &Envelope) {
        self.take_in(std::slice::from_ref(envelope));
    }

    /// Takes in vehicles' messages: where each vehicle is (for the fleet topic) and its frames
    /// (for that vehicle's subscribers) from telemetry, and the events, as one delta of the
    /// events topic. Other messages are ignored.
    pub fn take_in(&self, envelopes: &[Envelope]) {
        let mut events = Vec::new();
        let mut state = self.lock();
        for envelope in envelopes {
            match &envelope.body {
                Body::Telemetry(telemetry) => {
                    let metrics = telemetry.metrics;
                    let at = (metrics.get(Metric::PositionXM), metrics.get(Metric::PositionZM), metrics.get(Metric::SpeedKph));
                    state.known.whereabouts.insert(envelope.vehicle_id, at);
                    if self.samples.receiver_count() > 0 {
                        let _ = self.samples.send(Arc::new(Sample { vehicle: envelope.vehicle_id, seq: envelope.seq, sim_time: envelope.sim_time, metrics }));
                    }
                }
                Body::Event(event) => events.push(VehicleEvent { vehicle: envelope.vehicle_id, seq: envelope.seq, sim_time: envelope.sim_time, event: event.event.clone() }),
                _ => continue,
            }
            state.known.messages_in += 1;
        }
        if events.is_empty() {
            return;
        }
        let State { known, logs } = &mut *state;
        logs.get_mut(&Topic::Events).expect("every shared topic has a log").publish(Topic::Events, &EventsData { events: events.iter().collect() });
        for event in events {
            if known.events.len() == EVENTS_KEPT {
                known.events.pop_front();
            }
            known.events.push_back(event);
        }
    }

    /// Every vehicle's telemetry from now on (a subscription filters for its own).
    pub fn samples(&self) -> broadcast::Receiver<Arc<Sample>> {
        self.samples.subscribe()
    }

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
            let data = FleetData { summary: changes.status.as_ref(), vehicles: changes.vehicles.iter().map(|(id, s)| (*id, known.vehicle(*id, s))).collect() };
            logs.get_mut(&Topic::Fleet).expect("every topic has a log").publish(Topic::Fleet, &data);
        }
        if !changes.alerts.is_empty() {
            for alert in &changes.alerts {
                known.alerts.insert(alert.id.clone(), alert.clone());
            }
            let data = AlertsData { alerts: changes.alerts.iter().collect() };
            logs.get_mut(&Topic::Alerts).expect("every topic has a log").publish(Topic::Alerts, &data);
        }
        if !changes.commands.is_empty() {
            for command in &changes.commands {
                known.commands.insert(command.id.clone(), command.clone());
            }
            prune(&mut known.commands, |c| c.state.is_final());
            let data = CommandsData { commands: changes.commands.iter().collect() };
            logs.get_mut(&Topic::Commands).expect("every topic has a log").publish(Topic::Commands, &data);
        }
        for mission in &changes.missions {
            known.missions.insert(mission.id.clone(), mission.clone());
        }
        prune(&mut known.missions, |m| matches!(m.state, MissionState::Completed | MissionState::Missed));
    }

    /// Joins `topic`: the deltas after `since` when all of them are still kept, else a
    /// snapshot (flagged `resync` when the client asked to resume and could not).
    pub fn join(&self, topic: Topic, since: Option<u64>) -> Joined {
        let state = self.lock();
        let log = &state.logs[&topic]; // only shared topics are joined
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
                let data = FleetData { summary: known.status.as_ref(), vehicles: known.vehicles.iter().map(|(id, s)| (*id, known.vehicle(*id, s))).collect() };
                encode("snapshot", topic, seq, Some(resync), &data)
            }
            Topic::Alerts => encode("snapshot", topic, seq, Some(resync), &AlertsData { alerts: known.alerts.values().collect() }),
            Topic::Commands => encode("snapshot", topic, seq, Some(resync), &CommandsData { commands: known.commands.values().collect() }),
            Topic::Events => encode("snapshot", topic, seq, Some(resync), &EventsData { events: known.events.iter().collect() }),
            // Vehicle topics have no shared log (see `samples`): their first frame is the
            // vehicle's next telemetry, and nobody asks for this.
            Topic::Vehicle => encode("snapshot", topic, 0, Some(resync), &serde_json::Value::Null),
        };
        (seq, frame)
    }

    /// The fleet summary and vehicles, for HTTP.
    pub fn fleet_json(&self) -> serde_json::Value {
        let state = self.lock();
        let known = &state.known;
        let data = FleetData { summary: known.status.as_ref(), vehicles: known.vehicles.iter().map(|(id, s)| (*id, known.vehicle(*id, s))).collect() };
        // Through text: readings are f32, and a value made directly would widen them (2503.9
        // would read 2503.89990234375).
        serde_json::to_string(&data).ok().and_then(|text| serde_json::from_str(&text).ok()).unwrap_or_default()
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

    /// Kept commands that pass `keep`, newest first, for HTTP.
    pub fn commands(&self, keep: impl Fn(&TrackedCommand) -> bool) -> Vec<TrackedCommand> {
        self.lock().known.commands.values().rev().filter(|c| keep(c)).cloned().collect()
    }

    /// Kept missions that pass `keep`, newest first, for HTTP.
    pub fn missions(&self, keep: impl Fn(&Mission) -> bool) -> Vec<Mission> {
        self.lock().known.missions.values().rev().filter(|m| keep(m)).cloned().collect()
    }

    /// Kept events that pass `keep`, oldest first, for HTTP.
    pub fn events(&self, keep: impl Fn(&VehicleEvent) -> bool) -> Vec<VehicleEvent> {
        self.lock().known.events.iter().filter(|e| keep(e)).cloned().collect()
    }

    /// Sets gauge `name` of `/metrics` (a Prometheus name, `aegis_...`) to `value`.
    pub fn report(&self, name: &str, help: &str, value: f64) {
        self.reported.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(name.to_owned(), (help.to_owned(), value));
    }

    /// The gauges reported, by name.
    pub fn reported(&self) -> BTreeMap<String, (String, f64)> {
        self.reported.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Telemetry frames and events taken in so far.
    pub fn messages_in(&self) -> u64 {
        self.lock().known.messages_in
    }

    /// A shared topic's latest sequence number (0 for vehicle topics).
    pub fn seq(&self, topic: Topic) -> u64 {
        self.lock().logs.get(&topic).map_or(0, |log| log.seq)
    }

    /// Subscribers now, over all topics.
    pub fn subscribers(&self) -> usize {
        self.lock().logs.values().map(|log| log.sender.receiver_count()).sum::<usize>() + self.samples.receiver_count()
    }

    /// Counts for `/metrics`: vehicles, alerts, active alerts.
    pub fn counts(&self) -> (usize, usize, usize) {
        let state = self.lock();
        (state.known.vehicles.len(), state.known.alerts.len(), state.known.alerts.values().filter(|a| a.active).count())
    }
}

/// The hub follows the centre: each save becomes at most one delta per topic (a short lock
/// and one encoding per topic, once a simulated second), and the vehicles' messages feed
/// maps, vehicle subscriptions and the events topic.
impl Watcher for Hub {
    fn saved(&self, changes: &Changes) {
        self.apply(changes);
    }

    fn heard(&self, envelopes: &[Envelope]) {
        self.take_in(envelopes);
    }

    fn gauge(&self, name: &str, help: &str, value: f64) {
        self.report(name, help, value);
    }
}

/// The world as maps draw it (`GET /api/v1/world`): its extent, road junctions, roads with
/// their speed limits, and depots.
pub fn describe_world(world: &crate::world::RoadNetwork) -> serde_json::Value {
    let nodes: Vec<[f32; 2]> = world.nodes.iter().map(|n| [n.x, n.y]).collect();
    let roads: Vec<serde_json::Value> = world.roads.iter().map(|r| serde_json::json!({ "a": r.a, "b": r.b, "limit_kph": (r.limit_mps * 3.6).round() })).collect();
    let depots: Vec<serde_json::Value> = world
        .depots
        .iter()
        .map(|d| {
            let at = world.nodes[d.node as usize];
            serde_json::json!({ "name": d.name, "node": d.node, "position": [at.x, at.y] })
        })
        .collect();
    serde_json::json!({ "half_size_m": world.terrain.half_size_m, "nodes": nodes, "roads": roads, "depots": depots })
}
