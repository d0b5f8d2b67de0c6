//! The Redis transport: the [`Bus`] across processes and machines (docs/PROTOCOL.md).
//!
//! Publishing hands the envelope to a writer task and returns at once; the writer appends it to
//! its partition's stream. Subscriptions are consumer groups read by reader tasks. Both run on
//! the tokio runtime whose handle the bus is given, on connections that reconnect by
//! themselves.

mod backoff;
pub mod centre;
pub mod consumer;
mod error;
mod producer;
pub mod send_queue;
pub mod service;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::runtime::Handle;
use tokio::sync::mpsc::{Sender, UnboundedSender};

pub use backoff::Backoff;
pub use consumer::{Batch, ConsumerOptions, ConsumerStats, Delivery, Rejected, StartAt, StreamConsumer};
pub use centre::{OperatorClient, RedisOperators, RedisState};
pub use error::{TransportError, Unreadable};
pub use service::{OrchestratorOptions, OrchestratorSummary, ServiceError};

use self::producer::{Control, Overflow, ProducerFiles, SeqRecord, Writer};
use self::send_queue::{SendQueue, SpillFile, parse_line};
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
    /// Where the spill file goes, with the producer's record of its sequence numbers and its
    /// lock (one live process per identity and directory).
    pub spill_dir: PathBuf,
    /// Largest spill file; beyond it messages are dropped and counted.
    pub spill_limit_bytes: u64,
    /// Approximate length bound of each partition stream (`XADD MAXLEN ~`).
    pub stream_maxlen: u64,
}

