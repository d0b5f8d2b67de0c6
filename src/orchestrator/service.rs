//! `aegis orchestrator`: consumes the whole fleet's uplink over Redis, keeps the fleet state
//! current, reports presence changes and the fleet status, and on SIGINT/SIGTERM drains what
//! is left, acknowledges it and writes its summary.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use redis::aio::ConnectionManager;
use serde::Serialize;

use super::sequence::SeqSet;
use super::alerts::AlertRecord;
use super::brain::{Brain, BrainFigures};
use super::operator;
use super::policy::Policy;
use super::tracker::{FleetFigures, FleetTracker, Ingested};
use crate::bus::keys::{Family, Keys, PARTITIONS, partition_of};
use crate::bus::redis::{Backoff, Batch, ConsumerOptions, ConsumerStats, RedisBus, RedisConfig, StreamConsumer};
use crate::bus::{Bus, BusStats};
use crate::model::{Body, Envelope, MessageKind, VehicleId};

/// Everything `aegis orchestrator` needs to know.
#[derive(Debug, Clone)]
pub struct OrchestratorOptions {
    /// The server and key prefix; `identity` names the consumer.
    pub redis: RedisConfig,
    /// Consumer group; one active orchestrator per group.
    pub group: String,
    /// Take over entries another consumer of the group left pending this long.
    pub claim_idle: Duration,
    /// Declare a vehicle offline after this long without a message.
    pub offline_after: Duration,
    /// Write the summary JSON here at exit.
    pub summary: Option<PathBuf>,
    /// The decision policy.
    pub policy: Policy,
    /// Print a progress line this often.
    pub progress_every: Duration,
    /// The fleet's scenario, for its world and missions.
    pub scenario: Option<crate::scenario::Scenario>,
}

impl OrchestratorOptions {
    /// Defaults on `redis`: group `orchestrator`, reclaim after 10 s, offline after 15 s
    /// (three missed heartbeats at real time), progress every 5 s.
    pub fn new(redis: RedisConfig) -> Self {
        Self {
            redis,
            group: "orchestrator".to_owned(),
            claim_idle: Duration::from_secs(10),
            offline_after: Duration::from_secs(super::tracker::HEARTBEAT_INTERVAL_S * u64::from(super::tracker::MISSED_HEARTBEATS)),
            summary: None,
            policy: Policy::shipped(),
            progress_every: Duration::from_secs(5),
            scenario: None,
        }
    }
}

/// What an orchestrator run saw, written as JSON by `--summary`.
#[derive(Debug, Clone, Serialize)]
pub struct OrchestratorSummary {
    /// Vehicles known (this run, or from the group's stored sequence numbers).
    pub vehicles_seen: u64,
    /// New messages processed by this run.
    pub messages: u64,
    /// New messages by kind.
    pub messages_by_kind: BTreeMap<MessageKind, u64>,
    /// Sequence numbers missing below each vehicle's highest, over every run of the group.
    pub gaps: u64,
    /// Redeliveries dropped by (vehicle, sequence number).
    pub duplicates_dropped: u64,
    /// Unreadable entries, dead-lettered.
    pub malformed: u64,
    /// Entries taken over from a silent consumer.
    pub reclaimed: u64,
    /// Pending entries that had been trimmed from their stream before they were read.
    pub trimmed: u64,
    /// Distinct sequence numbers processed over every run of the group.
    pub sequence_numbers_seen: u64,
    /// Vehicles that went offline, and that came (back) online.
    pub went_offline: u64,
    /// See `went_offline`.
    pub came_online: u64,
    /// Fleet figures at exit.
    pub fleet: FleetFigures,
    /// The consumer's own counters.
    pub consumer: ConsumerStats,
    /// Presence messages and commands this run published.
    pub bus: BusStats,
    /// Alerts and commands.
    #[serde(flatten)]
    pub decisions: BrainFigures,
    /// Wall-clock seconds.
    pub wall_seconds: f64,
}

