//! The server: one router built from the shared [`Api`] state, HTTP under `/api/v1` (bearer
//! token) beside `/healthz` (open), and `/ws`. Each WebSocket connection is a reader loop
//! and a writer task joined by a bounded queue; subscriptions forward the hub's shared frames
//! into that queue without waiting, so a slow client is resynchronised with a snapshot when it
//! falls behind the broadcast and closed with a reason when its queue is full, never slowing
//! the others. The caller hands in the listener and the shutdown, so tests bind port 0.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware;
use axum::response::Response;
use axum::routing::get;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::{broadcast, mpsc, watch};

use super::auth::{Caller, Tokens};
use super::http::{self, History, bearer_caller, error_body};
use super::hub::{Hub, Numbered, Sample};
use super::protocol::{self, AlertState, ClientFrame, DEFAULT_MAX_HZ, Downsample, MAX_CLIENT_FRAME, PROTOCOL_VERSION, ServerFrame, Topic};
use crate::model::{METRIC_COUNT, Metric, Operation, OperatorReply, Severity, VehicleId};

/// Frames queued for one client before it counts as too slow and is closed.
pub const SEND_QUEUE: usize = 512;
/// How often the server pings a client.
const PING_EVERY: Duration = Duration::from_secs(20);
/// A client silent this long (not even a pong) is closed.
const IDLE_AFTER: Duration = Duration::from_secs(60);
/// How long a connection may take to authenticate.
const AUTH_WITHIN: Duration = Duration::from_secs(10);
/// How long an operator action waits for the centre's answer.
const REPLY_WITHIN: Duration = Duration::from_secs(30);

/// Close codes (RFC 6455 section 7.4.1 and the 4000-4999 private range).
mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const UNAUTHORISED: u16 = 4001;
    pub const TOO_SLOW: u16 = 4008;
}

/// Where operator actions go: the centre's operator channel, whichever transport carries it.
pub trait OperatorGate: Send + Sync + 'static {
    /// Hands in `operation` on `alert` by `actor`; the centre's answer arrives on the channel.
    fn submit(&self, alert: &str, actor: &str, operation: Operation) -> crossbeam_channel::Receiver<OperatorReply>;
}

