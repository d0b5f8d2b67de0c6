//! `aegis orchestrator`: the centre over Redis. Consumes the whole fleet's uplink with a
//! consumer group, feeds the [`Centre`], publishes what it sends (commands, presence), and
//! keeps its state in Redis (alerts, commands, missions, counters) so that a restarted
//! orchestrator, even one killed with SIGKILL, carries on. Runs until the caller's shutdown
//! future completes, then drains what is left, acknowledges it and writes its summary.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use serde::Serialize;

use super::centre::{RedisOperators, RedisState};
use super::error::TransportError;
use super::{Backoff, Batch, ConsumerOptions, ConsumerStats, RedisBus, RedisConfig, StreamConsumer};
use crate::bus::keys::{Family, Keys, PARTITIONS, partition_of};
use crate::bus::{Bus, BusStats};
use crate::model::{Envelope, MessageKind, VehicleId};
use crate::orchestrator::ports::{JoinedOperators, OperatorChannel, StateStore, Watched, Watcher};
use crate::orchestrator::brain::{Brain, BrainFigures, DEFAULT_OFFLINE_AFTER_S};
use crate::orchestrator::missions::MissionState;
use crate::orchestrator::policy::Policy;
use crate::orchestrator::tracker::{FleetFigures, FleetTracker, Ingested};
use crate::orchestrator::{Centre, SeqSet};

