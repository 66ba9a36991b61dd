//! The training loop: SGD with momentum and weight decay, the paper's augmentation, a plateau or
//! step schedule, per-epoch validation, metrics files, and resumable checkpoints.
//!
//! A custom loop rather than burn-train's Learner: the plateau schedule needs each epoch's
//! validation error, and checkpoints must hold that schedule's state and the data order's seed.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use alexnet::labels::{self, Label};
use alexnet::preprocess;
use alexnet::weights::{ModelInfo, Precision, SavedModel};
use alexnet::{AlexNet, AlexNetConfig, Normalization};
use anyhow::{bail, Context, Result};
use burn::collective::{PeerId, ReduceOperation};
use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::{GradientsParams, Optimizer};
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{FloatDType, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::backend::{BackendKind, Chosen};
use crate::checkpoint;
use crate::dashboard::{BatchStatus, Dashboard};
use crate::data::{epoch_order, Batch, ImageFolder, Loader, Transform};
use crate::eval::evaluate;
use crate::metrics::{self, EpochMetrics, Means, Meter};
use crate::peers::{Devices, PeerSettings, Peers};
use crate::precision::Compute;
use crate::ranks::{average_gradients, share_of_order, Ranks};
use crate::schedule::{Plateau, Schedule};
use crate::sgd::Sgd;

/// How the learning rate falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// Divide by 10 when validation error stops improving for --patience epochs (at most 3
    /// times): the paper's.
    Plateau,
    /// Divide by 10 every --step-every epochs.
    Step,
    /// Half a cosine from --lr down to 0 over --epochs.
    Cosine,
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

/// Everything that defines a training run: the `train` command's options, saved in the run
/// folder as `run.json`, in checkpoints, and in the model's provenance.
#[derive(Debug, Clone, Serialize, Deserialize, clap::Args)]
pub struct TrainOptions {
    /// Dataset folder with train/<class>/* and val/<class>/*.
    #[arg(long)]
    pub data: PathBuf,
    /// Where checkpoints, metrics and the final weights go.
    #[arg(long, default_value = "runs/alexnet")]
    pub out: PathBuf,
    /// The network (its number of classes comes from the dataset).
    #[command(flatten)]
    pub model: AlexNetConfig,
    #[arg(long, default_value_t = 90)]
    pub epochs: usize,
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Initial learning rate [default: 0.01]. With --resume: continue at this rate instead of
    /// the checkpoint's (as the paper lowered it by hand).
    #[arg(long)]
    pub lr: Option<f64>,
    /// SGD momentum, without dampening (as the paper and PyTorch).
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    #[arg(long, default_value_t = 5e-4)]
    pub weight_decay: f64,
    #[arg(long, value_enum, default_value_t = ScheduleKind::Plateau)]
    pub lr_schedule: ScheduleKind,
    /// Epochs without validation improvement before a plateau drop.
    #[arg(long, default_value_t = 5)]
    pub patience: usize,
    #[arg(long, default_value_t = 30)]
    pub step_every: usize,
    /// The training arithmetic: f32, or bf16 with f32 master weights (for GPUs with bf16
    /// tensor cores).
    #[arg(long, value_enum, default_value_t = Compute::F32)]
    pub precision: Compute,
    /// Image decoding and augmentation threads.
    #[arg(long, default_value_t = default_workers())]
    pub workers: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Continue the run checkpointed in --out.
    #[arg(long)]
    pub resume: bool,
    /// Use only the first N classes.
    #[arg(long)]
    pub max_classes: Option<usize>,
    /// Use at most N training images per class.
    #[arg(long)]
    pub train_per_class: Option<usize>,
    /// Use at most N validation images per class.
    #[arg(long)]
    pub val_per_class: Option<usize>,
    /// Random-resized crops covering at least this share (0-1] of each image's central square,
    /// aspect 3:4 to 4:3, instead of the paper's fixed 224x224 crops: scale augmentation.
    #[arg(long, value_parser = share_of_area)]
    #[serde(default)]
    pub min_crop_area: Option<f32>,
    /// Keep decoded, resized images in memory after the first epoch (~200 KB per image).
    #[arg(long)]
    pub cache_images: bool,
    /// Also keep the decoded images in one file per split in this folder, written after the
    /// first epoch and read back by later runs (resumed ones, the next phase) instead of
    /// decoding: ~2.4 GB for Imagenette. Implies --cache-images.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Stop after the last epoch that fits in this many minutes (then save as usual).
    #[arg(long)]
    pub time_limit: Option<f64>,
    /// Write the resumable checkpoint every N epochs (and after the last one).
    #[arg(long, default_value_t = 1)]
    pub checkpoint_every: usize,
    /// Plain progress lines instead of Burn's dashboard, even on a terminal.
    #[arg(long)]
    #[serde(default)]
    pub no_tui: bool,
    /// Data-parallel peers: a count (`2`: the first two GPUs; on the CPU, two peers sharing it)
    /// or device indices (`0,1`; repeat one to put several peers on it). --batch-size stays the
    /// whole batch: each peer steps on an equal share of it.
    #[arg(long, default_value = "1")]
    #[serde(default)]
    pub devices: Devices,
    /// Threads for each peer's kernels [default: the cores shared out among the peers].
    #[arg(long)]
    #[serde(default)]
    pub peer_threads: Option<usize>,
    /// Seconds to wait for the peers' step before giving the run up.
    #[arg(long, default_value_t = DEFAULT_PEER_TIMEOUT)]
    #[serde(default = "default_peer_timeout")]
    pub peer_timeout: u64,
}

const DEFAULT_PEER_TIMEOUT: u64 = 600;

fn default_peer_timeout() -> u64 {
    DEFAULT_PEER_TIMEOUT
}

fn share_of_area(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(share) if share > 0.0 && share <= 1.0 => Ok(share),
        _ => Err(format!("must be a share of the image's area in (0, 1], not `{text}`")),
    }
}

