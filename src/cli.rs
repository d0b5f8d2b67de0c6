//! The command line: `aegis run`, `aegis scenario validate`, `aegis bench sim`, `aegis metrics`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::app::{RunOptions, run_headless};
use crate::scenario::{Scenario, parse_duration};
use crate::sim::Speed;

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
    /// Work with scenario files.
    Scenario {
        #[command(subcommand)]
        command: ScenarioCommand,
    },
    /// Measure performance.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Print the telemetry metric table as Markdown.
    Metrics,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Scenario file (TOML).
    #[arg(long)]
    scenario: PathBuf,
    /// Run without a window.
    #[arg(long)]
    headless: bool,
    /// Fleet size (overrides the scenario).
    #[arg(long)]
    vehicles: Option<u32>,
    /// Simulated seconds per wall second, or `max`.
    #[arg(long, default_value = "1")]
    speed: Speed,
    /// Simulated time to run, like 90s, 30m, 24h, 30d (overrides the scenario).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Run seed (overrides the scenario).
    #[arg(long)]
    seed: Option<u64>,
    /// Write every telemetry envelope to this file as JSON Lines.
    #[arg(long)]
    telemetry_out: Option<PathBuf>,
    /// Write a JSON summary to this file at exit.
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Save one rendered frame to this PNG and exit (3D view only).
    #[arg(long)]
    screenshot: Option<PathBuf>,
    /// Wall seconds after which the 3D view exits (and takes the screenshot).
    #[arg(long)]
    exit_after: Option<f64>,
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
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The built-in scenario used by benchmarks when none is given.
pub const BUILTIN_DEMO: &str = include_str!("../scenarios/demo.toml");

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => run_scenario(args),
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
                None => Scenario::parse(BUILTIN_DEMO, "scenarios/demo.toml".as_ref())?,
            };
            let figures = crate::bench::bench_sim(scenario, vehicles, duration);
            if json {
                println!("{}", serde_json::to_string(&figures)?);
            } else {
                println!(
                    "{} vehicles, {:.0} s simulated at {} Hz physics in {:.2} s: {:.0} vehicle-seconds per second; {:.0} bytes resident per vehicle ({:.1} MiB total)",
                    figures.vehicles,
                    figures.sim_seconds,
                    figures.physics_hz,
                    figures.wall_seconds,
                    figures.vehicle_seconds_per_second,
                    figures.bytes_per_vehicle,
                    figures.rss_bytes as f64 / 1048576.0
                );
            }
            Ok(())
        }
        Command::Metrics => {
            print!("{}", crate::model::metrics::markdown_table());
            Ok(())
        }
    }
}

fn run_scenario(args: RunArgs) -> anyhow::Result<()> {
    let scenario = Scenario::load(&args.scenario)?;
    let mut options = RunOptions::from_scenario(scenario);
    options.vehicles = args.vehicles.unwrap_or(options.vehicles);
    if options.vehicles == 0 {
        anyhow::bail!("--vehicles: expected at least one vehicle");
    }
    options.seed = args.seed.unwrap_or(options.seed);
    options.duration = args.duration.unwrap_or(options.duration);
    options.speed = args.speed;
    options.telemetry_out = args.telemetry_out;
    options.summary = args.summary;
    if !args.headless {
        #[cfg(feature = "gui")]
        return crate::gui::run(options, args.screenshot, args.exit_after);
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
        match options.speed {
            Speed::Max => "max speed".to_owned(),
            Speed::Factor(f) => format!("{f}x real time"),
        }
    );
    let summary = run_headless(&options)?;
    eprintln!("{}", summary.human());
    Ok(())
}