/// Runs until `stop` is set, then drains and returns the summary (also written to
/// `options.summary`).
pub async fn run(options: OrchestratorOptions, stop: Arc<AtomicBool>) -> anyhow::Result<OrchestratorSummary> {
    let started = Instant::now();
    let keys = options.redis.keys();
    let mut connection = options.redis.connection()?;
    let mut tracker = FleetTracker::new(options.offline_after);
    restore(&mut connection, &keys, &options.group, &mut tracker, &stop).await;
    let bus = RedisBus::new(options.redis.clone(), tokio::runtime::Handle::current())?;
    let mut consumer_options = ConsumerOptions::new(options.group.clone(), options.redis.identity.clone());
    consumer_options.claim_idle = Some(options.claim_idle);
    let mut consumer = StreamConsumer::new(connection.clone(), keys.clone(), Family::Uplink, consumer_options);
    let mut brain = Brain::with_fleet(options.policy.clone(), tracker);
    if let Some(scenario) = &options.scenario {
        brain = brain.with_scenario(scenario);
    }
    // Alerts an earlier run kept: ids continue, operators' acknowledgements and notes stay.
    let stored: Vec<(String, String)> = redis::cmd("HGETALL").arg(operator::alerts_key(keys.prefix())).query_async(&mut connection).await.unwrap_or_default();
    let mut kept: Vec<AlertRecord> = Vec::with_capacity(stored.len());
    for (id, json) in stored {
        match serde_json::from_str(&json) {
            Ok(record) => kept.push(record),
            Err(error) => tracing::warn!("kept alert {id} is unreadable and left out: {error}"),
        }
    }
    if !kept.is_empty() {
        tracing::info!("{} alerts kept from an earlier run", kept.len());
    }
    brain.alerts.restore(kept);
    let requests_cursor = server_time_id(&mut connection).await;
    let mut run = Run { brain, latest_sim_time: 0.0, requests_cursor, keys, group: options.group.clone(), bus, central_seq: BTreeMap::new(), messages: 0, went_offline: 0, came_online: 0, status: connection };

    tracing::info!("orchestrator `{}` of group `{}` reading {} partitions", options.redis.identity, options.group, PARTITIONS);
    let mut last_tick = Instant::now();
    let mut last_progress = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let batch = consumer.poll(true).await;
        run.process(&mut consumer, batch).await;
        if last_tick.elapsed() >= Duration::from_secs(1) {
            last_tick = Instant::now();
            run.tick().await;
        }
        if last_progress.elapsed() >= options.progress_every {
            last_progress = Instant::now();
            let figures = run.brain.fleet.summary();
            let decisions = run.brain.figures();
            tracing::info!(
                "vehicles {} (online {}, offline {})  messages {}  gaps {}  duplicates {}  malformed {}  reclaimed {}  alerts {}  commands {}  missions done {}",
                figures.vehicles,
                figures.online,
                figures.offline,
                run.messages,
                figures.gaps,
                run.brain.fleet.duplicates,
                consumer.stats.rejected,
                consumer.stats.reclaimed,
                decisions.alerts_raised,
                decisions.commands_issued,
                decisions.missions.missions_completed
            );
        }
    }
    // Drain: everything already in the streams for this group, then stop.
    tracing::info!("stopping: draining what is left");
    loop {
        let batch = consumer.poll(false).await;
        if batch.is_empty() {
            break;
        }
        run.process(&mut consumer, batch).await;
    }
    run.tick().await;
    run.bus.close(Duration::from_secs(10));
    let fleet = run.brain.fleet.summary();
    let summary = OrchestratorSummary {
        vehicles_seen: fleet.vehicles,
        messages: run.messages,
        messages_by_kind: run.brain.fleet.by_kind.clone(),
        gaps: fleet.gaps,
        duplicates_dropped: run.brain.fleet.duplicates,
        malformed: consumer.stats.rejected,
        reclaimed: consumer.stats.reclaimed,
        trimmed: consumer.stats.trimmed,
        sequence_numbers_seen: fleet.sequence_numbers_seen,
        went_offline: run.went_offline,
        came_online: run.came_online,
        fleet,
        consumer: consumer.stats,
        bus: run.bus.stats(),
        decisions: run.brain.figures(),
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    if let Some(path) = &options.summary {
        std::fs::write(path, serde_json::to_string_pretty(&summary)? + "\n").with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(summary)
}

/// The server's clock as a stream id: operator requests from before this start are not
/// answered (their senders have given up).
async fn server_time_id(connection: &mut ConnectionManager) -> String {
    let time: redis::RedisResult<(u64, u64)> = redis::cmd("TIME").query_async(connection).await;
    match time {
        Ok((seconds, micros)) => format!("{}-0", seconds * 1000 + micros / 1000),
        Err(_) => "$".to_owned(),
    }
}

/// Loads the sequence numbers this group processed before, so that a restarted orchestrator
/// drops redeliveries of them and counts gaps over the whole history. Waits for Redis.
async fn restore(connection: &mut ConnectionManager, keys: &Keys, group: &str, tracker: &mut FleetTracker, stop: &AtomicBool) {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    'partitions: for partition in 0..PARTITIONS {
        loop {
            let stored: redis::RedisResult<Vec<(String, String)>> = redis::cmd("HGETALL").arg(keys.seen(partition, group)).query_async(connection).await;
            match stored {
                Ok(stored) => {
                    for (vehicle, text) in stored {
                        match (vehicle.parse::<VehicleId>(), SeqSet::decode(&text)) {
                            (Ok(vehicle), Some(seen)) => tracker.restore(vehicle, seen),
                            _ => tracing::warn!("{}: unreadable entry {vehicle} = {text} ignored", keys.seen(partition, group)),
                        }
                    }
                    continue 'partitions;
                }
                Err(error) => {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    if !backoff.failing() {
                        tracing::warn!("waiting for redis: {error}");
                    }
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }
}

/// The state of one orchestrator run.
struct Run {
    /// Fleet state, alerts and commands.
    brain: Brain,
    /// The newest simulation time any vehicle reported: the clock for alert and command
    /// timers (shards run their own clocks at about the same pace).
    latest_sim_time: f64,
    /// Operator requests after this stream id are still to be answered.
    requests_cursor: String,
    keys: Keys,
    group: String,
    bus: RedisBus,
    /// Sequence numbers of what this run publishes about each vehicle.
    central_seq: BTreeMap<VehicleId, u64>,
    messages: u64,
    went_offline: u64,
    came_online: u64,
    status: ConnectionManager,
}

impl Run {
    /// Applies a batch, then acknowledges it together with the sequence numbers it added.
    async fn process(&mut self, consumer: &mut StreamConsumer, batch: Batch) {
        if batch.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut done = Vec::with_capacity(batch.deliveries.len() + batch.trimmed.len());
        let mut touched = std::collections::BTreeSet::new();
        for delivery in &batch.deliveries {
            self.latest_sim_time = self.latest_sim_time.max(delivery.envelope.sim_time);
            let (ingested, change) = self.brain.ingest(&delivery.envelope, now);
            if ingested == Ingested::New {
                self.messages += 1;
                touched.insert(delivery.envelope.vehicle_id);
            }
            if let Some(change) = change {
                self.came_online += 1;
                self.publish_presence(change.vehicle, change.presence, delivery.envelope.sim_time);
            }
            done.push((delivery.partition, delivery.id.clone()));
        }
        done.extend(batch.trimmed);
        let mut seen_updates: BTreeMap<u16, redis::Cmd> = BTreeMap::new();
        for vehicle in &touched {
            let partition = partition_of(*vehicle);
            let cmd = seen_updates.entry(partition).or_insert_with(|| {
                let mut cmd = redis::cmd("HSET");
                cmd.arg(self.keys.seen(partition, &self.group));
                cmd
            });
            let seen = &self.brain.fleet.vehicle(*vehicle).expect("just ingested").seen;
            cmd.arg(vehicle.to_string()).arg(seen.encode());
        }
        let extra: Vec<(u16, redis::Cmd)> = seen_updates.into_iter().collect();
        if let Err(error) = consumer.commit(&done, &batch.rejected, &extra, Duration::from_secs(60)).await {
            tracing::warn!("{error}; the entries will be read again and dropped as duplicates");
        }
    }

    /// Once a second: presence, and the fleet status for operators.
    async fn tick(&mut self) {
        for change in self.brain.fleet.check_presence(Instant::now()) {
            self.went_offline += 1;
            tracing::info!("{} offline: no message for {:.1} s", change.vehicle, change.presence.silent_s);
            let sim_time = change.presence.last_seen_sim_time;
            self.brain.offline(change.vehicle, self.latest_sim_time);
            self.publish_presence(change.vehicle, change.presence, sim_time);
        }
        for command in self.brain.tick(self.latest_sim_time) {
            self.bus.publish(command);
        }
        self.answer_operators().await;
        let mut pipe = redis::pipe();
        let status = serde_json::json!({
            "updated": humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            "group": self.group,
            "messages": self.messages,
            "duplicates_dropped": self.brain.fleet.duplicates,
            "fleet": self.brain.overview(),
        });
        pipe.cmd("SET").arg(self.keys.fleet_status()).arg(status.to_string()).ignore();
        for id in self.brain.alerts.take_changed() {
            let alert = self.brain.alerts.get(&id).expect("changed alerts exist");
            let json = serde_json::to_string(alert).expect("alerts serialise");
            pipe.cmd("HSET").arg(operator::alerts_key(self.keys.prefix())).arg(&id).arg(json).ignore();
        }
        for vehicle in self.brain.fleet.take_changed() {
            let state = self.brain.fleet.vehicle(vehicle).expect("listed by the tracker");
            let json = serde_json::json!({
                "status": state.status,
                "online": state.online,
                "seq": state.seen.highest(),
                "sim_time": state.last_sim_time,
                "mission": self.brain.missions.as_ref().and_then(|b| b.of_vehicle(vehicle)).map(|m| &m.id),
            });
            pipe.cmd("HSET").arg(self.keys.vehicles(partition_of(vehicle))).arg(vehicle.to_string()).arg(json.to_string()).ignore();
        }
        if let Err(error) = pipe.query_async::<()>(&mut self.status).await {
            tracing::debug!("fleet status not written: {error}");
        }
    }

    /// Applies operators' requests and answers each on its reply list.
    async fn answer_operators(&mut self) {
        let key = operator::requests_key(self.keys.prefix());
        let read: redis::RedisResult<redis::Value> =
            redis::cmd("XREAD").arg("COUNT").arg(100).arg("STREAMS").arg(&key).arg(&self.requests_cursor).query_async(&mut self.status).await;
        let Ok(redis::Value::Array(streams)) = read else { return };
        let mut pipe = redis::pipe();
        let mut answered = 0;
        for stream in streams {
            let redis::Value::Array(mut pair) = stream else { continue };
            let Some(redis::Value::Array(entries)) = pair.pop() else { continue };
            for entry in entries {
                let Ok((id, fields)) = redis::from_redis_value::<(String, Vec<(String, String)>)>(entry) else { continue };
                self.requests_cursor = id.clone();
                let text = fields.iter().find(|(f, _)| f == "request").map(|(_, v)| v.as_str()).unwrap_or("");
                match serde_json::from_str::<operator::Request>(text) {
                    Ok(request) => {
                        let reply = operator::apply(&mut self.brain.alerts, &request, self.latest_sim_time);
                        tracing::info!("operator {}: {:?} on {}: {}", request.actor, request.operation, request.alert, reply.error.as_deref().unwrap_or("done"));
                        let reply_key = operator::reply_key(self.keys.prefix(), &request.request_id);
                        pipe.cmd("LPUSH").arg(&reply_key).arg(serde_json::to_string(&reply).expect("replies serialise")).ignore();
                        pipe.cmd("EXPIRE").arg(&reply_key).arg(60).ignore();
                        answered += 1;
                    }
                    Err(error) => tracing::warn!("{key} entry {id}: unreadable request ({error}); ignored"),
                }
            }
        }
        if answered > 0
            && let Err(error) = pipe.query_async::<()>(&mut self.status).await
        {
            tracing::warn!("operator replies not written: {error}");
        }
    }

    fn publish_presence(&mut self, vehicle: VehicleId, presence: crate::model::Presence, sim_time: f64) {
        let seq = self.central_seq.entry(vehicle).or_default();
        self.bus.publish(Envelope::new(vehicle, *seq, sim_time, Body::Presence(presence)));
        *seq += 1;
    }
}
