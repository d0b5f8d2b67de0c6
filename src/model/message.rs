//! The versioned message envelope that every message on the bus travels in.
//!
//! On the wire an envelope is one JSON object:
//! `{"protocol":1,"kind":"telemetry","vehicle_id":"V0001","seq":7,"sim_time":7.0,
//! "wall_time":"2026-11-28T10:00:00.000Z","payload":{...}}`. The `payload` shape depends on
//! `kind`. Unknown fields are rejected everywhere, so a typo never passes silently.

use serde::{Deserialize, Serialize};

use super::{AlertUpdate, Component, FailureMode, MissionKind, MissionStop, RuleId, Telemetry, ValidationError, VehicleId, VehicleStatus, WallTime};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// Simulation seconds between a vehicle's heartbeats.
pub const HEARTBEAT_INTERVAL_S: u64 = 5;

/// What an envelope carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// Sensor readings, 1 Hz of simulation time.
    Telemetry,
    /// "I am alive", at a fixed interval.
    Heartbeat,
    /// Something happened on the vehicle.
    Event,
    /// An anomaly worth a person's attention.
    Alert,
    /// An instruction to a vehicle.
    Command,
    /// A vehicle's answer to a command.
    CommandAck,
    /// The centre's view of whether a vehicle is reachable.
    Presence,
}

impl MessageKind {
    /// Every kind.
    pub const ALL: [MessageKind; 7] = [
        MessageKind::Telemetry,
        MessageKind::Heartbeat,
        MessageKind::Event,
        MessageKind::Alert,
        MessageKind::Command,
        MessageKind::CommandAck,
        MessageKind::Presence,
    ];

    /// Wire name, as used in channel names.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Telemetry => "telemetry",
            MessageKind::Heartbeat => "heartbeat",
            MessageKind::Event => "event",
            MessageKind::Alert => "alert",
            MessageKind::Command => "command",
            MessageKind::CommandAck => "command_ack",
            MessageKind::Presence => "presence",
        }
    }
}

/// Liveness signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// Current activity.
    pub status: VehicleStatus,
    /// Simulation seconds since the vehicle came online.
    pub uptime_s: f64,
}

/// A decision taken by a vehicle's local rules, mildest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleDecision {
    /// Tell the driver and the fleet; no change to the driving.
    Warn,
    /// Cap engine power.
    DeratePower,
    /// Cap speed and power hard and head home.
    LimpMode,
    /// Brake to a standstill and stay there.
    ControlledStop,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum EventKind {
    /// A failure began degrading a component.
    FailureInjected {
        /// Mode.
        mode: FailureMode,
        /// Component.
        component: Component,
    },
    /// A component stopped doing its job (the functional-failure point).
    ComponentFailed {
        /// Mode.
        mode: FailureMode,
        /// Component.
        component: Component,
    },
    /// A local rule fired.
    RuleTriggered {
        /// Which rule, e.g. `coolant_temp_high`.
        rule: RuleId,
        /// Metric the rule watches.
        metric: String,
        /// Value that fired it.
        value: f32,
        /// What the vehicle decided.
        decision: RuleDecision,
    },
    /// The vehicle's activity changed.
    StatusChanged {
        /// Before.
        from: VehicleStatus,
        /// After.
        to: VehicleStatus,
    },
    /// A component was repaired.
    Repaired {
        /// Component.
        component: Component,
    },
    /// The vehicle reached one of its mission's stops.
    MissionProgress {
        /// Mission.
        mission_id: String,
        /// Stops reached so far, from 1.
        reached: u16,
        /// Stops in the mission.
        of: u16,
        /// The stop just reached.
        stop: String,
    },
    /// The vehicle reached its mission's last stop.
    MissionCompleted {
        /// Mission.
        mission_id: String,
    },
    /// The vehicle gave its mission up (recalled, or its own rules sent it home).
    MissionAbandoned {
        /// Mission.
        mission_id: String,
        /// Why.
        reason: String,
    },
}

/// A vehicle event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// What happened.
    pub event: EventKind,
}

/// What a command asks a vehicle to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum CommandAction {
    /// Do not exceed this speed.
    ReduceSpeed {
        /// Speed cap in km/h.
        max_kph: f32,
    },
    /// Drive to the home depot.
    ReturnToDepot,
    /// Stop as soon as it is safe.
    Stop,
    /// Lift a stop or speed cap.
    Resume,
    /// Drive to a depot and be repaired there.
    ScheduleMaintenance,
    /// Drive to another depot.
    ChangeMission {
        /// Name of the destination depot.
        destination_depot: String,
    },
    /// Drive this mission now, in place of any other work.
    AssignMission {
        /// Mission id, echoed in progress events.
        mission_id: String,
        /// What it is for.
        kind: MissionKind,
        /// Stops in order; the last is where the vehicle ends up.
        stops: Vec<MissionStop>,
    },
}

/// An instruction to a vehicle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    /// Unique id, echoed in the acknowledgement.
    pub command_id: String,
    /// What to do.
    pub action: CommandAction,
    /// Seconds of simulation time after which the command must not be applied.
    pub ttl_s: f64,
}

