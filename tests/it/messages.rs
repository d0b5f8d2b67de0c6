//! Every message kind round-trips through JSON; validation names the offending field.

use aegis::model::*;

fn telemetry_body() -> Body {
    let mut metrics = TelemetryFrame::default();
    for (i, spec) in METRICS.iter().enumerate() {
        metrics.values[i] = (spec.min + spec.max) / 2.0;
    }
    let truth = vec![FailureTruth {
        mode: FailureMode::CoolantLeak,
        component: Component::CoolingSystem,
        onset_s: 120.0,
        functional_failure_s: None,
        predicted_failure_s: Some(5000.0),
        severity: 0.25,
    }];
    Body::Telemetry(Box::new(Telemetry { metrics, truth }))
}

pub fn every_body() -> Vec<Body> {
    vec![
        telemetry_body(),
        Body::Heartbeat(Heartbeat { status: VehicleStatus::EnRoute, uptime_s: 55.0 }),
        Body::from(Event { event: EventKind::RuleTriggered { rule: aegis::model::RuleId::CoolantTempHigh, metric: "coolant_temp_c".into(), value: 112.5, decision: RuleDecision::DeratePower } }),
        Body::from(Event { event: EventKind::StatusChanged { from: VehicleStatus::Idle, to: VehicleStatus::EnRoute } }),
        Body::Alert(Box::new(AlertUpdate {
            alert: AlertRecord {
                id: "A000001".into(),
                key: AlertKey { vehicle: VehicleId(3), component: Component::Brakes, alert_type: "brake_pad_low".into() },
                severity: Severity::Major,
                highest_severity: Severity::Major,
                origin: Origin::VehicleRule,
                evidence: vec![(Metric::BrakePadFrontMm.name().to_owned(), 2.1)],
                recommendation: Recommendation { action: RecommendedAction::ScheduleMaintenance, reason: "pads below 3 mm".into(), within_hours: Some(8.0) },
                confidence: 0.9,
                time_to_failure_h: None,
                event_at: 3590.0,
                created_at: 3600.0,
                last_seen_at: 3600.0,
                acknowledged_at: None,
                cleared_at: None,
                occurrences: 1,
                assignee: None,
                notes: Vec::new(),
                active: true,
                acknowledged: false,
                shelved_until: None,
                escalated: false,
                suppressed_by: None,
            },
            audit: vec![AuditEvent { alert_id: "A000001".into(), at: 3600.0, actor: "system".into(), action: AuditAction::Raised }],
        })),
        Body::from(Command { command_id: "c-1".into(), action: CommandAction::ReduceSpeed { max_kph: 40.0 }, ttl_s: 60.0 }),
        Body::from(Command { command_id: "c-2".into(), action: CommandAction::ChangeMission { destination_depot: "North".into() }, ttl_s: 60.0 }),
        Body::from(Command {
            command_id: "c-3".into(),
            action: CommandAction::AssignMission {
                mission_id: "M000001".into(),
                kind: MissionKind::Delivery,
                stops: vec![MissionStop { node: 121, name: "North".into() }, MissionStop { node: 122, name: "East".into() }],
            },
            ttl_s: 60.0,
        }),
        Body::from(Event { event: EventKind::MissionProgress { mission_id: "M000001".into(), reached: 1, of: 2, stop: "North".into() } }),
        Body::from(Event { event: EventKind::MissionCompleted { mission_id: "M000001".into() } }),
        Body::from(Event { event: EventKind::MissionAbandoned { mission_id: "M000001".into(), reason: "recalled".into() } }),
        Body::from(CommandAck { command_id: "c-1".into(), outcome: CommandOutcome::Accepted, detail: None }),
        Body::Presence(Presence { online: false, last_seen_sim_time: 310.0, silent_s: 15.2 }),
    ]
}

