//! The batch writer: rows in, committed to the store, nothing lost on the way.
//!
//! [`BatchWriter`] is the part both feeds share (the in-process bus here, the Redis streams in
//! [`super::from_redis`]):
//! - a batch is written in one transaction; if the database refuses it (a constraint, a value
//!   it cannot hold), the batch is halved until the refused rows stand alone, and those go to
//!   the `dead_letters` table with the reason while the rest lands;
//! - if the database cannot be reached, the batch goes to the [`Spool`] file (synced to disk)
//!   and so does everything after it, in order, while writes are retried with backoff; once
//!   the database answers the spool is replayed, oldest first, and emptied.
//!
//! [`StoreWriter`] runs one on a thread of its own, fed by a bus subscription, so that neither
//! the simulation nor the bus waits on the database; the simulation waits instead when the
//! writer falls behind (see [`WriterStatus::lag_s`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;
use serde::Serialize;

use super::lifecycle::{self, LifecycleSettings, Progress};
use super::spool::Spool;
use super::{Batch, DeadLetter, Row, RunInfo, RunTarget, Store, StoreError};
use crate::bus::Subscription;

/// How the writer batches and where it spools.
#[derive(Debug, Clone)]
pub struct WriterSettings {
    /// Rows per batch at most.
    pub batch_rows: usize,
    /// Longest a row waits for its batch to fill.
    pub batch_age: Duration,
    /// A batch is also full once it spans this much simulated time: a third of the run's
    /// 60 s backpressure window, since at `--speed max` 200 ms of wall time is a minute of
    /// simulation, and a run waiting for its writer would otherwise wait for the batch's age
    /// rather than for the database.
    pub batch_sim_span: Duration,
    /// The spool file; a fresh one in the system's temporary directory when `None`.
    pub spool: Option<PathBuf>,
    /// Longest wait between two tries of an unreachable database.
    pub max_backoff: Duration,
    /// When raw telemetry is compacted (simulated time); never when `None`.
    pub lifecycle: Option<LifecycleSettings>,
    /// At the end, how long to wait for an unreachable database to take the spool before
    /// leaving it for the next writer on that database (see [`replay_leftovers`]).
    pub drain_timeout: Duration,
}

impl Default for WriterSettings {
    fn default() -> Self {
        Self {
            batch_rows: 5_000,
            batch_age: Duration::from_millis(200),
            batch_sim_span: Duration::from_secs(20),
            spool: None,
            max_backoff: Duration::from_secs(5),
            lifecycle: Some(LifecycleSettings::default()),
            drain_timeout: Duration::from_secs(120),
        }
    }
}

impl WriterSettings {
    /// The spool file of writer `owner` for run `run`.
    pub fn spool_path(&self, owner: &str, run: &str) -> PathBuf {
        self.spool.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("aegis-spool-{owner}-{run}.jsonl")))
    }

    /// Where spools of these settings are left: a folder, and how their names begin.
    fn spool_places(&self) -> (PathBuf, String) {
        match &self.spool {
            Some(path) => {
                let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).map_or_else(|| PathBuf::from("."), PathBuf::from);
                let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("spool");
                (dir, stem.to_owned())
            }
            None => (std::env::temp_dir(), "aegis-spool-".to_owned()),
        }
    }
}

/// Replays into `store` the spools earlier writers left behind with rows of its runs (they
/// stopped before their database took everything: a crash, a kill, or a database still down
/// at exit), then removes them. Spools of runs this database does not hold are left for
/// theirs. Returns the rows replayed.
pub async fn replay_leftovers(store: &Store, settings: &WriterSettings) -> Result<u64, StoreError> {
    let (dir, prefix) = settings.spool_places();
    let mut replayed = 0;
    for spool in Spool::leftovers(&dir, &prefix) {
        let Some(run) = store.find_run(Some(spool.run())).await? else { continue };
        let target = store.run_target(&run).await?;
        tracing::info!("replaying {} rows of run {} left in {}", spool.waiting(), run.name, spool.path().display());
        let status = Arc::new(WriterStatus::default());
        let mut writer = BatchWriter::adopting(store.clone(), target, "spool", spool, settings, status.clone());
        writer.catch_up_fully(Some(settings.drain_timeout)).await;
        replayed += status.figures().replayed;
    }
    Ok(replayed)
}

