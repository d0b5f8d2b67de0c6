//! The server backend: PostgreSQL 15 or later, its schema from `migrations/postgres`.
//!
//! A batch is written with `COPY ... FROM STDIN`, one per table, in one transaction: the
//! fastest way into PostgreSQL. COPY cannot skip rows that are already there, so when a batch
//! holds a redelivered message the transaction fails on the primary key and the batch is
//! written again through `INSERT ... SELECT FROM UNNEST(...) ON CONFLICT DO NOTHING`, one
//! statement per table with one array per column, which adds only what is new.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Column as _, Postgres, Row as _, Transaction, TypeInfo as _, ValueRef as _};

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use super::{partitions, timescale};
use super::rows::{Row, RunTarget, failures, hourly_upserts, wire_name};
use super::sql::{Cell, Param, Statement};
use super::{StoreError, Written};
use crate::model::METRICS;

/// How a batch goes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingest {
    /// `COPY` first, `UNNEST` when the batch repeats stored rows.
    Copy,
    /// `INSERT ... SELECT FROM UNNEST(...) ON CONFLICT DO NOTHING` always.
    Unnest,
}

/// An open PostgreSQL store.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// How batches go in: [`Ingest::Unnest`] from the first time the server refuses COPY.
    ingest: Arc<Mutex<Ingest>>,
    /// The TimescaleDB version in use, when telemetry is a hypertable.
    timescale: Option<String>,
    /// Without TimescaleDB: the day partitions known to exist.
    days: Option<partitions::Days>,
    /// Why the life-cycle path is the one it is, for `aegis store info`.
    path: String,
}

/// What a `postgres://` URL may say to the store itself, beside what it says to the server:
/// `max_connections=N` (1 for a server that takes one client at a time, as the TimescaleDB
/// engine for tests does), `timescaledb=off` (plain PostgreSQL even where the extension is
/// offered) and `chunk_interval=6h` (the hypertable's, when it is created). They are taken out
/// before the URL reaches the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UrlOptions {
    url: String,
    max_connections: u32,
    timescaledb: bool,
    chunk_interval: Duration,
}

impl UrlOptions {
    fn parse(url: &str) -> Result<Self, StoreError> {
        let problem = |problem: String| StoreError::Url { url: url.to_owned(), problem };
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut options = Self { url: base.to_owned(), max_connections: 4, timescaledb: true, chunk_interval: timescale::CHUNK_INTERVAL };
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=').unwrap_or((pair, "")) {
                ("max_connections", n) => {
                    options.max_connections = n.parse().ok().filter(|n| *n > 0).ok_or_else(|| problem(format!("max_connections must be a whole number above 0, not `{n}`")))?;
                }
                ("timescaledb", "on") => options.timescaledb = true,
                ("timescaledb", "off") => options.timescaledb = false,
                ("timescaledb", other) => return Err(problem(format!("timescaledb must be on or off, not `{other}`"))),
                ("chunk_interval", text) => {
                    options.chunk_interval = humantime::parse_duration(text).ok().filter(|d| d.as_secs() >= 60).ok_or_else(|| problem(format!("chunk_interval must be a duration of a minute or more, like 6h, not `{text}`")))?;
                }
                _ => rest.push(pair),
            }
        }
        if !rest.is_empty() {
            options.url = format!("{base}?{}", rest.join("&"));
        }
        Ok(options)
    }
}

/// What a column holds, for COPY's text and UNNEST's arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// TIMESTAMPTZ, given as milliseconds.
    Time,
    /// INTEGER or BIGINT.
    Int,
    /// DOUBLE PRECISION.
    Float,
    /// A reading as whole steps of its metric's resolution: SMALLINT or INTEGER.
    Steps,
    /// TEXT (nullable).
    Text,
    /// JSONB, given as text.
    Json,
    /// BOOLEAN.
    Bool,
}

/// One value of a row about to be written.
#[derive(Debug, Clone)]
enum Field<'a> {
    Time(i64),
    Int(i64),
    Float(f64),
    /// Steps of a reading; `None` when the reading is not a number, which the column refuses.
    Steps(Option<i64>),
    Text(Option<Cow<'a, str>>),
    Bool(bool),
}

