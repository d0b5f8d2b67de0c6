//! Questions about stored history, answered from the database: the Rust API behind
//! `aegis query` (and, next, the HTTP API's history endpoints).

use serde::Serialize;
// Column names in these statements come from the `Metric` enum and numbers from our own
// arithmetic, never from input.
use sqlx::{AssertSqlSafe, Row as _};

use super::{SqliteStore, StoreError, StoredRun};
use crate::model::{Metric, VehicleId, WallTime};

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

fn cell(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The stored run named `name`, or the latest when `None`.
pub async fn run(store: &SqliteStore, name: Option<&str>) -> Result<StoredRun, StoreError> {
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

/// Each vehicle's latest telemetry in `run`: time, vehicle and the chosen metrics.
pub async fn latest(store: &SqliteStore, run: &StoredRun, metrics: &[Metric]) -> Result<Answer, StoreError> {
    let columns = metric_columns(metrics);
    let sql = format!(
        "SELECT t.vehicle_id, t.sim_time, t.time, {columns} FROM telemetry t
         JOIN (SELECT vehicle_id, MAX(time) AS time FROM telemetry WHERE run_id = ? GROUP BY vehicle_id) last
           ON t.vehicle_id = last.vehicle_id AND t.time = last.time
         WHERE t.run_id = ? ORDER BY t.vehicle_id"
    );
    let rows = sqlx::query(AssertSqlSafe(sql)).bind(run.run_id).bind(run.run_id).fetch_all(store.pool()).await?;
    Ok(answer(metrics, &rows, &[]))
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
pub async fn range(store: &SqliteStore, run: &StoredRun, query: &RangeQuery) -> Result<Answer, StoreError> {
    if query.to_s <= query.from_s {
        return Err(StoreError::query(format!("the range is empty or inverted: from {} s to {} s", query.from_s, query.to_s)));
    }
    if query.vehicle.0 == 0 || i64::from(query.vehicle.0) > run.fleet {
        return Err(StoreError::query(format!("run `{}` has no vehicle {} (its fleet is V0001 to {})", run.name, query.vehicle, VehicleId(run.fleet as u32))));
    }
    let from_ms = super::instant(run.start, query.from_s).unix_ms() as i64;
    let to_ms = super::instant(run.start, query.to_s).unix_ms() as i64;
    // The two shapes differ only in what they select and how they group; the numbers written
    // into the text are computed here, never taken from input.
    let (select, order, statistics): (String, &str, &[&str]) = match query.every_s {
        None => (format!("vehicle_id, sim_time, time, {}", metric_columns(&query.metrics)), "ORDER BY time", &[]),
        Some(every_s) if every_s > 0.0 => {
            let every_ms = (every_s * 1000.0).round().max(1.0) as i64;
            let aggregates: Vec<String> = query.metrics.iter().map(|m| format!("MIN({0}), AVG({0}), MAX({0})", m.name())).collect();
            let select = format!("vehicle_id, MIN(sim_time), (time - {from_ms}) / {every_ms} * {every_ms} + {from_ms} AS bucket, {}", aggregates.join(", "));
            (select, "GROUP BY bucket ORDER BY bucket", &["min", "avg", "max"])
        }
        Some(every_s) => return Err(StoreError::query(format!("--every must be a positive duration, not {every_s} s"))),
    };
    let sql = format!("SELECT {select} FROM telemetry WHERE run_id = ? AND vehicle_id = ? AND time >= ? AND time < ? {order} LIMIT ? OFFSET ?");
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(run.run_id)
        .bind(i64::from(query.vehicle.0))
        .bind(from_ms)
        .bind(to_ms)
        .bind(query.limit)
        .bind(query.offset)
        .fetch_all(store.pool())
        .await?;
    Ok(answer(&query.metrics, &rows, statistics))
}

fn metric_columns(metrics: &[Metric]) -> String {
    metrics.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ")
}

/// Rows of (vehicle, sim_time, time, values...) as an answer; `statistics` names the values
/// each metric has (none: one value).
fn answer(metrics: &[Metric], rows: &[sqlx::sqlite::SqliteRow], statistics: &[&str]) -> Answer {
    let mut columns = vec!["vehicle".to_owned(), "sim_time".to_owned(), "time".to_owned()];
    for metric in metrics {
        if statistics.is_empty() {
            columns.push(metric.name().to_owned());
        } else {
            columns.extend(statistics.iter().map(|s| format!("{}_{s}", metric.name())));
        }
    }
    let rows = rows
        .iter()
        .map(|row| {
            let mut values = vec![
                serde_json::Value::from(VehicleId(row.get::<i64, _>(0) as u32).to_string()),
                serde_json::Value::from(row.get::<f64, _>(1)),
                serde_json::Value::from(WallTime::from_unix_ms(row.get::<i64, _>(2).max(0) as u64).to_string()),
            ];
            // Readings are f32: print the shortest text that reads back as the same f32.
            values.extend((3..columns.len()).map(|i| {
                let value = row.get::<f64, _>(i) as f32;
                serde_json::Value::from(value.to_string().parse::<f64>().unwrap_or(f64::from(value)))
            }));
            values
        })
        .collect();
    Answer { columns, rows }
}
