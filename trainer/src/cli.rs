//! The `trainer` command line: train, evaluate, predict with, import, convert, describe and
//! benchmark AlexNet. It lives in the library, not in `main.rs`, so that its code for each backend
//! is compiled once, for the binary and the integration tests alike.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::backend::{self, BackendKind, Chosen, Job};
use crate::calibrate::{calibrate, CalibrateOptions};
use crate::data::{ImageFolder, Loader};
use crate::eval::{evaluate, match_classes, predict_file};
use crate::precision::Compute;
use crate::ranks::Ranks;
use crate::train::{train_ranked, TrainOptions};
use alexnet::weights::{self, Precision, SavedModel};
use alexnet::{AlexNetConfig, Preset};
use anyhow::{Context, Result};
use burn::tensor::backend::{AutodiffBackend, Backend};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "AlexNet in Burn: train, evaluate, predict, import, convert, benchmark")]
struct Cli {
    /// Backend to run on (default: the fastest one compiled in whose device starts; a software
    /// GPU such as Mesa's lavapipe only when named; `convert` and `import-torchvision`: the CPU).
    #[arg(long, global = true, value_enum)]
    backend: Option<BackendKind>,
    #[command(subcommand)]
    command: Command,
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

#[derive(Subcommand)]
enum Command {
    /// Train from scratch (or resume) on DIR/train, validating on DIR/val.
    Train(Box<TrainOptions>),
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
    /// Choose the threshold for "none of my classes" on data, and write it into a weights file.
    Calibrate(Box<CalibrateOptions>),
    /// The top-5 classes of each image, and whether it shows none of them (for a calibrated
    /// model).
    Predict {
        #[arg(long)]
        weights: PathBuf,
        /// One JSON object per line: {"image", "top5": [{"index", "label", "prob"}],
        /// "out_of_classes" (null for a model not calibrated), "ms"}.
        #[arg(long)]
        json: bool,
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// A weights file's description: network, storage, labels, provenance.
    Info {
        weights: PathBuf,
        /// Print the description as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Redraw a run's training curves (curves.svg) from its metrics.json.
    Curves {
        /// The run's folder (train's --out).
        run: PathBuf,
    },
    /// Convert a torchvision AlexNet state_dict (.pth) into this project's weights format.
    ImportTorchvision {
        pth: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value_t = Precision::F32)]
        precision: Precision,
    },
    /// Re-store a weights file in another precision (f16: half the size, int8: a quarter).
    Convert {
        weights: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum)]
        precision: Precision,
    },
    /// Training-step and inference throughput on synthetic images (and, with --data, of the
    /// input pipeline on real ones).
    Bench {
        #[command(flatten)]
        model: AlexNetConfig,
        /// Training batch size.
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        #[arg(long, default_value_t = 16)]
        infer_batch_size: usize,
        /// Timed iterations of each (after one warm-up).
        #[arg(long, default_value_t = 5)]
        steps: usize,
        /// The training arithmetic (as `train --precision`).
        #[arg(long, value_enum, default_value_t = Compute::F32)]
        precision: Compute,
        #[arg(long)]
        json: bool,
        /// Also time the input pipeline on this dataset's train/ split: decoding JPEGs, then
        /// from the in-memory cache.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Images for the input-pipeline timing.
        #[arg(long, default_value_t = 512)]
        data_images: usize,
        #[arg(long, default_value_t = default_workers())]
        workers: usize,
    },
}

struct Run(Command);

impl Job for Run {
    type Output = ();

