//! The command line: `aegis run`, `aegis fleet`, `aegis vehicle`, `aegis orchestrator`,
//! `aegis scenario validate`, `aegis bench sim|bus`, `aegis metrics`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::app::{RunOptions, run_headless};
use crate::bus::RedisConfig;
use crate::model::VehicleId;
use crate::bus::redis::OrchestratorOptions;
use crate::orchestrator::policy::Policy;
use crate::scenario::{Scenario, parse_duration};
use crate::sim::{Members, Speed};

/// AEGIS: fleet digital twin and predictive-maintenance workbench.
#[derive(Parser, Debug)]
#[command(name = "aegis", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a scenario: in a 3D window, or with --headless as a server or load run.
    Run(RunArgs),
    /// Simulate the fleet, or shard I of N of it, headless, publishing over Redis.
    /// (`aegis fleet status` shows the running orchestrator's fleet status.)
    Fleet(FleetArgs),
    /// The running orchestrator's fleet status (JSON); spelt `aegis fleet status`.
    #[command(hide = true)]
    FleetStatus(ConsoleArgs),
    /// List and work on the running orchestrator's alerts.
    Alerts {
        #[command(subcommand)]
        command: AlertsCommand,
    },
    /// Run one vehicle agent, publishing over Redis.
    Vehicle(VehicleArgs),
    /// Consume the whole fleet over Redis: state, sequence numbers, presence.
    Orchestrator(OrchestratorArgs),
    /// Work with scenario files.
    Scenario {
        #[command(subcommand)]
        command: ScenarioCommand,
    },
    /// Store a fleet's messages from Redis (`aegis store --redis URL --store URL`), or manage
    /// the fleet history database: migrate, list runs, delete a run.
    #[command(args_conflicts_with_subcommands = true)]
    Store {
        #[command(subcommand)]
        command: Option<StoreCommand>,
        #[command(flatten)]
        service: StoreServiceArgs,
    },
    /// Ask the fleet history database: latest state, telemetry over time, alerts, commands,
    /// missions, fleet aggregates, the TSBS IoT queries.
    Query {
        #[command(subcommand)]
        command: QueryCommand,
    },
    /// Print what the API's WebSocket sends, as it arrives (reconnects and resumes by itself).
    Watch(WatchArgs),
    /// Build training datasets for the failure-prediction model (docs/ML.md).
    Dataset {
        #[command(subcommand)]
        command: DatasetCommand,
    },
    /// Train the failure-prediction model on a dataset (docs/ML.md).
    Train(TrainArgs),
    /// Measure performance.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Print the telemetry metric table as Markdown.
    Metrics,
}

/// What every simulating command takes: the scenario and its overrides.
#[derive(Args, Debug)]
struct ScenarioArgs {
    /// Scenario file (TOML).
    #[arg(long)]
    scenario: PathBuf,
    /// Simulated seconds per wall second, or `max`.
    #[arg(long, default_value = "1")]
    speed: Speed,
    /// Simulated time to run, like 90s, 30m, 24h, 30d (overrides the scenario).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Run seed (overrides the scenario).
    #[arg(long)]
    seed: Option<u64>,
    /// Write a JSON summary to this file at exit.
    #[arg(long)]
    summary: Option<PathBuf>,
}

impl ScenarioArgs {
    /// Run options from the scenario file with these overrides, and `vehicles` as the fleet
    /// size when given.
    fn options(self, vehicles: Option<u32>) -> anyhow::Result<RunOptions> {
        let scenario = Scenario::load(&self.scenario)?;
        let mut options = RunOptions::from_scenario(scenario);
        options.vehicles = vehicles.unwrap_or(options.vehicles);
        if options.vehicles == 0 {
            anyhow::bail!("--vehicles: expected at least one vehicle");
        }
        options.seed = self.seed.unwrap_or(options.seed);
        options.duration = self.duration.unwrap_or(options.duration);
        options.speed = self.speed;
        options.summary = self.summary;
        Ok(options)
    }
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// Run without a window.
    #[arg(long)]
    headless: bool,
    /// Fleet size (overrides the scenario).
    #[arg(long)]
    vehicles: Option<u32>,
    /// Write every telemetry envelope to this file as JSON Lines.
    #[arg(long)]
    telemetry_out: Option<PathBuf>,
    /// Decision policy for the in-process orchestrator (default: assets/policies/default.toml).
    #[arg(long, conflicts_with = "no_orchestrator")]
    policy: Option<PathBuf>,
    /// Simulate the fleet alone: no alerts, commands or missions from a centre, exactly the
    /// messages `aegis fleet` sends.
    #[arg(long)]
    no_orchestrator: bool,
    /// The failure model the centre consults (default: the one built in,
    /// assets/models/failure.aegis); refused at start-up if it cannot be used.
    #[arg(long, conflicts_with = "no_model")]
    model: Option<PathBuf>,
    /// Run the centre without the failure model: no predictions.
    #[arg(long)]
    no_model: bool,
    /// Save one rendered frame to this PNG and exit (3D view only).
    #[arg(long)]
    screenshot: Option<PathBuf>,
    /// Wall seconds after which the 3D view exits (and takes the screenshot).
    #[arg(long)]
    exit_after: Option<f64>,
    /// Store every message in this database: `sqlite:aegis.db` or `postgres://host/db`.
    #[arg(long, env = "AEGIS_STORE")]
    store: Option<String>,
    #[command(flatten)]
    lifecycle: LifecycleArgs,
    #[command(flatten)]
    api: ApiArgs,
}

/// `aegis watch --url ws://... --token T --topic alerts`.
#[derive(Args, Debug)]
struct WatchArgs {
    /// The API's WebSocket.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    url: String,
    /// The token (or AEGIS_TOKEN).
    #[arg(long, env = "AEGIS_TOKEN", hide_env_values = true)]
    token: String,
    /// Topics: fleet, alerts, commands, events (alerts:V0007 and the like for one vehicle's)
    /// or vehicle:V0007 (repeat, or separate with commas).
    #[arg(long = "topic", value_delimiter = ',', required = true)]
    topics: Vec<String>,
    /// A vehicle topic's metrics (default every metric).
    #[arg(long, value_delimiter = ',')]
    metrics: Option<Vec<String>>,
    /// A vehicle topic's frames per simulated second (default 0.2).
    #[arg(long)]
    max_hz: Option<f64>,
    /// Print each frame as it came, one JSON document a line.
    #[arg(long)]
    json: bool,
}

