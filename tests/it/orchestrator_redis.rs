//! The orchestrator as its own process over a real Redis: missions dispatched to a fleet
//! process, and the command lifecycle against a vehicle played by the test itself, which
//! acknowledges without obeying and drops off the network for a while.

use std::sync::Arc;
use std::time::Duration;

use aegis::bus::{Backlog, Bus, Filter, RedisBus, RedisConfig};
use aegis::model::{
    Body, CommandAck, CommandAction, CommandOutcome, Envelope, Event, EventKind, Heartbeat, MessageKind, METRICS, Metric, RuleDecision, Telemetry, TelemetryFrame,
    VehicleId, VehicleStatus,
};

use crate::redis_server::{Aegis, RedisServer, one_paced_test_at_a_time, wait_until};

const LIMIT: Duration = Duration::from_secs(60);

fn n(summary: &serde_json::Value, path: &str) -> u64 {
    summary.pointer(path).and_then(serde_json::Value::as_u64).unwrap_or_else(|| panic!("{path} missing in {summary}"))
}

fn start_orchestrator(dir: &std::path::Path, server: &RedisServer, extra: &[&str]) -> Aegis {
    let url = server.url();
    let mut args = vec!["orchestrator", "--redis", &url];
    args.extend_from_slice(extra);
    let process = Aegis::start(dir, "orchestrator", &args);
    wait_until(LIMIT, "the orchestrator reads", || process.log().contains("reading 16 partitions"));
    process
}

#[test]
fn the_orchestrator_over_redis_dispatches_missions_the_fleet_completes() {
    let _turn = one_paced_test_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start();
    let centre = start_orchestrator(dir.path(), &server, &["--scenario", "scenarios/deliveries.toml"]);
    let driven = Aegis::start(dir.path(), "fleet", &["fleet", "--scenario", "scenarios/deliveries.toml", "--redis", &server.url(), "--speed", "300", "--duration", "1h"]).finish();
    centre.signal("TERM");
    let summary = centre.finish();
    assert!(n(&summary, "/missions_generated") >= 30, "{summary}");
    assert!(n(&summary, "/missions_completed") >= 10, "{summary}");
    assert!(n(&driven, "/commands_handled") >= n(&summary, "/missions_completed"), "every mission came as a command: {driven}");
    // Over Redis at 300x a vehicle may already be on its way home when its assignment
    // arrives; it refuses, and the mission goes back in the queue.
    assert!(n(&summary, "/commands_failed") <= n(&summary, "/missions_reassigned"), "{summary}");
    assert_eq!(n(&summary, "/missions_missed"), 0, "{summary}");
}

/// Plays vehicle V0007: telemetry each simulated second, a heartbeat every five, its oil
/// pressure sensor stuck, and whatever speed and status the test says, whatever it is told.
struct PlayedVehicle {
    bus: Arc<RedisBus>,
    commands: aegis::bus::Subscription,
    seq: u64,
    at: f64,
    speed_kph: f32,
    status: VehicleStatus,
}

const ID: VehicleId = VehicleId(7);

impl PlayedVehicle {
    fn send(&mut self, body: Body) {
        self.bus.publish(Envelope::new(ID, self.seq, self.at, body));
        self.seq += 1;
    }

    /// One simulated second.
    fn second(&mut self) {
        self.at += 1.0;
        let mut metrics = TelemetryFrame::default();
        for (i, spec) in METRICS.iter().enumerate() {
            // Mid-range and never exactly repeating, like real noisy sensors.
            metrics.values[i] = spec.min + (spec.max - spec.min) * (0.4 + 0.0001 * ((self.seq * 7 + i as u64) % 997) as f32);
        }
        let wobble = (self.at % 7.0) as f32 * 0.1;
        metrics.set(Metric::AmbientTempC, 15.0 + wobble);
        metrics.set(Metric::SpeedKph, self.speed_kph + wobble);
        metrics.set(Metric::OilPressureKpa, 312.5);
        self.send(Body::Telemetry(Box::new(Telemetry { metrics, truth: Vec::new() })));
        if (self.at as u64).is_multiple_of(5) {
            self.send(Body::Heartbeat(Heartbeat { status: self.status, uptime_s: self.at }));
        }
    }

