//! The WebSocket and HTTP API against a real server on 127.0.0.1 port 0 and real WebSocket
//! clients (tokio-tungstenite): tokens and roles, snapshots then numbered deltas, resuming
//! after a dropped connection, operator actions audited with the token's name, bad input, and
//! many clients at once. Waits are bounded by a timeout, never by sleeping.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aegis::api::auth::Tokens;
use aegis::api::hub::{Hub, REPLAY_KEPT};
use aegis::api::server::OperatorGate;
use aegis::api::{Api, serve};
use aegis::bus::local::operator_desk;
use aegis::model::{AlertRecord, Component, OperatorReply, Recommendation, RecommendedAction, Severity, VehicleId, VehicleStatus, VehicleSummary};
use aegis::orchestrator::alerts::{AlertKey, AlertPolicy, AlertStore, Condition, Observation, Origin};
use aegis::orchestrator::ports::{Changes, OperatorChannel};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

const VIEWER: &str = "viewer-secret-0123456789";
const OPERATOR: &str = "operator-secret-0123456789";
const WAIT: Duration = Duration::from_secs(20);

pub(crate) type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Server {
    addr: SocketAddr,
    hub: Arc<Hub>,
    _stop: watch::Sender<bool>,
}

async fn start(operators: Option<Arc<dyn OperatorGate>>) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hub = Arc::new(Hub::default());
    let (stop, stopped) = watch::channel(false);
    let tokens = Tokens::parse_list(&format!("vic:viewer:{VIEWER},ana:operator:{OPERATOR}")).unwrap();
    let api = Api::new(hub.clone(), tokens, operators, stopped.clone());
    let mut stopped = stopped;
    tokio::spawn(serve(listener, api, async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    }));
    Server { addr, hub, _stop: stop }
}

/// A client that authenticated with its first frame and read the hello.
pub(crate) async fn client(addr: SocketAddr, token: &str) -> Socket {
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await.unwrap();
    socket.send(Message::text(json!({ "type": "auth", "token": token }).to_string())).await.unwrap();
    let hello = next_json(&mut socket).await;
    assert_eq!(hello["type"], "hello", "{hello}");
    assert_eq!(hello["protocol"], 1);
    socket
}

/// Every frame the clients received and no check has taken yet.
static RECEIVED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Every HTTP answer (`{"path", "status", "body"}`) received and no check has taken yet.
static ANSWERED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Runs `script` (in tests/it) on `documents` with `lines` on its standard input; panics
/// with what it printed unless every line is as documented.
fn validate(script: &str, documents: &[&str], lines: Vec<String>) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut child = std::process::Command::new("python3")
        .arg(root.join("tests/it").join(script))
        .args(documents.iter().map(|d| root.join("docs").join(d)))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3, for the API's schemas");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), lines.join("\n").as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
}

/// Checks every frame received so far against the JSON Schemas of docs/asyncapi.yaml, and
/// every HTTP answer against docs/openapi.yaml, with an independent validator (Python's
/// jsonschema, which .ci/setup installs). Each test calls it last, so every frame and answer
/// is checked by its own test's call or an earlier one.
pub(crate) fn frames_match_the_protocol_document() {
    validate("validate_frames.py", &["asyncapi.yaml"], std::mem::take(&mut *RECEIVED.lock().unwrap()));
    validate("validate_http.py", &["openapi.yaml", "asyncapi.yaml"], std::mem::take(&mut *ANSWERED.lock().unwrap()));
}

/// The next text frame as JSON (pings are skipped).
pub(crate) async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(WAIT, socket.next()).await.expect("a frame in time").expect("the connection open").unwrap();
        match message {
            Message::Text(text) => {
                RECEIVED.lock().unwrap().push(text.to_string());
                return serde_json::from_str(&text).unwrap();
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// The close frame's code and reason, after any other frames.
pub(crate) async fn closed_with(socket: &mut Socket) -> (u16, String) {
    loop {
        match tokio::time::timeout(WAIT, socket.next()).await.expect("closed in time") {
            Some(Ok(Message::Close(Some(frame)))) => return (u16::from(frame.code), frame.reason.to_string()),
            Some(Ok(Message::Close(None))) | None | Some(Err(_)) => return (0, String::new()),
            Some(Ok(_)) => continue,
        }
    }
}

/// Sends a request and returns its answer (a reply or an error frame), passing over the topic
/// frames that come before it.
pub(crate) async fn request(socket: &mut Socket, frame: Value) -> Value {
    socket.send(Message::text(frame.to_string())).await.unwrap();
    loop {
        let answer = next_json(socket).await;
        if answer["type"] == "reply" || answer["type"] == "error" {
            return answer;
        }
    }
}

pub(crate) async fn subscribe(socket: &mut Socket, topic: &str, since: Option<u64>) -> Value {
    let reply = request(socket, json!({ "type": "subscribe", "id": format!("sub-{topic}"), "topic": topic, "since": since })).await;
    assert_eq!(reply, json!({ "type": "reply", "id": format!("sub-{topic}"), "ok": true }));
    next_json(socket).await
}

/// A plain HTTP GET: the status code and the body as JSON.
pub(crate) async fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut response)).await.unwrap().unwrap();
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    let body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    if response.contains("application/json") {
        let path = path.split('?').next().unwrap_or(path);
        ANSWERED.lock().unwrap().push(json!({ "path": path, "status": status, "body": body }).to_string());
    }
    (status, body)
}