/// The WebSocket and HTTP API (docs/asyncapi.yaml).
#[derive(Args, Debug, Clone)]
struct ApiArgs {
    /// Serve the API here, like 127.0.0.1:8080. Without tokens a loopback address gets an
    /// admin token made up and printed in a URL; any other address is refused.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Tokens file: `[[token]]` tables of name, role (viewer, operator, admin) and secret.
    #[arg(long, requires = "listen")]
    tokens: Option<PathBuf>,
    /// Tokens as name:role:secret,... (added to --tokens).
    #[arg(long, env = "AEGIS_API_TOKENS", hide_env_values = true)]
    api_tokens: Option<String>,
    /// Origins, besides the server's own, whose pages may open the WebSocket.
    #[arg(long = "allow-origin", requires = "listen")]
    allow_origins: Vec<String>,
}

impl ApiArgs {
    fn settings(&self) -> anyhow::Result<Option<crate::api::ApiSettings>> {
        let Some(listen) = self.listen else { return Ok(None) };
        let mut tokens = Vec::new();
        if let Some(path) = &self.tokens {
            tokens.push(crate::api::auth::Tokens::from_file(path)?);
        }
        if let Some(list) = &self.api_tokens {
            tokens.push(crate::api::auth::Tokens::parse_list(list)?);
        }
        let tokens = (!tokens.is_empty()).then(|| tokens.into_iter().fold(crate::api::auth::Tokens::default(), crate::api::auth::Tokens::joined));
        Ok(Some(crate::api::ApiSettings { listen, tokens, allowed_origins: self.allow_origins.clone(), store: None, run: None }))
    }
}

/// Which database, and which run in it.
#[derive(Args, Debug)]
struct StoreArgs {
    /// The database: `sqlite:aegis.db` or `postgres://host/db`.
    #[arg(long, env = "AEGIS_STORE")]
    store: String,
}

/// How stored telemetry ages, in simulated time (docs/STORAGE.md).
#[derive(Args, Debug, Clone)]
struct LifecycleArgs {
    /// Telemetry older than this behind the latest stored row is compressed.
    #[arg(long, value_parser = parse_duration, default_value = "24h")]
    compact_after: Duration,
    /// Whole days older than this are exported to Parquet under --archive and dropped.
    #[arg(long, value_parser = parse_duration, default_value = "30d", conflicts_with = "keep_all")]
    retain_for: Duration,
    /// Keep all telemetry in the database: no retention.
    #[arg(long)]
    keep_all: bool,
    /// Where retention writes its Parquet files (ARCHIVE/RUN/YYYY-MM-DD.parquet).
    #[arg(long, default_value = "aegis-archive")]
    archive: PathBuf,
}

impl LifecycleArgs {
    fn settings(&self) -> crate::store::lifecycle::LifecycleSettings {
        crate::store::lifecycle::LifecycleSettings {
            compact_after: self.compact_after,
            retain_for: (!self.keep_all).then_some(self.retain_for),
            archive: self.archive.clone(),
            ..Default::default()
        }
    }
}

/// `aegis store --redis URL --store URL`: the store as a process of its own.
#[derive(Args, Debug)]
struct StoreServiceArgs {
    /// The database: `sqlite:aegis.db` or `postgres://host/db`.
    #[arg(long, env = "AEGIS_STORE")]
    store: Option<String>,
    /// Redis server, like redis://127.0.0.1:6379.
    #[arg(long, env = crate::bus::redis::REDIS_URL_ENV)]
    redis: Option<String>,
    /// Key prefix of the fleet's streams.
    #[arg(long, default_value = "aegis")]
    redis_prefix: String,
    /// Consumer group: every group stores every message once.
    #[arg(long, default_value = "store")]
    group: String,
    /// This consumer's name in the group; a restart under the same name re-reads what it had
    /// not acknowledged.
    #[arg(long, default_value = "store-1")]
    consumer: String,
    /// Spool file for rows that wait while the database is down (default: in the system's
    /// temporary directory).
    #[arg(long)]
    spool: Option<PathBuf>,
    /// Write a JSON summary here at exit.
    #[arg(long)]
    summary: Option<PathBuf>,
    #[command(flatten)]
    lifecycle: LifecycleArgs,
}

#[derive(Subcommand, Debug)]
enum StoreCommand {
    /// Apply the schema migrations not yet applied, and nothing else.
    Migrate(StoreArgs),
    /// List the stored runs.
    Runs {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        format: OutputArgs,
    },
    /// The engine, how telemetry ages in it (raw, compacted) and why, and how much is which.
    Info {
        #[command(flatten)]
        store: StoreArgs,
        /// Print JSON instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Compact what is old enough now: each run's vehicle-hours older than `--older-than`
    /// before its own latest frame (the writer does this as a run goes; this catches up runs
    /// that ended, or were stored before compaction existed).
    Compact {
        #[command(flatten)]
        store: StoreArgs,
        /// Only this run (default: every run).
        #[arg(long)]
        run: Option<String>,
        /// Simulated age at which telemetry is compacted, behind the run's latest frame.
        #[arg(long, value_parser = parse_duration, default_value = "24h")]
        older_than: Duration,
    },
    /// Export a run's telemetry to Parquet, one file per UTC day (OUT/RUN/YYYY-MM-DD.parquet),
    /// with each row's ground-truth labels; the database keeps it.
    Export {
        #[command(flatten)]
        store: StoreArgs,
        /// The run (default: the latest).
        #[arg(long)]
        run: Option<String>,
        /// From this far into the run, in simulated time (default: its start).
        #[arg(long, value_parser = parse_duration)]
        from: Option<Duration>,
        /// To this far into the run, exclusive (default: its end).
        #[arg(long, value_parser = parse_duration)]
        to: Option<Duration>,
        /// The folder to write into.
        #[arg(long)]
        out: PathBuf,
    },
    /// Delete one run and all its rows.
    DeleteRun {
        #[command(flatten)]
        store: StoreArgs,
        /// The run's name, as `aegis store runs` lists it.
        name: String,
    },
}

/// How answers are printed.
#[derive(Args, Debug, Clone, Copy)]
struct OutputArgs {
    /// Print JSON instead of a table.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV instead of a table.
    #[arg(long)]
    csv: bool,
}

impl OutputArgs {
    fn print(self, answer: &crate::store::query::Answer) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(&answer.json())?);
        } else if self.csv {
            print!("{}", answer.csv());
        } else {
            print!("{}", answer.table());
        }
        Ok(())
    }
}

/// What every query takes.
#[derive(Args, Debug)]
struct QueryArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The run (default: the latest).
    #[arg(long)]
    run: Option<String>,
    /// Metrics to show, comma-separated wire names (default: all).
    #[arg(long, value_delimiter = ',')]
    metrics: Vec<String>,
    #[command(flatten)]
    format: OutputArgs,
}

