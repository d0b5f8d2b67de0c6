//! The centre's ports to the outside: where operators' requests come from, and where the
//! centre keeps what must outlive it and what others read of it (implemented by each transport,
//! in process and over Redis, in `bus/`); and the failure predictor it consults (implemented
//! by `ml/`). All are synchronous and never wait: an adapter that talks to a server does so on
//! its own task and hands over through channels.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::commands::TrackedCommand;
use super::missions::{BoardCursor, Mission};
use crate::model::{AlertRecord, Component, Envelope, FleetStatus, OperatorReply, OperatorRequest, Severity, TelemetryFrame, VehicleId, VehicleSummary};

/// Where operators' requests arrive and their replies go.
pub trait OperatorChannel: Send + Sync {
    /// Requests waiting now, oldest first, without blocking.
    fn requests(&mut self) -> Vec<OperatorRequest>;
    /// Answers one request.
    fn reply(&mut self, request: &OperatorRequest, reply: OperatorReply);
}

impl<T: OperatorChannel + ?Sized> OperatorChannel for Box<T> {
    fn requests(&mut self) -> Vec<OperatorRequest> {
        (**self).requests()
    }

    fn reply(&mut self, request: &OperatorRequest, reply: OperatorReply) {
        (**self).reply(request, reply);
    }
}

/// A failure predictor: fed every new telemetry frame, asked once a second for what it has
/// concluded since (it evaluates the whole fleet in one batch once a simulated minute).
pub trait FailurePredictor: Send + Sync {
    /// Takes one frame of `vehicle` sampled at simulated second `sim_s`.
    fn observe(&mut self, vehicle: VehicleId, sim_s: f64, frame: &TelemetryFrame);
    /// The evaluations made since the last call, each vehicle's newest.
    fn poll(&mut self) -> Vec<VehiclePrediction>;
}

/// One evaluation of one vehicle.
#[derive(Debug, Clone, PartialEq)]
pub struct VehiclePrediction {
    /// The vehicle.
    pub vehicle: VehicleId,
    /// Simulated second of the data it rests on.
    pub sim_s: f64,
    /// Each predicted component's outlook.
    pub components: Vec<ComponentOutlook>,
}

/// What the model expects of one component.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentOutlook {
    /// The component.
    pub component: Component,
    /// Calibrated probability of failing within each horizon: (hours, probability), shortest
    /// horizon first.
    pub within: Vec<(u32, f32)>,
    /// Estimated hours to failure.
    pub hours_to_failure: f32,
    /// The features that most raised the probability, with their values (for the alert's
    /// evidence), most first.
    pub evidence: Vec<(String, f32)>,
}

/// Where the centre's state goes: what changed since the last save, once a second. The store
/// keeps the records (alerts, commands, missions, vehicles) by id, so a restarted centre can
/// take them back, and publishes the status for operators.
pub trait StateStore: Send + Sync {
    /// Saves `changes`, without blocking.
    fn save(&mut self, changes: Changes);
}

/// Someone beside the state store who follows the centre (the API's view of the fleet): what
/// it saves, the vehicles' messages it takes in, and gauges of the process it runs in. Every
/// call returns at once.
pub trait Watcher: Send + Sync {
    /// What the centre saved.
    fn saved(&self, changes: &Changes);
    /// Messages from vehicles, as the centre took them in.
    fn heard(&self, envelopes: &[Envelope]);
    /// A gauge of the hosting process (`aegis_bus_backlog`, ...), with its help text.
    fn gauge(&self, _name: &str, _help: &str, _value: f64) {}
}

/// A state store whose saves a [`Watcher`] sees too, before the store takes them.
pub struct Watched<S> {
    /// The store.
    pub inner: S,
    /// Who else sees each save.
    pub watcher: std::sync::Arc<dyn Watcher>,
}

impl<S: StateStore> StateStore for Watched<S> {
    fn save(&mut self, changes: Changes) {
        self.watcher.saved(&changes);
        self.inner.save(changes);
    }
}

/// What changed since the last save.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// The fleet status now.
    pub status: Option<FleetStatus>,
    /// Alerts changed.
    pub alerts: Vec<AlertRecord>,
    /// Commands changed.
    pub commands: Vec<TrackedCommand>,
    /// Missions changed.
    pub missions: Vec<Mission>,
    /// Vehicles changed.
    pub vehicles: Vec<(VehicleId, VehicleSummary)>,
    /// The counters a restarted centre continues from.
    pub cursor: Option<Cursor>,
}

/// The counters a restarted centre continues from, so it neither reuses ids and sequence
/// numbers nor repeats what it has already commanded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// Next sequence number of what the centre sends each vehicle (commands).
    pub downlink_seq: BTreeMap<VehicleId, u64>,
    /// Next sequence number of what it publishes about each vehicle (presence).
    pub central_seq: BTreeMap<VehicleId, u64>,
    /// (alert, command, severity) already commanded.
    pub commanded: Vec<(String, String, Severity)>,
    /// Where the mission generator stands.
    pub missions: Option<BoardCursor>,
}

/// What a store hands back to a starting centre.
#[derive(Debug, Clone, Default)]
pub struct KeptState {
    /// Alerts, with acknowledgements, assignees and notes.
    pub alerts: Vec<AlertRecord>,
    /// Commands, in flight or finished.
    pub commands: Vec<TrackedCommand>,
    /// Missions.
    pub missions: Vec<Mission>,
    /// Counters.
    pub cursor: Option<Cursor>,
}

impl KeptState {
    /// Whether nothing was kept.
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty() && self.commands.is_empty() && self.missions.is_empty() && self.cursor.is_none()
    }
}

/// A store that keeps nothing, for a centre nobody reads from (benchmarks, tests of the
/// decision loop alone).
#[derive(Debug, Default)]
pub struct Forget;

impl StateStore for Forget {
    fn save(&mut self, _: Changes) {}
}

/// Two operator channels as one (operators over Redis and the API's in the same process):
/// requests from both, each reply to the channel its request came from.
pub struct JoinedOperators<A, B> {
    first: A,
    second: B,
    /// Requests from `second` not yet answered.
    from_second: std::collections::BTreeSet<String>,
}

impl<A: OperatorChannel, B: OperatorChannel> JoinedOperators<A, B> {
    /// `first` and `second` as one channel.
    pub fn new(first: A, second: B) -> Self {
        Self { first, second, from_second: Default::default() }
    }
}

impl<A: OperatorChannel, B: OperatorChannel> OperatorChannel for JoinedOperators<A, B> {
    fn requests(&mut self) -> Vec<OperatorRequest> {
        let mut requests = self.first.requests();
        let second = self.second.requests();
        self.from_second.extend(second.iter().map(|r| r.request_id.clone()));
        requests.extend(second);
        requests
    }

    fn reply(&mut self, request: &OperatorRequest, reply: OperatorReply) {
        if self.from_second.remove(&request.request_id) {
            self.second.reply(request, reply);
        } else {
            self.first.reply(request, reply);
        }
    }
}

/// An operator channel on which nobody ever asks anything.
#[derive(Debug, Default)]
pub struct NoOperators;

impl OperatorChannel for NoOperators {
    fn requests(&mut self) -> Vec<OperatorRequest> {
        Vec::new()
    }

    fn reply(&mut self, _: &OperatorRequest, _: OperatorReply) {}
}