fn moving(vehicles: &[u32], at: f64) -> Changes {
    let summary = VehicleSummary { status: Some(VehicleStatus::EnRoute), online: true, seq: Some(at as u64), sim_time: at, mission: None };
    Changes { vehicles: vehicles.iter().map(|v| (VehicleId(*v), summary.clone())).collect(), ..Changes::default() }
}

fn alert(vehicle: u32) -> AlertRecord {
    let mut store = AlertStore::new(AlertPolicy { raise_after_s: 0.0, ..AlertPolicy::default() });
    let id = store
        .observe(Observation {
            key: AlertKey { vehicle: VehicleId(vehicle), component: Component::CoolingSystem, alert_type: "overheating".into() },
            at: 10.0,
            condition: Condition::Raise,
            severity: Severity::Major,
            origin: Origin::CentralRule,
            evidence: vec![("coolant_temp_c".into(), 112.0)],
            recommendation: Recommendation { action: RecommendedAction::ReturnToDepot, reason: "hot".into(), within_hours: None },
            confidence: 0.9,
            time_to_failure_h: None,
        })
        .unwrap();
    store.get(&id).unwrap().clone()
}

#[tokio::test]
async fn no_token_no_fleet_over_http_or_websocket() {
    let server = start(None).await;
    assert_eq!(get(server.addr, "/healthz", None).await.0, 200, "health is open to scrapers");
    let (status, body) = get(server.addr, "/api/v1/fleet", None).await;
    assert_eq!(status, 401);
    assert!(body["error"].as_str().unwrap().contains("bearer token"), "{body}");
    assert_eq!(get(server.addr, "/api/v1/fleet", Some("not-a-token-at-all")).await.0, 401);
    server.hub.apply(&moving(&[7], 3.0));
    let (status, body) = get(server.addr, "/api/v1/vehicles/V0007", Some(VIEWER)).await;
    assert_eq!((status, body["summary"]["status"].as_str()), (200, Some("en_route")), "{body}");
    assert_eq!(get(server.addr, "/api/v1/vehicles/V0008", Some(VIEWER)).await.0, 404);
    assert_eq!(get(server.addr, "/api/v1/vehicles/seven", Some(VIEWER)).await.0, 400);
    assert_eq!(get(server.addr, "/api/v1/alerts?severity=catastrophic", Some(VIEWER)).await.0, 400);

    // A WebSocket whose first frame is not a valid auth frame is closed with a reason.
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr)).await.unwrap();
    socket.send(Message::text(json!({ "type": "auth", "token": "wrong-wrong-wrong-wrong" }).to_string())).await.unwrap();
    let (code, reason) = closed_with(&mut socket).await;
    assert_eq!(code, 4001);
    assert!(reason.contains("authenticate first"), "{reason}");
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr)).await.unwrap();
    socket.send(Message::text(json!({ "type": "subscribe", "id": "1", "topic": "fleet" }).to_string())).await.unwrap();
    assert_eq!(closed_with(&mut socket).await.0, 4001, "no request before authentication");
    frames_match_the_protocol_document();
}

