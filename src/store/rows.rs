//! Envelopes as the rows they become, each tagged with its table, ready for one write.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Body, Envelope, Telemetry, WallTime};

use super::instant;

/// What every message row carries: its key and its two clocks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Key {
    /// Simulated instant, milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// Vehicle number (V0007 is 7).
    pub vehicle: i64,
    /// The sender's sequence number.
    pub seq: i64,
    /// Simulation seconds.
    pub sim_time: f64,
    /// When it was sent, milliseconds since the Unix epoch.
    pub wall_ms: i64,
}

impl Key {
    /// Simulation time in whole milliseconds, as telemetry keeps it ([`super::sim_ms`]).
    pub fn sim_ms(&self) -> i64 {
        super::sim_ms(self.sim_time)
    }
}

/// One envelope's row, by table. Serialised (as JSON) only into the spool and dead letters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "table", content = "row", rename_all = "snake_case")]
pub enum Row {
    /// `telemetry`: the readings, and the failures then active.
    Telemetry(Key, Box<Telemetry>),
    /// `events`: the event's type and its payload as JSON.
    Event(Key, String, String),
    /// `heartbeats`: status, uptime.
    Heartbeat(Key, String, f64),
    /// `alerts`: one row per step of an alert's life.
    Alert(Key, Box<crate::model::AlertUpdate>),
    /// `commands`: id, action type, the action as JSON, time to live.
    Command(Key, String, String, String, f64),
    /// `command_acks`: id, outcome, detail.
    CommandAck(Key, String, String, Option<String>),
    /// `presence`.
    Presence(Key, crate::model::Presence),
}

impl Row {
    /// The row's key.
    pub fn key(&self) -> &Key {
        match self {
            Row::Telemetry(key, ..)
            | Row::Event(key, ..)
            | Row::Heartbeat(key, ..)
            | Row::Alert(key, ..)
            | Row::Command(key, ..)
            | Row::CommandAck(key, ..)
            | Row::Presence(key, ..) => key,
        }
    }
}

/// One failure's ground truth as a batch last saw it (the `failures` table's row).
#[derive(Debug, Clone, PartialEq)]
pub struct FailureRow {
    /// Vehicle number.
    pub vehicle: i64,
    /// Failure mode, wire name.
    pub mode: String,
    /// Component, wire name.
    pub component: String,
    /// Simulation time it began.
    pub onset_s: f64,
    /// When it failed functionally, once known.
    pub functional_failure_s: Option<f64>,
    /// Severity in the latest frame.
    pub last_severity: f32,
    /// Simulation time of the latest frame.
    pub last_seen_s: f64,
}

/// The failures the telemetry among `rows` reports, one entry per failure (a failure appears
/// in every frame while it is active; the table wants it once, as last seen).
pub fn failures(rows: &[Row]) -> Vec<FailureRow> {
    let mut by_key: BTreeMap<(i64, String, u64), FailureRow> = BTreeMap::new();
    for row in rows {
        let Row::Telemetry(key, telemetry) = row else { continue };
        for failure in &telemetry.truth {
            let mode = wire_name(&failure.mode);
            let seen = FailureRow {
                vehicle: key.vehicle,
                mode: mode.clone(),
                component: wire_name(&failure.component),
                onset_s: failure.onset_s,
                functional_failure_s: failure.functional_failure_s,
                last_severity: failure.severity,
                last_seen_s: key.sim_time,
            };
            by_key
                .entry((key.vehicle, mode, failure.onset_s.to_bits()))
                .and_modify(|kept| {
                    kept.functional_failure_s = kept.functional_failure_s.or(seen.functional_failure_s);
                    if seen.last_seen_s >= kept.last_seen_s {
                        kept.last_severity = seen.last_severity;
                        kept.last_seen_s = seen.last_seen_s;
                    }
                })
                .or_insert(seen);
        }
    }
    by_key.into_values().collect()
}

/// Where a run's rows go: its number, and each vehicle's model for the hourly rollup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunTarget {
    /// The run's number in this database.
    pub run_id: i64,
    /// The run's name: what a spool file names, since numbers differ between databases.
    pub name: String,
    /// The simulated instant of its simulation time 0.
    pub start: crate::model::WallTime,
    /// Model wire names by vehicle number less one.
    pub models: Vec<String>,
}

impl RunTarget {
    /// Vehicle `vehicle`'s model, `unknown` for a vehicle the run did not register.
    pub fn model_of(&self, vehicle: i64) -> &str {
        usize::try_from(vehicle - 1).ok().and_then(|i| self.models.get(i)).map_or("unknown", String::as_str)
    }
}

/// One hour of one model's vehicles, summed: the `fleet_hourly` table's increment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HourlyRow {
    /// The hour, milliseconds since the epoch.
    pub hour_ms: i64,
    /// Model wire name.
    pub model: String,
    /// Telemetry frames (vehicle-seconds).
    pub frames: i64,
    /// Speed integrated over the frames' seconds.
    pub distance_km: f64,
    /// Positive traction power integrated over the frames' seconds.
    pub energy_kwh: f64,
    /// Frames faster than 1 km/h.
    pub moving_frames: i64,
    /// Engine load summed over the frames, for its mean.
    pub load_sum: f64,
    /// Heartbeats.
    pub heartbeats: i64,
    /// Heartbeats whose status is neither in maintenance, stopped nor offline.
    pub available: i64,
}

