//! The writer task: takes envelopes from the simulation without ever making it wait, and
//! appends them to their partition streams in pipelined batches. While Redis is unreachable it
//! keeps them in the send queue (memory, then a spill file) and replays them in order later.
//!
//! The simulation hands envelopes over a bounded channel. When the channel is full (the writer
//! is starved of CPU), the publisher writes to the overflow file instead, and keeps doing so
//! until the writer has emptied the channel and taken the overflow over: order is kept and
//! nothing is lost. Where each vehicle's numbering stands is written beside the spill file as
//! well as in Redis, so a producer restarted while Redis is down continues it.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::mpsc::{Receiver, UnboundedReceiver};

use super::Counters;
use super::backoff::Backoff;
use super::error::TransportError;
use super::send_queue::{Pushed, Queued, SendQueue, SpillFile, parse_line, spill_line};
use crate::bus::keys::{Family, Keys, partition_of};
use crate::model::{Envelope, VehicleId};

/// Messages per pipelined round trip.
const BATCH: usize = 512;

/// Longest wait for Redis to answer one batch before it counts as failed.
const BATCH_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the local record of sequence numbers is rewritten.
const SEQ_RECORD_EVERY: Duration = Duration::from_secs(1);

/// What the simulation side asks of the writer, besides messages.
pub(super) enum Control {
    /// Answer `true` once everything published before this is confirmed.
    Flush(crossbeam_channel::Sender<bool>),
    /// Write what is still held to the spill file, answer, and stop.
    Persist(crossbeam_channel::Sender<()>),
}

/// Messages that found the channel full, in a file of their own, with the flag that sends
/// every later message there too until the writer takes them over.
pub(super) struct Overflow {
    /// Set while the overflow holds messages.
    pub active: AtomicBool,
    file: Mutex<Option<SpillFile>>,
    path: PathBuf,
    limit: u64,
}

impl Overflow {
    pub fn new(path: PathBuf, limit: u64) -> Self {
        Self { active: AtomicBool::new(false), file: Mutex::new(None), path, limit }
    }

    /// Appends an envelope (called by the publisher). Returns why the disk refuses it, if it
    /// does; the message is then held in memory, never lost.
    pub fn push(&self, envelope: &Envelope) -> Option<String> {
        let mut file = self.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.active.store(true, Ordering::SeqCst);
        if file.is_none() {
            match SpillFile::open(&self.path, self.limit) {
                Ok(opened) => *file = Some(opened),
                Err(error) => return Some(format!("overflow file {}: {error}", self.path.display())),
            }
        }
        let spill = file.as_mut().expect("opened above");
        spill.append(&spill_line(&queued(envelope)));
        spill.failing().map(str::to_owned)
    }

    /// Moves everything in the overflow into `queue`, oldest first, and clears the flag.
    fn drain_into(&self, queue: &mut SendQueue) -> std::io::Result<u64> {
        let mut file = self.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut moved = 0;
        if let Some(spill) = file.as_mut() {
            while let Some(line) = spill.next_line()? {
                if let Some(message) = parse_line(&line) {
                    queue.push(message);
                    moved += 1;
                }
            }
            spill.reset_if_drained()?;
        }
        self.active.store(false, Ordering::SeqCst);
        Ok(moved)
    }
}

fn queued(envelope: &Envelope) -> Queued {
    Queued { partition: partition_of(envelope.vehicle_id), kind: envelope.kind(), vehicle: envelope.vehicle_id, seq: envelope.seq, data: envelope.to_json() }
}

/// Where each vehicle's numbering stands, kept in a small file beside the spill file.
pub(super) struct SeqRecord {
    path: PathBuf,
    next: BTreeMap<VehicleId, u64>,
    dirty: bool,
    written: Instant,
}

impl SeqRecord {
    /// Reads the record at `path` (empty when there is none).
    pub fn load(path: PathBuf) -> Result<Self, TransportError> {
        let next = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| TransportError::File { path: path.clone(), source: std::io::Error::other(e) })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(TransportError::File { path, source }),
        };
        Ok(Self { path, next, dirty: false, written: Instant::now() })
    }

    /// The number after the highest each vehicle has used.
    pub fn next(&self) -> &BTreeMap<VehicleId, u64> {
        &self.next
    }

    fn saw(&mut self, vehicle: VehicleId, seq: u64) {
        let next = self.next.entry(vehicle).or_default();
        if seq + 1 > *next {
            *next = seq + 1;
            self.dirty = true;
        }
    }

    /// Rewrites the file (atomically) if anything changed and `force` or a second has passed.
    fn write(&mut self, force: bool) {
        if !self.dirty || (!force && self.written.elapsed() < SEQ_RECORD_EVERY) {
            return;
        }
        let temporary = self.path.with_extension("seq.new");
        let result = std::fs::write(&temporary, serde_json::to_vec(&self.next).expect("numbers serialise")).and_then(|()| std::fs::rename(&temporary, &self.path));
        match result {
            Ok(()) => self.dirty = false,
            Err(error) => tracing::warn!("cannot record sequence numbers in {}: {error}", self.path.display()),
        }
        self.written = Instant::now();
    }
}

