//! `curves.png`: the training loss and every evaluation metric against the step, drawn with
//! plotters at the end of a run.
//!
//! Layout: the loss on top (`1200 x 450` pixels; raw values faint, an exponential moving average
//! bold, on a log10 axis when the values span two decades or more), then one panel per metric
//! (`600 x 320`, two per row) — see [`curves_size`]. The file is written to a temporary name and
//! renamed into place.
//!
//! Text needs a TrueType font, loaded at run time (plotters' `ab_glyph` backend has no system
//! font lookup): the first readable file of [`default_font_paths`] (`$NEMO_PLOT_FONT`, then
//! Debian's `fonts-dejavu-core` and other standard places) is registered as `sans-serif`. With no
//! font the curves are drawn without any text and a warning is logged once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use plotters::prelude::*;

use super::step_record::StepRecord;
use crate::{Error, Result};

/// Standard places of a sans-serif TTF on Linux and macOS, tried in order.
pub const STANDARD_FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

/// Environment variable naming a TTF file to use before the standard paths.
pub const FONT_ENV: &str = "NEMO_PLOT_FONT";

/// `$NEMO_PLOT_FONT` (if set) followed by [`STANDARD_FONT_PATHS`].
pub fn default_font_paths() -> Vec<PathBuf> {
    std::env::var_os(FONT_ENV)
        .map(PathBuf::from)
        .into_iter()
        .chain(STANDARD_FONT_PATHS.iter().map(PathBuf::from))
        .collect()
}

const WIDTH: u32 = 1200;
const LOSS_HEIGHT: u32 = 450;
const PANEL_HEIGHT: u32 = 320;
const PANELS_PER_ROW: usize = 2;
/// Weight of the previous value in the loss's moving average.
const SMOOTHING: f64 = 0.9;

/// The image size in pixels for `n_metrics` evaluation metrics: `(1200, 450 + 320 * rows)`.
pub fn curves_size(n_metrics: usize) -> (u32, u32) {
    let rows = u32::try_from(n_metrics.div_ceil(PANELS_PER_ROW)).unwrap_or(u32::MAX / 1024);
    (WIDTH, LOSS_HEIGHT + PANEL_HEIGHT * rows)
}

/// The series to draw: finite `(step, value)` points, sorted by step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Curves {
    /// The training loss of each applied update.
    pub loss: Vec<(u64, f64)>,
    /// Each evaluation metric by name.
    pub metrics: BTreeMap<String, Vec<(u64, f64)>>,
}

impl Curves {
    /// The curves of some step records (skipped steps and non-finite values left out; a later
    /// record of the same step replaces an earlier one, as after a resume).
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a StepRecord>) -> Self {
        let mut loss = BTreeMap::new();
        let mut metrics: BTreeMap<String, BTreeMap<u64, f64>> = BTreeMap::new();
        for r in records {
            let done = r.step + 1;
            loss.remove(&done);
            if !r.skipped && r.loss.is_finite() {
                loss.insert(done, r.loss);
            }
            for (name, &v) in &r.eval {
                if v.is_finite() {
                    metrics.entry(name.clone()).or_default().insert(done, v);
                }
            }
        }
        Curves {
            loss: loss.into_iter().collect(),
            metrics: metrics
                .into_iter()
                .map(|(k, v)| (k, v.into_iter().collect()))
                .collect(),
        }
    }

    /// The curves of a run's `metrics.jsonl`; unreadable lines (a non-finite loss is written as
    /// `null`) are skipped.
    pub fn from_metrics_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let records: Vec<StepRecord> = text
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect();
        Ok(Curves::from_records(&records))
    }
}

/// Loads the first usable font of `paths` and registers it with plotters as `sans-serif`;
/// returns whether text can be drawn. The font stays registered for the process.
pub fn load_font(paths: &[PathBuf]) -> bool {
    static REGISTERED: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut registered = REGISTERED.lock().unwrap_or_else(|e| e.into_inner());
    for path in paths {
        if registered.as_deref() == Some(path.as_path()) {
            return true;
        }
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        // plotters keeps fonts for the whole process; each distinct file is leaked once.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
            *registered = Some(path.clone());
            return true;
        }
    }
    false
}

fn draw_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(format!("drawing curves: {e}")),
    }
}

/// The moving average drawn over the raw loss (bias-corrected as TensorBoard's smoothing).
fn smooth(points: &[(u64, f64)]) -> Vec<(u64, f64)> {
    let mut avg = 0.0;
    let mut weight = 1.0;
    points
        .iter()
        .map(|&(s, v)| {
            avg = SMOOTHING * avg + (1.0 - SMOOTHING) * v;
            weight *= SMOOTHING;
            (s, avg / (1.0 - weight))
        })
        .collect()
}

/// A non-empty `[lo, hi]` around the values, padded by 5 %.
fn y_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    let pad = if hi > lo {
        0.05 * (hi - lo)
    } else {
        0.05 * lo.abs().max(1e-3)
    };
    (lo - pad, hi + pad)
}

fn x_range(points: &[(u64, f64)]) -> (f64, f64) {
    let lo = points.first().map_or(0.0, |p| p.0 as f64);
    let hi = points.last().map_or(1.0, |p| p.0 as f64);
    if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5, hi + 0.5)
    }
}

