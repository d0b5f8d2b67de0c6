//! Questions about stored history, answered from the database: the Rust API behind
//! `aegis query` (and, next, the HTTP API's history endpoints). Each query is written once,
//! in the SQL both backends speak ([`Dialect`]).

use std::collections::BTreeMap;

use serde::Serialize;

use super::frames;
use super::segment::Frame;
use super::sql::Cell;
use super::{Dialect, Param, Store, StoreError, StoredRun};
use crate::model::{Component, Metric, Severity, VehicleId, WallTime};

/// A table of answers: named columns and rows of numbers or text.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Answer {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, one value per column.
    pub rows: Vec<Vec<serde_json::Value>>,
}

impl Answer {
    /// As an aligned text table.
    pub fn table(&self) -> String {
        let cells: Vec<Vec<String>> = self.rows.iter().map(|row| row.iter().map(cell).collect()).collect();
        let widths: Vec<usize> =
            self.columns.iter().enumerate().map(|(i, c)| cells.iter().map(|r| r[i].len()).chain([c.len()]).max().unwrap_or(0)).collect();
        let line = |values: Vec<&str>| values.iter().zip(&widths).map(|(v, w)| format!("{v:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_owned();
        let mut out = vec![line(self.columns.iter().map(String::as_str).collect())];
        out.extend(cells.iter().map(|r| line(r.iter().map(String::as_str).collect())));
        out.join("\n") + "\n"
    }

    /// As CSV with a header line.
    pub fn csv(&self) -> String {
        let quote = |v: String| if v.contains([',', '"', '\n']) { format!("\"{}\"", v.replace('"', "\"\"")) } else { v };
        let mut out = self.columns.iter().cloned().map(quote).collect::<Vec<_>>().join(",") + "\n";
        for row in &self.rows {
            out += &(row.iter().map(|v| quote(cell(v))).collect::<Vec<_>>().join(",") + "\n");
        }
        out
    }

    /// As a JSON array of objects, one per row.
    pub fn json(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.rows.iter().map(|row| serde_json::Value::Object(self.columns.iter().cloned().zip(row.iter().cloned()).collect())).collect(),
        )
    }
}

/// How a column of cells is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Show {
    /// A vehicle number, shown as `V0007`.
    Vehicle,
    /// Milliseconds since the epoch, shown as RFC 3339.
    Time,
    /// A sensor reading (an f32), shown as its shortest text.
    Reading,
    /// As the engine returned it.
    Plain,
}

/// Cells as an answer with `columns`, each shown its way.
fn shown(columns: Vec<(String, Show)>, rows: Vec<Vec<Cell>>) -> Answer {
    let rows = rows
        .into_iter()
        .map(|row| {
            row.into_iter()
                .zip(&columns)
                .map(|(cell, (_, show))| match (show, &cell) {
                    (Show::Vehicle, Cell::Number(n)) => Cell::from(VehicleId(n.as_i64().unwrap_or(0) as u32).to_string()),
                    (Show::Time, Cell::Number(n)) => Cell::from(WallTime::from_unix_ms(n.as_i64().unwrap_or(0).max(0) as u64).to_string()),
                    // Readings are f32: the shortest text that reads back as the same f32.
                    (Show::Reading, Cell::Number(n)) => {
                        let value = n.as_f64().unwrap_or(f64::NAN) as f32;
                        let shortest = value.is_finite().then(|| ryu::Buffer::new().format_finite(value).parse::<f64>().ok()).flatten();
                        shortest.and_then(serde_json::Number::from_f64).map_or(Cell::Null, Cell::Number)
                    }
                    _ => cell,
                })
                .collect()
        })
        .collect();
    Answer { columns: columns.into_iter().map(|(name, _)| name).collect(), rows }
}

fn col(name: &str, show: Show) -> (String, Show) {
    (name.to_owned(), show)
}

