//! `--screenshot FILE --exit-after SECONDS`: saves one rendered frame, then exits.

use std::path::PathBuf;

use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured, save_to_disk};

/// What to capture and when.
#[derive(Resource, Debug)]
pub(super) struct Capture {
    /// Where to save the frame, if anywhere.
    pub path: Option<PathBuf>,
    /// Wall seconds to wait: shaders compile first and those frames are black.
    pub after_s: f64,
    /// Whether the screenshot was requested.
    pub taken: bool,
}

pub(super) fn plugin(app: &mut App) {
    app.add_systems(Update, capture_then_exit);
}

fn capture_then_exit(time: Res<Time<Real>>, mut capture: ResMut<Capture>, mut commands: Commands, mut exit: MessageWriter<AppExit>) {
    if capture.taken || time.elapsed_secs_f64() < capture.after_s {
        return;
    }
    capture.taken = true;
    match capture.path.clone() {
        Some(path) => {
            info!("saving screenshot to {}", path.display());
            commands
                .spawn(Screenshot::primary_window())
                .observe(save_to_disk(path))
                .observe(|_: On<ScreenshotCaptured>, mut exit: MessageWriter<AppExit>| {
                    exit.write(AppExit::Success);
                });
        }
        None => {
            exit.write(AppExit::Success);
        }
    }
}
