//! The operator interface over Redis: the orchestrator publishes every alert to
//! `{prefix}:alerts` (a hash: id to JSON) and takes operations from the `{prefix}:operator:requests` stream, answering each on its own reply list, which
//! `aegis alerts ...` waits on.

use serde::{Deserialize, Serialize};

use super::alerts::{AlertError, AlertStore};

/// An operation on an alert.
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
}

/// A request from an operator. (serde cannot deny unknown fields beside a flattened field; an
/// unknown `op` is still refused.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Unique; names the reply list.
    pub request_id: String,
    /// The alert.
    pub alert: String,
    /// Who asks.
    pub actor: String,
    /// What.
    #[serde(flatten)]
    pub operation: Operation,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    /// Done.
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
}

/// Key of the alerts hash.
pub fn alerts_key(prefix: &str) -> String {
    format!("{prefix}:alerts")
}

/// Key of the request stream.
pub fn requests_key(prefix: &str) -> String {
    format!("{prefix}:operator:requests")
}

/// Key of one request's reply list.
pub fn reply_key(prefix: &str, request_id: &str) -> String {
    format!("{prefix}:operator:reply:{request_id}")
}

/// Applies a request to the store at `at` (simulation seconds).
pub fn apply(store: &mut AlertStore, request: &Request, at: f64) -> Reply {
    let result: Result<(), AlertError> = match &request.operation {
        Operation::Ack => store.acknowledge(&request.alert, &request.actor, at),
        Operation::Clear => store.clear(&request.alert, &request.actor, at),
        Operation::Assign { to } => store.assign(&request.alert, to, &request.actor, at),
        Operation::Shelve { for_s } => store.shelve(&request.alert, at + for_s.max(0.0), &request.actor, at),
        Operation::Comment { text } => store.comment(&request.alert, text, &request.actor, at),
    };
    match result {
        Ok(()) => Reply { ok: true, error: None },
        Err(error) => Reply { ok: false, error: Some(error.to_string()) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::alerts::AlertPolicy;

    #[test]
    fn requests_read_as_documented_and_unknown_ids_are_named() {
        let request: Request = serde_json::from_str(r#"{"request_id":"r1","alert":"A000009","actor":"ana","op":"assign","to":"ben"}"#).unwrap();
        assert_eq!(request.operation, Operation::Assign { to: "ben".into() });
        let mut store = AlertStore::new(AlertPolicy::default());
        let reply = apply(&mut store, &request, 1.0);
        assert_eq!(reply, Reply { ok: false, error: Some("no alert `A000009`".into()) });
        assert!(serde_json::from_str::<Request>(r#"{"request_id":"r1","alert":"A1","actor":"a","op":"delete"}"#).is_err());
    }
}