impl OperatorGate for crate::bus::local::OperatorDesk {
    fn submit(&self, alert: &str, actor: &str, operation: Operation) -> crossbeam_channel::Receiver<OperatorReply> {
        crate::bus::local::OperatorDesk::submit(self, alert, actor, operation)
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct Api {
    /// The fleet as the API knows it.
    pub hub: Arc<Hub>,
    /// Who may connect.
    pub tokens: Arc<Tokens>,
    /// Where operator actions go; `None` where nobody may act (they are refused).
    pub operators: Option<Arc<dyn OperatorGate>>,
    /// Origins whose pages may open a WebSocket, besides the server's own.
    pub allowed_origins: Arc<Vec<String>>,
    /// The store the history endpoints read; `None` answers them 503.
    pub history: Option<History>,
    shutdown: watch::Receiver<bool>,
    /// WebSocket connections open, watched so that shutting down can wait for them to close.
    connections: Arc<watch::Sender<usize>>,
    pub(super) limiter: Arc<RateLimiter>,
}

/// Requests each token may make: a bucket of [`RateLimiter::BURST`] refilled at
/// [`RateLimiter::PER_SECOND`], shared by its HTTP requests and WebSocket frames.
#[derive(Default)]
pub(super) struct RateLimiter {
    buckets: std::sync::Mutex<BTreeMap<String, (f64, std::time::Instant)>>,
}

impl RateLimiter {
    pub(super) const PER_SECOND: f64 = 50.0;
    const BURST: f64 = 500.0;

    /// Takes one request from `name`'s bucket; false when it is empty.
    pub(super) fn allow(&self, name: &str) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = std::time::Instant::now();
        let (left, since) = buckets.entry(name.to_owned()).or_insert((Self::BURST, now));
        *left = (*left + now.duration_since(*since).as_secs_f64() * Self::PER_SECOND).min(Self::BURST);
        *since = now;
        if *left >= 1.0 {
            *left -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Api {
    /// An API over `hub` for `tokens`; `shutdown` turning true closes every connection.
    pub fn new(hub: Arc<Hub>, tokens: Tokens, operators: Option<Arc<dyn OperatorGate>>, shutdown: watch::Receiver<bool>) -> Self {
        Self { hub, tokens: Arc::new(tokens), operators, allowed_origins: Arc::new(Vec::new()), history: None, shutdown, connections: Arc::new(watch::channel(0).0), limiter: Arc::default() }
    }

    /// WebSocket connections open now.
    pub fn connections(&self) -> usize {
        *self.connections.borrow()
    }
}

/// The routes.
pub fn router(api: Api) -> Router {
    let v1 = http::v1().route_layer(middleware::from_fn_with_state(api.clone(), http::bearer));
    Router::new()
        .route("/", get(http::dashboard))
        .route("/healthz", get(http::healthz))
        .route("/metrics", get(http::metrics))
        .route("/api/v1/openapi.yaml", get(http::openapi))
        .route("/ws", get(upgrade))
        .nest("/api/v1", v1)
        .with_state(api)
}

/// How long shutting down waits for WebSocket connections to send their close frames.
const DRAIN_WITHIN: Duration = Duration::from_secs(5);

/// Serves `router(api)` on `listener` until `shutdown` completes (the same moment the API's
/// own shutdown signal turns true, which closes every WebSocket connection with a reason),
/// waits for the HTTP requests under way to finish, then for the WebSocket connections to
/// have sent their close frames (at most [`DRAIN_WITHIN`]): upgraded connections are not
/// hyper's to wait for, and a runtime dropped under them would cut them off unclosed.
pub async fn serve(listener: tokio::net::TcpListener, api: Api, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    let mut open = api.connections.subscribe();
    axum::serve(listener, router(api)).with_graceful_shutdown(shutdown).await?;
    let _ = tokio::time::timeout(DRAIN_WITHIN, open.wait_for(|open| *open == 0)).await;
    Ok(())
}

/// Whether a browser page from `origin` may open a WebSocket here: the server's own origin or
/// one allowed. Clients that are not browsers send no `Origin`.
fn origin_allowed(api: &Api, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else { return true };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    origin == format!("http://{host}") || origin == format!("https://{host}") || api.allowed_origins.iter().any(|allowed| allowed == origin)
}

async fn upgrade(State(api): State<Api>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    if !origin_allowed(&api, &headers) {
        return error_body(StatusCode::FORBIDDEN, "this page's origin may not open the fleet's WebSocket");
    }
    let caller = bearer_caller(&api, &headers);
    if headers.contains_key(header::AUTHORIZATION) && caller.is_none() {
        return error_body(StatusCode::UNAUTHORIZED, "unknown token");
    }
    ws.max_message_size(MAX_CLIENT_FRAME).max_frame_size(MAX_CLIENT_FRAME).on_upgrade(move |socket| connection(socket, api, caller))
}

/// Why the writer closes the connection.
type CloseReason = (u16, String);

fn close_message((code, reason): CloseReason) -> Message {
    Message::Close(Some(CloseFrame { code, reason: reason.into() }))
}

/// One connection: authenticate, then read requests until the client goes, falls silent, is
/// too slow or the server shuts down.
async fn connection(socket: WebSocket, api: Api, caller: Option<Caller>) {
    api.connections.send_modify(|open| *open += 1);
    serve_connection(socket, api.clone(), caller).await;
    api.connections.send_modify(|open| *open -= 1);
}

async fn serve_connection(socket: WebSocket, api: Api, caller: Option<Caller>) {
    let (mut sink, mut stream) = socket.split();
    let (queue, mut outgoing) = mpsc::channel::<Message>(SEND_QUEUE);
    let (closer, mut close_reason) = mpsc::channel::<CloseReason>(1);
    // The writer: frames in order, a ping now and then, and a close with its reason first of all.
    let writer = tokio::spawn(async move {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                biased;
                reason = close_reason.recv() => {
                    let _ = sink.send(close_message(reason.unwrap_or((close::NORMAL, String::new())))).await;
                    break;
                }
                message = outgoing.recv() => match message {
                    Some(message) => if sink.send(message).await.is_err() { break },
                    None => break,
                },
                _ = ping.tick() => if sink.send(Message::Ping(Default::default())).await.is_err() { break },
            }
        }
        let _ = sink.close().await;
    });
    let mut client = Client { api: api.clone(), caller, queue, closer: closer.clone(), subscriptions: BTreeMap::new() };
    if client.caller.is_none() {
        if let Ok(Some(Ok(Message::Text(text)))) = tokio::time::timeout(AUTH_WITHIN, stream.next()).await
            && let Ok(ClientFrame::Auth { token }) = protocol::parse(&text)
        {
            client.caller = api.tokens.caller(&token);
        }
        if client.caller.is_none() {
            let _ = closer.send((close::UNAUTHORISED, "authenticate first: an auth frame with a valid token, or Authorization: Bearer".into())).await;
            let _ = writer.await;
            return;
        }
    }
    if let Some(caller) = &client.caller {
        client.send(ServerFrame::Hello { protocol: PROTOCOL_VERSION, name: caller.name.clone(), role: caller.role });
    }
    let mut shutdown = api.shutdown.clone();
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(IDLE_AFTER, stream.next()) => next,
            _ = shutdown.wait_for(|stop| *stop) => {
                let _ = closer.try_send((close::GOING_AWAY, "the server is shutting down".into()));
                break;
            }
        };
        match next {
            Err(_) => {
                let _ = closer.try_send((close::POLICY, format!("idle for {} s", IDLE_AFTER.as_secs())));
                break;
            }
            Ok(None) | Ok(Some(Err(_))) => {
                // Gone, or broke the protocol (a frame over the size limit among them).
                let _ = closer.try_send((close::TOO_BIG, format!("closed: a frame over {MAX_CLIENT_FRAME} bytes or a broken connection")));
                break;
            }
            Ok(Some(Ok(Message::Text(text)))) => client.handle(&text).await,
            Ok(Some(Ok(Message::Binary(_)))) => client.send(ServerFrame::Error { error: "binary frames are not part of the protocol: send JSON text".into() }),
            Ok(Some(Ok(Message::Close(_)))) => break,
            Ok(Some(Ok(_))) => {} // pings and pongs: the connection is alive
        }
    }
    for (_, forwarder) in std::mem::take(&mut client.subscriptions) {
        forwarder.abort();
    }
    drop(client);
    let _ = closer.try_send((close::NORMAL, String::new()));
    let _ = writer.await;
}

