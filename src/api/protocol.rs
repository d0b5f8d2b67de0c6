//! The WebSocket protocol's frames (docs/asyncapi.yaml documents them, with a JSON Schema for
//! each): JSON text frames tagged by `type`. A client authenticates (header or first frame),
//! subscribes to topics and acts on alerts; every request carries an `id` its reply repeats.
//! A topic's frames carry a sequence number of their own: on subscribe a snapshot, then
//! deltas; a client that resubscribes with `since` gets the deltas it missed, or a fresh
//! snapshot flagged `resync` when they are no longer kept, never a silent gap.

use serde::{Deserialize, Serialize};

use super::auth::Role;
use crate::model::{AlertRecord, CommandAction, Severity, VehicleId};

/// The protocol's version, sent in `hello`; a client refuses a version it does not know.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest frame a client may send, in bytes: requests are small, and a bigger frame closes
/// the connection with a reason before it is read whole.
pub const MAX_CLIENT_FRAME: usize = 64 * 1024;

/// A topic a client can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    /// The fleet summary and every vehicle's state; deltas carry what changed, batched.
    Fleet,
    /// Alerts, each whole as it changes (every step of its life).
    Alerts,
    /// One vehicle's telemetry, downsampled (`vehicle`, `metrics`, `max_hz`, `mode`).
    Vehicle,
    /// What vehicles report happening: failures, rule decisions, status changes, repairs,
    /// mission progress.
    Events,
    /// The centre's commands to vehicles, each whole as it moves through its life.
    Commands,
}

impl Topic {
    /// The topics with numbered snapshots and deltas shared by every subscriber.
    pub const SHARED: [Topic; 4] = [Topic::Fleet, Topic::Alerts, Topic::Events, Topic::Commands];

    /// Its name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Topic::Fleet => "fleet",
            Topic::Alerts => "alerts",
            Topic::Vehicle => "vehicle",
            Topic::Events => "events",
            Topic::Commands => "commands",
        }
    }

    /// The field of its frames' `data` that lists its records (for filters), if it has one.
    pub fn records(self) -> Option<&'static str> {
        match self {
            Topic::Alerts => Some("alerts"),
            Topic::Events => Some("events"),
            Topic::Commands => Some("commands"),
            Topic::Fleet | Topic::Vehicle => None,
        }
    }
}

/// Which alerts an `alerts` snapshot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Not cleared.
    Active,
    /// Active and not acknowledged: the work still to pick up.
    Unacknowledged,
    /// Cleared.
    Cleared,
}

impl AlertState {
    /// Whether `alert` is in this state.
    pub fn holds(self, alert: &AlertRecord) -> bool {
        self.holds_for(alert.active, alert.acknowledged)
    }

    /// Whether an alert that is `active` and `acknowledged` is in this state.
    pub fn holds_for(self, active: bool, acknowledged: bool) -> bool {
        match self {
            AlertState::Active => active,
            AlertState::Unacknowledged => active && !acknowledged,
            AlertState::Cleared => !active,
        }
    }
}

/// How a vehicle subscription turns 1 Hz telemetry into `max_hz`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Downsample {
    /// The mean of each metric over the frames in the interval.
    #[default]
    Mean,
    /// The interval's last frame.
    Latest,
}

