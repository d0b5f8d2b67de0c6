//! Questions about stored history, answered from the database: the Rust API behind
//! `aegis query` (and, next, the HTTP API's history endpoints). Each query is written once,
//! in the SQL both backends speak ([`Dialect`]).

use serde::Serialize;

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

/// The reading `metric` stands for in column `{prefix}{name}`, which holds whole steps of the
/// metric's resolution: a double, the same value `MetricSpec::from_steps` gives.
fn reading(prefix: &str, metric: Metric) -> String {
    format!("({prefix}{} * CAST({} AS DOUBLE PRECISION))", metric.name(), ryu::Buffer::new().format(metric.spec().resolution))
}

fn metric_columns(prefix: &str, metrics: &[Metric]) -> String {
    metrics.iter().map(|&m| format!("{} AS {}", reading(prefix, m), m.name())).collect::<Vec<_>>().join(", ")
}

fn telemetry_columns(metrics: &[Metric]) -> Vec<(String, Show)> {
    let mut columns = vec![col("vehicle", Show::Vehicle), col("sim_time", Show::Plain), col("time", Show::Time)];
    columns.extend(metrics.iter().map(|m| col(m.name(), Show::Reading)));
    columns
}

/// Each vehicle's latest frame in `run`: one index lookup per vehicle, however long the run.
/// `only` further narrows the frames (`AND ...`, from our own text).
async fn latest_frames(store: &Store, run: &StoredRun, select: &str, only: &str) -> Result<Vec<Vec<Cell>>, StoreError> {
    // Each vehicle's latest time first, then one lookup per vehicle: SQLite's CROSS JOIN keeps
    // that order (left to itself, SQLite 3.51 walks the run's whole telemetry instead).
    let sql = format!(
        "WITH last AS MATERIALIZED (
            SELECT v.vehicle_id, v.model, (SELECT MAX(l.time) FROM telemetry l WHERE l.run_id = v.run_id AND l.vehicle_id = v.vehicle_id) AS time
            FROM vehicles v WHERE v.run_id = ?)
         SELECT {select} FROM last v CROSS JOIN telemetry t
         WHERE t.run_id = ? AND t.vehicle_id = v.vehicle_id AND t.time = v.time {only} ORDER BY v.vehicle_id"
    );
    store.fetch(&sql, vec![Param::Int(run.run_id), Param::Int(run.run_id)]).await
}

/// Each vehicle's latest telemetry in `run`: time, vehicle and the chosen metrics.
pub async fn latest(store: &Store, run: &StoredRun, metrics: &[Metric]) -> Result<Answer, StoreError> {
    let select = format!("t.vehicle_id, t.sim_time, {}, {}", store.dialect().ms("t.time"), metric_columns("t.", metrics));
    Ok(shown(telemetry_columns(metrics), latest_frames(store, run, &select, "").await?))
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

/// One vehicle's telemetry over a range, raw or bucketed, a page at a time.
pub async fn range(store: &Store, run: &StoredRun, query: &RangeQuery) -> Result<Answer, StoreError> {
    let (from_ms, to_ms) = check_range(run, query.from_s, query.to_s)?;
    let vehicle = check_vehicle(run, query.vehicle)?;
    let d = store.dialect();
    // The two shapes differ only in what they select and how they group; the numbers written
    // into the text are computed here, never taken from input.
    let (select, order, columns) = match query.every_s {
        None => (format!("vehicle_id, sim_time, {}, {}", d.ms("time"), metric_columns("", &query.metrics)), "ORDER BY time", telemetry_columns(&query.metrics)),
        Some(every_s) if every_s > 0.0 => {
            let every_ms = (every_s * 1000.0).round().max(1.0) as i64;
            let aggregates: Vec<String> = query.metrics.iter().map(|&m| format!("MIN({0}), {1}, MAX({0})", reading("", m), d.float(&format!("AVG({})", reading("", m))))).collect();
            let select = format!("vehicle_id, MIN(sim_time), ({} - {from_ms}) / {every_ms} * {every_ms} + {from_ms} AS bucket, {}", d.ms("time"), aggregates.join(", "));
            let mut columns = vec![col("vehicle", Show::Vehicle), col("sim_time", Show::Plain), col("time", Show::Time)];
            for metric in &query.metrics {
                columns.extend(["min", "avg", "max"].map(|s| col(&format!("{}_{s}", metric.name()), Show::Reading)));
            }
            (select, "GROUP BY vehicle_id, bucket ORDER BY bucket", columns)
        }
        Some(every_s) => return Err(StoreError::query(format!("--every must be a positive duration, not {every_s} s"))),
    };
    let at = d.at();
    let sql = format!("SELECT {select} FROM telemetry WHERE run_id = ? AND vehicle_id = ? AND time >= {at} AND time < {at} {order} LIMIT ? OFFSET ?");
    let params = vec![Param::Int(run.run_id), Param::Int(vehicle), Param::Int(from_ms), Param::Int(to_ms), Param::Int(query.limit.into()), Param::Int(query.offset.into())];
    Ok(shown(columns, store.fetch(&sql, params).await?))
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
            Period::Hour => 3_600_000,
            Period::Day => 86_400_000,
        }
    }
}