/// A connection's side of the conversation.
struct Client {
    api: Api,
    caller: Option<Caller>,
    queue: mpsc::Sender<Message>,
    closer: mpsc::Sender<CloseReason>,
    subscriptions: BTreeMap<(Topic, Option<VehicleId>), tokio::task::JoinHandle<()>>,
}

impl Client {
    /// Queues `frame`; a full queue closes the connection (its reader notices and stops).
    fn send(&self, frame: ServerFrame) {
        enqueue(&self.queue, &self.closer, Message::Text(frame.encode().into()));
    }

    async fn handle(&mut self, text: &str) {
        let frame = match protocol::parse(text) {
            Ok(frame) => frame,
            Err(error) => return self.send(ServerFrame::Error { error }),
        };
        let Some(caller) = self.caller.clone() else { return };
        if !self.api.limiter.allow(&caller.name) {
            return self.send(ServerFrame::Error { error: format!("rate limited: over {} requests a second for this token", RateLimiter::PER_SECOND) });
        }
        match frame {
            ClientFrame::Auth { .. } => self.send(ServerFrame::Error { error: "already authenticated".into() }),
            ClientFrame::Subscribe { id, topic, since, vehicle, severity, state, metrics, max_hz, mode } => {
                let key = (topic, vehicle);
                if self.subscriptions.contains_key(&key) {
                    return self.send(ServerFrame::refused(&id, format!("already subscribed to {}", topic.name())));
                }
                let forwarder = if topic == Topic::Vehicle {
                    let view = match VehicleView::new(vehicle, metrics, max_hz, mode) {
                        Ok(view) => view,
                        Err(why) => return self.send(ServerFrame::refused(&id, why)),
                    };
                    // Listening before the reply goes: every frame after it reaches the client.
                    let samples = self.api.hub.samples();
                    self.send(ServerFrame::done(&id));
                    tokio::spawn(forward_vehicle(view, samples, self.queue.clone(), self.closer.clone()))
                } else {
                    let narrowing = match Narrowing::new(topic, vehicle, severity, state, metrics.is_some() || max_hz.is_some() || mode.is_some()) {
                        Ok(narrowing) => narrowing,
                        Err(why) => return self.send(ServerFrame::refused(&id, why)),
                    };
                    self.send(ServerFrame::done(&id));
                    let joined = self.api.hub.join(topic, since);
                    tokio::spawn(forward(topic, narrowing, joined.first, joined.receiver, self.api.hub.clone(), self.queue.clone(), self.closer.clone()))
                };
                self.subscriptions.insert(key, forwarder);
            }
            ClientFrame::Unsubscribe { id, topic, vehicle } => match self.subscriptions.remove(&(topic, vehicle)) {
                Some(forwarder) => {
                    forwarder.abort();
                    self.send(ServerFrame::done(&id));
                }
                None => self.send(ServerFrame::refused(&id, format!("not subscribed to {}", topic.name()))),
            },
            ClientFrame::Ack { id, alert } => self.operate(&caller, id, alert, Operation::Ack).await,
            ClientFrame::Clear { id, alert } => self.operate(&caller, id, alert, Operation::Clear).await,
            ClientFrame::Assign { id, alert, to } => self.operate(&caller, id, alert, Operation::Assign { to }).await,
            ClientFrame::Shelve { id, alert, for_s } => self.operate(&caller, id, alert, Operation::Shelve { for_s }).await,
            ClientFrame::Comment { id, alert, text } => self.operate(&caller, id, alert, Operation::Comment { text }).await,
            ClientFrame::Command { id, vehicle, command, alert, ttl_s } => self.operate(&caller, id, alert.unwrap_or_default(), Operation::Command { vehicle, command, ttl_s }).await,
        }
    }

