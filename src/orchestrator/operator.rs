//! Operators' requests applied to the alert store, and their commands handed to the command
//! tracker. The requests and replies are wire types ([`crate::model::OperatorRequest`]);
//! where they come from is the operator channel's business ([`super::ports::OperatorChannel`]).

use super::brain::Brain;
use crate::model::{Operation, OperatorReply, OperatorRequest};

/// Applies a request at `at` (simulation seconds); every change is audited under the
/// request's actor.
pub fn apply(brain: &mut Brain, request: &OperatorRequest, at: f64) -> OperatorReply {
    let (store, alert, actor) = (&mut brain.alerts, request.alert.as_str(), request.actor.as_str());
    let result = match &request.operation {
        Operation::Ack => store.acknowledge(alert, actor, at),
        Operation::Clear => store.clear(alert, actor, at),
        Operation::Assign { to } => store.assign(alert, to, actor, at),
        Operation::Shelve { for_s } => store.shelve(alert, at + for_s.max(0.0), actor, at),
        Operation::Comment { text } => store.comment(alert, text, actor, at),
        Operation::Command { vehicle, command, ttl_s } => {
            return match brain.operator_command(*vehicle, command.clone(), *ttl_s, actor, alert, at) {
                Ok(id) => OperatorReply::issued(id),
                Err(why) => OperatorReply::refused(why),
            };
        }
    };
    match result {
        Ok(()) => OperatorReply::done(),
        Err(error) => OperatorReply::refused(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CommandAction, VehicleId};
    use crate::orchestrator::policy::Policy;

    #[test]
    fn unknown_ids_are_named() {
        let request = OperatorRequest { request_id: "r1".into(), alert: "A000009".into(), actor: "ana".into(), operation: Operation::Assign { to: "ben".into() } };
        let mut brain = Brain::new(Policy::shipped());
        assert_eq!(apply(&mut brain, &request, 1.0), OperatorReply::refused("no alert `A000009`"));
        let command = OperatorRequest { request_id: "r2".into(), alert: String::new(), actor: "ana".into(), operation: Operation::Command { vehicle: VehicleId(3), command: CommandAction::Stop, ttl_s: None } };
        assert_eq!(apply(&mut brain, &command, 1.0), OperatorReply::refused("no vehicle V0003 in the fleet"));
    }
}
