//! `aegis store --redis URL --store URL`: the store as a process of its own, reading every
//! message family (uplink, downlink, central) of every partition with its own consumer
//! group, and acknowledging an entry only once its row is committed.
//!
//! While the database is down the writer spools (see [`super::writer`]); entries whose rows
//! sit in the spool stay unacknowledged until the replay has committed them, so the group's
//! pending entries are the spool of last resort: a store process killed with SIGKILL and
//! started again re-reads them, and since a row's key is its message's (run, vehicle, seq),
//! what it had already committed adds nothing.
//!
//! The run: the first shard of a fleet proposes its [`RunInfo`] under the `run` key and every
//! shard, and this process, takes whatever that key holds ([`agree_run`], docs/PROTOCOL.md).

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::AsyncCommands as _;
use serde::Serialize;

use super::writer::{BatchWriter, WriterFigures, WriterSettings, WriterStatus};
use super::{Batch, DeadLetter, RunInfo, StoreError};
use crate::bus::keys::Family;
use crate::bus::redis::service::has_completed;
use crate::bus::redis::{Backoff, ConsumerOptions, ConsumerStats, RedisConfig, StreamConsumer};

/// Everything `aegis store --redis` needs.
#[derive(Debug, Clone)]
pub struct StoreServiceOptions {
    /// The server and key prefix; `identity` names the consumer.
    pub redis: RedisConfig,
    /// The database.
    pub store: String,
    /// Consumer group, `store` unless several stores read one fleet.
    pub group: String,
    /// Batching and spooling.
    pub settings: WriterSettings,
    /// Print a progress line this often.
    pub progress_every: Duration,
    /// Write the summary JSON here at exit.
    pub summary: Option<PathBuf>,
}

impl StoreServiceOptions {
    /// Defaults: group `store`, progress every 5 s.
    pub fn new(redis: RedisConfig, store: impl Into<String>) -> Self {
        Self { redis, store: store.into(), group: "store".to_owned(), settings: WriterSettings::default(), progress_every: Duration::from_secs(5), summary: None }
    }
}

/// What a store process did, written as JSON by `--summary`.
#[derive(Debug, Clone, Serialize)]
pub struct StoreServiceSummary {
    /// The run's name in the store.
    pub run: String,
    /// The writer's counters.
    pub writer: WriterFigures,
    /// Entries that were not readable messages, dead-lettered.
    pub unreadable: u64,
    /// Entries acknowledged.
    pub acknowledged: u64,
    /// Each family's consumer counters.
    pub consumers: Vec<(String, ConsumerStats)>,
    /// Wall-clock seconds.
    pub wall_seconds: f64,
}

/// The run the fleet on this prefix belongs to: `proposal`, if no shard has set one yet,
/// else the one set. Set-if-absent, so that shards starting together agree.
pub async fn agree_run(redis: &RedisConfig, proposal: &RunInfo) -> Result<RunInfo, StoreError> {
    let mut connection = redis.connection().map_err(|e| StoreError::Redis(e.to_string()))?;
    let key = redis.keys().run();
    let json = serde_json::to_string(proposal).expect("run infos serialise");
    let _: bool = connection.set_nx(&key, json).await.map_err(|e| StoreError::Redis(e.to_string()))?;
    let agreed: String = connection.get(&key).await.map_err(|e| StoreError::Redis(e.to_string()))?;
    serde_json::from_str(&agreed).map_err(|e| StoreError::Redis(format!("`{key}` holds no run ({e})")))
}

