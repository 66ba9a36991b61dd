//! The options of a training run (`trainer train`), saved as `run.json`, in checkpoints and in
//! the weights' provenance.

use std::path::PathBuf;

use alexnet::train::{Compute, ScheduleKind};
use alexnet::AlexNetConfig;
use serde::{Deserialize, Serialize};

use crate::peers::Devices;

/// Threads for decoding images: one per core.
pub fn default_workers() -> usize {
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
    /// Start from this weights file (the same --preset, --width and classes) instead of a fresh
    /// draw: a warm restart, the schedule from its beginning.
    #[arg(long, conflicts_with = "resume")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<PathBuf>,
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
