//! Training progress: Burn's TUI dashboard (burn-train's renderer) on a terminal, plain lines
//! otherwise. The training loop is ours (see `train.rs`), so it feeds the dashboard directly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alexnet::train::Means;
use burn::data::dataloader::Progress;
use burn::train::metric::{
    MetricAttributes, MetricDefinition, MetricEntry, MetricId, NumericAttributes, NumericEntry,
    SerializedEntry,
};
use burn::train::renderer::tui::TuiMetricsRendererWrapper;
use burn::train::renderer::{
    MetricState, MetricsRenderer, MetricsRendererTraining, ProgressType, TrainingProgress,
};
use burn::train::Interrupter;

use crate::metrics::EpochMetrics;

/// Where an epoch stands after a batch.
pub struct BatchStatus {
    pub epoch: usize,
    /// 1-based index of this batch, of `batches`.
    pub batch: usize,
    pub batches: usize,
    pub images_total: usize,
    /// Means over the batches since the previous status (the dashboard plots them).
    pub recent: Means,
    /// The epoch's running means (the plain lines print them).
    pub epoch_means: Means,
    pub lr: f64,
    pub images_per_sec: f64,
    pub elapsed_seconds: f64,
}

pub struct Dashboard {
    tui: Option<Tui>,
    /// Whether batch and epoch lines are printed (false on MPI ranks other than 0; notes are).
    progress: bool,
    epochs: usize,
    /// Epoch summaries and notes, printed once the TUI has left the screen.
    log: Vec<String>,
}

struct Tui {
    renderer: TuiMetricsRendererWrapper,
    interrupter: Interrupter,
    iteration: usize,
    last_update: Instant,
}

/// How often the dashboard reads the running means: each read waits for the device.
const TUI_UPDATE_INTERVAL: Duration = Duration::from_millis(250);

const LOSS: &str = "Loss";
const TOP1: &str = "Top-1 accuracy";
const TOP5: &str = "Top-5 accuracy";
const LR: &str = "Learning rate";

impl Dashboard {
    /// `tui`: draw Burn's dashboard (only on a terminal). `last_epoch_done` is the resumed
    /// checkpoint's epoch (0 for a fresh run).
    pub fn new(tui: bool, epochs: usize, last_epoch_done: usize) -> Self {
        let tui = tui.then(|| {
            let interrupter = Interrupter::new();
            let mut renderer = TuiMetricsRendererWrapper::new(interrupter.clone(), Some(last_epoch_done));
            for (name, unit, higher_is_better) in
                [(LOSS, None, false), (TOP1, Some("%"), true), (TOP5, Some("%"), true), (LR, None, false)]
            {
                renderer.register_metric(MetricDefinition {
                    metric_id: metric_id(name),
                    name: name.to_string(),
                    description: None,
                    attributes: MetricAttributes::Numeric(NumericAttributes {
                        unit: unit.map(str::to_string),
                        higher_is_better,
                    }),
                });
            }
            Tui { renderer, interrupter, iteration: 0, last_update: Instant::now() }
        });
        Self { tui, progress: true, epochs, log: Vec::new() }
    }

    /// Without batch and epoch lines when `progress` is false (warnings still show).
    pub fn with_progress(mut self, progress: bool) -> Self {
        self.progress = progress;
        self
    }

    pub fn is_tui(&self) -> bool {
        self.tui.is_some()
    }

    /// True once the user asked the dashboard to stop (`q`, then `s`).
    pub fn stop_requested(&self) -> bool {
        self.tui.as_ref().is_some_and(|t| t.interrupter.should_stop())
    }

    /// Whether the loop should read its meter and call [`Dashboard::batch`] after batch `batch`
    /// (1-based) of `batches`: about ten times per epoch for plain lines, four times a second
    /// for the dashboard, and after the last batch.
    pub fn update_due(&mut self, batch: usize, batches: usize) -> bool {
        if batch == batches {
            return true;
        }
        match &mut self.tui {
            None => batch.is_multiple_of((batches / 10).max(1)),
            Some(tui) => tui.last_update.elapsed() >= TUI_UPDATE_INTERVAL,
        }
    }