/// What the writer has done so far; read by progress lines while it runs.
#[derive(Debug, Default)]
pub struct WriterStatus {
    received: AtomicU64,
    stored: AtomicU64,
    duplicates: AtomicU64,
    spooled: AtomicU64,
    replayed: AtomicU64,
    retried: AtomicU64,
    rejected: AtomicU64,
    spool_waiting: AtomicU64,
    compacted: AtomicU64,
    segments: AtomicU64,
    exported: AtomicU64,
    retired: AtomicU64,
    /// Simulation time of the latest committed row, as f64 bits.
    stored_sim_time: AtomicU64,
    /// Simulation time of the latest row committed or spooled, as f64 bits.
    safe_sim_time: AtomicU64,
    /// Whether the database is unreachable now.
    outage: AtomicBool,
    last_error: Mutex<Option<String>>,
}

/// The writer's counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WriterFigures {
    /// Rows handed to the writer.
    pub received: u64,
    /// Rows committed (written at once or replayed from the spool).
    pub stored: u64,
    /// Rows that were already stored (a redelivered message): nothing added.
    pub duplicates: u64,
    /// Rows written to the spool file while the database was unreachable.
    pub spooled: u64,
    /// Spooled rows since committed.
    pub replayed: u64,
    /// Writes that failed and were tried again.
    pub retried: u64,
    /// Rows the database refused, now in `dead_letters`.
    pub rejected: u64,
    /// Rows in the spool now.
    pub spool_waiting: u64,
    /// Raw rows compacted into segments.
    pub compacted: u64,
    /// Segments written (on TimescaleDB: chunks compressed).
    pub segments: u64,
    /// Parquet files retention wrote.
    pub exported: u64,
    /// Telemetry rows exported and dropped by retention.
    pub retired: u64,
    /// Simulation time of the latest committed row.
    pub stored_sim_time: f64,
}

impl WriterFigures {
    /// The counters in one short line, for progress output.
    pub fn line(&self) -> String {
        format!(
            "store: stored {} spooled {} replayed {} retried {} rejected {} duplicates {} compacted {} retired {}",
            self.stored, self.spooled, self.replayed, self.retried, self.rejected, self.duplicates, self.compacted, self.retired
        )
    }
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

fn raise_to(time: &AtomicU64, value: f64) {
    let now = f64::from_bits(time.load(Ordering::Relaxed));
    if value > now {
        time.store(value.to_bits(), Ordering::Relaxed);
    }
}

impl WriterStatus {
    /// The counters now.
    pub fn figures(&self) -> WriterFigures {
        WriterFigures {
            received: self.received.load(Ordering::Relaxed),
            stored: self.stored.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            spooled: self.spooled.load(Ordering::Relaxed),
            replayed: self.replayed.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            spool_waiting: self.spool_waiting.load(Ordering::Relaxed),
            compacted: self.compacted.load(Ordering::Relaxed),
            segments: self.segments.load(Ordering::Relaxed),
            exported: self.exported.load(Ordering::Relaxed),
            retired: self.retired.load(Ordering::Relaxed),
            stored_sim_time: f64::from_bits(self.stored_sim_time.load(Ordering::Relaxed)),
        }
    }

    /// Simulated seconds between `now` and what the writer has made safe: the latest row
    /// committed, or while the database is unreachable, the latest row spooled (the run goes
    /// on against the spool during an outage, and waits for the replay once it is over).
    pub fn lag_s(&self, now: f64) -> f64 {
        let safe = if self.outage.load(Ordering::Relaxed) { &self.safe_sim_time } else { &self.stored_sim_time };
        (now - f64::from_bits(safe.load(Ordering::Relaxed))).max(0.0)
    }

    /// Whether the database is unreachable now.
    pub fn in_outage(&self) -> bool {
        self.outage.load(Ordering::Relaxed)
    }

    /// The last write error, while writes keep failing.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_error(&self, error: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = error;
    }
}

/// Where a batch ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Landed {
    /// Committed (refused rows dead-lettered).
    Stored,
    /// In the spool file, to be replayed.
    Spooled,
}

/// Writes batches of one run, dead-lettering what the database refuses and spooling while
/// it is unreachable.
pub struct BatchWriter {
    store: Store,
    target: RunTarget,
    source: String,
    spool: Spool,
    status: Arc<WriterStatus>,
    batch_rows: usize,
    max_backoff: Duration,
    backoff: Duration,
    /// While the database is unreachable: when to try it next.
    retry_at: Option<Instant>,
    lifecycle: Option<LifecycleSettings>,
    /// How far the life cycle has gone.
    progress: Progress,
}