fn cell(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The stored run named `name`, or the latest when `None`.
pub async fn run(store: &Store, name: Option<&str>) -> Result<StoredRun, StoreError> {
    store.find_run(name).await?.ok_or_else(|| match name {
        Some(name) => StoreError::query(format!("no run named `{name}` in this store")),
        None => StoreError::query("this store holds no runs yet"),
    })
}

/// Metrics by wire name; every metric when `names` is empty.
pub fn metrics(names: &[String]) -> Result<Vec<Metric>, StoreError> {
    if names.is_empty() {
        return Ok(Metric::ALL.to_vec());
    }
    names
        .iter()
        .map(|name| Metric::from_name(name).ok_or_else(|| StoreError::query(format!("no metric named `{name}` (see `aegis metrics`)"))))
        .collect()
}

/// A vehicle of `run`, or an error naming the run's fleet.
fn check_vehicle(run: &StoredRun, vehicle: VehicleId) -> Result<i64, StoreError> {
    if vehicle.0 == 0 || i64::from(vehicle.0) > run.fleet {
        return Err(StoreError::query(format!("run `{}` has no vehicle {vehicle} (its fleet is V0001 to {})", run.name, VehicleId(run.fleet as u32))));
    }
    Ok(i64::from(vehicle.0))
}

/// A range of simulated seconds into `run` as instants in milliseconds, checked.
fn check_range(run: &StoredRun, from_s: f64, to_s: f64) -> Result<(i64, i64), StoreError> {
    if to_s <= from_s {
        return Err(StoreError::query(format!("the range is empty or inverted: from {from_s} s to {to_s} s")));
    }
    Ok((super::instant(run.start, from_s.max(0.0)).unix_ms() as i64, super::instant(run.start, to_s.max(0.0)).unix_ms() as i64))
}

fn telemetry_columns(metrics: &[Metric]) -> Vec<(String, Show)> {
    let mut columns = vec![col("vehicle", Show::Vehicle), col("sim_time", Show::Plain), col("time", Show::Time)];
    columns.extend(metrics.iter().map(|m| col(m.name(), Show::Reading)));
    columns
}

/// A frame as cells: vehicle, sim time, time, then the readings of `metrics`.
fn frame_cells(vehicle: i64, frame: &Frame, metrics: &[Metric]) -> Vec<Cell> {
    let mut cells = vec![Cell::from(vehicle), Cell::from(frame.sim_time), Cell::from(frame.time_ms)];
    cells.extend(metrics.iter().map(|&m| Cell::from(frames::reading(frame, m))));
    cells
}

/// Each vehicle's latest telemetry in `run`: time, vehicle and the chosen metrics.
pub async fn latest(store: &Store, run: &StoredRun, metrics: &[Metric]) -> Result<Answer, StoreError> {
    let rows = frames::latest(store, run.run_id).await?.iter().map(|(vehicle, frame)| frame_cells(*vehicle, frame, metrics)).collect();
    Ok(shown(telemetry_columns(metrics), rows))
}

/// How a range of telemetry is read back.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeQuery {
    /// The vehicle.
    pub vehicle: VehicleId,
    /// Metrics to return.
    pub metrics: Vec<Metric>,
    /// From this many simulated seconds into the run (inclusive).
    pub from_s: f64,
    /// To this many simulated seconds into the run (exclusive).
    pub to_s: f64,
    /// Buckets of this many seconds with min, avg and max of each metric; raw rows when `None`.
    pub every_s: Option<f64>,
    /// Rows per page.
    pub limit: u32,
    /// Rows to skip.
    pub offset: u32,
}

/// One vehicle's telemetry over a range, raw or bucketed, a page at a time: raw rows and
/// compacted segments alike.
pub async fn range(store: &Store, run: &StoredRun, query: &RangeQuery) -> Result<Answer, StoreError> {
    let (from_ms, to_ms) = check_range(run, query.from_s, query.to_s)?;
    let vehicle = check_vehicle(run, query.vehicle)?;
    let (limit, offset) = (query.limit as usize, query.offset as usize);
    let every_s = match query.every_s {
        None => {
            let frames = frames::range(store, run.run_id, vehicle, from_ms, to_ms, &query.metrics, offset + limit).await?;
            let rows = frames.iter().skip(offset).map(|frame| frame_cells(vehicle, frame, &query.metrics)).collect();
            return Ok(shown(telemetry_columns(&query.metrics), rows));
        }
        Some(every_s) if every_s > 0.0 => every_s,
        Some(every_s) => return Err(StoreError::query(format!("--every must be a positive duration, not {every_s} s"))),
    };
    let every_ms = (every_s * 1000.0).round().max(1.0) as i64;
    let buckets = buckets(store, run.run_id, vehicle, (from_ms, to_ms), every_ms, &query.metrics).await?;
    let mut columns = vec![col("vehicle", Show::Vehicle), col("sim_time", Show::Plain), col("time", Show::Time)];
    for metric in &query.metrics {
        columns.extend(["min", "avg", "max"].map(|s| col(&format!("{}_{s}", metric.name()), Show::Reading)));
    }
    let rows = buckets
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(start, bucket)| {
            let mut cells = vec![Cell::from(vehicle), Cell::from(bucket.first_sim_time), Cell::from(*start)];
            for (metric, (min, sum, max)) in query.metrics.iter().zip(&bucket.metrics) {
                let resolution = metric.spec().resolution;
                cells.extend([*min as f64 * resolution, *sum as f64 / bucket.frames as f64 * resolution, *max as f64 * resolution].map(Cell::from));
            }
            cells
        })
        .collect();
    Ok(shown(columns, rows))
}

