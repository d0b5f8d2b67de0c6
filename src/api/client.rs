//! A client of the API, for `aegis watch` (the seed's WebSocket test client) and `aegis bench
//! ws`: connects with a bearer token, subscribes, and on a dropped connection comes back and
//! resumes each topic from the last sequence number it saw.

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use super::ApiError;

/// An open connection.
pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What to subscribe to: `fleet`, `alerts`, `commands`, `events` (each but `fleet` narrowed to
/// one vehicle by `:V0007`) or `vehicle:V0007`.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    /// The topic's request fields.
    pub frame: Value,
    /// The topic's name, for resuming.
    pub topic: String,
}

impl Subscription {
    /// Parses `fleet`, `alerts`, `commands`, `events`, `alerts:V0007` (and the like) or
    /// `vehicle:V0007`; a vehicle takes `metrics` and `max_hz`.
    pub fn parse(topic: &str, metrics: Option<&[String]>, max_hz: Option<f64>) -> Result<Self, String> {
        const SHARED: [&str; 4] = ["fleet", "alerts", "commands", "events"];
        match topic.split_once(':') {
            None if SHARED.contains(&topic) => Ok(Self { frame: json!({ "type": "subscribe", "topic": topic }), topic: topic.to_owned() }),
            Some((shared @ ("alerts" | "commands" | "events"), vehicle)) => {
                let vehicle: crate::model::VehicleId = vehicle.parse().map_err(|e| format!("{e}"))?;
                Ok(Self { frame: json!({ "type": "subscribe", "topic": shared, "vehicle": vehicle }), topic: shared.to_owned() })
            }
            Some(("vehicle", vehicle)) => {
                let vehicle: crate::model::VehicleId = vehicle.parse().map_err(|e| format!("{e}"))?;
                let mut frame = json!({ "type": "subscribe", "topic": "vehicle", "vehicle": vehicle });
                if let Some(metrics) = metrics {
                    frame["metrics"] = json!(metrics);
                }
                if let Some(max_hz) = max_hz {
                    frame["max_hz"] = json!(max_hz);
                }
                Ok(Self { frame, topic: "vehicle".into() })
            }
            _ => Err(format!("`{topic}` is not a topic: fleet, alerts, commands, events (the last three with :V0007 for one vehicle) or vehicle:V0007")),
        }
    }
}

/// Connects to `url` (`ws://host:port/ws`) with `token` in the upgrade's Authorization header.
pub async fn connect(url: &str, token: &str) -> Result<Socket, ApiError> {
    let mut request = url.into_client_request().map_err(|e| ApiError::Client(format!("{url}: {e}")))?;
    let bearer = format!("Bearer {token}").parse().map_err(|_| ApiError::Client("the token is not a valid header value".into()))?;
    request.headers_mut().insert("Authorization", bearer);
    let (socket, _) = tokio_tungstenite::connect_async(request).await.map_err(|e| ApiError::Client(format!("{url}: {e}")))?;
    Ok(socket)
}

/// Sends one request frame.
pub async fn send(socket: &mut Socket, frame: &Value) -> Result<(), ApiError> {
    socket.send(Message::text(frame.to_string())).await.map_err(|e| ApiError::Client(e.to_string()))
}

/// The next text frame, or `None` when the connection ended (with the close reason, if any).
pub async fn next_text(socket: &mut Socket) -> Result<Option<String>, ApiError> {
    while let Some(message) = socket.next().await {
        match message.map_err(|e| ApiError::Client(e.to_string()))? {
            Message::Text(text) => return Ok(Some(text.to_string())),
            Message::Close(Some(frame)) => return Err(ApiError::Client(format!("closed by the server ({}): {}", u16::from(frame.code), frame.reason))),
            Message::Close(None) => return Ok(None),
            _ => {}
        }
    }
    Ok(None)
}

