//! The 3D fleet view (feature `gui`): terrain, roads, depots and vehicles coloured by health,
//! a free-fly camera, click-to-select with a live metrics panel, and simulation controls.

mod capture;
mod orchestrator_panel;
mod panel;
mod scene;

use std::path::PathBuf;
use std::sync::Arc;

use bevy::camera_controller::free_camera::FreeCameraPlugin;
use bevy::picking::mesh_picking::MeshPickingPlugin;
use bevy::prelude::*;
use bevy_egui::EguiPlugin;

use crate::app::RunOptions;
use crate::bus::{MemoryBus, SharedBus};
use crate::app::centre::{self, LocalCentre};
use crate::sim::{SimPlugin, Speed};

/// Highest speed factor the window runs at when `max` is asked for: beyond it frames would
/// hold too many physics steps to stay interactive.
const GUI_MAX_SPEED: f64 = 120.0;

/// Opens the 3D view on a scenario. With `screenshot`, saves one frame there after
/// `exit_after` seconds (default 8) and exits.
pub fn run(options: RunOptions, screenshot: Option<PathBuf>, exit_after: Option<f64>) -> anyhow::Result<()> {
    // First: a model that cannot be used is refused before a window opens or a run is stored.
    let predictor = crate::app::centre::predictor(&options)?;
    let bus: SharedBus = Arc::new(MemoryBus::new());
    // The store writer runs beside the window on its own thread, fed by the bus like the rest.
    let store = options.store.as_deref().map(|url| crate::app::open_store(url, &options, &bus)).transpose()?;
    let mut app = App::new();
    app.add_plugins(DefaultPlugins.set(WindowPlugin {
        primary_window: Some(Window {
            title: format!("AEGIS: {}", options.scenario.name),
            resolution: (1600, 900).into(),
            ..default()
        }),
        ..default()
    }));
    app.add_plugins((EguiPlugin::default(), MeshPickingPlugin, FreeCameraPlugin));
    app.add_plugins(SimPlugin { scenario: options.scenario.clone(), vehicles: options.vehicles, members: options.members, first_seq: options.first_seq.clone(), seed: options.seed, bus: bus.clone() });
    // The orchestrator runs beside the fleet, as in a headless run, and so does the API.
    let hub = crate::app::api_hub(&options);
    let mut desk = None;
    if let Some(policy) = options.policy.clone() {
        let centre = LocalCentre::new(policy, &options.scenario, bus.clone(), hub.clone(), predictor);
        desk = Some(centre.desk.clone());
        app.insert_resource(centre);
        app.add_plugins(centre::plugin);
    }
    let api = crate::app::serve_api(&options, &bus, hub, desk, store.as_ref().map(|(run, _)| run.clone()))?;
    let factor = match options.speed {
        Speed::Factor(f) => f.min(GUI_MAX_SPEED),
        Speed::Max => GUI_MAX_SPEED,
    };
    app.insert_resource(panel::SimSpeed { factor, paused: false });
    app.add_plugins((scene::plugin, panel::plugin, orchestrator_panel::plugin));
    if screenshot.is_some() || exit_after.is_some() {
        app.insert_resource(capture::Capture { path: screenshot, after_s: exit_after.unwrap_or(8.0), taken: false });
        app.add_plugins(capture::plugin);
    }
    let exit = app.run();
    drop(app);
    drop(api);
    if let Some((run, writer)) = store {
        let figures = writer.finish()?;
        eprintln!("[aegis] run {run} {}", figures.line());
    }
    match exit {
        AppExit::Success => Ok(()),
        AppExit::Error(code) => anyhow::bail!("the 3D view exited with code {code}"),
    }
}
