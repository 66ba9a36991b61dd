//! The training loop: for each epoch, train (the library's step, `alexnet::train`, alone, on
//! data-parallel peers or as one MPI rank), validate, schedule the rate, and write the metrics,
//! the best model and resumable checkpoints.
//!
//! A custom loop rather than burn-train's Learner: the plateau schedule needs each epoch's
//! validation error, and checkpoints must hold that schedule's state and the data order's seed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use alexnet::labels::{self, Label};
use alexnet::train::{draw_weights, sgd, Means, Meter, Schedule, Stepper};
use alexnet::weights::{ModelInfo, Precision, SavedModel};
use alexnet::{AlexNet, AlexNetConfig, Normalization};
use anyhow::{bail, Context, Result};
use burn::module::{AutodiffModule, Module};
use burn::optim::Optimizer;
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;

use crate::backend::{BackendInUse, BackendKind};
use crate::checkpoint;
use crate::dashboard::{BatchStatus, Dashboard};
use crate::data::{epoch_order, Batch, ImageFolder, Loader, Transform};
use crate::eval::evaluate;
use crate::metrics::{self, EpochMetrics};
use crate::options::{default_workers, TrainOptions};
use crate::parallel::{replica_step, Alone};
use crate::peers::{Devices, PeerSettings, Peers};
use crate::ranks::{share_of_order, Ranks};

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
    backend: BackendInUse,
    tui: bool,
) -> Result<TrainSummary> {
    train_process::<B>(opts, device, backend, tui, None)
}

