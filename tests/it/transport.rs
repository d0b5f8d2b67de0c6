//! The Redis transport against real redis-server instances, one per test: round trips, sharded
//! fleets, a server killed mid-run, a consumer killed mid-run, an outage at start, malformed
//! entries and presence.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aegis::bus::keys::{Family, Keys};
use aegis::bus::{Backlog, Bus, Filter, RedisBus, RedisConfig};
use aegis::model::{Body, Envelope, VehicleId};

use crate::messages::every_body;
use crate::redis_server::{Aegis, RedisServer, one_paced_test_at_a_time, wait_until};

const LIMIT: Duration = Duration::from_secs(60);

fn n(summary: &serde_json::Value, path: &str) -> u64 {
    summary.pointer(path).and_then(serde_json::Value::as_u64).unwrap_or_else(|| panic!("{path} missing in {summary}"))
}

fn fleet(dir: &std::path::Path, name: &str, server: &RedisServer, extra: &[&str]) -> Aegis {
    let url = server.url();
    let mut args = vec!["fleet", "--scenario", "scenarios/demo.toml", "--redis", &url];
    args.extend_from_slice(extra);
    Aegis::start(dir, name, &args)
}

fn orchestrator(dir: &std::path::Path, name: &str, server: &RedisServer, extra: &[&str]) -> Aegis {
    let url = server.url();
    let mut args = vec!["orchestrator", "--redis", &url, "--consumer", name];
    args.extend_from_slice(extra);
    let process = Aegis::start(dir, name, &args);
    // Signals are handled once it runs; wait for that before anyone sends one.
    wait_until(LIMIT, "the orchestrator reads", || process.log().contains("reading 16 partitions"));
    process
}

/// Stops an orchestrator with SIGTERM and returns its summary.
fn stop(process: Aegis) -> serde_json::Value {
    process.signal("TERM");
    process.finish()
}

/// The uplink streams of all partitions under prefix `aegis`.
fn uplinks() -> Vec<String> {
    Keys::new("aegis").streams(Family::Uplink)
}

fn group_pending(server: &RedisServer) -> u64 {
    let mut connection = server.connection();
    uplinks()
        .iter()
        .map(|stream| {
            let reply: redis::Value = redis::cmd("XPENDING").arg(stream).arg("orchestrator").query(&mut connection).unwrap();
            match reply {
                redis::Value::Array(parts) => match parts.first() {
                    Some(redis::Value::Int(count)) => *count as u64,
                    _ => 0,
                },
                _ => 0,
            }
        })
        .sum()
}

/// Entries the orchestrator group has been handed, over all partitions.
fn group_read(server: &RedisServer) -> u64 {
    let mut connection = server.connection();
    uplinks()
        .iter()
        .map(|stream| {
            let groups: redis::streams::StreamInfoGroupsReply = redis::cmd("XINFO").arg("GROUPS").arg(stream).query(&mut connection).unwrap();
            groups.groups.iter().filter(|g| g.name == "orchestrator").map(|g| g.entries_read.unwrap_or(0) as u64).sum::<u64>()
        })
        .sum()
}

#[test]
fn every_message_kind_round_trips_over_redis() {
    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let bus = RedisBus::new(RedisConfig::new(server.url(), "test"), runtime.handle().clone()).unwrap();
    let subscription = bus.subscribe(Filter::all(), Backlog::Lossless);
    let sent: Vec<Envelope> = every_body().into_iter().enumerate().map(|(seq, body)| Envelope::new(VehicleId(3), seq as u64, 12.5, body)).collect();
    for envelope in &sent {
        bus.publish(envelope.clone());
    }
    assert!(bus.flush(LIMIT), "redis confirmed every message");
    let mut received: Vec<Envelope> = (0..sent.len()).map(|_| subscription.receiver().recv_timeout(LIMIT).expect("every message comes back")).collect();
    received.sort_by_key(|e| e.seq);
    assert_eq!(received, sent);
    // The documented layout: V0003 is in partition 2; one stream per direction.
    let mut connection = server.connection();
    let len = |key: &str, connection: &mut redis::Connection| redis::cmd("XLEN").arg(key).query::<u64>(connection).unwrap();
    let uplink = sent.iter().filter(|e| matches!(e.body, Body::Telemetry(_) | Body::Heartbeat(_) | Body::Event(_) | Body::CommandAck(_))).count() as u64;
    assert_eq!(len("aegis:{p02}:uplink", &mut connection), uplink);
    assert_eq!(len("aegis:{p02}:downlink", &mut connection), 3, "the three commands");
    assert_eq!(len("aegis:{p02}:central", &mut connection), 2, "the alert and the presence change");
    let stats = bus.stats();
    assert_eq!((stats.published, stats.acknowledged, stats.dropped), (sent.len() as u64, sent.len() as u64, 0));
}