/// One bucket of a vehicle's telemetry: its first sim time, frames, and per metric the
/// least, summed and greatest steps.
struct Bucket {
    first_sim_time: f64,
    frames: i64,
    metrics: Vec<(i64, i64, i64)>,
}

impl Bucket {
    fn merge(&mut self, other: Bucket) {
        self.first_sim_time = self.first_sim_time.min(other.first_sim_time);
        self.frames += other.frames;
        for (mine, theirs) in self.metrics.iter_mut().zip(other.metrics) {
            *mine = (mine.0.min(theirs.0), mine.1 + theirs.1, mine.2.max(theirs.2));
        }
    }
}

/// A vehicle's telemetry in `[from, to)` in buckets of `every_ms` from `from`, by the bucket's
/// start: the raw rows summed by the engine, compacted frames here.
async fn buckets(store: &Store, run_id: i64, vehicle: i64, (from_ms, to_ms): (i64, i64), every_ms: i64, metrics: &[Metric]) -> Result<BTreeMap<i64, Bucket>, StoreError> {
    let d = store.dialect();
    let at = d.at();
    // The numbers written into the text are computed here, never taken from input.
    let aggregates: Vec<String> = metrics.iter().map(|m| format!("MIN({0}), {1}, MAX({0})", m.name(), d.int(&format!("SUM({})", m.name())))).collect();
    let sql = format!(
        "SELECT {} AS bucket, MIN(sim_ms), COUNT(*), {} FROM telemetry
         WHERE run_id = ? AND vehicle_id = ? AND time >= {at} AND time < {at} GROUP BY bucket",
        store.bucket_ms("time", every_ms, from_ms),
        aggregates.join(", ")
    );
    let mut buckets = BTreeMap::new();
    let int = |cell: &Cell| cell.as_i64().unwrap_or_default();
    for row in store.fetch(&sql, vec![Param::Int(run_id), Param::Int(vehicle), Param::Int(from_ms), Param::Int(to_ms)]).await? {
        let metrics = (0..metrics.len()).map(|i| (int(&row[3 + 3 * i]), int(&row[4 + 3 * i]), int(&row[5 + 3 * i]))).collect();
        buckets.insert(int(&row[0]), Bucket { first_sim_time: int(&row[1]) as f64 / 1000.0, frames: int(&row[2]), metrics });
    }
    frames::each_compacted(store, run_id, Some(vehicle), from_ms, to_ms, |_, frame| {
        let steps = metrics.iter().map(|&m| frame.steps[m as usize]);
        let one = Bucket { first_sim_time: frame.sim_time, frames: 1, metrics: steps.map(|s| (s, s, s)).collect() };
        let start = (frame.time_ms - from_ms).div_euclid(every_ms) * every_ms + from_ms;
        if let Some(bucket) = buckets.get_mut(&start) {
            bucket.merge(one);
        } else {
            buckets.insert(start, one);
        }
    })
    .await?;
    Ok(buckets)
}

/// Which rows of a history: a vehicle, a span of simulated time, a page.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryFilter {
    /// Only this vehicle's.
    pub vehicle: Option<VehicleId>,
    /// From this many simulated seconds into the run (inclusive).
    pub from_s: f64,
    /// To this many simulated seconds into the run (exclusive).
    pub to_s: f64,
    /// Rows per page.
    pub limit: u32,
    /// Rows to skip.
    pub offset: u32,
}

impl HistoryFilter {
    /// All of `run`, first page of 1,000.
    pub fn whole(run: &StoredRun) -> Self {
        Self { vehicle: None, from_s: 0.0, to_s: run.sim_seconds + 1.0, limit: 1000, offset: 0 }
    }