/// Telemetry frames a vehicle subscription sends per simulated second unless it asks otherwise:
/// one every five seconds, enough for a chart.
pub const DEFAULT_MAX_HZ: f64 = 0.2;

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Authenticates the connection (browsers cannot set headers on a WebSocket).
    Auth {
        /// The bearer token's secret.
        token: String,
    },
    /// Subscribes to a topic.
    Subscribe {
        /// Repeated in the reply.
        id: String,
        /// The topic.
        topic: Topic,
        /// The last sequence number seen on this topic before a reconnect: the deltas after it
        /// are replayed when still kept, else a snapshot flagged `resync` comes.
        #[serde(default)]
        since: Option<u64>,
        /// `vehicle` topic: which vehicle; `alerts`, `events` and `commands`: only this
        /// vehicle's records.
        #[serde(default)]
        vehicle: Option<VehicleId>,
        /// `alerts` topic: only alerts that have reached this severity or worse.
        #[serde(default)]
        severity: Option<Severity>,
        /// `alerts` topic: the snapshot holds only alerts in this state; deltas still carry the
        /// change that takes one out of it, so the client can drop it.
        #[serde(default)]
        state: Option<AlertState>,
        /// `vehicle` topic: metric names to send (default every metric).
        #[serde(default)]
        metrics: Option<Vec<String>>,
        /// `vehicle` topic: frames per simulated second, at most 1 (default 0.2).
        #[serde(default)]
        max_hz: Option<f64>,
        /// `vehicle` topic: mean or latest over each interval (default mean).
        #[serde(default)]
        mode: Option<Downsample>,
    },
    /// Stops a subscription.
    Unsubscribe {
        /// Repeated in the reply.
        id: String,
        /// The topic.
        topic: Topic,
        /// `vehicle` topic: which vehicle; other topics: the vehicle subscribed to, if one was.
        #[serde(default)]
        vehicle: Option<VehicleId>,
    },
    /// Acknowledges an alert (operators).
    Ack {
        /// Repeated in the reply.
        id: String,
        /// The alert, like `A000012`.
        alert: String,
    },
    /// Clears an alert by hand (operators).
    Clear {
        /// Repeated in the reply.
        id: String,
        /// The alert.
        alert: String,
    },
    /// Assigns an alert to someone (operators).
    Assign {
        /// Repeated in the reply.
        id: String,
        /// The alert.
        alert: String,
        /// To whom.
        to: String,
    },
    /// Shelves an alert for a while of simulated time (operators).
    Shelve {
        /// Repeated in the reply.
        id: String,
        /// The alert.
        alert: String,
        /// Seconds.
        for_s: f64,
    },
    /// Comments on an alert (operators).
    Comment {
        /// Repeated in the reply.
        id: String,
        /// The alert.
        alert: String,
        /// The comment.
        text: String,
    },
    /// Sends a vehicle a command (operators); the reply names the command, whose life the
    /// `commands` topic follows.
    Command {
        /// Repeated in the reply.
        id: String,
        /// The vehicle.
        vehicle: VehicleId,
        /// What to do: `{"action":"reduce_speed","max_kph":40}`, `{"action":"stop"}`, ...
        command: CommandAction,
        /// The alert this answers, noted on it.
        #[serde(default)]
        alert: Option<String>,
        /// Simulated seconds after which it must not be applied (default 300).
        #[serde(default)]
        ttl_s: Option<f64>,
    },
}

/// What the server sends, but the topic frames the hub encodes once for every subscriber
/// (see [`super::hub`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// First frame of an authenticated connection.
    Hello {
        /// [`PROTOCOL_VERSION`].
        protocol: u32,
        /// The token's name.
        name: String,
        /// The token's role.
        role: Role,
    },
    /// The answer to a request.
    Reply {
        /// The request's id.
        id: String,
        /// Whether it was done.
        ok: bool,
        /// Why not.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// The command issued, for a `command` request.
        #[serde(skip_serializing_if = "Option::is_none")]
        command: Option<String>,
    },
    /// A frame that could not be taken as a request; the connection goes on.
    Error {
        /// What is wrong with it.
        error: String,
    },
}

impl ServerFrame {
    /// The frame as JSON text.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!(r#"{{"type":"error","error":"unencodable frame: {e}"}}"#))
    }

    /// A refusal of request `id`.
    pub fn refused(id: &str, why: impl Into<String>) -> Self {
        ServerFrame::Reply { id: id.to_owned(), ok: false, error: Some(why.into()), command: None }
    }

    /// A success of request `id`.
    pub fn done(id: &str) -> Self {
        ServerFrame::Reply { id: id.to_owned(), ok: true, error: None, command: None }
    }

    /// A success of request `id` that issued `command`.
    pub fn issued(id: &str, command: String) -> Self {
        ServerFrame::Reply { id: id.to_owned(), ok: true, error: None, command: Some(command) }
    }
}

/// Why a text frame is not a request: names the field or the type that is wrong.
pub fn parse(text: &str) -> Result<ClientFrame, String> {
    serde_json::from_str(text).map_err(|e| format!("not a request: {e}"))
}