impl BatchWriter {
    /// A writer of the run `target` into `store`; `source` names the feed in dead letters.
    pub fn new(store: Store, target: RunTarget, source: &str, spool: PathBuf, settings: &WriterSettings, status: Arc<WriterStatus>) -> Self {
        let spool = Spool::new(spool, &target.name);
        Self::adopting(store, target, source, spool, settings, status)
    }

    /// A writer that starts by replaying `spool`, left by an earlier writer of `target`.
    fn adopting(store: Store, target: RunTarget, source: &str, spool: Spool, settings: &WriterSettings, status: Arc<WriterStatus>) -> Self {
        status.spool_waiting.store(spool.waiting(), Ordering::Relaxed);
        Self {
            store,
            target,
            source: source.to_owned(),
            spool,
            status,
            batch_rows: settings.batch_rows.max(1),
            max_backoff: settings.max_backoff,
            backoff: Duration::from_millis(50),
            retry_at: None,
            lifecycle: settings.lifecycle.clone(),
            progress: Progress::default(),
        }
    }

    /// The run it writes.
    pub fn run_id(&self) -> i64 {
        self.target.run_id
    }

    /// Its counters.
    pub fn status(&self) -> &Arc<WriterStatus> {
        &self.status
    }

    /// Whether everything handed over is committed (nothing waits in the spool).
    pub fn is_caught_up(&self) -> bool {
        self.spool.is_empty()
    }

    /// When the database is next tried, while it is unreachable.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Commits `batch`, or spools it when the database is unreachable or the spool already
    /// holds earlier rows (order is kept). Only when the spool cannot be written either does
    /// this wait, retrying, until the database takes the batch.
    pub async fn write(&mut self, batch: Batch) -> Landed {
        add(&self.status.received, batch.len() as u64);
        if batch.is_empty() {
            return Landed::Stored;
        }
        if self.spool.is_empty() {
            match self.land(&batch.rows).await {
                Ok(()) => {
                    raise_to(&self.status.stored_sim_time, batch.latest_sim_time);
                    raise_to(&self.status.safe_sim_time, batch.latest_sim_time);
                    self.maintain().await;
                    return Landed::Stored;
                }
                Err(error) => self.failed(&error, batch.len()),
            }
        }
        match self.spool.append(&batch.rows) {
            Ok(()) => {
                add(&self.status.spooled, batch.len() as u64);
                self.status.spool_waiting.store(self.spool.waiting(), Ordering::Relaxed);
                raise_to(&self.status.safe_sim_time, batch.latest_sim_time);
                self.catch_up().await;
                Landed::Spooled
            }
            Err(error) => {
                tracing::error!("{error}; holding the batch in memory until the database takes it");
                self.catch_up_fully(None).await;
                loop {
                    match self.land(&batch.rows).await {
                        Ok(()) => break,
                        Err(error) => {
                            self.failed(&error, batch.len());
                            tokio::time::sleep(self.backoff).await;
                        }
                    }
                }
                raise_to(&self.status.stored_sim_time, batch.latest_sim_time);
                raise_to(&self.status.safe_sim_time, batch.latest_sim_time);
                Landed::Stored
            }
        }
    }

    /// Replays the spool if the database is due another try, a few batches at a time.
    /// Returns whether the spool is empty.
    pub async fn catch_up(&mut self) -> bool {
        for _ in 0..8 {
            if self.spool.is_empty() {
                return true;
            }
            if self.retry_at.is_some_and(|at| Instant::now() < at) {
                return false;
            }
            let (rows, offset) = match self.spool.peek(self.batch_rows) {
                Ok(read) => read,
                Err(error) => {
                    tracing::error!("{error}; replay waits");
                    self.failed(&error, 0);
                    return false;
                }
            };
            let count = rows.len() as u64;
            let (good, unreadable): (Vec<_>, Vec<_>) = rows.into_iter().partition(Result::is_ok);
            let good: Vec<Row> = good.into_iter().map(|r| r.expect("partitioned")).collect();
            let letters: Vec<DeadLetter> = unreadable
                .into_iter()
                .map(|r| DeadLetter { source: format!("{} (spool)", self.source), reason: r.expect_err("partitioned"), payload: String::new() })
                .collect();
            let landed = match self.land(&good).await {
                Ok(()) if letters.is_empty() => Ok(()),
                Ok(()) => self.store.dead_letter(Some(self.target.run_id), &letters).await,
                Err(error) => Err(error),
            };
            match landed.and_then(|()| self.spool.consume(count, offset)) {
                Ok(()) => {
                    add(&self.status.replayed, good.len() as u64);
                    add(&self.status.rejected, letters.len() as u64);
                    self.status.spool_waiting.store(self.spool.waiting(), Ordering::Relaxed);
                    if let Some(latest) = good.iter().map(|r| r.key().sim_time).reduce(f64::max) {
                        raise_to(&self.status.stored_sim_time, latest);
                    }
                    self.recovered();
                }
                Err(error) => {
                    self.failed(&error, good.len());
                    return false;
                }
            }
        }
        self.spool.is_empty()
    }