    /// The WHERE conditions on a message table aliased `alias`, and their parameters.
    fn conditions(&self, d: Dialect, run: &StoredRun, alias: &str) -> Result<(Vec<String>, Vec<Param>), StoreError> {
        let (from_ms, to_ms) = check_range(run, self.from_s, self.to_s)?;
        let at = d.at();
        let mut conditions = vec![format!("{alias}.run_id = ?"), format!("{alias}.time >= {at}"), format!("{alias}.time < {at}")];
        let mut params = vec![Param::Int(run.run_id), Param::Int(from_ms), Param::Int(to_ms)];
        if let Some(vehicle) = self.vehicle {
            conditions.push(format!("{alias}.vehicle_id = ?"));
            params.push(Param::Int(check_vehicle(run, vehicle)?));
        }
        Ok((conditions, params))
    }
}

/// A wire name checked against an enum: `None` passes, an unknown name is an error listing
/// what the field takes.
fn wire<T: serde::de::DeserializeOwned>(field: &str, name: Option<&str>, known: &str) -> Result<Option<String>, StoreError> {
    let Some(name) = name else { return Ok(None) };
    serde_json::from_value::<T>(serde_json::Value::from(name)).map_err(|_| StoreError::query(format!("no {field} named `{name}` (one of {known})")))?;
    Ok(Some(name.to_owned()))
}

/// Which alerts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertFilter {
    /// Only this component's (wire name).
    pub component: Option<String>,
    /// Only this severity or worse (wire name).
    pub severity: Option<String>,
    /// Only steps that left the alert in this state: active, acknowledged, shelved, cleared.
    pub state: Option<String>,
}

/// Every step of every alert's life in `run`, oldest first: raised, reopened, severity
/// changes, acknowledgements, assignments, shelving, comments, escalations, clearing.
pub async fn alerts(store: &Store, run: &StoredRun, filter: &HistoryFilter, only: &AlertFilter) -> Result<Answer, StoreError> {
    let (component, min_severity) = (only.component.as_deref(), only.severity.as_deref());
    let d = store.dialect();
    let (mut conditions, mut params) = filter.conditions(d, run, "a")?;
    if let Some(component) = wire::<Component>("component", component, "the components in docs/TELEMETRY.md")? {
        conditions.push("a.component = ?".to_owned());
        params.push(component.into());
    }
    if let Some(least) = wire::<Severity>("severity", min_severity, "info, warning, minor, major, critical")? {
        let order = ["info", "warning", "minor", "major", "critical"];
        let at_least: Vec<String> = order.iter().skip_while(|s| **s != least).map(|s| format!("'{s}'")).collect();
        conditions.push(format!("a.severity IN ({})", at_least.join(", ")));
    }
    if let Some(state) = &only.state {
        if !["active", "acknowledged", "shelved", "cleared"].contains(&state.as_str()) {
            return Err(StoreError::query(format!("no alert state named `{state}` (one of active, acknowledged, shelved, cleared)")));
        }
        conditions.push("a.state = ?".to_owned());
        params.push(state.as_str().into());
    }
    let sql = format!(
        "SELECT a.vehicle_id, a.sim_time, {}, a.alert_id, a.component, a.alert_type, a.severity, a.state, a.origin, a.occurrences, a.raised_at_s, {}, {}, {}
         FROM alerts a WHERE {} ORDER BY a.time, a.vehicle_id, a.seq LIMIT ? OFFSET ?",
        d.ms("a.time"),
        d.json("a.audit"),
        d.json("a.evidence"),
        d.json("a.recommendation"),
        conditions.join(" AND ")
    );
    params.extend([Param::Int(filter.limit.into()), Param::Int(filter.offset.into())]);
    let columns = ["alert_id", "component", "alert_type", "severity", "state", "origin", "occurrences", "raised_at_s", "audit", "evidence", "recommendation"];
    Ok(shown(head_columns().into_iter().chain(columns.map(|c| col(c, Show::Plain))).collect(), store.fetch(&sql, params).await?))
}

fn head_columns() -> Vec<(String, Show)> {
    vec![col("vehicle", Show::Vehicle), col("sim_time", Show::Plain), col("time", Show::Time)]
}