/// The learning rate a fresh run starts at without --lr: the paper's.
pub const DEFAULT_LR: f64 = 0.01;

impl TrainOptions {
    /// The options that `trainer train ARGS` would get.
    pub fn from_args<I: Into<std::ffi::OsString> + Clone>(
        args: impl IntoIterator<Item = I>,
    ) -> Result<Self, clap::Error> {
        #[derive(clap::Parser)]
        #[command(args_override_self = true)]
        struct Train {
            #[command(flatten)]
            options: TrainOptions,
        }
        let args = std::iter::once(std::ffi::OsString::from("train")).chain(args.into_iter().map(Into::into));
        Ok(<Train as clap::Parser>::try_parse_from(args)?.options)
    }

    /// The rate a fresh run starts at.
    pub fn initial_lr(&self) -> f64 {
        self.lr.unwrap_or(DEFAULT_LR)
    }
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

/// Trains as `opts` says. `tui`: show Burn's dashboard (on a terminal) instead of plain lines.
pub fn train<B: AutodiffBackend>(
    opts: &TrainOptions,
    device: &B::Device,
    backend: Chosen,
    tui: bool,
) -> Result<TrainSummary> {
    train_ranked::<B>(opts, device, backend, tui, None)
}

/// [`train`] as one of the processes of an MPI job (`ranks`; see [`crate::ranks`]), or alone.
/// Every rank returns the same summary; only rank 0 wrote its files.
pub fn train_ranked<B: AutodiffBackend>(
    opts: &TrainOptions,
    device: &B::Device,
    backend: Chosen,
    tui: bool,
    ranks: Option<&Ranks>,
) -> Result<TrainSummary> {
    let writer = ranks.is_none_or(Ranks::is_writer);
    let processes = ranks.map_or(1, Ranks::size);
    let train_set =
        ImageFolder::scan(&opts.data.join("train"))?.subset(opts.max_classes, opts.train_per_class);
    let val_set = ImageFolder::scan(&opts.data.join("val"))?.subset(opts.max_classes, opts.val_per_class);
    if train_set.classes != val_set.classes {
        bail!(
            "train/ and val/ hold different class folders ({} vs {})",
            train_set.classes.join(", "),
            val_set.classes.join(", ")
        );
    }
    let classes = train_set.classes.clone();
    let class_labels: Vec<Label> = classes.iter().map(|c| labels::from_folder_name(c)).collect();
    let config = opts.model.clone().with_num_classes(classes.len());
    config.validate().map_err(anyhow::Error::msg)?;
    if opts.batch_size == 0 || opts.epochs == 0 || opts.checkpoint_every == 0 {
        bail!("--batch-size, --epochs and --checkpoint-every must be at least 1");
    }
    let peers = opts.devices.peers();
    if processes > 1 && peers > 1 {
        bail!(
            "--devices {}: under mpirun each process trains on one device (start one process per device)",
            opts.devices
        );
    }
    // Every peer or process steps on an equal share of each batch.
    let (shares, sharing) = match processes {
        1 => (peers, format!("--devices {}", opts.devices)),
        _ => (processes, format!("mpirun -np {processes}")),
    };
    if !opts.batch_size.is_multiple_of(shares) {
        bail!("--batch-size {} does not split into {shares} equal shares ({sharing})", opts.batch_size);
    }
    let devices = match ranks {
        None => opts.devices.resolve::<B>(device, backend.kind == BackendKind::Cpu)?,
        Some(ranks) => rank_device::<B>(ranks, opts, device, backend)?,
    };
    // The first peer's device: the model is initialised, validated and saved there.
    let home = devices[0].clone();
    let device = &home;
    if writer {
        std::fs::create_dir_all(&opts.out).with_context(|| format!("creating {}", opts.out.display()))?;
        if !opts.resume {
            // The whole recipe, so that the run can be repeated from its folder.
            let run_json = opts.out.join("run.json");
            std::fs::write(&run_json, serde_json::to_vec_pretty(opts)?)
                .with_context(|| format!("writing {}", run_json.display()))?;
        }
        eprintln!(
            "training {} AlexNet (width {}) on {}: {} classes, {} train / {} val images",
            config.preset,
            config.width,
            backend.kind,
            classes.len(),
            train_set.len(),
            val_set.len()
        );
    }
    let val_set = match ranks {
        Some(ranks) => {
            if writer {
                eprintln!(
                    "{processes} processes (MPI), {} images each per step",
                    opts.batch_size / processes
                );
            }
            if val_set.len() < processes {
                bail!("{} validation images cannot be shared among {processes} processes", val_set.len());
            }
            // Each rank validates its share of the images; the counts are summed.
            val_set.every_nth(ranks.rank(), processes)
        }
        None => val_set,
    };

    let norm = Normalization::IMAGENET;
    let mut train_loader = Loader::new(train_set, opts.workers, norm)?;
    let mut val_loader = Loader::new(val_set, opts.workers, norm)?;
    if opts.cache_images || opts.cache_dir.is_some() {
        let dir = opts.cache_dir.as_deref();
        train_loader = train_loader
            .cached(Transform::Train { seed: opts.seed, epoch: 0, min_crop_area: opts.min_crop_area }, dir)?;
        val_loader = val_loader.cached(Transform::Center, dir)?;
    }

    let Start { model, optim, mut schedule, mut history, first_epoch } =
        start::<B>(opts, &config, &classes, device, backend, ranks)?;
    let mut replicas = if let Some(ranks) = ranks {
        Replicas::Ranks { model: Some(model), stepper: Stepper::new(optim, opts.precision, device), ranks }
    } else if devices.len() == 1 {
        Replicas::One { model: Some(model), stepper: Stepper::new(optim, opts.precision, device) }
    } else {
        let threads_per_peer = opts.peer_threads.unwrap_or(default_workers() / peers).max(1);
        eprintln!(
            "{peers} data-parallel peers, {} images each per step, {threads_per_peer} threads each: {devices:?}",
            opts.batch_size / peers
        );
        let timeout = Duration::from_secs(opts.peer_timeout);
        let settings = PeerSettings { devices, threads_per_peer, timeout };
        Replicas::Peers(Peers::start(model, optim, opts.precision, settings)?)
    };
    let mut dashboard = Dashboard::new(tui, opts.epochs, first_epoch - 1).with_progress(writer);
    let mut last_checkpoint = (first_epoch > 1).then(|| first_epoch - 1);
    let mut best_top1 = history.iter().map(|m| m.val_top1).fold(f64::NEG_INFINITY, f64::max);
    let run_started = Instant::now();
    for epoch in first_epoch..=opts.epochs {
        // Seeded per epoch, so a resumed run draws the same dropout masks as an uninterrupted one;
        // and per rank, so that ranks do not drop the same units of their images.
        let rank = ranks.map_or(0, Ranks::rank) as u64;
        B::seed(device, opts.seed.wrapping_add(epoch as u64).wrapping_add(rank << 32));
        let pass = Pass { epoch, lr: schedule.lr(), last_checkpoint };
        let trained = train_epoch(&mut replicas, &train_loader, opts, pass, &mut dashboard)?;
        let (model, optim) = replicas.current()?;
        let val = evaluate(
            &model.valid(),
            &val_loader,
            &(0..classes.len()).collect::<Vec<_>>(),
            None,
            false,
            opts.batch_size,
            device,
        )?;
        let val_seconds = val.seconds;
        let val =
            across_ranks(ranks, Means { images: val.images, loss: val.loss, top1: val.top1, top5: val.top5 });
        for warning in val_loader.skipped.take_new() {
            dashboard.note(warning);
        }
        let metrics = EpochMetrics {
            epoch,
            lr: pass.lr,
            train_loss: trained.means.loss,
            train_top1: trained.means.top1,
            train_top5: trained.means.top5,
            val_loss: val.loss,
            val_top1: val.top1,
            val_top5: val.top5,
            images_per_sec: trained.means.images as f64 / trained.seconds,
            seconds: trained.seconds + val_seconds,
            data_wait_seconds: trained.data_wait,
        };
        dashboard.end_epoch(&metrics);
        history.push(metrics);
        if schedule.end_epoch(epoch, 1.0 - val.top1) && writer {
            dashboard.note(format!("learning rate now {}", schedule.lr()));
        }
        // Stop when another epoch like this one would overrun the time limit (when any rank
        // would: they stop together).
        let out_of_time = opts.time_limit.is_some_and(|limit| {
            let elapsed = run_started.elapsed().as_secs_f64();
            elapsed + elapsed / (epoch + 1 - first_epoch) as f64 > limit * 60.0
        });
        let out_of_time = across_ranks_any(ranks, out_of_time);
        // Rank 0 alone writes the run folder.
        if writer {
            metrics::write_all(&opts.out, &history)?;
            for loader in [&train_loader, &val_loader] {
                if loader.write_cache_if_complete()? {
                    dashboard.note(format!(
                        "decoded {} images: cached for later runs",
                        loader.folder().root.display()
                    ));
                }
            }
            if val.top1 > best_top1 {
                best_top1 = val.top1;
                let info = model_info(opts, &config, &class_labels, &classes, backend.kind, &history)?;
                SavedModel { model: model.valid(), info }
                    .save(&opts.out.join("model-best.safetensors"), Precision::F32)?;
            }
            if epoch % opts.checkpoint_every == 0 || epoch == opts.epochs || out_of_time {
                checkpoint::save(
                    &opts.out,
                    &model,
                    &optim,
                    checkpoint::State {
                        epoch,
                        options: opts.clone(),
                        classes: classes.clone(),
                        schedule: schedule.clone(),
                        history: history.clone(),
                        checksums: Default::default(),
                    },
                )?;
                last_checkpoint = Some(epoch);
            }
        }
        if out_of_time && epoch < opts.epochs {
            if writer {
                dashboard.note(format!("stopping after epoch {epoch}: the next one would pass --time-limit"));
            }
            break;
        }
    }
    drop(dashboard);

    let skipped_files = train_loader.skipped.count() + val_loader.skipped.count();
    if skipped_files > 0 {
        eprintln!("{skipped_files} unreadable image files were skipped");
    }
    history.last().context("no epoch was run (is --epochs below the checkpoint's epoch?)")?;
    let weights = opts.out.join("model.safetensors");
    let weights_f16 = opts.out.join("model-f16.safetensors");
    let weights_int8 = opts.out.join("model-int8.safetensors");
    if writer {
        let (model, _) = replicas.current()?;
        let info = model_info(opts, &config, &class_labels, &classes, backend.kind, &history)?;
        let saved = SavedModel { model: model.valid(), info };
        saved.save(&weights, Precision::F32)?;
        saved.save(&weights_f16, Precision::F16)?;
        saved.save(&weights_int8, Precision::Int8)?;
        eprintln!("saved {}, {} and {}", weights.display(), weights_f16.display(), weights_int8.display());
    }
    Ok(TrainSummary { history, weights, weights_f16, weights_int8, skipped_files })
}

/// Where a run starts: fresh weights, or the checkpoint in `--out` with `--resume`.
struct Start<B: AutodiffBackend, O> {
    model: AlexNet<B>,
    optim: O,
    schedule: Schedule,
    history: Vec<EpochMetrics>,
    first_epoch: usize,
}

fn start<B: AutodiffBackend>(
    opts: &TrainOptions,
    config: &AlexNetConfig,
    classes: &[String],
    device: &B::Device,
    backend: Chosen,
    ranks: Option<&Ranks>,
) -> Result<Start<B, impl Optimizer<AlexNet<B>, B>>> {
    // Seeded before drawing the initial weights, so --seed repeats a run exactly.
    B::seed(device, opts.seed);
    let model: AlexNet<B> = config.init(device);
    backend.check_fits(&model)?;
    // Burn draws a fresh model's weights lazily, on first use. Left to the first step, they were
    // drawn twice: in the forward pass's copy of the model and again, differently, in the model
    // that step updated, so the first gradient was applied to weights it was not computed for.
    draw_weights(&model);
    let optim = sgd::<B>(opts.momentum, opts.weight_decay);
    let lr = opts.initial_lr();
    let schedule = match opts.lr_schedule {
        ScheduleKind::Plateau => Schedule::Plateau(Plateau::new(lr, opts.patience)),
        ScheduleKind::Step => Schedule::Step { base_lr: lr, every: opts.step_every, factor: 10.0, lr },
        ScheduleKind::Cosine => Schedule::Cosine { base_lr: lr, epochs: opts.epochs, lr },
    };
    let writer = ranks.is_none_or(Ranks::is_writer);
    let start = if !writer {
        // Receives rank 0's start below.
        Start { model, optim, schedule, history: Vec::new(), first_epoch: 1 }
    } else if opts.resume {
        let loaded = checkpoint::load(&opts.out, model, optim, device)?;
        let state = loaded.state;
        check_compatible(&state, opts, classes)?;
        let mut schedule = state.schedule;
        if let Some(lr) = opts.lr {
            schedule.set_lr(lr, state.epoch);
        }
        eprintln!("resuming after epoch {} (lr {})", state.epoch, schedule.lr());
        Start {
            model: loaded.model,
            optim: loaded.optim,
            schedule,
            history: state.history,
            first_epoch: state.epoch + 1,
        }
    } else if checkpoint::exists(&opts.out) {
        bail!(
            "{} already holds a checkpoint: pass --resume to continue it, or choose another --out",
            opts.out.display()
        );
    } else {
        Start { model, optim, schedule, history: Vec::new(), first_epoch: 1 }
    };
    if writer {
        checkpoint::check_writable(&opts.out)?;
    }
    match ranks {
        Some(ranks) => share_start(ranks, start, device),
        None => Ok(start),
    }
}

/// Rank 0's start (its weights, optimizer state and schedule) on every rank.
fn share_start<B: AutodiffBackend, O: Optimizer<AlexNet<B>, B>>(
    ranks: &Ranks,
    start: Start<B, O>,
    device: &B::Device,
) -> Result<Start<B, O>> {
    let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
    let (model, optim, run) = if ranks.is_writer() {
        let run = (&start.schedule, &start.history, start.first_epoch);
        (
            recorder.record(start.model.clone().into_record(), ())?,
            recorder.record(start.optim.to_record(), ())?,
            serde_json::to_vec(&run)?,
        )
    } else {
        Default::default()
    };
    let (model, optim, run) = (ranks.broadcast(model), ranks.broadcast(optim), ranks.broadcast(run));
    if ranks.is_writer() {
        return Ok(start);
    }
    let (schedule, history, first_epoch) = serde_json::from_slice(&run).context("rank 0's schedule")?;
    Ok(Start {
        model: start.model.load_record(recorder.load(model, device).context("rank 0's weights")?),
        optim: start.optim.load_record(recorder.load(optim, device).context("rank 0's optimizer state")?),
        schedule,
        history,
        first_epoch,
    })
}

/// The device of this rank: the CPU, or the GPU whose index is the rank's place among the job's
/// processes on this machine.
fn rank_device<B: AutodiffBackend>(
    ranks: &Ranks,
    opts: &TrainOptions,
    device: &B::Device,
    backend: Chosen,
) -> Result<Vec<B::Device>> {
    if backend.kind == BackendKind::Cpu || opts.devices != Devices::Count(1) {
        return opts.devices.resolve::<B>(device, backend.kind == BackendKind::Cpu);
    }
    let local = ranks.local_rank();
    Devices::Indices(vec![local]).resolve::<B>(device, false).with_context(|| {
        format!(
            "rank {} is process {local} on its machine and needs GPU {local}: start one process per GPU",
            ranks.rank()
        )
    })
}

/// The means over every rank's images (`means` alone without MPI).
fn across_ranks(ranks: Option<&Ranks>, means: Means) -> Means {
    let Some(ranks) = ranks else { return means };
    let n = means.images as f64;
    let [loss, top1, top5, images] = ranks.sum(&[means.loss * n, means.top1 * n, means.top5 * n, n])[..]
    else {
        unreachable!("four sums")
    };
    if images == 0.0 {
        return Means::default();
    }
    Means { images: images as usize, loss: loss / images, top1: top1 / images, top5: top5 / images }
}

/// Whether `flag` holds on any rank.
fn across_ranks_any(ranks: Option<&Ranks>, flag: bool) -> bool {
    match ranks {
        Some(ranks) => ranks.sum(&[flag as u8 as f64])[0] > 0.0,
        None => flag,
    }
}

/// Draws the weights of a model fresh from `init` (Burn draws them lazily, on first use), from
/// the backend's generator as it is now.
pub fn draw_weights<B: Backend, M: Module<B>>(model: &M) {
    model.visit(&mut DrawWeights);
}

struct DrawWeights;

impl<B: Backend> ModuleVisitor<B> for DrawWeights {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let _ = param.val();
    }
}

