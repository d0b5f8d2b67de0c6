//! The fleet as separate processes over Redis: `aegis fleet` and `aegis vehicle` simulate
//! their part of the fleet and publish it; `aegis orchestrator` runs the centre on it. Each
//! takes its shutdown as a future from the caller (the CLI passes SIGINT/SIGTERM) and, once
//! it completes, flushes or drains what it holds.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;

use crate::app::{RunOptions, RunSummary, run_on_bus};
use crate::bus::redis::{OrchestratorOptions, OrchestratorSummary};
use crate::bus::{Bus, RedisBus, RedisConfig, SharedBus};
use crate::model::VehicleId;

/// A tokio runtime for the transport's tasks, beside the simulation's own thread.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("aegis-redis").enable_all().build()?)
}

/// Completes on the first SIGINT or SIGTERM (never, if they cannot be watched).
pub async fn signals() {
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(error) => {
            tracing::warn!("cannot watch SIGTERM: {error}");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("signal received: finishing");
}

/// Simulates `options.members` of the fleet, publishing over Redis, until the duration has
/// passed or `shutdown` completes; then flushes for at most `flush_timeout`. Fails when
/// messages are left unsent (they stay in the spill file, whose path is logged, and the next
/// run of the same producer sends them first).
pub fn run_fleet(options: &RunOptions, redis: RedisConfig, flush_timeout: Duration, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<RunSummary> {
    let runtime = runtime()?;
    // The simulation loop is synchronous: it looks at a flag the shutdown sets.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    runtime.spawn(async move {
        shutdown.await;
        flag.store(true, Ordering::Relaxed);
    });
    let mut options = options.clone();
    // The shards of one fleet agree on one run, so that its history is stored as one. The
    // simulation does not wait for it: Redis may be down at start, and nothing here needs the
    // answer, so it is proposed in the background until Redis takes it.
    let proposal = crate::app::run_info(&options, crate::app::run_name(&options));
    runtime.spawn(crate::store::from_redis::propose_run(redis.clone(), proposal));
    let bus = Arc::new(RedisBus::new(redis, runtime.handle().clone())?);
    let ours: Vec<VehicleId> = (1..=options.vehicles).map(VehicleId).filter(|v| options.members.contains(*v)).collect();
    options.first_seq = bus.resume_sequences(&ours, Duration::from_secs(10));
    if let Some(max) = options.first_seq.values().max() {
        tracing::info!("continuing the sequence numbers of an earlier run (up to {max})");
    }
    let shared: SharedBus = bus.clone();
    let mut summary = run_on_bus(&options, shared, &stop)?;
    let flushed = bus.close(flush_timeout);
    summary.bus = bus.stats();
    if let Some(path) = &options.summary {
        summary.write(path)?;
    }
    if !flushed {
        anyhow::bail!("redis did not confirm {} messages within {}; they were left in the spill file", summary.bus.backlog, humantime::format_duration(flush_timeout));
    }
    Ok(summary)
}

/// Stores the fleet's messages from Redis until `shutdown` completes, then drains and returns
/// the summary.
pub fn run_store(options: crate::store::from_redis::StoreServiceOptions, shutdown: impl Future<Output = ()>) -> anyhow::Result<crate::store::from_redis::StoreServiceSummary> {
    let runtime = runtime()?;
    runtime.block_on(crate::store::from_redis::run(options, shutdown)).context("store")
}

/// Runs the orchestrator until `shutdown` completes, then drains and returns its summary.
/// With `api`, serves the WebSocket and HTTP API over it: the API's hub watches the centre and
/// its operators' requests go in beside those from Redis; its connections are closed with a
/// reason once the centre has drained.
pub fn run_orchestrator(options: OrchestratorOptions, api: Option<crate::api::ApiSettings>, shutdown: impl Future<Output = ()>) -> anyhow::Result<OrchestratorSummary> {
    let runtime = runtime()?;
    let mut beside = crate::bus::redis::service::Beside::default();
    let served = match &api {
        Some(settings) => {
            let world = options.scenario.as_ref().map_or(serde_json::Value::Null, |s| crate::api::hub::describe_world(&crate::world::RoadNetwork::generate(s)));
            let hub = std::sync::Arc::new(crate::api::hub::Hub::new(world));
            let (desk, local) = crate::bus::local::operator_desk();
            let served = crate::api::RunningApi::start(settings, hub.clone(), Some(std::sync::Arc::new(desk)), None)?;
            beside = crate::bus::redis::service::Beside { watcher: Some(hub), operators: Some(Box::new(local)) };
            Some(served)
        }
        None => None,
    };
    let summary = runtime.block_on(crate::bus::redis::service::run(options, beside, shutdown)).context("orchestrator");
    if let Some(served) = served {
        served.stop();
    }
    summary
}