/// Which rows of a history.
#[derive(Args, Debug)]
struct HistoryArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The run (default: the latest).
    #[arg(long)]
    run: Option<String>,
    /// Only this vehicle's, like V0003.
    #[arg(long)]
    vehicle: Option<VehicleId>,
    /// From this far into the run, like 0s or 1h30m.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    from: Duration,
    /// To this far into the run (default: its end).
    #[arg(long, value_parser = parse_duration)]
    to: Option<Duration>,
    /// Rows per page.
    #[arg(long, default_value_t = 1000)]
    limit: u32,
    /// Page number, from 0.
    #[arg(long, default_value_t = 0)]
    page: u32,
    #[command(flatten)]
    format: OutputArgs,
}

impl HistoryArgs {
    fn filter(&self, run: &crate::store::StoredRun) -> crate::store::query::HistoryFilter {
        crate::store::query::HistoryFilter {
            vehicle: self.vehicle,
            from_s: self.from.as_secs_f64(),
            to_s: self.to.map_or(run.sim_seconds + 1.0, |t| t.as_secs_f64()),
            limit: self.limit,
            offset: self.page.saturating_mul(self.limit),
        }
    }
}

/// A run, and how to print.
#[derive(Args, Debug)]
struct RunPick {
    #[command(flatten)]
    store: StoreArgs,
    /// The run (default: the latest).
    #[arg(long)]
    run: Option<String>,
    #[command(flatten)]
    format: OutputArgs,
}

#[derive(Subcommand, Debug)]
enum QueryCommand {
    /// Each vehicle's latest telemetry.
    Latest(QueryArgs),
    /// Every step of every alert's life (raised, acknowledged, cleared...), oldest first.
    Alerts {
        #[command(flatten)]
        history: HistoryArgs,
        /// Only alerts on this component (wire name), like cooling_system.
        #[arg(long)]
        component: Option<String>,
        /// Only alerts of this severity or worse: info, warning, minor, major, critical.
        #[arg(long)]
        severity: Option<String>,
        /// Only steps that left the alert in this state: active, acknowledged, shelved, cleared.
        #[arg(long)]
        state: Option<String>,
    },
    /// Commands sent, oldest first, with their vehicles' answers.
    Commands {
        #[command(flatten)]
        history: HistoryArgs,
        /// Only this action, like reduce_speed or assign_mission.
        #[arg(long)]
        action: Option<String>,
    },
    /// Missions assigned, oldest first: how far each got and how it ended.
    Missions {
        #[command(flatten)]
        history: HistoryArgs,
    },
    /// The fleet by model per hour or day: distance, energy, alerts, availability, health.
    Fleet {
        #[command(flatten)]
        pick: RunPick,
        /// Bucket length.
        #[arg(long, value_enum, default_value = "hour")]
        per: PeriodArg,
    },
    /// One of the TSBS IoT queries fleet databases are compared on.
    Tsbs {
        #[command(flatten)]
        pick: RunPick,
        /// Which query.
        #[arg(value_enum)]
        query: crate::store::query::Tsbs,
    },
    /// One vehicle's telemetry over a range of simulated time, raw or in buckets.
    Telemetry {
        #[command(flatten)]
        query: QueryArgs,
        /// The vehicle, like V0003.
        #[arg(long)]
        vehicle: VehicleId,
        /// From this far into the run, like 0s or 1h30m.
        #[arg(long, value_parser = parse_duration, default_value = "0s")]
        from: Duration,
        /// To this far into the run (default: its end).
        #[arg(long, value_parser = parse_duration)]
        to: Option<Duration>,
        /// Buckets of this length with min, avg and max, like 1m (default: raw rows).
        #[arg(long, value_parser = parse_duration)]
        every: Option<Duration>,
        /// Rows per page.
        #[arg(long, default_value_t = 1000)]
        limit: u32,
        /// Page number, from 0.
        #[arg(long, default_value_t = 0)]
        page: u32,
    },
}

/// Bucket length of fleet aggregates.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
enum PeriodArg {
    /// Hourly.
    Hour,
    /// Daily (UTC).
    Day,
}

/// Where Redis is and how the transport holds messages while it is away.
#[derive(Args, Debug, Clone)]
struct RedisArgs {
    /// Redis server, like redis://127.0.0.1:6379.
    #[arg(long, env = crate::bus::redis::REDIS_URL_ENV)]
    redis: String,
    /// Key prefix, to keep several fleets apart on one server.
    #[arg(long, default_value = "aegis")]
    redis_prefix: String,
    /// Messages held in memory while Redis is unreachable, before spilling to disk.
    #[arg(long, default_value_t = 100_000)]
    buffer: usize,
    /// Directory for the spill file and this process's record of its sequence numbers
    /// (default: one per server and prefix under the temp directory).
    #[arg(long, env = "AEGIS_SPILL_DIR")]
    spill_dir: Option<PathBuf>,
    /// Largest spill file in bytes; beyond it (or when the disk is full) the simulation slows
    /// down rather than lose messages.
    #[arg(long, default_value_t = 1 << 30)]
    spill_limit: u64,
    /// Approximate entries kept per partition stream (sets how long a consumer may be away).
    #[arg(long, default_value_t = 200_000)]
    stream_maxlen: u64,
}

impl RedisArgs {
    fn config(&self, identity: String) -> RedisConfig {
        let mut config = RedisConfig::new(self.redis.clone(), identity).with_prefix(self.redis_prefix.clone());
        config.memory_buffer = self.buffer;
        if let Some(dir) = &self.spill_dir {
            config.spill_dir = dir.clone();
        }
        config.stream_maxlen = self.stream_maxlen;
        config.spill_limit_bytes = self.spill_limit;
        config
    }
}

/// What `fleet` and `vehicle` share.
#[derive(Args, Debug)]
struct RemoteArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// Write every telemetry envelope this process sends to this file as JSON Lines.
    #[arg(long)]
    telemetry_out: Option<PathBuf>,
    /// Longest wait at exit for Redis to confirm what is still held.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    flush_timeout: Duration,
    #[command(flatten)]
    redis: RedisArgs,
}

#[derive(Args, Debug)]
struct FleetArgs {
    #[command(flatten)]
    remote: RemoteArgs,
    /// Whole fleet's size (overrides the scenario); each shard simulates its part.
    #[arg(long)]
    vehicles: Option<u32>,
    /// Simulate shard I of N (numbered from 1): vehicles whose number is I modulo N.
    #[arg(long, value_parser = Members::parse_shard)]
    shard: Option<Members>,
}