/// A message table: its name and columns, in order.
struct Table {
    name: &'static str,
    columns: Vec<(&'static str, Kind)>,
    copy: String,
    unnest: String,
}

impl Table {
    fn new(name: &'static str, clocks: [(&'static str, Kind); 2], own: &[(&'static str, Kind)]) -> Self {
        let key = [("time", Kind::Time), ("run_id", Kind::Int), ("vehicle_id", Kind::Int), ("seq", Kind::Int)];
        let columns: Vec<(&'static str, Kind)> = key.into_iter().chain(clocks).chain(own.iter().copied()).collect();
        let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
        let copy = format!("COPY {name} ({}) FROM STDIN", names.join(", "));
        let arrays: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, (_, kind))| {
                let array = match kind {
                    Kind::Time | Kind::Int => "INT8[]",
                    Kind::Float => "FLOAT8[]",
                    // Cast to the column's width on insert: out of its range is refused there.
                    Kind::Steps => "INT8[]",
                    Kind::Text | Kind::Json => "TEXT[]",
                    Kind::Bool => "BOOL[]",
                };
                format!("${}::{array}", i + 1)
            })
            .collect();
        let selected: Vec<String> = columns
            .iter()
            .map(|(name, kind)| match kind {
                Kind::Time => format!("to_timestamp(u.{name} / 1000.0)"),
                Kind::Json => format!("u.{name}::JSONB"),
                _ => format!("u.{name}"),
            })
            .collect();
        let unnest = format!(
            "INSERT INTO {name} ({}) SELECT {} FROM UNNEST({}) AS u({}) ON CONFLICT DO NOTHING RETURNING vehicle_id, seq",
            names.join(", "),
            selected.join(", "),
            arrays.join(", "),
            names.join(", ")
        );
        Self { name, columns, copy, unnest }
    }
}

/// A message's simulated and wall-clock times, after its key; telemetry's as integer
/// milliseconds, which its codecs compress to almost nothing (migration 0006).
const CLOCKS: [(&str, Kind); 2] = [("sim_time", Kind::Float), ("wall_time", Kind::Time)];
const TELEMETRY_CLOCKS: [(&str, Kind); 2] = [("sim_ms", Kind::Int), ("wall_ms", Kind::Int)];

/// The message tables, in the order [`table_of`] numbers them.
static TABLES: LazyLock<[Table; 7]> = LazyLock::new(|| {
    let metrics: Vec<(&'static str, Kind)> = METRICS.iter().map(|m| (m.name, Kind::Steps)).collect();
    [
        Table::new("telemetry", TELEMETRY_CLOCKS, &metrics),
        Table::new("events", CLOCKS, &[("event", Kind::Text), ("detail", Kind::Json)]),
        Table::new("heartbeats", CLOCKS, &[("status", Kind::Text), ("uptime_s", Kind::Float)]),
        Table::new(
            "alerts",
            CLOCKS,
            &[
                ("alert_id", Kind::Text),
                ("component", Kind::Text),
                ("alert_type", Kind::Text),
                ("severity", Kind::Text),
                ("raised_at_s", Kind::Float),
                ("evidence", Kind::Json),
                ("recommendation", Kind::Json),
                ("state", Kind::Text),
                ("origin", Kind::Text),
                ("occurrences", Kind::Int),
                ("audit", Kind::Json),
                ("record", Kind::Json),
            ],
        ),
        Table::new("commands", CLOCKS, &[("command_id", Kind::Text), ("action", Kind::Text), ("detail", Kind::Json), ("ttl_s", Kind::Float)]),
        Table::new("command_acks", CLOCKS, &[("command_id", Kind::Text), ("outcome", Kind::Text), ("detail", Kind::Text)]),
        Table::new("presence", CLOCKS, &[("online", Kind::Bool), ("last_seen_sim_time", Kind::Float), ("silent_s", Kind::Float)]),
    ]
});

/// The number of the table a row goes to, in [`TABLES`].
fn table_index(row: &Row) -> usize {
    match row {
        Row::Telemetry(..) => 0,
        Row::Event(..) => 1,
        Row::Heartbeat(..) => 2,
        Row::Alert(..) => 3,
        Row::Command(..) => 4,
        Row::CommandAck(..) => 5,
        Row::Presence(..) => 6,
    }
}

/// The table a row goes to, and its values in that table's column order.
fn table_of(run_id: i64, row: &Row) -> (usize, Vec<Field<'_>>) {
    let key = row.key();
    let mut fields = vec![Field::Time(key.time_ms), Field::Int(run_id), Field::Int(key.vehicle), Field::Int(key.seq)];
    match row {
        Row::Telemetry(..) => fields.extend([Field::Int(key.sim_ms()), Field::Int(key.wall_ms)]),
        _ => fields.extend([Field::Float(key.sim_time), Field::Time(key.wall_ms)]),
    }
    fn text(s: &str) -> Field<'_> {
        Field::Text(Some(Cow::Borrowed(s)))
    }
    fn owned(s: String) -> Field<'static> {
        Field::Text(Some(Cow::Owned(s)))
    }
    match row {
        Row::Telemetry(_, telemetry) => {
            fields.extend(METRICS.iter().zip(&telemetry.metrics.values).map(|(spec, v)| Field::Steps(spec.steps(*v))));
        }
        Row::Event(_, event, detail) => {
            fields.extend([text(event), text(detail)]);
        }
        Row::Heartbeat(_, status, uptime_s) => {
            fields.extend([text(status), Field::Float(*uptime_s)]);
        }
        Row::Alert(_, update) => {
            let alert = &update.alert;
            fields.extend([
                text(&alert.id),
                owned(wire_name(&alert.key.component)),
                text(&alert.key.alert_type),
                owned(wire_name(&alert.severity)),
                Field::Float(alert.created_at),
                owned(serde_json::to_string(&alert.evidence).unwrap_or_default()),
                owned(serde_json::to_string(&alert.recommendation).unwrap_or_default()),
                text(update.state()),
                owned(wire_name(&alert.origin)),
                Field::Int(i64::from(alert.occurrences)),
                owned(serde_json::to_string(&update.audit).unwrap_or_default()),
                owned(serde_json::to_string(alert).unwrap_or_default()),
            ]);
        }
        Row::Command(_, id, action, detail, ttl_s) => {
            fields.extend([text(id), text(action), text(detail), Field::Float(*ttl_s)]);
        }
        Row::CommandAck(_, id, outcome, detail) => {
            fields.extend([text(id), text(outcome), Field::Text(detail.as_deref().map(Cow::Borrowed))]);
        }
        Row::Presence(_, presence) => {
            fields.extend([Field::Bool(presence.online), Field::Float(presence.last_seen_sim_time), Field::Float(presence.silent_s)]);
        }
    }
    (table_index(row), fields)
}