/// Commands sent in `run`, oldest first, with how their vehicles answered.
pub async fn commands(store: &Store, run: &StoredRun, filter: &HistoryFilter, action: Option<&str>) -> Result<Answer, StoreError> {
    let d = store.dialect();
    let (mut conditions, mut params) = filter.conditions(d, run, "c")?;
    if let Some(action) = action {
        conditions.push("c.action = ?".to_owned());
        params.push(action.into());
    }
    let ack = |what: &str| format!("(SELECT {what} FROM command_acks k WHERE k.run_id = c.run_id AND k.command_id = c.command_id ORDER BY k.time LIMIT 1)");
    let sql = format!(
        "SELECT c.vehicle_id, c.sim_time, {}, c.command_id, c.action, {}, c.ttl_s, {}, {}, {}
         FROM commands c WHERE {} ORDER BY c.time, c.vehicle_id, c.seq LIMIT ? OFFSET ?",
        d.ms("c.time"),
        d.json("c.detail"),
        ack("k.outcome"),
        ack("k.sim_time"),
        ack("k.detail"),
        conditions.join(" AND ")
    );
    params.extend([Param::Int(filter.limit.into()), Param::Int(filter.offset.into())]);
    let columns = ["command_id", "action", "detail", "ttl_s", "outcome", "answered_sim_time", "answer_detail"];
    Ok(shown(head_columns().into_iter().chain(columns.map(|c| col(c, Show::Plain))).collect(), store.fetch(&sql, params).await?))
}

/// Missions assigned in `run`, oldest first: to whom, how far they got, how they ended.
pub async fn missions(store: &Store, run: &StoredRun, filter: &HistoryFilter) -> Result<Answer, StoreError> {
    let d = store.dialect();
    let (from_ms, to_ms) = check_range(run, filter.from_s, filter.to_s)?;
    let at = d.at();
    let mut conditions = vec!["m.run_id = ?".to_owned(), format!("m.assigned_time >= {at}"), format!("m.assigned_time < {at}")];
    let mut params = vec![Param::Int(run.run_id), Param::Int(from_ms), Param::Int(to_ms)];
    if let Some(vehicle) = filter.vehicle {
        conditions.push("m.vehicle_id = ?".to_owned());
        params.push(Param::Int(check_vehicle(run, vehicle)?));
    }
    let sql = format!(
        "SELECT m.vehicle_id, m.assigned_sim_time, {}, m.mission_id, m.kind, m.stops, m.command_id, m.ack, m.stops_reached, m.ended, m.ended_sim_time
         FROM missions m WHERE {} ORDER BY m.assigned_time, m.vehicle_id LIMIT ? OFFSET ?",
        d.ms("m.assigned_time"),
        conditions.join(" AND ")
    );
    params.extend([Param::Int(filter.limit.into()), Param::Int(filter.offset.into())]);
    let columns = ["mission_id", "kind", "stops", "command_id", "ack", "stops_reached", "ended", "ended_sim_time"];
    Ok(shown(head_columns().into_iter().chain(columns.map(|c| col(c, Show::Plain))).collect(), store.fetch(&sql, params).await?))
}

/// The length of a fleet aggregate's buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// One hour.
    Hour,
    /// One day (UTC).
    Day,
}

impl Period {
    fn ms(self) -> i64 {
        match self {
            Period::Hour => super::HOUR_MS,
            Period::Day => super::DAY_MS,
        }
    }
}