    /// Drives on, one simulated second per poll, until a command arrives; returns it.
    fn until_command(&mut self, what: &str) -> (String, CommandAction) {
        let mut received = None;
        wait_until(LIMIT, what, || {
            self.second();
            received = self.commands.try_iter().find_map(|e| match e.body {
                Body::Command(c) => Some((c.command_id, c.action)),
                _ => None,
            });
            received.is_some()
        });
        received.unwrap()
    }

    fn accept(&mut self, command_id: String) {
        self.send(Body::from(CommandAck { command_id, outcome: CommandOutcome::Accepted, detail: None }));
    }
}

fn alerts(url: &str) -> Vec<serde_json::Value> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aegis")).args(["alerts", "list", "--all", "--json", "--redis", url]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn an_unobeyed_command_fails_and_a_command_for_an_offline_vehicle_waits_until_it_returns() {
    let _turn = one_paced_test_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start();
    let url = server.url();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        r#"
[[rule]]
name = "a lost vehicle comes home once it is back"
when = { alert_type = "connectivity_lost" }
action = "return_to_depot"

[[rule]]
name = "major faults slow the vehicle"
when = { severity = "major" }
action = "reduce_speed"
max_kph = 40
"#,
    )
    .unwrap();
    let centre = start_orchestrator(dir.path(), &server, &["--offline-after", "2s", "--policy", policy.to_str().unwrap()]);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let bus = Arc::new(RedisBus::new(RedisConfig::new(url.clone(), "vehicle-V0007"), runtime.handle().clone()).unwrap());
    let commands = bus.subscribe(Filter { kinds: vec![MessageKind::Command], vehicle: Some(ID) }, Backlog::Lossless);
    let mut vehicle = PlayedVehicle { bus, commands, seq: 0, at: 0.0, speed_kph: 90.0, status: VehicleStatus::EnRoute };

    // A major brake alert: the centre asks for 40 km/h; the vehicle says yes and keeps to 90.
    vehicle.second();
    vehicle.send(Body::from(Event { event: EventKind::RuleTriggered { rule: aegis::model::RuleId::BrakePadLow, metric: "brake_pad_front_mm".into(), value: 2.5, decision: RuleDecision::DeratePower } }));
    let (slow_down, action) = vehicle.until_command("the centre asks the vehicle to slow down");
    assert_eq!(action, CommandAction::ReduceSpeed { max_kph: 40.0 });
    vehicle.accept(slow_down);
    // Past the verification window, and past thirty readings of the stuck sensor.
    for _ in 0..150 {
        vehicle.second();
    }
    wait_until(LIMIT, "the stuck oil-pressure sensor is a data-quality alert", || {
        alerts(&url).iter().any(|a| a["key"]["alert_type"] == "sensor_stuck:oil_pressure_kpa" && a["active"] == true)
    });

    // Silence: offline, the sensor alert grouped under the connectivity alert, and the command
    // the policy asks for held back.
    wait_until(LIMIT, "the silent vehicle's sensor alert is suppressed", || {
        let alerts = alerts(&url);
        let connectivity = alerts.iter().find(|a| a["key"]["alert_type"] == "connectivity_lost" && a["active"] == true);
        let sensor = alerts.iter().find(|a| a["key"]["alert_type"] == "sensor_stuck:oil_pressure_kpa");
        connectivity.zip(sensor).is_some_and(|(c, s)| s["suppressed_by"] == c["id"])
    });
    assert!(vehicle.commands.try_iter().next().is_none(), "nothing is sent to an offline vehicle");

    // Back: the held command arrives, the vehicle obeys, and the centre sees it heading home.
    let (go_home, action) = vehicle.until_command("the held command is delivered on return");
    assert_eq!(action, CommandAction::ReturnToDepot);
    vehicle.accept(go_home);
    vehicle.status = VehicleStatus::Returning;
    vehicle.send(Body::Heartbeat(Heartbeat { status: VehicleStatus::Returning, uptime_s: vehicle.at }));
    for _ in 0..20 {
        vehicle.second();
    }
    assert!(vehicle.bus.flush(Duration::from_secs(10)));
    wait_until(LIMIT, "the orchestrator has read everything", || {
        alerts(&url).iter().any(|a| a["key"]["alert_type"] == "connectivity_lost" && a["active"] == false)
    });

    centre.signal("TERM");
    let summary = centre.finish();
    assert_eq!(n(&summary, "/commands_failed"), 1, "the speed never dropped: {summary}");
    assert_eq!(n(&summary, "/commands_succeeded"), 1, "the vehicle headed home: {summary}");
    assert_eq!(n(&summary, "/went_offline"), 1, "{summary}");
    let sensor = alerts(&url).into_iter().find(|a| a["key"]["alert_type"] == "sensor_stuck:oil_pressure_kpa").unwrap();
    assert!(sensor["suppressed_by"].is_null() && sensor["active"] == true, "shown again once the vehicle is back: {sensor}");
}