#[test]
fn every_message_kind_round_trips_through_json() {
    let bodies = every_body();
    let kinds: std::collections::HashSet<_> = bodies.iter().map(Body::kind).collect();
    assert_eq!(kinds.len(), MessageKind::ALL.len(), "the test covers every kind");
    for (seq, body) in bodies.into_iter().enumerate() {
        let envelope = Envelope::new(VehicleId(3), seq as u64, 12.5, body);
        let json = envelope.to_json();
        let back = Envelope::from_json(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
        assert_eq!(back, envelope);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        for field in ["protocol", "kind", "vehicle_id", "seq", "sim_time", "wall_time", "payload"] {
            assert!(value.get(field).is_some(), "{field} missing in {json}");
        }
    }
}

fn with_payload_edit(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let envelope = Envelope::new(VehicleId(1), 0, 1.0, telemetry_body());
    let mut value: serde_json::Value = serde_json::from_str(&envelope.to_json()).unwrap();
    edit(&mut value);
    value.to_string()
}

#[test]
fn out_of_range_metric_is_rejected_by_name() {
    let text = with_payload_edit(|v| v["payload"]["metrics"]["coolant_temp_c"] = 999.0.into());
    let error = Envelope::from_json(&text).unwrap_err().to_string();
    assert!(error.contains("coolant_temp_c") && error.contains("outside"), "{error}");
}

#[test]
fn non_finite_metric_is_rejected_by_name() {
    let mut frame = TelemetryFrame::default();
    frame.set(Metric::OilPressureKpa, f32::NAN);
    assert_eq!(frame.validate().unwrap_err().field, "oil_pressure_kpa");
    frame.set(Metric::OilPressureKpa, f32::INFINITY);
    assert!(frame.validate().unwrap_err().to_string().contains("oil_pressure_kpa"));
    // JSON has no NaN: serde_json writes null, which must not read back as a number.
    let text = with_payload_edit(|v| v["payload"]["metrics"]["oil_pressure_kpa"] = serde_json::Value::Null);
    assert!(Envelope::from_json(&text).unwrap_err().to_string().contains("oil_pressure_kpa"));
}

#[test]
fn unknown_fields_are_rejected_by_name() {
    let top = with_payload_edit(|v| v["colour"] = "red".into());
    assert!(Envelope::from_json(&top).unwrap_err().to_string().contains("colour"));
    let metric = with_payload_edit(|v| v["payload"]["metrics"]["warp_drive_pct"] = 1.0.into());
    assert!(Envelope::from_json(&metric).unwrap_err().to_string().contains("warp_drive_pct"));
    let missing = with_payload_edit(|v| {
        v["payload"]["metrics"].as_object_mut().unwrap().remove("gear");
    });
    assert!(Envelope::from_json(&missing).unwrap_err().to_string().contains("gear"));
}

#[test]
fn header_problems_are_named() {
    let version = with_payload_edit(|v| v["protocol"] = 9.into());
    assert!(Envelope::from_json(&version).unwrap_err().to_string().contains("protocol"));
    let id = with_payload_edit(|v| v["vehicle_id"] = "truck-7".into());
    assert!(Envelope::from_json(&id).unwrap_err().to_string().contains("truck-7"));
    let kind = with_payload_edit(|v| v["kind"] = "gossip".into());
    assert!(Envelope::from_json(&kind).unwrap_err().to_string().contains("gossip"));
    assert!(Envelope::from_json("{not json").is_err());
}

#[test]
fn there_are_at_least_forty_metrics_with_sane_ranges() {
    assert!(METRICS.len() >= 40);
    for spec in METRICS {
        assert!(spec.min < spec.max, "{}", spec.name);
        assert_eq!(Metric::from_name(spec.name).map(|m| m.name()), Some(spec.name));
    }
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/TELEMETRY.md")).unwrap();
    assert!(doc.contains(&metrics::markdown_table()), "docs/TELEMETRY.md is out of date: regenerate it with `aegis metrics`");
}