/// The statements adding what `rows` bring to `fleet_hourly` (see [`hourly`]), each hour
/// bound as milliseconds, in dialect `d`'s own placeholders: run inside the batch's
/// transaction by either backend.
pub fn hourly_upserts(d: super::Dialect, target: &RunTarget, rows: &[Row], inserted: impl Fn(usize) -> bool) -> Vec<super::Statement> {
    use super::Param;
    let sql = d.placeholders(&format!(
        "INSERT INTO fleet_hourly (run_id, hour, model, frames, distance_km, energy_kwh, moving_frames, load_sum, heartbeats, available)
         VALUES (?, {}, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (run_id, hour, model) DO UPDATE SET
            frames = fleet_hourly.frames + excluded.frames,
            distance_km = fleet_hourly.distance_km + excluded.distance_km,
            energy_kwh = fleet_hourly.energy_kwh + excluded.energy_kwh,
            moving_frames = fleet_hourly.moving_frames + excluded.moving_frames,
            load_sum = fleet_hourly.load_sum + excluded.load_sum,
            heartbeats = fleet_hourly.heartbeats + excluded.heartbeats,
            available = fleet_hourly.available + excluded.available",
        d.at()
    ));
    hourly(target, rows, inserted)
        .into_iter()
        .map(|hour| {
            let params = vec![
                Param::Int(target.run_id),
                Param::Int(hour.hour_ms),
                Param::Text(hour.model),
                Param::Int(hour.frames),
                Param::Float(hour.distance_km),
                Param::Float(hour.energy_kwh),
                Param::Int(hour.moving_frames),
                Param::Float(hour.load_sum),
                Param::Int(hour.heartbeats),
                Param::Int(hour.available),
            ];
            super::Statement::new(sql.clone(), params)
        })
        .collect()
}

/// What `rows` add to the hourly rollup, counting only the rows `inserted` says were new (a
/// redelivered row is already counted).
pub fn hourly(target: &RunTarget, rows: &[Row], inserted: impl Fn(usize) -> bool) -> Vec<HourlyRow> {
    use crate::model::Metric;
    let mut by_key: BTreeMap<(i64, &str), HourlyRow> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        if !matches!(row, Row::Telemetry(..) | Row::Heartbeat(..)) || !inserted(i) {
            continue;
        }
        let key = row.key();
        let hour_ms = super::floor_to(key.time_ms, super::HOUR_MS);
        let model = target.model_of(key.vehicle);
        let entry = by_key.entry((hour_ms, model)).or_insert_with(|| HourlyRow { hour_ms, model: model.to_owned(), ..HourlyRow::default() });
        match row {
            Row::Telemetry(_, telemetry) => {
                let metrics = &telemetry.metrics;
                let speed = f64::from(metrics.get(Metric::SpeedKph));
                entry.frames += 1;
                entry.distance_km += speed.max(0.0) / 3600.0;
                entry.energy_kwh += f64::from(metrics.get(Metric::EnginePowerKw)).max(0.0) / 3600.0;
                entry.moving_frames += i64::from(speed > 1.0);
                entry.load_sum += f64::from(metrics.get(Metric::EngineLoadPct));
            }
            Row::Heartbeat(_, status, _) => {
                entry.heartbeats += 1;
                entry.available += i64::from(!matches!(status.as_str(), "in_maintenance" | "stopped" | "offline"));
            }
            _ => {}
        }
    }
    by_key.into_values().collect()
}

/// Rows for one write, in the order their envelopes arrived.
#[derive(Debug, Default)]
pub struct Batch {
    /// The rows.
    pub rows: Vec<Row>,
    /// Latest simulation time among them, for the writer's lag.
    pub latest_sim_time: f64,
}

impl Batch {
    /// Adds an envelope of a run that began at `start`.
    pub fn push(&mut self, start: WallTime, envelope: Envelope) {
        let key = Key {
            time_ms: instant(start, envelope.sim_time).unix_ms() as i64,
            vehicle: i64::from(envelope.vehicle_id.0),
            seq: envelope.seq as i64,
            sim_time: envelope.sim_time,
            wall_ms: envelope.wall_time.unix_ms() as i64,
        };
        self.latest_sim_time = self.latest_sim_time.max(envelope.sim_time);
        let row = match envelope.body {
            Body::Telemetry(telemetry) => Row::Telemetry(key, telemetry),
            Body::Event(event) => {
                let detail = serde_json::to_value(&event.event).expect("events always serialise");
                Row::Event(key, tag(&detail, "type"), detail.to_string())
            }
            Body::Heartbeat(heartbeat) => Row::Heartbeat(key, wire_name(&heartbeat.status), heartbeat.uptime_s),
            Body::Alert(alert) => Row::Alert(key, alert),
            Body::Command(command) => {
                let detail = serde_json::to_value(&command.action).expect("commands always serialise");
                Row::Command(key, command.command_id, tag(&detail, "action"), detail.to_string(), command.ttl_s)
            }
            Body::CommandAck(ack) => Row::CommandAck(key, ack.command_id, wire_name(&ack.outcome), ack.detail),
            Body::Presence(presence) => Row::Presence(key, presence),
        };
        self.rows.push(row);
    }

    /// Rows waiting.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no rows wait.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// The name a unit-like enum value has on the wire (snake case).
pub(super) fn wire_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// The tag field of an internally tagged enum's JSON.
fn tag(value: &serde_json::Value, field: &str) -> String {
    value.get(field).and_then(|t| t.as_str()).unwrap_or_default().to_owned()
}