/// The fleet by model per hour or day of `run`, from the hourly rollup the writer keeps:
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
    let sql = format!(
        "WITH rolled AS (
            SELECT ({hour} / {b}) * {b} AS bucket, model, SUM(frames) AS frames, SUM(distance_km) AS distance_km, SUM(energy_kwh) AS energy_kwh,
                   SUM(heartbeats) AS heartbeats, SUM(available) AS available
            FROM fleet_hourly WHERE run_id = ? GROUP BY ({hour} / {b}) * {b}, model),
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
        hour = d.ms("hour"),
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
    let params = vec![Param::Int(run.run_id); 4];
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

/// One of the TSBS IoT queries on `run`.
pub async fn tsbs(store: &Store, run: &StoredRun, query: Tsbs) -> Result<Answer, StoreError> {
    let d = store.dialect();
    let id = Param::Int(run.run_id);
    let (metric, only) = match query {
        Tsbs::LastLoc => {
            let select = format!("t.vehicle_id, t.sim_time, {}, {}", d.ms("t.time"), metric_columns("t.", &[Metric::PositionXM, Metric::PositionZM, Metric::HeadingDeg]));
            let rows = latest_frames(store, run, &select, "").await?;
            let mut columns = head_columns();
            columns.extend(["position_x_m", "position_z_m", "heading_deg"].map(|c| col(c, Show::Reading)));
            return Ok(shown(columns, rows));
        }
        Tsbs::LowFuel => (Metric::FuelLevelPct, format!("AND {} < 10", reading("t.", Metric::FuelLevelPct))),
        Tsbs::HighLoad => (Metric::EngineLoadPct, format!("AND {} > 90", reading("t.", Metric::EngineLoadPct))),
        Tsbs::StationaryTrucks => {
            let end_ms = super::instant(run.start, run.sim_seconds).unix_ms() as i64;
            let at = d.at();
            let speed = reading("t.", Metric::SpeedKph);
            let sql = format!(
                "SELECT t.vehicle_id, v.model, {} FROM telemetry t JOIN vehicles v ON v.run_id = t.run_id AND v.vehicle_id = t.vehicle_id
                 WHERE t.run_id = ? AND t.time >= {at} GROUP BY t.vehicle_id, v.model HAVING AVG({speed}) < 1 ORDER BY t.vehicle_id",
                d.float(&format!("AVG({speed})"))
            );
            let rows = store.fetch(&sql, vec![id, Param::Int(end_ms - 600_000)]).await?;
            return Ok(shown(vec![col("vehicle", Show::Vehicle), col("model", Show::Plain), col("mean_speed_kph", Show::Plain)], rows));
        }
        Tsbs::DailyActivity => {
            let day = format!("({} / 86400000) * 86400000", d.ms("t.time"));
            let sql = format!(
                "SELECT t.vehicle_id, {day} AS day, {} FROM telemetry t WHERE t.run_id = ? GROUP BY t.vehicle_id, {day} ORDER BY day, t.vehicle_id",
                d.float(&format!("SUM(CASE WHEN {} > 1 THEN 1 ELSE 0 END) / 3600.0", reading("t.", Metric::SpeedKph)))
            );
            let rows = store.fetch(&sql, vec![id]).await?;
            return Ok(shown(vec![col("vehicle", Show::Vehicle), col("day", Show::Time), col("hours_driven", Show::Plain)], rows));
        }
        Tsbs::AvgLoad => {
            // From the hourly rollup: the sum of load over the frames, and the frames.
            let sql = format!("SELECT {} AS hour, model, {} FROM fleet_hourly WHERE run_id = ? AND frames > 0 ORDER BY hour, model", d.ms("hour"), d.float("load_sum / frames"));
            let rows = store.fetch(&sql, vec![id]).await?;
            return Ok(shown(vec![col("hour", Show::Time), col("model", Show::Plain), col("mean_engine_load_pct", Show::Plain)], rows));
        }
    };
    let select = format!("t.vehicle_id, t.sim_time, {}, v.model, {}", d.ms("t.time"), reading("t.", metric));
    let rows = latest_frames(store, run, &select, &only).await?;
    let mut columns = head_columns();
    columns.extend([col("model", Show::Plain), col(metric.name(), Show::Reading)]);
    Ok(shown(columns, rows))
}