/// Which epoch a pass over the training set is, at which rate.
#[derive(Clone, Copy)]
struct Pass {
    epoch: usize,
    lr: f64,
    /// The epoch of the last checkpoint, for the message when the user stops the run.
    last_checkpoint: Option<usize>,
}

/// What one pass over the training set measured.
struct Trained {
    means: Means,
    seconds: f64,
    data_wait: f64,
}

/// The model being trained: stepped on this thread, or as a replica per data-parallel peer.
// One value per run: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Replicas<'r, B: AutodiffBackend, O> {
    /// `None` only after a failed step.
    One {
        model: Option<AlexNet<B>>,
        stepper: Stepper<B, O>,
    },
    Peers(Peers<B, O>),
    /// This process's replica in an MPI job.
    Ranks {
        model: Option<AlexNet<B>>,
        stepper: Stepper<B, O>,
        ranks: &'r Ranks,
    },
}

impl<B: AutodiffBackend, O: Optimizer<AlexNet<B>, B> + 'static> Replicas<'_, B, O> {
    /// One SGD step on `batch` (this rank's share of it under MPI, which may be empty).
    fn step(&mut self, batch: Batch, lr: f64, meter: &mut Meter<B::InnerBackend>) -> Result<()> {
        match self {
            Replicas::One { .. } | Replicas::Peers(_) if batch.is_empty() => Ok(()),
            Replicas::One { model, stepper } => {
                let before = model.take().context("a failed step lost the model")?;
                *model = Some(stepper.step(before, batch, lr, meter)?);
                Ok(())
            }
            Replicas::Peers(peers) => peers.step(batch, lr, meter),
            Replicas::Ranks { model, stepper, ranks } => {
                let before = model.take().context("a failed step lost the model")?;
                let images = batch.len();
                let grads = (images > 0).then(|| stepper.gradients(&before, batch, meter));
                let grads = average_gradients::<B, _>(ranks, &before, grads, images, &stepper.device)?;
                *model = Some(match grads {
                    Some(grads) => stepper.optim.step(lr, before, grads),
                    None => before,
                });
                Ok(())
            }
        }
    }

