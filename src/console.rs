//! Operator commands against a running orchestrator over Redis: `aegis alerts list|ack|clear|
//! assign|shelve|comment` and `aegis fleet status`, on the transport's operator client: the
//! same requests the 3D view's buttons hand in, applied and audited by the centre.

use std::time::Duration;

use crate::bus::RedisConfig;
use crate::bus::redis::{OperatorClient, TransportError};
use crate::model::{AlertRecord, Operation, OperatorRequest};

/// How long a change waits for the orchestrator's answer (it answers once a second).
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// Why an operator command failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// Redis could not be reached or read.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Nobody answered.
    #[error("no orchestrator answered within {} s: is `aegis orchestrator` running on this server and prefix?", ANSWER_WITHIN.as_secs())]
    NoAnswer,
    /// No status published yet.
    #[error("no fleet status under prefix `{0}`: is `aegis orchestrator` running?")]
    NoStatus(String),
    /// The centre refused the request.
    #[error("{0}")]
    Refused(String),
}

fn client(url: &str, prefix: &str) -> Result<OperatorClient, ConsoleError> {
    let config = RedisConfig::new(url, "console").with_prefix(prefix);
    Ok(OperatorClient::connect(&config)?)
}

/// Alerts the orchestrator knows, active ones first by priority (all of them with `all`).
pub fn list(url: &str, prefix: &str, all: bool) -> Result<Vec<AlertRecord>, ConsoleError> {
    let mut alerts = client(url, prefix)?.alerts()?;
    alerts.retain(|a| all || a.active);
    alerts.sort_by(|a, b| b.active.cmp(&a.active).then(b.priority(false).total_cmp(&a.priority(false))).then(a.id.cmp(&b.id)));
    Ok(alerts)
}

/// The alerts as a table for people.
pub fn table(alerts: &[AlertRecord]) -> String {
    let mut out = format!("{:<8} {:<6} {:<15} {:<20} {:<9} {:<7} {:<5} {:<10} {:>8}\n", "id", "vehicle", "component", "type", "severity", "state", "ack", "assignee", "priority");
    for a in alerts {
        out.push_str(&format!(
            "{:<8} {:<6} {:<15} {:<20} {:<9} {:<7} {:<5} {:<10} {:>8.1}\n",
            a.id,
            a.key.vehicle.to_string(),
            format!("{:?}", a.key.component),
            a.key.alert_type,
            format!("{:?}", a.severity).to_lowercase(),
            if a.active { "active" } else { "cleared" },
            if a.acknowledged { "yes" } else { "no" },
            a.assignee.as_deref().unwrap_or("-"),
            a.priority(false)
        ));
    }
    out
}

/// Sends an operation on `alert` and waits for the orchestrator's answer; an unknown id or a
/// refused operation comes back as an error naming it.
pub fn change(url: &str, prefix: &str, alert: &str, actor: &str, operation: Operation) -> Result<(), ConsoleError> {
    let request = OperatorRequest {
        request_id: format!("{}-{}", std::process::id(), humantime::format_rfc3339_nanos(std::time::SystemTime::now())),
        alert: alert.to_owned(),
        actor: actor.to_owned(),
        operation,
    };
    let reply = client(url, prefix)?.submit(&request, ANSWER_WITHIN)?.ok_or(ConsoleError::NoAnswer)?;
    if reply.ok { Ok(()) } else { Err(ConsoleError::Refused(reply.error.unwrap_or_else(|| "refused".into()))) }
}

/// The orchestrator's fleet status, pretty-printed JSON.
pub fn fleet_status(url: &str, prefix: &str) -> Result<String, ConsoleError> {
    let status = client(url, prefix)?.fleet_status()?.ok_or_else(|| ConsoleError::NoStatus(prefix.to_owned()))?;
    Ok(serde_json::to_string_pretty(&status).expect("statuses serialise"))
}
