//! The training loop: SGD with momentum and weight decay, the paper's augmentation, a plateau or
//! step schedule, per-epoch validation, metrics files, and resumable checkpoints.
//!
//! A custom loop rather than burn-train's Learner: the plateau schedule needs each epoch's
//! validation error, and checkpoints must hold that schedule's state and the data order's seed.

use std::path::{Path, PathBuf};
use std::time::Instant;

use alexnet::labels::{self, top_k, Label};
use alexnet::weights::{ModelInfo, Precision, SavedModel};
use alexnet::{AlexNet, AlexNetConfig, Initialization, Normalization, Preset};
use anyhow::{bail, Context, Result};
use burn::module::{AutodiffModule, Module};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::backend::BackendKind;
use crate::dashboard::{BatchStatus, Dashboard};
use crate::data::{epoch_order, ImageFolder, Loader, Transform};
use crate::eval::{evaluate, input_tensor};
use crate::schedule::{Plateau, Schedule};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    Plateau,
    Step,
}

/// Everything that defines a training run (saved in checkpoints and in the model's provenance).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainOptions {
    pub data: PathBuf,
    pub out: PathBuf,
    pub preset: Preset,
    pub width: f64,
    /// Dropout before fc6 and fc7 (the paper's 0.5).
    #[serde(default = "half")]
    pub dropout: f64,
    pub init: Initialization,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub lr_schedule: ScheduleKind,
    pub patience: usize,
    pub step_every: usize,
    pub workers: usize,
    pub seed: u64,
    pub max_classes: Option<usize>,
    pub train_per_class: Option<usize>,
    pub val_per_class: Option<usize>,
    pub cache_images: bool,
    pub resume: bool,
    /// Stop after the last epoch that fits in this budget (the run is then saved as usual).
    #[serde(default)]
    pub time_limit_minutes: Option<f64>,
    /// Checkpoint every N epochs (and after the last).
    #[serde(default = "one")]
    pub checkpoint_every: usize,
    /// With `resume`: continue at this learning rate instead of the checkpoint's.
    #[serde(default)]
    pub resume_lr: Option<f64>,
}

fn one() -> usize {
    1
}

fn half() -> f64 {
    0.5
}

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
}

#[derive(Debug, Serialize, Deserialize)]
struct CheckpointState {
    epoch: usize,
    options: TrainOptions,
    classes: Vec<String>,
    schedule: Schedule,
    history: Vec<EpochMetrics>,
}

/// What a finished run produced.
#[derive(Debug)]
pub struct TrainSummary {
    pub history: Vec<EpochMetrics>,
    pub weights: PathBuf,
    pub weights_f16: PathBuf,
    pub weights_int8: PathBuf,
    pub skipped_files: usize,
}

type Checkpointer = BinFileRecorder<FullPrecisionSettings>;

fn checkpoint_dir(out: &Path) -> PathBuf {
    out.join("checkpoint")
}