/// [`agree_run`], retried with backoff until Redis answers; logs the run agreed.
pub async fn propose_run(redis: RedisConfig, proposal: RunInfo) {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        match agree_run(&redis, &proposal).await {
            Ok(run) => {
                tracing::info!("fleet run `{}`", run.name);
                return;
            }
            Err(error) => {
                if !backoff.failing() {
                    tracing::warn!("cannot set the fleet's run yet ({error}); retrying");
                }
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

/// Waits for a shard to set the run, until `shutdown`.
async fn await_run(redis: &RedisConfig, mut shutdown: std::pin::Pin<&mut impl Future<Output = ()>>) -> Result<Option<RunInfo>, StoreError> {
    let mut connection = redis.connection().map_err(|e| StoreError::Redis(e.to_string()))?;
    let key = redis.keys().run();
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    let mut told = false;
    loop {
        match connection.get::<_, Option<String>>(&key).await {
            Ok(Some(json)) => return serde_json::from_str(&json).map(Some).map_err(|e| StoreError::Redis(format!("`{key}` holds no run ({e})"))),
            Ok(None) if !told => {
                told = true;
                tracing::info!("waiting for a fleet to set its run in `{key}`");
            }
            Ok(None) => {}
            Err(error) if !told => {
                told = true;
                tracing::warn!("waiting for redis: {error}");
            }
            Err(_) => {}
        }
        tokio::select! {
            () = tokio::time::sleep(backoff.next_delay()) => {}
            () = shutdown.as_mut() => return Ok(None),
        }
    }
}

/// Stream entries read but not yet acknowledged, by family.
type Held = [Vec<(u16, String)>; 3];

/// Runs until `shutdown` completes, then drains what the streams hold, commits and
/// acknowledges it, and returns the summary (also written to `options.summary`).
pub async fn run(options: StoreServiceOptions, shutdown: impl Future<Output = ()>) -> Result<StoreServiceSummary, StoreError> {
    let started = Instant::now();
    let mut shutdown = std::pin::pin!(shutdown);
    let Some(run) = await_run(&options.redis, shutdown.as_mut()).await? else {
        return Err(StoreError::WriterGone("stopped before any fleet set its run".into()));
    };
    let store = super::open(&options.store).await?;
    super::writer::replay_leftovers(&store, &options.settings).await?;
    let target = store.register_run(&run).await?;
    let status = Arc::new(WriterStatus::default());
    let spool = options.settings.spool_path(&options.redis.identity, &run.name);
    let writer = BatchWriter::new(store.clone(), target, "redis", spool, &options.settings, status.clone());
    let connection = options.redis.connection().map_err(|e| StoreError::Redis(e.to_string()))?;
    let families = [Family::Uplink, Family::Downlink, Family::Central];
    let mut consumers: Vec<StreamConsumer> = families
        .iter()
        .map(|family| {
            let mut consumer_options = ConsumerOptions::new(options.group.clone(), options.redis.identity.clone());
            consumer_options.batch = options.settings.batch_rows.clamp(100, 10_000) / 16 + 1;
            StreamConsumer::new(connection.clone(), options.redis.keys(), *family, consumer_options)
        })
        .collect();
    tracing::info!("storing run `{}` from redis (group `{}`) into {}", run.name, options.group, options.store);

    let mut feed = Feed { writer, run, store, held: Default::default(), unreadable: 0, acknowledged: 0 };
    let mut last_progress = Instant::now();
    let mut draining = false;
    loop {
        if !draining && has_completed(shutdown.as_mut()) {
            tracing::info!("stopping: storing what is left");
            draining = true;
        }
        let read = feed.read(&mut consumers, !draining).await;
        if read == 0 {
            feed.writer.catch_up().await;
            if draining {
                break;
            }
        }
        feed.acknowledge(&mut consumers).await;
        if last_progress.elapsed() >= options.progress_every {
            last_progress = Instant::now();
            tracing::info!("{}  unreadable {}  acknowledged {}", status.figures().line(), feed.unreadable, feed.acknowledged);
        }
    }
    // Entries whose rows are still spooled stay pending in the group: nothing is lost if the
    // database outlasts the wait.
    feed.writer.catch_up_fully(Some(options.settings.drain_timeout)).await;
    feed.acknowledge(&mut consumers).await;
    let summary = StoreServiceSummary {
        run: feed.run.name.clone(),
        writer: status.figures(),
        unreadable: feed.unreadable,
        acknowledged: feed.acknowledged,
        consumers: families.iter().zip(&consumers).map(|(f, c)| (f.as_str().to_owned(), c.stats)).collect(),
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    if let Some(path) = &options.summary {
        let json = serde_json::to_string_pretty(&summary).expect("summaries serialise") + "\n";
        std::fs::write(path, json).map_err(|source| StoreError::Spool { path: path.display().to_string(), source })?;
    }
    Ok(summary)
}

/// The writer with what it owes the streams.
struct Feed {
    writer: BatchWriter,
    run: RunInfo,
    store: super::Store,
    /// Entries whose rows are committed or spooled, not yet acknowledged.
    held: Held,
    unreadable: u64,
    acknowledged: u64,
}

impl Feed {
    /// Reads once from each family and writes what came; returns the entries read.
    async fn read(&mut self, consumers: &mut [StreamConsumer], wait: bool) -> usize {
        let mut batch = Batch::default();
        let mut ids: Held = Default::default();
        let mut letters = Vec::new();
        let mut rejected_by_family: Vec<Vec<crate::bus::redis::Rejected>> = vec![Vec::new(); consumers.len()];
        let mut read = 0;
        for (i, consumer) in consumers.iter_mut().enumerate() {
            // Wait on the busiest family only; the others answer at once.
            let polled = consumer.poll(wait && i == 0).await;
            read += polled.deliveries.len() + polled.rejected.len() + polled.trimmed.len();
            for delivery in polled.deliveries {
                ids[i].push((delivery.partition, delivery.id));
                batch.push(self.run.start, delivery.envelope);
            }
            ids[i].extend(polled.trimmed);
            for rejected in &polled.rejected {
                letters.push(DeadLetter {
                    source: format!("redis {} p{:02} {}", consumer_family(i), rejected.partition, rejected.id),
                    reason: rejected.reason.clone(),
                    payload: String::from_utf8_lossy(&rejected.data).into_owned(),
                });
            }
            rejected_by_family[i] = polled.rejected;
        }
        if !letters.is_empty() {
            self.unreadable += letters.len() as u64;
            // They are in the bus's dead-letter stream too, so a failure here loses nothing.
            if let Err(error) = self.store.dead_letter(Some(self.writer_run_id()), &letters).await {
                tracing::warn!("{} unreadable entries not recorded in dead_letters ({error}); they are in the dead-letter streams", letters.len());
            }
            for (consumer, rejected) in consumers.iter_mut().zip(&rejected_by_family) {
                if !rejected.is_empty() {
                    let _ = consumer.commit(&[], rejected, &[], Duration::from_secs(60)).await;
                }
            }
        }
        if read > 0 {
            // Spooled or stored, the entries are acknowledged once the spool is empty again.
            self.writer.write(batch).await;
            for (held, new) in self.held.iter_mut().zip(ids) {
                held.extend(new);
            }
        }
        read
    }

    fn writer_run_id(&self) -> i64 {
        self.writer.run_id()
    }

    /// Acknowledges what is committed: everything held, once nothing waits in the spool.
    async fn acknowledge(&mut self, consumers: &mut [StreamConsumer]) {
        if !self.writer.is_caught_up() {
            return;
        }
        for (consumer, held) in consumers.iter_mut().zip(self.held.iter_mut()) {
            if held.is_empty() {
                continue;
            }
            match consumer.commit(held, &[], &[], Duration::from_secs(60)).await {
                Ok(()) => {
                    self.acknowledged += held.len() as u64;
                    held.clear();
                }
                // Not acknowledged: read again later, and adding nothing when stored again.
                Err(error) => tracing::warn!("acknowledging {} entries failed ({error}); they will be read again", held.len()),
            }
        }
    }
}

fn consumer_family(i: usize) -> &'static str {
    ["uplink", "downlink", "central"].get(i).copied().unwrap_or("?")
}