/// This process's part of a run: all of it, or one rank's part of an MPI job (`ranks`; see
/// [`crate::ranks`]). Every rank returns the same summary; only rank 0 wrote its files.
pub fn train_process<B: AutodiffBackend>(
    opts: &TrainOptions,
    device: &B::Device,
    backend: BackendInUse,
    tui: bool,
    ranks: Option<&Ranks>,
) -> Result<TrainSummary> {
    let writer = ranks.is_none_or(Ranks::is_writer);
    let data = Data::open(opts)?;
    let devices = replica_devices::<B>(opts, device, backend, ranks)?;
    // The first replica's device: the model is initialised, validated and saved there.
    let device = &devices[0].clone();
    let folder = RunFolder { opts, data: &data, backend: backend.kind };
    if writer {
        folder.begin(ranks)?;
    }
    let Start { model, optim, mut schedule, mut history, first_epoch } =
        start::<B>(opts, &data.config, &data.classes, device, backend, ranks)?;
    let mut replicas = Replicas::new(model, optim, opts, devices, ranks)?;
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
        let trained = train_epoch(&mut replicas, &data.train, opts, pass, &mut dashboard)?;
        let (model, optim) = replicas.current()?;
        let (val, val_seconds) = validate(&model, &data, opts.batch_size, ranks, device)?;
        for warning in data.val.skipped.take_new() {
            dashboard.note(warning);
        }
        let metrics = epoch_metrics(pass, &trained, val, val_seconds);
        dashboard.end_epoch(&metrics);
        history.push(metrics);
        if schedule.end_epoch(epoch, 1.0 - val.top1) && writer {
            dashboard.note(format!("learning rate now {}", schedule.lr()));
        }
        let out_of_time = past_time_limit(opts, run_started, epoch + 1 - first_epoch, ranks);
        if writer {
            let new_best = val.top1 > best_top1;
            best_top1 = best_top1.max(val.top1);
            let checkpoint = epoch % opts.checkpoint_every == 0 || epoch == opts.epochs || out_of_time;
            let state = RunState { model: &model, optim: &optim, schedule: &schedule, history: &history };
            folder.write_epoch(&state, new_best, checkpoint, &mut dashboard)?;
            if checkpoint {
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
    history.last().context("no epoch was run (is --epochs below the checkpoint's epoch?)")?;
    if writer {
        folder.save_final(replicas.current()?.0, &history)?;
    }
    let skipped_files = data.train.skipped.count() + data.val.skipped.count();
    if skipped_files > 0 {
        eprintln!("{skipped_files} unreadable image files were skipped");
    }
    let [weights, weights_f16, weights_int8] = FINAL_WEIGHTS.map(|(name, _)| opts.out.join(name));
    Ok(TrainSummary { history, weights, weights_f16, weights_int8, skipped_files })
}

/// Whether another epoch like those run so far would overrun `--time-limit` (on any rank: the
/// ranks stop together).
fn past_time_limit(
    opts: &TrainOptions,
    run_started: Instant,
    epochs_run: usize,
    ranks: Option<&Ranks>,
) -> bool {
    let out_of_time = opts.time_limit.is_some_and(|limit| {
        let elapsed = run_started.elapsed().as_secs_f64();
        elapsed + elapsed / epochs_run as f64 > limit * 60.0
    });
    across_ranks_any(ranks, out_of_time)
}

/// The weights a finished run leaves in its folder.
const FINAL_WEIGHTS: [(&str, Precision); 3] = [
    ("model.safetensors", Precision::F32),
    ("model-f16.safetensors", Precision::F16),
    ("model-int8.safetensors", Precision::Int8),
];

/// A run's data: its classes, the network for them, and the loaders of both splits.
struct Data {
    classes: Vec<String>,
    labels: Vec<Label>,
    config: AlexNetConfig,
    train: Loader,
    val: Loader,
}

impl Data {
    /// Scans DIR/train and DIR/val, checks them against each other and the network's options,
    /// and starts their loaders (keeping decoded images when asked).
    fn open(opts: &TrainOptions) -> Result<Self> {
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
        let labels = classes.iter().map(|c| labels::from_folder_name(c)).collect();
        let config = opts.model.clone().with_num_classes(classes.len());
        config.validate().map_err(anyhow::Error::msg)?;
        let norm = Normalization::IMAGENET;
        let mut train = Loader::new(train_set, opts.workers, norm)?;
        let mut val = Loader::new(val_set, opts.workers, norm)?;
        if opts.cache_images || opts.cache_dir.is_some() {
            let dir = opts.cache_dir.as_deref();
            let augmented = Transform::Train { seed: opts.seed, epoch: 0, min_crop_area: opts.min_crop_area };
            train = train.cached(augmented, dir)?;
            val = val.cached(Transform::Center, dir)?;
        }
        Ok(Self { classes, labels, config, train, val })
    }
}

/// Checks how the batch is shared out in this job, and returns each replica's device.
fn replica_devices<B: AutodiffBackend>(
    opts: &TrainOptions,
    device: &B::Device,
    backend: BackendInUse,
    ranks: Option<&Ranks>,
) -> Result<Vec<B::Device>> {
    if opts.batch_size == 0 || opts.epochs == 0 || opts.checkpoint_every == 0 {
        bail!("--batch-size, --epochs and --checkpoint-every must be at least 1");
    }
    let processes = ranks.map_or(1, Ranks::size);
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
    match ranks {
        None => opts.devices.resolve::<B>(device, backend.kind == BackendKind::Cpu),
        Some(ranks) => rank_device::<B>(ranks, opts, device, backend),
    }
}

/// The run folder (`--out`), which rank 0 alone writes.
struct RunFolder<'a> {
    opts: &'a TrainOptions,
    data: &'a Data,
    backend: BackendKind,
}

/// A run's state after an epoch.
struct RunState<'a, B: AutodiffBackend, O> {
    model: &'a AlexNet<B>,
    optim: &'a O,
    schedule: &'a Schedule,
    history: &'a [EpochMetrics],
}

