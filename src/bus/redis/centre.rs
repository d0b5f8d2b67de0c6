//! The centre's ports over Redis: operators' requests from a stream, answered on per-request
//! lists ([`RedisOperators`], and [`OperatorClient`] for the operators' end), and the state
//! store in hashes ([`RedisState`]), written once a second in one transaction so a centre
//! killed at any moment restarts from a consistent picture. Both talk to Redis on tasks of
//! their own; the centre only hands over and takes from channels.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use redis::aio::ConnectionManager;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc::UnboundedSender;

use super::backoff::Backoff;
use super::error::TransportError;
use super::RedisConfig;
use crate::bus::keys::{Keys, partition_of};
use crate::model::{AlertRecord, FleetStatus, OperatorReply, OperatorRequest};
use crate::orchestrator::ports::{Changes, KeptState, OperatorChannel, StateStore};

/// Requests older than this are not answered: their senders have given up.
const REPLY_KEPT_S: u64 = 60;

/// A stream entry as XREAD returns it: id and field-value pairs.
type StreamEntry = (String, Vec<(String, String)>);

/// What XREAD returns: per stream, its entries; nothing when it timed out.
type StreamReply = Option<Vec<(String, Vec<StreamEntry>)>>;

/// The centre's end of the operator channel over Redis.
pub struct RedisOperators {
    requests: crossbeam_channel::Receiver<OperatorRequest>,
    replies: UnboundedSender<(String, OperatorReply)>,
}

impl RedisOperators {
    /// Starts reading the request stream of `config`'s prefix from now on, on the current
    /// tokio runtime. The reader blocks on the stream, so it gets a connection of its own:
    /// a shared (multiplexed) one would hold everyone else's commands behind it.
    pub async fn start(config: &RedisConfig) -> Result<Self, TransportError> {
        let keys = config.keys();
        let mut connection = config.connection()?;
        let mut reader = config.connection()?;
        let (forward, requests) = crossbeam_channel::unbounded();
        let (replies, mut to_send) = tokio::sync::mpsc::unbounded_channel::<(String, OperatorReply)>();
        // Requests from before this start are not answered: their senders have given up.
        let mut cursor = server_time_id(&mut connection).await;
        let stream = keys.operator_requests();
        tokio::spawn(async move {
            let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
            loop {
                let read: redis::RedisResult<StreamReply> =
                    redis::cmd("XREAD").arg("COUNT").arg(100).arg("BLOCK").arg(1000).arg("STREAMS").arg(&stream).arg(&cursor).query_async(&mut reader).await;
                match read {
                    Ok(streams) => {
                        backoff.reset();
                        for (_, entries) in streams.unwrap_or_default() {
                            for (id, fields) in entries {
                                cursor = id.clone();
                                let text = fields.iter().find(|(f, _)| f == "request").map(|(_, v)| v.as_str()).unwrap_or("");
                                match serde_json::from_str::<OperatorRequest>(text) {
                                    Ok(request) => {
                                        if forward.send(request).is_err() {
                                            return;
                                        }
                                    }
                                    Err(error) => tracing::warn!("{stream} entry {id}: unreadable request ({error}); ignored"),
                                }
                            }
                        }
                    }
                    Err(error) => {
                        if !backoff.failing() {
                            tracing::warn!("cannot read operator requests ({error}); retrying");
                        }
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                }
            }
        });
        tokio::spawn(async move {
            while let Some((request_id, reply)) = to_send.recv().await {
                let key = keys.operator_reply(&request_id);
                let json = serde_json::to_string(&reply).expect("replies serialise");
                let written: redis::RedisResult<()> = redis::pipe().cmd("LPUSH").arg(&key).arg(json).ignore().cmd("EXPIRE").arg(&key).arg(REPLY_KEPT_S).ignore().query_async(&mut connection).await;
                if let Err(error) = written {
                    tracing::warn!("operator reply {key} not written: {error}");
                }
            }
        });
        Ok(Self { requests, replies })
    }
}

impl OperatorChannel for RedisOperators {
    fn requests(&mut self) -> Vec<OperatorRequest> {
        self.requests.try_iter().collect()
    }