#[test]
fn two_fleet_shards_and_an_orchestrator_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start();
    let center = orchestrator(dir.path(), "orchestrator", &server, &[]);
    let common = ["--speed", "max", "--duration", "10m"];
    let first = fleet(dir.path(), "shard1", &server, &[&common[..], &["--shard", "1/2"]].concat());
    let second = fleet(dir.path(), "shard2", &server, &[&common[..], &["--shard", "2/2"]].concat());
    let (first, second) = (first.finish(), second.finish());
    let summary = stop(center);
    let published = n(&first, "/bus/published") + n(&second, "/bus/published");
    assert_eq!(n(&first, "/bus/acknowledged") + n(&second, "/bus/acknowledged"), published);
    assert_eq!(n(&summary, "/vehicles_seen"), 24);
    assert_eq!(n(&summary, "/messages"), published);
    assert_eq!((n(&summary, "/gaps"), n(&summary, "/duplicates_dropped"), n(&summary, "/malformed")), (0, 0, 0));

    // The shards together send exactly what the whole fleet sends in one process.
    let whole = Aegis::start(dir.path(), "whole", &["run", "--headless", "--no-orchestrator", "--scenario", "scenarios/demo.toml", "--speed", "max", "--duration", "10m"]).finish();
    assert_eq!(n(&whole, "/bus/published"), published);
    assert_eq!(n(&whole, "/telemetry_messages"), n(&first, "/telemetry_messages") + n(&second, "/telemetry_messages"));
}

#[test]
fn redis_killed_mid_run_and_restarted_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = RedisServer::start();
    let center = orchestrator(dir.path(), "orchestrator", &server, &[]);
    let producer = fleet(dir.path(), "fleet", &server, &["--speed", "60", "--duration", "6m"]);
    wait_until(LIMIT, "the fleet has published for a while", || server.entries(Family::Uplink) >= 2000);
    server.kill();
    server.restart();
    let produced = producer.finish();
    let summary = stop(center);
    let published = n(&produced, "/bus/published");
    assert_eq!(n(&produced, "/bus/acknowledged"), published, "every message confirmed after the restart");
    assert!(n(&produced, "/bus/retried") + n(&produced, "/bus/buffered") > 0, "the outage was felt: {produced}");
    // Exactly once after dedup: every sequence number of every vehicle, no gaps.
    assert_eq!(n(&summary, "/sequence_numbers_seen"), published);
    assert_eq!(n(&summary, "/gaps"), 0);
    assert_eq!(n(&summary, "/vehicles_seen"), 24);
}

#[test]
fn a_producer_outage_at_start_is_buffered_spilled_and_replayed_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = RedisServer::start();
    server.kill();
    let spill = dir.path().join("spill");
    let producer = fleet(
        dir.path(),
        "fleet",
        &server,
        &["--vehicles", "4", "--speed", "max", "--duration", "3m", "--buffer", "100", "--spill-dir", spill.to_str().unwrap(), "--flush-timeout", "60s"],
    );
    wait_until(LIMIT, "the fleet notices redis is down", || producer.log().contains("unreachable"));
    server.restart();
    let produced = producer.finish();
    let published = n(&produced, "/bus/published");
    assert_eq!(n(&produced, "/bus/acknowledged"), published);
    assert!(n(&produced, "/bus/buffered") > 0 && n(&produced, "/bus/spilled") > 0, "memory, then disk: {produced}");
    assert_eq!(n(&produced, "/bus/dropped"), 0);
    // Replayed in order: each vehicle's sequence numbers rise along its stream.
    let mut connection = server.connection();
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    let mut entries = 0;
    for stream in uplinks() {
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE").arg(stream).arg("-").arg("+").query(&mut connection).unwrap();
        for entry in reply.ids {
            let data: String = entry.get("data").unwrap();
            let envelope = Envelope::from_json(&data).unwrap();
            let previous = last.insert(envelope.vehicle_id.to_string(), envelope.seq);
            assert!(previous.is_none_or(|p| p < envelope.seq), "{} out of order after {previous:?}", envelope.seq);
            entries += 1;
        }
    }
    assert_eq!(entries, published);
    let summary = stop(orchestrator(dir.path(), "orchestrator", &server, &[]));
    assert_eq!((n(&summary, "/messages"), n(&summary, "/gaps")), (published, 0));
}

