//! Envelopes as the rows they become, each tagged with its table, ready for one write.

use crate::model::{Body, Envelope, Telemetry, WallTime};

use super::instant;

/// What every message row carries: its key and its two clocks.
#[derive(Debug, Clone, Copy, PartialEq)]
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

/// One envelope's row, by table.
#[derive(Debug, Clone)]
pub enum Row {
    /// `telemetry`: the readings, and the failures then active.
    Telemetry(Key, Box<Telemetry>),
    /// `events`: the event's type and its payload as JSON.
    Event(Key, String, String),
    /// `heartbeats`: status, uptime.
    Heartbeat(Key, String, f64),
    /// `alerts`.
    Alert(Key, Box<crate::model::Alert>),
    /// `commands`: id, action type, the action as JSON, time to live.
    Command(Key, String, String, String, f64),
    /// `command_acks`: id, outcome, detail.
    CommandAck(Key, String, String, Option<String>),
    /// `presence`.
    Presence(Key, crate::model::Presence),
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