    /// The model and optimizer state now (the first peer's: every replica is the same).
    fn current(&mut self) -> Result<(AlexNet<B>, O)> {
        match self {
            Replicas::One { model, stepper } | Replicas::Ranks { model, stepper, .. } => {
                Ok((model.clone().context("a failed step lost the model")?, stepper.optim.clone()))
            }
            Replicas::Peers(peers) => peers.snapshot(0),
        }
    }
}

/// One pass over the training set in a seeded random order, every batch through `replicas`,
/// progress to `dashboard`.
fn train_epoch<B: AutodiffBackend, O: Optimizer<AlexNet<B>, B> + 'static>(
    replicas: &mut Replicas<'_, B, O>,
    loader: &Loader,
    opts: &TrainOptions,
    pass: Pass,
    dashboard: &mut Dashboard,
) -> Result<Trained> {
    let Pass { epoch, lr, last_checkpoint } = pass;
    let started = Instant::now();
    let order = epoch_order(loader.folder().len(), opts.seed, epoch);
    let batches = order.len().div_ceil(opts.batch_size);
    // Under MPI this rank loads only its share of each batch.
    let ranks = match replicas {
        Replicas::Ranks { ranks, .. } => Some(*ranks),
        _ => None,
    };
    let (order, batch_size) = match ranks {
        Some(r) => (share_of_order(&order, opts.batch_size, r.rank(), r.size()), opts.batch_size / r.size()),
        None => (order, opts.batch_size),
    };
    let mut meter = Meter::<B::InnerBackend>::default();
    let mut data_wait = 0.0;
    let mut waiting = Instant::now();
    let transform = Transform::Train { seed: opts.seed, epoch, min_crop_area: opts.min_crop_area };
    for (i, batch) in loader.batches(order, batch_size, transform).into_iter().enumerate() {
        data_wait += waiting.elapsed().as_secs_f64();
        replicas.step(batch, lr, &mut meter)?;
        for warning in loader.skipped.take_new() {
            dashboard.note(warning);
        }
        if dashboard.update_due(i + 1, batches) {
            let (epoch_means, recent) = meter.read_since_last()?;
            check_finite(epoch_means.loss, epoch)?;
            let elapsed_seconds = started.elapsed().as_secs_f64();
            dashboard.batch(&BatchStatus {
                epoch,
                batch: i + 1,
                batches,
                images_total: loader.folder().len(),
                recent,
                epoch_means,
                lr,
                // Under MPI the means are rank 0's share; every rank steps on as many images.
                images_per_sec: (epoch_means.images * ranks.map_or(1, Ranks::size)) as f64 / elapsed_seconds,
                elapsed_seconds,
            });
        }
        if dashboard.stop_requested() {
            let kept = match last_checkpoint {
                Some(done) => format!("the checkpoint after epoch {done} is kept: continue with --resume"),
                None => "no epoch had finished, so there is no checkpoint".to_string(),
            };
            bail!("stopped from the dashboard during epoch {epoch}; {kept}");
        }
        waiting = Instant::now();
    }
    let means = across_ranks(ranks, meter.read()?);
    if means.images == 0 {
        bail!("no readable training images");
    }
    check_finite(means.loss, epoch)?;
    Ok(Trained { means, seconds: started.elapsed().as_secs_f64(), data_wait })
}