#[test]
fn a_killed_consumer_is_replaced_and_its_pending_entries_reclaimed() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start();
    let producer = fleet(dir.path(), "fleet", &server, &["--speed", "60", "--duration", "5m"]);
    wait_until(LIMIT, "the fleet has published for a while", || server.entries(Family::Uplink) >= 1500);
    // A consumer of the group that read entries and died before acknowledging them.
    let mut connection = server.connection();
    let streams = uplinks();
    for stream in &streams {
        let _: () = redis::cmd("XGROUP").arg("CREATE").arg(stream).arg("orchestrator").arg("0").query(&mut connection).unwrap();
    }
    let _: redis::Value = redis::cmd("XREADGROUP").arg("GROUP").arg("orchestrator").arg("ghost").arg("COUNT").arg(50).arg("STREAMS").arg(&streams).arg(vec![">"; 16]).query(&mut connection).unwrap();
    let ghost_pending = group_pending(&server);
    assert!(ghost_pending > 0);
    // A real orchestrator, killed mid-run.
    let first = orchestrator(dir.path(), "first", &server, &["--claim-idle", "1h"]);
    let at_kill = server.entries(Family::Uplink);
    wait_until(LIMIT, "the first orchestrator has processed some", || group_read(&server) > at_kill);
    first.signal("KILL");
    drop(first);
    let second = orchestrator(dir.path(), "second", &server, &["--claim-idle", "500ms"]);
    let produced = producer.finish();
    wait_until(LIMIT, "nothing is left pending", || group_pending(&server) == 0);
    let summary = stop(second);
    assert!(n(&summary, "/reclaimed") >= ghost_pending, "the ghost's entries were taken over: {summary}");
    // Together the two runs processed every sequence number once.
    assert_eq!(n(&summary, "/sequence_numbers_seen"), n(&produced, "/bus/published"));
    assert_eq!(n(&summary, "/gaps"), 0);
}

#[test]
fn a_restarted_producer_continues_its_sequence_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start();
    let args = ["--vehicles", "4", "--speed", "max", "--duration", "2m"];
    let first = fleet(dir.path(), "first", &server, &args).finish();
    let second = fleet(dir.path(), "second", &server, &args).finish();
    let summary = stop(orchestrator(dir.path(), "orchestrator", &server, &[]));
    let published = n(&first, "/bus/published") + n(&second, "/bus/published");
    assert_eq!((n(&summary, "/messages"), n(&summary, "/duplicates_dropped"), n(&summary, "/gaps")), (published, 0, 0));
}

