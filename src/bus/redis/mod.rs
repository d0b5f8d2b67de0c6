//! The Redis transport: the [`Bus`] across processes and machines (docs/PROTOCOL.md).
//!
//! Publishing hands the envelope to a writer task and returns at once; the writer appends it to
//! its partition's stream. Subscriptions are consumer groups read by reader tasks. Both run on
//! the tokio runtime whose handle the bus is given, on connections that reconnect by
//! themselves.

mod backoff;
pub mod consumer;
mod producer;
pub mod send_queue;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::runtime::Handle;
use tokio::sync::mpsc::UnboundedSender;

pub use backoff::Backoff;
pub use consumer::{Batch, ConsumerOptions, ConsumerStats, Delivery, Rejected, StartAt, StreamConsumer};

use self::producer::{ToWriter, Writer};
use self::send_queue::SendQueue;
use super::keys::{Family, Keys, partition_of};
use super::{Backlog, Bus, BusStats, Channel, Filter, Subscription};
use crate::model::{Envelope, VehicleId};

/// Environment variable that names the Redis server when `--redis` is not given.
pub const REDIS_URL_ENV: &str = "AEGIS_REDIS_URL";

/// How to reach Redis and how much to hold while it is away.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://host:port/db`.
    pub url: String,
    /// Key prefix; `aegis` unless several fleets share one server.
    pub prefix: String,
    /// This process's name, e.g. `fleet-1of2`: names its consumer groups, consumers and spill
    /// file.
    pub identity: String,
    /// Messages held in memory while Redis is unreachable, before spilling to disk.
    pub memory_buffer: usize,
    /// Where the spill file goes.
    pub spill_dir: PathBuf,
    /// Largest spill file; beyond it messages are dropped and counted.
    pub spill_limit_bytes: u64,
    /// Approximate length bound of each partition stream (`XADD MAXLEN ~`).
    pub stream_maxlen: u64,
}

impl RedisConfig {
    /// Defaults for `url` and `identity`: prefix `aegis`, 100,000 messages in memory, 1 GiB of
    /// spill in the temp directory, 200,000 entries per partition stream.
    pub fn new(url: impl Into<String>, identity: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "aegis".to_owned(),
            identity: identity.into(),
            memory_buffer: 100_000,
            spill_dir: std::env::temp_dir().join("aegis-spill"),
            spill_limit_bytes: 1 << 30,
            stream_maxlen: 200_000,
        }
    }

    /// The key layout under this prefix.
    pub fn keys(&self) -> Keys {
        Keys::new(self.prefix.clone())
    }

    /// A connection that reconnects by itself (with jittered exponential backoff), made
    /// without waiting for the server: a process starts even while Redis is down. Call it
    /// inside a tokio runtime's context.
    pub fn connection(&self) -> anyhow::Result<ConnectionManager> {
        let client = redis::Client::open(self.url.as_str()).map_err(|e| anyhow::anyhow!("--redis `{}`: {e}", self.url))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(10)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        ConnectionManager::new_lazy_with_config(client, config).map_err(|e| anyhow::anyhow!("--redis `{}`: {e}", self.url))
    }
}

/// Counters shared by the bus and its tasks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub published: AtomicU64,
    pub acknowledged: AtomicU64,
    pub delivered: AtomicU64,
    pub retried: AtomicU64,
    pub buffered: AtomicU64,
    pub spilled: AtomicU64,
    pub dropped: AtomicU64,
    pub backlog: AtomicU64,
}

/// A [`Bus`] over Redis Streams.
pub struct RedisBus {
    config: RedisConfig,
    runtime: Handle,
    writer: UnboundedSender<ToWriter>,
    counters: Arc<Counters>,
    subscriptions: AtomicU32,
    closing: Arc<AtomicBool>,
}

impl RedisBus {
    /// A bus on `config`, running its tasks on `runtime`. Does not wait for Redis.
    pub fn new(config: RedisConfig, runtime: Handle) -> anyhow::Result<Self> {
        let _context = runtime.enter();
        let connection = config.connection()?;
        let counters = Arc::new(Counters::default());
        let spill_path = config.spill_dir.join(format!("{}-{}.spill", config.identity, std::process::id()));
        let writer = Writer {
            connection,
            keys: config.keys(),
            queue: SendQueue::new(config.memory_buffer, spill_path, config.spill_limit_bytes),
            counters: counters.clone(),
            stream_maxlen: config.stream_maxlen,
        };
        let (sender, inbox) = tokio::sync::mpsc::unbounded_channel();
        runtime.spawn(writer.run(inbox));
        Ok(Self { config, runtime, writer: sender, counters, subscriptions: AtomicU32::new(0), closing: Arc::new(AtomicBool::new(false)) })
    }

    /// The configuration.
    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// Where the numbering of `vehicles` stands after earlier runs (vehicles never seen are
    /// absent). Waits at most `timeout` for Redis; on failure returns nothing, and the run
    /// numbers from 0 (a consumer would then drop the repeated numbers as duplicates).
    pub fn resume_sequences(&self, vehicles: &[VehicleId], timeout: Duration) -> BTreeMap<VehicleId, u64> {
        let keys = self.config.keys();
        let mut by_partition: BTreeMap<u16, Vec<VehicleId>> = BTreeMap::new();
        for &vehicle in vehicles {
            by_partition.entry(partition_of(vehicle)).or_default().push(vehicle);
        }
        let connection = {
            let _context = self.runtime.enter();
            self.config.connection()
        };
        let Ok(mut connection) = connection else { return BTreeMap::new() };
        let read = async {
            let mut found = BTreeMap::new();
            for (partition, vehicles) in &by_partition {
                let names: Vec<String> = vehicles.iter().map(VehicleId::to_string).collect();
                let values: Vec<Option<u64>> = redis::cmd("HMGET").arg(keys.next_seq(*partition)).arg(&names).query_async(&mut connection).await?;
                found.extend(vehicles.iter().zip(values).filter_map(|(v, seq)| Some((*v, seq?))));
            }
            redis::RedisResult::Ok(found)
        };
        match self.runtime.block_on(async { tokio::time::timeout(timeout, read).await }) {
            Ok(Ok(found)) => found,
            Ok(Err(error)) => {
                tracing::warn!("cannot read where sequence numbers stand ({error}); numbering from 0");
                BTreeMap::new()
            }
            Err(_) => {
                tracing::warn!("redis did not answer within {timeout:?}; numbering from 0");
                BTreeMap::new()
            }
        }
    }

