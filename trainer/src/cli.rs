//! The `trainer` command line: train, evaluate, predict with, import, convert, describe and
//! benchmark AlexNet. It lives in the library, not in `main.rs`, so that its code for each backend
//! is compiled once, for the binary and the integration tests alike.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::backend::{self, BackendInUse, BackendKind, RunsOnBackend};
use crate::calibrate::{calibrate, CalibrateOptions};
use crate::data::{ImageFolder, Loader};
use crate::eval::{evaluate, match_classes, predict_file};
use crate::options::{default_workers, TrainOptions};
use crate::ranks::Ranks;
use crate::teach::TeachOptions;
use crate::train::train_process;
use alexnet::train::Compute;
use alexnet::weights::{self, Precision, SavedModel};
use alexnet::{AlexNetConfig, Preset};
use anyhow::{Context, Result};
use burn::tensor::backend::{AutodiffBackend, Backend};
use clap::{Args, Parser, Subcommand};

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

#[derive(Subcommand)]
enum Command {
    /// Train from scratch (or resume) on DIR/train, validating on DIR/val.
    Train(Box<TrainOptions>),
    /// Top-1/top-5 accuracy of a weights file on a labelled image folder.
    Eval(EvalArgs),
    /// Teach a weights file new classes: a new last layer trained on the fc7 features of one
    /// folder of example photos per class.
    Teach(Box<TeachOptions>),
    /// Choose the threshold for "none of my classes" on data, and write it into a weights file.
    Calibrate(Box<CalibrateOptions>),
    /// The top-5 classes of each image, and whether it shows none of them (for a calibrated
    /// model).
    Predict(PredictArgs),
    /// A weights file's description: network, storage, labels, provenance.
    Info(InfoArgs),
    /// conv1's filters as a PNG picture (the paper's Figure 3), and how noise-like they are.
    Filters(FiltersArgs),
    /// Redraw a run's training curves (curves.svg) from its metrics.json.
    Curves(CurvesArgs),
    /// Convert a torchvision AlexNet state_dict (.pth) into this project's weights format.
    ImportTorchvision(ImportArgs),
    /// Re-store a weights file in another precision (f16: half the size, int8: a quarter).
    Convert(ConvertArgs),
    /// Training-step and inference throughput on synthetic images (and, with --data, of the
    /// input pipeline on real ones).
    Bench(BenchArgs),
}

#[derive(Args)]
struct EvalArgs {
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
}

#[derive(Args)]
struct PredictArgs {
    #[arg(long)]
    weights: PathBuf,
    /// One JSON object per line: {"image", "top5": [{"index", "label", "prob"}],
    /// "out_of_classes" (null for a model not calibrated), "ms"}.
    #[arg(long)]
    json: bool,
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

#[derive(Args)]
struct InfoArgs {
    weights: PathBuf,
    /// Print the description as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct FiltersArgs {
    weights: PathBuf,
    #[arg(long)]
    out: PathBuf,
    /// Pixels per weight (1-32).
    #[arg(long, default_value_t = 4)]
    scale: u32,
}

#[derive(Args)]
struct CurvesArgs {
    /// The run's folder (train's --out).
    run: PathBuf,
}

#[derive(Args)]
struct ImportArgs {
    pth: PathBuf,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    precision: Precision,
}

#[derive(Args)]
struct ConvertArgs {
    weights: PathBuf,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum)]
    precision: Precision,
}

#[derive(Args)]
struct BenchArgs {
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
}

/// A subcommand, run on the backend chosen at run time.
struct DeviceCommand(Command);

impl RunsOnBackend for DeviceCommand {
    type Output = ();

    fn run<B: AutodiffBackend>(self, device: B::Device, backend: BackendInUse) -> Result<()> {
        let device = &device;
        match self.0 {
            Command::Train(options) => train_command::<B>(&options, device, backend),
            Command::Eval(args) => eval_command::<B::InnerBackend>(args, device, backend),
            Command::Teach(options) => teach_command::<B>(&options, device, backend),
            Command::Calibrate(options) => {
                let saved = load::<B::InnerBackend>(&options.weights, device, backend)?;
                calibrate(&options, &saved, device).map(drop)
            }
            Command::Predict(args) => predict_command::<B::InnerBackend>(args, device, backend),
            Command::Filters(args) => filters_command::<B::InnerBackend>(args, device, backend),
            Command::ImportTorchvision(args) => import_command::<B::InnerBackend>(args, device),
            Command::Convert(args) => convert_command::<B::InnerBackend>(args, device, backend),
            Command::Bench(args) => bench_command::<B>(args, device, backend),
            // These read files only (`main` runs them without starting a backend).
            Command::Info(args) => info_command(&args),
            Command::Curves(args) => curves_command(&args),
        }
    }
}