    /// Takes the life cycle as far as the watermark allows (compaction, retention): the
    /// simulated instant of the latest row committed, and only while nothing waits in the
    /// spool (a spooled row is not yet durable, and its replay must land among raw rows). A
    /// failure is logged and tried again at the next step; the rows stay as they are meanwhile.
    async fn maintain(&mut self) {
        let Some(settings) = &self.lifecycle else { return };
        if !self.spool.is_empty() {
            return;
        }
        let stored_s = f64::from_bits(self.status.stored_sim_time.load(Ordering::Relaxed));
        let watermark_ms = super::instant(self.target.start, stored_s).unix_ms() as i64;
        match lifecycle::maintain(&self.store, &self.target, watermark_ms, settings, &mut self.progress).await {
            Ok(done) => {
                add(&self.status.compacted, done.compacted.frames);
                add(&self.status.segments, done.compacted.segments);
                add(&self.status.exported, done.exported.len() as u64);
                add(&self.status.retired, done.retired);
            }
            Err(error) => {
                // Not again until the next whole step: a failing database is not hammered.
                self.progress.skip_to(watermark_ms, settings);
                tracing::warn!("telemetry life cycle at {}: {error}", crate::model::WallTime::from_unix_ms(watermark_ms.max(0) as u64));
            }
        }
    }

    /// Replays the whole spool, waiting out the database's outage for up to `give_up_after`
    /// (forever when `None`). Returns whether all of it landed; if not, the file stays for the
    /// next writer on this database ([`replay_leftovers`]).
    pub async fn catch_up_fully(&mut self, give_up_after: Option<Duration>) -> bool {
        let started = Instant::now();
        let mut warned = Instant::now();
        while !self.catch_up().await {
            if give_up_after.is_some_and(|limit| started.elapsed() >= limit) {
                tracing::warn!(
                    "gave up waiting for the database: {} rows stay in {}, and the next writer opened on this database replays them",
                    self.spool.waiting(),
                    self.spool.path().display()
                );
                return false;
            }
            if warned.elapsed() >= Duration::from_secs(10) {
                warned = Instant::now();
                tracing::warn!("{} rows wait in {} for the database: {}", self.spool.waiting(), self.spool.path().display(), self.status.last_error().unwrap_or_default());
            }
            let wait = self.retry_at.map_or(Duration::from_millis(10), |at| at.saturating_duration_since(Instant::now()));
            tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
        }
        self.spool.remove_if_empty();
        true
    }

    /// Commits `rows`, dead-lettering the ones the database refuses; fails only when the
    /// database cannot be reached (or fails for a reason that is not about the rows).
    async fn land(&self, rows: &[Row]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        match self.store.write(&self.target, rows).await {
            Ok(written) => {
                add(&self.status.stored, written.stored);
                add(&self.status.duplicates, written.duplicates);
                Ok(())
            }
            Err(error) if error.is_refusal() && rows.len() == 1 => {
                let letter = DeadLetter { source: self.source.clone(), reason: error.to_string(), payload: serde_json::to_string(&rows[0]).expect("rows always serialise") };
                tracing::warn!("the database refused a {} row of {} ({}); kept in dead_letters", table_name(&rows[0]), rows[0].key().vehicle, error);
                self.store.dead_letter(Some(self.target.run_id), &[letter]).await?;
                add(&self.status.rejected, 1);
                Ok(())
            }
            Err(error) if error.is_refusal() => {
                // Halve until the refused rows stand alone; the rest lands.
                let (first, second) = rows.split_at(rows.len() / 2);
                Box::pin(self.land(first)).await?;
                Box::pin(self.land(second)).await
            }
            Err(error) => Err(error),
        }
    }