/// The records the centre keeps in hash `key`, by id.
fn kept(server: &RedisServer, key: &str) -> std::collections::BTreeMap<String, serde_json::Value> {
    let stored: Vec<(String, String)> = redis::cmd("HGETALL").arg(key).query(&mut server.connection()).unwrap();
    stored.into_iter().map(|(id, json)| (id, serde_json::from_str(&json).unwrap())).collect()
}

#[test]
fn an_orchestrator_killed_and_restarted_keeps_its_commands_and_missions_in_flight() {
    let _turn = one_paced_test_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start();
    let scenario = ["--scenario", "scenarios/deliveries.toml"];
    let first = start_orchestrator(dir.path(), &server, &scenario);
    let fleet = Aegis::start(dir.path(), "fleet", &["fleet", "--scenario", "scenarios/deliveries.toml", "--redis", &server.url(), "--speed", "60", "--duration", "40m"]);
    let under_way = |missions: &std::collections::BTreeMap<String, serde_json::Value>| -> Vec<String> {
        missions.iter().filter(|(_, m)| m["state"] == "in_progress" || m["state"] == "assigned").map(|(id, _)| id.clone()).collect()
    };
    wait_until(LIMIT, "missions are under way and a command is in flight", || {
        let in_flight = kept(&server, "aegis:commands").values().any(|c| !["succeeded", "failed", "timeout", "expired"].contains(&c["state"].as_str().unwrap()));
        in_flight && under_way(&kept(&server, "aegis:missions")).len() >= 2
    });
    first.signal("KILL");
    drop(first);
    let missions_at_kill = kept(&server, "aegis:missions");
    let commands_at_kill = kept(&server, "aegis:commands");
    let in_flight: Vec<String> = commands_at_kill.iter().filter(|(_, c)| !["succeeded", "failed", "timeout", "expired"].contains(&c["state"].as_str().unwrap())).map(|(id, _)| id.clone()).collect();
    let held = under_way(&missions_at_kill);

    let second = start_orchestrator(dir.path(), &server, &scenario);
    assert!(second.log().contains("taking back an earlier run's state"), "{}", second.log());
    fleet.finish();
    second.signal("TERM");
    let summary = second.finish();
    assert!(n(&summary, "/restored/missions_under_way") >= held.len() as u64, "{summary}");
    assert!(n(&summary, "/restored/commands_in_flight") >= 1, "{summary}");

    let missions = kept(&server, "aegis:missions");
    let commands = kept(&server, "aegis:commands");
    // Every command in flight at the kill was followed to an end, and none acted twice: the
    // vehicles acknowledge a repeat without applying it again.
    for id in &in_flight {
        let state = commands[id]["state"].as_str().unwrap();
        assert!(["succeeded", "failed", "timeout", "expired"].contains(&state), "{id} left {state}: {}", commands[id]);
    }
    // The missions under way at the kill were finished by their vehicles, not handed out anew.
    let completed = held.iter().filter(|id| missions[*id]["state"] == "completed").count();
    assert!(completed >= 1, "of {held:?}: {:?}", held.iter().map(|id| &missions[id]).collect::<Vec<_>>());
    for id in held.iter().filter(|id| missions[*id]["state"] == "completed" && missions[*id]["assignments"] == missions_at_kill[*id]["assignments"]) {
        let vehicle = missions_at_kill[id]["vehicle"].as_str().unwrap();
        let history = missions[id]["history"].to_string();
        assert!(history.contains(&format!("completed by {vehicle}")), "{id} finished by the vehicle that held it: {history}");
    }
    // Ids continue: one record per id, numbered without a gap.
    let highest = missions.keys().map(|id| id[1..].parse::<usize>().unwrap()).max().unwrap();
    assert_eq!(highest, missions.len(), "mission ids continue after the restart");
    let highest = commands.keys().map(|id| id[1..].parse::<usize>().unwrap()).max().unwrap();
    assert_eq!(highest, commands.len(), "command ids continue after the restart");
}