impl PostgresStore {
    /// Connects to the server at `url` and applies the migrations.
    pub async fn open(url: &str, ingest: Ingest) -> Result<Self, StoreError> {
        let options = UrlOptions::parse(url)?;
        let connect = PgConnectOptions::from_str(&options.url)?;
        // A write to a server that is down fails within seconds, so that the writer spools
        // instead of waiting.
        let pool = PgPoolOptions::new().max_connections(options.max_connections).acquire_timeout(Duration::from_secs(5)).connect_with(connect).await?;
        let mut store = Self { pool, ingest: Arc::new(Mutex::new(ingest)), timescale: None, days: None, path: String::new() };
        let recompress = timescale::before_migrations(&store.pool).await?;
        store.migrate().await?;
        let offered = timescale::offered(&store.pool).await?;
        let (hypertable, partitioned) = (timescale::is_hypertable(&store.pool).await?, partitions::is_partitioned(&store.pool).await?);
        store.path = match (offered, options.timescaledb || hypertable) {
            (Some(version), true) if !partitioned => {
                timescale::set_up(&store.pool, options.chunk_interval).await?;
                if let Some(chunks) = &recompress {
                    timescale::after_migrations(&store.pool, chunks).await?;
                }
                let path = format!(
                    "TimescaleDB {version}: telemetry is a hypertable in {} chunks, compressed natively (segment by run_id, vehicle_id; order by time, seq) and rolled up by the continuous aggregates telemetry_hourly and telemetry_daily at the writer's watermark of simulated time; days past the retention age exported to Parquet, then their chunks dropped",
                    humantime::format_duration(timescale::chunk_interval(&store.pool).await?.unwrap_or(options.chunk_interval))
                );
                store.timescale = Some(version);
                path
            }
            offered => {
                partitions::set_up(&store.pool).await?;
                store.days = Some(partitions::Days::default());
                let why = match offered {
                    (Some(_), true) => "telemetry was partitioned by day before TimescaleDB was offered here, and stays so".to_owned(),
                    (Some(version), false) => format!("the URL says timescaledb=off (TimescaleDB {version} is offered)"),
                    (None, _) => "this server does not offer the timescaledb extension".to_owned(),
                };
                format!("plain PostgreSQL, since {why}: telemetry partitioned by UTC day (telemetry_YYYYMMDD); {}", super::lifecycle::own_path())
            }
        };
        Ok(store)
    }