    fn failed(&mut self, error: &StoreError, rows: usize) {
        if self.retry_at.is_none() {
            tracing::warn!("store write of {rows} rows failed, spooling until the database answers: {error}");
        } else {
            self.backoff = (self.backoff * 2).min(self.max_backoff);
        }
        add(&self.status.retried, 1);
        self.status.set_error(Some(error.to_string()));
        self.status.outage.store(true, Ordering::Relaxed);
        self.retry_at = Some(Instant::now() + self.backoff);
    }

    fn recovered(&mut self) {
        if self.retry_at.take().is_some() {
            tracing::info!("the database answers again; replaying {} spooled rows", self.spool.waiting());
        }
        self.backoff = Duration::from_millis(50);
        self.status.outage.store(false, Ordering::Relaxed);
        self.status.set_error(None);
    }
}

fn table_name(row: &Row) -> &'static str {
    match row {
        Row::Telemetry(..) => "telemetry",
        Row::Event(..) => "event",
        Row::Heartbeat(..) => "heartbeat",
        Row::Alert(..) => "alert",
        Row::Command(..) => "command",
        Row::CommandAck(..) => "command ack",
        Row::Presence(..) => "presence",
    }
}

/// A running in-process writer.
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
        runtime.block_on(replay_leftovers(&store, &settings))?;
        let target = runtime.block_on(store.register_run(&run))?;
        let status = Arc::new(WriterStatus::default());
        let closing = Arc::new(AtomicBool::new(false));
        let writer = BatchWriter::new(store, target, "bus", settings.spool_path(&std::process::id().to_string(), &run.name), &settings, status.clone());
        let thread = {
            let closing = closing.clone();
            std::thread::Builder::new()
                .name("aegis-store".into())
                .spawn(move || runtime.block_on(write_loop(writer, run, messages, settings, &closing)))
                .map_err(|e| StoreError::WriterGone(e.to_string()))?
        };
        Ok(Self { status, closing, thread })
    }

    /// What it has done so far.
    pub fn status(&self) -> &WriterStatus {
        &self.status
    }

    /// Writes what is still waiting (replaying the spool, however long the database takes to
    /// come back) and stops. Returns the final counters.
    pub fn finish(self) -> Result<WriterFigures, StoreError> {
        self.closing.store(true, Ordering::Relaxed);
        self.thread.join().map_err(|_| StoreError::WriterGone("its thread panicked".into()))??;
        Ok(self.status.figures())
    }
}

async fn write_loop(mut writer: BatchWriter, run: RunInfo, messages: Subscription, settings: WriterSettings, closing: &AtomicBool) -> Result<(), StoreError> {
    let messages = messages.receiver();
    let mut disconnected = false;
    loop {
        // Asked to stop (or the bus is gone): whatever was published before is in the channel
        // now, so take what is there without waiting for more.
        let last = disconnected || closing.load(Ordering::Relaxed);
        let mut batch = Batch::default();
        let mut first_at = None::<Instant>;
        let mut first_sim = None::<f64>;
        let span_s = settings.batch_sim_span.as_secs_f64();
        while batch.len() < settings.batch_rows && first_sim.is_none_or(|first| batch.latest_sim_time - first < span_s) {
            let mut wait = if last { Duration::ZERO } else { first_at.map_or(settings.batch_age, |at| settings.batch_age.saturating_sub(at.elapsed())) };
            // While the spool waits, come back in time to try the database again.
            if let Some(at) = writer.retry_at().filter(|_| !writer.is_caught_up()) {
                wait = wait.min(at.saturating_duration_since(Instant::now()));
            }
            match messages.recv_timeout(wait) {
                Ok(envelope) => {
                    first_sim.get_or_insert(envelope.sim_time);
                    batch.push(run.start, envelope);
                }
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    disconnected = true;
                    break;
                }
            }
            first_at.get_or_insert_with(Instant::now);
        }
        let empty = batch.is_empty();
        if empty {
            writer.catch_up().await;
        } else {
            writer.write(batch).await;
        }
        if last && empty {
            writer.catch_up_fully(Some(settings.drain_timeout)).await;
            return Ok(());
        }
    }
}