#[tokio::test]
async fn a_subscriber_gets_a_snapshot_then_numbered_deltas_and_resumes_without_a_gap() {
    let server = start(None).await;
    server.hub.apply(&moving(&[1, 2], 1.0));
    let mut socket = client(server.addr, VIEWER).await;
    let snapshot = subscribe(&mut socket, "fleet", None).await;
    assert_eq!((snapshot["type"].as_str(), snapshot["seq"].as_u64(), snapshot["resync"].as_bool()), (Some("snapshot"), Some(1), Some(false)), "{snapshot}");
    assert_eq!(snapshot["data"]["vehicles"].as_object().unwrap().len(), 2);

    server.hub.apply(&moving(&[2], 2.0));
    let delta = next_json(&mut socket).await;
    assert_eq!((delta["type"].as_str(), delta["seq"].as_u64()), (Some("delta"), Some(2)), "{delta}");
    assert_eq!(delta["data"]["vehicles"].as_object().unwrap().keys().collect::<Vec<_>>(), vec!["V0002"], "only what changed");

    // Dropped; two deltas pass; back with `since`: exactly those two, in order.
    drop(socket);
    server.hub.apply(&moving(&[1], 3.0));
    server.hub.apply(&moving(&[2], 4.0));
    let mut socket = client(server.addr, VIEWER).await;
    let first = subscribe(&mut socket, "fleet", Some(2)).await;
    let second = next_json(&mut socket).await;
    assert_eq!((first["type"].as_str(), first["seq"].as_u64(), second["seq"].as_u64()), (Some("delta"), Some(3), Some(4)));
    server.hub.apply(&moving(&[1], 5.0));
    assert_eq!(next_json(&mut socket).await["seq"], 5, "and live from there");

    // Back after more deltas than are kept: a fresh snapshot, flagged, never a silent gap.
    for t in 0..REPLAY_KEPT + 10 {
        server.hub.apply(&moving(&[3], 10.0 + t as f64));
    }
    let mut late = client(server.addr, VIEWER).await;
    let resync = subscribe(&mut late, "fleet", Some(5)).await;
    assert_eq!((resync["type"].as_str(), resync["resync"].as_bool()), (Some("snapshot"), Some(true)), "{resync}");
    assert_eq!(resync["seq"].as_u64(), Some(server.hub.seq(aegis::api::protocol::Topic::Fleet)));
    assert_eq!(resync["data"]["vehicles"].as_object().unwrap().len(), 3);
    frames_match_the_protocol_document();
}

#[tokio::test]
async fn a_viewer_may_not_act_and_an_operators_ack_reaches_the_centre_as_the_token_name() {
    let (desk, mut operators) = operator_desk();
    let server = start(Some(Arc::new(desk))).await;
    let raised = alert(4);
    server.hub.apply(&Changes { alerts: vec![raised.clone()], ..Changes::default() });

    let mut viewer = client(server.addr, VIEWER).await;
    let snapshot = subscribe(&mut viewer, "alerts", None).await;
    assert_eq!(snapshot["data"]["alerts"][0]["id"], raised.id.as_str());
    let refused = request(&mut viewer, json!({ "type": "ack", "id": "a1", "alert": raised.id })).await;
    assert_eq!((refused["ok"].as_bool(), refused["id"].as_str()), (Some(false), Some("a1")), "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("viewer role may not"), "{refused}");
    let refused = request(&mut viewer, json!({ "type": "command", "id": "c1", "vehicle": "V0004", "command": { "action": "stop" } })).await;
    assert_eq!(refused["ok"], false, "{refused}");
    assert!(operators.requests().is_empty(), "a viewer's ack or command changes nothing");

    // The centre's side: answer the first request that comes, and tell who asked.
    let centre = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(request) = operators.requests().pop() {
                operators.reply(&request, OperatorReply::done());
                return request;
            }
            assert!(std::time::Instant::now() < deadline, "no operator request reached the centre");
            std::thread::yield_now();
        }
    });
    let mut operator = client(server.addr, OPERATOR).await;
    let done = request(&mut operator, json!({ "type": "ack", "id": "a2", "alert": raised.id })).await;
    assert_eq!(done, json!({ "type": "reply", "id": "a2", "ok": true }));
    let seen = centre.join().unwrap();
    assert_eq!((seen.actor.as_str(), seen.alert.as_str(), seen.operation), ("ana", raised.id.as_str(), aegis::model::Operation::Ack), "audited as the token's name");
    frames_match_the_protocol_document();
}

