//! The HTTP side of the API (docs/openapi.yaml): under `/api/v1`, behind a bearer token, the
//! live fleet, alerts, commands, missions, events and world from the [`Hub`], and history
//! (runs, a vehicle's telemetry, every step of alerts', commands' and missions' lives) from
//! the store's query service when a store is attached, else 503 with the reason. Open beside
//! it: the dashboard page, `/healthz`, `/metrics` (counts only) and the OpenAPI document.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::protocol::Topic;
use super::server::{Api, RateLimiter};
use crate::model::{Severity, VehicleId};
use crate::orchestrator::commands::CommandState;
use crate::orchestrator::missions::MissionState;
use crate::store::query::{self, HistoryFilter, RangeQuery};
use crate::store::{Store, StoreError, StoredRun};

/// Rows a history page holds unless `limit` says otherwise, and the most it may say.
pub const PAGE: u32 = 1000;
const PAGE_MAX: u32 = 10_000;

/// The store the history endpoints read, and the run they read unless a request names one
/// (the serving process's own run, or else the latest).
#[derive(Clone)]
pub struct History {
    /// The store.
    pub store: Store,
    /// The default run's name.
    pub run: Option<String>,
}

/// The routes under `/api/v1` (the caller adds the token check).
pub fn v1() -> Router<Api> {
    use axum::routing::get;
    Router::new()
        .route("/fleet", get(fleet))
        .route("/vehicles", get(vehicles))
        .route("/vehicles/{id}", get(vehicle))
        .route("/vehicles/{id}/telemetry", get(telemetry))
        .route("/alerts", get(alerts))
        .route("/alerts/history", get(alert_history))
        .route("/commands", get(commands))
        .route("/commands/history", get(command_history))
        .route("/missions", get(missions))
        .route("/missions/history", get(mission_history))
        .route("/events", get(events))
        .route("/world", get(world))
        .route("/runs", get(runs))
}

/// An error answer: `{"error": why}`.
pub fn error_body(status: StatusCode, why: impl Into<String>) -> Response {
    (status, Json(json!({ "error": why.into() }))).into_response()
}

/// The caller a request's `Authorization: Bearer` header names.
pub fn bearer_caller(api: &Api, headers: &HeaderMap) -> Option<Caller> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    api.tokens.caller(value.strip_prefix("Bearer ")?.trim())
}

/// The token check and rate limit in front of `/api/v1`.
pub async fn bearer(State(api): State<Api>, mut request: Request, next: Next) -> Response {
    match bearer_caller(&api, request.headers()) {
        Some(caller) if !api.limiter.allow(&caller.name) => error_body(StatusCode::TOO_MANY_REQUESTS, format!("over {} requests a second for this token", RateLimiter::PER_SECOND)),
        Some(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        None => error_body(StatusCode::UNAUTHORIZED, "a bearer token is required (Authorization: Bearer <token>)"),
    }
}

/// The dashboard: one page, no data in it (that comes with a token), nothing fetched from
/// elsewhere.
const DASHBOARD: &str = include_str!("../../assets/dashboard/index.html");

/// The HTTP API's OpenAPI document, served as written.
const OPENAPI: &str = include_str!("../../docs/openapi.yaml");

/// `GET /`: the dashboard page.
pub async fn dashboard() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], DASHBOARD).into_response()
}

/// `GET /api/v1/openapi.yaml`: the HTTP API's document.
pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI).into_response()
}

/// `GET /healthz`: up.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "ok": true }))
}

/// Prometheus text: nothing about any vehicle, only counts.
pub async fn metrics(State(api): State<Api>) -> Response {
    let (vehicles, alerts, active) = api.hub.counts();
    let mut text = String::new();
    let mut gauge = |name: &str, help: &str, value: f64| {
        text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"));
    };
    gauge("aegis_api_websocket_clients", "WebSocket connections open.", api.connections() as f64);
    gauge("aegis_api_subscriptions", "Topic subscriptions open.", api.hub.subscribers() as f64);
    gauge("aegis_api_messages_in", "Telemetry frames and events the API has taken in.", api.hub.messages_in() as f64);
    gauge("aegis_fleet_vehicles", "Vehicles the centre knows.", vehicles as f64);
    gauge("aegis_alerts", "Alerts known, active or not.", alerts as f64);
    gauge("aegis_alerts_active", "Alerts active.", active as f64);
    for topic in Topic::SHARED {
        gauge(&format!("aegis_api_{}_seq", topic.name()), "The topic's latest sequence number.", api.hub.seq(topic) as f64);
    }
    if let Some(messages) = api.hub.fleet_json()["summary"]["messages"].as_f64() {
        gauge("aegis_centre_messages", "Messages the centre has processed.", messages);
    }
    let commands = api.hub.commands(|c| !c.state.is_final()).len();
    gauge("aegis_commands_in_flight", "Commands not yet in a final state.", commands as f64);
    for (name, (help, value)) in api.hub.reported() {
        gauge(&name, &help, value);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn world(State(api): State<Api>) -> Json<Value> {
    Json(api.hub.world().clone())
}

async fn fleet(State(api): State<Api>) -> Json<Value> {
    Json(api.hub.fleet_json())
}

async fn vehicles(State(api): State<Api>) -> Json<Value> {
    let fleet = api.hub.fleet_json();
    let list: Vec<Value> = fleet["vehicles"]
        .as_object()
        .map(|vehicles| {
            vehicles
                .iter()
                .map(|(id, summary)| {
                    let mut row = summary.clone();
                    row["id"] = Value::String(id.clone());
                    row
                })
                .collect()
        })
        .unwrap_or_default();
    Json(json!({ "vehicles": list }))
}

/// Why a request is not answered: its status and the reason, sent as `{"error": why}`.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    why: String,
}

impl Refusal {
    fn new(status: StatusCode, why: impl Into<String>) -> Self {
        Self { status, why: why.into() }
    }

    fn bad(why: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, why)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error_body(self.status, self.why)
    }
}