/// One chart: a title, faint raw and bold smoothed lines (or one line), optional log10 y.
struct Panel<'a> {
    title: &'a str,
    raw: &'a [(u64, f64)],
    smoothed: Option<Vec<(u64, f64)>>,
    log_y: bool,
    color: RGBColor,
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel<'_>,
    text: bool,
) -> std::result::Result<(), String> {
    let map = |v: f64| if panel.log_y { v.log10() } else { v };
    let raw: Vec<(f64, f64)> = panel.raw.iter().map(|&(s, v)| (s as f64, map(v))).collect();
    let smoothed: Option<Vec<(f64, f64)>> = panel
        .smoothed
        .as_ref()
        .map(|pts| pts.iter().map(|&(s, v)| (s as f64, map(v))).collect());
    let (x0, x1) = x_range(panel.raw);
    let (y0, y1) = y_range(raw.iter().map(|p| p.1));
    let mut builder = ChartBuilder::on(area);
    builder.margin(12);
    if text {
        let title = if panel.log_y {
            format!("{} (log scale)", panel.title)
        } else {
            panel.title.to_string()
        };
        builder
            .caption(title, ("sans-serif", 20))
            .x_label_area_size(36)
            .y_label_area_size(64);
    }
    let mut chart = builder
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| e.to_string())?;
    let fmt_y = |v: &f64| {
        let v = if panel.log_y { 10f64.powf(*v) } else { *v };
        if v != 0.0 && (v.abs() < 0.01 || v.abs() >= 1e4) {
            format!("{v:.2e}")
        } else {
            format!("{v:.3}")
        }
    };
    let fmt_x = |v: &f64| format!("{v:.0}");
    let mut mesh = chart.configure_mesh();
    mesh.light_line_style(RGBColor(235, 235, 235));
    if text {
        mesh.x_desc("step")
            .x_label_formatter(&fmt_x)
            .y_label_formatter(&fmt_y);
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw().map_err(|e| e.to_string())?;
    if !text {
        // Without labels the mesh draws no axes: frame the plotting area instead.
        let frame = Rectangle::new([(x0, y0), (x1, y1)], BLACK.mix(0.6).stroke_width(1));
        chart
            .draw_series(std::iter::once(frame))
            .map_err(|e| e.to_string())?;
    }
    let faint = panel.color.mix(if smoothed.is_some() { 0.3 } else { 1.0 });
    let series = chart
        .draw_series(LineSeries::new(raw, faint.stroke_width(1)))
        .map_err(|e| e.to_string())?;
    if text && smoothed.is_some() {
        series
            .label("raw")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], faint));
    }
    if let Some(smoothed) = smoothed {
        let bold = panel.color.stroke_width(2);
        let series = chart
            .draw_series(LineSeries::new(smoothed, bold))
            .map_err(|e| e.to_string())?;
        if text {
            series
                .label("smoothed")
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], bold));
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .draw()
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Draws `curves` into a PNG at `path` (atomically), with text when a font of `font_paths`
/// loads; returns whether text was drawn. The size is [`curves_size`] of the metric count.
///
/// # Errors
/// [`Error::Io`] naming the file when drawing, encoding or renaming fails.
pub fn write_curves(path: &Path, curves: &Curves, font_paths: &[PathBuf]) -> Result<bool> {
    static WARNED: AtomicBool = AtomicBool::new(false);
    let text = load_font(font_paths);
    if !text && !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            tried = ?font_paths,
            "no TrueType font found for the curves: drawing them without text \
             (install fonts-dejavu-core or set {FONT_ENV})"
        );
    }
    // The image encoder picks the format from the extension, which the temporary name keeps.
    crate::io::write_atomic_with(path, |tmp| draw(tmp, curves, text)).map(|()| text)
}

fn draw(tmp: &Path, curves: &Curves, text: bool) -> Result<()> {
    let size = curves_size(curves.metrics.len());
    let root = BitMapBackend::new(tmp, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_err(tmp, e))?;
    let (top, bottom) = root.split_vertically(LOSS_HEIGHT);
    let positive = curves.loss.iter().all(|p| p.1 > 0.0);
    let (lo, hi) = curves
        .loss
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    let loss_panel = Panel {
        title: "training loss",
        raw: &curves.loss,
        smoothed: Some(smooth(&curves.loss)),
        log_y: positive && lo > 0.0 && hi / lo >= 100.0,
        color: RGBColor(31, 119, 180),
    };
    draw_panel(&top, &loss_panel, text).map_err(|e| draw_err(tmp, e))?;
    if !curves.metrics.is_empty() {
        let rows = curves.metrics.len().div_ceil(PANELS_PER_ROW);
        let cells = bottom.split_evenly((rows, PANELS_PER_ROW));
        let palette = [
            RGBColor(214, 39, 40),
            RGBColor(44, 160, 44),
            RGBColor(255, 127, 14),
            RGBColor(148, 103, 189),
        ];
        for (i, ((name, points), cell)) in curves.metrics.iter().zip(&cells).enumerate() {
            let panel = Panel {
                title: name,
                raw: points,
                smoothed: None,
                log_y: false,
                color: palette.get(i % palette.len()).copied().unwrap_or(BLACK),
            };
            draw_panel(cell, &panel, text).map_err(|e| draw_err(tmp, e))?;
        }
    }
    root.present().map_err(|e| draw_err(tmp, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothing_is_bias_corrected() {
        let s = smooth(&[(1, 2.0), (2, 2.0), (3, 2.0)]);
        for (_, v) in s {
            assert!((v - 2.0).abs() < 1e-12);
        }
    }

    #[test]
    fn later_records_replace_earlier_ones() {
        let rec = |step, loss, skipped| StepRecord {
            step,
            loss,
            lr: 0.1,
            grad_norm: None,
            eval: BTreeMap::new(),
            skipped,
            loss_scale: None,
        };
        let c = Curves::from_records(&[
            rec(0, 3.0, false),
            rec(1, 2.0, false),
            rec(1, 1.5, false),
            rec(2, f64::NAN, true),
        ]);
        assert_eq!(c.loss, [(1, 3.0), (2, 1.5)]);
    }
}