pub(super) struct Writer {
    pub connection: ConnectionManager,
    pub keys: Keys,
    pub queue: SendQueue,
    pub counters: Arc<Counters>,
    pub stream_maxlen: u64,
    pub overflow: Arc<Overflow>,
    pub seq_record: SeqRecord,
    /// Why taking the overflow over failed last, until it succeeds.
    pub takeover_failing: Option<String>,
}

/// A batch Redis has not answered yet.
type InFlight = Pin<Box<dyn Future<Output = Result<(), TransportError>> + Send>>;

impl Writer {
    /// Runs until told to persist, or until every sender is gone and the queue is empty (or
    /// persisted, when Redis is away then). One batch is in flight at a time, and messages keep
    /// being taken and serialised while it is, so encoding overlaps the round trip.
    pub async fn run(mut self, mut inbox: Receiver<Envelope>, mut control: UnboundedReceiver<Control>) {
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
        let mut flushes: Vec<crossbeam_channel::Sender<bool>> = Vec::new();
        let mut closed = false;
        let mut in_flight: Option<(usize, InFlight)> = None;
        let mut retry_at: Option<tokio::time::Instant> = None;
        loop {
            // Everything waiting: control first (a flush counts what was published before
            // it), then messages, then the overflow, which is newer than the channel.
            loop {
                match control.try_recv() {
                    Ok(Control::Flush(reply)) => flushes.push(reply),
                    Ok(Control::Persist(reply)) => {
                        self.take_waiting(&mut inbox, backoff.failing());
                        self.persist();
                        let _ = reply.send(());
                        return;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
            if self.take_waiting(&mut inbox, backoff.failing()) {
                closed = true;
            }
            // What is bound for disk goes there now: a disk that refuses it must be noticed
            // (and the simulation slowed) before memory fills, not when a block is full.
            self.queue.write_pending();
            let spill = self.queue.held_up().map(|why| format!("spill file {}: {why}", self.queue.spill_path().display()));
            self.update_held_up(self.takeover_failing.clone().or(spill));
            self.seq_record.write(false);
            if in_flight.is_none() && self.queue.is_empty() {
                if !flushes.is_empty() {
                    // Everything is confirmed: record where the numbering stands before saying so.
                    self.seq_record.write(true);
                }
                for flush in flushes.drain(..) {
                    let _ = flush.send(true);
                }
                if closed {
                    self.seq_record.write(true);
                    return;
                }
                tokio::select! {
                    message = inbox.recv() => match message {
                        Some(envelope) => self.accept(envelope, backoff.failing()),
                        None => closed = true,
                    },
                    request = control.recv() => match request {
                        Some(Control::Flush(reply)) => flushes.push(reply),
                        Some(Control::Persist(reply)) => {
                            self.persist();
                            let _ = reply.send(());
                            return;
                        }
                        None => closed = true,
                    },
                    // The overflow fills without a message on the channel.
                    _ = tokio::time::sleep(Duration::from_millis(50)), if self.overflow.active.load(Ordering::SeqCst) => {}
                }
                continue;
            }
            if in_flight.is_none() && retry_at.is_none_or(|at| tokio::time::Instant::now() >= at) {
                if closed && backoff.failing() {
                    // Nobody can wait for these any more: keep them on disk.
                    self.persist();
                    return;
                }
                retry_at = None;
                match self.start_batch() {
                    Ok(batch) => in_flight = Some(batch),
                    Err(error) => {
                        tracing::error!("{error}");
                        retry_at = Some(tokio::time::Instant::now() + backoff.next_delay());
                    }
                }
            }
            let wake = retry_at.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                result = async { in_flight.as_mut().expect("guarded").1.as_mut().await }, if in_flight.is_some() => {
                    let (count, _) = in_flight.take().expect("guarded");
                    match result {
                        Ok(()) => {
                            self.queue.pop(count);
                            self.counters.acknowledged.fetch_add(count as u64, Ordering::Relaxed);
                            self.counters.backlog.store(self.queue.len(), Ordering::Relaxed);
                            if backoff.failing() {
                                tracing::info!("redis reachable again; replaying {} held messages", self.queue.len());
                            }
                            backoff.reset();
                        }
                        Err(error) => {
                            self.counters.retried.fetch_add(count as u64, Ordering::Relaxed);
                            if !backoff.failing() {
                                tracing::warn!("redis unreachable ({error}); buffering messages and retrying");
                                // What memory holds now waits out the outage; later arrivals
                                // are counted as they come.
                                self.counters.buffered.fetch_add(self.queue.memory_len(), Ordering::Relaxed);
                            }
                            retry_at = Some(tokio::time::Instant::now() + backoff.next_delay());
                        }
                    }
                }
                message = inbox.recv(), if !closed => match message {
                    Some(envelope) => self.accept(envelope, backoff.failing()),
                    None => closed = true,
                },
                _ = tokio::time::sleep_until(wake), if retry_at.is_some() && in_flight.is_none() => {}
                // Keep taking the overflow while a batch is out.
                _ = tokio::time::sleep(Duration::from_millis(50)), if self.overflow.active.load(Ordering::SeqCst) => {}
            }
        }
    }

    /// Takes every message waiting on the channel, then the overflow. Returns whether the
    /// channel is closed.
    fn take_waiting(&mut self, inbox: &mut Receiver<Envelope>, unreachable: bool) -> bool {
        loop {
            match inbox.try_recv() {
                Ok(envelope) => self.accept(envelope, unreachable),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return true,
            }
        }
        if self.overflow.active.load(Ordering::SeqCst) {
            match self.overflow.drain_into(&mut self.queue) {
                Ok(moved) => {
                    self.takeover_failing = None;
                    self.counters.backlog.store(self.queue.len(), Ordering::Relaxed);
                    tracing::debug!("took over {moved} overflowed messages");
                }
                Err(error) => self.takeover_failing = Some(format!("overflow file: {error}")),
            }
        }
        false
    }

    /// Takes one message into the queue.
    fn accept(&mut self, envelope: Envelope, unreachable: bool) {
        let message = queued(&envelope);
        if Family::of(message.kind) == Family::Uplink {
            self.seq_record.saw(message.vehicle, message.seq);
        }
        match self.queue.push(message) {
            Pushed::Memory if unreachable => {
                self.counters.buffered.fetch_add(1, Ordering::Relaxed);
            }
            Pushed::Memory => {}
            Pushed::Spilled => {
                self.counters.spilled.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.counters.backlog.store(self.queue.len(), Ordering::Relaxed);
    }

    /// Says (once per change) whether the queue can take more without growing memory.
    fn update_held_up(&self, why: Option<String>) {
        let mut held = self.counters.held_up.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *held != why {
            match &why {
                Some(reason) => tracing::error!("cannot keep messages on disk ({reason}): slowing the simulation until it can"),
                None if held.is_some() => tracing::info!("messages can be kept again; the simulation goes on at full pace"),
                None => {}
            }
            *held = why;
        }
    }

    /// Starts sending the front of the queue as one pipeline. The messages leave the queue
    /// only when Redis has answered all of it.
    fn start_batch(&mut self) -> Result<(usize, InFlight), TransportError> {
        let mut pipe = redis::pipe();
        let mut count = 0;
        // Where each vehicle's numbering stands after this batch, recorded in the same pipeline
        // so that a restarted producer continues it (see `RedisBus::resume_sequences`).
        let mut next_seq: BTreeMap<u16, BTreeMap<VehicleId, u64>> = BTreeMap::new();
        let spill = self.queue.spill_path().to_owned();
        for message in self.queue.front(BATCH).map_err(|source| TransportError::File { path: spill, source })? {
            if Family::of(message.kind) == Family::Uplink {
                next_seq.entry(message.partition).or_default().insert(message.vehicle, message.seq + 1);
            }
            pipe.cmd("XADD")
                .arg(self.keys.stream(Family::of(message.kind), message.partition))
                .arg("MAXLEN")
                .arg("~")
                .arg(self.stream_maxlen)
                .arg("*")
                .arg("kind")
                .arg(message.kind.as_str())
                .arg("data")
                .arg(&message.data)
                .ignore();
            count += 1;
        }
        for (partition, vehicles) in next_seq {
            let mut hset = redis::cmd("HSET");
            hset.arg(self.keys.next_seq(partition));
            for (vehicle, seq) in vehicles {
                hset.arg(vehicle.to_string()).arg(seq);
            }
            pipe.add_command(hset).ignore();
        }
        let mut connection = self.connection.clone();
        let send = async move {
            match tokio::time::timeout(BATCH_TIMEOUT, pipe.query_async::<()>(&mut connection)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(error)) => Err(TransportError::Redis(error)),
                Err(_) => Err(TransportError::Timeout(BATCH_TIMEOUT)),
            }
        };
        Ok((count, Box::pin(send)))
    }

    fn persist(&mut self) {
        self.seq_record.write(true);
        let held = self.queue.len();
        match self.queue.persist() {
            Ok(0) => {}
            Ok(kept) => tracing::error!("redis unreachable at exit: {kept} messages left unsent in {}; the next run of this producer sends them", self.queue.spill_path().display()),
            Err(error) => tracing::error!("redis unreachable at exit and the spill file failed ({error}): {held} messages lost"),
        }
    }
}

/// The files a producer keeps in its spill directory, named after its identity.
pub(super) struct ProducerFiles {
    pub spill: PathBuf,
    pub overflow: PathBuf,
    pub seq: PathBuf,
    pub lock: PathBuf,
}

impl ProducerFiles {
    pub fn new(dir: &Path, identity: &str) -> Self {
        let file = |extension: &str| dir.join(format!("{identity}.{extension}"));
        Self { spill: file("spill"), overflow: file("overflow"), seq: file("seq"), lock: file("lock") }
    }
}
