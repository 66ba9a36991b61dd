//! What a training run records per epoch, and the files it writes from it: `metrics.csv`,
//! `metrics.json` and `curves.svg`.

use std::path::Path;

use anyhow::{Context, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

/// One line of `metrics.csv` / `metrics.json`. Accuracies are fractions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub lr: f64,
    pub train_loss: f64,
    pub train_top1: f64,
    pub train_top5: f64,
    pub val_loss: f64,
    pub val_top1: f64,
    pub val_top5: f64,
    pub images_per_sec: f64,
    pub seconds: f64,
    /// Seconds of the epoch's training spent waiting for the loader (decoding, augmenting).
    #[serde(default)]
    pub data_wait_seconds: f64,
}

const CSV_HEADER: &str = "epoch,lr,train_loss,train_top1,train_top5,val_loss,val_top1,val_top5,\
                          images_per_sec,seconds,data_wait_seconds";

/// Writes `metrics.csv`, `metrics.json` and `curves.svg` into `out`.
pub fn write_all(out: &Path, history: &[EpochMetrics]) -> Result<()> {
    let mut csv = format!("{CSV_HEADER}\n");
    for m in history {
        csv += &format!(
            "{},{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.2},{:.2},{:.2}\n",
            m.epoch,
            m.lr,
            m.train_loss,
            m.train_top1,
            m.train_top5,
            m.val_loss,
            m.val_top1,
            m.val_top5,
            m.images_per_sec,
            m.seconds,
            m.data_wait_seconds
        );
    }
    let write = |name: &str, bytes: &[u8]| {
        let path = out.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
    };
    write("metrics.csv", csv.as_bytes())?;
    write("metrics.json", &serde_json::to_vec_pretty(history)?)?;
    write("curves.svg", curves_svg(history)?.as_bytes())
}

/// Reads a run's `metrics.json`.
pub fn read(path: &Path) -> Result<Vec<EpochMetrics>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not a metrics.json", path.display()))
}

/// The epochs after which the learning rate changed, with the new rate.
fn lr_changes(history: &[EpochMetrics]) -> Vec<(usize, f64)> {
    history.windows(2).filter(|w| w[1].lr != w[0].lr).map(|w| (w[0].epoch, w[1].lr)).collect()
}