    /// An operator action, audited as the token's name; refused for viewers and where no
    /// centre takes actions.
    async fn operate(&self, caller: &Caller, id: String, alert: String, operation: Operation) {
        if !caller.role.may_operate() {
            return self.send(ServerFrame::refused(&id, format!("the {:?} role may not act on alerts or command vehicles", caller.role).to_lowercase()));
        }
        let Some(operators) = self.api.operators.clone() else {
            return self.send(ServerFrame::refused(&id, "no centre takes operator actions here"));
        };
        let answer = operators.submit(&alert, &caller.name, operation);
        let reply = tokio::task::spawn_blocking(move || answer.recv_timeout(REPLY_WITHIN)).await;
        match reply {
            Ok(Ok(reply)) if reply.ok => self.send(match reply.command {
                Some(command) => ServerFrame::issued(&id, command),
                None => ServerFrame::done(&id),
            }),
            Ok(Ok(reply)) => self.send(ServerFrame::refused(&id, reply.error.unwrap_or_else(|| "refused".into()))),
            _ => self.send(ServerFrame::refused(&id, format!("the centre did not answer within {} s", REPLY_WITHIN.as_secs()))),
        }
    }
}

/// Queues a message without waiting; a full queue asks the writer to close the connection.
fn enqueue(queue: &mpsc::Sender<Message>, closer: &mpsc::Sender<CloseReason>, message: Message) -> bool {
    match queue.try_send(message) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            let _ = closer.try_send((close::TOO_SLOW, format!("too slow: {SEND_QUEUE} frames waiting to be read")));
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

/// What a subscription to a shared topic keeps of its records: one vehicle's, alerts of a
/// severity or worse, and (in snapshots only) alerts in a state. Deltas are still sent when
/// nothing in them is kept, emptied, so the client's `seq` never skips.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Narrowing {
    vehicle: Option<VehicleId>,
    severity: Option<Severity>,
    state: Option<AlertState>,
}

impl Narrowing {
    /// The narrowing a subscription asked for, or why `topic` does not take it.
    /// `telemetry_options` says whether it also gave options only the vehicle topic takes.
    fn new(topic: Topic, vehicle: Option<VehicleId>, severity: Option<Severity>, state: Option<AlertState>, telemetry_options: bool) -> Result<Self, String> {
        if telemetry_options {
            return Err(format!("metrics, max_hz and mode are for the vehicle topic, not {}", topic.name()));
        }
        if topic == Topic::Fleet && vehicle.is_some() {
            return Err("the fleet topic holds every vehicle: subscribe to topic vehicle for one vehicle's telemetry".into());
        }
        if topic != Topic::Alerts && (severity.is_some() || state.is_some()) {
            return Err(format!("severity and state filter the alerts topic, not {}", topic.name()));
        }
        Ok(Self { vehicle, severity, state })
    }

    /// `frame` with only the records kept, or `None` when it is kept whole.
    fn narrow(&self, topic: Topic, frame: &str) -> Option<String> {
        let field = topic.records().filter(|_| *self != Self::default())?;
        let mut value: serde_json::Value = serde_json::from_str(frame).ok()?;
        let snapshot = value["type"] == "snapshot";
        value["data"][field].as_array_mut()?.retain(|record| self.keeps(topic, record, snapshot));
        Some(value.to_string())
    }

    fn keeps(&self, topic: Topic, record: &serde_json::Value, snapshot: bool) -> bool {
        let vehicle = if topic == Topic::Alerts { &record["key"]["vehicle"] } else { &record["vehicle"] };
        if self.vehicle.is_some_and(|wanted| vehicle.as_str() != Some(wanted.to_string().as_str())) {
            return false;
        }
        if let Some(least) = self.severity {
            let reached = serde_json::from_value::<Severity>(record["highest_severity"].clone());
            if !reached.is_ok_and(|reached| reached >= least) {
                return false;
            }
        }
        match self.state {
            Some(state) if snapshot => state.holds_for(record["active"].as_bool().unwrap_or(false), record["acknowledged"].as_bool().unwrap_or(false)),
            _ => true,
        }
    }
}