    /// The TimescaleDB version in use, when telemetry is a hypertable.
    pub fn timescale(&self) -> Option<&str> {
        self.timescale.as_deref()
    }

    /// Without TimescaleDB: the day partitions known to exist.
    pub(crate) fn days(&self) -> Option<&partitions::Days> {
        self.days.as_ref()
    }

    /// Which life-cycle path is active, and why.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Applies the migrations not yet applied; applying them again changes nothing.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("migrations/postgres").run(&self.pool).await?;
        Ok(())
    }

    /// The connection pool, for queries of its own.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Rows of `statement` (with `$n` placeholders), each cell as the engine typed it.
    pub async fn fetch(&self, statement: &Statement) -> Result<Vec<Vec<Cell>>, StoreError> {
        let rows = bound(sqlx::query(AssertSqlSafe(statement.sql.clone())), &statement.params).fetch_all(&self.pool).await?;
        rows.iter().map(cells).collect()
    }

    /// Runs `statements` in one transaction; returns the rows each affected.
    pub async fn execute_all(&self, statements: &[Statement]) -> Result<Vec<u64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut affected = Vec::with_capacity(statements.len());
        for statement in statements {
            let query = bound(sqlx::query(AssertSqlSafe(statement.sql.clone())), &statement.params);
            affected.push(query.execute(&mut *tx).await?.rows_affected());
        }
        tx.commit().await?;
        Ok(affected)
    }

    /// Writes `rows` for `target` in one transaction: all of them land, or none.
    pub async fn write(&self, target: &RunTarget, rows: &[Row]) -> Result<Written, StoreError> {
        if let Some(days) = &self.days {
            days.ensure(&self.pool, rows.iter().filter(|r| matches!(r, Row::Telemetry(..))).map(|r| r.key().time_ms)).await?;
        }
        let ingest = *self.ingest.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if ingest == Ingest::Copy {
            match self.copy(target, rows).await {
                Err(StoreError::Database(sqlx::Error::Database(error))) if error.is_unique_violation() => {}
                // A server that does not take COPY (feature_not_supported, as the TimescaleDB
                // engine for tests answers) gets every batch by UNNEST from now on.
                Err(StoreError::Database(sqlx::Error::Database(error))) if error.code().as_deref() == Some("0A000") => {
                    tracing::info!("the server refuses COPY ({}): writing by INSERT ... UNNEST", error.message());
                    *self.ingest.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Ingest::Unnest;
                }
                other => return other,
            }
        }
        self.unnest(target, rows).await
    }

    /// The batch by COPY: fails on the primary key if any row is already stored.
    ///
    /// Each table's text is sent a chunk at a time as it is formatted, so the server parses
    /// one chunk while the next is written: formatting and parsing overlap instead of adding up.
    pub async fn copy(&self, target: &RunTarget, rows: &[Row]) -> Result<Written, StoreError> {
        const CHUNK_BYTES: usize = 256 * 1024;
        let run_id = target.run_id;
        let mut tx = self.pool.begin().await?;
        let mut stored = 0;
        let mut text = String::with_capacity(CHUNK_BYTES + 4096);
        for (index, table) in TABLES.iter().enumerate() {
            let mut mine = rows.iter().filter(|row| table_index(row) == index).peekable();
            if mine.peek().is_none() {
                continue;
            }
            let mut copy = tx.copy_in_raw(&table.copy).await?;
            for row in mine {
                copy_line(&mut text, &table_of(run_id, row).1);
                if text.len() >= CHUNK_BYTES {
                    copy.send(text.as_bytes()).await?;
                    text.clear();
                }
            }
            if !text.is_empty() {
                copy.send(text.as_bytes()).await?;
                text.clear();
            }
            stored += copy.finish().await?;
        }
        upsert_failures(&mut tx, run_id, rows).await?;
        upsert_hourly(&mut tx, target, rows, |_| true).await?;
        tx.commit().await?;
        Ok(Written { stored, duplicates: rows.len() as u64 - stored })
    }

    /// The batch by `INSERT ... SELECT FROM UNNEST`, adding only rows not yet stored.
    pub async fn unnest(&self, target: &RunTarget, rows: &[Row]) -> Result<Written, StoreError> {
        let run_id = target.run_id;
        let mut by_table: [Vec<Vec<Field<'_>>>; 7] = Default::default();
        for row in rows {
            let (table, fields) = table_of(run_id, row);
            by_table[table].push(fields);
        }
        let mut tx = self.pool.begin().await?;
        // Which (vehicle, seq) of each table were new: only those count in the rollup.
        let mut added: [HashSet<(i64, i64)>; 7] = Default::default();
        for ((table, rows), added) in TABLES.iter().zip(&by_table).zip(&mut added) {
            if rows.is_empty() {
                continue;
            }
            let query = (0..table.columns.len()).fold(sqlx::query(AssertSqlSafe(table.unnest.as_str())), |query, column| bind_column(query, table.columns[column].1, rows, column));
            for row in query.fetch_all(&mut *tx).await? {
                added.insert((i64::from(row.try_get::<i32, _>(0)?), row.try_get::<i64, _>(1)?));
            }
        }
        let stored: u64 = added.iter().map(|a| a.len() as u64).sum();
        upsert_failures(&mut tx, run_id, rows).await?;
        let inserted = |i: usize| {
            let key = rows[i].key();
            added[table_of(run_id, &rows[i]).0].contains(&(key.vehicle, key.seq))
        };
        upsert_hourly(&mut tx, target, rows, inserted).await?;
        tx.commit().await?;
        Ok(Written { stored, duplicates: rows.len() as u64 - stored })
    }

    /// Names of the message tables.
    pub fn message_tables() -> impl Iterator<Item = &'static str> {
        TABLES.iter().map(|t| t.name)
    }
}