/// Where the running orchestrator keeps its state.
#[derive(Args, Debug)]
struct ConsoleArgs {
    /// Redis server, like redis://127.0.0.1:6379.
    #[arg(long, env = crate::bus::redis::REDIS_URL_ENV)]
    redis: String,
    /// Key prefix.
    #[arg(long, default_value = "aegis")]
    redis_prefix: String,
}

#[derive(Subcommand, Debug)]
enum AlertsCommand {
    /// Active alerts, highest priority first.
    List {
        #[command(flatten)]
        console: ConsoleArgs,
        /// Cleared alerts too.
        #[arg(long)]
        all: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge an alert.
    Ack(AlertChange),
    /// Clear an alert by hand.
    Clear(AlertChange),
    /// Assign an alert to someone.
    Assign {
        #[command(flatten)]
        change: AlertChange,
        /// Who takes it.
        #[arg(long)]
        to: String,
    },
    /// Hide an alert from the work queue for a while (simulation time).
    Shelve {
        #[command(flatten)]
        change: AlertChange,
        /// How long, like 30m.
        #[arg(long = "for", value_parser = parse_duration)]
        period: Duration,
    },
    /// Add a comment to an alert.
    Comment {
        #[command(flatten)]
        change: AlertChange,
        /// The comment.
        #[arg(long)]
        text: String,
    },
}

#[derive(Args, Debug)]
struct AlertChange {
    /// The alert, like A000012.
    id: String,
    /// Who is acting, for the audit trail.
    #[arg(long, default_value = "operator")]
    actor: String,
    #[command(flatten)]
    console: ConsoleArgs,
}

#[derive(Args, Debug)]
struct VehicleArgs {
    #[command(flatten)]
    remote: RemoteArgs,
    /// The vehicle, like V0007.
    #[arg(long)]
    id: VehicleId,
}

#[derive(Args, Debug)]
struct OrchestratorArgs {
    #[command(flatten)]
    redis: RedisArgs,
    /// Write a JSON summary to this file at exit.
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Consumer group: every group sees every message once.
    #[arg(long, default_value = "orchestrator")]
    group: String,
    /// This consumer's name; a restart under the same name resumes its pending messages.
    #[arg(long, default_value = "orchestrator-1")]
    consumer: String,
    /// Take over messages another consumer of the group has left pending this long.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    claim_idle: Duration,
    /// Declare a vehicle offline after this long without a message (3 heartbeats at 1x).
    #[arg(long, value_parser = parse_duration, default_value = "15s")]
    offline_after: Duration,
    /// Decision policy (default: assets/policies/default.toml).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// The fleet's scenario: its world and `[missions]` table. Without it the orchestrator
    /// assigns no missions.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// The database `aegis store` writes the fleet's history to, for the API's history
    /// endpoints (read only here).
    #[arg(long, env = "AEGIS_STORE", requires = "listen")]
    store: Option<String>,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Subcommand, Debug)]