#[test]
fn malformed_entries_are_dead_lettered_counted_and_logged_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start();
    let center = orchestrator(dir.path(), "orchestrator", &server, &[]);
    let good = Envelope::new(VehicleId(1), 0, 1.0, every_body().swap_remove(1));
    let good_json = good.to_json();
    let edit = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut value: serde_json::Value = serde_json::from_str(&good_json).unwrap();
        edit(&mut value);
        value.to_string()
    };
    let bad: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("malformed message", vec![("kind", "heartbeat".into()), ("data", "{not json".into())]),
        ("protocol", vec![("data", edit(&|v| v["protocol"] = 99.into()))]),
        ("unknown variant `teleport`", vec![("data", edit(&|v| v["kind"] = "teleport".into()))]),
        ("oversized", vec![("data", format!("{{\"pad\":\"{}\"}}", "x".repeat(70_000)))]),
        ("wrong vehicle id", vec![("data", edit(&|v| v["vehicle_id"] = "V0002".into()))]),
        ("no `data` field", vec![("payload", good_json.clone())]),
    ];
    let mut connection = server.connection();
    let mut ids = Vec::new();
    for (_, fields) in &bad {
        let id: String = redis::cmd("XADD").arg("aegis:{p00}:uplink").arg("*").arg(fields).query(&mut connection).unwrap();
        ids.push(id);
    }
    let _: String = redis::cmd("XADD").arg("aegis:{p00}:uplink").arg("*").arg("kind").arg("heartbeat").arg("data").arg(&good_json).query(&mut connection).unwrap();
    wait_until(LIMIT, "every bad entry is dead-lettered", || server.entries(Family::DeadLetter) == bad.len() as u64);
    let log = center.log();
    let summary = stop(center);
    assert_eq!((n(&summary, "/malformed"), n(&summary, "/messages")), (bad.len() as u64, 1), "{summary}");
    let letters: redis::streams::StreamRangeReply = redis::cmd("XRANGE").arg("aegis:{p00}:deadletter").arg("-").arg("+").query(&mut connection).unwrap();
    for ((expected, _), (letter, id)) in bad.iter().zip(letters.ids.iter().zip(&ids)) {
        let reason: String = letter.get("reason").unwrap();
        assert!(reason.contains(expected), "{reason} should mention {expected}");
        assert_eq!(letter.get::<String>("id").as_ref(), Some(id));
        assert_eq!(log.matches(id.as_str()).count(), 1, "{id} logged once:\n{log}");
    }
    assert_eq!(group_pending(&server), 0, "bad entries are acknowledged, not left pending");
}

#[test]
fn presence_goes_offline_and_back_online() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start();
    let center = orchestrator(dir.path(), "orchestrator", &server, &["--offline-after", "2s"]);
    let url = server.url();
    let agent = Aegis::start(dir.path(), "vehicle", &["vehicle", "--scenario", "scenarios/demo.toml", "--id", "V0003", "--redis", &url, "--speed", "20", "--duration", "1h"]);
    let presence = |connection: &mut redis::Connection| -> Vec<bool> {
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE").arg("aegis:{p02}:central").arg("-").arg("+").query(connection).unwrap();
        // The central stream carries alerts too (going offline raises one).
        reply
            .ids
            .iter()
            .filter_map(|entry| match Envelope::from_json(&entry.get::<String>("data").unwrap()).unwrap().body {
                Body::Presence(p) => Some(p.online),
                Body::Alert(_) => None,
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    };
    let mut connection = server.connection();
    // Under load a busy machine may starve the agent for a moment; only the changes the
    // signals cause are required, in alternation.
    wait_until(LIMIT, "the vehicle is online", || presence(&mut connection).last() == Some(&true));
    agent.signal("STOP");
    wait_until(LIMIT, "the silent vehicle is offline", || presence(&mut connection).last() == Some(&false));
    agent.signal("CONT");
    wait_until(LIMIT, "the vehicle is back online", || presence(&mut connection).last() == Some(&true));
    agent.signal("TERM");
    let driven = agent.finish();
    let summary = stop(center);
    let changes = presence(&mut connection);
    assert!(changes.len() >= 3 && changes.windows(2).all(|w| w[0] != w[1]) && changes[0], "{changes:?}");
    assert_eq!(n(&summary, "/went_offline") + n(&summary, "/came_online"), changes.len() as u64);
    assert_eq!(n(&summary, "/messages"), n(&driven, "/bus/published"));
    assert_eq!(n(&summary, "/vehicles_seen"), 1);
}

#[test]
fn the_bus_keeps_publishing_while_redis_is_away() {
    // The simulation side never waits: publish returns at once with no server at all.
    let mut server = RedisServer::start();
    server.kill();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let mut config = RedisConfig::new(server.url(), "test");
    let spill = tempfile::tempdir().unwrap();
    config.spill_dir = spill.path().to_owned();
    config.memory_buffer = 10;
    let bus = Arc::new(RedisBus::new(config, runtime.handle().clone()).unwrap());
    for seq in 0..50 {
        bus.publish(Envelope::new(VehicleId(1), seq, seq as f64, every_body().swap_remove(1)));
    }
    assert!(!bus.flush(Duration::from_millis(300)), "nothing can be confirmed yet");
    server.restart();
    assert!(bus.flush(LIMIT));
    let stats = bus.stats();
    assert_eq!((stats.acknowledged, stats.dropped, stats.backlog), (50, 0, 0));
    assert!(stats.spilled > 0);
    assert_eq!(server.entries(Family::Uplink), 50);
}

#[test]
fn a_command_over_redis_reaches_the_vehicle_and_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start();
    let url = server.url();
    let agent = Aegis::start(dir.path(), "vehicle", &["vehicle", "--scenario", "scenarios/demo.toml", "--id", "V0003", "--redis", &url, "--speed", "20", "--duration", "1h"]);
    // Once it publishes, its command subscription exists (it is made before the first step).
    wait_until(LIMIT, "the vehicle publishes", || server.entries(Family::Uplink) > 0);
    let command = Envelope::new(
        VehicleId(3),
        0,
        0.0,
        Body::from(aegis::model::Command { command_id: "c-42".into(), action: aegis::model::CommandAction::ReduceSpeed { max_kph: 30.0 }, ttl_s: 1e9 }),
    );
    let mut connection = server.connection();
    let _: String = redis::cmd("XADD").arg("aegis:{p02}:downlink").arg("*").arg("kind").arg("command").arg("data").arg(command.to_json()).query(&mut connection).unwrap();
    let acknowledged = |connection: &mut redis::Connection| -> Option<aegis::model::CommandAck> {
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE").arg("aegis:{p02}:uplink").arg("-").arg("+").query(connection).unwrap();
        reply.ids.iter().find_map(|entry| match Envelope::from_json(&entry.get::<String>("data")?).ok()?.body {
            Body::CommandAck(ack) if ack.command_id == "c-42" => Some(*ack),
            _ => None,
        })
    };
    wait_until(LIMIT, "the vehicle acknowledges the command", || acknowledged(&mut connection).is_some());
    assert_eq!(acknowledged(&mut connection).unwrap().outcome, aegis::model::CommandOutcome::Accepted);
    agent.signal("TERM");
    let summary = agent.finish();
    assert_eq!(n(&summary, "/commands_handled"), 1);
}