fn check_compatible(state: &checkpoint::State, opts: &TrainOptions, classes: &[String]) -> Result<()> {
    let saved = &state.options;
    let (saved_model, model) = (&saved.model, &opts.model);
    if saved_model.preset != model.preset || saved_model.width != model.width || state.classes != classes {
        bail!(
            "the checkpoint in {} is for another run (preset {}, width {}, {} classes); use the \
             same --preset, --width and data, or another --out",
            opts.out.display(),
            saved_model.preset,
            saved_model.width,
            state.classes.len()
        );
    }
    Ok(())
}

/// The paper's optimizer: SGD with momentum (without dampening) and weight decay.
pub fn sgd<B: AutodiffBackend>(momentum: f64, weight_decay: f64) -> impl Optimizer<AlexNet<B>, B> {
    Sgd { momentum: momentum as f32, weight_decay: weight_decay as f32 }.init::<AlexNet<B>, B>()
}

/// What an SGD step needs besides the model and the batch.
pub struct Stepper<B: AutodiffBackend, O> {
    pub optim: O,
    pub loss: CrossEntropyLoss<B>,
    pub precision: Compute,
    pub device: B::Device,
    /// A data-parallel peer's id: its gradients are averaged with the other peers' before the
    /// step (see [`crate::peers`]).
    pub peer: Option<PeerId>,
}

