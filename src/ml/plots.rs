//! The learning pipeline's plots, as SVG files any browser opens: training curves.

use std::path::Path;

use plotters::prelude::*;

use super::MlError;
use super::train::Curve;

/// Colours for successive series (the Okabe-Ito palette, safe for colour-blind readers).
const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(240, 228, 66),
];

/// Every training's loss per epoch: training loss thin, validation loss thick,
/// one colour per training; the kept epoch marked.
pub fn training_curves(curves: &[Curve], path: &Path) -> Result<(), MlError> {
    let plot = |e: String| MlError::Dataset { path: path.to_owned(), problem: format!("plot: {e}") };
    let epochs = curves.iter().map(|c| c.train_loss.len()).max().unwrap_or(1).max(2);
    let values = || curves.iter().flat_map(|c| c.train_loss.iter().chain(&c.val_loss)).copied().filter(|v| v.is_finite() && *v > 0.0);
    let top = values().fold(0.0f64, f64::max).max(1e-6) * 1.2;
    let bottom = values().fold(f64::INFINITY, f64::min).min(top / 10.0) * 0.8;
    let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Training curves: loss per epoch, log scale (thin: training, thick: validation; dot: the epoch kept)", ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(1usize..epochs, (bottom..top).log_scale())
        .map_err(|e| plot(e.to_string()))?;
    chart.configure_mesh().x_desc("epoch").y_desc("loss").draw().map_err(|e| plot(e.to_string()))?;
    for (i, curve) in curves.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(curve.train_loss.iter().enumerate().map(|(e, v)| (e + 1, *v)), colour.stroke_width(1)))
            .map_err(|e| plot(e.to_string()))?
            .label(curve.stage.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(3)));
        chart.draw_series(LineSeries::new(curve.val_loss.iter().enumerate().map(|(e, v)| (e + 1, *v)), colour.stroke_width(3))).map_err(|e| plot(e.to_string()))?;
        if let Some(kept) = curve.val_loss.get(curve.best_epoch.wrapping_sub(1)) {
            chart.draw_series(std::iter::once(Circle::new((curve.best_epoch, *kept), 5, colour.filled()))).map_err(|e| plot(e.to_string()))?;
        }
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(|e| plot(e.to_string()))?;
    root.present().map_err(|e| plot(e.to_string()))
}