#[tokio::test]
async fn bad_frames_are_answered_and_the_server_keeps_serving_others() {
    let server = start(None).await;
    let mut watcher = client(server.addr, VIEWER).await;
    subscribe(&mut watcher, "fleet", None).await;
    let mut socket = client(server.addr, VIEWER).await;
    let cases = [
        "{",
        "null",
        "[]",
        r#"{"type":"launch","id":"1"}"#,
        r#"{"type":"subscribe","id":"1","topic":"weather"}"#,
        r#"{"type":"subscribe","id":7,"topic":"fleet"}"#,
        r#"{"type":"subscribe","id":"1","topic":"fleet","extra":true}"#,
        r#"{"type":"ack","id":"1"}"#,
        r#"{"type":"shelve","id":"1","alert":"A000001","for_s":"soon"}"#,
    ];
    for case in cases {
        socket.send(Message::text(case)).await.unwrap();
        let answer = next_json(&mut socket).await;
        assert_eq!(answer["type"], "error", "{case} -> {answer}");
        assert!(answer["error"].as_str().unwrap().starts_with("not a request"), "{answer}");
    }
    // A few thousand generated ones: valid frames cut short, or with bytes swapped.
    let valid = json!({ "type": "subscribe", "id": "x", "topic": "alerts" }).to_string();
    let mut answered = 0;
    for i in 0..3000usize {
        let mut bytes = valid.clone().into_bytes();
        match i % 3 {
            0 => bytes.truncate(i % valid.len()),
            1 => bytes[i % valid.len()] = b"{}[]\",:0az"[i % 10],
            _ => bytes.insert(i % valid.len(), b'\\'),
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if serde_json::from_str::<aegis::api::protocol::ClientFrame>(&text).is_ok() {
            continue; // still a valid request by chance
        }
        socket.send(Message::text(text)).await.unwrap();
        answered += 1;
        // Read as it goes, in batches: a client that never reads is closed as too slow.
        if answered % 100 == 0 {
            for _ in 0..100 {
                assert_eq!(next_json(&mut socket).await["type"], "error");
            }
        }
    }
    for _ in 0..answered % 100 {
        assert_eq!(next_json(&mut socket).await["type"], "error");
    }
    assert!(answered > 2500, "{answered} malformed frames sent");
    // Binary frames are not the protocol.
    socket.send(Message::binary(vec![0u8, 1, 2])).await.unwrap();
    assert_eq!(next_json(&mut socket).await["type"], "error");
    // A flood of subscriptions to one topic: the first taken, the rest refused.
    let first = request(&mut socket, json!({ "type": "subscribe", "id": "f0", "topic": "alerts" })).await;
    assert_eq!(first["ok"], true);
    let snapshot = next_json(&mut socket).await;
    assert_eq!(snapshot["type"], "snapshot");
    for i in 1..200 {
        let reply = request(&mut socket, json!({ "type": "subscribe", "id": format!("f{i}"), "topic": "alerts" })).await;
        assert_eq!(reply["ok"], false, "{reply}");
    }
    // A 10 MB frame closes that connection with a reason, and only that one.
    let _ = socket.send(Message::text("x".repeat(10 << 20))).await;
    let (code, _) = closed_with(&mut socket).await;
    assert!(code == 1009 || code == 0, "closed for size, got {code}");
    server.hub.apply(&moving(&[9], 1.0));
    let delta = next_json(&mut watcher).await;
    assert_eq!((delta["type"].as_str(), delta["seq"].as_u64()), (Some("delta"), Some(1)), "the others are still served");
    frames_match_the_protocol_document();
}

fn event(vehicle: u32, seq: u64, to: VehicleStatus) -> aegis::model::Envelope {
    let event = aegis::model::Event { event: aegis::model::EventKind::StatusChanged { from: VehicleStatus::EnRoute, to } };
    aegis::model::Envelope::new(VehicleId(vehicle), seq, seq as f64, aegis::model::Body::Event(Box::new(event)))
}

#[tokio::test]
async fn filtered_subscriptions_keep_their_records_and_every_seq_and_events_and_commands_are_topics() {
    let server = start(None).await;
    // Each `alert` comes from a store of its own: number them apart.
    let numbered = |vehicle: u32| AlertRecord { id: format!("A{vehicle:06}"), ..alert(vehicle) };
    server.hub.apply(&Changes { alerts: vec![numbered(1)], ..Changes::default() });
    let mut socket = client(server.addr, VIEWER).await;
    // Only V0002's alerts of major or worse; the snapshot has none of V0001's.
    let reply = request(&mut socket, json!({ "type": "subscribe", "id": "a", "topic": "alerts", "vehicle": "V0002", "severity": "major", "state": "active" })).await;
    assert_eq!(reply["ok"], true, "{reply}");
    let snapshot = next_json(&mut socket).await;
    assert_eq!((snapshot["seq"].as_u64(), snapshot["data"]["alerts"].as_array().map(Vec::len)), (Some(1), Some(0)), "{snapshot}");
    server.hub.apply(&Changes { alerts: vec![numbered(1)], ..Changes::default() });
    server.hub.apply(&Changes { alerts: vec![numbered(2)], ..Changes::default() });
    let (emptied, kept) = (next_json(&mut socket).await, next_json(&mut socket).await);
    assert_eq!((emptied["seq"].as_u64(), emptied["data"]["alerts"].as_array().map(Vec::len)), (Some(2), Some(0)), "a delta holding nothing kept still comes: {emptied}");
    assert_eq!((kept["seq"].as_u64(), kept["data"]["alerts"][0]["key"]["vehicle"].as_str()), (Some(3), Some("V0002")), "{kept}");
    // A second vehicle is a second subscription; options of other topics are refused.
    let reply = request(&mut socket, json!({ "type": "subscribe", "id": "b", "topic": "alerts", "vehicle": "V0001" })).await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(next_json(&mut socket).await["data"]["alerts"].as_array().map(Vec::len), Some(1), "V0001's alert");
    for (frame, why) in [
        (json!({ "type": "subscribe", "id": "x", "topic": "fleet", "vehicle": "V0001" }), "fleet topic holds every vehicle"),
        (json!({ "type": "subscribe", "id": "x", "topic": "events", "severity": "major" }), "filter the alerts topic"),
        (json!({ "type": "subscribe", "id": "x", "topic": "alerts", "max_hz": 0.5 }), "for the vehicle topic"),
    ] {
        let reply = request(&mut socket, frame).await;
        assert!(reply["ok"] == false && reply["error"].as_str().unwrap().contains(why), "{reply}");
    }

    // Events: what vehicles report, one delta a batch, kept for the snapshot and HTTP.
    let snapshot = subscribe(&mut socket, "events", None).await;
    assert_eq!(snapshot["data"]["events"].as_array().map(Vec::len), Some(0));
    server.hub.take_in(&[event(3, 40, VehicleStatus::Stopped), telemetry(3, 41), event(4, 42, VehicleStatus::Returning)]);
    let delta = next_json(&mut socket).await;
    assert_eq!((delta["topic"].as_str(), delta["seq"].as_u64()), (Some("events"), Some(1)));
    assert_eq!(delta["data"]["events"].as_array().map(Vec::len), Some(2), "one delta for the batch: {delta}");
    assert_eq!(delta["data"]["events"][0]["event"], json!({ "type": "status_changed", "from": "en_route", "to": "stopped" }));
    let (_, events) = get(server.addr, "/api/v1/events?vehicle=V0004", Some(VIEWER)).await;
    assert_eq!(events["events"].as_array().map(Vec::len), Some(1), "{events}");

    // Commands: each whole as it changes.
    let snapshot = subscribe(&mut socket, "commands", None).await;
    assert_eq!(snapshot["data"]["commands"].as_array().map(Vec::len), Some(0));
    let mut tracker = aegis::orchestrator::commands::CommandTracker::new(Default::default());
    tracker.issue_as(VehicleId(3), aegis::model::CommandAction::ReduceSpeed { max_kph: 40.0 }, 5.0, 300.0, Some("ana"));
    server.hub.apply(&Changes { commands: tracker.take_changed(), ..Changes::default() });
    let delta = next_json(&mut socket).await;
    let command = &delta["data"]["commands"][0];
    assert_eq!((command["id"].as_str(), command["state"].as_str(), command["issued_by"].as_str()), (Some("C000001"), Some("queued"), Some("ana")), "{delta}");
    assert_eq!(command["action"], json!({ "action": "reduce_speed", "max_kph": 40.0 }));
    let (status, commands) = get(server.addr, "/api/v1/commands?vehicle=V0003&state=queued", Some(VIEWER)).await;
    assert_eq!((status, commands["commands"].as_array().map(Vec::len)), (200, Some(1)), "{commands}");
    assert_eq!(get(server.addr, "/api/v1/commands?state=lost", Some(VIEWER)).await.0, 400);
    assert_eq!(get(server.addr, "/api/v1/missions", Some(VIEWER)).await.0, 200);

    // No store attached: live endpoints work, history ones say why not.
    for path in ["/api/v1/runs", "/api/v1/vehicles/V0003/telemetry", "/api/v1/alerts/history", "/api/v1/commands/history?vehicle=V0003", "/api/v1/missions/history"] {
        let (status, body) = get(server.addr, path, Some(VIEWER)).await;
        assert_eq!(status, 503, "{path}: {body}");
        assert!(body["error"].as_str().unwrap().contains("--store"), "{body}");
    }
    let (status, body) = get(server.addr, "/api/v1/alerts/history?colour=red", Some(VIEWER)).await;
    assert!(status == 400 && body["error"].as_str().unwrap().contains("unknown parameter `colour`"), "{status} {body}");
    let (status, text) = raw_get(server.addr, "/api/v1/openapi.yaml").await;
    assert!(status == 200 && text.contains("openapi: 3.1.0"), "the OpenAPI document is served, without a token");
    frames_match_the_protocol_document();
}

/// A GET without a token: the status and the raw response.
async fn raw_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut response)).await.unwrap().unwrap();
    (response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap(), response)
}