enum ScenarioCommand {
    /// Check a scenario file; exits non-zero with file, line and column on error.
    Validate {
        /// Scenario file.
        path: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum DatasetCommand {
    /// Run a scenario headless once per seed, the centre in process, and write each run's
    /// rows (a vehicle a minute: window features and ground-truth labels) as Parquet.
    Build {
        /// Scenario file (TOML).
        #[arg(long)]
        scenario: PathBuf,
        /// Seeds, one run each: 1,2,3 or 1-5.
        #[arg(long, value_parser = parse_seeds)]
        seeds: SeedList,
        /// Fleet size (overrides the scenario).
        #[arg(long)]
        vehicles: Option<u32>,
        /// Simulated time per run (overrides the scenario).
        #[arg(long, value_parser = parse_duration)]
        duration: Option<Duration>,
        /// Decision policy of the in-process centre (default: assets/policies/default.toml).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// The dataset directory: a Parquet file per run and manifest.json.
        #[arg(long)]
        out: PathBuf,
    },
}

/// `aegis train --dataset DIR --out MODEL`.
#[derive(Args, Debug)]
struct TrainArgs {
    /// The dataset directory (`aegis dataset build --out`).
    #[arg(long)]
    dataset: PathBuf,
    /// The model file to write; its training report and curves go beside it as
    /// MODEL.report.json and MODEL.curves.svg.
    #[arg(long)]
    out: PathBuf,
    /// Seed of the folds, sampling, initial weights and batch order.
    #[arg(long, default_value = "1")]
    seed: u64,
    /// Folds of the cross-validation.
    #[arg(long, default_value = "5")]
    folds: usize,
    /// Epochs at most per training.
    #[arg(long, default_value = "40")]
    max_epochs: usize,
    /// Try one setting only instead of the search (quicker, for trials).
    #[arg(long)]
    no_search: bool,
}

/// Seeds from the command line.
#[derive(Debug, Clone)]
struct SeedList(Vec<u64>);

/// `1,2,3`, `1-5` or a mix: `1-3,7`.
fn parse_seeds(text: &str) -> Result<SeedList, String> {
    let mut seeds = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let number = |s: &str| s.trim().parse::<u64>().map_err(|_| format!("`{s}` is not a seed (a whole number)"));
        match part.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (number(from)?, number(to)?);
                if from > to || to - from >= 10_000 {
                    return Err(format!("`{part}`: expected a rising range of at most 10,000 seeds"));
                }
                seeds.extend(from..=to);
            }
            None => seeds.push(number(part)?),
        }
    }
    if seeds.is_empty() {
        return Err("expected at least one seed".into());
    }
    Ok(SeedList(seeds))
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Simulation throughput (vehicle-seconds per wall second) and memory per vehicle.
    Sim {
        /// Fleet size.
        #[arg(long)]
        vehicles: u32,
        /// Simulated time to measure over.
        #[arg(long, value_parser = parse_duration, default_value = "60s")]
        duration: Duration,
        /// Scenario whose world to use (defaults to scenarios/demo.toml's world, built in).
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The failure model in service: feature state, rows and batched inference per vehicle.
    Predict {
        /// Vehicles in the fleet (the batch).
        #[arg(long)]
        vehicles: u32,
        /// Minutes to measure over, after an hour that fills the windows.
        #[arg(long, default_value = "5")]
        minutes: u32,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The orchestrator's decision loop: whether it keeps up at 1 Hz, and alert latency.
    Orchestrator {
        /// Vehicles, each sending one telemetry frame per second.
        #[arg(long)]
        vehicles: u32,
        /// Wall time to run for.
        #[arg(long, value_parser = parse_duration, default_value = "10s")]
        duration: Duration,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Fleet history: ingest through the writer against the engine's own fast path, and the
    /// latest, one-hour and daily-aggregate queries over seven days of ten vehicles.
    Store {
        /// The database: `sqlite:bench.db` or `postgres://host/db`.
        #[arg(long, env = "AEGIS_STORE")]
        store: String,
        /// Vehicles of the ingest fleet, each one frame per second.
        #[arg(long, default_value_t = 10_000)]
        vehicles: u32,
        /// Seconds of the ingest fleet's telemetry.
        #[arg(long, default_value_t = 30)]
        seconds: u32,
        /// Days of history for the query figures (kept in the database for later runs).
        #[arg(long, default_value_t = 30)]
        history_days: u32,
        /// Vehicles of history for the query figures.
        #[arg(long, default_value_t = 10)]
        history_vehicles: u32,
        /// Calls per query figure.
        #[arg(long, default_value_t = 100)]
        repeats: u32,
        /// Simulated hours of the demo world's ten vehicles for the compression figures.
        #[arg(long, default_value_t = 6)]
        compression_hours: u32,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The WebSocket API: clients subscribed to fleet and alerts on a server fed by a
    /// simulated fleet in another process; latency, frames, bytes, server CPU and memory.
    Ws {
        /// Clients, each subscribed to fleet and alerts.
        #[arg(long, default_value_t = 1000)]
        clients: u32,
        /// Vehicles simulated behind the server, at real time.
        #[arg(long, default_value_t = 1000)]
        vehicles: u32,
        /// Seconds to measure.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Of the clients, how many read one frame a second (to see they slow nobody else).
        #[arg(long, default_value_t = 0)]
        slow: u32,
        /// Scenario whose world the server simulates.
        #[arg(long, default_value = "scenarios/demo.toml")]
        scenario: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Redis transport: end-to-end messages per second and publish-to-consume latency.
    Bus {
        /// Redis server.
        #[arg(long, env = crate::bus::redis::REDIS_URL_ENV)]
        redis: String,
        /// Vehicles, each sending one telemetry frame per second.
        #[arg(long)]
        vehicles: u32,
        /// Wall time of the paced (1 Hz) phase.
        #[arg(long, value_parser = parse_duration, default_value = "10s")]
        duration: Duration,
        /// Messages per vehicle in the full-load phase.
        #[arg(long, default_value_t = 20)]
        burst: u32,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    // `aegis fleet status` reads as a command of its own: `aegis fleet` itself takes options
    // only, and clap cannot mix the two under one name.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() > 2 && args[1] == "fleet" && args[2] == "status" {
        args.splice(1..3, [std::ffi::OsString::from("fleet-status")]);
    }
    let cli = Cli::parse_from(args);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}


/// `aegis train`: loads the dataset, trains with a progress bar, writes the model and its report.
fn train_model(args: TrainArgs) -> anyhow::Result<()> {
    use crate::ml::train::{EpochReport, TrainSettings, train};
    let loading = std::time::Instant::now();
    let dataset = crate::ml::dataset::Dataset::load(&args.dataset)?;
    eprintln!("[aegis] train: {} rows from {} runs, read in {:.1} s", dataset.keys.len(), dataset.manifest.runs.len(), loading.elapsed().as_secs_f64());
    let mut settings = TrainSettings { seed: args.seed, folds: args.folds, max_epochs: args.max_epochs, ..TrainSettings::default() };
    if args.no_search {
        settings.search.truncate(1);
    }
    let trainings = (settings.search.len() + settings.folds + 1) as f64;
    let started = std::time::Instant::now();
    let (mut done, mut last_stage) = (0.0, String::new());
    let mut report = |e: &EpochReport| {
        if e.stage != last_stage {
            if !last_stage.is_empty() {
                done += 1.0;
            }
            last_stage = e.stage.clone();
        }
        let fraction = (done + e.epoch as f64 / e.max_epochs as f64) / trainings;
        let val = e.val_loss.map_or(String::new(), |v| format!("  val {v:.5}"));
        eprintln!("[aegis] train {}  {:<10} epoch {:>2}/{}  loss {:.5}{val}", crate::app::progress_bar(fraction, started.elapsed()), e.stage, e.epoch, e.max_epochs, e.train_loss);
    };
    let (model, report_out) = train(&dataset, &settings, &mut report)?;
    model.save(&args.out)?;
    let plot_path = args.out.with_extension("curves.svg");
    crate::ml::plots::training_curves(&report_out.curves, &plot_path)?;
    let report_path = args.out.with_extension("report.json");
    std::fs::write(&report_path, serde_json::to_string_pretty(&report_out)? + "\n").map_err(|e| anyhow::anyhow!("{}: {e}", report_path.display()))?;
    println!("{}: trained on {} rows in {:.0} s ({:?}, {} epochs); report {}, curves {}", args.out.display(), report_out.rows, report_out.seconds, report_out.chosen.architecture.hidden, report_out.final_epochs, report_path.display(), plot_path.display());
    for figures in &report_out.validation {
        println!(
            "  {:<15} within {:>2} h: {:>6} positives  ROC AUC {:.3}  AP {:.3}  Brier {:.4} (uncalibrated {:.4})",
            figures.component, figures.horizon_h, figures.positives, figures.roc_auc, figures.average_precision, figures.brier, figures.brier_uncalibrated
        );
    }
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let windowed = matches!(&cli.command, Command::Run(args) if !args.headless && cfg!(feature = "gui"));
    if !windowed {
        // The 3D view logs through Bevy's own subscriber.
        init_logging();
    }
    match cli.command {
        Command::Run(args) => run_scenario(args),
        Command::FleetStatus(console) => {
            println!("{}", crate::console::fleet_status(&console.redis, &console.redis_prefix)?);
            Ok(())
        }
        Command::Fleet(args) => {
            let members = args.shard.unwrap_or(Members::All);
            let identity = match members {
                Members::Shard { index, count } => format!("fleet-{}of{count}", index + 1),
                _ => "fleet".to_owned(),
            };
            run_remote(args.remote, args.vehicles, members, identity)
        }
        Command::Alerts { command } => run_alerts(command),
        Command::Vehicle(args) => {
            let identity = format!("vehicle-{}", args.id);
            run_remote(args.remote, None, Members::One(args.id), identity)
        }
        Command::Orchestrator(args) => {
            let mut options = OrchestratorOptions::new(args.redis.config(args.consumer.clone()));
            options.group = args.group;
            options.claim_idle = args.claim_idle;
            options.offline_after = args.offline_after;
            options.summary = args.summary;
            if let Some(path) = &args.policy {
                options.policy = Policy::load(path)?;
            }
            options.scenario = args.scenario.as_deref().map(Scenario::load).transpose()?;
            let api = args.api.settings()?.map(|mut settings| {
                settings.store = args.store.clone();
                settings
            });
            let summary = crate::processes::run_orchestrator(options, api, crate::processes::signals())?;
            eprintln!(
                "[aegis] orchestrator: {} vehicles, {} messages, {} gaps, {} duplicates dropped, {} malformed, {} reclaimed\n  alerts raised {} cleared {}  commands issued {} succeeded {} failed {} timed out {}\n  missions generated {} completed {} re-assigned {} missed {}",
                summary.vehicles_seen,
                summary.messages,
                summary.gaps,
                summary.duplicates_dropped,
                summary.malformed,
                summary.reclaimed,
                summary.decisions.alerts_raised,
                summary.decisions.alerts_cleared,
                summary.decisions.commands_issued,
                summary.decisions.commands_succeeded,
                summary.decisions.commands_failed,
                summary.decisions.commands_timed_out,
                summary.decisions.missions.missions_generated,
                summary.decisions.missions.missions_completed,
                summary.decisions.missions.missions_reassigned,
                summary.decisions.missions.missions_missed
            );
            Ok(())
        }
        Command::Bench { command: BenchCommand::Predict { vehicles, minutes, json } } => {
            anyhow::ensure!(vehicles > 0 && minutes > 0, "--vehicles and --minutes: expected at least one");
            let figures = crate::bench::bench_predict(vehicles, minutes)?;
            if json {
                println!("{}", serde_json::to_string(&figures)?);
            } else {
                println!("{}", figures.human());
            }
            Ok(())
        }
        Command::Bench { command: BenchCommand::Orchestrator { vehicles, duration, json } } => {
            let figures = crate::bench::bench_orchestrator(vehicles, duration.as_secs().max(1) as u32)?;
            if json {
                println!("{}", serde_json::to_string(&figures)?);
            } else {
                println!("{}", figures.human());
            }
            Ok(())
        }
        Command::Bench { command: BenchCommand::Bus { redis, vehicles, duration, burst, json } } => {
            let figures = crate::bench::bench_bus(&redis, vehicles, duration, burst)?;
            if json {
                println!("{}", serde_json::to_string(&figures)?);
            } else {
                println!("{}", figures.human());
            }
            Ok(())
        }
        Command::Dataset { command: DatasetCommand::Build { scenario, seeds, vehicles, duration, policy, out } } => {
            if vehicles == Some(0) {
                anyhow::bail!("--vehicles: expected at least one vehicle");
            }
            let build = crate::app::dataset::DatasetBuild {
                scenario: Scenario::load(&scenario)?,
                seeds: seeds.0,
                vehicles,
                duration,
                policy: policy.as_deref().map(Policy::load).transpose()?.unwrap_or_else(Policy::shipped),
                out: out.clone(),
                progress: true,
            };
            let manifest = crate::app::dataset::build_dataset(&build)?;
            let rows: u64 = manifest.runs.iter().map(|r| r.rows).sum();
            let days: f64 = manifest.runs.iter().map(|r| r.vehicle_days()).sum();
            let counts = crate::ml::dataset::episode_counts(manifest.runs.iter().flat_map(|r| &r.episodes));
            println!("{}: {} runs, {rows} rows, {days:.0} vehicle-days", out.display(), manifest.runs.len());
            for (mode, (n, failed)) in counts {
                println!("  {:<20} {n:>5} episodes, {failed:>5} reached functional failure", mode.as_str());
            }
            Ok(())
        }
        Command::Train(args) => train_model(args),
        Command::Scenario { command: ScenarioCommand::Validate { path } } => {
            let scenario = Scenario::load(&path)?;
            println!(
                "{}: ok ({} vehicles, {} depots, {} failure injections, {})",
                path.display(),
                scenario.fleet.count,
                scenario.fleet.depots.len(),
                scenario.failures.len(),
                humantime::format_duration(scenario.duration)
            );
            Ok(())
        }
        Command::Bench { command: BenchCommand::Sim { vehicles, duration, scenario, json } } => {
            let scenario = match scenario {
                Some(path) => Scenario::load(&path)?,
                None => Scenario::builtin_demo(),
            };
            let figures = crate::bench::bench_sim(scenario, vehicles, duration);
            if json {
                println!("{}", serde_json::to_string(&figures)?);
            } else {
                println!(
                    "{} vehicles, {:.0} s simulated at {} Hz physics in {:.2} s: {:.0} vehicle-seconds per second; {:.0} bytes resident per vehicle ({:.1} MiB total)\nphysics floor (rapier alone, same bodies and forces): {:.0} vehicle-seconds per second; the simulation reaches {:.0}% of it\nwhere the step goes: {}",
                    figures.vehicles,
                    figures.sim_seconds,
                    figures.physics_hz,
                    figures.wall_seconds,
                    figures.vehicle_seconds_per_second,
                    figures.bytes_per_vehicle,
                    figures.rss_bytes as f64 / 1048576.0,
                    figures.ceiling_vehicle_seconds_per_second,
                    figures.share_of_ceiling * 100.0,
                    figures.profile.iter().map(|(phase, share)| format!("{phase} {:.0}%", share * 100.0)).collect::<Vec<_>>().join(", ")
                );
            }
            Ok(())
        }
        Command::Watch(args) => {
            let subscriptions = args
                .topics
                .iter()
                .map(|topic| crate::api::client::Subscription::parse(topic, args.metrics.as_deref(), args.max_hz))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow::anyhow!("--topic: {e}"))?;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(crate::api::client::watch(&args.url, &args.token, &subscriptions, args.json))?;
            Ok(())
        }
        Command::Bench { command: BenchCommand::Ws { clients, vehicles, seconds, slow, scenario, json } } => {
            let figures = crate::bench::bench_ws(&crate::bench::WsBenchOptions { clients, vehicles, seconds, slow, scenario })?;
            if json {
                println!("{}", serde_json::to_string(&figures)?);
            } else {
                println!(
                    "{} clients ({} slow, {} of them closed) on {} vehicles for {} s: fleet latency p50 {:.0} ms, p99 {:.0} ms; {:.0} frames/s, {:.1} MB/s out; server {:.0}% CPU, {:.0} MB, {:.0} KB a client",
                    figures.clients,
                    figures.slow_clients,
                    figures.slow_clients_closed,
                    figures.vehicles,
                    figures.seconds,
                    figures.latency_p50_ms,
                    figures.latency_p99_ms,
                    figures.frames_per_second,
                    figures.bytes_per_second / 1e6,
                    figures.server_cpu_percent,
                    figures.server_rss_bytes as f64 / 1e6,
                    figures.rss_bytes_per_client / 1e3
                );
            }
            Ok(())
        }
        Command::Bench { command: BenchCommand::Store { store, vehicles, seconds, history_days, history_vehicles, repeats, compression_hours, json } } => {
            let options = crate::bench::StoreBenchOptions { url: store, vehicles, seconds, history_days, history_vehicles, repeats, compression_hours };
            let figures = crate::bench::bench_store(&options)?;
            if json {
                println!("{}", serde_json::to_string(&figures)?);
            } else {
                let ceiling = match (figures.ceiling_rows_per_second, figures.share_of_ceiling) {
                    (Some(rate), Some(share)) => format!("{rate:.0} rows/s by the engine's own fast path ({:.0}% of it)", share * 100.0),
                    _ => "no fast path to compare (the server refuses COPY)".to_owned(),
                };
                println!(
                    "{}: ingest {:.0} rows/s through the writer, {ceiling}, {} rows of {} vehicles\nover {} frames of history ({}): latest state p99 {:.1} ms, one hour of one vehicle (four metrics) p99 {:.1} ms (median {:.1}, every metric p99 {:.1}), daily aggregate {:.1} ms from the rollups (median of {}), {:.0} ms from the frames",
                    figures.backend,
                    figures.ingest_rows_per_second,
                    figures.ingest_rows,
                    figures.ingest_vehicles,
                    figures.history_rows,
                    if figures.history_loaded_now { "loaded now" } else { "kept from an earlier run" },
                    figures.latest_query_p99_ms,
                    figures.range_query_p99_ms,
                    figures.range_query_p50_ms,
                    figures.range_query_all_metrics_p99_ms,
                    figures.daily_aggregate_ms,
                    figures.repeats,
                    figures.daily_aggregate_from_frames_ms
                );
                println!(
                    "compressed telemetry: {:.1} bytes per vehicle-second against {:.1} raw ({:.1}:1), over {} vehicle-seconds of the demo world",
                    figures.bytes_per_vehicle_second, figures.raw_bytes_per_vehicle_second, figures.compression_ratio, figures.compression_vehicle_seconds
                );
            }
            Ok(())
        }
        Command::Metrics => {
            print!("{}", crate::model::metrics::markdown_table());
            Ok(())
        }
        Command::Store { command: Some(command), .. } => block_on(run_store(command)),
        Command::Store { command: None, service } => run_store_service(service),
        Command::Query { command } => block_on(run_query(command)),
    }
}

fn block_on<T>(future: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(future)
}

async fn run_store(command: StoreCommand) -> anyhow::Result<()> {
    use crate::store::RunListing;
    match command {
        StoreCommand::Migrate(args) => {
            crate::store::open(&args.store).await?;
            println!("{}: schema up to date", args.store);
        }
        StoreCommand::Runs { store, format } => {
            let runs = crate::store::open(&store.store).await?.runs().await?;
            let answer = crate::store::query::Answer {
                columns: ["run", "scenario", "seed", "fleet", "start", "telemetry_rows", "sim_seconds"].map(String::from).to_vec(),
                rows: runs
                    .iter()
                    .map(|RunListing { run: r, telemetry_rows }| {
                        vec![r.name.clone().into(), r.scenario.clone().into(), r.seed.into(), r.fleet.into(), r.start.to_string().into(), (*telemetry_rows).into(), r.sim_seconds.into()]
                    })
                    .collect(),
            };
            format.print(&answer)?;
        }
        StoreCommand::Info { store, json } => {
            let info = crate::store::lifecycle::info(&crate::store::open(&store.store).await?).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                println!("backend      {} {}", info.backend, info.version);
                println!("timescaledb  {}", info.timescaledb);
                println!("telemetry    {}", info.lifecycle);
                println!("runs         {}", info.runs);
                println!("raw          {} frames", info.raw_frames);
                match (info.chunks, info.compressed_chunks) {
                    (Some(chunks), Some(compressed)) => println!("compressed   {compressed} of {chunks} chunks"),
                    _ => println!("compacted    {} frames in {} segments, {:.1} bytes of segment a frame", info.compacted_frames, info.segments, info.segment_bytes_per_frame),
                }
            }
        }
        StoreCommand::Compact { store, run, older_than } => {
            let opened = crate::store::open(&store.store).await?;
            let settings = crate::store::lifecycle::LifecycleSettings { compact_after: older_than, ..Default::default() };
            let runs: Vec<_> = opened.runs().await?.into_iter().map(|listing| listing.run).filter(|r| run.as_ref().is_none_or(|name| &r.name == name)).collect();
            if let (Some(name), true) = (&run, runs.is_empty()) {
                anyhow::bail!("no run named `{name}` in {}", store.store);
            }
            for stored in runs {
                let latest_ms = crate::store::instant(stored.start, stored.sim_seconds).unix_ms() as i64;
                let done = crate::store::lifecycle::compact(&opened, stored.run_id, settings.cutoff(latest_ms), &settings).await?;
                println!("{}: {} frames compacted into {} segments", stored.name, done.frames, done.segments);
            }
        }
        StoreCommand::Export { store, run, from, to, out } => {
            let opened = crate::store::open(&store.store).await?;
            let stored = crate::store::query::run(&opened, run.as_deref()).await?;
            let target = opened.run_target(&stored).await?;
            let at = |offset: Option<Duration>, otherwise: i64| offset.map_or(otherwise, |d| crate::store::instant(stored.start, d.as_secs_f64()).unix_ms() as i64);
            let (from_ms, to_ms) = (at(from, crate::store::frames::ALL_TIME.0), at(to, crate::store::frames::ALL_TIME.1));
            if from_ms >= to_ms {
                anyhow::bail!("--from must come before --to");
            }
            let files = crate::store::export::export(&opened, &target, from_ms, to_ms, &out).await?;
            if files.is_empty() {
                println!("{}: no telemetry in that range", stored.name);
            }
            for file in files {
                println!("{}: {} rows", file.path.display(), file.rows);
            }
        }
        StoreCommand::DeleteRun { store, name } => {
            if !crate::store::open(&store.store).await?.delete_run(&name).await? {
                anyhow::bail!("no run named `{name}` in {}", store.store);
            }
            println!("{name}: deleted");
        }
    }
    Ok(())
}

fn run_store_service(args: StoreServiceArgs) -> anyhow::Result<()> {
    let (Some(redis), Some(store)) = (args.redis, args.store) else {
        anyhow::bail!("`aegis store` needs a command (migrate, runs, delete-run), or --redis URL and --store URL to store a fleet's messages");
    };
    let redis = RedisConfig::new(redis, args.consumer.clone()).with_prefix(args.redis_prefix);
    let mut options = crate::store::from_redis::StoreServiceOptions::new(redis, store);
    options.group = args.group;
    options.summary = args.summary;
    options.settings.spool = args.spool;
    options.settings.lifecycle = Some(args.lifecycle.settings());
    let summary = crate::processes::run_store(options, crate::processes::signals())?;
    eprintln!("[aegis] store: run {}  {}  unreadable {}  acknowledged {}", summary.run, summary.writer.line(), summary.unreadable, summary.acknowledged);
    Ok(())
}

async fn run_query(command: QueryCommand) -> anyhow::Result<()> {
    use crate::store::query;
    let (format, answer) = match command {
        QueryCommand::Alerts { history, component, severity, state } => {
            let store = crate::store::open(&history.store.store).await?;
            let run = query::run(&store, history.run.as_deref()).await?;
            (history.format, query::alerts(&store, &run, &history.filter(&run), &query::AlertFilter { component, severity, state }).await?)
        }
        QueryCommand::Commands { history, action } => {
            let store = crate::store::open(&history.store.store).await?;
            let run = query::run(&store, history.run.as_deref()).await?;
            (history.format, query::commands(&store, &run, &history.filter(&run), action.as_deref()).await?)
        }
        QueryCommand::Missions { history } => {
            let store = crate::store::open(&history.store.store).await?;
            let run = query::run(&store, history.run.as_deref()).await?;
            (history.format, query::missions(&store, &run, &history.filter(&run)).await?)
        }
        QueryCommand::Fleet { pick, per } => {
            let store = crate::store::open(&pick.store.store).await?;
            let run = query::run(&store, pick.run.as_deref()).await?;
            let period = match per {
                PeriodArg::Hour => query::Period::Hour,
                PeriodArg::Day => query::Period::Day,
            };
            (pick.format, query::fleet(&store, &run, period).await?)
        }
        QueryCommand::Tsbs { pick, query: which } => {
            let store = crate::store::open(&pick.store.store).await?;
            let run = query::run(&store, pick.run.as_deref()).await?;
            (pick.format, query::tsbs(&store, &run, which).await?)
        }
        QueryCommand::Latest(args) => {
            let store = crate::store::open(&args.store.store).await?;
            let run = query::run(&store, args.run.as_deref()).await?;
            let answer = query::latest(&store, &run, &query::metrics(&args.metrics)?).await?;
            (args.format, answer)
        }
        QueryCommand::Telemetry { query: args, vehicle, from, to, every, limit, page } => {
            let store = crate::store::open(&args.store.store).await?;
            let run = query::run(&store, args.run.as_deref()).await?;
            let range = query::RangeQuery {
                vehicle,
                metrics: query::metrics(&args.metrics)?,
                from_s: from.as_secs_f64(),
                to_s: to.map_or(run.sim_seconds + 1.0, |t| t.as_secs_f64()),
                every_s: every.map(|e| e.as_secs_f64()),
                limit,
                offset: page.saturating_mul(limit),
            };
            let answer = query::range(&store, &run, &range).await?;
            (args.format, answer)
        }
    };
    format.print(&answer)
}

fn run_alerts(command: AlertsCommand) -> anyhow::Result<()> {
    use crate::model::Operation;
    let (change, operation) = match command {
        AlertsCommand::List { console, all, json } => {
            let alerts = crate::console::list(&console.redis, &console.redis_prefix, all)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&alerts)?);
            } else {
                print!("{}", crate::console::table(&alerts));
            }
            return Ok(());
        }
        AlertsCommand::Ack(change) => (change, Operation::Ack),
        AlertsCommand::Clear(change) => (change, Operation::Clear),
        AlertsCommand::Assign { change, to } => (change, Operation::Assign { to }),
        AlertsCommand::Shelve { change, period } => (change, Operation::Shelve { for_s: period.as_secs_f64() }),
        AlertsCommand::Comment { change, text } => (change, Operation::Comment { text }),
    };
    crate::console::change(&change.console.redis, &change.console.redis_prefix, &change.id, &change.actor, operation)?;
    println!("{}: done", change.id);
    Ok(())
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("AEGIS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_writer(std::io::stderr).with_target(false).with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).with_env_filter(filter).try_init();
}