    fn run<B: AutodiffBackend>(self, device: B::Device, backend: Chosen) -> Result<()> {
        match self.0 {
            Command::Train(options) => {
                // One of several processes when started by mpirun (feature `mpi`).
                let ranks = Ranks::join()?;
                // The dashboard draws on stdout and needs a terminal to read its keys from.
                let tui = !options.no_tui
                    && ranks.is_none()
                    && std::io::stdout().is_terminal()
                    && std::io::stdin().is_terminal();
                let summary =
                    match (train_ranked::<B>(&options, &device, backend, tui, ranks.as_ref()), &ranks) {
                        // The other ranks would wait for this one forever.
                        (Err(e), Some(ranks)) => ranks.abort(&format!("{e:#}")),
                        (result, _) => result?,
                    };
                if let Some(last) =
                    summary.history.last().filter(|_| ranks.as_ref().is_none_or(Ranks::is_writer))
                {
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
                let saved = load::<B::InnerBackend>(&weights, &device, backend)?;
                let dir = if data.join("val").is_dir() { data.join("val") } else { data };
                let folder = ImageFolder::scan(&dir)?;
                let outputs = match_classes(&folder.classes, &saved.info.labels)?;
                let loader = Loader::new(folder, workers, saved.info.normalization)?;
                let report = evaluate(
                    &saved.model,
                    &loader,
                    &outputs,
                    saved.info.out_of_classes,
                    ten_crop,
                    batch_size,
                    &device,
                )?;
                for warning in loader.skipped.take_new() {
                    eprintln!("{warning}");
                }
                if json {
                    println!("{}", serde_json::to_string(&report)?);
                } else {
                    let crops = if ten_crop { "10-crop" } else { "centre crop" };
                    println!("{} images ({crops}), {} skipped", report.images, report.skipped);
                    println!(
                        "top-1 accuracy {:.2}% (error {:.2}%)",
                        report.top1 * 100.0,
                        report.top1_error * 100.0
                    );
                    println!(
                        "top-5 accuracy {:.2}% (error {:.2}%)",
                        report.top5 * 100.0,
                        report.top5_error * 100.0
                    );
                    if let Some(share) = report.out_of_classes_share {
                        println!("none of the model's classes: {:.2}% of the photos", share * 100.0);
                    }
                    for c in &report.per_class {
                        println!("  {:<24} {:>6.2}% ({}/{})", c.label, c.top1 * 100.0, c.correct, c.total);
                    }
                }
            }
            Command::Predict { weights, json, images } => {
                let saved = load::<B::InnerBackend>(&weights, &device, backend)?;
                let mut failures = 0;
                for image in &images {
                    // Read, decode, preprocess and forward: what the page times for a dropped file.
                    let started = std::time::Instant::now();
                    let result = predict_file(&saved.model, &saved.info, image, &device);
                    let ms = started.elapsed().as_secs_f64() * 1e3;
                    match result {
                        Ok(answer) if json => println!(
                            "{}",
                            serde_json::json!({
                                "image": image,
                                "top5": answer.top,
                                "out_of_classes": answer.out_of_classes,
                                "ms": ms
                            })
                        ),
                        Ok(answer) => {
                            println!("{}", image.display());
                            if answer.out_of_classes == Some(true) {
                                println!("  none of the model's classes, it seems; its closest guesses:");
                            }
                            for p in answer.top {
                                println!("  {:>6.2}%  {} ({})", p.prob * 100.0, p.label, p.index);
                            }
                        }
                        Err(e) => {
                            failures += 1;
                            if json {
                                println!(
                                    "{}",
                                    serde_json::json!({ "image": image, "error": format!("{e:#}") })
                                );
                            }
                            eprintln!("error: {}: {e:#}", image.display());
                        }
                    }
                }
                if failures > 0 {
                    anyhow::bail!("{failures} of {} images could not be classified", images.len());
                }
            }
            Command::Calibrate(options) => {
                let saved = load::<B::InnerBackend>(&options.weights, &device, backend)?;
                calibrate(&options, &saved, &device)?;
            }
            Command::Info { .. } | Command::Curves { .. } => unreachable!("handled without a backend"),
            Command::ImportTorchvision { pth, out, precision } => {
                let saved = alexnet::import::import_torchvision::<B::InnerBackend>(&pth, &device)?;
                saved.save(&out, precision)?;
                println!(
                    "{} ({} classes, {}) -> {}",
                    pth.display(),
                    saved.info.config.num_classes,
                    precision.as_str(),
                    out.display()
                );
            }
            Command::Convert { weights, out, precision } => {
                let saved = load::<B::InnerBackend>(&weights, &device, backend)?;
                saved.save(&out, precision)?;
                let size = |p: &PathBuf| std::fs::metadata(p).map(|m| m.len() as f64 / 1e6).unwrap_or(0.0);
                println!(
                    "{} ({:.1} MB) -> {} ({:.1} MB, {})",
                    weights.display(),
                    size(&weights),
                    out.display(),
                    size(&out),
                    precision.as_str()
                );
            }
            Command::Bench {
                model,
                batch_size,
                infer_batch_size,
                steps,
                precision,
                json,
                data,
                data_images,
                workers,
            } => {
                if let Some(data) = data {
                    let dir = if data.join("train").is_dir() { data.join("train") } else { data };
                    let r = crate::bench::bench_data(ImageFolder::scan(&dir)?, data_images, workers)?;
                    if json {
                        println!("{}", serde_json::to_string(&r)?);
                    } else {
                        println!("input pipeline, {} images, {} workers:", r.images, r.workers);
                        let per = |rate: f64| rate / r.workers as f64;
                        println!(
                            "  decoding JPEGs: {:8.1} img/s ({:.1} per worker)",
                            r.decode_images_per_sec,
                            per(r.decode_images_per_sec)
                        );
                        println!(
                            "  cached:         {:8.1} img/s ({:.1} per worker)",
                            r.cached_images_per_sec,
                            per(r.cached_images_per_sec)
                        );
                    }
                }
                let r = crate::bench::bench::<B>(
                    model,
                    batch_size,
                    infer_batch_size,
                    steps,
                    precision,
                    &device,
                    backend,
                )?;
                if json {
                    println!("{}", serde_json::to_string(&r)?);
                } else {
                    println!("{} AlexNet (width {}) on {}:", r.preset, r.width, r.backend);
                    println!(
                        "  training  (batch {:>3}): {:8.1} img/s",
                        r.train_batch_size, r.train_images_per_sec
                    );
                    println!(
                        "  inference (batch {:>3}): {:8.1} img/s",
                        r.infer_batch_size, r.infer_images_per_sec
                    );
                }
            }
        }
        Ok(())
    }
}

/// Loads a weights file, refusing (before allocating anything on the device) a model whose
/// largest tensor the device cannot hold.
fn load<B: Backend>(path: &Path, device: &B::Device, backend: Chosen) -> Result<SavedModel<B>> {
    let context = || format!("loading {}", path.display());
    let bytes = std::fs::read(path).with_context(context)?;
    let info = weights::read_info(&bytes).with_context(context)?;
    backend.check_fits(&info.config.init::<B>(device))?;
    SavedModel::from_bytes(bytes, device).with_context(context)
}

/// `trainer info`: reads only the header, so it works on any weights file without a device.
fn info(path: &Path, json: bool) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let info = weights::read_info(&bytes).with_context(|| format!("reading {}", path.display()))?;
    let precision = weights::read_precision(&bytes)?;
    if json {
        let mut value = serde_json::to_value(&info)?;
        value["precision"] = precision.as_str().into();
        value["bytes"] = bytes.len().into();
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    let c = &info.config;
    let preset = match c.preset {
        Preset::Paper => "the 2012 paper's",
        Preset::Torchvision => "torchvision's",
    };
    println!("{}: {preset} AlexNet, width {}, {} classes", path.display(), c.width, c.num_classes);
    println!(
        "  stored as {} ({:.1} MB), format version {}",
        precision.as_str(),
        bytes.len() as f64 / 1e6,
        info.format_version
    );
    let names: Vec<&str> = info.labels.iter().take(10).map(|l| l.name.as_str()).collect();
    let more = info.labels.len().saturating_sub(names.len());
    println!(
        "  labels: {}{}",
        names.join(", "),
        if more > 0 { format!(" and {more} more") } else { String::new() }
    );
    match info.out_of_classes {
        Some(o) => println!(
            "  none of my classes: below {:.3} (flagged {:.1}% of in-class, {:.1}% of out-of-class photos)",
            o.threshold,
            o.in_class_flagged * 100.0,
            o.out_of_class_flagged * 100.0
        ),
        None => println!("  none of my classes: not calibrated (`trainer calibrate`)"),
    }
    for (key, value) in &info.provenance {
        // Compact, one line each; long values (the recipe) are cut.
        let text = value.to_string();
        let text =
            if text.len() > 200 { format!("{}...", &text[..text.floor_char_boundary(200)]) } else { text };
        println!("  {key}: {text}");
    }
    Ok(())
}

/// Parses the command line and runs it; errors go to stderr with exit status 1.
pub fn main() {
    crate::memory::keep_freed_memory();
    backend::exit_on_any_panic();
    let cli = Cli::parse();
    let result = match cli.command {
        // Reads a file's header: no backend needed.
        Command::Info { weights, json } => info(&weights, json),
        Command::Curves { run } => crate::metrics::read(&run.join("metrics.json"))
            .and_then(|history| crate::metrics::write_all(&run, &history))
            .map(|()| println!("{}", run.join("curves.svg").display())),
        // File conversions: the CPU unless another backend is asked for (no GPU to start, and
        // a GPU's driver probe can print to stderr).
        command @ (Command::Convert { .. } | Command::ImportTorchvision { .. }) => {
            backend::run(cli.backend.or(Some(BackendKind::Cpu)), Run(command))
        }
        command => backend::run(cli.backend, Run(command)),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
