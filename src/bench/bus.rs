//! `aegis bench bus`: the Redis transport end to end, from `publish` in one task to the
//! consumer group reader in another, through a real server.
//!
//! Two phases on a private key prefix (deleted afterwards): full load (every vehicle sends
//! `burst` frames at once) for throughput, then paced at 1 Hz per vehicle, spread evenly over
//! each second, for latency. Each envelope's `sim_time` carries its publish instant, so the
//! consumer measures publish-to-consume latency on one clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::bus::keys::{Family, PARTITIONS};
use crate::bus::redis::{ConsumerOptions, RedisBus, RedisConfig, StreamConsumer};
use crate::bus::Bus;
use crate::model::{Body, Envelope, METRICS, Telemetry, TelemetryFrame, VehicleId};

/// Figures from `aegis bench bus`.
#[derive(Debug, Clone, Serialize)]
pub struct BusBench {
    /// Vehicles.
    pub vehicles: u32,
    /// Bytes of one telemetry envelope as JSON.
    pub payload_bytes: usize,
    /// End-to-end messages per second at full load: published, stored and consumed.
    pub messages_per_second: f64,
    /// Messages per second Redis confirmed at full load (publish to `XADD` reply), the
    /// producer side alone.
    pub publish_messages_per_second: f64,
    /// Messages in the full-load phase.
    pub full_load_messages: u64,
    /// Messages per second offered in the paced phase (one per vehicle per second).
    pub paced_offered_per_second: f64,
    /// Messages per second consumed in the paced phase.
    pub paced_consumed_per_second: f64,
    /// Publish-to-consume latency in the paced phase, median.
    pub latency_p50_ms: f64,
    /// 99th percentile.
    pub latency_p99_ms: f64,
    /// Largest.
    pub latency_max_ms: f64,
    /// `redis-benchmark` XADD requests per second with the same payload, when it is on PATH:
    /// the ceiling the transport is compared with.
    pub ceiling_xadd_per_second: Option<f64>,
    /// `messages_per_second` over the ceiling.
    pub fraction_of_ceiling: Option<f64>,
}

impl BusBench {
    /// The figures for people.
    pub fn human(&self) -> String {
        let ceiling = match (self.ceiling_xadd_per_second, self.fraction_of_ceiling) {
            (Some(c), Some(f)) => format!("; redis-benchmark XADD ceiling {c:.0}/s ({:.0}% of it)", f * 100.0),
            _ => String::new(),
        };
        format!(
            "{} vehicles, {}-byte frames: full load {:.0} msg/s end to end ({:.0} msg/s published){ceiling}\n1 Hz paced: {:.0} msg/s consumed of {:.0} offered, latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.vehicles,
            self.payload_bytes,
            self.messages_per_second,
            self.publish_messages_per_second,
            self.paced_consumed_per_second,
            self.paced_offered_per_second,
            self.latency_p50_ms,
            self.latency_p99_ms,
            self.latency_max_ms
        )
    }
}

/// A telemetry payload with realistic digits (JSON size depends on them).
pub(super) fn sample_frame() -> Box<Telemetry> {
    let mut metrics = TelemetryFrame::default();
    for (i, spec) in METRICS.iter().enumerate() {
        metrics.values[i] = spec.min + (spec.max - spec.min) * (0.37 + 0.01 * i as f32);
    }
    Box::new(Telemetry { metrics, truth: Vec::new() })
}