/// How a vehicle answered a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandOutcome {
    /// Applied.
    Accepted,
    /// Not applicable (e.g. an unknown depot).
    Rejected,
}

/// A vehicle's answer to a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandAck {
    /// The command answered.
    pub command_id: String,
    /// Outcome.
    pub outcome: CommandOutcome,
    /// Why, when rejected.
    pub detail: Option<String>,
}

/// A vehicle went offline (missed heartbeats) or came back, as the centre sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Presence {
    /// Reachable now.
    pub online: bool,
    /// Simulation time of the vehicle's last message before this change.
    pub last_seen_sim_time: f64,
    /// Wall-clock seconds without a message when it was declared offline; 0 when back online.
    pub silent_s: f64,
}

/// The payload of an envelope; its variant decides `kind`.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// See [`MessageKind::Telemetry`].
    Telemetry(Box<Telemetry>),
    /// See [`MessageKind::Heartbeat`].
    Heartbeat(Heartbeat),
    /// See [`MessageKind::Event`]. Rare variants are boxed: a body in flight is as small as
    /// the common ones (a boxed frame, a heartbeat), 24 bytes rather than 88.
    Event(Box<Event>),
    /// See [`MessageKind::Alert`].
    Alert(Box<AlertUpdate>),
    /// See [`MessageKind::Command`].
    Command(Box<Command>),
    /// See [`MessageKind::CommandAck`].
    CommandAck(Box<CommandAck>),
    /// See [`MessageKind::Presence`].
    Presence(Presence),
}

impl From<Event> for Body {
    fn from(event: Event) -> Self {
        Body::Event(Box::new(event))
    }
}

impl From<EventKind> for Body {
    fn from(event: EventKind) -> Self {
        Body::Event(Box::new(Event { event }))
    }
}

impl From<Command> for Body {
    fn from(command: Command) -> Self {
        Body::Command(Box::new(command))
    }
}

impl From<CommandAck> for Body {
    fn from(ack: CommandAck) -> Self {
        Body::CommandAck(Box::new(ack))
    }
}

impl Body {
    /// The kind this body travels as.
    pub fn kind(&self) -> MessageKind {
        match self {
            Body::Telemetry(_) => MessageKind::Telemetry,
            Body::Heartbeat(_) => MessageKind::Heartbeat,
            Body::Event(_) => MessageKind::Event,
            Body::Alert(_) => MessageKind::Alert,
            Body::Command(_) => MessageKind::Command,
            Body::CommandAck(_) => MessageKind::CommandAck,
            Body::Presence(_) => MessageKind::Presence,
        }
    }
}

/// A message with its routing and ordering header.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// Protocol version, [`PROTOCOL_VERSION`] when built here.
    pub protocol: u16,
    /// The vehicle that sent it or that it is addressed to.
    pub vehicle_id: VehicleId,
    /// Per-vehicle, per-sender sequence number, starting at 0, without gaps.
    pub seq: u64,
    /// Simulation time in seconds.
    pub sim_time: f64,
    /// Wall-clock time the envelope was made (RFC 3339 UTC on the wire). Not part of the
    /// deterministic stream: tests strip it before comparing runs.
    pub wall_time: WallTime,
    /// Content.
    pub body: Body,
}

/// Why a message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not JSON, or not the envelope's shape.
    #[error("malformed message: {0}")]
    Json(#[from] serde_json::Error),
    /// Well-formed, but a value is not acceptable.
    #[error("invalid message: {0}")]
    Invalid(#[from] ValidationError),
}

impl Envelope {
    /// A new envelope stamped with the current wall-clock time.
    pub fn new(vehicle_id: VehicleId, seq: u64, sim_time: f64, body: Body) -> Self {
        Self {
            protocol: PROTOCOL_VERSION,
            vehicle_id,
            seq,
            sim_time,
            wall_time: WallTime::now(),
            body,
        }
    }

    /// The kind of the body.
    pub fn kind(&self) -> MessageKind {
        self.body.kind()
    }

    /// Serialises to one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("envelopes always serialise")
    }

    /// Parses and validates one JSON message.
    pub fn from_json(text: &str) -> Result<Self, ParseError> {
        let envelope: Envelope = serde_json::from_str(text)?;
        envelope.validate()?;
        Ok(envelope)
    }

    /// Checks the values that the JSON shape alone cannot.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.protocol != PROTOCOL_VERSION {
            return Err(ValidationError::new(
                "protocol",
                format!("version {} is not supported (this build speaks {PROTOCOL_VERSION})", self.protocol),
            ));
        }
        if !self.sim_time.is_finite() || self.sim_time < 0.0 {
            return Err(ValidationError::new("sim_time", format!("{} is not a time", self.sim_time)));
        }
        let payload_error = |e: ValidationError| ValidationError::new(format!("payload.{}", e.field), e.problem);
        match &self.body {
            Body::Telemetry(t) => {
                t.metrics.validate().map_err(|e| payload_error(ValidationError::new(format!("metrics.{}", e.field), e.problem)))?;
                for truth in &t.truth {
                    if !(0.0..=1.0).contains(&truth.severity) {
                        return Err(ValidationError::new("payload.truth.severity", format!("{} is outside [0, 1]", truth.severity)));
                    }
                }
            }
            Body::Heartbeat(h) if !h.uptime_s.is_finite() || h.uptime_s < 0.0 => {
                return Err(ValidationError::new("payload.uptime_s", format!("{} is not a duration", h.uptime_s)));
            }
            Body::Command(c) => {
                if !c.ttl_s.is_finite() || c.ttl_s <= 0.0 {
                    return Err(ValidationError::new("payload.ttl_s", format!("{} is not a positive duration", c.ttl_s)));
                }
                if let CommandAction::ReduceSpeed { max_kph } = c.action
                    && (!max_kph.is_finite() || !(0.0..=250.0).contains(&max_kph))
                {
                    return Err(ValidationError::new("payload.action.max_kph", format!("{max_kph} is outside [0, 250]")));
                }
                if let CommandAction::AssignMission { stops, .. } = &c.action
                    && stops.is_empty()
                {
                    return Err(ValidationError::new("payload.action.stops", "a mission needs at least one stop"));
                }
            }
            Body::Event(event) if matches!(event.event, EventKind::RuleTriggered { value, .. } if !value.is_finite()) => {
                return Err(ValidationError::new("payload.event.value", "not a finite number"));
            }
            _ => {}
        }
        Ok(())
    }
}