#[tokio::test]
async fn a_hundred_clients_each_get_every_delta_once() {
    let server = start(None).await;
    let mut sockets = Vec::new();
    for _ in 0..100 {
        let mut socket = client(server.addr, VIEWER).await;
        subscribe(&mut socket, "fleet", None).await;
        subscribe(&mut socket, "alerts", None).await;
        sockets.push(socket);
    }
    assert_eq!(server.hub.subscribers(), 200);
    for t in 1..=3 {
        server.hub.apply(&moving(&[1, 2, 3], f64::from(t)));
    }
    server.hub.apply(&Changes { alerts: vec![alert(2)], ..Changes::default() });
    for socket in &mut sockets {
        let seqs: Vec<(String, u64)> = {
            let mut seen = Vec::new();
            for _ in 0..4 {
                let frame = next_json(socket).await;
                seen.push((frame["topic"].as_str().unwrap().to_owned(), frame["seq"].as_u64().unwrap()));
            }
            seen
        };
        assert_eq!(seqs, vec![("fleet".into(), 1), ("fleet".into(), 2), ("fleet".into(), 3), ("alerts".into(), 1)]);
    }
    frames_match_the_protocol_document();
}

/// `aegis run --headless ... --listen 127.0.0.1:0` with `args`: the child, and the address and
/// made-up admin token from the URL it prints.
async fn listening_run(args: &[&str]) -> (tokio::process::Child, SocketAddr, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_aegis"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "--headless", "--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("AEGIS_API_TOKENS")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = tokio::time::timeout(WAIT, lines.next_line()).await.expect("the URL in time").unwrap().expect("aegis printed the API's URL");
        if let Some(at) = line.find("http://")
            && line.contains("?token=")
        {
            break line[at..].trim().to_owned();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let (addr, token) = url.trim_start_matches("http://").split_once("/?token=").unwrap();
    (child, addr.parse().unwrap(), token.to_owned())
}

#[tokio::test]
async fn aegis_run_listen_serves_the_live_fleet_and_takes_operator_actions_to_its_centre() {
    let (mut child, addr, token) = listening_run(&["--scenario", "scenarios/coolant_leak.toml", "--duration", "30m", "--speed", "60"]).await;
    let token = token.as_str();

    let mut socket = client(addr, token).await;
    subscribe(&mut socket, "fleet", None).await;
    // Deltas as the centre saves, until every vehicle of the scenario is known and moving.
    let mut known = std::collections::BTreeMap::new();
    let mut last_seq = 0;
    while known.len() < 2 || !known.values().any(|status: &Value| status == "en_route") {
        let delta = next_json(&mut socket).await;
        assert_eq!(delta["type"], "delta");
        let seq = delta["seq"].as_u64().unwrap();
        assert!(seq > last_seq, "numbered in order");
        last_seq = seq;
        for (id, summary) in delta["data"]["vehicles"].as_object().unwrap() {
            known.insert(id.clone(), summary["status"].clone());
        }
    }
    // An action reaches the real centre, which answers it (here: no such alert).
    let reply = request(&mut socket, json!({ "type": "ack", "id": "r1", "alert": "A999999" })).await;
    assert_eq!((reply["id"].as_str(), reply["ok"].as_bool()), (Some("r1"), Some(false)), "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("A999999"), "the centre's own refusal: {reply}");
    let (status, body) = get(addr, "/api/v1/vehicles", Some(token)).await;
    assert_eq!(status, 200);
    assert!(!body["vehicles"].as_array().unwrap().is_empty(), "{body}");
    child.kill().await.unwrap();
    frames_match_the_protocol_document();
}

/// Polls `path` until `done` holds for its answer (the store commits in batches), for at
/// most [`WAIT`].
async fn get_until(addr: SocketAddr, path: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, body) = get(addr, path, Some(token)).await;
        if status == 200 && done(&body) {
            return body;
        }
        assert!(tokio::time::Instant::now() < deadline, "{path}: still {status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_command_sent_over_the_websocket_is_obeyed_by_the_vehicle_and_history_comes_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("history.db").display());
    let (mut child, addr, token) = listening_run(&["--scenario", "scenarios/coolant_leak.toml", "--duration", "2h", "--speed", "60", "--store", &store]).await;
    let token = token.as_str();
    let mut socket = client(addr, token).await;
    subscribe(&mut socket, "fleet", None).await;
    while next_json(&mut socket).await["data"]["vehicles"]["V0001"]["status"] != "en_route" {}
    subscribe(&mut socket, "commands", None).await;
    subscribe(&mut socket, "events", None).await;

    socket.send(Message::text(json!({ "type": "command", "id": "c1", "vehicle": "V0001", "command": { "action": "stop" } }).to_string())).await.unwrap();
    // The reply names the command; the commands topic follows it until the vehicle's own
    // telemetry shows it standing still, and the vehicle reports why on the events topic.
    let (mut issued, mut succeeded, mut stopped) = (None::<String>, false, false);
    while !(succeeded && stopped) {
        let frame = next_json(&mut socket).await;
        match (frame["type"].as_str(), frame["topic"].as_str()) {
            (Some("reply"), _) => {
                assert_eq!((frame["id"].as_str(), frame["ok"].as_bool()), (Some("c1"), Some(true)), "{frame}");
                issued = frame["command"].as_str().map(str::to_owned);
            }
            (_, Some("commands")) => {
                for command in frame["data"]["commands"].as_array().unwrap() {
                    if issued.as_deref() == command["id"].as_str() {
                        assert_eq!((command["vehicle"].as_str(), command["issued_by"].as_str()), (Some("V0001"), Some("admin")), "audited as the token's name: {command}");
                        assert!(!matches!(command["state"].as_str(), Some("failed" | "timeout" | "expired")), "{command}");
                        succeeded |= command["state"] == "succeeded";
                    }
                }
            }
            (_, Some("events")) => {
                stopped |= frame["data"]["events"].as_array().unwrap().iter().any(|e| e["vehicle"] == "V0001" && e["event"]["type"] == "status_changed" && e["event"]["to"] == "stopped");
            }
            _ => {}
        }
    }
    let issued = issued.expect("the reply came before the command succeeded");
    let (_, vehicle) = get(addr, "/api/v1/vehicles/V0001", Some(token)).await;
    assert_eq!(vehicle["summary"]["status"], "stopped", "{vehicle}");

    // History from the store the run writes: its runs, a vehicle's telemetry a page at a time,
    // and the command among the stored ones.
    let runs = get_until(addr, "/api/v1/runs", token, |b| b["runs"].as_array().is_some_and(|r| !r.is_empty())).await;
    assert_eq!(runs["current"], runs["runs"][0]["name"], "{runs}");
    let stored = get_until(addr, "/api/v1/commands/history?vehicle=V0001&action=stop", token, |b| b["rows"].as_array().is_some_and(|r| !r.is_empty())).await;
    assert_eq!(stored["rows"][0]["command_id"].as_str(), Some(issued.as_str()), "{stored}");
    let page = get_until(addr, "/api/v1/vehicles/V0001/telemetry?metrics=speed_kph,coolant_temp_c&from=0&to=10m&limit=20", token, |b| b["rows"].as_array().is_some_and(|r| r.len() == 20)).await;
    assert_eq!((page["next_offset"].as_u64(), page["columns"].as_array().map(Vec::len)), (Some(20), Some(5)), "vehicle, sim_time, time and two metrics: {page}");
    let next = get_until(addr, "/api/v1/vehicles/V0001/telemetry?metrics=speed_kph&to=10m&limit=20&offset=20", token, |b| b["rows"].as_array().is_some_and(|r| r.len() == 20)).await;
    assert!(next["rows"][0]["sim_time"].as_f64() > page["rows"][19]["sim_time"].as_f64(), "the next page goes on where the first stopped");
    let buckets = get_until(addr, "/api/v1/vehicles/V0001/telemetry?metrics=speed_kph&to=5m&every=1m", token, |b| b["rows"].as_array().is_some_and(|r| r.len() == 5)).await;
    assert_eq!(buckets["columns"][3], "speed_kph_min", "{buckets}");
    let (status, body) = get(addr, "/api/v1/vehicles/V0001/telemetry?metrics=warp_factor", Some(token)).await;
    assert!(status == 400 && body["error"].as_str().unwrap().contains("warp_factor"), "{status} {body}");
    let (status, body) = get(addr, "/api/v1/alerts/history?run=no-such-run", Some(token)).await;
    assert!(status == 404 && body["error"].as_str().unwrap().contains("no-such-run"), "{status} {body}");
    let (status, body) = get(addr, "/api/v1/vehicles/V0001/telemetry?from=yesterday", Some(token)).await;
    assert!(status == 400 && body["error"].as_str().unwrap().starts_with("from:"), "{status} {body}");
    child.kill().await.unwrap();
    frames_match_the_protocol_document();
}

fn telemetry(vehicle: u32, t: u64) -> aegis::model::Envelope {
    let mut metrics = aegis::model::TelemetryFrame::default();
    metrics.set(aegis::model::Metric::SpeedKph, t as f32);
    metrics.set(aegis::model::Metric::PositionXM, 100.0 + vehicle as f32);
    let body = aegis::model::Body::Telemetry(Box::new(aegis::model::Telemetry { metrics, truth: Vec::new() }));
    aegis::model::Envelope::new(VehicleId(vehicle), t, t as f64, body)
}

#[tokio::test]
async fn a_vehicle_subscription_gets_that_vehicles_telemetry_downsampled_as_asked() {
    let server = start(None).await;
    let mut socket = client(server.addr, VIEWER).await;
    for (bad, why) in [
        (json!({ "type": "subscribe", "id": "v", "topic": "vehicle" }), "needs `vehicle`"),
        (json!({ "type": "subscribe", "id": "v", "topic": "vehicle", "vehicle": "V0001", "metrics": ["warp_factor"] }), "unknown metric `warp_factor`"),
        (json!({ "type": "subscribe", "id": "v", "topic": "vehicle", "vehicle": "V0001", "max_hz": 5.0 }), "max_hz must be"),
    ] {
        let reply = request(&mut socket, bad).await;
        assert!(reply["ok"] == false && reply["error"].as_str().unwrap().contains(why), "{reply}");
    }
    let mean = request(&mut socket, json!({ "type": "subscribe", "id": "m", "topic": "vehicle", "vehicle": "V0001", "metrics": ["speed_kph"] })).await;
    assert_eq!(mean["ok"], true, "{mean}");
    let mut latest = client(server.addr, VIEWER).await;
    let reply = request(&mut latest, json!({ "type": "subscribe", "id": "l", "topic": "vehicle", "vehicle": "V0001", "metrics": ["speed_kph", "position_x_m"], "max_hz": 0.5, "mode": "latest" })).await;
    assert_eq!(reply["ok"], true, "{reply}");
    for t in 1..=10 {
        server.hub.telemetry(&telemetry(1, t));
        server.hub.telemetry(&telemetry(2, 100 + t));
    }
    // Default 0.2 Hz, mean: frames 1-5 and 6-10.
    let first = next_json(&mut socket).await;
    let second = next_json(&mut socket).await;
    assert_eq!((first["type"].as_str(), first["vehicle"].as_str(), first["samples"].as_u64()), (Some("telemetry"), Some("V0001"), Some(5)), "{first}");
    assert_eq!((first["metrics"]["speed_kph"].as_f64(), second["metrics"]["speed_kph"].as_f64()), (Some(3.0), Some(8.0)));
    assert_eq!(first["metrics"].as_object().unwrap().len(), 1, "only the metrics asked for");
    // 0.5 Hz, latest: every second frame's values.
    let speeds: Vec<f64> = {
        let mut speeds = Vec::new();
        for _ in 0..5 {
            let frame = next_json(&mut latest).await;
            assert_eq!(frame["metrics"]["position_x_m"].as_f64(), Some(101.0));
            speeds.push(frame["metrics"]["speed_kph"].as_f64().unwrap());
        }
        speeds
    };
    assert_eq!(speeds, vec![2.0, 4.0, 6.0, 8.0, 10.0]);
    // The map's positions ride on the fleet topic, and the world and metrics are served.
    server.hub.apply(&moving(&[1], 10.0));
    let (_, fleet) = get(server.addr, "/api/v1/fleet", Some(VIEWER)).await;
    assert_eq!(fleet["vehicles"]["V0001"]["position"], json!([101.0, 0.0]), "{fleet}");
    assert_eq!(fleet["vehicles"]["V0001"]["speed_kph"], json!(10.0));
    let (status, text) = raw_get(server.addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(text.contains("aegis_api_websocket_clients 2") && text.contains("aegis_fleet_vehicles 1"), "{text}");
    frames_match_the_protocol_document();
}

/// The dashboard in Debian's chromium, driven by playwright-core (tests/browser, installed by
/// .ci/setup): it loads against `aegis run --listen --store`, lists the fleet, moves its
/// markers, charts a vehicle, shows an alert when one is raised and acknowledges it from the
/// page, shows the alerted vehicle's history from the store, sends it a command that it obeys,
/// and lists events.
#[tokio::test]
async fn the_dashboard_in_a_real_browser_shows_the_fleet_acknowledges_an_alert_and_commands_a_vehicle() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let browser = root.join("tests/browser");
    assert!(browser.join("node_modules/playwright-core").exists(), "playwright-core is not installed in tests/browser: run .ci/setup");
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("history.db").display());
    let (mut child, addr, token) = listening_run(&["--scenario", "scenarios/coolant_leak.toml", "--duration", "3h", "--speed", "30", "--store", &store]).await;
    let screenshot = std::env::temp_dir().join(format!("aegis-dashboard-{}.png", std::process::id()));
    let output = tokio::time::timeout(
        Duration::from_secs(300),
        tokio::process::Command::new("node").arg(browser.join("dashboard.mjs")).arg(format!("http://{addr}/?token={token}")).arg(&screenshot).output(),
    )
    .await
    .expect("the browser test within 5 minutes")
    .expect("node, for the browser test");
    child.kill().await.unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success() && said.contains("dashboard: ok"), "{said}");
    assert!(std::fs::metadata(&screenshot).map(|m| m.len() > 10_000).unwrap_or(false), "a screenshot was saved");
    if let Ok(keep) = std::env::var("AEGIS_DASHBOARD_SCREENSHOT") {
        std::fs::copy(&screenshot, keep).unwrap();
    }
    let _ = std::fs::remove_file(&screenshot);
}
