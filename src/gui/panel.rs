//! The egui panels: fleet overview with simulation controls on the left, the selected
//! vehicle's live metrics, faults and failure injection on the right.

use bevy::prelude::*;
use bevy_egui::{EguiContexts, EguiPrimaryContextPass, egui};

use crate::model::{Component, FailureMode, METRICS, MetricGroup, VehicleStatus};
use crate::sim::vehicle::{Condition, Faults, Navigation, RuleState, SensorState};
use crate::sim::{InjectFailure, SimClock, SimCounters, Vehicle};

/// The vehicle picked with the mouse.
#[derive(Resource, Default, Debug)]
pub(super) struct Selected(pub Option<Entity>);

/// Simulation pace chosen in the panel.
#[derive(Resource, Debug)]
pub(super) struct SimSpeed {
    /// Simulated seconds per wall second.
    pub factor: f64,
    /// Whether time stands still.
    pub paused: bool,
}

/// Failure mode picked in the injection box.
#[derive(Resource, Debug)]
struct InjectionChoice(FailureMode);

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<Selected>().insert_resource(InjectionChoice(FailureMode::CoolantLeak));
    app.add_systems(Update, apply_speed);
    app.add_systems(EguiPrimaryContextPass, (fleet_panel, vehicle_panel));
}

fn apply_speed(speed: Res<SimSpeed>, mut time: ResMut<Time<Virtual>>) {
    if !speed.is_changed() {
        return;
    }
    time.set_relative_speed_f64(speed.factor);
    if speed.paused { time.pause() } else { time.unpause() }
}

fn fleet_panel(
    mut contexts: EguiContexts,
    clock: Res<SimClock>,
    counters: Res<SimCounters>,
    mut speed: ResMut<SimSpeed>,
    vehicles: Query<(&Navigation, &RuleState)>,
) -> Result {
    let ctx = contexts.ctx_mut()?;
    egui::Window::new("Fleet").anchor(egui::Align2::LEFT_TOP, [10.0, 10.0]).resizable(false).show(ctx, |ui| {
        ui.label(format!("Simulated time {}", crate::app::clock_text(clock.seconds())));
        ui.horizontal(|ui| {
            let label = if speed.paused { "Resume" } else { "Pause" };
            if ui.button(label).clicked() {
                speed.paused = !speed.paused;
            }
            for factor in [1.0, 10.0, 60.0, 120.0] {
                if ui.selectable_label(speed.factor == factor, format!("{factor}x")).clicked() {
                    speed.factor = factor;
                }
            }
        });
        ui.separator();
        let statuses = [
            VehicleStatus::EnRoute,
            VehicleStatus::Returning,
            VehicleStatus::Idle,
            VehicleStatus::InMaintenance,
            VehicleStatus::Stopped,
        ];
        egui::Grid::new("status").show(ui, |ui| {
            for status in statuses {
                ui.label(format!("{status:?}"));
                ui.label(vehicles.iter().filter(|(n, _)| n.status == status).count().to_string());
                ui.end_row();
            }
            ui.label("Rule decisions in force");
            ui.label(vehicles.iter().filter(|(_, r)| r.decision.is_some()).count().to_string());
            ui.end_row();
        });
        ui.separator();
        ui.label(format!(
            "telemetry {}  events {}\nfailures {}  functional failures {}\nrule actions {}  repairs {}",
            counters.telemetry_messages, counters.events, counters.failures_injected, counters.functional_failures, counters.local_rule_actions, counters.repairs
        ));
        ui.small("Right mouse: look · WASD/QE: fly · Shift: fast · click a vehicle to inspect");
    });
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn vehicle_panel(
    mut contexts: EguiContexts,
    mut selected: ResMut<Selected>,
    mut choice: ResMut<InjectionChoice>,
    mut inject: MessageWriter<InjectFailure>,
    vehicles: Query<(&Vehicle, &Navigation, &RuleState, &Condition, &Faults, &SensorState)>,
) -> Result {
    let Some(entity) = selected.0 else { return Ok(()) };
    let Ok((vehicle, nav, rules, condition, faults, sensors)) = vehicles.get(entity) else {
        selected.0 = None;
        return Ok(());
    };
    let ctx = contexts.ctx_mut()?;
    egui::Window::new(format!("{} ({:?})", vehicle.id, vehicle.model))
        .id(egui::Id::new("vehicle"))
        .anchor(egui::Align2::RIGHT_TOP, [-10.0, 10.0])
        .default_width(330.0)
        .show(ctx, |ui| {
            ui.label(format!("Status {:?}  ·  rule decision {:?}", nav.status, rules.decision));
            ui.collapsing("Component health", |ui| {
                for component in Component::ALL {
                    let health = condition.health.get(component);
                    ui.add(egui::ProgressBar::new(health).text(format!("{component:?} {:.0} %", health * 100.0)));
                }
            });
            ui.collapsing("Active faults", |ui| {
                if faults.0.is_empty() {
                    ui.label("none");
                }
                for fault in &faults.0 {
                    let state = if fault.failed_at_s.is_some() { "FAILED" } else { "degrading" };
                    ui.label(format!("{:?}: {:.0} % ({state})", fault.mode, fault.severity * 100.0));
                }
                ui.horizontal(|ui| {
                    egui::ComboBox::from_id_salt("mode").selected_text(format!("{:?}", choice.0)).show_ui(ui, |ui| {
                        for mode in FailureMode::ALL {
                            ui.selectable_value(&mut choice.0, mode, format!("{mode:?}"));
                        }
                    });
                    if ui.button("Inject").clicked() {
                        inject.write(InjectFailure { vehicle: vehicle.id, mode: choice.0, rate: 5.0, initial_severity: 0.0, sensor: None });
                    }
                });
            });
            let Some(frame) = sensors.last else {
                ui.label("no telemetry yet");
                return;
            };
            egui::ScrollArea::vertical().max_height(520.0).show(ui, |ui| {
                let mut group: Option<MetricGroup> = None;
                egui::Grid::new("metrics").striped(true).show(ui, |ui| {
                    for (spec, value) in METRICS.iter().zip(frame.values) {
                        if group != Some(spec.group) {
                            group = Some(spec.group);
                            ui.strong(format!("{:?}", spec.group));
                            ui.end_row();
                        }
                        ui.label(spec.name);
                        ui.label(format!("{value:.1} {}", spec.unit));
                        ui.end_row();
                    }
                });
            });
        });
    Ok(())
}
