//! `aegis bench ws --clients N`: N WebSocket clients, in this process, each with a token of
//! its own, subscribed to `fleet` and `alerts` on a server in another process (`aegis run
//! --listen` with a simulated fleet), so the clients do not share the server's runtime. Latency is from the moment the centre
//! stamped a fleet status (`summary.updated`, as it enters the server) to the moment a client
//! has the frame; the server's CPU and memory come from /proc.

use std::io::BufRead as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use crate::api::client;
use crate::model::WallTime;

/// What to measure.
#[derive(Debug, Clone)]
pub struct WsBenchOptions {
    /// Clients, each subscribed to `fleet` and `alerts`.
    pub clients: u32,
    /// Vehicles the server's simulation runs (at real time).
    pub vehicles: u32,
    /// Wall seconds measured, after every client has its snapshot.
    pub seconds: u64,
    /// Of the clients, how many read only one frame a second.
    pub slow: u32,
    /// The scenario whose world the server simulates.
    pub scenario: std::path::PathBuf,
}

/// Figures from `aegis bench ws`.
#[derive(Debug, Clone, Serialize)]
pub struct WsBench {
    /// Clients connected.
    pub clients: u32,
    /// Of them, reading slowly.
    pub slow_clients: u32,
    /// Slow clients the server closed for falling behind.
    pub slow_clients_closed: u64,
    /// Normal clients whose connection ended before the end, and the first reason given.
    pub clients_closed: u64,
    /// Why the first of them ended.
    pub first_close_reason: Option<String>,
    /// Fleet deltas the normal clients never got (gaps in the topic's seq), over all of them.
    pub fleet_deltas_missed: u64,
    /// Snapshots flagged `resync` the clients got (each stands for the deltas it replaced).
    pub resync_snapshots: u64,
    /// Vehicles simulated behind the server.
    pub vehicles: u32,
    /// Seconds measured.
    pub seconds: u64,
    /// Fleet deltas' latency over the normal clients, median, ms.
    pub latency_p50_ms: f64,
    /// The same, 99th percentile, ms.
    pub latency_p99_ms: f64,
    /// Frames the clients received per second, all together.
    pub frames_per_second: f64,
    /// Bytes the clients received per second, all together.
    pub bytes_per_second: f64,
    /// The server's resident memory growth with the clients connected, per client, bytes.
    pub rss_bytes_per_client: f64,
    /// The server's resident memory at the end, bytes.
    pub server_rss_bytes: u64,
    /// The server process's CPU over the measured seconds, percent of one core.
    pub server_cpu_percent: f64,
    /// This process's (the clients') CPU over the measured seconds, percent of one core.
    pub clients_cpu_percent: f64,
}

/// The server process's resident bytes and CPU seconds so far.
fn usage(pid: u32) -> (u64, f64) {
    let rss = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok().and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok())).unwrap_or(0) * 4096;
    let cpu = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name, which is in parentheses and may hold spaces.
            let rest = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            Some((fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(0.0);
    (rss, cpu)
}

/// Runs the benchmark; progress goes to stderr.
pub fn bench_ws(options: &WsBenchOptions) -> anyhow::Result<WsBench> {
    // A token per client, as distinct users would have: requests are rate-limited per token.
    let tokens: Vec<String> = (0..options.clients.max(1)).map(|i| format!("bench-{i:05}-{:016x}", rand::random::<u64>())).collect();
    let list: Vec<String> = tokens.iter().enumerate().map(|(i, secret)| format!("client{i}:viewer:{secret}")).collect();
    let exe = std::env::current_exe()?;
    let mut server = std::process::Command::new(exe)
        .args(["run", "--headless", "--speed", "1", "--duration", "1d", "--listen", "127.0.0.1:0", "--vehicles"])
        .arg(options.vehicles.to_string())
        .arg("--scenario")
        .arg(&options.scenario)
        .env("AEGIS_API_TOKENS", list.join(","))
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let pid = server.id();
    let mut lines = std::io::BufReader::new(server.stderr.take().expect("piped")).lines();
    let addr = loop {
        let Some(line) = lines.next() else { anyhow::bail!("the server ended before saying where it listens") };
        let line = line?;
        if let Some(rest) = line.split("API listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap_or_default().to_owned();
        }
    };
    // The server's progress lines (its pace shows whether it keeps real time under the load).
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            eprintln!("  server: {line}");
        }
    });
    let ws = format!("ws://{addr}/ws");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let result = runtime.block_on(measure(options, &ws, &tokens, pid));
    let _ = server.kill();
    let _ = server.wait();
    result
}