    fn reply(&mut self, request: &OperatorRequest, reply: OperatorReply) {
        let _ = self.replies.send((request.request_id.clone(), reply));
    }
}

/// The server's clock as a stream id.
async fn server_time_id(connection: &mut ConnectionManager) -> String {
    let time: redis::RedisResult<(u64, u64)> = redis::cmd("TIME").query_async(connection).await;
    match time {
        Ok((seconds, micros)) => format!("{}-0", seconds * 1000 + micros / 1000),
        Err(_) => "$".to_owned(),
    }
}

/// The centre's state in Redis.
pub struct RedisState {
    writes: UnboundedSender<Changes>,
}

impl RedisState {
    /// Starts the writer task on the current tokio runtime. The task ends once the store is
    /// dropped and what it was given is written; await the handle to know it has.
    pub fn start(mut connection: ConnectionManager, keys: Keys) -> (Self, tokio::task::JoinHandle<()>) {
        let (writes, mut changes) = tokio::sync::mpsc::unbounded_channel::<Changes>();
        let task = tokio::spawn(async move {
            let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
            let mut pending: Option<Changes> = None;
            loop {
                let mut next = match pending.take() {
                    Some(next) => next,
                    None => match changes.recv().await {
                        Some(next) => next,
                        None => return,
                    },
                };
                // Whatever queued up meanwhile goes in the same transaction.
                while let Ok(more) = changes.try_recv() {
                    next = merged(next, more);
                }
                match transaction(&keys, &next).query_async::<()>(&mut connection).await {
                    Ok(()) => backoff.reset(),
                    Err(error) => {
                        if !backoff.failing() {
                            tracing::warn!("centre state not written ({error}); kept for the next try");
                        }
                        pending = Some(next);
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                }
            }
        });
        (Self { writes }, task)
    }

    /// Reads what an earlier centre kept under `keys`, waiting (with backoff) while Redis is
    /// unreachable, until `shutdown`. A record that cannot be read is skipped with a warning
    /// naming it; a failed read is an error, never an empty state.
    pub async fn load(connection: &mut ConnectionManager, keys: &Keys, shutdown: impl Future<Output = ()>) -> Result<KeptState, TransportError> {
        let read = async {
            let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
            loop {
                match read_kept(connection, keys).await {
                    Ok(kept) => return Ok(kept),
                    Err(TransportError::Redis(error)) if error.is_io_error() || error.is_connection_refusal() || error.is_timeout() => {
                        if !backoff.failing() {
                            tracing::warn!("waiting for redis to read the centre's kept state: {error}");
                        }
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                    Err(error) => return Err(error),
                }
            }
        };
        tokio::select! {
            kept = read => kept,
            () = shutdown => Err(TransportError::ShutDown),
        }
    }
}

impl StateStore for RedisState {
    fn save(&mut self, changes: Changes) {
        // The task lives as long as the runtime; after that nothing is written anyway.
        let _ = self.writes.send(changes);
    }
}

/// Two saves as one, the later winning.
fn merged(mut earlier: Changes, later: Changes) -> Changes {
    earlier.status = later.status.or(earlier.status);
    earlier.alerts.extend(later.alerts);
    earlier.commands.extend(later.commands);
    earlier.missions.extend(later.missions);
    earlier.vehicles.extend(later.vehicles);
    earlier.cursor = later.cursor.or(earlier.cursor);
    earlier
}

fn transaction(keys: &Keys, changes: &Changes) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    pipe.atomic();
    let json = |value: &dyn erased::Json| value.json();
    if let Some(status) = &changes.status {
        pipe.cmd("SET").arg(keys.fleet_status()).arg(json(status)).ignore();
    }
    for (key, records) in [
        (keys.alerts(), changes.alerts.iter().map(|a| (a.id.as_str(), json(a))).collect::<Vec<_>>()),
        (keys.commands(), changes.commands.iter().map(|c| (c.id.as_str(), json(c))).collect()),
        (keys.missions(), changes.missions.iter().map(|m| (m.id.as_str(), json(m))).collect()),
    ] {
        if !records.is_empty() {
            pipe.cmd("HSET").arg(key).arg(records).ignore();
        }
    }
    let mut by_partition: BTreeMap<u16, Vec<(String, String)>> = BTreeMap::new();
    for (vehicle, summary) in &changes.vehicles {
        by_partition.entry(partition_of(*vehicle)).or_default().push((vehicle.to_string(), json(summary)));
    }
    for (partition, entries) in by_partition {
        pipe.cmd("HSET").arg(keys.vehicles(partition)).arg(entries).ignore();
    }
    if let Some(cursor) = &changes.cursor {
        pipe.cmd("SET").arg(keys.centre_cursor()).arg(json(cursor)).ignore();
    }
    pipe
}

/// JSON for anything the state store writes.
mod erased {
    pub trait Json {
        fn json(&self) -> String;
    }

    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).expect("the centre's records serialise")
        }
    }
}