type Query<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;

fn bound<'q>(query: Query<'q>, params: &[Param]) -> Query<'q> {
    params.iter().fold(query, |query, param| match param {
        Param::Int(v) => query.bind(*v),
        Param::Float(v) => query.bind(*v),
        Param::Text(v) => query.bind(v.clone()),
        Param::Bytes(v) => query.bind(v.clone()),
        Param::Null => query.bind(None::<i64>),
    })
}

/// One column of `rows` as an array.
fn bind_column<'q>(query: Query<'q>, kind: Kind, rows: &[Vec<Field<'_>>], column: usize) -> Query<'q> {
    let values = rows.iter().map(|r| &r[column]);
    match kind {
        Kind::Time | Kind::Int => query.bind(values.map(|f| if let Field::Int(v) | Field::Time(v) = f { *v } else { 0 }).collect::<Vec<i64>>()),
        Kind::Float => query.bind(values.map(|f| if let Field::Float(v) = f { *v } else { 0.0 }).collect::<Vec<f64>>()),
        Kind::Steps => query.bind(values.map(|f| if let Field::Steps(v) = f { *v } else { None }).collect::<Vec<Option<i64>>>()),
        Kind::Text | Kind::Json => query.bind(values.map(|f| if let Field::Text(v) = f { v.as_deref().map(str::to_owned) } else { None }).collect::<Vec<Option<String>>>()),
        Kind::Bool => query.bind(values.map(|f| matches!(f, Field::Bool(true))).collect::<Vec<bool>>()),
    }
}

/// Appends one row in COPY's text format: tab-separated, `\N` for NULL, backslash escapes.
fn copy_line(out: &mut String, fields: &[Field<'_>]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        match field {
            Field::Time(ms) => push_timestamp(out, *ms),
            Field::Int(v) => out.push_str(itoa::Buffer::new().format(*v)),
            Field::Float(v) if v.is_infinite() => out.push_str(if *v > 0.0 { "Infinity" } else { "-Infinity" }),
            // Shortest text that reads back as the same value (ryu: the formatting is most of
            // the writer's own work on a batch).
            Field::Float(v) => out.push_str(ryu::Buffer::new().format(*v)),
            Field::Steps(Some(v)) => out.push_str(itoa::Buffer::new().format(*v)),
            Field::Steps(None) => out.push_str("\\N"),
            Field::Bool(v) => out.push(if *v { 't' } else { 'f' }),
            Field::Text(None) => out.push_str("\\N"),
            Field::Text(Some(text)) => {
                for c in text.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\t' => out.push_str("\\t"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        c => out.push(c),
                    }
                }
            }
        }
    }
    out.push('\n');
}

