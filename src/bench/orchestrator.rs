//! `aegis bench orchestrator`: the decision loop under a fleet's load, in process.
//!
//! A generator thread sends every vehicle's telemetry once a second of wall time, spread over
//! the second, and every second a rule event from 1% of the vehicles; the loop's thread
//! ingests them as the orchestrator does, with the demo scenario's missions and peer groups,
//! and ticks once per second of traffic (timers, central rules, mission dispatch). Alert latency runs from the moment the event that
//! satisfies the raise condition is sent to the moment its alert is in the store. The loop
//! keeps up when it ingests messages at least as fast as they come and its backlog stays
//! bounded.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::bus::sample_frame;
use crate::model::{Body, Envelope, EventKind, RuleDecision, RuleId, VehicleId};
use crate::orchestrator::Centre;
use crate::orchestrator::brain::Brain;
use crate::orchestrator::ports::{Forget, NoOperators};
use crate::orchestrator::policy::Policy;
use crate::scenario::Scenario;

/// Figures from `aegis bench orchestrator`.
#[derive(Debug, Clone, Serialize)]
pub struct OrchestratorBench {
    /// Vehicles.
    pub vehicles: u32,
    /// Wall seconds measured.
    pub seconds: f64,
    /// Messages offered per second (telemetry at 1 Hz plus events).
    pub offered_per_second: f64,
    /// Messages the loop ingested per second.
    pub ingested_per_second: f64,
    /// Whether it kept up: ingested everything, with at most one second of backlog at the end.
    pub keeps_up: bool,
    /// Most messages waiting at any moment.
    pub max_backlog: usize,
    /// Alert latency, median.
    pub alert_latency_p50_ms: f64,
    /// 99th percentile.
    pub alert_latency_p99_ms: f64,
    /// Alerts raised.
    pub alerts: u64,
    /// Messages the loop can ingest per second flat out (the same stream, unpaced).
    pub capacity_per_second: f64,
    /// Slowest once-a-second tick (timers, central rules, mission dispatch), in ms.
    pub tick_max_ms: f64,
}

impl OrchestratorBench {
    /// The figures for people.
    pub fn human(&self) -> String {
        format!(
            "{} vehicles at 1 Hz for {:.0} s: {:.0} msg/s offered, {:.0} ingested ({}; most waiting {}), capacity {:.0} msg/s\nalert latency p50 {:.2} ms, p99 {:.2} ms over {} alerts; slowest tick {:.2} ms",
            self.vehicles,
            self.seconds,
            self.offered_per_second,
            self.ingested_per_second,
            if self.keeps_up { "keeps up" } else { "falls behind" },
            self.max_backlog,
            self.capacity_per_second,
            self.alert_latency_p50_ms,
            self.alert_latency_p99_ms,
            self.alerts,
            self.tick_max_ms
        )
    }
}

/// The messages of simulated second `second`: every vehicle's telemetry, and a rule event
/// from every hundredth vehicle (a different one each second).
fn second_of_traffic(vehicles: u32, second: u64, seq: &mut [u64]) -> Vec<Envelope> {
    let base = sample_frame();
    let mut out = Vec::with_capacity(vehicles as usize + vehicles as usize / 100 + 1);
    for v in 0..vehicles {
        let id = VehicleId(v + 1);
        // Readings that move a little, as real ones do (a constant frame is a stuck sensor).
        let mut frame = base.clone();
        let wobble = 1.0 + 0.001 * ((u64::from(v) * 7 + second * 13) % 17) as f32;
        for value in &mut frame.metrics.values {
            *value *= wobble;
        }
        out.push(Envelope::new(id, seq[v as usize], second as f64, Body::Telemetry(frame)));
        seq[v as usize] += 1;
        if u64::from(v) % 100 == second % 100 {
            let event = EventKind::RuleTriggered { rule: RuleId::CoolantTempVeryHigh, metric: "coolant_temp_c".into(), value: 116.0, decision: RuleDecision::DeratePower };
            out.push(Envelope::new(id, seq[v as usize], second as f64, Body::from(event)));
            seq[v as usize] += 1;
        }
    }
    out
}

