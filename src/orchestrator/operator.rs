//! Operators' requests applied to the alert store. The requests and replies are wire types
//! ([`crate::model::OperatorRequest`]); where they come from is the operator channel's
//! business ([`super::ports::OperatorChannel`]).

use super::alerts::AlertStore;
use crate::model::{Operation, OperatorReply, OperatorRequest};

/// Applies a request to the store at `at` (simulation seconds); every change is audited under
/// the request's actor.
pub fn apply(store: &mut AlertStore, request: &OperatorRequest, at: f64) -> OperatorReply {
    let result = match &request.operation {
        Operation::Ack => store.acknowledge(&request.alert, &request.actor, at),
        Operation::Clear => store.clear(&request.alert, &request.actor, at),
        Operation::Assign { to } => store.assign(&request.alert, to, &request.actor, at),
        Operation::Shelve { for_s } => store.shelve(&request.alert, at + for_s.max(0.0), &request.actor, at),
        Operation::Comment { text } => store.comment(&request.alert, text, &request.actor, at),
    };
    match result {
        Ok(()) => OperatorReply::done(),
        Err(error) => OperatorReply::refused(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::alerts::AlertPolicy;

    #[test]
    fn unknown_ids_are_named() {
        let request = OperatorRequest { request_id: "r1".into(), alert: "A000009".into(), actor: "ana".into(), operation: Operation::Assign { to: "ben".into() } };
        let mut store = AlertStore::new(AlertPolicy::default());
        assert_eq!(apply(&mut store, &request, 1.0), OperatorReply::refused("no alert `A000009`"));
    }
}