/// Training curves as an SVG: loss on the left, top-1 and top-5 accuracy on the right, train
/// dashed and validation solid, a grey line where the learning rate changed.
pub fn curves_svg(history: &[EpochMetrics]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1000, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let (left, right) = root.split_horizontally(500);
        let last_epoch = history.last().map_or(1, |m| m.epoch).max(1);
        let epochs = 0.5f64..last_epoch as f64 + 0.5;
        let epoch_labels = last_epoch.min(10);
        let max_loss = history
            .iter()
            .flat_map(|m| [m.train_loss, m.val_loss])
            .filter(|l| l.is_finite())
            .fold(0.1f64, f64::max);

        let mut loss = ChartBuilder::on(&left)
            .caption("cross-entropy loss", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(epochs.clone(), 0f64..max_loss * 1.05)
            .map_err(plot_error)?;
        loss.configure_mesh()
            .x_desc("epoch")
            .x_labels(epoch_labels)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .disable_x_mesh()
            .light_line_style(WHITE)
            .draw()
            .map_err(plot_error)?;
        let mut top = ChartBuilder::on(&right)
            .caption("accuracy (%)", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(epochs, 0f64..100f64)
            .map_err(plot_error)?;
        top.configure_mesh()
            .x_desc("epoch")
            .x_labels(epoch_labels)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .disable_x_mesh()
            .light_line_style(WHITE)
            .draw()
            .map_err(plot_error)?;

        for (epoch, lr) in lr_changes(history) {
            let x = epoch as f64 + 0.5;
            let grey = ShapeStyle::from(&BLACK.mix(0.35)).stroke_width(1);
            loss.draw_series([PathElement::new(vec![(x, 0.0), (x, max_loss * 1.05)], grey)])
                .map_err(plot_error)?;
            top.draw_series([PathElement::new(vec![(x, 0.0), (x, 100.0)], grey)]).map_err(plot_error)?;
            top.draw_series([Text::new(format!("lr {lr:.0e}"), (x, 4.0), ("sans-serif", 12))])
                .map_err(plot_error)?;
        }

        let loss_series: [Series; 2] =
            [("train", BLUE, true, |m| m.train_loss), ("val", RED, false, |m| m.val_loss)];
        let accuracy_series: [Series; 4] = [
            ("train top-1", BLUE, true, |m| m.train_top1 * 100.0),
            ("val top-1", RED, false, |m| m.val_top1 * 100.0),
            ("train top-5", CYAN, true, |m| m.train_top5 * 100.0),
            ("val top-5", MAGENTA, false, |m| m.val_top5 * 100.0),
        ];
        // Legends where the curves are not: loss falls, accuracy rises.
        draw_curves(&mut loss, &loss_series, history, SeriesLabelPosition::UpperRight)?;
        draw_curves(&mut top, &accuracy_series, history, SeriesLabelPosition::LowerRight)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

/// One curve: its legend, colour, whether dashed (training), and its value in an epoch.
type Series = (&'static str, RGBColor, bool, fn(&EpochMetrics) -> f64);

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draws `series` of `history` on `chart`, points marked, with their legend in `corner`.
fn draw_curves<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    series: &[Series],
    history: &[EpochMetrics],
    corner: SeriesLabelPosition,
) -> Result<()> {
    for &(name, color, dashed, value) in series {
        let points: Vec<(f64, f64)> =
            history.iter().map(|m| (m.epoch as f64, value(m))).filter(|p| p.1.is_finite()).collect();
        let style = ShapeStyle::from(&color).stroke_width(2);
        let drawn = if dashed {
            chart.draw_series(DashedLineSeries::new(points.clone(), 6, 4, style))
        } else {
            chart.draw_series(LineSeries::new(points.clone(), style))
        };
        drawn
            .map_err(plot_error)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 2, color.filled()))).map_err(plot_error)?;
    }
    chart
        .configure_series_labels()
        .position(corner)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(plot_error)?;
    Ok(())
}

fn plot_error<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing the training curves: {e:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(epoch: usize, lr: f64, val_top1: f64) -> EpochMetrics {
        EpochMetrics {
            epoch,
            lr,
            train_loss: 2.0 / epoch as f64,
            train_top1: 0.5,
            train_top5: 0.9,
            val_loss: 2.2 / epoch as f64,
            val_top1,
            val_top5: 0.95,
            images_per_sec: 60.0,
            seconds: 150.0,
            data_wait_seconds: 1.0,
        }
    }

    #[test]
    fn lr_drops_are_found_and_marked() {
        let history = [epoch(1, 1e-3, 0.4), epoch(2, 1e-3, 0.5), epoch(3, 1e-4, 0.6), epoch(4, 1e-4, 0.61)];
        assert_eq!(lr_changes(&history), vec![(2, 1e-4)]);
        let svg = curves_svg(&history).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.contains("lr 1e-4"), "the drop after epoch 2 is labelled");
        for label in ["val top-1", "train top-5", "cross-entropy loss"] {
            assert!(svg.contains(label), "{label} missing");
        }
    }

    #[test]
    fn csv_json_and_svg_are_written_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let history = vec![epoch(1, 1e-3, 0.4), epoch(2, 1e-3, 0.5)];
        write_all(dir.path(), &history).unwrap();
        assert_eq!(read(&dir.path().join("metrics.json")).unwrap(), history);
        let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
        assert_eq!(csv.lines().count(), 3);
        assert!(csv.lines().nth(2).unwrap().starts_with("2,0.001,1.000000,"));
        assert!(dir.path().join("curves.svg").exists());
    }
}
