//! The orchestrator's panel: what the in-process centre has done, its work queue of alerts by
//! priority, and the missions under way. Acknowledging goes through the operator path, as
//! `aegis alerts ack` does, so it is applied and audited the same way.

use bevy::prelude::*;
use bevy_egui::{EguiContexts, EguiPrimaryContextPass, egui};

use crate::app::centre::LocalCentre;
use crate::orchestrator::missions::MissionState;
use crate::sim::SimClock;

/// Alerts listed at most.
const QUEUE_ROWS: usize = 12;

pub(super) fn plugin(app: &mut App) {
    app.add_systems(EguiPrimaryContextPass, orchestrator_panel);
}

fn orchestrator_panel(mut contexts: EguiContexts, clock: Res<SimClock>, centre: Option<Res<LocalCentre>>) -> Result {
    let Some(local) = centre else { return Ok(()) };
    let at = clock.seconds();
    let ctx = contexts.ctx_mut()?;
    let mut acknowledge = None;
    egui::Window::new("Orchestrator").anchor(egui::Align2::LEFT_BOTTOM, [10.0, -10.0]).default_width(520.0).show(ctx, |ui| {
        let brain = &local.centre.brain;
        let f = brain.figures();
        ui.label(format!(
            "alerts raised {} cleared {} escalated {}  ·  commands {} ok {} failed {}",
            f.alerts_raised, f.alerts_cleared, f.alerts_escalated, f.commands_issued, f.commands_succeeded, f.commands_failed + f.commands_timed_out
        ));
        if let Some(board) = &brain.missions {
            let under_way = board.under_way();
            let waiting = board.all().filter(|m| m.state == MissionState::Pending).count();
            ui.label(format!(
                "missions completed {}  under way {under_way}  waiting {waiting}  re-assigned {}  missed {}",
                f.missions.missions_completed, f.missions.missions_reassigned, f.missions.missions_missed
            ));
        }
        ui.separator();
        let queue = brain.alerts.work_queue(at, |v| brain.on_mission(v));
        if queue.is_empty() {
            ui.label("No active alerts.");
        }
        egui::Grid::new("work_queue").striped(true).show(ui, |ui| {
            for (priority, alert) in queue.iter().take(QUEUE_ROWS) {
                ui.label(format!("{priority:.0}"));
                ui.label(format!("{} {}", alert.id, alert.key.vehicle));
                ui.label(format!("{:?} · {}", alert.key.component, alert.key.alert_type));
                ui.label(format!("{:?}{}", alert.severity, if alert.escalated { " ⚠" } else { "" }));
                if alert.acknowledged {
                    ui.label("acknowledged");
                } else if ui.button("Acknowledge").clicked() {
                    acknowledge = Some(alert.id.clone());
                }
                ui.end_row();
            }
        });
        if queue.len() > QUEUE_ROWS {
            ui.small(format!("and {} more", queue.len() - QUEUE_ROWS));
        }
    });
    if let Some(id) = acknowledge {
        local.acknowledge_from_view(&id);
    }
    Ok(())
}