/// The fleet by model per hour or day of `run`, from the rollups (the writer's hourly one, and on
/// TimescaleDB the continuous aggregates for telemetry):
/// vehicle-hours reported, distance (speed over time), traction energy, alerts raised (and
/// reopened), availability (the share of heartbeats not in maintenance, stopped or offline)
/// and mean health as the centre counts it (1 less the severity weights of a vehicle's alerts
/// seen in the bucket, at least 0, averaged over all the model's vehicles).
pub async fn fleet(store: &Store, run: &StoredRun, period: Period) -> Result<Answer, StoreError> {
    let d = store.dialect();
    let b = period.ms();
    let (least, greatest) = match d {
        Dialect::Sqlite => ("MIN", "MAX"),
        Dialect::Postgres => ("LEAST", "GREATEST"),
    };
    let rolled = match store.timescale() {
        None => format!(
            "SELECT ({hour} / {b}) * {b} AS bucket, model, SUM(frames) AS frames, SUM(distance_km) AS distance_km, SUM(energy_kwh) AS energy_kwh,
                    SUM(heartbeats) AS heartbeats, SUM(available) AS available
             FROM fleet_hourly WHERE run_id = ? GROUP BY ({hour} / {b}) * {b}, model",
            hour = d.ms("hour"),
        ),
        // Telemetry from the continuous aggregates (in steps, scaled here); heartbeats from
        // the writer's rollup, the one table they are summed in.
        Some(_) => {
            let (view, column) = match period {
                Period::Hour => ("telemetry_hourly", "hour"),
                Period::Day => ("telemetry_daily", "day"),
            };
            let (speed, power) = (Metric::SpeedKph.spec().resolution, Metric::EnginePowerKw.spec().resolution);
            format!(
                "SELECT bucket, model, SUM(frames) AS frames, SUM(distance_km) AS distance_km, SUM(energy_kwh) AS energy_kwh,
                        SUM(heartbeats) AS heartbeats, SUM(available) AS available FROM (
                    SELECT {bucket} AS bucket, v.model, t.frames, t.speed_steps * {speed:?} / 3600.0 AS distance_km, t.power_steps * {power:?} / 3600.0 AS energy_kwh,
                           0 AS heartbeats, 0 AS available
                    FROM {view} t JOIN vehicles v ON v.run_id = t.run_id AND v.vehicle_id = t.vehicle_id WHERE t.run_id = ?
                    UNION ALL
                    SELECT ({hour} / {b}) * {b}, model, 0, 0, 0, heartbeats, available FROM fleet_hourly WHERE run_id = ?) u
                 GROUP BY bucket, model",
                bucket = d.ms(&format!("t.{column}")),
                hour = d.ms("hour"),
            )
        }
    };
    let sql = format!(
        "WITH rolled AS ({rolled}),
         steps AS (
            SELECT ({at} / {b}) * {b} AS bucket, a.vehicle_id, a.alert_id,
                   MAX(CASE a.severity WHEN 'critical' THEN 1.0 WHEN 'major' THEN 0.5 WHEN 'minor' THEN 0.2 WHEN 'warning' THEN 0.1 ELSE 0.0 END) AS weight,
                   SUM(CASE WHEN {audit} LIKE '%\"raised\"%' OR {audit} LIKE '%\"reopened\"%' THEN 1 ELSE 0 END) AS raised
            FROM alerts a WHERE a.run_id = ? GROUP BY ({at} / {b}) * {b}, a.vehicle_id, a.alert_id),
         hurt AS (
            SELECT s.bucket, v.model, SUM(s.raised) AS raised, SUM(s.lost) AS lost FROM (
                SELECT bucket, vehicle_id, SUM(raised) AS raised, {least}(1.0, SUM(weight)) AS lost FROM steps GROUP BY bucket, vehicle_id) s
            JOIN vehicles v ON v.run_id = ? AND v.vehicle_id = s.vehicle_id GROUP BY s.bucket, v.model),
         fleet AS (SELECT model, COUNT(*) AS vehicles FROM vehicles WHERE run_id = ? GROUP BY model)
         SELECT r.bucket, r.model, {vehicles}, {hours}, {distance}, {energy}, {alerts}, {available}, {health}
         FROM rolled r JOIN fleet f ON f.model = r.model LEFT JOIN hurt h ON h.bucket = r.bucket AND h.model = r.model
         ORDER BY r.bucket, r.model",
        at = d.ms("a.time"),
        audit = d.json("a.audit"),
        vehicles = d.int("f.vehicles"),
        hours = d.float("r.frames / 3600.0"),
        distance = d.float("r.distance_km"),
        energy = d.float("r.energy_kwh"),
        alerts = d.int("COALESCE(h.raised, 0)"),
        available = d.float("CASE WHEN r.heartbeats > 0 THEN r.available * 1.0 / r.heartbeats ELSE 1.0 END"),
        health = d.float(&format!("{greatest}(0.0, 1.0 - COALESCE(h.lost, 0.0) / f.vehicles)")),
    );
    let params = vec![Param::Int(run.run_id); if store.timescale().is_some() { 5 } else { 4 }];
    let columns = vec![
        col("bucket", Show::Time),
        col("model", Show::Plain),
        col("vehicles", Show::Plain),
        col("vehicle_hours", Show::Plain),
        col("distance_km", Show::Plain),
        col("energy_kwh", Show::Plain),
        col("alerts", Show::Plain),
        col("availability", Show::Plain),
        col("mean_health", Show::Plain),
    ];
    Ok(shown(columns, store.fetch(&sql, params).await?))
}