impl<B: AutodiffBackend, O: Optimizer<AlexNet<B>, B>> Stepper<B, O> {
    /// The paper's optimizer (see [`sgd`]) and cross-entropy.
    pub fn new(optim: O, precision: Compute, device: &B::Device) -> Self {
        Self {
            optim,
            loss: CrossEntropyLossConfig::new().init(device),
            precision,
            device: device.clone(),
            peer: None,
        }
    }

    /// Steps as data-parallel peer `peer`: with the mean of every peer's gradients.
    pub fn synced(self, peer: PeerId) -> Self {
        Self { peer: Some(peer), ..self }
    }

    /// One SGD step on `batch` at `lr`; the batch's loss and hits go to `meter` (on the device).
    pub fn step(
        &mut self,
        model: AlexNet<B>,
        batch: Batch,
        lr: f64,
        meter: &mut Meter<B::InnerBackend>,
    ) -> Result<AlexNet<B>> {
        let (images, targets) = self.on_device(batch);
        self.step_on(model, images, targets, lr, meter)
    }

    /// [`Stepper::step`] on a batch already on the device.
    pub fn step_on(
        &mut self,
        model: AlexNet<B>,
        images: Tensor<B, 4>,
        targets: Tensor<B, 1, Int>,
        lr: f64,
        meter: &mut Meter<B::InnerBackend>,
    ) -> Result<AlexNet<B>> {
        let mut grads = self.gradients_on(&model, images, targets, meter);
        if let Some(peer) = self.peer {
            grads = grads
                .all_reduce::<B::InnerBackend>(peer, ReduceOperation::Mean)
                .map_err(|e| anyhow::anyhow!("averaging the gradients with the other peers: {e:?}"))?;
        }
        Ok(self.optim.step(lr, model, grads))
    }