fn train_command<B: AutodiffBackend>(
    options: &TrainOptions,
    device: &B::Device,
    backend: BackendInUse,
) -> Result<()> {
    // One of several processes when started by mpirun (feature `mpi`).
    let ranks = Ranks::join()?;
    // The dashboard draws on stdout and needs a terminal to read its keys from.
    let tui = !options.no_tui
        && ranks.is_none()
        && std::io::stdout().is_terminal()
        && std::io::stdin().is_terminal();
    let summary = match (train_process::<B>(options, device, backend, tui, ranks.as_ref()), &ranks) {
        // The other ranks would wait for this one forever.
        (Err(e), Some(ranks)) => ranks.abort(&format!("{e:#}")),
        (result, _) => result?,
    };
    if let Some(last) = summary.history.last().filter(|_| ranks.as_ref().is_none_or(Ranks::is_writer)) {
        println!(
            "epoch {}: val top-1 {:.2}%, top-5 {:.2}% -> {}",
            last.epoch,
            last.val_top1 * 100.0,
            last.val_top5 * 100.0,
            summary.weights.display()
        );
    }
    Ok(())
}

fn teach_command<B: AutodiffBackend>(
    options: &TeachOptions,
    device: &B::Device,
    backend: BackendInUse,
) -> Result<()> {
    let base = load::<B::InnerBackend>(&options.weights, device, backend)?;
    let r = crate::teach::teach::<B>(options, base, device)?;
    let last_pass = match options.epochs {
        0 => "no passes: the class means' layer".to_string(),
        _ => format!("last pass: loss {:.3}, top-1 {:.1}%", r.last_loss, r.last_top1 * 100.0),
    };
    println!(
        "taught {} classes from {} photos: features {:.1} s, last layer {:.1} s ({last_pass}) -> {}",
        r.classes,
        r.examples,
        r.feature_seconds,
        r.train_seconds,
        options.out.display()
    );
    if let Some(top1) = r.held_out_top1 {
        println!(
            "held out (every fifth example of each class, taught on the rest): top-1 {:.1}%",
            top1 * 100.0
        );
    }
    if let Some(val) = r.val {
        println!(
            "val: top-1 {:.2}%, top-5 {:.2}% on {} photos",
            val.top1 * 100.0,
            val.top5 * 100.0,
            val.images
        );
    }
    Ok(())
}