/// Prints `subscriptions`' frames as they arrive, raw JSON lines or a line of text each, until
/// the process is stopped; reconnects after a drop and resumes from the last seq seen.
pub async fn watch(url: &str, token: &str, subscriptions: &[Subscription], json_lines: bool) -> Result<(), ApiError> {
    let mut last_seq: std::collections::BTreeMap<String, u64> = Default::default();
    let mut attempt = 0u32;
    loop {
        let mut socket = match connect(url, token).await {
            Ok(socket) => socket,
            Err(e) if attempt < 10 => {
                attempt += 1;
                eprintln!("[aegis] watch: {e}; again in {attempt} s");
                tokio::time::sleep(std::time::Duration::from_secs(u64::from(attempt))).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        for (i, subscription) in subscriptions.iter().enumerate() {
            let mut frame = subscription.frame.clone();
            frame["id"] = json!(format!("watch-{i}"));
            if let Some(seq) = last_seq.get(&subscription.topic) {
                frame["since"] = json!(seq);
            }
            send(&mut socket, &frame).await?;
        }
        loop {
            match next_text(&mut socket).await {
                Ok(Some(text)) => {
                    attempt = 0;
                    let frame: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    if let (Some(topic), Some(seq)) = (frame["topic"].as_str(), frame["seq"].as_u64()) {
                        last_seq.insert(topic.to_owned(), seq);
                    }
                    if json_lines {
                        println!("{text}");
                    } else {
                        println!("{}", describe(&frame));
                    }
                }
                Ok(None) => break,
                Err(e @ ApiError::Client(_)) if e.to_string().contains("(4001)") => return Err(e),
                Err(e) => {
                    eprintln!("[aegis] watch: {e}; reconnecting");
                    break;
                }
            }
        }
    }
}

/// One line for a frame.
pub fn describe(frame: &Value) -> String {
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    match frame["type"].as_str() {
        Some("hello") => format!("connected as {} ({}), protocol {}", text(&frame["name"]), text(&frame["role"]), frame["protocol"]),
        Some("reply") if frame["ok"] == true && frame["command"].is_string() => format!("{}: ok, command {}", text(&frame["id"]), text(&frame["command"])),
        Some("reply") if frame["ok"] == true => format!("{}: ok", text(&frame["id"])),
        Some("reply") => format!("{}: refused: {}", text(&frame["id"]), text(&frame["error"])),
        Some("error") => format!("error: {}", text(&frame["error"])),
        Some(kind @ ("snapshot" | "delta")) if frame["topic"] == "alerts" => {
            let alerts = frame["data"]["alerts"].as_array().cloned().unwrap_or_default();
            let mut lines = vec![format!("alerts {kind} #{}: {} alert(s){}", frame["seq"], alerts.len(), if frame["resync"] == true { " (resync)" } else { "" })];
            for a in alerts {
                let state = if a["active"] == true { if a["acknowledged"] == true { "acknowledged" } else { "active" } } else { "cleared" };
                lines.push(format!("  {} {} {} {} {} {state}", text(&a["id"]), text(&a["key"]["vehicle"]), text(&a["key"]["component"]), text(&a["key"]["alert_type"]), text(&a["severity"])));
            }
            lines.join("\n")
        }
        Some(kind @ ("snapshot" | "delta")) if frame["topic"] == "commands" => {
            let commands = frame["data"]["commands"].as_array().cloned().unwrap_or_default();
            let mut lines = vec![format!("commands {kind} #{}: {} command(s)", frame["seq"], commands.len())];
            for c in commands {
                let by = c["issued_by"].as_str().map_or(String::new(), |by| format!(" by {by}"));
                lines.push(format!("  {} {} {} {}{by}", text(&c["id"]), text(&c["vehicle"]), text(&c["action"]["action"]), text(&c["state"])));
            }
            lines.join("\n")
        }
        Some(kind @ ("snapshot" | "delta")) if frame["topic"] == "events" => {
            let events = frame["data"]["events"].as_array().cloned().unwrap_or_default();
            let mut lines = vec![format!("events {kind} #{}: {} event(s)", frame["seq"], events.len())];
            for e in events {
                lines.push(format!("  {} t={}s {}", text(&e["vehicle"]), e["sim_time"], e["event"]));
            }
            lines.join("\n")
        }
        Some(kind @ ("snapshot" | "delta")) => {
            let vehicles = frame["data"]["vehicles"].as_object().map_or(0, |v| v.len());
            let fleet = &frame["data"]["summary"]["fleet"];
            let rate = frame["data"]["summary"]["messages_per_second"].as_f64().unwrap_or(0.0);
            let summary = if fleet.is_object() {
                format!("; online {}/{}, on mission {}, mean health {:.2}, {rate:.0} msg/s", fleet["online"], fleet["vehicles"], fleet["vehicles_on_mission"], fleet["mean_health"].as_f64().unwrap_or(0.0))
            } else {
                String::new()
            };
            format!("fleet {kind} #{}: {vehicles} vehicle(s){summary}", frame["seq"])
        }
        Some("telemetry") => {
            let metrics = frame["metrics"].as_object().map(|m| m.iter().map(|(k, v)| format!("{k}={:.2}", v.as_f64().unwrap_or(f64::NAN))).collect::<Vec<_>>().join(" ")).unwrap_or_default();
            format!("{} t={}s ({} {}): {metrics}", text(&frame["vehicle"]), frame["sim_time"], frame["samples"], text(&frame["mode"]))
        }
        _ => frame.to_string(),
    }
}