impl From<QueryRejection> for Refusal {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad(rejection.body_text())
    }
}

/// A store error: a question that cannot be answered (400), or the database failing (500).
impl From<StoreError> for Refusal {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Query(why) => Self::bad(why),
            other => Self::new(StatusCode::INTERNAL_SERVER_ERROR, format!("the store failed: {other}")),
        }
    }
}

type Answered = Result<Json<Value>, Refusal>;

fn vehicle_id(text: &str) -> Result<VehicleId, Refusal> {
    text.parse::<VehicleId>().map_err(|_| Refusal::bad(format!("`{text}` is not a vehicle id like V0007")))
}

async fn vehicle(State(api): State<Api>, Path(id): Path<String>) -> Answered {
    let vehicle = vehicle_id(&id)?;
    let summary = api.hub.vehicle(vehicle).ok_or_else(|| Refusal::new(StatusCode::NOT_FOUND, format!("no vehicle {vehicle} in the fleet")))?;
    Ok(Json(json!({ "id": vehicle, "summary": summary })))
}

/// Filters of `GET /api/v1/alerts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertFilter {
    vehicle: Option<VehicleId>,
    severity: Option<Severity>,
    active: Option<bool>,
}

async fn alerts(State(api): State<Api>, filter: Result<Query<AlertFilter>, QueryRejection>) -> Answered {
    let Query(f) = filter?;
    let list = api.hub.alerts(|a| f.vehicle.is_none_or(|v| a.key.vehicle == v) && f.severity.is_none_or(|s| a.severity >= s) && f.active.is_none_or(|active| a.active == active));
    Ok(Json(json!({ "alerts": list })))
}

/// Filters of `GET /api/v1/commands`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandFilter {
    vehicle: Option<VehicleId>,
    state: Option<CommandState>,
}

async fn commands(State(api): State<Api>, filter: Result<Query<CommandFilter>, QueryRejection>) -> Answered {
    let Query(f) = filter?;
    let list = api.hub.commands(|c| f.vehicle.is_none_or(|v| c.vehicle == v) && f.state.is_none_or(|s| c.state == s));
    Ok(Json(json!({ "commands": list })))
}

/// Filters of `GET /api/v1/missions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MissionFilter {
    vehicle: Option<VehicleId>,
    state: Option<MissionState>,
}

async fn missions(State(api): State<Api>, filter: Result<Query<MissionFilter>, QueryRejection>) -> Answered {
    let Query(f) = filter?;
    let list = api.hub.missions(|m| f.vehicle.is_none_or(|v| m.vehicle == Some(v)) && f.state.is_none_or(|s| m.state == s));
    Ok(Json(json!({ "missions": list })))
}

/// Filters of `GET /api/v1/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventFilter {
    vehicle: Option<VehicleId>,
}

async fn events(State(api): State<Api>, filter: Result<Query<EventFilter>, QueryRejection>) -> Answered {
    let Query(f) = filter?;
    Ok(Json(json!({ "events": api.hub.events(|e| f.vehicle.is_none_or(|v| e.vehicle == v)) })))
}

fn no_store() -> Refusal {
    Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "no store is attached to this server, so it keeps no history: start it with --store URL")
}

/// The attached store and the run a request asks about.
async fn history_run(api: &Api, run: Option<&str>) -> Result<(Store, StoredRun), Refusal> {
    let history = api.history.as_ref().ok_or_else(no_store)?;
    let name = run.or(history.run.as_deref());
    let run = query::run(&history.store, name).await.map_err(|e| match e {
        StoreError::Query(why) => Refusal::new(StatusCode::NOT_FOUND, why),
        other => other.into(),
    })?;
    Ok((history.store.clone(), run))
}

/// A point in a run's simulated time as a request gives it: seconds into the run (`3600`), a
/// duration into it (`1h`), or an RFC 3339 instant.
fn sim_seconds(run: &StoredRun, field: &str, text: &str) -> Result<f64, Refusal> {
    if let Ok(seconds) = text.parse::<f64>()
        && seconds.is_finite()
    {
        return Ok(seconds);
    }
    if let Ok(duration) = humantime::parse_duration(text) {
        return Ok(duration.as_secs_f64());
    }
    if let Ok(instant) = humantime::parse_rfc3339_weak(text) {
        let ms = instant.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        return Ok((ms - run.start.unix_ms() as i64) as f64 / 1000.0);
    }
    Err(Refusal::bad(format!("{field}: `{text}` is not seconds into the run (3600), a duration (1h) or an RFC 3339 instant")))
}

