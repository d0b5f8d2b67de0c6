//! What operators ask of the centre and what it answers: the same requests whether they come
//! from `aegis alerts ...`, the 3D view's buttons or the WebSocket API, so every action is
//! applied and audited the same way. docs/PROTOCOL.md gives the JSON.

use serde::{Deserialize, Serialize};

use super::{CommandAction, VehicleId};

/// An operation on an alert, or a command to a vehicle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Operation {
    /// Acknowledge.
    Ack,
    /// Clear by hand.
    Clear,
    /// Assign to someone.
    Assign {
        /// To whom.
        to: String,
    },
    /// Hide from the work queue for a while.
    Shelve {
        /// Seconds (of simulation time).
        for_s: f64,
    },
    /// Add a comment.
    Comment {
        /// The comment.
        text: String,
    },
    /// Send a vehicle a command. The centre tracks it like its own (resent until
    /// acknowledged, verified in telemetry) under the operator's name; a request that names
    /// an alert also notes the command on that alert.
    Command {
        /// The vehicle.
        vehicle: VehicleId,
        /// What it is to do (any action but `assign_mission`, which the mission board owns).
        command: CommandAction,
        /// Simulated seconds after which it must not be applied (default 300).
        #[serde(default)]
        ttl_s: Option<f64>,
    },
}

/// A request from an operator. (serde cannot deny unknown fields beside a flattened field; an
/// unknown `op` is still refused.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorRequest {
    /// Unique per request; names its reply.
    pub request_id: String,
    /// The alert, like `A000012`; for a command, the alert it answers, or empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub alert: String,
    /// Who asks, for the audit trail.
    pub actor: String,
    /// What.
    #[serde(flatten)]
    pub operation: Operation,
}

/// The centre's answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorReply {
    /// Done.
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
    /// The command issued, for a command request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

impl OperatorReply {
    /// Done.
    pub fn done() -> Self {
        Self { ok: true, error: None, command: None }
    }

    /// Done: command `id` issued.
    pub fn issued(id: String) -> Self {
        Self { ok: true, error: None, command: Some(id) }
    }

    /// Refused, saying why.
    pub fn refused(why: impl Into<String>) -> Self {
        Self { ok: false, error: Some(why.into()), command: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_read_as_documented() {
        let request: OperatorRequest = serde_json::from_str(r#"{"request_id":"r1","alert":"A000009","actor":"ana","op":"assign","to":"ben"}"#).unwrap();
        assert_eq!(request.operation, Operation::Assign { to: "ben".into() });
        assert!(serde_json::from_str::<OperatorRequest>(r#"{"request_id":"r1","alert":"A1","actor":"a","op":"delete"}"#).is_err());
        let command: OperatorRequest = serde_json::from_str(r#"{"request_id":"r2","actor":"ana","op":"command","vehicle":"V0007","command":{"action":"reduce_speed","max_kph":40}}"#).unwrap();
        assert_eq!((command.alert.as_str(), command.operation), ("", Operation::Command { vehicle: VehicleId(7), command: CommandAction::ReduceSpeed { max_kph: 40.0 }, ttl_s: None }));
    }
}