/// A subscription: the first frames, then each newer delta; a subscriber left behind by the
/// broadcast gets a fresh snapshot flagged `resync`, which holds everything it missed.
async fn forward(
    topic: Topic,
    narrowing: Narrowing,
    first: Vec<Numbered>,
    mut receiver: broadcast::Receiver<Numbered>,
    hub: Arc<Hub>,
    queue: mpsc::Sender<Message>,
    closer: mpsc::Sender<CloseReason>,
) {
    let mut last = 0;
    let put = |(seq, frame): Numbered, last: &mut u64| {
        *last = seq;
        let text = match narrowing.narrow(topic, &frame) {
            Some(narrowed) => narrowed.into(),
            None => frame.as_ref().into(),
        };
        enqueue(&queue, &closer, Message::Text(text))
    };
    let mut started = false;
    for numbered in first {
        if !put(numbered, &mut last) {
            return;
        }
        started = true;
    }
    loop {
        match receiver.recv().await {
            Ok((seq, frame)) if !started || seq > last => {
                started = true;
                if !put((seq, frame), &mut last) {
                    return;
                }
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => {
                if !put(hub.snapshot(topic, true), &mut last) {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// What a vehicle subscription sends: which vehicle, which metrics, how often and how.
struct VehicleView {
    vehicle: VehicleId,
    metrics: Vec<Metric>,
    interval_s: f64,
    mode: Downsample,
}

impl VehicleView {
    fn new(vehicle: Option<VehicleId>, metrics: Option<Vec<String>>, max_hz: Option<f64>, mode: Option<Downsample>) -> Result<Self, String> {
        let vehicle = vehicle.ok_or("the vehicle topic needs `vehicle`, like V0007")?;
        let metrics = match metrics {
            None => Metric::ALL.to_vec(),
            Some(names) => names.iter().map(|name| Metric::from_name(name).ok_or_else(|| format!("unknown metric `{name}`"))).collect::<Result<_, _>>()?,
        };
        let max_hz = max_hz.unwrap_or(DEFAULT_MAX_HZ);
        if !(max_hz > 0.0 && max_hz <= 1.0) {
            return Err(format!("max_hz must be above 0 and at most 1 (telemetry comes at 1 Hz), not {max_hz}"));
        }
        Ok(Self { vehicle, metrics, interval_s: 1.0 / max_hz, mode: mode.unwrap_or_default() })
    }
}

/// A vehicle's telemetry frame as it goes on the wire.
#[derive(serde::Serialize)]
struct TelemetryOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    vehicle: VehicleId,
    seq: u64,
    sim_time: f64,
    samples: u32,
    mode: Downsample,
    metrics: BTreeMap<&'a str, f64>,
}

/// A vehicle subscription: its vehicle's 1 Hz frames, one out per interval of simulated time
/// (the frames from the interval's first to the one that completes it), the interval's mean or
/// its last frame. Samples are filtered here, so each vehicle costs its
/// subscribers alone.
async fn forward_vehicle(view: VehicleView, mut samples: broadcast::Receiver<Arc<Sample>>, queue: mpsc::Sender<Message>, closer: mpsc::Sender<CloseReason>) {
    let mut sums = [0.0f64; METRIC_COUNT];
    let mut count = 0u32;
    let mut window_start: Option<f64> = None;
    loop {
        let sample = match samples.recv().await {
            Ok(sample) if sample.vehicle == view.vehicle => sample,
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let start = *window_start.get_or_insert(sample.sim_time);
        for metric in &view.metrics {
            let value = f64::from(sample.metrics.get(*metric));
            sums[*metric as usize] = match view.mode {
                Downsample::Mean => sums[*metric as usize] + value,
                Downsample::Latest => value,
            };
        }
        count += 1;
        if sample.sim_time - start + 1.0 >= view.interval_s {
            let divisor = if view.mode == Downsample::Mean { f64::from(count) } else { 1.0 };
            let metrics = view.metrics.iter().map(|m| (m.name(), sums[*m as usize] / divisor)).collect();
            let frame = TelemetryOut { kind: "telemetry", vehicle: view.vehicle, seq: sample.seq, sim_time: sample.sim_time, samples: count, mode: view.mode, metrics };
            let text = serde_json::to_string(&frame).unwrap_or_default();
            if !enqueue(&queue, &closer, Message::Text(text.into())) {
                return;
            }
            sums = [0.0; METRIC_COUNT];
            count = 0;
            window_start = None;
        }
    }
}
