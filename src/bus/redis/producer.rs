//! The writer task: takes envelopes from the simulation without ever making it wait, and
//! appends them to their partition streams in pipelined batches. While Redis is unreachable it
//! keeps them in the send queue (memory, then a spill file) and replays them in order later.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::mpsc::error::TryRecvError;

use super::backoff::Backoff;
use super::send_queue::{Pushed, Queued, SendQueue};
use super::Counters;
use crate::bus::keys::{Family, Keys, partition_of};
use crate::model::{Envelope, VehicleId};

/// Messages per pipelined round trip.
const BATCH: usize = 512;

/// Longest wait for Redis to answer one batch before it counts as failed.
const BATCH_TIMEOUT: Duration = Duration::from_secs(5);

/// What the simulation side sends the writer.
pub(super) enum ToWriter {
    /// Publish this.
    Message(Envelope),
    /// Answer `true` once everything before this is confirmed.
    Flush(crossbeam_channel::Sender<bool>),
    /// Write what is still held to the spill file, answer, and stop.
    Persist(crossbeam_channel::Sender<()>),
}

pub(super) struct Writer {
    pub connection: ConnectionManager,
    pub keys: Keys,
    pub queue: SendQueue,
    pub counters: Arc<Counters>,
    pub stream_maxlen: u64,
}

/// A batch Redis has not answered yet.
type InFlight = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

impl Writer {
    /// Runs until told to persist, or until every sender is gone and the queue is empty (or
    /// persisted, when Redis is away then). One batch is in flight at a time, and messages keep
    /// being taken and serialised while it is, so encoding overlaps the round trip.
    pub async fn run(mut self, mut inbox: UnboundedReceiver<ToWriter>) {
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
        let mut flushes: Vec<crossbeam_channel::Sender<bool>> = Vec::new();
        let mut closed = false;
        let mut in_flight: Option<(usize, InFlight)> = None;
        let mut retry_at: Option<tokio::time::Instant> = None;
        loop {
            while !closed {
                match inbox.try_recv() {
                    Ok(message) => {
                        if self.accept(message, &mut flushes, backoff.failing()) {
                            return;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => closed = true,
                }
            }
            if in_flight.is_none() && self.queue.is_empty() {
                for flush in flushes.drain(..) {
                    let _ = flush.send(true);
                }
                if closed {
                    return;
                }
                match inbox.recv().await {
                    Some(message) => {
                        if self.accept(message, &mut flushes, backoff.failing()) {
                            return;
                        }
                    }
                    None => closed = true,
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
                    Some(message) => {
                        if self.accept(message, &mut flushes, backoff.failing()) {
                            return;
                        }
                    }
                    None => closed = true,
                },
                _ = tokio::time::sleep_until(wake), if retry_at.is_some() && in_flight.is_none() => {}
            }
        }
    }

    /// Takes one message; returns whether the writer must stop.
    fn accept(&mut self, message: ToWriter, flushes: &mut Vec<crossbeam_channel::Sender<bool>>, unreachable: bool) -> bool {
        let envelope = match message {
            ToWriter::Message(envelope) => envelope,
            ToWriter::Flush(reply) => {
                flushes.push(reply);
                return false;
            }
            ToWriter::Persist(reply) => {
                self.persist();
                let _ = reply.send(());
                return true;
            }
        };
        let queued = Queued { partition: partition_of(envelope.vehicle_id), kind: envelope.kind(), vehicle: envelope.vehicle_id, seq: envelope.seq, data: envelope.to_json() };
        let counters = &self.counters;
        match self.queue.push(queued) {
            Ok(Pushed::Memory) if unreachable => {
                counters.buffered.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Pushed::Memory) => {}
            Ok(Pushed::Spilled) => {
                counters.spilled.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Pushed::Dropped) => {
                counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                tracing::error!("cannot write the spill file: {error}; message dropped");
                counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        counters.backlog.store(self.queue.len(), Ordering::Relaxed);
        false
    }

    /// Starts sending the front of the queue as one pipeline. The messages leave the queue
    /// only when Redis has answered all of it.
    fn start_batch(&mut self) -> Result<(usize, InFlight), String> {
        let mut pipe = redis::pipe();
        let mut count = 0;
        // Where each vehicle's numbering stands after this batch, recorded in the same pipeline
        // so that a restarted producer continues it (see `RedisBus::resume_sequences`).
        let mut next_seq: BTreeMap<u16, BTreeMap<VehicleId, u64>> = BTreeMap::new();
        for message in self.queue.front(BATCH).map_err(|e| format!("spill file: {e}"))? {
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
                Ok(Err(error)) => Err(error.to_string()),
                Err(_) => Err(format!("no answer within {BATCH_TIMEOUT:?}")),
            }
        };
        Ok((count, Box::pin(send)))
    }

    fn persist(&mut self) {
        let held = self.queue.len();
        match self.queue.persist() {
            Ok(Some(path)) => tracing::error!("redis unreachable at exit: {held} messages left unsent in {}", path.display()),
            Ok(None) => {}
            Err(error) => tracing::error!("redis unreachable at exit and the spill file failed ({error}): {held} messages lost"),
        }
    }
}
