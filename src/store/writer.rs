//! The batch writer: envelopes in from a bus subscription, rows out to the store, on a thread
//! of its own so that neither the simulation nor the bus ever waits on the database.
//!
//! A batch is written when it reaches [`WriterSettings::batch_rows`] rows or its first row is
//! [`WriterSettings::batch_age`] old. A write that fails is retried with backoff, the batch kept
//! in memory meanwhile; the simulation slows down instead of running away from the database
//! (it waits while [`WriterStatus::lag_s`] exceeds its limit).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde::Serialize;

use super::{Batch, RunInfo, SqliteStore, StoreError};
use crate::bus::Subscription;
use crate::model::Envelope;

/// How the writer batches.
#[derive(Debug, Clone, Copy)]
pub struct WriterSettings {
    /// Rows per batch at most.
    pub batch_rows: usize,
    /// Longest a row waits for its batch to fill.
    pub batch_age: Duration,
}

impl Default for WriterSettings {
    fn default() -> Self {
        Self { batch_rows: 5_000, batch_age: Duration::from_millis(200) }
    }
}

/// What the writer has done so far; read by progress lines while it runs.
#[derive(Debug, Default)]
pub struct WriterStatus {
    received: AtomicU64,
    stored: AtomicU64,
    duplicates: AtomicU64,
    retried: AtomicU64,
    /// Simulation time of the latest stored message, as f64 bits.
    stored_sim_time: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// The writer's counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WriterFigures {
    /// Messages taken from the bus.
    pub received: u64,
    /// Rows committed.
    pub stored: u64,
    /// Messages that were already stored (redelivered): nothing added.
    pub duplicates: u64,
    /// Batch writes that failed and were tried again.
    pub retried: u64,
    /// Simulation time of the latest stored message.
    pub stored_sim_time: f64,
}

impl WriterFigures {
    /// The counters in one short line, for progress output.
    pub fn line(&self) -> String {
        format!("store: stored {} duplicates {} retried {} received {}", self.stored, self.duplicates, self.retried, self.received)
    }
}

impl WriterStatus {
    /// The counters now.
    pub fn figures(&self) -> WriterFigures {
        WriterFigures {
            received: self.received.load(Ordering::Relaxed),
            stored: self.stored.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            stored_sim_time: f64::from_bits(self.stored_sim_time.load(Ordering::Relaxed)),
        }
    }

    /// Simulated seconds between `now` and the latest message stored.
    pub fn lag_s(&self, now: f64) -> f64 {
        (now - f64::from_bits(self.stored_sim_time.load(Ordering::Relaxed))).max(0.0)
    }

    /// The last write error, while writes keep failing.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A running writer.
pub struct StoreWriter {
    status: Arc<WriterStatus>,
    closing: Arc<AtomicBool>,
    thread: JoinHandle<Result<(), StoreError>>,
}

impl StoreWriter {
    /// Opens the store at `url`, registers `run` in it, then writes every envelope `messages`
    /// delivers until [`StoreWriter::finish`].
    pub fn start(url: &str, run: RunInfo, messages: Subscription, settings: WriterSettings) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| StoreError::WriterGone(e.to_string()))?;
        let store = runtime.block_on(super::open(url))?;
        let run_id = runtime.block_on(store.register_run(&run))?;
        let status = Arc::new(WriterStatus::default());
        let closing = Arc::new(AtomicBool::new(false));
        let thread = {
            let (status, closing) = (status.clone(), closing.clone());
            std::thread::Builder::new()
                .name("aegis-store".into())
                .spawn(move || runtime.block_on(write_loop(store, run, run_id, messages.receiver(), settings, &status, &closing)))
                .map_err(|e| StoreError::WriterGone(e.to_string()))?
        };
        Ok(Self { status, closing, thread })
    }

    /// What it has done so far.
    pub fn status(&self) -> &WriterStatus {
        &self.status
    }

    /// Writes what is still waiting and stops. Returns the final counters.
    pub fn finish(self) -> Result<WriterFigures, StoreError> {
        self.closing.store(true, Ordering::Relaxed);
        self.thread.join().map_err(|_| StoreError::WriterGone("its thread panicked".into()))??;
        Ok(self.status.figures())
    }
}

async fn write_loop(
    store: SqliteStore,
    run: RunInfo,
    run_id: i64,
    messages: &Receiver<Envelope>,
    settings: WriterSettings,
    status: &WriterStatus,
    closing: &AtomicBool,
) -> Result<(), StoreError> {
    let mut disconnected = false;
    loop {
        // Asked to stop (or the bus is gone): whatever was published before is in the channel
        // now, so take what is there without waiting for more.
        let last = disconnected || closing.load(Ordering::Relaxed);
        let mut batch = Batch::default();
        let mut first_at = None::<Instant>;
        while batch.len() < settings.batch_rows {
            let wait = if last { Duration::ZERO } else { first_at.map_or(settings.batch_age, |at| settings.batch_age.saturating_sub(at.elapsed())) };
            match messages.recv_timeout(wait) {
                Ok(envelope) => batch.push(run.start, envelope),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    disconnected = true;
                    break;
                }
            }
            first_at.get_or_insert_with(Instant::now);
        }
        status.received.fetch_add(batch.len() as u64, Ordering::Relaxed);
        if !batch.is_empty() {
            write_with_retry(&store, run_id, &batch, status).await;
        }
        if last && batch.is_empty() {
            return Ok(());
        }
    }
}

/// Writes `batch`, trying again with backoff until it lands: nothing accepted is dropped.
async fn write_with_retry(store: &SqliteStore, run_id: i64, batch: &Batch, status: &WriterStatus) {
    let mut backoff = Duration::from_millis(50);
    loop {
        match store.write(run_id, batch).await {
            Ok(written) => {
                status.stored.fetch_add(written.stored, Ordering::Relaxed);
                status.duplicates.fetch_add(written.duplicates, Ordering::Relaxed);
                let latest = f64::from_bits(status.stored_sim_time.load(Ordering::Relaxed)).max(batch.latest_sim_time);
                status.stored_sim_time.store(latest.to_bits(), Ordering::Relaxed);
                *status.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
                return;
            }
            Err(error) => {
                tracing::warn!("store write of {} rows failed, retrying in {backoff:?}: {error}", batch.len());
                *status.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.to_string());
                status.retried.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