/// A history request's query parameters, checked against the names its endpoint takes.
struct Params(BTreeMap<String, String>);

/// The history parameters every history endpoint takes.
const SPAN: [&str; 6] = ["run", "vehicle", "from", "to", "limit", "offset"];

impl Params {
    fn new(query: RawQuery, takes: &[&str]) -> Result<Self, Refusal> {
        let Query(params) = query?;
        if let Some(unknown) = params.keys().find(|k| !SPAN.contains(&k.as_str()) && !takes.contains(&k.as_str())) {
            let known: Vec<&str> = SPAN.iter().chain(takes).copied().collect();
            return Err(Refusal::bad(format!("unknown parameter `{unknown}` (this endpoint takes {})", known.join(", "))));
        }
        Ok(Self(params))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    fn number(&self, name: &str, default: u32) -> Result<u32, Refusal> {
        self.get(name).map_or(Ok(default), |text| text.parse().map_err(|_| Refusal::bad(format!("{name}: `{text}` is not a whole number"))))
    }

    /// The span and page asked of `run`.
    fn span(&self, run: &StoredRun) -> Result<HistoryFilter, Refusal> {
        let mut filter = HistoryFilter::whole(run);
        filter.vehicle = self.get("vehicle").map(vehicle_id).transpose()?;
        if let Some(from) = self.get("from") {
            filter.from_s = sim_seconds(run, "from", from)?;
        }
        if let Some(to) = self.get("to") {
            filter.to_s = sim_seconds(run, "to", to)?;
        }
        filter.limit = match self.number("limit", PAGE)? {
            limit @ 1..=PAGE_MAX => limit,
            limit => return Err(Refusal::bad(format!("limit must be 1 to {PAGE_MAX}, not {limit}"))),
        };
        filter.offset = self.number("offset", 0)?;
        Ok(filter)
    }
}

type RawQuery = Result<Query<BTreeMap<String, String>>, QueryRejection>;

/// A page of answers: the run, the rows as objects, and the offset of the next page when this
/// one is full.
fn page(run: &StoredRun, answer: query::Answer, filter: &HistoryFilter) -> Json<Value> {
    let rows = answer.json();
    let full = rows.as_array().is_some_and(|r| r.len() >= filter.limit as usize);
    Json(json!({ "run": run.name, "columns": answer.columns, "rows": rows, "next_offset": full.then(|| filter.offset + filter.limit) }))
}

async fn runs(State(api): State<Api>) -> Answered {
    let history = api.history.as_ref().ok_or_else(no_store)?;
    Ok(Json(json!({ "runs": history.store.runs().await?, "current": history.run })))
}

/// Answers a history request taking `takes` besides the span: `answer` is asked with the
/// parameters, the store, the run and the span.
async fn history<F, Fut>(api: &Api, query: RawQuery, takes: &[&str], answer: F) -> Answered
where
    F: FnOnce(Params, Store, StoredRun, HistoryFilter) -> Fut,
    Fut: std::future::Future<Output = Result<query::Answer, Refusal>>,
{
    let params = Params::new(query, takes)?;
    let (store, run) = history_run(api, params.get("run")).await?;
    let filter = params.span(&run)?;
    let answer = answer(params, store, run.clone(), filter.clone()).await?;
    Ok(page(&run, answer, &filter))
}

async fn telemetry(State(api): State<Api>, Path(id): Path<String>, query: RawQuery) -> Answered {
    let vehicle = vehicle_id(&id)?;
    history(&api, query, &["metrics", "every"], |params, store, run, span| async move {
        let names: Vec<String> = params.get("metrics").map(|m| m.split(',').map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()).collect()).unwrap_or_default();
        let metrics = query::metrics(&names)?;
        let every_s = params.get("every").map(|every| sim_seconds(&run, "every", every)).transpose()?;
        let request = RangeQuery { vehicle, metrics, from_s: span.from_s, to_s: span.to_s, every_s, limit: span.limit, offset: span.offset };
        Ok(query::range(&store, &run, &request).await?)
    })
    .await
}

async fn alert_history(State(api): State<Api>, query: RawQuery) -> Answered {
    history(&api, query, &["component", "severity", "state"], |params, store, run, span| async move {
        let text = |name: &str| params.get(name).map(str::to_owned);
        let only = query::AlertFilter { component: text("component"), severity: text("severity"), state: text("state") };
        Ok(query::alerts(&store, &run, &span, &only).await?)
    })
    .await
}

async fn command_history(State(api): State<Api>, query: RawQuery) -> Answered {
    history(&api, query, &["action"], |params, store, run, span| async move { Ok(query::commands(&store, &run, &span, params.get("action")).await?) }).await
}

async fn mission_history(State(api): State<Api>, query: RawQuery) -> Answered {
    history(&api, query, &[], |_, store, run, span| async move { Ok(query::missions(&store, &run, &span).await?) }).await
}