/// How fast, for people.
fn pace(speed: Speed) -> String {
    match speed {
        Speed::Max => "max speed".to_owned(),
        Speed::Factor(f) => format!("{f}x real time"),
    }
}

/// `aegis fleet` and `aegis vehicle`.
fn run_remote(args: RemoteArgs, vehicles: Option<u32>, members: Members, identity: String) -> anyhow::Result<()> {
    let mut options = args.scenario.options(vehicles)?;
    if let Members::One(id) = members
        && (id.0 == 0 || id.0 > options.vehicles)
    {
        anyhow::bail!("--id {id}: the scenario's fleet has vehicles V0001 to {}", VehicleId(options.vehicles));
    }
    options.members = members;
    options.progress = true;
    options.telemetry_out = args.telemetry_out;
    let redis = args.redis.config(identity.clone());
    eprintln!(
        "[aegis] {identity}: scenario {}, fleet of {} vehicles, seed {}, {} at {}, on {} (prefix {})",
        options.scenario.name,
        options.vehicles,
        options.seed,
        humantime::format_duration(options.duration),
        pace(options.speed),
        redis.url,
        redis.prefix
    );
    let summary = crate::processes::run_fleet(&options, redis, args.flush_timeout, crate::processes::signals())?;
    eprintln!("{}", summary.human());
    Ok(())
}

