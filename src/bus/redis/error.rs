//! The Redis transport's errors. Connection and command failures are retried where they
//! happen (the writer, the readers, commits) and surface only once their retries are spent;
//! unreadable entries are not errors of the transport but dead letters ([`Unreadable`]).

use std::path::PathBuf;
use std::time::Duration;

/// What went wrong talking to Redis or keeping messages locally.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The URL does not name a Redis server.
    #[error("--redis `{url}`: {source}")]
    BadUrl {
        /// As given.
        url: String,
        /// Why redis-rs refused it.
        source: redis::RedisError,
    },
    /// A command or connection failed (after its retries).
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis did not answer in time.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// A local file the transport keeps (spill file, sequence record, lock) failed.
    #[error("{}: {source}", path.display())]
    File {
        /// Which file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// Another live process uses the same identity and spill directory.
    #[error("another process named `{identity}` is running with spill directory {} (its lock is held); give each process its own --spill-dir or identity", dir.display())]
    IdentityInUse {
        /// The process identity.
        identity: String,
        /// The spill directory.
        dir: PathBuf,
    },
    /// A key the centre keeps holds something it cannot read.
    #[error("{key}: entry `{field}` is unreadable: {why}")]
    Unreadable {
        /// The key.
        key: String,
        /// The hash field or entry id.
        field: String,
        /// What is wrong.
        why: String,
    },
    /// The caller's shutdown came first.
    #[error("shut down before redis answered")]
    ShutDown,
}

/// Why a stream entry cannot be read; it is dead-lettered with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    /// No `data` field.
    #[error("no `data` field")]
    NoData,
    /// Larger than the limit.
    #[error("oversized: {bytes} bytes, the limit is {limit}")]
    Oversized {
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// Not UTF-8.
    #[error("`data` is not UTF-8")]
    NotUtf8,
    /// Not a valid envelope.
    #[error("{0}")]
    Envelope(String),
    /// The `kind` field disagrees with the envelope.
    #[error("`kind` field says {field} but the envelope is {envelope}")]
    KindMismatch {
        /// The field.
        field: String,
        /// The envelope's kind.
        envelope: &'static str,
    },
    /// On the wrong stream family.
    #[error("a {kind} message does not belong on a {family} stream")]
    WrongFamily {
        /// The envelope's kind.
        kind: &'static str,
        /// The stream's family.
        family: &'static str,
    },
    /// On the wrong partition.
    #[error("wrong vehicle id: {vehicle} belongs to partition {belongs}, not {partition}")]
    WrongPartition {
        /// The vehicle.
        vehicle: String,
        /// Where it belongs.
        belongs: u16,
        /// Where it was.
        partition: u16,
    },
}