/// The fleet's telemetry by model per hour or day of `run`, summed from the frames themselves
/// (raw rows by the engine, compacted segments here) instead of the rollups: vehicle-hours,
/// distance and traction energy, as [`fleet`] reports them. What the rollups save, and a check
/// that they are right.
pub async fn fleet_from_frames(store: &Store, run: &StoredRun, period: Period) -> Result<Answer, StoreError> {
    let (speed, power) = (Metric::SpeedKph, Metric::EnginePowerKw);
    let b = period.ms();
    let positive = |m: Metric| format!("SUM(CASE WHEN {0} > 0 THEN {0} ELSE 0 END)", m.name());
    let sql = format!(
        "SELECT {bucket} AS bucket, vehicle_id, COUNT(*), {}, {} FROM telemetry WHERE run_id = ? GROUP BY {bucket}, vehicle_id",
        store.dialect().int(&positive(speed)),
        store.dialect().int(&positive(power)),
        bucket = store.bucket_ms("time", b, 0),
    );
    // (bucket, vehicle) -> frames, speed steps, power steps: integers, so exact in any order.
    let mut sums: BTreeMap<(i64, i64), (i64, i64, i64)> = BTreeMap::new();
    let int = |cell: &Cell| cell.as_i64().unwrap_or_default();
    for row in store.fetch(&sql, vec![Param::Int(run.run_id)]).await? {
        let sum = sums.entry((int(&row[0]), int(&row[1]))).or_default();
        *sum = (sum.0 + int(&row[2]), sum.1 + int(&row[3]), sum.2 + int(&row[4]));
    }
    frames::each_compacted(store, run.run_id, None, frames::ALL_TIME.0, frames::ALL_TIME.1, |vehicle, frame| {
        let sum = sums.entry((super::floor_to(frame.time_ms, b), vehicle)).or_default();
        *sum = (sum.0 + 1, sum.1 + frame.steps[speed as usize].max(0), sum.2 + frame.steps[power as usize].max(0));
    })
    .await?;
    let models = models(store, run).await?;
    let mut by_model: BTreeMap<(i64, String), (i64, i64, i64)> = BTreeMap::new();
    for ((bucket, vehicle), (frames, speed_steps, power_steps)) in sums {
        let sum = by_model.entry((bucket, models.get(&vehicle).cloned().unwrap_or_else(|| "unknown".to_owned()))).or_default();
        *sum = (sum.0 + frames, sum.1 + speed_steps, sum.2 + power_steps);
    }
    let rows = by_model
        .into_iter()
        .map(|((bucket, model), (frames, speed_steps, power_steps))| {
            vec![
                Cell::from(bucket),
                Cell::from(model),
                Cell::from(frames as f64 / 3600.0),
                Cell::from(speed_steps as f64 * speed.spec().resolution / 3600.0),
                Cell::from(power_steps as f64 * power.spec().resolution / 3600.0),
            ]
        })
        .collect();
    let columns = vec![col("bucket", Show::Time), col("model", Show::Plain), col("vehicle_hours", Show::Plain), col("distance_km", Show::Plain), col("energy_kwh", Show::Plain)];
    Ok(shown(columns, rows))
}

/// The TSBS "IoT" (trucks) queries, in this schema: the standard questions fleet databases are
/// compared on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Tsbs {
    /// Each vehicle's last position and heading.
    LastLoc,
    /// Vehicles whose latest fuel level is under 10%.
    LowFuel,
    /// Vehicles whose latest engine load is over 90%.
    HighLoad,
    /// Vehicles whose mean speed over the run's last 10 minutes is under 1 km/h.
    StationaryTrucks,
    /// Hours each vehicle drove (speed over 1 km/h) per day.
    DailyActivity,
    /// Mean engine load per model per hour.
    AvgLoad,
}