#[test]
fn the_orchestrator_over_redis_serves_the_api_and_an_operators_command_reaches_the_fleet() {
    use crate::api::{client, closed_with, get, next_json, subscribe};
    use futures_util::SinkExt;
    let _turn = one_paced_test_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start();
    let centre = start_orchestrator(dir.path(), &server, &["--scenario", "scenarios/coolant_leak.toml", "--listen", "127.0.0.1:0"]);
    let mut url = String::new();
    wait_until(LIMIT, "the API prints its URL", || {
        url = centre.log().lines().find_map(|line| line.find("http://").filter(|_| line.contains("?token=")).map(|at| line[at..].trim().to_owned())).unwrap_or_default();
        !url.is_empty()
    });
    let (addr, token) = url.trim_start_matches("http://").split_once("/?token=").unwrap();
    let (addr, token): (std::net::SocketAddr, String) = (addr.parse().unwrap(), token.to_owned());
    let _fleet = Aegis::start(dir.path(), "fleet", &["fleet", "--scenario", "scenarios/coolant_leak.toml", "--redis", &server.url(), "--speed", "10", "--duration", "20m"]);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut socket = runtime.block_on(async {
        let mut socket = client(addr, &token).await;
        subscribe(&mut socket, "fleet", None).await;
        while next_json(&mut socket).await["data"]["vehicles"]["V0002"]["status"] != "en_route" {}
        subscribe(&mut socket, "commands", None).await;
        let frame = serde_json::json!({ "type": "command", "id": "slow", "vehicle": "V0002", "command": { "action": "reduce_speed", "max_kph": 20 } });
        socket.send(tokio_tungstenite::tungstenite::Message::text(frame.to_string())).await.unwrap();
        // Through the centre over Redis to the vehicle in the fleet process and back: the
        // command succeeds once the vehicle's telemetry shows it at the cap.
        let mut issued = None::<String>;
        'waiting: loop {
            let frame = next_json(&mut socket).await;
            if frame["type"] == "reply" {
                assert_eq!((frame["id"].as_str(), frame["ok"].as_bool()), (Some("slow"), Some(true)), "{frame}");
                issued = frame["command"].as_str().map(str::to_owned);
            }
            for command in frame["data"]["commands"].as_array().into_iter().flatten() {
                if command["id"].as_str() == issued.as_deref() {
                    assert!(!matches!(command["state"].as_str(), Some("failed" | "timeout" | "expired")), "{command}");
                    if command["state"] == "succeeded" {
                        break 'waiting;
                    }
                }
            }
        }
        let (status, world) = get(addr, "/api/v1/world", Some(&token)).await;
        assert!(status == 200 && world["depots"].as_array().is_some_and(|d| !d.is_empty()), "the scenario's world: {world}");
        assert_eq!(get(addr, "/api/v1/runs", Some(&token)).await.0, 503, "no --store: no history");
        socket
    });
    centre.signal("TERM");
    let (code, reason) = runtime.block_on(closed_with(&mut socket));
    assert_eq!((code, reason.as_str()), (1001, "the server is shutting down"));
    let summary = centre.finish();
    assert!(n(&summary, "/commands_succeeded") >= 1, "{summary}");
    crate::api::frames_match_the_protocol_document();
}