async fn measure(options: &WsBenchOptions, ws: &str, tokens: &[String], pid: u32) -> anyhow::Result<WsBench> {
    // Wait for the whole fleet to be on the air.
    let mut probe = client::connect(ws, &tokens[0]).await?;
    client::send(&mut probe, &json!({ "type": "subscribe", "id": "p", "topic": "fleet" })).await?;
    let started = Instant::now();
    loop {
        let text = client::next_text(&mut probe).await?.ok_or_else(|| anyhow::anyhow!("the server closed the probe"))?;
        let frame: serde_json::Value = serde_json::from_str(&text)?;
        if frame["data"]["vehicles"].as_object().is_some_and(|v| v.len() as u32 >= options.vehicles) {
            break;
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(300), "the fleet did not come up within 5 minutes");
    }
    drop(probe);
    let (rss_before, _) = usage(pid);
    eprintln!("[aegis] bench ws: {} vehicles on the air; connecting {} clients", options.vehicles, options.clients);

    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let frames = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let closed_slow = Arc::new(AtomicU64::new(0));
    let closed = Arc::new(AtomicU64::new(0));
    let reason = Arc::new(std::sync::Mutex::new(None::<String>));
    let missed = Arc::new(AtomicU64::new(0));
    let resyncs = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..options.clients {
        let slow = i < options.slow;
        let mut socket = client::connect(ws, &tokens[i as usize]).await?;
        for topic in ["fleet", "alerts"] {
            client::send(&mut socket, &json!({ "type": "subscribe", "id": topic, "topic": topic })).await?;
        }
        let (measuring, stop, frames, bytes, closed_slow, closed, reason) = (measuring.clone(), stop.clone(), frames.clone(), bytes.clone(), closed_slow.clone(), closed.clone(), reason.clone());
        let (missed, resyncs) = (missed.clone(), resyncs.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut last_seq = None;
            while !stop.load(Ordering::Relaxed) {
                let text = match tokio::time::timeout(Duration::from_secs(1), client::next_text(&mut socket)).await {
                    Err(_) => continue,
                    Ok(Ok(Some(text))) => text,
                    Ok(Ok(None)) => {
                        closed.fetch_add(u64::from(!slow), Ordering::Relaxed);
                        break;
                    }
                    Ok(Err(e)) => {
                        if slow {
                            closed_slow.fetch_add(1, Ordering::Relaxed);
                        } else {
                            closed.fetch_add(1, Ordering::Relaxed);
                            reason.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get_or_insert(e.to_string());
                        }
                        break;
                    }
                };
                if let Some(seq) = fleet_seq(&text) {
                    if text.contains(r#""resync":true"#) {
                        resyncs.fetch_add(1, Ordering::Relaxed);
                    } else if let Some(last) = last_seq
                        && seq > last + 1
                        && !slow
                        && measuring.load(Ordering::Relaxed)
                    {
                        missed.fetch_add(seq - last - 1, Ordering::Relaxed);
                    }
                    last_seq = Some(seq);
                }
                if !measuring.load(Ordering::Relaxed) {
                    continue;
                }
                frames.fetch_add(1, Ordering::Relaxed);
                bytes.fetch_add(text.len() as u64, Ordering::Relaxed);
                if slow {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                } else if let Some(latency) = fleet_latency_ms(&text) {
                    latencies.push(latency);
                }
            }
            latencies
        }));
    }
    let (_, cpu_before) = usage(pid);
    let (_, clients_cpu_before) = usage(std::process::id());
    eprintln!("[aegis] bench ws: {} clients connected; measuring for {} s", options.clients, options.seconds);
    measuring.store(true, Ordering::Relaxed);
    let window = Instant::now();
    tokio::time::sleep(Duration::from_secs(options.seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = window.elapsed().as_secs_f64();
    let (rss_after, cpu_after) = usage(pid);
    let (_, clients_cpu_after) = usage(std::process::id());
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap_or_default());
    }
    latencies.sort_by(f64::total_cmp);
    Ok(WsBench {
        clients: options.clients,
        slow_clients: options.slow,
        slow_clients_closed: closed_slow.load(Ordering::Relaxed),
        clients_closed: closed.load(Ordering::Relaxed),
        fleet_deltas_missed: missed.load(Ordering::Relaxed),
        resync_snapshots: resyncs.load(Ordering::Relaxed),
        first_close_reason: reason.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone(),
        vehicles: options.vehicles,
        seconds: options.seconds,
        latency_p50_ms: super::quantile(&latencies, 0.5),
        latency_p99_ms: super::quantile(&latencies, 0.99),
        frames_per_second: frames.load(Ordering::Relaxed) as f64 / elapsed,
        bytes_per_second: bytes.load(Ordering::Relaxed) as f64 / elapsed,
        rss_bytes_per_client: rss_after.saturating_sub(rss_before) as f64 / f64::from(options.clients.max(1)),
        server_rss_bytes: rss_after,
        server_cpu_percent: (cpu_after - cpu_before) / elapsed * 100.0,
        clients_cpu_percent: (clients_cpu_after - clients_cpu_before) / elapsed * 100.0,
    })
}

/// Milliseconds from a fleet delta's status stamp to now; `None` for other frames.
fn fleet_latency_ms(text: &str) -> Option<f64> {
    if !text.starts_with(r#"{"type":"delta","topic":"fleet""#) {
        return None;
    }
    let at = text.find(r#""updated":""#)? + r#""updated":""#.len();
    let stamp: WallTime = text[at..].split('"').next()?.parse().ok()?;
    Some(WallTime::now().unix_ms() as f64 - stamp.unix_ms() as f64)
}

/// A fleet frame's seq; `None` for other frames.
fn fleet_seq(text: &str) -> Option<u64> {
    if !text.contains(r#""topic":"fleet""#) {
        return None;
    }
    let at = text.find(r#""seq":"#)? + r#""seq":"#.len();
    text[at..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}
