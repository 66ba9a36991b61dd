//! `trainer`: train, evaluate, predict with, import and benchmark AlexNet.

use std::io::IsTerminal;
use std::path::PathBuf;

use alexnet::weights::{Precision, SavedModel};
use alexnet::{Initialization, Preset};
use anyhow::{Context, Result};
use burn::tensor::backend::AutodiffBackend;
use clap::{Parser, Subcommand};
use trainer::backend::{self, BackendKind, Job};
use trainer::data::{ImageFolder, Loader};
use trainer::eval::{evaluate, match_classes, predict_file};
use trainer::train::{train, ScheduleKind, TrainOptions};

#[derive(Parser)]
#[command(version, about = "AlexNet in Burn: train, evaluate, predict, import, benchmark")]
struct Cli {
    /// Backend to run on (default: the fastest one compiled in that starts).
    #[arg(long, global = true, value_enum)]
    backend: Option<BackendKind>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train from scratch (or resume) on DIR/train, validating on DIR/val.
    Train(TrainArgs),
    /// Top-1/top-5 accuracy of a weights file on a labelled image folder.
    Eval {
        #[arg(long)]
        weights: PathBuf,
        /// A folder of class folders, or a dataset folder holding val/.
        #[arg(long)]
        data: PathBuf,
        /// Average the softmax over the paper's 10 crops (corners, centre, mirrored).
        #[arg(long)]
        ten_crop: bool,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
        #[arg(long, default_value_t = default_workers())]
        workers: usize,
    },
    /// The top-5 classes of each image.
    Predict {
        #[arg(long)]
        weights: PathBuf,
        /// One JSON object per line: {"image", "top5": [{"index", "label", "prob"}]}.
        #[arg(long)]
        json: bool,
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Convert a torchvision AlexNet state_dict (.pth) into this project's weights format.
    ImportTorchvision {
        pth: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Store the weights as f16 (half the size); same as --precision f16.
        #[arg(long)]
        f16: bool,
        #[arg(long, value_enum, default_value_t = PrecisionArg::F32)]
        precision: PrecisionArg,
    },
    /// Re-store a weights file in another precision (f16: half the size, int8: a quarter).
    Convert {
        weights: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum)]
        precision: PrecisionArg,
    },
    /// Training-step and inference throughput on synthetic images.
    Bench {
        #[arg(long, value_enum, default_value_t = PresetArg::Torchvision)]
        preset: PresetArg,
        /// Training batch size.
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        #[arg(long, default_value_t = 16)]
        infer_batch_size: usize,
        /// Timed iterations of each (after one warm-up).
        #[arg(long, default_value_t = 5)]
        steps: usize,
        /// Layer width multiplier (1 = AlexNet).
        #[arg(long, default_value_t = 1.0)]
        width: f64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum PresetArg {
    Paper,
    Torchvision,
}

impl From<PresetArg> for Preset {
    fn from(p: PresetArg) -> Self {
        match p {
            PresetArg::Paper => Preset::Paper,
            PresetArg::Torchvision => Preset::Torchvision,
        }
    }
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum PrecisionArg {
    F32,
    F16,
    Int8,
}

impl From<PrecisionArg> for Precision {
    fn from(p: PrecisionArg) -> Self {
        match p {
            PrecisionArg::F32 => Precision::F32,
            PrecisionArg::F16 => Precision::F16,
            PrecisionArg::Int8 => Precision::Int8,
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum InitArg {
    /// N(0, 0.01) weights, biases 1 in conv2/4/5 and fc6/7 (paper section 5).
    Paper,
    /// Burn's (PyTorch's) Kaiming-uniform defaults.
    Default,
    /// He-normal weights, zero biases.
    He,
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

#[derive(clap::Args)]
struct TrainArgs {
    /// Dataset folder with train/<class>/* and val/<class>/*.
    #[arg(long)]
    data: PathBuf,
    /// Where checkpoints, metrics and the final weights go.
    #[arg(long, default_value = "runs/alexnet")]
    out: PathBuf,
    #[arg(long, value_enum, default_value_t = PresetArg::Paper)]
    preset: PresetArg,
    #[arg(long, default_value_t = 90)]
    epochs: usize,
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Initial learning rate [default: 0.01]. With --resume: continue at this rate instead of
    /// the checkpoint's (as the paper lowered it by hand).
    #[arg(long)]
    lr: Option<f64>,
    /// SGD momentum, without dampening (as the paper and PyTorch).
    #[arg(long, default_value_t = 0.9)]
    momentum: f64,
    #[arg(long, default_value_t = 5e-4)]
    weight_decay: f64,
    /// plateau: divide by 10 when validation error stops improving (at most 3 times);
    /// step: divide by 10 every --step-every epochs.
    #[arg(long, value_enum, default_value_t = ScheduleKind::Plateau)]
    lr_schedule: ScheduleKind,
    /// Epochs without validation improvement before a plateau drop.
    #[arg(long, default_value_t = 5)]
    patience: usize,
    #[arg(long, default_value_t = 30)]
    step_every: usize,
    /// Image decoding and augmentation threads.
    #[arg(long, default_value_t = default_workers())]
    workers: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Continue the run checkpointed in --out.
    #[arg(long)]
    resume: bool,
    #[arg(long, value_enum, default_value_t = InitArg::Paper)]
    init: InitArg,
    /// Layer width multiplier (1 = AlexNet); smaller is faster, for experiments.
    #[arg(long, default_value_t = 1.0)]
    width: f64,
    /// Dropout probability before fc6 and fc7 (the paper's 0.5).
    #[arg(long, default_value_t = 0.5)]
    dropout: f64,
    /// Use only the first N classes.
    #[arg(long)]
    max_classes: Option<usize>,
    /// Use at most N training images per class.
    #[arg(long)]
    train_per_class: Option<usize>,
    /// Use at most N validation images per class.
    #[arg(long)]
    val_per_class: Option<usize>,
    /// Keep decoded, resized images in memory after the first epoch (~200 KB per image).
    #[arg(long)]
    cache_images: bool,
    /// Stop after the last epoch that fits in this many minutes (then save as usual).
    #[arg(long)]
    time_limit: Option<f64>,
    /// Write the resumable checkpoint every N epochs (and after the last one).
    #[arg(long, default_value_t = 1)]
    checkpoint_every: usize,
    /// Plain progress lines instead of Burn's dashboard, even on a terminal.
    #[arg(long)]
    no_tui: bool,
}

impl TrainArgs {
    fn options(&self) -> TrainOptions {
        TrainOptions {
            data: self.data.clone(),
            out: self.out.clone(),
            preset: self.preset.into(),
            width: self.width,
            dropout: self.dropout,
            init: match self.init {
                InitArg::Paper => Initialization::Paper,
                InitArg::Default => Initialization::Default,
                InitArg::He => Initialization::He,
            },
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr.unwrap_or(0.01),
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            lr_schedule: self.lr_schedule,
            patience: self.patience,
            step_every: self.step_every,
            workers: self.workers,
            seed: self.seed,
            max_classes: self.max_classes,
            train_per_class: self.train_per_class,
            val_per_class: self.val_per_class,
            cache_images: self.cache_images,
            resume: self.resume,
            time_limit_minutes: self.time_limit,
            checkpoint_every: self.checkpoint_every,
            resume_lr: if self.resume { self.lr } else { None },
        }
    }
}

struct Run(Command);

impl Job for Run {
    type Output = ();

    fn run<B: AutodiffBackend>(self, device: B::Device, kind: BackendKind) -> Result<()> {
        match self.0 {
            Command::Train(args) => {
                // The dashboard draws on stdout and needs a terminal to read its keys from.
                let tui = !args.no_tui && std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
                let summary = train::<B>(&args.options(), &device, kind, tui)?;
                if let Some(last) = summary.history.last() {
                    println!(
                        "epoch {}: val top-1 {:.2}%, top-5 {:.2}% -> {}",
                        last.epoch,
                        last.val_top1 * 100.0,
                        last.val_top5 * 100.0,
                        summary.weights.display()
                    );
                }
            }
            Command::Eval { weights, data, ten_crop, json, batch_size, workers } => {
                let saved = SavedModel::<B::InnerBackend>::load(&weights, &device)
                    .with_context(|| format!("loading {}", weights.display()))?;
                let dir = if data.join("val").is_dir() { data.join("val") } else { data };
                let folder = ImageFolder::scan(&dir)?;
                let outputs = match_classes(&folder.classes, &saved.info.labels)?;
                let loader = Loader::new(folder, workers, saved.info.normalization, false)?;
                let report = evaluate(&saved.model, &loader, &outputs, &saved.info.labels, ten_crop, batch_size, &device)?;
                if json {
                    println!("{}", serde_json::to_string(&report)?);
                } else {
                    println!("{} images ({}), {} skipped", report.images, if ten_crop { "10-crop" } else { "centre crop" }, report.skipped);
                    println!("top-1 accuracy {:.2}% (error {:.2}%)", report.top1 * 100.0, report.top1_error * 100.0);
                    println!("top-5 accuracy {:.2}% (error {:.2}%)", report.top5 * 100.0, report.top5_error * 100.0);
                    for c in &report.per_class {
                        println!("  {:<24} {:>6.2}% ({}/{})", c.label, c.top1 * 100.0, c.correct, c.total);
                    }
                }
            }
            Command::Predict { weights, json, images } => {
                let saved = SavedModel::<B::InnerBackend>::load(&weights, &device)
                    .with_context(|| format!("loading {}", weights.display()))?;
                let mut failures = 0;
                for image in &images {
                    // Read, decode, preprocess and forward: what the page times for a dropped file.
                    let started = std::time::Instant::now();
                    let result = predict_file(&saved.model, &saved.info.labels, &saved.info.normalization, image, &device);
                    let ms = started.elapsed().as_secs_f64() * 1e3;
                    match result {
                        Ok(top5) if json => println!("{}", serde_json::json!({ "image": image, "top5": top5, "ms": ms })),
                        Ok(top5) => {
                            println!("{}", image.display());
                            for p in top5 {
                                println!("  {:>6.2}%  {} ({})", p.prob * 100.0, p.label, p.index);
                            }
                        }
                        Err(e) => {
                            failures += 1;
                            if json {
                                println!("{}", serde_json::json!({ "image": image, "error": format!("{e:#}") }));
                            }
                            eprintln!("error: {}: {e:#}", image.display());
                        }
                    }
                }
                if failures > 0 {
                    anyhow::bail!("{failures} of {} images could not be classified", images.len());
                }
            }
            Command::ImportTorchvision { pth, out, f16, precision } => {
                let saved = alexnet::import::import_torchvision::<B::InnerBackend>(&pth, &device)?;
                let precision = if f16 { Precision::F16 } else { precision.into() };
                saved.save(&out, precision)?;
                println!("{} ({} classes, {}) -> {}", pth.display(), saved.info.config.num_classes, precision.as_str(), out.display());
            }
            Command::Convert { weights, out, precision } => {
                let saved = SavedModel::<B::InnerBackend>::load(&weights, &device)
                    .with_context(|| format!("loading {}", weights.display()))?;
                let precision: Precision = precision.into();
                saved.save(&out, precision)?;
                let size = |p: &PathBuf| std::fs::metadata(p).map(|m| m.len() as f64 / 1e6).unwrap_or(0.0);
                println!("{} ({:.1} MB) -> {} ({:.1} MB, {})", weights.display(), size(&weights), out.display(), size(&out), precision.as_str());
            }
            Command::Bench { preset, batch_size, infer_batch_size, steps, width, json } => {
                let r = trainer::bench::bench::<B>(preset.into(), width, batch_size, infer_batch_size, steps, &device, &kind.to_string())?;
                if json {
                    println!("{}", serde_json::to_string(&r)?);
                } else {
                    println!("{} AlexNet on {}:", r.preset, r.backend);
                    println!("  training  (batch {:>3}): {:8.1} img/s", r.train_batch_size, r.train_images_per_sec);
                    println!("  inference (batch {:>3}): {:8.1} img/s", r.infer_batch_size, r.infer_images_per_sec);
                }
            }
        }
        Ok(())
    }
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = backend::run(cli.backend, Run(cli.command)) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