    pub fn batch(&mut self, s: &BatchStatus) {
        if !self.progress {
            return;
        }
        let (all, recent) = (&s.epoch_means, &s.recent);
        let Some(tui) = &mut self.tui else {
            let eta = s.elapsed_seconds / s.batch as f64 * (s.batches - s.batch) as f64;
            eprintln!(
                "epoch {}/{} batch {}/{} loss {:.4} top-1 {:.1}% top-5 {:.1}% lr {:.2e} {:.1} img/s ETA {eta:.0}s",
                s.epoch, self.epochs, s.batch, s.batches, all.loss, 100.0 * all.top1,
                100.0 * all.top5, s.lr, s.images_per_sec
            );
            return;
        };
        tui.last_update = Instant::now();
        tui.iteration += 1;
        let count = recent.images;
        for (name, value, text) in [
            (LOSS, recent.loss, format!("{:.4} (epoch {:.4})", recent.loss, all.loss)),
            (
                TOP1,
                100.0 * recent.top1,
                format!("{:.1} % (epoch {:.1} %)", 100.0 * recent.top1, 100.0 * all.top1),
            ),
            (
                TOP5,
                100.0 * recent.top5,
                format!("{:.1} % (epoch {:.1} %)", 100.0 * recent.top5, 100.0 * all.top5),
            ),
            (LR, s.lr, format!("{:.2e}", s.lr)),
        ] {
            tui.renderer.update_train(numeric(name, value, count, text));
        }
        let progress = TrainingProgress {
            progress: Some(Progress { items_processed: all.images, items_total: s.images_total }),
            global_progress: Progress { items_processed: s.epoch, items_total: self.epochs },
            iteration: Some(tui.iteration),
        };
        let indicators = vec![
            ProgressType::Value { tag: "Epoch".into(), value: s.epoch },
            ProgressType::Value { tag: "Images/s".into(), value: s.images_per_sec.round() as usize },
        ];
        tui.renderer.render_train(progress, indicators);
    }

    pub fn end_epoch(&mut self, m: &EpochMetrics) {
        if !self.progress {
            return;
        }
        let line = format!(
            "epoch {}/{}: train loss {:.4} top-1 {:.1}% | val loss {:.4} top-1 {:.1}% top-5 {:.1}% | lr {:.2e} | {:.1} img/s | {:.0}s ({:.0}s waiting for data)",
            m.epoch, self.epochs, m.train_loss, m.train_top1 * 100.0, m.val_loss, m.val_top1 * 100.0,
            m.val_top5 * 100.0, m.lr, m.images_per_sec, m.seconds, m.data_wait_seconds
        );
        let Some(tui) = &mut self.tui else {
            eprintln!("{line}");
            return;
        };
        self.log.push(line);
        for (name, value, text) in [
            (LOSS, m.val_loss, format!("{:.4}", m.val_loss)),
            (TOP1, 100.0 * m.val_top1, format!("{:.2} %", 100.0 * m.val_top1)),
            (TOP5, 100.0 * m.val_top5, format!("{:.2} %", 100.0 * m.val_top5)),
        ] {
            tui.renderer.update_valid(numeric(name, value, 1, text));
        }
        let done = Progress { items_processed: 1, items_total: 1 };
        tui.renderer.render_valid(
            TrainingProgress {
                progress: Some(done),
                global_progress: Progress { items_processed: m.epoch, items_total: self.epochs },
                iteration: Some(tui.iteration),
            },
            vec![ProgressType::Value { tag: "Epoch".into(), value: m.epoch }],
        );
    }

    /// A message for the user: printed now, or after the dashboard closes.
    pub fn note(&mut self, message: String) {
        if self.tui.is_some() {
            self.log.push(message);
        } else {
            eprintln!("{message}");
        }
    }
}

impl Drop for Dashboard {
    /// Closes the TUI (restoring the terminal), then prints what it held back.
    fn drop(&mut self) {
        if let Some(mut tui) = self.tui.take() {
            let _ = tui.renderer.on_train_end(None);
            drop(tui);
            for line in self.log.drain(..) {
                eprintln!("{line}");
            }
        }
    }
}

fn metric_id(name: &str) -> MetricId {
    MetricId::new(Arc::new(name.to_string()))
}

fn numeric(name: &str, value: f64, count: usize, formatted: String) -> MetricState {
    let entry =
        MetricEntry::new(metric_id(name), SerializedEntry { formatted, serialized: value.to_string() });
    MetricState::Numeric(entry, NumericEntry::Aggregated { aggregated_value: value, count })
}