    /// Flushes for at most `timeout`, then stops the tasks. Whatever Redis did not confirm is
    /// left in the spill file (logged with its path). Returns whether everything was confirmed.
    pub fn close(&self, timeout: Duration) -> bool {
        let flushed = self.flush(timeout);
        self.closing.store(true, Ordering::Relaxed);
        if !flushed {
            let (reply, done) = crossbeam_channel::bounded(1);
            if self.writer.send(ToWriter::Persist(reply)).is_ok() {
                let _ = done.recv_timeout(Duration::from_secs(30));
            }
        }
        flushed
    }
}

impl Bus for RedisBus {
    fn publish(&self, envelope: Envelope) {
        self.counters.published.fetch_add(1, Ordering::Relaxed);
        if self.writer.send(ToWriter::Message(envelope)).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A consumer group per subscription, named after the identity (and the subscription's
    /// number in this process after the first), starting at new entries: a restarted process
    /// runs a new simulation, and old commands would no longer apply.
    fn subscribe(&self, filter: Filter, backlog: Backlog) -> Subscription {
        let (sender, receiver) = match backlog {
            Backlog::Bounded(capacity) => crossbeam_channel::bounded(capacity),
            Backlog::Lossless => crossbeam_channel::unbounded(),
        };
        let number = self.subscriptions.fetch_add(1, Ordering::Relaxed);
        let group = if number == 0 { self.config.identity.clone() } else { format!("{}-{number}", self.config.identity) };
        let mut families: Vec<Family> = if filter.kinds.is_empty() {
            Family::MESSAGE_FAMILIES.to_vec()
        } else {
            filter.kinds.iter().map(|k| Family::of(*k)).collect()
        };
        families.sort_by_key(|f| f.as_str());
        families.dedup();
        let _context = self.runtime.enter();
        for family in families {
            let connection = match self.config.connection() {
                Ok(c) => c,
                Err(error) => {
                    tracing::error!("cannot subscribe: {error}");
                    continue;
                }
            };
            let mut options = ConsumerOptions::new(group.clone(), self.config.identity.clone());
            options.start = StartAt::New;
            // A group has one consumer per process; nobody else's entries to reclaim.
            options.claim_idle = None;
            let mut consumer = StreamConsumer::new(connection, self.config.keys(), family, options);
            let (ready, made) = crossbeam_channel::bounded(1);
            let (filter, sender, counters, closing) = (filter.clone(), sender.clone(), self.counters.clone(), self.closing.clone());
            self.runtime.spawn(async move {
                let _ = ready.send(consumer.prepare().await);
                forward(consumer, filter, sender, counters, closing).await;
            });
            // Wait (briefly: never stall on Redis) for the group, so nothing published after
            // `subscribe` returns is missed.
            let _ = made.recv_timeout(Duration::from_secs(3));
        }
        Subscription { receiver }
    }

    fn stats(&self) -> BusStats {
        let c = &self.counters;
        BusStats {
            published: c.published.load(Ordering::Relaxed),
            acknowledged: c.acknowledged.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            buffered: c.buffered.load(Ordering::Relaxed),
            spilled: c.spilled.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            backlog: c.backlog.load(Ordering::Relaxed),
        }
    }

    fn flush(&self, timeout: Duration) -> bool {
        let (reply, done) = crossbeam_channel::bounded(1);
        if self.writer.send(ToWriter::Flush(reply)).is_err() {
            return false;
        }
        done.recv_timeout(timeout).unwrap_or(false)
    }
}

impl Drop for RedisBus {
    fn drop(&mut self) {
        self.closing.store(true, Ordering::Relaxed);
    }
}

/// Hands a subscription's entries to the in-process receiver and acknowledges them once handed
/// over; the receiver's owner applies them within the next simulation step.
async fn forward(mut consumer: StreamConsumer, filter: Filter, sender: crossbeam_channel::Sender<Envelope>, counters: Arc<Counters>, closing: Arc<AtomicBool>) {
    while !closing.load(Ordering::Relaxed) {
        let batch = consumer.poll(true).await;
        if batch.is_empty() {
            continue;
        }
        let mut done = Vec::with_capacity(batch.deliveries.len() + batch.trimmed.len());
        for delivery in batch.deliveries {
            if filter.matches(&Channel::of(&delivery.envelope)) {
                match sender.try_send(delivery.envelope) {
                    Ok(()) => counters.delivered.fetch_add(1, Ordering::Relaxed),
                    Err(crossbeam_channel::TrySendError::Full(_)) => counters.dropped.fetch_add(1, Ordering::Relaxed),
                    Err(crossbeam_channel::TrySendError::Disconnected(_)) => return,
                };
            }
            done.push((delivery.partition, delivery.id));
        }
        done.extend(batch.trimmed);
        if let Err(error) = consumer.commit(&done, &batch.rejected, &[], Duration::from_secs(30)).await {
            tracing::warn!("{}: {error}", consumer.group());
        }
    }
}