    /// The gradient of the mean loss over `batch`; its loss and hits go to `meter`.
    pub fn gradients(
        &self,
        model: &AlexNet<B>,
        batch: Batch,
        meter: &mut Meter<B::InnerBackend>,
    ) -> GradientsParams {
        let (images, targets) = self.on_device(batch);
        self.gradients_on(model, images, targets, meter)
    }

    fn on_device(&self, batch: Batch) -> (Tensor<B, 4>, Tensor<B, 1, Int>) {
        let targets: Vec<i64> = batch.labels.iter().map(|&l| l as i64).collect();
        let targets = Tensor::from_data(TensorData::new(targets, [batch.len()]), &self.device);
        (preprocess::batch_from_flat(batch.inputs, &self.device), targets)
    }

    fn gradients_on(
        &self,
        model: &AlexNet<B>,
        images: Tensor<B, 4>,
        targets: Tensor<B, 1, Int>,
        meter: &mut Meter<B::InnerBackend>,
    ) -> GradientsParams {
        let images = self.precision.input(images);
        let logits = self.precision.weights(model).forward(images).cast(FloatDType::F32);
        let loss = self.loss.forward(logits.clone(), targets.clone());
        meter.add(loss.clone().inner(), logits.inner(), targets.inner());
        GradientsParams::from_grads(loss.backward(), model)
    }
}

fn check_finite(mean_loss: f64, epoch: usize) -> Result<()> {
    if !mean_loss.is_finite() {
        bail!("the loss became {mean_loss} in epoch {epoch}: lower --lr");
    }
    Ok(())
}

/// The description saved with the weights: network, labels, and how they were made.
fn model_info(
    opts: &TrainOptions,
    config: &AlexNetConfig,
    class_labels: &[Label],
    classes: &[String],
    backend: BackendKind,
    history: &[EpochMetrics],
) -> Result<ModelInfo> {
    let last = history.last().context("no epoch was run")?;
    Ok(ModelInfo::new(config.clone(), class_labels.to_vec())
        .with_provenance("dataset", opts.data.display().to_string())
        .with_provenance("classes", classes.to_vec())
        .with_provenance("epochs", last.epoch)
        .with_provenance("recipe", serde_json::to_value(opts)?)
        .with_provenance("backend", backend.to_string())
        .with_provenance("val_top1_center", last.val_top1)
        .with_provenance("val_top5_center", last.val_top5)
        .with_provenance("train_seconds", history.iter().map(|m| m.seconds).sum::<f64>()))
}