mod wire {
    //! The JSON shape of an envelope: a header plus a `payload` whose shape `kind` selects.

    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::*;

    #[derive(Serialize)]
    #[serde(untagged)]
    enum PayloadRef<'a> {
        Telemetry(&'a Telemetry),
        Heartbeat(&'a Heartbeat),
        Event(&'a Event),
        Alert(&'a AlertUpdate),
        Command(&'a Command),
        CommandAck(&'a CommandAck),
        Presence(&'a Presence),
    }

    #[derive(Serialize)]
    struct Outgoing<'a> {
        protocol: u16,
        kind: MessageKind,
        vehicle_id: VehicleId,
        seq: u64,
        sim_time: f64,
        wall_time: WallTime,
        payload: PayloadRef<'a>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Incoming {
        protocol: u16,
        kind: MessageKind,
        vehicle_id: VehicleId,
        seq: u64,
        sim_time: f64,
        wall_time: WallTime,
        // Kept as text until `kind` is known, then parsed once into its own type.
        payload: Box<serde_json::value::RawValue>,
    }

    impl Serialize for Envelope {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let payload = match &self.body {
                Body::Telemetry(t) => PayloadRef::Telemetry(t),
                Body::Heartbeat(h) => PayloadRef::Heartbeat(h),
                Body::Event(e) => PayloadRef::Event(e),
                Body::Alert(a) => PayloadRef::Alert(a),
                Body::Command(c) => PayloadRef::Command(c),
                Body::CommandAck(a) => PayloadRef::CommandAck(a),
                Body::Presence(p) => PayloadRef::Presence(p),
            };
            Outgoing {
                protocol: self.protocol,
                kind: self.kind(),
                vehicle_id: self.vehicle_id,
                seq: self.seq,
                sim_time: self.sim_time,
                wall_time: self.wall_time,
                payload,
            }
            .serialize(serializer)
        }
    }

    impl<'de> Deserialize<'de> for Envelope {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let wire = Incoming::deserialize(deserializer)?;
            fn parse<T: serde::de::DeserializeOwned, E: serde::de::Error>(payload: &serde_json::value::RawValue, kind: MessageKind) -> Result<T, E> {
                serde_json::from_str(payload.get()).map_err(|e| E::custom(format!("payload of {}: {e}", kind.as_str())))
            }
            let body = match wire.kind {
                MessageKind::Telemetry => Body::Telemetry(Box::new(parse(&wire.payload, wire.kind)?)),
                MessageKind::Heartbeat => Body::Heartbeat(parse(&wire.payload, wire.kind)?),
                MessageKind::Event => Body::Event(Box::new(parse(&wire.payload, wire.kind)?)),
                MessageKind::Alert => Body::Alert(Box::new(parse(&wire.payload, wire.kind)?)),
                MessageKind::Command => Body::Command(Box::new(parse(&wire.payload, wire.kind)?)),
                MessageKind::CommandAck => Body::CommandAck(Box::new(parse(&wire.payload, wire.kind)?)),
                MessageKind::Presence => Body::Presence(parse(&wire.payload, wire.kind)?),
            };
            if wire.protocol == 0 {
                return Err(D::Error::custom("field `protocol`: 0 is not a protocol version"));
            }
            Ok(Envelope {
                protocol: wire.protocol,
                vehicle_id: wire.vehicle_id,
                seq: wire.seq,
                sim_time: wire.sim_time,
                wall_time: wire.wall_time,
                body,
            })
        }
    }
}