/// Runs the bench for `seconds` of wall time.
pub fn bench_orchestrator(vehicles: u32, seconds: u32) -> anyhow::Result<OrchestratorBench> {
    anyhow::ensure!(vehicles > 0, "--vehicles: expected at least one vehicle");
    let policy = Policy::shipped();
    let scenario = Scenario::builtin_demo();

    // Capacity: the same traffic, flat out.
    let mut seq = vec![0u64; vehicles as usize];
    let batches: Vec<Vec<Envelope>> = (0..3).map(|s| second_of_traffic(vehicles, s, &mut seq)).collect();
    let count: usize = batches.iter().map(Vec::len).sum();
    let mut centre = centre_for(Brain::new(policy.clone()).with_scenario(&scenario));
    let started = Instant::now();
    for envelope in batches.iter().flatten() {
        centre.ingest(envelope, 0.0);
    }
    let capacity_per_second = count as f64 / started.elapsed().as_secs_f64();

    // Paced at 1 Hz per vehicle.
    let (sender, receiver) = crossbeam_channel::unbounded::<(Instant, Envelope)>();
    let generator = std::thread::spawn(move || {
        let mut seq = vec![0u64; vehicles as usize];
        let start = Instant::now();
        for second in 0..u64::from(seconds) {
            let traffic = second_of_traffic(vehicles, second, &mut seq);
            let slices = 100;
            let per_slice = traffic.len().div_ceil(slices);
            for (slice, chunk) in traffic.chunks(per_slice.max(1)).enumerate() {
                let due = start + Duration::from_secs(second) + Duration::from_millis(slice as u64 * 10);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                for envelope in chunk {
                    if sender.send((Instant::now(), envelope.clone())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let mut centre = centre_for(Brain::new(policy).with_scenario(&scenario));
    let mut latencies = Vec::new();
    let mut ingested = 0u64;
    let mut max_backlog = 0;
    let mut second = 0.0;
    let mut tick_max_ms = 0.0f64;
    let started = Instant::now();
    for (sent, envelope) in receiver.iter() {
        max_backlog = max_backlog.max(receiver.len());
        if envelope.sim_time > second {
            let tick = Instant::now();
            centre.tick(second, started.elapsed().as_secs_f64());
            centre.take_outgoing();
            tick_max_ms = tick_max_ms.max(tick.elapsed().as_secs_f64() * 1000.0);
            second = envelope.sim_time;
        }
        let raises = matches!(envelope.body, Body::Event(_));
        let before = centre.brain.alerts.len();
        centre.ingest(&envelope, started.elapsed().as_secs_f64());
        ingested += 1;
        if raises && centre.brain.alerts.len() > before {
            latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    generator.join().map_err(|_| anyhow::anyhow!("the traffic generator panicked"))?;
    latencies.sort_by(f64::total_cmp);
    let offered = ingested as f64 / f64::from(seconds);
    Ok(OrchestratorBench {
        vehicles,
        seconds: elapsed,
        offered_per_second: offered,
        ingested_per_second: ingested as f64 / elapsed,
        // Done within a second of the last message being offered.
        keeps_up: elapsed <= f64::from(seconds) + 1.0,
        max_backlog,
        alert_latency_p50_ms: super::quantile(&latencies, 0.5),
        alert_latency_p99_ms: super::quantile(&latencies, 0.99),
        alerts: latencies.len() as u64,
        capacity_per_second,
        tick_max_ms,
    })
}

/// The centre as `aegis orchestrator` runs it, with ports that keep nothing: what is measured
/// is the decision loop and its saving of changes, not a transport.
fn centre_for(brain: Brain) -> Centre {
    Centre::new(brain, Box::new(NoOperators), Box::new(Forget))
}