#[test]
fn the_orchestrator_over_redis_raises_alerts_commands_the_fleet_and_answers_operators() {
    let _turn = one_paced_test_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start();
    let center = orchestrator(dir.path(), "orchestrator", &server, &[]);
    let url = server.url();
    let produced = Aegis::start(dir.path(), "fleet", &["fleet", "--scenario", "scenarios/coolant_leak.toml", "--redis", &url, "--speed", "400", "--duration", "1h"]).finish();

    // The operator's view and operations, against the running orchestrator.
    let aegis = |args: &[&str]| std::process::Command::new(env!("CARGO_BIN_EXE_aegis")).args(args).args(["--redis", &url]).output().unwrap();
    let listed = |all: bool| -> Vec<serde_json::Value> {
        let mut args = vec!["alerts", "list", "--json"];
        if all {
            args.push("--all");
        }
        let out = aegis(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    wait_until(LIMIT, "the orchestrator has published its alerts", || !listed(false).is_empty());
    let first = listed(false)[0]["id"].as_str().unwrap().to_owned();
    let acked = aegis(&["alerts", "ack", &first, "--actor", "ana"]);
    assert!(acked.status.success(), "{}", String::from_utf8_lossy(&acked.stderr));
    let assigned = aegis(&["alerts", "assign", &first, "--to", "ben"]);
    assert!(assigned.status.success(), "{}", String::from_utf8_lossy(&assigned.stderr));
    for args in [&["alerts", "comment", &first, "--text", "parts ordered"][..], &["alerts", "shelve", &first, "--for", "30m"][..]] {
        let out = aegis(args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let unknown = aegis(&["alerts", "clear", "A999999"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no alert `A999999`"));
    wait_until(LIMIT, "the operations show", || {
        listed(true).iter().any(|a| {
            a["id"] == first.as_str() && a["acknowledged"] == true && a["assignee"] == "ben" && a["notes"][0]["text"] == "parts ordered" && a["shelved_until"].is_number()
        })
    });
    let status = aegis(&["fleet", "status"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["fleet"]["vehicles"], 4);

    let summary = stop(center);
    assert!(n(&summary, "/alerts_raised") >= 2, "both leaking vehicles alert: {summary}");
    assert!(n(&summary, "/commands_issued") >= 1 && n(&summary, "/commands_succeeded") >= 1, "{summary}");
    assert!(n(&produced, "/commands_handled") >= 1, "the vehicles received and applied commands: {produced}");

    // A restarted orchestrator keeps the alerts and what operators did to them; new alerts
    // get new ids instead of overwriting the kept ones.
    let before = listed(true);
    let center = orchestrator(dir.path(), "orchestrator", &server, &[]);
    Aegis::start(dir.path(), "fleet-again", &["fleet", "--scenario", "scenarios/coolant_leak.toml", "--redis", &url, "--speed", "400", "--duration", "1h"]).finish();
    stop(center);
    let after = listed(true);
    for kept in &before {
        let now = after.iter().find(|a| a["id"] == kept["id"]).unwrap_or_else(|| panic!("{} lost", kept["id"]));
        assert_eq!((&now["key"], &now["created_at"], &now["acknowledged"]), (&kept["key"], &kept["created_at"], &kept["acknowledged"]));
    }
    // The second run's alerts show up as new alerts or as further occurrences of kept ones.
    let occurrences = |alerts: &[serde_json::Value]| alerts.iter().map(|a| a["occurrences"].as_u64().unwrap()).sum::<u64>();
    assert!(occurrences(&after) > occurrences(&before), "the second run's alerts count: {before:?} then {after:?}");
    let mut ids: Vec<&str> = after.iter().map(|a| a["id"].as_str().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), after.len(), "ids are unique");
}

#[test]
fn a_producer_restarted_while_redis_is_down_continues_its_numbering_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = RedisServer::start();
    let args = ["--vehicles", "4", "--speed", "max", "--duration", "2m", "--flush-timeout", "3s"];
    let first = fleet(dir.path(), "first", &server, &args).finish();
    server.kill();
    // Redis is down for the whole second run: it can only keep what it sends on disk.
    let (status, log) = fleet(dir.path(), "second", &server, &args).exit();
    assert!(!status.success() && log.contains("left unsent"), "the second run says it kept its messages: {log}");
    assert!(log.contains("continuing from this producer's own record") || log.contains("continuing the sequence numbers"), "{log}");
    let second: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("second.json")).unwrap()).unwrap();
    assert_eq!(n(&second, "/bus/dropped"), 0);
    server.restart();
    // The third run sends what the second left, then its own.
    let third = fleet(dir.path(), "third", &server, &args).finish();
    assert!(std::fs::read_to_string(dir.path().join("third.log")).unwrap().contains("left unsent are sent first"));
    let summary = stop(orchestrator(dir.path(), "orchestrator", &server, &[]));
    let published: u64 = [&first, &second, &third].iter().map(|s| n(s, "/bus/published")).sum();
    assert_eq!((n(&summary, "/messages"), n(&summary, "/duplicates_dropped"), n(&summary, "/gaps")), (published, 0, 0), "{summary}");
}

/// A spill file that cannot grow (here its limit; a full disk fails the same write) slows the
/// producer down instead of dropping what it cannot keep.
#[test]
fn a_spill_file_that_cannot_grow_slows_the_producer_instead_of_losing_messages() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = RedisServer::start();
    server.kill();
    let producer = fleet(dir.path(), "fleet", &server, &["--vehicles", "4", "--speed", "max", "--duration", "3m", "--buffer", "50", "--spill-limit", "20000", "--flush-timeout", "60s"]);
    wait_until(LIMIT, "the producer says it is held up", || producer.log().contains("HELD UP"));
    assert!(producer.log().contains("spill limit of 20000 bytes reached"), "{}", producer.log());
    server.restart();
    let produced = producer.finish();
    let published = n(&produced, "/bus/published");
    assert!(published >= 4 * 180, "every second of every vehicle: {produced}");
    assert_eq!((n(&produced, "/bus/acknowledged"), n(&produced, "/bus/dropped")), (published, 0), "{produced}");
    let summary = stop(orchestrator(dir.path(), "orchestrator", &server, &[]));
    assert_eq!((n(&summary, "/messages"), n(&summary, "/gaps")), (published, 0));
}
