//! Operator commands against a running orchestrator over Redis: `aegis alerts list|ack|clear|
//! assign` and `aegis fleet status`. Reads come straight from the keys the orchestrator keeps;
//! changes go to it as requests, and the command waits for its answer.

use std::time::Duration;

use anyhow::Context;

use crate::orchestrator::alerts::AlertRecord;
use crate::orchestrator::operator::{self, Operation, Reply, Request};

/// How long a change waits for the orchestrator's answer (it answers once a second).
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

fn connect(url: &str) -> anyhow::Result<redis::Connection> {
    let client = redis::Client::open(url).map_err(|e| anyhow::anyhow!("--redis `{url}`: {e}"))?;
    client.get_connection_with_timeout(Duration::from_secs(5)).with_context(|| format!("cannot reach redis at {url}"))
}

/// Alerts the orchestrator knows, active ones first by priority (all of them with `all`).
pub fn list(url: &str, prefix: &str, all: bool) -> anyhow::Result<Vec<AlertRecord>> {
    let mut connection = connect(url)?;
    let stored: Vec<(String, String)> = redis::cmd("HGETALL").arg(operator::alerts_key(prefix)).query(&mut connection)?;
    let mut alerts = Vec::with_capacity(stored.len());
    for (id, json) in stored {
        alerts.push(serde_json::from_str::<AlertRecord>(&json).with_context(|| format!("alert {id} in redis is unreadable"))?);
    }
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
pub fn change(url: &str, prefix: &str, alert: &str, actor: &str, operation: Operation) -> anyhow::Result<()> {
    let mut connection = connect(url)?;
    let request = Request { request_id: format!("{}-{}", std::process::id(), humantime::format_rfc3339_nanos(std::time::SystemTime::now())), alert: alert.to_owned(), actor: actor.to_owned(), operation };
    let _: String = redis::cmd("XADD")
        .arg(operator::requests_key(prefix))
        .arg("MAXLEN")
        .arg("~")
        .arg(10_000)
        .arg("*")
        .arg("request")
        .arg(serde_json::to_string(&request)?)
        .query(&mut connection)?;
    let answer: Option<(String, String)> =
        redis::cmd("BLPOP").arg(operator::reply_key(prefix, &request.request_id)).arg(ANSWER_WITHIN.as_secs_f64()).query(&mut connection)?;
    let Some((_, reply)) = answer else {
        anyhow::bail!("no orchestrator answered within {} s: is `aegis orchestrator` running on this server and prefix?", ANSWER_WITHIN.as_secs());
    };
    let reply: Reply = serde_json::from_str(&reply).context("unreadable reply from the orchestrator")?;
    if reply.ok { Ok(()) } else { anyhow::bail!("{}", reply.error.unwrap_or_else(|| "refused".into())) }
}

/// The orchestrator's fleet status, pretty-printed JSON.
pub fn fleet_status(url: &str, prefix: &str) -> anyhow::Result<String> {
    let mut connection = connect(url)?;
    let status: Option<String> = redis::cmd("GET").arg(crate::bus::keys::Keys::new(prefix).fleet_status()).query(&mut connection)?;
    let status = status.with_context(|| format!("no fleet status under prefix `{prefix}`: is `aegis orchestrator` running?"))?;
    let value: serde_json::Value = serde_json::from_str(&status).context("unreadable fleet status")?;
    Ok(serde_json::to_string_pretty(&value)?)
}