fn run_scenario(args: RunArgs) -> anyhow::Result<()> {
    let mut options = args.scenario.options(args.vehicles)?;
    options.telemetry_out = args.telemetry_out;
    options.store = args.store;
    options.lifecycle = args.lifecycle.settings();
    options.api = args.api.settings()?;
    options.policy = match &args.policy {
        _ if args.no_orchestrator => None,
        Some(path) => Some(Policy::load(path)?),
        None => Some(Policy::shipped()),
    };
    options.model = match &args.model {
        _ if args.no_model || args.no_orchestrator => None,
        Some(path) => Some(crate::app::ModelChoice::File(path.clone())),
        None => Some(crate::app::ModelChoice::Shipped),
    };
    if !args.headless {
        #[cfg(feature = "gui")]
        {
            return crate::gui::run(options, args.screenshot, args.exit_after);
        }
        #[cfg(not(feature = "gui"))]
        eprintln!("[aegis] this build has no 3D view (built without the `gui` feature): running headless");
    }
    options.progress = true;
    eprintln!(
        "[aegis] {}: {} vehicles, seed {}, {} at {}",
        options.scenario.name,
        options.vehicles,
        options.seed,
        humantime::format_duration(options.duration),
        pace(options.speed)
    );
    let summary = run_headless(&options)?;
    eprintln!("{}", summary.human());
    Ok(())
}