impl RunFolder<'_> {
    /// Creates the folder, writes the recipe (`run.json`, for a fresh run) and describes the run.
    fn begin(&self, ranks: Option<&Ranks>) -> Result<()> {
        let (opts, data) = (self.opts, self.data);
        std::fs::create_dir_all(&opts.out).with_context(|| format!("creating {}", opts.out.display()))?;
        if !opts.resume {
            // The whole recipe, so that the run can be repeated from its folder.
            let run_json = opts.out.join("run.json");
            std::fs::write(&run_json, serde_json::to_vec_pretty(opts)?)
                .with_context(|| format!("writing {}", run_json.display()))?;
        }
        eprintln!(
            "training {} AlexNet (width {}) on {}: {} classes, {} train / {} val images",
            data.config.preset,
            data.config.width,
            self.backend,
            data.classes.len(),
            data.train.folder().len(),
            data.val.folder().len()
        );
        if let Some(ranks) = ranks {
            let processes = ranks.size();
            eprintln!("{processes} processes (MPI), {} images each per step", opts.batch_size / processes);
        }
        Ok(())
    }

    /// After an epoch: the metrics and curves, the image caches once complete, the model when
    /// it is the best so far, and the checkpoint when one is due.
    fn write_epoch<B: AutodiffBackend, O: Optimizer<AlexNet<B>, B>>(
        &self,
        state: &RunState<'_, B, O>,
        new_best: bool,
        checkpoint: bool,
        dashboard: &mut Dashboard,
    ) -> Result<()> {
        let out = &self.opts.out;
        metrics::write_all(out, state.history)?;
        for loader in [&self.data.train, &self.data.val] {
            if loader.write_cache_if_complete()? {
                dashboard.note(format!(
                    "decoded {} images: cached for later runs",
                    loader.folder().root.display()
                ));
            }
        }
        if new_best {
            let info = self.model_info(state.history)?;
            SavedModel { model: state.model.valid(), info }
                .save(&out.join("model-best.safetensors"), Precision::F32)?;
        }
        if checkpoint {
            let epoch = state.history.last().map_or(0, |m| m.epoch);
            let saved = checkpoint::State {
                epoch,
                options: self.opts.clone(),
                classes: self.data.classes.clone(),
                schedule: state.schedule.clone(),
                history: state.history.to_vec(),
                checksums: Default::default(),
            };
            checkpoint::save(out, state.model, state.optim, saved)?;
        }
        Ok(())
    }

    /// The final model in f32, f16 and int8.
    fn save_final<B: AutodiffBackend>(&self, model: AlexNet<B>, history: &[EpochMetrics]) -> Result<()> {
        let saved = SavedModel { model: model.valid(), info: self.model_info(history)? };
        for (name, precision) in FINAL_WEIGHTS {
            saved.save(&self.opts.out.join(name), precision)?;
        }
        let names = FINAL_WEIGHTS.map(|(name, _)| self.opts.out.join(name).display().to_string());
        eprintln!("saved {}", names.join(", "));
        Ok(())
    }

    /// The description saved with the weights: network, labels, and how they were made.
    fn model_info(&self, history: &[EpochMetrics]) -> Result<ModelInfo> {
        let (opts, data) = (self.opts, self.data);
        let last = history.last().context("no epoch was run")?;
        Ok(ModelInfo::new(data.config.clone(), data.labels.clone())
            .with_provenance("dataset", opts.data.display().to_string())
            .with_provenance("classes", data.classes.clone())
            .with_provenance("epochs", last.epoch)
            .with_provenance("recipe", serde_json::to_value(opts)?)
            .with_provenance("backend", self.backend.to_string())
            .with_provenance("val_top1_center", last.val_top1)
            .with_provenance("val_top5_center", last.val_top5)
            .with_provenance("train_seconds", history.iter().map(|m| m.seconds).sum::<f64>()))
    }
}

/// `model`'s loss and accuracy on the validation split, and the seconds they took. One policy
/// however the run is shared out: the first replica validates on every image (a peer's
/// snapshot, or rank 0), and under MPI the other ranks receive its figures.
fn validate<B: AutodiffBackend>(
    model: &AlexNet<B>,
    data: &Data,
    batch_size: usize,
    ranks: Option<&Ranks>,
    device: &B::Device,
) -> Result<(Means, f64)> {
    if !ranks.is_none_or(Ranks::is_writer) {
        return Ok((across_ranks(ranks, Means::default()), 0.0));
    }
    let outputs: Vec<usize> = (0..data.classes.len()).collect();
    let val = evaluate(&model.valid(), &data.val, &outputs, None, false, batch_size, device)?;
    let means = Means { images: val.images, loss: val.loss, top1: val.top1, top5: val.top5 };
    Ok((across_ranks(ranks, means), val.seconds))
}

