//! The API server beside a simulation: its own thread and runtime, so the simulation's loop
//! never shares a scheduler with client connections; bound before the run starts (a taken
//! port fails the run at once) and stopped, connections closed with a reason, when it ends.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;

use super::auth::Tokens;
use super::http::History;
use super::hub::Hub;
use super::server::{Api, OperatorGate};
use super::{ApiError, serve};

/// How often the server takes in the telemetry waiting for it: the bus holds it meanwhile,
/// so the simulation never waits on the API.
pub const TELEMETRY_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// Where and for whom to serve.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The tokens; `None` makes up an admin token, on a loopback address only.
    pub tokens: Option<Tokens>,
    /// Origins besides the server's own whose pages may open the WebSocket.
    pub allowed_origins: Vec<String>,
    /// The store whose history the history endpoints serve (a `--store` URL), if any.
    pub store: Option<String>,
    /// The run those endpoints read unless a request names another; the latest when `None`.
    pub run: Option<String>,
}

/// A running server.
pub struct RunningApi {
    /// Where it listens (the port chosen, when 0 was asked).
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningApi {
    /// Binds `settings.listen` and serves `hub` there; operator actions go to `operators`.
    /// With no tokens on a loopback address an admin token is made up and a URL carrying it
    /// printed; elsewhere no tokens is refused.
    /// `feed` (the vehicles' telemetry and events), drained every [`TELEMETRY_EVERY`], gives
    /// maps their positions, vehicle subscriptions their frames and the events topic its events.
    pub fn start(settings: &ApiSettings, hub: Arc<Hub>, operators: Option<Arc<dyn OperatorGate>>, feed: Option<crate::bus::Subscription>) -> Result<Self, ApiError> {
        let (tokens, made_up) = match &settings.tokens {
            Some(tokens) if !tokens.is_empty() => (tokens.clone(), None),
            _ if settings.listen.ip().is_loopback() => {
                let (tokens, secret) = Tokens::generated_admin();
                (tokens, Some(secret))
            }
            _ => return Err(ApiError::OpenToTheNetwork(settings.listen)),
        };
        let listener = std::net::TcpListener::bind(settings.listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let mut api = Api::new(hub.clone(), tokens, operators, stopped.clone());
        api.allowed_origins = Arc::new(settings.allowed_origins.clone());
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("aegis-api").enable_all().build()?;
        // The history endpoints' store gets a pool of its own, opened on the server's runtime
        // before it serves (its thread, since the caller may be on a runtime of its own).
        let store = settings.store.clone();
        let run = settings.run.clone();
        let (opened, ready) = std::sync::mpsc::channel::<Result<(), ApiError>>();
        let thread = std::thread::Builder::new().name("aegis-api".into()).spawn(move || {
            runtime.block_on(async move {
                if let Some(url) = store {
                    match crate::store::open(&url).await {
                        Ok(store) => api.history = Some(History { store, run }),
                        Err(e) => return drop(opened.send(Err(ApiError::Store(format!("--store {url}: {e}"))))),
                    }
                }
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(e) => return drop(opened.send(Err(e.into()))),
                };
                let _ = opened.send(Ok(()));
                if let Some(feed) = feed {
                    tokio::spawn(async move {
                        let mut every = tokio::time::interval(TELEMETRY_EVERY);
                        loop {
                            every.tick().await;
                            hub.report("aegis_api_inbox", "Vehicle messages waiting for the API to take them in.", feed.receiver().len() as f64);
                            let batch: Vec<_> = feed.try_iter().collect();
                            hub.take_in(&batch);
                        }
                    });
                }
                let mut stopped = stopped;
                if let Err(e) = serve(listener, api, async move { let _ = stopped.wait_for(|stop| *stop).await; }).await {
                    eprintln!("[aegis] API server: {e}");
                }
            });
        })?;
        ready.recv().unwrap_or_else(|_| Err(ApiError::Store("the API server's thread ended before it served".into())))?;
        eprintln!("[aegis] API listening on http://{addr} (WebSocket ws://{addr}/ws, HTTP /api/v1)");
        if let Some(secret) = made_up {
            eprintln!("[aegis] API for this run only, with an admin token made up now: http://{addr}/?token={secret}");
        }
        Ok(Self { addr, stop, thread: Some(thread) })
    }

    /// Closes every connection with a reason and stops serving.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for RunningApi {
    fn drop(&mut self) {
        self.shut_down();
    }
}
