//! The centre as one synchronous runner, the same in every mode: `aegis run` and the 3D view
//! step it from the simulation's schedule, `aegis orchestrator` from Redis consumer groups.
//!
//! Messages go in with the time they were heard on the centre's clock; once a second `tick`
//! declares silent vehicles offline, answers operators, advances the decision loop and saves
//! what changed; what the centre has to send (commands, presence changes) waits in
//! [`Centre::take_outgoing`] for the transport. Which clock is the runner's choice: in
//! process it is simulated time, over Redis wall time (a silent vehicle there may be a
//! stopped process, whose simulated clock stopped with it).

use std::collections::BTreeMap;

use super::brain::{Brain, BrainFigures};
use super::operator;
use super::ports::{Changes, FailurePredictor, KeptState, OperatorChannel, StateStore};
use super::tracker::{Ingested, PresenceChange};
use crate::model::{AlertRecord, AlertUpdate, AuditEvent, Body, Envelope, FleetStatus, VehicleId, VehicleSummary};

/// Counters of the runner itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CentreCounters {
    /// New messages processed.
    pub messages: u64,
    /// Vehicles that went offline.
    pub went_offline: u64,
    /// Vehicles that came (back) online.
    pub came_online: u64,
    /// Operator requests answered.
    pub operator_requests: u64,
}

/// The decision loop with its ports.
pub struct Centre {
    /// The decision loop.
    pub brain: Brain,
    operators: Box<dyn OperatorChannel>,
    store: Box<dyn StateStore>,
    outgoing: Vec<Envelope>,
    /// Sequence numbers of what the centre publishes about each vehicle.
    central_seq: BTreeMap<VehicleId, u64>,
    /// How much of the alerts' audit trail has been published.
    audit_published: usize,
    /// The newest simulation time any vehicle reported.
    latest_sim_time: f64,
    /// (wall instant, messages processed) at each save of the last [`RATE_WINDOW`].
    message_counts: std::collections::VecDeque<(std::time::Instant, u64)>,
    /// The failure model, when one is loaded.
    predictor: Option<Box<dyn FailurePredictor>>,
    /// Counters.
    pub counters: CentreCounters,
}

/// The wall-clock window over which the status's message rate is measured.
const RATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(5);

impl Centre {
    /// A centre running `brain`, taking requests from `operators` and saving to `store`.
    pub fn new(brain: Brain, operators: Box<dyn OperatorChannel>, store: Box<dyn StateStore>) -> Self {
        Self { brain, operators, store, outgoing: Vec::new(), central_seq: BTreeMap::new(), audit_published: 0, latest_sim_time: 0.0, message_counts: Default::default(), predictor: None, counters: CentreCounters::default() }
    }

    /// The same centre consulting `predictor`: every new telemetry frame goes to it, and its
    /// evaluations to the decision loop at each tick.
    pub fn with_predictor(mut self, predictor: Box<dyn FailurePredictor>) -> Self {
        self.predictor = Some(predictor);
        self
    }

    /// Takes back what an earlier run kept (see [`Brain::restore`]).
    pub fn restore(&mut self, kept: KeptState) {
        if let Some(cursor) = &kept.cursor {
            self.central_seq = cursor.central_seq.clone();
        }
        self.brain.restore(kept);
        // What an earlier run audited, it published.
        self.audit_published = self.brain.alerts.audit().len();
    }

    /// The newest simulation time any vehicle reported: the clock for alert, command and
    /// mission timers over Redis, where shards run their own clocks at about the same pace.
    pub fn latest_sim_time(&self) -> f64 {
        self.latest_sim_time
    }

    /// Applies one message heard at `now` (the centre's clock).
    pub fn ingest(&mut self, envelope: &Envelope, now: f64) -> Ingested {
        self.latest_sim_time = self.latest_sim_time.max(envelope.sim_time);
        let (ingested, change) = self.brain.ingest(envelope, now);
        if ingested == Ingested::New {
            self.counters.messages += 1;
            if let (Some(predictor), Body::Telemetry(telemetry)) = (&mut self.predictor, &envelope.body) {
                predictor.observe(envelope.vehicle_id, envelope.sim_time, &telemetry.metrics);
            }
        }
        if let Some(change) = change {
            self.counters.came_online += 1;
            self.publish_presence(change, envelope.sim_time);
        }
        ingested
    }