/// `ms` since the epoch as PostgreSQL's timestamp text, `2026-01-05 06:00:01.000+00`: the
/// civil date from the day number (H. Hinnant's `civil_from_days`), without a formatter.
fn push_timestamp(out: &mut String, ms: i64) {
    let days = ms.div_euclid(86_400_000);
    let of_day = ms.rem_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (of_day / 3_600_000, of_day / 60_000 % 60, of_day / 1000 % 60, of_day % 1000);
    let _ = write!(out, "{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02}.{milli:03}+00");
}

/// A failure's ground truth, kept up to date from each batch that reports it.
async fn upsert_failures(tx: &mut Transaction<'_, Postgres>, run_id: i64, rows: &[Row]) -> Result<(), StoreError> {
    let failures = failures(rows);
    if failures.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO failures (run_id, vehicle_id, mode, component, onset_s, functional_failure_s, last_severity, last_seen_s)
         SELECT $1, u.vehicle_id, u.mode, u.component, u.onset_s, u.functional_failure_s, u.last_severity, u.last_seen_s
         FROM UNNEST($2::INT8[], $3::TEXT[], $4::TEXT[], $5::FLOAT8[], $6::FLOAT8[], $7::FLOAT4[], $8::FLOAT8[])
              AS u(vehicle_id, mode, component, onset_s, functional_failure_s, last_severity, last_seen_s)
         ON CONFLICT (run_id, vehicle_id, mode, onset_s) DO UPDATE SET
            functional_failure_s = COALESCE(failures.functional_failure_s, excluded.functional_failure_s),
            last_severity = CASE WHEN excluded.last_seen_s >= failures.last_seen_s THEN excluded.last_severity ELSE failures.last_severity END,
            last_seen_s = GREATEST(failures.last_seen_s, excluded.last_seen_s)",
    )
    .bind(run_id)
    .bind(failures.iter().map(|f| f.vehicle).collect::<Vec<_>>())
    .bind(failures.iter().map(|f| f.mode.clone()).collect::<Vec<_>>())
    .bind(failures.iter().map(|f| f.component.clone()).collect::<Vec<_>>())
    .bind(failures.iter().map(|f| f.onset_s).collect::<Vec<_>>())
    .bind(failures.iter().map(|f| f.functional_failure_s).collect::<Vec<_>>())
    .bind(failures.iter().map(|f| f.last_severity).collect::<Vec<_>>())
    .bind(failures.iter().map(|f| f.last_seen_s).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Adds what the inserted rows contribute to the hourly rollup.
async fn upsert_hourly(tx: &mut Transaction<'_, Postgres>, target: &RunTarget, rows: &[Row], inserted: impl Fn(usize) -> bool) -> Result<(), StoreError> {
    for upsert in hourly_upserts(super::Dialect::Postgres, target, rows, inserted) {
        bound(sqlx::query(AssertSqlSafe(upsert.sql)), &upsert.params).execute(&mut **tx).await?;
    }
    Ok(())
}

/// A row's cells by their column types.
fn cells(row: &PgRow) -> Result<Vec<Cell>, StoreError> {
    (0..row.columns().len())
        .map(|i| {
            let raw = row.try_get_raw(i)?;
            if raw.is_null() {
                return Ok(Cell::Null);
            }
            let type_info = raw.type_info();
            Ok(match type_info.name() {
                "INT2" => Cell::from(row.try_get::<i16, _>(i)?),
                "INT4" => Cell::from(row.try_get::<i32, _>(i)?),
                "INT8" => Cell::from(row.try_get::<i64, _>(i)?),
                "FLOAT4" => Cell::from(f64::from(row.try_get::<f32, _>(i)?)),
                "FLOAT8" => Cell::from(row.try_get::<f64, _>(i)?),
                "BOOL" => Cell::from(row.try_get::<bool, _>(i)?),
                "TEXT" | "VARCHAR" | "NAME" => Cell::from(row.try_get::<String, _>(i)?),
                other => return Err(StoreError::query(format!("column `{}` is of type {other}, which answers cannot show (cast it)", row.columns()[i].name()))),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::WallTime;

    #[test]
    fn timestamps_read_as_the_instant_they_are() {
        for ms in [0, 951_782_400_123, 1_767_592_800_000, 1_767_592_859_999, 4_102_444_799_999] {
            let mut text = String::new();
            push_timestamp(&mut text, ms);
            // RFC 3339 with a space and +00 instead of T and Z.
            let rfc = WallTime::from_unix_ms(ms as u64).to_string().replace('T', " ").replace('Z', "+00");
            assert_eq!(text, rfc);
        }
    }
}