fn eval_command<B: Backend>(args: EvalArgs, device: &B::Device, backend: BackendInUse) -> Result<()> {
    let saved = load::<B>(&args.weights, device, backend)?;
    let data = args.data;
    let dir = if data.join("val").is_dir() { data.join("val") } else { data };
    let folder = ImageFolder::scan(&dir)?;
    let outputs = match_classes(&folder.classes, &saved.info.labels)?;
    let loader = Loader::new(folder, args.workers, saved.info.normalization)?;
    let report = evaluate(
        &saved.model,
        &loader,
        &outputs,
        saved.info.out_of_classes,
        args.ten_crop,
        args.batch_size,
        device,
    )?;
    for warning in loader.skipped.take_new() {
        eprintln!("{warning}");
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let crops = if args.ten_crop { "10-crop" } else { "centre crop" };
    println!("{} images ({crops}), {} skipped", report.images, report.skipped);
    println!("top-1 accuracy {:.2}% (error {:.2}%)", report.top1 * 100.0, report.top1_error * 100.0);
    println!("top-5 accuracy {:.2}% (error {:.2}%)", report.top5 * 100.0, report.top5_error * 100.0);
    if let Some(share) = report.out_of_classes_share {
        println!("none of the model's classes: {:.2}% of the photos", share * 100.0);
    }
    for c in &report.per_class {
        println!("  {:<24} {:>6.2}% ({}/{})", c.label, c.top1 * 100.0, c.correct, c.total);
    }
    Ok(())
}

fn predict_command<B: Backend>(args: PredictArgs, device: &B::Device, backend: BackendInUse) -> Result<()> {
    let saved = load::<B>(&args.weights, device, backend)?;
    let mut failures = 0;
    for image in &args.images {
        // Read, decode, preprocess and forward: what the page times for a dropped file.
        let started = std::time::Instant::now();
        let result = predict_file(&saved.model, &saved.info, image, device);
        let ms = started.elapsed().as_secs_f64() * 1e3;
        match result {
            Ok(answer) if args.json => println!(
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
                if args.json {
                    println!("{}", serde_json::json!({ "image": image, "error": format!("{e:#}") }));
                }
                eprintln!("error: {}: {e:#}", image.display());
            }
        }
    }
    if failures > 0 {
        anyhow::bail!("{failures} of {} images could not be classified", args.images.len());
    }
    Ok(())
}

fn filters_command<B: Backend>(args: FiltersArgs, device: &B::Device, backend: BackendInUse) -> Result<()> {
    let saved = load::<B>(&args.weights, device, backend)?;
    let roughness = crate::filters::write_png(&saved.model, &args.out, args.scale)?;
    println!(
        "{}: conv1's filters -> {} (roughness {roughness:.2}: 1 is noise, 0 smooth)",
        args.weights.display(),
        args.out.display()
    );
    Ok(())
}

fn import_command<B: Backend>(args: ImportArgs, device: &B::Device) -> Result<()> {
    let saved = alexnet::import::import_torchvision::<B>(&args.pth, device)?;
    saved.save(&args.out, args.precision)?;
    println!(
        "{} ({} classes, {}) -> {}",
        args.pth.display(),
        saved.info.config.num_classes,
        args.precision.as_str(),
        args.out.display()
    );
    Ok(())
}

fn convert_command<B: Backend>(args: ConvertArgs, device: &B::Device, backend: BackendInUse) -> Result<()> {
    let saved = load::<B>(&args.weights, device, backend)?;
    saved.save(&args.out, args.precision)?;
    let size = |p: &PathBuf| std::fs::metadata(p).map(|m| m.len() as f64 / 1e6).unwrap_or(0.0);
    println!(
        "{} ({:.1} MB) -> {} ({:.1} MB, {})",
        args.weights.display(),
        size(&args.weights),
        args.out.display(),
        size(&args.out),
        args.precision.as_str()
    );
    Ok(())
}

fn bench_command<B: AutodiffBackend>(
    args: BenchArgs,
    device: &B::Device,
    backend: BackendInUse,
) -> Result<()> {
    if let Some(data) = &args.data {
        let dir = if data.join("train").is_dir() { data.join("train") } else { data.clone() };
        let r = crate::bench::bench_data(ImageFolder::scan(&dir)?, args.data_images, args.workers)?;
        if args.json {
            println!("{}", serde_json::to_string(&r)?);
        } else {
            println!("input pipeline, {} images, {} workers:", r.images, r.workers);
            let per = |rate: f64| rate / r.workers as f64;
            let (decode, cached) = (r.decode_images_per_sec, r.cached_images_per_sec);
            println!("  decoding JPEGs: {decode:8.1} img/s ({:.1} per worker)", per(decode));
            println!("  cached:         {cached:8.1} img/s ({:.1} per worker)", per(cached));
        }
    }
    let r = crate::bench::bench::<B>(
        args.model,
        args.batch_size,
        args.infer_batch_size,
        args.steps,
        args.precision,
        device,
        backend,
    )?;
    if args.json {
        println!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    let kernels = r.cpu_kernels.map(|k| format!(", {k} kernels")).unwrap_or_default();
    println!("{} AlexNet (width {}) on {}{kernels}:", r.preset, r.width, r.backend);
    println!("  training  (batch {:>3}): {:8.1} img/s", r.train_batch_size, r.train_images_per_sec);
    println!("  inference (batch {:>3}): {:8.1} img/s", r.infer_batch_size, r.infer_images_per_sec);
    Ok(())
}

fn curves_command(args: &CurvesArgs) -> Result<()> {
    let history = crate::metrics::read(&args.run.join("metrics.json"))?;
    crate::metrics::write_all(&args.run, &history)?;
    println!("{}", args.run.join("curves.svg").display());
    Ok(())
}

/// Loads a weights file, refusing (before allocating anything on the device) a model whose
/// largest tensor the device cannot hold.
fn load<B: Backend>(path: &Path, device: &B::Device, backend: BackendInUse) -> Result<SavedModel<B>> {
    let context = || format!("loading {}", path.display());
    let bytes = std::fs::read(path).with_context(context)?;
    let info = weights::read_info(&bytes).with_context(context)?;
    backend.check_fits(&info.config.init::<B>(device))?;
    SavedModel::from_bytes(bytes, device).with_context(context)
}

/// `trainer info`: reads only the header, so it works on any weights file without a device.
fn info_command(args: &InfoArgs) -> Result<()> {
    let (path, json) = (args.weights.as_path(), args.json);
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
    crate::panics::exit_on_any_panic();
    let cli = Cli::parse();
    let result = match cli.command {
        // Read files only: no backend to start.
        Command::Info(args) => info_command(&args),
        Command::Curves(args) => curves_command(&args),
        // File conversions and pictures: the CPU unless another backend is asked for (no GPU to
        // start, and a GPU's driver probe can print to stderr).
        command @ (Command::Convert(_) | Command::ImportTorchvision(_) | Command::Filters(_)) => {
            backend::run(cli.backend.or(Some(BackendKind::Cpu)), DeviceCommand(command))
        }
        command => backend::run(cli.backend, DeviceCommand(command)),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