/// One of the TSBS IoT queries on `run`, over raw rows and compacted segments alike.
pub async fn tsbs(store: &Store, run: &StoredRun, query: Tsbs) -> Result<Answer, StoreError> {
    let d = store.dialect();
    let id = Param::Int(run.run_id);
    let speed = Metric::SpeedKph;
    let (metric, keep): (Metric, fn(f64) -> bool) = match query {
        Tsbs::LastLoc => {
            let located = [Metric::PositionXM, Metric::PositionZM, Metric::HeadingDeg];
            let rows = frames::latest(store, run.run_id).await?.iter().map(|(vehicle, frame)| frame_cells(*vehicle, frame, &located)).collect();
            let mut columns = head_columns();
            columns.extend(located.map(|m| col(m.name(), Show::Reading)));
            return Ok(shown(columns, rows));
        }
        Tsbs::LowFuel => (Metric::FuelLevelPct, |fuel| fuel < 10.0),
        Tsbs::HighLoad => (Metric::EngineLoadPct, |load| load > 90.0),
        Tsbs::StationaryTrucks => {
            let end_ms = super::instant(run.start, run.sim_seconds).unix_ms() as i64;
            let from_ms = end_ms - 600_000;
            let at = d.at();
            let sql = format!("SELECT vehicle_id, {}, COUNT(*) FROM telemetry WHERE run_id = ? AND time >= {at} GROUP BY vehicle_id", d.int(&format!("SUM({})", speed.name())));
            let mut sums: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
            for row in store.fetch(&sql, vec![id, Param::Int(from_ms)]).await? {
                sums.insert(row[0].as_i64().unwrap_or_default(), (row[1].as_i64().unwrap_or_default(), row[2].as_i64().unwrap_or_default()));
            }
            frames::each_compacted(store, run.run_id, None, from_ms, frames::ALL_TIME.1, |vehicle, frame| {
                let sum = sums.entry(vehicle).or_default();
                *sum = (sum.0 + frame.steps[speed as usize], sum.1 + 1);
            })
            .await?;
            let models = models(store, run).await?;
            let rows = sums
                .into_iter()
                .filter(|(_, (_, n))| *n > 0)
                .map(|(vehicle, (sum, n))| (vehicle, sum as f64 / n as f64 * speed.spec().resolution))
                .filter(|(_, mean)| *mean < 1.0)
                .map(|(vehicle, mean)| vec![Cell::from(vehicle), Cell::from(models.get(&vehicle).cloned().unwrap_or_default()), Cell::from(mean)])
                .collect();
            return Ok(shown(vec![col("vehicle", Show::Vehicle), col("model", Show::Plain), col("mean_speed_kph", Show::Plain)], rows));
        }
        Tsbs::DailyActivity => {
            // Steps above 1 km/h, so the engine compares integers.
            let moving = (1.0 / speed.spec().resolution).floor() as i64;
            let day = store.bucket_ms("time", super::DAY_MS, 0);
            let sql = format!(
                "SELECT vehicle_id, {day} AS day, SUM(CASE WHEN {} > {moving} THEN 1 ELSE 0 END) FROM telemetry WHERE run_id = ? GROUP BY vehicle_id, {day}",
                speed.name()
            );
            let mut seconds: BTreeMap<(i64, i64), i64> = BTreeMap::new();
            for row in store.fetch(&sql, vec![id]).await? {
                *seconds.entry((row[1].as_i64().unwrap_or_default(), row[0].as_i64().unwrap_or_default())).or_default() += row[2].as_i64().unwrap_or_default();
            }
            frames::each_compacted(store, run.run_id, None, frames::ALL_TIME.0, frames::ALL_TIME.1, |vehicle, frame| {
                let driving = i64::from(frame.steps[speed as usize] > moving);
                *seconds.entry((super::floor_to(frame.time_ms, super::DAY_MS), vehicle)).or_default() += driving;
            })
            .await?;
            let rows = seconds.into_iter().map(|((day, vehicle), s)| vec![Cell::from(vehicle), Cell::from(day), Cell::from(s as f64 / 3600.0)]).collect();
            return Ok(shown(vec![col("vehicle", Show::Vehicle), col("day", Show::Time), col("hours_driven", Show::Plain)], rows));
        }
        Tsbs::AvgLoad => {
            // From the hourly rollup: the sum of load over the frames, and the frames.
            let sql = format!("SELECT {} AS hour, model, {} FROM fleet_hourly WHERE run_id = ? AND frames > 0 ORDER BY hour, model", d.ms("hour"), d.float("load_sum / frames"));
            let rows = store.fetch(&sql, vec![id]).await?;
            return Ok(shown(vec![col("hour", Show::Time), col("model", Show::Plain), col("mean_engine_load_pct", Show::Plain)], rows));
        }
    };
    let models = models(store, run).await?;
    let rows = frames::latest(store, run.run_id)
        .await?
        .iter()
        .filter(|(_, frame)| keep(frames::reading(frame, metric)))
        .map(|(vehicle, frame)| {
            let mut cells = frame_cells(*vehicle, frame, &[]);
            cells.extend([Cell::from(models.get(vehicle).cloned().unwrap_or_default()), Cell::from(frames::reading(frame, metric))]);
            cells
        })
        .collect();
    let mut columns = head_columns();
    columns.extend([col("model", Show::Plain), col(metric.name(), Show::Reading)]);
    Ok(shown(columns, rows))
}

/// Each vehicle's model in `run`, by vehicle number.
async fn models(store: &Store, run: &StoredRun) -> Result<BTreeMap<i64, String>, StoreError> {
    let rows = store.fetch("SELECT vehicle_id, model FROM vehicles WHERE run_id = ?", vec![Param::Int(run.run_id)]).await?;
    Ok(rows.iter().filter_map(|r| Some((r[0].as_i64()?, r[1].as_str()?.to_owned()))).collect())
}
