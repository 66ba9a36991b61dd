//! Resumable checkpoints: the model, the optimizer state and the run's state after an epoch.
//!
//! `OUT/checkpoint/` holds `model-E.bin` and `optim-E.bin` (Burn's binary records) and
//! `state.json`, which names epoch E and records each file's CRC-32. Files are written first under
//! their epoch's names, then `state.json` is replaced atomically, then older files go: a run
//! killed at any moment keeps its last complete checkpoint. On resume a file whose checksum
//! differs (corrupt, truncated) is refused by name before Burn reads it.
//!
//! Burn's records do the serialising; the rest is ours rather than burn-train's `FileCheckpointer`,
//! which keeps neither checksums nor the run's own state (schedule, history, options) beside them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use alexnet::train::Schedule;
use alexnet::AlexNet;
use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::optim::Optimizer;
use burn::record::{BinFileRecorder, FileRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use crate::metrics::EpochMetrics;
use crate::options::TrainOptions;

type Checkpointer = BinFileRecorder<FullPrecisionSettings>;

/// What `state.json` holds.
#[derive(Debug, Serialize, Deserialize)]
pub struct State {
    pub epoch: usize,
    pub options: TrainOptions,
    pub classes: Vec<String>,
    pub schedule: Schedule,
    pub history: Vec<EpochMetrics>,
    /// CRC-32 of each file of this checkpoint, by file name.
    #[serde(default)]
    pub checksums: BTreeMap<String, u32>,
}

pub fn dir(out: &Path) -> PathBuf {
    out.join("checkpoint")
}

fn state_path(out: &Path) -> PathBuf {
    dir(out).join("state.json")
}

/// Whether `out` holds a checkpoint.
pub fn exists(out: &Path) -> bool {
    state_path(out).exists()
}

/// Makes sure checkpoints can be written, before any training time is spent.
pub fn check_writable(out: &Path) -> Result<()> {
    let dir = dir(out);
    let probe = dir.join(".writable");
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&probe, b""))
        .and_then(|()| std::fs::remove_file(&probe))
        .with_context(|| format!("checkpoints cannot be written to {}", dir.display()))
}

fn file_name(kind: &str, epoch: usize) -> String {
    format!("{kind}-{epoch}.{}", <Checkpointer as FileRecorder<burn::backend::Flex>>::file_extension())
}

fn crc32(path: &Path) -> Result<u32> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(crc32fast::hash(&bytes))
}

/// Saves the model and optimizer after `state.epoch`; see the module's description.
pub fn save<B: AutodiffBackend, O: Optimizer<AlexNet<B>, B>>(
    out: &Path,
    model: &AlexNet<B>,
    optim: &O,
    mut state: State,
) -> Result<()> {
    let dir = dir(out);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let recorder = Checkpointer::new();
    let epoch = state.epoch;
    let (model_file, optim_file) = (file_name("model", epoch), file_name("optim", epoch));
    model
        .clone()
        .save_file(dir.join(&model_file), &recorder)
        .with_context(|| format!("writing {}", dir.join(&model_file).display()))?;
    recorder
        .record(optim.to_record(), dir.join(&optim_file))
        .with_context(|| format!("writing {}", dir.join(&optim_file).display()))?;
    for file in [model_file, optim_file] {
        state.checksums.insert(file.clone(), crc32(&dir.join(&file))?);
    }
    let partial = dir.join("state.json.partial");
    std::fs::write(&partial, serde_json::to_vec_pretty(&state)?)
        .with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, state_path(out))?;
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

/// A checkpoint read back: the state, the model and the optimizer.
pub struct Loaded<B: AutodiffBackend, O> {
    pub state: State,
    pub model: AlexNet<B>,
    pub optim: O,
}

/// Reads the checkpoint in `out` into `model` and `optim` (fresh ones of the same shape), after
/// checking every file against its recorded checksum.
pub fn load<B: AutodiffBackend, O: Optimizer<AlexNet<B>, B>>(
    out: &Path,
    model: AlexNet<B>,
    optim: O,
    device: &B::Device,
) -> Result<Loaded<B, O>> {
    let path = state_path(out);
    let bytes =
        std::fs::read(&path).with_context(|| format!("--resume: no checkpoint at {}", path.display()))?;
    let state: State = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a checkpoint state (corrupt?)", path.display()))?;
    let dir = dir(out);
    let (model_file, optim_file) = (file_name("model", state.epoch), file_name("optim", state.epoch));
    for file in [&model_file, &optim_file] {
        let path = dir.join(file);
        let actual = crc32(&path)?;
        match state.checksums.get(file) {
            Some(&recorded) if recorded == actual => {}
            Some(_) => bail!(
                "the checkpoint file {} is corrupt or truncated (its checksum differs from the one \
                 state.json recorded): the run cannot resume from it",
                path.display()
            ),
            None => bail!(
                "{} records no checksum for {file}: not a checkpoint of this trainer",
                dir.join("state.json").display()
            ),
        }
    }
    let recorder = Checkpointer::new();
    let model = model
        .load_file(dir.join(&model_file), &recorder, device)
        .with_context(|| format!("loading {}", dir.join(&model_file).display()))?;
    let record = recorder
        .load(dir.join(&optim_file), device)
        .with_context(|| format!("loading {}", dir.join(&optim_file).display()))?;
    Ok(Loaded { state, model, optim: optim.load_record(record) })
}