    /// Once a second: vehicles silent too long at `now` go offline, operators are answered,
    /// timers and central rules advance to simulation time `sim_at`, commands due are queued
    /// for sending, and what changed is saved.
    pub fn tick(&mut self, sim_at: f64, now: f64) {
        for change in self.brain.fleet.check_presence(now) {
            self.counters.went_offline += 1;
            tracing::info!("{} offline: no message for {:.1} s", change.vehicle, change.presence.silent_s);
            self.brain.offline(change.vehicle, sim_at);
            let last_heard = change.presence.last_seen_sim_time;
            self.publish_presence(change, last_heard);
        }
        for request in self.operators.requests() {
            let reply = operator::apply(&mut self.brain, &request, sim_at);
            tracing::info!("operator {}: {:?} on `{}`: {}", request.actor, request.operation, request.alert, reply.error.as_deref().or(reply.command.as_deref()).unwrap_or("done"));
            self.operators.reply(&request, reply);
            self.counters.operator_requests += 1;
        }
        if let Some(predictor) = &mut self.predictor {
            for evaluation in predictor.poll() {
                self.brain.prediction(&evaluation, sim_at);
            }
        }
        let commands = self.brain.tick(sim_at);
        self.outgoing.extend(commands);
        self.save(sim_at);
    }

    /// What to send now, in order.
    pub fn take_outgoing(&mut self) -> Vec<Envelope> {
        std::mem::take(&mut self.outgoing)
    }

    /// Figures of the decision loop.
    pub fn figures(&self) -> BrainFigures {
        self.brain.figures()
    }

    /// The fleet status as published, at simulation time `sim_at`.
    pub fn status(&self, sim_at: f64) -> FleetStatus {
        let messages_per_second = match (self.message_counts.front(), self.message_counts.back()) {
            (Some((since, first)), Some((until, last))) if until > since => (last - first) as f64 / until.duration_since(*since).as_secs_f64(),
            _ => 0.0,
        };
        FleetStatus {
            updated: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            sim_time: sim_at,
            messages: self.counters.messages,
            messages_per_second,
            duplicates_dropped: self.brain.fleet.duplicates,
            fleet: self.brain.overview(),
        }
    }

    fn save(&mut self, sim_at: f64) {
        let alerts: Vec<AlertRecord> = self.brain.alerts.take_changed().into_iter().filter_map(|id| self.brain.alerts.get(&id).cloned()).collect();
        self.publish_alerts(&alerts, sim_at);
        let commands = self.brain.commands.take_changed();
        let missions = self.brain.missions.as_mut().map(|b| b.take_changed()).unwrap_or_default();
        let vehicles = self
            .brain
            .fleet
            .take_changed()
            .into_iter()
            .filter_map(|vehicle| {
                let state = self.brain.fleet.vehicle(vehicle)?;
                let mission = self.brain.missions.as_ref().and_then(|b| b.of_vehicle(vehicle)).map(|m| m.id.clone());
                Some((vehicle, VehicleSummary { status: state.status, online: state.online, seq: state.seen.highest(), sim_time: state.last_sim_time, mission }))
            })
            .collect();
        let mut cursor = self.brain.cursor();
        cursor.central_seq = self.central_seq.clone();
        let now = std::time::Instant::now();
        self.message_counts.push_back((now, self.counters.messages));
        while self.message_counts.front().is_some_and(|(at, _)| now.duration_since(*at) > RATE_WINDOW) {
            self.message_counts.pop_front();
        }
        let status = self.status(sim_at);
        self.store.save(Changes { status: Some(status), alerts, commands, missions, vehicles, cursor: Some(cursor) });
    }

    /// Publishes each changed alert whose life moved on (it has new audit events) with those
    /// events, so that history keeps every step; a mere repeat of an active alert is not news.
    fn publish_alerts(&mut self, changed: &[AlertRecord], sim_time: f64) {
        let audit = self.brain.alerts.audit();
        let new = &audit[self.audit_published.min(audit.len())..];
        for alert in changed {
            let events: Vec<AuditEvent> = new.iter().filter(|e| e.alert_id == alert.id).cloned().collect();
            if events.is_empty() {
                continue;
            }
            let vehicle = alert.key.vehicle;
            let seq = self.central_seq.entry(vehicle).or_default();
            self.outgoing.push(Envelope::new(vehicle, *seq, sim_time, Body::Alert(Box::new(AlertUpdate { alert: alert.clone(), audit: events }))));
            *seq += 1;
        }
        self.audit_published = audit.len();
    }

    fn publish_presence(&mut self, change: PresenceChange, sim_time: f64) {
        let seq = self.central_seq.entry(change.vehicle).or_default();
        self.outgoing.push(Envelope::new(change.vehicle, *seq, sim_time, Body::Presence(change.presence)));
        *seq += 1;
    }
}
