//! A consumer-group reader of one stream family across all partitions: reads new entries,
//! re-reads its own pending entries after a reconnect, reclaims a dead consumer's pending
//! entries with `XAUTOCLAIM`, turns unreadable entries into dead letters, and acknowledges only
//! what its owner says it has processed.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use redis::Value;
use redis::aio::ConnectionManager;

use super::backoff::Backoff;
use super::error::{TransportError, Unreadable};
use crate::bus::keys::{Family, Keys, MAX_ENTRY_BYTES, PARTITIONS, partition_of};
use crate::model::Envelope;

/// Where a new consumer group starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// Everything the streams still hold.
    Beginning,
    /// Only entries added after the group was made.
    New,
}

/// How a [`StreamConsumer`] reads.
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// Consumer group; every group sees every entry once.
    pub group: String,
    /// This consumer's name within the group; a restart under the same name takes over its own
    /// pending entries.
    pub consumer: String,
    /// Where a newly made group starts.
    pub start: StartAt,
    /// Entries per read and stream.
    pub batch: usize,
    /// Longest wait for new entries in one read.
    pub block: Duration,
    /// Reclaim other consumers' entries pending longer than this (their consumer is presumed
    /// dead); `None` never reclaims.
    pub claim_idle: Option<Duration>,
}

impl ConsumerOptions {
    /// Defaults for `group`/`consumer`: from the beginning, 1,000 per read, 100 ms blocking,
    /// reclaiming after 30 s.
    pub fn new(group: impl Into<String>, consumer: impl Into<String>) -> Self {
        Self {
            group: group.into(),
            consumer: consumer.into(),
            start: StartAt::Beginning,
            batch: 1000,
            block: Duration::from_millis(100),
            claim_idle: Some(Duration::from_secs(30)),
        }
    }
}

/// A readable entry.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Partition (and so stream) it came from.
    pub partition: u16,
    /// Stream entry id.
    pub id: String,
    /// The message.
    pub envelope: Envelope,
}

/// An entry that could not be read; it is dead-lettered and acknowledged on commit.
#[derive(Debug, Clone)]
pub struct Rejected {
    /// Partition it came from.
    pub partition: u16,
    /// Stream entry id.
    pub id: String,
    /// What is wrong, for people.
    pub reason: String,
    /// The start of the raw `data` field.
    pub data: Vec<u8>,
}

/// One read's result.
#[derive(Debug, Default)]
pub struct Batch {
    /// Readable entries, in stream order per partition.
    pub deliveries: Vec<Delivery>,
    /// Unreadable ones.
    pub rejected: Vec<Rejected>,
    /// Entries that were pending but had been trimmed from the stream before they were read
    /// (the stream's length bound was exceeded); acknowledged on commit.
    pub trimmed: Vec<(u16, String)>,
}

impl Batch {
    /// Whether the read returned nothing at all.
    pub fn is_empty(&self) -> bool {
        self.deliveries.is_empty() && self.rejected.is_empty() && self.trimmed.is_empty()
    }
}

/// Totals of one consumer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ConsumerStats {
    /// Entries read (including re-reads and reclaims).
    pub read: u64,
    /// Entries taken over from other consumers with `XAUTOCLAIM`.
    pub reclaimed: u64,
    /// Unreadable entries dead-lettered.
    pub rejected: u64,
    /// Pending entries found trimmed away.
    pub trimmed: u64,
    /// Entries acknowledged.
    pub acknowledged: u64,
    /// Failed Redis calls.
    pub errors: u64,
}

/// Reads one family's streams of every partition as one consumer of a group.
pub struct StreamConsumer {
    connection: ConnectionManager,
    keys: Keys,
    family: Family,
    streams: Vec<String>,
    options: ConsumerOptions,
    groups_ready: bool,
    /// Per partition, the id after which to re-read our own pending entries; `None` once done.
    recovering: Vec<Option<String>>,
    claim_cursor: Vec<String>,
    last_claim: Instant,
    backoff: Backoff,
    logged: HashSet<String>,
    /// Totals.
    pub stats: ConsumerStats,
}

impl StreamConsumer {
    /// A consumer of `family` under `keys`. Connects lazily; the first [`poll`](Self::poll)
    /// makes the groups. Starts by re-reading its own pending entries, which is how a restart
    /// under the same name picks up what it had read but not acknowledged.
    pub fn new(connection: ConnectionManager, keys: Keys, family: Family, options: ConsumerOptions) -> Self {
        let streams = keys.streams(family);
        Self {
            connection,
            keys,
            family,
            streams,
            recovering: vec![Some("0-0".to_owned()); PARTITIONS as usize],
            claim_cursor: vec!["0-0".to_owned(); PARTITIONS as usize],
            // Reclaim soon after start: a restarted replacement takes over promptly.
            last_claim: Instant::now() - Duration::from_secs(3600),
            options,
            groups_ready: false,
            backoff: Backoff::new(Duration::from_millis(50), Duration::from_secs(5)),
            logged: HashSet::new(),
            stats: ConsumerStats::default(),
        }
    }