async fn read_kept(connection: &mut ConnectionManager, keys: &Keys) -> Result<KeptState, TransportError> {
    let cursor: Option<String> = redis::cmd("GET").arg(keys.centre_cursor()).query_async(connection).await?;
    let cursor = match cursor {
        Some(text) => Some(serde_json::from_str(&text).map_err(|e| TransportError::Unreadable { key: keys.centre_cursor(), field: String::new(), why: e.to_string() })?),
        None => None,
    };
    Ok(KeptState { alerts: read_hash(connection, &keys.alerts()).await?, commands: read_hash(connection, &keys.commands()).await?, missions: read_hash(connection, &keys.missions()).await?, cursor })
}

async fn read_hash<T: DeserializeOwned>(connection: &mut ConnectionManager, key: &str) -> Result<Vec<T>, TransportError> {
    let stored: Vec<(String, String)> = redis::cmd("HGETALL").arg(key).query_async(connection).await?;
    let mut records = Vec::with_capacity(stored.len());
    for (id, json) in stored {
        match serde_json::from_str(&json) {
            Ok(record) => records.push(record),
            Err(error) => tracing::warn!("{}; left out", TransportError::Unreadable { key: key.to_owned(), field: id, why: error.to_string() }),
        }
    }
    Ok(records)
}

/// The operators' end over Redis, for `aegis alerts ...` and `aegis fleet status`: reads come
/// straight from the keys the centre keeps, changes go to it as requests.
pub struct OperatorClient {
    connection: redis::Connection,
    keys: Keys,
}

impl OperatorClient {
    /// Connects to the server of `config` (its prefix names the keys), waiting at most 5 s.
    pub fn connect(config: &RedisConfig) -> Result<Self, TransportError> {
        let client = redis::Client::open(config.url.as_str()).map_err(|source| TransportError::BadUrl { url: config.url.clone(), source })?;
        let connection = client.get_connection_with_timeout(Duration::from_secs(5))?;
        Ok(Self { connection, keys: config.keys() })
    }

    /// Every alert the centre keeps.
    pub fn alerts(&mut self) -> Result<Vec<AlertRecord>, TransportError> {
        let stored: Vec<(String, String)> = redis::cmd("HGETALL").arg(self.keys.alerts()).query(&mut self.connection)?;
        stored
            .into_iter()
            .map(|(id, json)| serde_json::from_str(&json).map_err(|e| TransportError::Unreadable { key: self.keys.alerts(), field: id, why: e.to_string() }))
            .collect()
    }

    /// The centre's latest fleet status, if it has published one.
    pub fn fleet_status(&mut self) -> Result<Option<FleetStatus>, TransportError> {
        let status: Option<String> = redis::cmd("GET").arg(self.keys.fleet_status()).query(&mut self.connection)?;
        status.map(|text| serde_json::from_str(&text).map_err(|e| TransportError::Unreadable { key: self.keys.fleet_status(), field: String::new(), why: e.to_string() })).transpose()
    }

    /// Hands in `request` and waits at most `within` for the answer; `None` when no centre
    /// answered.
    pub fn submit(&mut self, request: &OperatorRequest, within: Duration) -> Result<Option<OperatorReply>, TransportError> {
        let json = serde_json::to_string(request).expect("requests serialise");
        let _: String = redis::cmd("XADD").arg(self.keys.operator_requests()).arg("MAXLEN").arg("~").arg(10_000).arg("*").arg("request").arg(json).query(&mut self.connection)?;
        let answer: Option<(String, String)> = redis::cmd("BLPOP").arg(self.keys.operator_reply(&request.request_id)).arg(within.as_secs_f64()).query(&mut self.connection)?;
        answer
            .map(|(key, reply)| serde_json::from_str(&reply).map_err(|e| TransportError::Unreadable { key, field: String::new(), why: e.to_string() }))
            .transpose()
    }
}