/// Trains as `opts` says. `tui`: show Burn's dashboard (on a terminal) instead of plain lines.
pub fn train<B: AutodiffBackend>(
    opts: &TrainOptions,
    device: &B::Device,
    backend: BackendKind,
    tui: bool,
) -> Result<TrainSummary> {
    let train_set = ImageFolder::scan(&opts.data.join("train"))?
        .subset(opts.max_classes, opts.train_per_class);
    let val_set =
        ImageFolder::scan(&opts.data.join("val"))?.subset(opts.max_classes, opts.val_per_class);
    if train_set.classes != val_set.classes {
        bail!(
            "train/ and val/ hold different class folders ({} vs {})",
            train_set.classes.join(", "),
            val_set.classes.join(", ")
        );
    }
    let classes = train_set.classes.clone();
    let class_labels: Vec<Label> = classes.iter().map(|c| labels::from_folder_name(c)).collect();
    let config = AlexNetConfig::new(opts.preset)
        .with_num_classes(classes.len())
        .with_width(opts.width)
        .with_dropout(opts.dropout)
        .with_initialization(opts.init);
    config.validate().map_err(anyhow::Error::msg)?;
    if opts.batch_size == 0 || opts.epochs == 0 || opts.checkpoint_every == 0 {
        bail!("--batch-size, --epochs and --checkpoint-every must be at least 1");
    }
    std::fs::create_dir_all(&opts.out).with_context(|| format!("creating {}", opts.out.display()))?;
    eprintln!(
        "training {} AlexNet (width {}) on {backend}: {} classes, {} train / {} val images",
        opts.preset,
        opts.width,
        classes.len(),
        train_set.len(),
        val_set.len()
    );

    let norm = Normalization::IMAGENET;
    let train_loader = Loader::new(train_set, opts.workers, norm, opts.cache_images)?;
    let val_loader = Loader::new(val_set, opts.workers, norm, opts.cache_images)?;

    // Seeded before drawing the initial weights, so --seed repeats a run exactly.
    B::seed(device, opts.seed);
    let mut model: AlexNet<B> = config.init(device);
    let mut optim = SgdConfig::new()
        // Dampening 0: the paper's (and PyTorch's) momentum; Burn's default is 0.1.
        .with_momentum(Some(MomentumConfig::new().with_momentum(opts.momentum).with_dampening(0.0)))
        .with_weight_decay(Some(WeightDecayConfig::new(opts.weight_decay as f32)))
        .init::<B, AlexNet<B>>();
    let mut schedule = match opts.lr_schedule {
        ScheduleKind::Plateau => Schedule::Plateau(Plateau::new(opts.lr, opts.patience)),
        ScheduleKind::Step => Schedule::Step { base_lr: opts.lr, every: opts.step_every, factor: 10.0, lr: opts.lr },
    };
    let mut history = Vec::new();
    let mut start_epoch = 1;
    let mut last_checkpoint = None;

    let state_path = checkpoint_dir(&opts.out).join("state.json");
    if opts.resume {
        let state: CheckpointState = serde_json::from_slice(
            &std::fs::read(&state_path)
                .with_context(|| format!("--resume: no checkpoint at {}", state_path.display()))?,
        )
        .with_context(|| format!("reading {}", state_path.display()))?;
        check_compatible(&state, opts, &classes)?;
        let recorder = Checkpointer::new();
        let dir = checkpoint_dir(&opts.out);
        model = model
            .load_file(dir.join(format!("model-{}", state.epoch)), &recorder, device)
            .context("loading the checkpoint's model")?;
        let record = recorder
            .load(dir.join(format!("optim-{}", state.epoch)), device)
            .context("loading the checkpoint's optimizer state")?;
        optim = optim.load_record(record);
        schedule = state.schedule;
        if let Some(lr) = opts.resume_lr {
            schedule.set_lr(lr, state.epoch);
        }
        history = state.history;
        start_epoch = state.epoch + 1;
        last_checkpoint = Some(state.epoch);
        eprintln!("resuming after epoch {} (lr {})", state.epoch, schedule.lr());
    } else if state_path.exists() {
        bail!(
            "{} already holds a checkpoint: pass --resume to continue it, or choose another --out",
            opts.out.display()
        );
    }

    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let mut dashboard = Dashboard::new(tui, opts.epochs, start_epoch - 1);
    if dashboard.is_tui() {
        // Held back while the dashboard owns the screen; printed when it closes.
        train_loader.skipped.hold();
        val_loader.skipped.hold();
    }
    let run_started = Instant::now();
    for epoch in start_epoch..=opts.epochs {
        // Seeded per epoch, so a resumed run draws the same dropout masks as an uninterrupted one.
        B::seed(device, opts.seed.wrapping_add(epoch as u64));
        let started = Instant::now();
        let lr = schedule.lr();
        let order = epoch_order(train_loader.folder().len(), opts.seed, epoch);
        let batches = order.len().div_ceil(opts.batch_size);
        let (mut loss_sum, mut correct1, mut correct5, mut seen) = (0.0f64, 0usize, 0usize, 0usize);
        for (i, batch) in train_loader
            .batches(order, opts.batch_size, Transform::Train { seed: opts.seed, epoch })
            .into_iter()
            .enumerate()
        {
            if batch.is_empty() {
                continue;
            }
            let images = input_tensor::<B>(&batch, 1, device);
            let targets_data: Vec<i64> = batch.labels.iter().map(|&l| l as i64).collect();
            let targets =
                Tensor::<B, 1, Int>::from_data(TensorData::new(targets_data, [batch.len()]), device);
            let logits = model.forward(images);
            let loss = loss_fn.forward(logits.clone(), targets);
            let loss_value: f64 = loss.clone().into_scalar().to_string().parse().unwrap_or(f64::NAN);
            if !loss_value.is_finite() {
                bail!("the loss became {loss_value} in epoch {epoch}: lower --lr");
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);

            let num_classes = logits.dims()[1];
            let logits = logits.into_data().to_vec::<f32>().map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let (mut batch_top1, mut batch_top5) = (0usize, 0usize);
            for (row, &label) in logits.chunks(num_classes).zip(&batch.labels) {
                let top = top_k(row, &class_labels, 5);
                batch_top1 += (top[0].index == label) as usize;
                batch_top5 += top.iter().any(|p| p.index == label) as usize;
            }
            correct1 += batch_top1;
            correct5 += batch_top5;
            loss_sum += loss_value * batch.len() as f64;
            seen += batch.len();
            let elapsed_seconds = started.elapsed().as_secs_f64();
            dashboard.batch(&BatchStatus {
                epoch,
                batch: i + 1,
                batches,
                images_seen: seen,
                images_total: train_loader.folder().len(),
                batch_len: batch.len(),
                loss: loss_value,
                top1: batch_top1 as f64 / batch.len() as f64,
                top5: batch_top5 as f64 / batch.len() as f64,
                mean_loss: loss_sum / seen as f64,
                mean_top1: correct1 as f64 / seen as f64,
                mean_top5: correct5 as f64 / seen as f64,
                lr,
                images_per_sec: seen as f64 / elapsed_seconds,
                elapsed_seconds,
            });
            if dashboard.stop_requested() {
                let kept = match last_checkpoint {
                    Some(done) => format!("the checkpoint after epoch {done} is kept: continue with --resume"),
                    None => "no epoch had finished, so there is no checkpoint".to_string(),
                };
                bail!("stopped from the dashboard during epoch {epoch}; {kept}");
            }
        }
        if seen == 0 {
            bail!("no readable training images");
        }
        let train_seconds = started.elapsed().as_secs_f64();
        let val = evaluate(&model.valid(), &val_loader, &(0..classes.len()).collect::<Vec<_>>(), &class_labels, false, opts.batch_size, device)?;
        let metrics = EpochMetrics {
            epoch,
            lr,
            train_loss: loss_sum / seen as f64,
            train_top1: correct1 as f64 / seen as f64,
            train_top5: correct5 as f64 / seen as f64,
            val_loss: val.loss,
            val_top1: val.top1,
            val_top5: val.top5,
            images_per_sec: seen as f64 / train_seconds,
            seconds: started.elapsed().as_secs_f64(),
        };
        dashboard.end_epoch(&metrics);
        history.push(metrics);
        if schedule.end_epoch(epoch, val.top1_error) {
            dashboard.note(format!("learning rate now {}", schedule.lr()));
        }
        write_metrics(&opts.out, &history)?;
        // Stop when another epoch like this one would overrun the time limit.
        let out_of_time = opts.time_limit_minutes.is_some_and(|limit| {
            let elapsed = run_started.elapsed().as_secs_f64();
            elapsed + elapsed / (epoch + 1 - start_epoch) as f64 > limit * 60.0
        });
        if epoch % opts.checkpoint_every == 0 || epoch == opts.epochs || out_of_time {
            save_checkpoint(&opts.out, &model, &optim, CheckpointState {
                epoch,
                options: opts.clone(),
                classes: classes.clone(),
                schedule: schedule.clone(),
                history: history.clone(),
            })?;
            last_checkpoint = Some(epoch);
        }
        if out_of_time && epoch < opts.epochs {
            dashboard.note(format!("stopping after epoch {epoch}: the next one would pass --time-limit"));
            break;
        }
    }
    drop(dashboard);
    train_loader.skipped.release();
    val_loader.skipped.release();

    let skipped_files = train_loader.skipped.count() + val_loader.skipped.count();
    if skipped_files > 0 {
        eprintln!("{skipped_files} unreadable image files were skipped");
    }
    let last = history.last().cloned().context("no epoch was run (is --epochs below the checkpoint's epoch?)")?;
    let info = ModelInfo::new(config, class_labels)
        .with_provenance("dataset", opts.data.display().to_string())
        .with_provenance("classes", classes.clone())
        .with_provenance("epochs", last.epoch)
        .with_provenance("recipe", serde_json::to_value(opts)?)
        .with_provenance("backend", backend.to_string())
        .with_provenance("val_top1_center", last.val_top1)
        .with_provenance("val_top5_center", last.val_top5)
        .with_provenance("train_seconds", history.iter().map(|m| m.seconds).sum::<f64>());
    let saved = SavedModel { model: model.valid(), info };
    let weights = opts.out.join("model.safetensors");
    let weights_f16 = opts.out.join("model-f16.safetensors");
    let weights_int8 = opts.out.join("model-int8.safetensors");
    saved.save(&weights, Precision::F32)?;
    saved.save(&weights_f16, Precision::F16)?;
    saved.save(&weights_int8, Precision::Int8)?;
    eprintln!("saved {}, {} and {}", weights.display(), weights_f16.display(), weights_int8.display());
    Ok(TrainSummary { history, weights, weights_f16, weights_int8, skipped_files })
}