impl RedisConfig {
    /// Defaults for `url` and `identity`: prefix `aegis`, 100,000 messages in memory, 1 GiB of
    /// spill in a directory of the temp directory named after the server and prefix (so that
    /// fleets of different servers on one machine keep apart), 200,000 entries per partition
    /// stream.
    pub fn new(url: impl Into<String>, identity: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "aegis".to_owned(),
            identity: identity.into(),
            memory_buffer: 100_000,
            spill_dir: PathBuf::new(),
            spill_limit_bytes: 1 << 30,
            stream_maxlen: 200_000,
        }
        .with_default_spill_dir()
    }

    /// The spill directory for this server and prefix under the temp directory.
    fn with_default_spill_dir(mut self) -> Self {
        let server: String = self.url.trim_start_matches("redis://").chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '-' }).collect();
        self.spill_dir = std::env::temp_dir().join("aegis-spill").join(format!("{server}-{}", self.prefix));
        self
    }

    /// The same with key prefix `prefix` (and its default spill directory, unless one was
    /// set).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        let default_dir = self.spill_dir == Self::new(self.url.clone(), "").spill_dir;
        self.prefix = prefix.into();
        if default_dir {
            self = self.with_default_spill_dir();
        }
        self
    }

    /// The key layout under this prefix.
    pub fn keys(&self) -> Keys {
        Keys::new(self.prefix.clone())
    }

    /// A connection that reconnects by itself (with jittered exponential backoff), made
    /// without waiting for the server: a process starts even while Redis is down. Call it
    /// inside a tokio runtime's context.
    pub fn connection(&self) -> Result<ConnectionManager, TransportError> {
        let bad_url = |source| TransportError::BadUrl { url: self.url.clone(), source };
        let client = redis::Client::open(self.url.as_str()).map_err(bad_url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(10)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        ConnectionManager::new_lazy_with_config(client, config).map_err(bad_url)
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
    /// Why the writer cannot keep messages on disk (spill file, taking over the overflow),
    /// while it cannot.
    pub held_up: Mutex<Option<String>>,
    /// Why the publisher cannot append to the overflow file, while it cannot.
    pub overflow_held_up: Mutex<Option<String>>,
}

/// Messages the simulation may hand the writer before the overflow file takes them: about
/// one simulated second of a large fleet.
const CHANNEL_CAPACITY: usize = 16_384;

/// A [`Bus`] over Redis Streams.
pub struct RedisBus {
    config: RedisConfig,
    runtime: Handle,
    writer: Sender<Envelope>,
    control: UnboundedSender<Control>,
    overflow: Arc<Overflow>,
    counters: Arc<Counters>,
    subscriptions: AtomicU32,
    closing: Arc<AtomicBool>,
    /// Where this producer's numbering stood when it started, from its own files.
    local_next_seq: BTreeMap<VehicleId, u64>,
    /// Held while the bus lives: one process per identity and spill directory.
    _lock: std::fs::File,
}

impl RedisBus {
    /// A bus on `config`, running its tasks on `runtime`. Does not wait for Redis. Takes up
    /// what an earlier run of the same identity left unsent (its spill file is sent first).
    pub fn new(config: RedisConfig, runtime: Handle) -> Result<Self, TransportError> {
        let _context = runtime.enter();
        let connection = config.connection()?;
        let counters = Arc::new(Counters::default());
        let files = ProducerFiles::new(&config.spill_dir, &config.identity);
        let file_error = |path: &std::path::Path| {
            let path = path.to_owned();
            move |source| TransportError::File { path, source }
        };
        std::fs::create_dir_all(&config.spill_dir).map_err(file_error(&config.spill_dir))?;
        let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&files.lock).map_err(file_error(&files.lock))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(TransportError::IdentityInUse { identity: config.identity.clone(), dir: config.spill_dir.clone() }),
            Err(std::fs::TryLockError::Error(source)) => return Err(TransportError::File { path: files.lock.clone(), source }),
        }
        let (mut queue, leftover) = SendQueue::open(config.memory_buffer, files.spill.clone(), config.spill_limit_bytes).map_err(file_error(&files.spill))?;
        let seq_record = SeqRecord::load(files.seq.clone())?;
        let mut local_next_seq = seq_record.next().clone();
        let mut merge = |vehicle: VehicleId, next: u64| {
            let entry = local_next_seq.entry(vehicle).or_default();
            *entry = (*entry).max(next);
        };
        for (&vehicle, &next) in &leftover.next_seq {
            merge(vehicle, next);
        }
        // An overflow file left by a crash is newer than the spill file: it follows it.
        let mut adopted = leftover.messages;
        let mut left = SpillFile::open(&files.overflow, u64::MAX).map_err(file_error(&files.overflow))?;
        while let Some(line) = left.next_line().map_err(file_error(&files.overflow))? {
            if let Some(message) = parse_line(&line) {
                merge(message.vehicle, message.seq + 1);
                queue.push(message);
                adopted += 1;
            }
        }
        left.reset_if_drained().map_err(file_error(&files.overflow))?;
        drop(left);
        if adopted > 0 {
            tracing::warn!("{adopted} messages an earlier run of `{}` left unsent are sent first", config.identity);
            counters.backlog.store(queue.len(), Ordering::Relaxed);
        }
        let overflow = Arc::new(Overflow::new(files.overflow, config.spill_limit_bytes));
        let writer = Writer { connection, keys: config.keys(), queue, counters: counters.clone(), stream_maxlen: config.stream_maxlen, overflow: overflow.clone(), seq_record, takeover_failing: None };
        let (sender, inbox) = tokio::sync::mpsc::channel(CHANNEL_CAPACITY);
        let (control, requests) = tokio::sync::mpsc::unbounded_channel();
        runtime.spawn(writer.run(inbox, requests));
        Ok(Self {
            config,
            runtime,
            writer: sender,
            control,
            overflow,
            counters,
            subscriptions: AtomicU32::new(0),
            closing: Arc::new(AtomicBool::new(false)),
            local_next_seq,
            _lock: lock,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// Where the numbering of `vehicles` stands after earlier runs (vehicles never seen are
    /// absent): the larger of what Redis recorded and what this producer's own files say, so
    /// a producer restarted while Redis is down continues its numbering too. Waits at most
    /// `timeout` for Redis.
    pub fn resume_sequences(&self, vehicles: &[VehicleId], timeout: Duration) -> BTreeMap<VehicleId, u64> {
        let mut found: BTreeMap<VehicleId, u64> = vehicles.iter().filter_map(|v| Some((*v, *self.local_next_seq.get(v)?))).collect();
        match self.recorded_sequences(vehicles, timeout) {
            Ok(recorded) => {
                for (vehicle, next) in recorded {
                    let entry = found.entry(vehicle).or_default();
                    *entry = (*entry).max(next);
                }
            }
            Err(error) => tracing::warn!("cannot read where sequence numbers stand in redis ({error}); continuing from this producer's own record"),
        }
        found
    }

    fn recorded_sequences(&self, vehicles: &[VehicleId], timeout: Duration) -> Result<BTreeMap<VehicleId, u64>, TransportError> {
        let keys = self.config.keys();
        let mut by_partition: BTreeMap<u16, Vec<VehicleId>> = BTreeMap::new();
        for &vehicle in vehicles {
            by_partition.entry(partition_of(vehicle)).or_default().push(vehicle);
        }
        let mut connection = {
            let _context = self.runtime.enter();
            self.config.connection()?
        };
        let read = async {
            let mut found = BTreeMap::new();
            for (partition, vehicles) in &by_partition {
                let names: Vec<String> = vehicles.iter().map(VehicleId::to_string).collect();
                let values: Vec<Option<u64>> = redis::cmd("HMGET").arg(keys.next_seq(*partition)).arg(&names).query_async(&mut connection).await?;
                found.extend(vehicles.iter().zip(values).filter_map(|(v, seq)| Some((*v, seq?))));
            }
            Ok::<_, TransportError>(found)
        };
        self.runtime.block_on(async { tokio::time::timeout(timeout, read).await }).map_err(|_| TransportError::Timeout(timeout))?
    }

    /// Flushes for at most `timeout`, then stops the tasks. Whatever Redis did not confirm is
    /// left in the spill file (logged with its path). Returns whether everything was confirmed.
    pub fn close(&self, timeout: Duration) -> bool {
        let flushed = self.flush(timeout);
        self.closing.store(true, Ordering::Relaxed);
        if !flushed {
            let (reply, done) = crossbeam_channel::bounded(1);
            if self.control.send(Control::Persist(reply)).is_ok() {
                let _ = done.recv_timeout(Duration::from_secs(30));
            }
        }
        flushed
    }
}

impl Bus for RedisBus {
    fn publish(&self, envelope: Envelope) {
        self.counters.published.fetch_add(1, Ordering::Relaxed);
        // Once anything overflowed, everything does until the writer has caught up: order.
        let envelope = if self.overflow.active.load(Ordering::SeqCst) {
            envelope
        } else {
            match self.writer.try_send(envelope) {
                Ok(()) => return,
                Err(tokio::sync::mpsc::error::TrySendError::Full(envelope)) => envelope,
                Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => {
                    self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        };
        self.counters.spilled.fetch_add(1, Ordering::Relaxed);
        let trouble = self.overflow.push(&envelope);
        let mut held = self.counters.overflow_held_up.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let (Some(why), None) = (&trouble, &*held) {
            tracing::error!("cannot keep messages on disk ({why}): slowing the simulation until it can");
        }
        *held = trouble;
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

    fn held_up(&self) -> Option<String> {
        let held = |slot: &Mutex<Option<String>>| slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        held(&self.counters.overflow_held_up).or_else(|| held(&self.counters.held_up))
    }

    fn flush(&self, timeout: Duration) -> bool {
        let (reply, done) = crossbeam_channel::bounded(1);
        if self.control.send(Control::Flush(reply)).is_err() {
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