/// What can stop `aegis orchestrator`.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The transport failed beyond its retries, or the kept state could not be read.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The summary could not be written.
    #[error("cannot write the summary {}: {source}", path.display())]
    Summary {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Everything `aegis orchestrator` needs to know.
#[derive(Debug, Clone)]
pub struct OrchestratorOptions {
    /// The server and key prefix; `identity` names the consumer.
    pub redis: RedisConfig,
    /// Consumer group; one active orchestrator per group.
    pub group: String,
    /// Take over entries another consumer of the group left pending this long.
    pub claim_idle: Duration,
    /// Declare a vehicle offline after this long without a message (wall time).
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

/// What the process adds beside the centre over Redis (the API, with `--listen`).
#[derive(Default)]
pub struct Beside {
    /// Follows what the centre saves and the vehicles' messages it reads.
    pub watcher: Option<std::sync::Arc<dyn Watcher>>,
    /// Operators' requests from elsewhere than Redis, answered there.
    pub operators: Option<Box<dyn OperatorChannel>>,
}

impl OrchestratorOptions {
    /// Defaults on `redis`: group `orchestrator`, reclaim after 10 s, offline after three
    /// missed heartbeats at real time, progress every 5 s.
    pub fn new(redis: RedisConfig) -> Self {
        Self {
            redis,
            group: "orchestrator".to_owned(),
            claim_idle: Duration::from_secs(10),
            offline_after: Duration::from_secs_f64(DEFAULT_OFFLINE_AFTER_S),
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
    /// Alerts, commands and missions an earlier run kept and this one took back.
    pub restored: Restored,
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

/// What a starting orchestrator took back.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Restored {
    /// Alerts.
    pub alerts: u64,
    /// Commands not yet in a final state.
    pub commands_in_flight: u64,
    /// Missions assigned or under way.
    pub missions_under_way: u64,
}

/// Runs until `shutdown` completes, then drains and returns the summary (also written to
/// `options.summary`); `beside` watches the centre and hands in more operators.
pub async fn run(options: OrchestratorOptions, beside: Beside, shutdown: impl Future<Output = ()>) -> Result<OrchestratorSummary, ServiceError> {
    let started = Instant::now();
    let mut shutdown = std::pin::pin!(shutdown);
    let keys = options.redis.keys();
    let mut connection = options.redis.connection()?;
    let mut tracker = FleetTracker::new(options.offline_after.as_secs_f64());
    if !restore_seen(&mut connection, &keys, &options.group, &mut tracker, shutdown.as_mut()).await? {
        return Err(TransportError::ShutDown.into());
    }
    let kept = RedisState::load(&mut connection, &keys, shutdown.as_mut()).await?;
    let restored = Restored {
        alerts: kept.alerts.len() as u64,
        commands_in_flight: kept.commands.iter().filter(|c| !c.state.is_final()).count() as u64,
        missions_under_way: kept.missions.iter().filter(|m| matches!(m.state, MissionState::Assigned | MissionState::InProgress)).count() as u64,
    };
    if !kept.is_empty() {
        tracing::info!("taking back an earlier run's state: {} alerts, {} commands in flight, {} missions under way", restored.alerts, restored.commands_in_flight, restored.missions_under_way);
    }
    let bus = RedisBus::new(options.redis.clone(), tokio::runtime::Handle::current())?;
    let mut consumer_options = ConsumerOptions::new(options.group.clone(), options.redis.identity.clone());
    consumer_options.claim_idle = Some(options.claim_idle);
    let mut consumer = StreamConsumer::new(connection.clone(), keys.clone(), Family::Uplink, consumer_options);
    let mut brain = Brain::with_fleet(options.policy.clone(), tracker);
    if let Some(scenario) = &options.scenario {
        brain = brain.with_scenario(scenario);
    }
    let operators = RedisOperators::start(&options.redis).await?;
    let (state, state_written) = RedisState::start(connection.clone(), keys.clone());
    let operators: Box<dyn OperatorChannel> = match beside.operators {
        Some(others) => Box::new(JoinedOperators::new(operators, others)),
        None => Box::new(operators),
    };
    let store: Box<dyn StateStore> = match &beside.watcher {
        Some(watcher) => Box::new(Watched { inner: state, watcher: watcher.clone() }),
        None => Box::new(state),
    };
    let mut centre = Centre::new(brain, operators, store);
    centre.restore(kept);
    let mut run = Run { centre, started, keys, group: options.group.clone(), bus, watcher: beside.watcher };

    tracing::info!("orchestrator `{}` of group `{}` reading {} partitions", options.redis.identity, options.group, PARTITIONS);
    let mut last_tick = Instant::now();
    let mut last_progress = Instant::now();
    // A read is never cancelled halfway (what it took would sit pending, unprocessed): the
    // shutdown is looked at between reads, each of which waits at most the consumer's block.
    while !has_completed(shutdown.as_mut()) {
        let batch = consumer.poll(true).await;
        run.process(&mut consumer, batch).await;
        if last_tick.elapsed() >= Duration::from_secs(1) {
            last_tick = Instant::now();
            run.tick();
        }
        if last_progress.elapsed() >= options.progress_every {
            last_progress = Instant::now();
            run.progress(&consumer);
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
    run.tick();
    run.bus.close(Duration::from_secs(10));
    let fleet = run.centre.brain.fleet.summary();
    let counters = run.centre.counters;
    let summary = OrchestratorSummary {
        vehicles_seen: fleet.vehicles,
        messages: counters.messages,
        messages_by_kind: run.centre.brain.fleet.by_kind.clone(),
        gaps: fleet.gaps,
        duplicates_dropped: run.centre.brain.fleet.duplicates,
        malformed: consumer.stats.rejected,
        reclaimed: consumer.stats.reclaimed,
        trimmed: consumer.stats.trimmed,
        sequence_numbers_seen: fleet.sequence_numbers_seen,
        went_offline: counters.went_offline,
        came_online: counters.came_online,
        restored,
        fleet,
        consumer: consumer.stats,
        bus: run.bus.stats(),
        decisions: run.centre.figures(),
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    // The last state written before the summary says we are done.
    drop(run);
    if tokio::time::timeout(Duration::from_secs(10), state_written).await.is_err() {
        tracing::warn!("the centre's last state was not written within 10 s");
    }
    if let Some(path) = &options.summary {
        let json = serde_json::to_string_pretty(&summary).expect("summaries serialise") + "\n";
        std::fs::write(path, json).map_err(|source| ServiceError::Summary { path: path.clone(), source })?;
    }
    Ok(summary)
}

/// Whether `future` has completed, without waiting for it. Call it until it says so, not
/// after.
pub fn has_completed(future: std::pin::Pin<&mut impl Future<Output = ()>>) -> bool {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    future.poll(&mut context).is_ready()
}

/// The centre with its transport.
struct Run {
    centre: Centre,
    started: Instant,
    keys: Keys,
    group: String,
    bus: RedisBus,
    /// Who follows the centre beside its store.
    watcher: Option<std::sync::Arc<dyn Watcher>>,
}

impl Run {
    /// The centre's clock over Redis: wall seconds since start.
    fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Applies a batch, then acknowledges it together with the sequence numbers it added.
    async fn process(&mut self, consumer: &mut StreamConsumer, batch: Batch) {
        if batch.is_empty() {
            return;
        }
        let now = self.now();
        let mut done = Vec::with_capacity(batch.deliveries.len() + batch.trimmed.len());
        let mut touched = std::collections::BTreeSet::new();
        for delivery in &batch.deliveries {
            if self.centre.ingest(&delivery.envelope, now) == Ingested::New {
                touched.insert(delivery.envelope.vehicle_id);
            }
            done.push((delivery.partition, delivery.id.clone()));
        }
        self.send();
        if let Some(watcher) = &self.watcher {
            let heard: Vec<Envelope> = batch.deliveries.iter().filter(|d| matches!(d.envelope.kind(), MessageKind::Telemetry | MessageKind::Event)).map(|d| d.envelope.clone()).collect();
            watcher.heard(&heard);
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
            let seen = &self.centre.brain.fleet.vehicle(*vehicle).expect("just ingested").seen;
            cmd.arg(vehicle.to_string()).arg(seen.encode());
        }
        let extra: Vec<(u16, redis::Cmd)> = seen_updates.into_iter().collect();
        if let Err(error) = consumer.commit(&done, &batch.rejected, &extra, Duration::from_secs(60)).await {
            tracing::warn!("{error}; the entries will be read again and dropped as duplicates");
        }
    }

    /// Once a second: presence, operators, timers, and the state saved.
    fn tick(&mut self) {
        let sim_at = self.centre.latest_sim_time();
        let now = self.now();
        self.centre.tick(sim_at, now);
        self.send();
        if let Some(watcher) = &self.watcher {
            let stats = self.bus.stats();
            watcher.gauge("aegis_bus_published", "Messages published on the bus by this process.", stats.published as f64);
            watcher.gauge("aegis_bus_backlog", "Messages published but not yet confirmed by the transport.", stats.backlog as f64);
        }
    }

    fn send(&mut self) {
        for envelope in self.centre.take_outgoing() {
            self.bus.publish(envelope);
        }
    }

    fn progress(&self, consumer: &StreamConsumer) {
        let figures = self.centre.brain.fleet.summary();
        let decisions = self.centre.figures();
        tracing::info!(
            "vehicles {} (online {}, offline {})  messages {}  gaps {}  duplicates {}  malformed {}  reclaimed {}  alerts {}  commands {}  missions done {}",
            figures.vehicles,
            figures.online,
            figures.offline,
            self.centre.counters.messages,
            figures.gaps,
            self.centre.brain.fleet.duplicates,
            consumer.stats.rejected,
            consumer.stats.reclaimed,
            decisions.alerts_raised,
            decisions.commands_issued,
            decisions.missions.missions_completed
        );
    }
}

/// Loads the sequence numbers this group processed before, so that a restarted orchestrator
/// drops redeliveries of them and counts gaps over the whole history. Waits for Redis until
/// `shutdown`; returns `false` if that came first. An unreadable entry is skipped, named.
async fn restore_seen(
    connection: &mut ConnectionManager,
    keys: &Keys,
    group: &str,
    tracker: &mut FleetTracker,
    mut shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Result<bool, TransportError> {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    for partition in 0..PARTITIONS {
        let key = keys.seen(partition, group);
        let stored = loop {
            let read: redis::RedisResult<Vec<(String, String)>> = redis::cmd("HGETALL").arg(&key).query_async(connection).await;
            match read {
                Ok(stored) => break stored,
                Err(error) if error.is_io_error() || error.is_connection_refusal() || error.is_timeout() => {
                    if !backoff.failing() {
                        tracing::warn!("waiting for redis: {error}");
                    }
                    tokio::select! {
                        () = tokio::time::sleep(backoff.next_delay()) => {}
                        () = shutdown.as_mut() => return Ok(false),
                    }
                }
                Err(error) => return Err(error.into()),
            }
        };
        for (vehicle, text) in stored {
            match (vehicle.parse::<VehicleId>(), SeqSet::decode(&text)) {
                (Ok(vehicle), Some(seen)) => tracker.restore(vehicle, seen),
                _ => tracing::warn!("{}", TransportError::Unreadable { key: key.clone(), field: vehicle, why: format!("`{text}` is not a set of sequence numbers") }),
            }
        }
    }
    Ok(true)
}