/// Runs both phases against `url` and returns the figures.
pub fn bench_bus(url: &str, vehicles: u32, paced_for: Duration, burst: u32) -> anyhow::Result<BusBench> {
    anyhow::ensure!(vehicles > 0, "--vehicles: expected at least one vehicle");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let prefix = format!("aegis-bench-{}", std::process::id());
    let mut config = RedisConfig::new(url, "bench");
    config.prefix = prefix.clone();
    config.stream_maxlen = 10_000_000;
    let bus = RedisBus::new(config.clone(), runtime.handle().clone())?;
    let frame = sample_frame();
    let payload_bytes = Envelope::new(VehicleId(vehicles), 0, 0.0, Body::Telemetry(frame.clone())).to_json().len();

    let started = Instant::now();
    let full_load_messages = u64::from(vehicles) * u64::from(burst);
    let paced_ticks = (paced_for.as_secs_f64() * 100.0).round() as u64;
    let paced_messages = u64::from(vehicles) * paced_ticks / 100;
    let total = full_load_messages + paced_messages;

    // The consumer: records each message's latency and the time the last one arrived.
    let stop = Arc::new(AtomicBool::new(false));
    let mut options = ConsumerOptions::new("bench", "bench-1");
    options.claim_idle = None;
    options.block = Duration::from_millis(20);
    let connection = {
        let _context = runtime.enter();
        config.connection()?
    };
    let mut consumer = StreamConsumer::new(connection, config.keys(), Family::Uplink, options);
    let reader_stop = stop.clone();
    let received_so_far = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let reader_count = received_so_far.clone();
    let reader = runtime.spawn(async move {
        let mut latencies = Vec::with_capacity(total as usize);
        let mut received = 0u64;
        let mut full_load_done = None;
        let mut last_at = 0.0;
        while received < total && !reader_stop.load(Ordering::Relaxed) {
            let batch = consumer.poll(true).await;
            let now = started.elapsed().as_secs_f64();
            let mut done = Vec::with_capacity(batch.deliveries.len());
            for delivery in &batch.deliveries {
                received += 1;
                if delivery.envelope.seq >= u64::from(burst) {
                    latencies.push((now - delivery.envelope.sim_time) * 1000.0);
                }
                done.push((delivery.partition, delivery.id.clone()));
            }
            if !batch.deliveries.is_empty() {
                last_at = now;
            }
            reader_count.store(received, Ordering::Relaxed);
            if full_load_done.is_none() && received >= full_load_messages {
                full_load_done = Some(now);
            }
            let _ = consumer.commit(&done, &batch.rejected, &[], Duration::from_secs(10)).await;
        }
        (received, latencies, full_load_done, last_at)
    });

    // Full load.
    let mut seq = vec![0u64; vehicles as usize];
    for _ in 0..burst {
        for v in 0..vehicles {
            let at = started.elapsed().as_secs_f64();
            bus.publish(Envelope::new(VehicleId(v + 1), seq[v as usize], at, Body::Telemetry(frame.clone())));
            seq[v as usize] += 1;
        }
    }
    // Wait for the consumer to catch up before pacing, so the phases do not overlap.
    let caught_up = bus.flush(Duration::from_secs(120));
    let published_in = started.elapsed().as_secs_f64();
    anyhow::ensure!(caught_up, "redis did not take the full-load phase within 120 s");
    let deadline = Instant::now() + Duration::from_secs(120);
    while received_so_far.load(Ordering::Relaxed) < full_load_messages {
        anyhow::ensure!(Instant::now() < deadline, "the consumer did not take the full-load phase within 120 s");
        std::thread::sleep(Duration::from_millis(5));
    }

    // Paced at 1 Hz per vehicle: every 10 ms, the vehicles whose turn it is.
    let paced_start = Instant::now();
    let paced_start_at = started.elapsed().as_secs_f64();
    let mut next = 0u64;
    for tick in 0..paced_ticks {
        let due = paced_start + Duration::from_millis(tick * 10);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let upto = u64::from(vehicles) * (tick + 1) / 100;
        while next < upto {
            let v = (next % u64::from(vehicles)) as usize;
            let at = started.elapsed().as_secs_f64();
            bus.publish(Envelope::new(VehicleId(v as u32 + 1), seq[v], at, Body::Telemetry(frame.clone())));
            seq[v] += 1;
            next += 1;
        }
    }
    let paced_published = paced_start.elapsed().as_secs_f64();
    bus.flush(Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reader.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    let (received, mut latencies, full_load_done, last_at) = runtime.block_on(reader)?;
    anyhow::ensure!(received >= total, "only {received} of {total} messages arrived within 60 s");
    bus.close(Duration::from_secs(5));
    runtime.block_on(delete_keys(&config))?;

    latencies.sort_by(f64::total_cmp);
    let messages_per_second = full_load_messages as f64 / full_load_done.unwrap_or(f64::INFINITY);
    let ceiling = redis_benchmark_ceiling(url, payload_bytes);
    Ok(BusBench {
        vehicles,
        payload_bytes,
        messages_per_second,
        publish_messages_per_second: full_load_messages as f64 / published_in,
        full_load_messages,
        paced_offered_per_second: paced_messages as f64 / paced_published,
        paced_consumed_per_second: paced_messages as f64 / (last_at - paced_start_at).max(1e-9),
        latency_p50_ms: super::quantile(&latencies, 0.5),
        latency_p99_ms: super::quantile(&latencies, 0.99),
        latency_max_ms: latencies.last().copied().unwrap_or(0.0),
        ceiling_xadd_per_second: ceiling,
        fraction_of_ceiling: ceiling.map(|c| messages_per_second / c),
    })
}

async fn delete_keys(config: &RedisConfig) -> anyhow::Result<()> {
    let mut connection = config.connection()?;
    let keys = config.keys();
    let mut del = redis::cmd("DEL");
    for partition in 0..PARTITIONS {
        for family in [Family::Uplink, Family::Downlink, Family::Central, Family::DeadLetter] {
            del.arg(keys.stream(family, partition));
        }
        del.arg(keys.next_seq(partition));
    }
    del.query_async::<()>(&mut connection).await?;
    Ok(())
}

/// `redis-benchmark` XADD throughput with a payload of the same size, as the ceiling.
fn redis_benchmark_ceiling(url: &str, payload_bytes: usize) -> Option<f64> {
    let info = redis::Client::open(url).ok()?.get_connection_info().clone();
    let redis::ConnectionAddr::Tcp(host, port) = info.addr() else { return None };
    let key = format!("aegis-bench-ceiling-{}", std::process::id());
    let payload = "x".repeat(payload_bytes);
    let output = std::process::Command::new("redis-benchmark")
        .args(["-h", host, "-p", &port.to_string(), "-n", "200000", "-c", "8", "-P", "64", "--csv"])
        .args(["XADD", &key, "MAXLEN", "~", "100000", "*", "kind", "telemetry", "data", &payload])
        .output()
        .ok()?;
    let _ = std::process::Command::new("redis-cli").args(["-h", host, "-p", &port.to_string(), "DEL", &key]).output();
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().find(|l| l.starts_with("\"XADD"))?;
    line.split(',').nth(1)?.trim_matches('"').parse().ok()
}