fn check_compatible(state: &CheckpointState, opts: &TrainOptions, classes: &[String]) -> Result<()> {
    let saved = &state.options;
    if saved.preset != opts.preset || saved.width != opts.width || state.classes != classes {
        bail!(
            "the checkpoint in {} is for another run (preset {}, width {}, {} classes); use the \
             same --preset, --width and data, or another --out",
            opts.out.display(),
            saved.preset,
            saved.width,
            state.classes.len()
        );
    }
    Ok(())
}

/// Model and optimizer files are written under epoch-numbered names, then `state.json` is
/// replaced atomically to point at them; older files go only after that. A run killed at any
/// moment keeps its last complete checkpoint.
fn save_checkpoint<B: AutodiffBackend, O: Optimizer<AlexNet<B>, B>>(
    out: &Path,
    model: &AlexNet<B>,
    optim: &O,
    state: CheckpointState,
) -> Result<()> {
    let dir = checkpoint_dir(out);
    std::fs::create_dir_all(&dir)?;
    let recorder = Checkpointer::new();
    let epoch = state.epoch;
    model.clone().save_file(dir.join(format!("model-{epoch}")), &recorder)?;
    recorder.record(optim.to_record(), dir.join(format!("optim-{epoch}")))?;
    let partial = dir.join("state.json.partial");
    std::fs::write(&partial, serde_json::to_vec_pretty(&state)?)?;
    std::fs::rename(&partial, dir.join("state.json"))?;
    for entry in std::fs::read_dir(&dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let stale = ["model-", "optim-"].iter().any(|p| {
            name.strip_prefix(p)
                .and_then(|rest| rest.split('.').next())
                .and_then(|n| n.parse::<usize>().ok())
                .is_some_and(|n| n != epoch)
        });
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

fn write_metrics(out: &Path, history: &[EpochMetrics]) -> Result<()> {
    let mut csv = String::from("epoch,lr,train_loss,train_top1,train_top5,val_loss,val_top1,val_top5,images_per_sec,seconds\n");
    for m in history {
        csv += &format!(
            "{},{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.2},{:.2}\n",
            m.epoch, m.lr, m.train_loss, m.train_top1, m.train_top5, m.val_loss, m.val_top1, m.val_top5, m.images_per_sec, m.seconds
        );
    }
    std::fs::write(out.join("metrics.csv"), csv)?;
    std::fs::write(out.join("metrics.json"), serde_json::to_vec_pretty(history)?)?;
    Ok(())
}