fn epoch_metrics(pass: Pass, trained: &Trained, val: Means, val_seconds: f64) -> EpochMetrics {
    EpochMetrics {
        epoch: pass.epoch,
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
    }
}

/// Where a run starts: fresh weights, or the checkpoint in `--out` with `--resume`.
struct Start<B: AutodiffBackend, O> {
    model: AlexNet<B>,
    optim: O,
    schedule: Schedule,
    history: Vec<EpochMetrics>,
    first_epoch: usize,
}

/// The rate a resumed run is set to by hand: `--lr` when it differs from the one the run was
/// last started with, so that the same command given again with `--resume` goes on along its
/// schedule.
fn new_rate(given: Option<f64>, run_had: Option<f64>) -> Option<f64> {
    given.filter(|&lr| Some(lr) != run_had)
}

fn start<B: AutodiffBackend>(
    opts: &TrainOptions,
    config: &AlexNetConfig,
    classes: &[String],
    device: &B::Device,
    backend: BackendInUse,
    ranks: Option<&Ranks>,
) -> Result<Start<B, impl Optimizer<AlexNet<B>, B>>> {
    // Seeded before drawing the initial weights, so --seed repeats a run exactly.
    B::seed(device, opts.seed);
    let model: AlexNet<B> = config.init(device);
    backend.check_fits(&model)?;
    // Burn draws a fresh model's weights lazily: drawn now, they are drawn once.
    draw_weights(&model);
    let optim = sgd::<B>(opts.momentum, opts.weight_decay);
    let schedule =
        Schedule::new(opts.lr_schedule, opts.initial_lr(), opts.patience, opts.step_every, opts.epochs);
    let writer = ranks.is_none_or(Ranks::is_writer);
    let start = if !writer {
        // Receives rank 0's start below.
        Start { model, optim, schedule, history: Vec::new(), first_epoch: 1 }
    } else if opts.resume {
        let loaded = checkpoint::load(&opts.out, model, optim, device)?;
        let state = loaded.state;
        check_compatible(&state, opts, classes)?;
        let mut schedule = state.schedule;
        if let Some(lr) = new_rate(opts.lr, state.options.lr) {
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
        let model = match &opts.from {
            Some(path) => warm_start(model, path, config, classes, device)?,
            None => model,
        };
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

/// `model` with the weights of the file at `path`, which must hold the same network for the same
/// classes. The record is loaded into `model`, so its dropout and trainable parameters stay.
fn warm_start<B: AutodiffBackend>(
    model: AlexNet<B>,
    path: &Path,
    config: &AlexNetConfig,
    classes: &[String],
    device: &B::Device,
) -> Result<AlexNet<B>> {
    let saved = SavedModel::<B>::load(path, device).with_context(|| format!("--from {}", path.display()))?;
    let (theirs, labels) = (&saved.info.config, &saved.info.labels);
    // Class folders are named by WordNet id (Imagenette) or by the class's name.
    let same_classes = labels.iter().map(|l| l.wnid.as_deref()).eq(classes.iter().map(|c| Some(c.as_str())))
        || labels.iter().map(|l| &l.name).eq(classes.iter());
    if theirs.preset != config.preset || theirs.width != config.width || !same_classes {
        bail!(
            "--from {} holds another network (preset {}, width {}, {} classes): use its --preset, \
             --width and data",
            path.display(),
            theirs.preset,
            theirs.width,
            labels.len()
        );
    }
    eprintln!("starting from the weights in {}", path.display());
    Ok(model.load_record(saved.model.into_record()))
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
    backend: BackendInUse,
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

impl<'r, B: AutodiffBackend, O: Optimizer<AlexNet<B>, B> + 'static> Replicas<'r, B, O> {
    /// The model stepped on this thread (alone, or as this rank's replica), or one replica per
    /// device, each on a peer thread of its own.
    fn new(
        model: AlexNet<B>,
        optim: O,
        opts: &TrainOptions,
        devices: Vec<B::Device>,
        ranks: Option<&'r Ranks>,
    ) -> Result<Self> {
        let stepper = |optim| Stepper::new(optim, opts.precision, &devices[0]);
        if let Some(ranks) = ranks {
            return Ok(Replicas::Ranks { model: Some(model), stepper: stepper(optim), ranks });
        }
        if devices.len() == 1 {
            return Ok(Replicas::One { model: Some(model), stepper: stepper(optim) });
        }
        let peers = devices.len();
        let threads_per_peer = opts.peer_threads.unwrap_or(default_workers() / peers).max(1);
        eprintln!(
            "{peers} data-parallel peers, {} images each per step, {threads_per_peer} threads each: {devices:?}",
            opts.batch_size / peers
        );
        let timeout = Duration::from_secs(opts.peer_timeout);
        let settings = PeerSettings { devices, threads_per_peer, timeout };
        Ok(Replicas::Peers(Peers::start(model, optim, opts.precision, settings)?))
    }

    /// One SGD step on `batch` (under MPI this rank's share of it, which may be empty).
    fn step(&mut self, batch: Batch, lr: f64, meter: &mut Meter<B::InnerBackend>) -> Result<()> {
        match self {
            Replicas::One { .. } | Replicas::Peers(_) if batch.is_empty() => Ok(()),
            Replicas::One { model, stepper } => {
                let before = model.take().context("a failed step lost the model")?;
                *model = Some(replica_step(stepper, before, batch, lr, meter, &Alone)?);
                Ok(())
            }
            Replicas::Peers(peers) => peers.step(batch, lr, meter),
            Replicas::Ranks { model, stepper, ranks } => {
                let before = model.take().context("a failed step lost the model")?;
                *model = Some(replica_step(stepper, before, batch, lr, meter, *ranks)?);
                Ok(())
            }
        }
    }

    /// The MPI job this process is one rank of, if any.
    fn ranks(&self) -> Option<&'r Ranks> {
        match self {
            Replicas::Ranks { ranks, .. } => Some(*ranks),
            _ => None,
        }
    }

    /// What this process loads of an epoch's `order`, in batches of what size: all of it, or
    /// under MPI its rank's share of every batch.
    fn loading_share(&self, order: Vec<usize>, batch_size: usize) -> (Vec<usize>, usize) {
        match self.ranks() {
            Some(r) => (share_of_order(&order, batch_size, r.rank(), r.size()), batch_size / r.size()),
            None => (order, batch_size),
        }
    }

    /// The processes that load a share each (MPI ranks): 1 without MPI.
    fn processes(&self) -> usize {
        self.ranks().map_or(1, Ranks::size)
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
    let (order, batch_size) = replicas.loading_share(order, opts.batch_size);
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
            let (epoch_means, recent) = meter.read_since_last();
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
                images_per_sec: (epoch_means.images * replicas.processes()) as f64 / elapsed_seconds,
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
    let means = across_ranks(replicas.ranks(), meter.read());
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

fn check_finite(mean_loss: f64, epoch: usize) -> Result<()> {
    if !mean_loss.is_finite() {
        bail!("the loss became {mean_loss} in epoch {epoch}: lower --lr");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::new_rate;

    #[test]
    fn resuming_with_the_runs_own_rate_keeps_its_schedule() {
        assert_eq!(new_rate(Some(0.003), Some(0.003)), None, "the same command again");
        assert_eq!(new_rate(Some(0.001), Some(0.003)), Some(0.001), "a rate lowered by hand");
        assert_eq!(new_rate(Some(0.001), None), Some(0.001), "a run started at the default rate");
        assert_eq!(new_rate(None, Some(0.003)), None);
    }
}