    /// Makes the consumer groups now (one try); returns whether they exist. Until they do,
    /// a group starting at new entries would miss what is added meanwhile.
    pub async fn prepare(&mut self) -> bool {
        match self.make_groups().await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!("{}: cannot make the consumer groups yet ({error}); retrying while reading", self.options.group);
                false
            }
        }
    }

    /// The group.
    pub fn group(&self) -> &str {
        &self.options.group
    }

    /// Reads the next entries: own pending ones first, then reclaimed ones when due, then new
    /// ones, waiting at most `block` (none when `wait` is false). Redis errors are logged once
    /// per outage and retried after a backoff; they show as an empty batch.
    pub async fn poll(&mut self, wait: bool) -> Batch {
        match self.try_poll(wait).await {
            Ok(batch) => {
                if self.backoff.failing() {
                    tracing::info!("{}: redis reachable again", self.options.group);
                }
                self.backoff.reset();
                batch
            }
            Err(error) => {
                self.stats.errors += 1;
                if error.code() == Some("NOGROUP") || error.to_string().contains("NOGROUP") {
                    // The server lost its data (it ran without persistence): make the groups
                    // again. What it lost shows as gaps in the sequence numbers.
                    tracing::warn!("{}: the consumer group is gone (redis lost its data?); making it again, lost messages will show as gaps", self.options.group);
                    self.groups_ready = false;
                } else if !self.backoff.failing() {
                    tracing::warn!("{}: reading from redis failed ({error}); retrying", self.options.group);
                }
                // What was read but not acknowledged is re-read from our pending list.
                self.recovering.fill(Some("0-0".to_owned()));
                tokio::time::sleep(self.backoff.next_delay()).await;
                Batch::default()
            }
        }
    }

    async fn try_poll(&mut self, wait: bool) -> redis::RedisResult<Batch> {
        if !self.groups_ready {
            self.make_groups().await?;
        }
        if self.recovering.iter().any(Option::is_some) {
            return self.read_own_pending().await;
        }
        if let Some(idle) = self.options.claim_idle
            && self.last_claim.elapsed() >= idle.min(Duration::from_secs(1))
        {
            self.last_claim = Instant::now();
            let batch = self.reclaim(idle).await?;
            if !batch.is_empty() {
                return Ok(batch);
            }
        }
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP").arg(&self.options.group).arg(&self.options.consumer).arg("COUNT").arg(self.options.batch);
        if wait {
            cmd.arg("BLOCK").arg(self.options.block.as_millis() as u64);
        }
        cmd.arg("STREAMS").arg(&self.streams);
        for _ in &self.streams {
            cmd.arg(">");
        }
        let reply: Value = cmd.query_async(&mut self.connection).await?;
        Ok(self.decode_read(reply))
    }

    async fn make_groups(&mut self) -> redis::RedisResult<()> {
        let start = match self.options.start {
            StartAt::Beginning => "0",
            StartAt::New => "$",
        };
        for stream in &self.streams {
            let made: redis::RedisResult<()> =
                redis::cmd("XGROUP").arg("CREATE").arg(stream).arg(&self.options.group).arg(start).arg("MKSTREAM").query_async(&mut self.connection).await;
            match made {
                Ok(()) => {}
                Err(error) if error.code() == Some("BUSYGROUP") => {}
                Err(error) => return Err(error),
            }
        }
        self.groups_ready = true;
        Ok(())
    }

    async fn read_own_pending(&mut self) -> redis::RedisResult<Batch> {
        let partitions: Vec<usize> = (0..self.streams.len()).filter(|&p| self.recovering[p].is_some()).collect();
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP").arg(&self.options.group).arg(&self.options.consumer).arg("COUNT").arg(self.options.batch).arg("STREAMS");
        for &p in &partitions {
            cmd.arg(&self.streams[p]);
        }
        for &p in &partitions {
            cmd.arg(self.recovering[p].as_deref().expect("filtered above"));
        }
        let reply: Value = cmd.query_async(&mut self.connection).await?;
        let entries = parse_streams(reply);
        let mut batch = Batch::default();
        for &p in &partitions {
            let found = entries.get(&self.streams[p]).filter(|e| !e.is_empty());
            match found {
                None => self.recovering[p] = None,
                Some(entries) => {
                    self.recovering[p] = entries.last().map(|e| e.id.clone());
                    for entry in entries {
                        self.decode_entry(p as u16, entry, &mut batch);
                    }
                }
            }
        }
        Ok(batch)
    }

    async fn reclaim(&mut self, idle: Duration) -> redis::RedisResult<Batch> {
        let mut pipe = redis::pipe();
        for (p, stream) in self.streams.iter().enumerate() {
            pipe.cmd("XAUTOCLAIM")
                .arg(stream)
                .arg(&self.options.group)
                .arg(&self.options.consumer)
                .arg(idle.as_millis() as u64)
                .arg(&self.claim_cursor[p])
                .arg("COUNT")
                .arg(self.options.batch);
        }
        let replies: Vec<Value> = pipe.query_async(&mut self.connection).await?;
        let mut batch = Batch::default();
        for (p, reply) in replies.into_iter().enumerate() {
            let Value::Array(parts) = reply else { continue };
            let mut parts = parts.into_iter();
            if let Some(cursor) = parts.next().and_then(|v| text(&v)) {
                self.claim_cursor[p] = cursor;
            }
            let claimed = parts.next().map(parse_entries).unwrap_or_default();
            self.stats.reclaimed += claimed.len() as u64;
            if !claimed.is_empty() {
                tracing::info!("{}: reclaimed {} entries of {} from a silent consumer", self.options.group, claimed.len(), self.streams[p]);
            }
            for entry in &claimed {
                self.decode_entry(p as u16, entry, &mut batch);
            }
            // Entries deleted from the stream while pending: nothing to read, only to clear.
            if let Some(Value::Array(deleted)) = parts.next() {
                for id in deleted.iter().filter_map(text) {
                    self.stats.trimmed += 1;
                    batch.trimmed.push((p as u16, id));
                }
            }
        }
        Ok(batch)
    }

    fn decode_read(&mut self, reply: Value) -> Batch {
        let mut batch = Batch::default();
        for (key, entries) in parse_streams(reply) {
            let Some(p) = self.streams.iter().position(|s| *s == key) else { continue };
            for entry in &entries {
                self.decode_entry(p as u16, entry, &mut batch);
            }
        }
        batch
    }

    fn decode_entry(&mut self, partition: u16, entry: &RawEntry, batch: &mut Batch) {
        self.stats.read += 1;
        let Some(fields) = &entry.fields else {
            self.stats.trimmed += 1;
            batch.trimmed.push((partition, entry.id.clone()));
            return;
        };
        match self.check(partition, fields) {
            Ok(envelope) => batch.deliveries.push(Delivery { partition, id: entry.id.clone(), envelope }),
            Err(reason) => {
                self.stats.rejected += 1;
                let key = format!("{}/{}", self.streams[partition as usize], entry.id);
                if self.logged.len() > 100_000 {
                    self.logged.clear();
                }
                if self.logged.insert(key) {
                    tracing::warn!("{} entry {}: {reason}; dead-lettered", self.streams[partition as usize], entry.id);
                }
                let data = fields.iter().find(|(f, _)| f == b"data").map(|(_, v)| v[..v.len().min(4096)].to_vec()).unwrap_or_default();
                batch.rejected.push(Rejected { partition, id: entry.id.clone(), reason: reason.to_string(), data });
            }
        }
    }

    /// Everything that makes an entry unreadable, named.
    fn check(&self, partition: u16, fields: &[(Vec<u8>, Vec<u8>)]) -> Result<Envelope, Unreadable> {
        let field = |name: &[u8]| fields.iter().find(|(f, _)| f == name).map(|(_, v)| v.as_slice());
        let data = field(b"data").ok_or(Unreadable::NoData)?;
        if data.len() > MAX_ENTRY_BYTES {
            return Err(Unreadable::Oversized { bytes: data.len(), limit: MAX_ENTRY_BYTES });
        }
        let text = std::str::from_utf8(data).map_err(|_| Unreadable::NotUtf8)?;
        let envelope = Envelope::from_json(text).map_err(|e| Unreadable::Envelope(e.to_string()))?;
        if let Some(kind) = field(b"kind")
            && kind != envelope.kind().as_str().as_bytes()
        {
            return Err(Unreadable::KindMismatch { field: String::from_utf8_lossy(kind).into_owned(), envelope: envelope.kind().as_str() });
        }
        if Family::of(envelope.kind()) != self.family {
            return Err(Unreadable::WrongFamily { kind: envelope.kind().as_str(), family: self.family.as_str() });
        }
        if partition_of(envelope.vehicle_id) != partition {
            return Err(Unreadable::WrongPartition { vehicle: envelope.vehicle_id.to_string(), belongs: partition_of(envelope.vehicle_id), partition });
        }
        Ok(envelope)
    }

    /// Acknowledges processed entries, dead-letters rejected ones and runs `extra` commands of
    /// the same partitions, one `MULTI`/`EXEC` transaction per partition, so that what the
    /// owner records (e.g. sequence numbers seen) and what the group acknowledges never
    /// disagree. Retries until Redis answers or `give_up_after` passes.
    pub async fn commit(&mut self, done: &[(u16, String)], rejected: &[Rejected], extra: &[(u16, redis::Cmd)], give_up_after: Duration) -> Result<(), TransportError> {
        let mut by_partition: BTreeMap<u16, PartitionCommit> = BTreeMap::new();
        for (p, id) in done {
            by_partition.entry(*p).or_default().ids.push(id);
        }
        for r in rejected {
            by_partition.entry(r.partition).or_default().rejected.push(r);
        }
        for (p, cmd) in extra {
            by_partition.entry(*p).or_default().extra.push(cmd);
        }
        if by_partition.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        let mut acked = 0u64;
        for (p, PartitionCommit { ids, rejected, extra }) in &by_partition {
            let stream = &self.streams[*p as usize];
            pipe.cmd("MULTI").ignore();
            for r in rejected {
                pipe.cmd("XADD")
                    .arg(self.keys.stream(Family::DeadLetter, *p))
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(10_000)
                    .arg("*")
                    .arg("stream")
                    .arg(stream)
                    .arg("id")
                    .arg(&r.id)
                    .arg("group")
                    .arg(&self.options.group)
                    .arg("reason")
                    .arg(&r.reason)
                    .arg("data")
                    .arg(&r.data)
                    .ignore();
            }
            let all_ids: Vec<&str> = ids.iter().copied().chain(rejected.iter().map(|r| r.id.as_str())).collect();
            if !all_ids.is_empty() {
                pipe.cmd("XACK").arg(stream).arg(&self.options.group).arg(&all_ids).ignore();
                acked += all_ids.len() as u64;
            }
            for cmd in extra {
                pipe.add_command((*cmd).clone()).ignore();
            }
            pipe.cmd("EXEC").ignore();
        }
        let deadline = Instant::now() + give_up_after;
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
        loop {
            match pipe.query_async::<()>(&mut self.connection).await {
                Ok(()) => {
                    self.stats.acknowledged += acked;
                    return Ok(());
                }
                Err(error) => {
                    self.stats.errors += 1;
                    if Instant::now() >= deadline {
                        self.recovering.fill(Some("0-0".to_owned()));
                        return Err(TransportError::Redis(error));
                    }
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }
}

/// What one partition's commit transaction holds.
#[derive(Default)]
struct PartitionCommit<'a> {
    ids: Vec<&'a str>,
    rejected: Vec<&'a Rejected>,
    extra: Vec<&'a redis::Cmd>,
}

/// A stream entry as Redis returned it; `fields` is `None` for an entry deleted while pending.
#[derive(Debug)]
struct RawEntry {
    id: String,
    fields: Option<Vec<(Vec<u8>, Vec<u8>)>>,
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

fn bytes(value: Value) -> Vec<u8> {
    match value {
        Value::BulkString(bytes) => bytes,
        Value::SimpleString(s) => s.into_bytes(),
        Value::Int(i) => i.to_string().into_bytes(),
        _ => Vec::new(),
    }
}

/// `XREAD`/`XREADGROUP` reply: stream key to entries. Accepts RESP2 arrays and RESP3 maps.
fn parse_streams(reply: Value) -> BTreeMap<String, Vec<RawEntry>> {
    let pairs: Vec<(Value, Value)> = match reply {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|item| match item {
                Value::Array(mut pair) if pair.len() == 2 => {
                    let entries = pair.pop()?;
                    Some((pair.pop()?, entries))
                }
                _ => None,
            })
            .collect(),
        Value::Map(pairs) => pairs,
        _ => Vec::new(),
    };
    pairs.into_iter().filter_map(|(key, entries)| Some((text(&key)?, parse_entries(entries)))).collect()
}

fn parse_entries(entries: Value) -> Vec<RawEntry> {
    let Value::Array(entries) = entries else { return Vec::new() };
    entries
        .into_iter()
        .filter_map(|entry| {
            let Value::Array(mut parts) = entry else { return None };
            if parts.is_empty() {
                return None;
            }
            let fields = if parts.len() > 1 { parts.pop() } else { None };
            let id = text(&parts.pop()?)?;
            let fields = match fields {
                Some(Value::Array(flat)) => {
                    let mut flat = flat.into_iter();
                    let mut pairs = Vec::new();
                    while let (Some(f), Some(v)) = (flat.next(), flat.next()) {
                        pairs.push((bytes(f), bytes(v)));
                    }
                    Some(pairs)
                }
                Some(Value::Map(map)) => Some(map.into_iter().map(|(f, v)| (bytes(f), bytes(v))).collect()),
                _ => None,
            };
            Some(RawEntry { id, fields })
        })
        .collect()
}
