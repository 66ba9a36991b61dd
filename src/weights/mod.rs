//! The project's one weights format: a safetensors file whose header also describes the model.
//!
//! Why safetensors rather than burnpack: it is the format the rest of the ecosystem reads
//! (`safetensors.torch.load_file` opens our files in Python), its header has a string-to-string
//! metadata map for our [`ModelInfo`], it loads from bytes as well as from a path (the browser has
//! bytes), and burn-store reads and writes it in f32 or f16 on native and wasm alike.
//!
//! Tensors are named after the model's fields (`conv1.weight`, ..., `fc8.bias`) in Burn's layout
//! (linear weights `[in, out]`). The metadata key `alexnet` holds the [`ModelInfo`] as JSON.

pub mod int8;

use std::collections::{BTreeMap, HashMap};

use burn::tensor::backend::Backend;
use burn_store::{
    ApplyResult, HalfPrecisionAdapter, ModuleSnapshot, SafetensorsStore, SafetensorsStoreError,
};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use crate::labels::Label;
use crate::model::{AlexNet, AlexNetConfig};
use crate::out_of_classes::OutOfClasses;
use crate::preprocess::Normalization;

/// The metadata key under which [`ModelInfo`] is stored.
pub const METADATA_KEY: &str = "alexnet";
/// Bumped when the layout of saved files changes incompatibly.
pub const FORMAT_VERSION: u32 = 1;

/// Everything besides the tensors that a saved model carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub format_version: u32,
    /// Rebuilds the network: preset, number of classes, width.
    pub config: AlexNetConfig,
    /// One label per output, in output order.
    pub labels: Vec<Label>,
    /// The normalisation the model was trained with.
    pub normalization: Normalization,
    /// Free-form facts about where the weights come from: dataset, epochs, accuracy, command...
    #[serde(default)]
    pub provenance: BTreeMap<String, serde_json::Value>,
    /// The threshold for "none of my classes", once chosen on data (`trainer calibrate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_of_classes: Option<OutOfClasses>,
}

impl ModelInfo {
    pub fn new(config: AlexNetConfig, labels: Vec<Label>) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            config,
            labels,
            normalization: Normalization::IMAGENET,
            provenance: BTreeMap::new(),
            out_of_classes: None,
        }
    }

    /// Adds one provenance entry.
    pub fn with_provenance(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.provenance.insert(key.to_string(), value.into());
        self
    }

    fn check(&self) -> Result<(), WeightsError> {
        if self.format_version > FORMAT_VERSION {
            return Err(WeightsError::BadMetadata(format!(
                "format version {} is newer than this program's ({FORMAT_VERSION})",
                self.format_version
            )));
        }
        self.config.validate().map_err(WeightsError::BadMetadata)?;
        if self.out_of_classes.is_some_and(|o| !o.threshold.is_finite()) {
            return Err(WeightsError::BadMetadata("the out-of-class threshold is not finite".into()));
        }
        if self.labels.len() != self.config.num_classes {
            return Err(WeightsError::BadMetadata(format!(
                "{} labels for {} classes",
                self.labels.len(),
                self.config.num_classes
            )));
        }
        Ok(())
    }
}

/// How the weights are stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    F32,
    /// Half the size; loads back to f32.
    F16,
    /// A quarter of the size: per-channel int8 weights, f32 biases (see [`int8`]).
    Int8,
}

impl Precision {
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Int8 => "int8",
        }
    }
}

/// What can go wrong reading or writing a weights file.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("not a safetensors file, or a truncated one ({0})")]
    NotSafetensors(String),
    #[error("a safetensors file, but not an AlexNet saved by this project (no `{METADATA_KEY}` metadata)")]
    NotAlexNet,
    #[error("the model description in the file is invalid: {0}")]
    BadMetadata(String),
    #[error("the tensors in the file do not fit the model it describes: {0}")]
    Mismatch(String),
    #[error("tensors are stored as {0}; only F32, F16 and int8 (with f32 scales) are supported")]
    UnsupportedDtype(String),
    #[error("the tensor {tensor} holds {count} NaN or infinite values: these weights are broken (from a training run that diverged?)")]
    NotFinite { tensor: String, count: usize },
    #[error("PyTorch file: {0}")]
    Pytorch(String),
    #[error("writing the weights failed: {0}")]
    Write(String),
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn io_error(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> WeightsError + '_ {
    move |source| WeightsError::Io { path: path.display().to_string(), source }
}

/// A model together with its description: what a weights file holds.
#[derive(Debug)]
pub struct SavedModel<B: Backend> {
    pub model: AlexNet<B>,
    pub info: ModelInfo,
}

fn store_for_saving(
    store: SafetensorsStore,
    info: &ModelInfo,
    precision: Precision,
) -> Result<SafetensorsStore, WeightsError> {
    let json = serde_json::to_string(info).map_err(|e| WeightsError::Write(e.to_string()))?;
    let store = store.metadata(METADATA_KEY, json);
    Ok(match precision {
        Precision::F16 => store.with_to_adapter(HalfPrecisionAdapter::new()),
        // Int8 files are made from the f32 bytes.
        Precision::F32 | Precision::Int8 => store,
    })
}

impl<B: Backend> SavedModel<B> {
    /// Serialises to the bytes of a weights file.
    pub fn to_bytes(&self, precision: Precision) -> Result<Vec<u8>, WeightsError> {
        if precision == Precision::Int8 {
            return int8::quantize_file(&self.to_bytes(Precision::F32)?);
        }
        let mut store = store_for_saving(SafetensorsStore::from_bytes(None), &self.info, precision)?;
        self.model.save_into(&mut store).map_err(|e| WeightsError::Write(e.to_string()))?;
        store.get_bytes().map_err(|e| WeightsError::Write(e.to_string()))
    }

    /// Writes a weights file atomically: to `PATH.partial` first, then renamed over `path`, so an
    /// interrupted save never leaves a broken file where a good one was.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn save(&self, path: &std::path::Path, precision: Precision) -> Result<(), WeightsError> {
        if precision == Precision::Int8 {
            return write_atomically(path, &self.to_bytes(precision)?);
        }
        // f32 and f16 are streamed by burn-store into the partial file.
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = std::path::PathBuf::from(partial);
        let mut store =
            store_for_saving(SafetensorsStore::from_file(&partial).overwrite(true), &self.info, precision)?;
        self.model
            .save_into(&mut store)
            .map_err(|e| WeightsError::Write(format!("{}: {e}", partial.display())))?;
        std::fs::rename(&partial, path).map_err(io_error(path))
    }

    /// Reads a weights file.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(path: &std::path::Path, device: &B::Device) -> Result<Self, WeightsError> {
        let bytes = std::fs::read(path).map_err(io_error(path))?;
        Self::from_bytes(bytes, device)
    }

    /// Reads the bytes of a weights file (what the browser downloads).
    pub fn from_bytes(bytes: Vec<u8>, device: &B::Device) -> Result<Self, WeightsError> {
        let (info, precision) = read_header(&bytes)?;
        if precision == Precision::Int8 {
            return Self::from_bytes(int8::dequantize_file(&bytes)?, device);
        }
        check_finite(&bytes)?;
        let mut model = info.config.init::<B>(device);
        let store = SafetensorsStore::from_bytes(Some(bytes));
        let mut store = match precision {
            Precision::F16 => store.with_from_adapter(HalfPrecisionAdapter::new()),
            _ => store,
        };
        let result = model.load_from(&mut store).map_err(|e| match e {
            SafetensorsStoreError::ValidationFailed(msg) | SafetensorsStoreError::TensorNotFound(msg) => {
                WeightsError::Mismatch(msg.trim().to_string())
            }
            other => WeightsError::NotSafetensors(other.to_string()),
        })?;
        check_complete(&result)?;
        Ok(Self { model, info })
    }
}

/// Refuses a file with a NaN or infinite value in any float tensor: it would load, and every
/// answer would be NaN.
fn check_finite(bytes: &[u8]) -> Result<(), WeightsError> {
    let tensors =
        SafeTensors::deserialize(bytes).map_err(|e| WeightsError::NotSafetensors(format!("{e:?}")))?;
    for (name, view) in tensors.tensors() {
        let data = view.data();
        let count = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .filter(|b| !f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_finite())
                .count(),
            // An f16 is NaN or infinite when its five exponent bits are all set.
            Dtype::F16 => {
                data.chunks_exact(2).filter(|b| u16::from_le_bytes([b[0], b[1]]) & 0x7C00 == 0x7C00).count()
            }
            _ => 0,
        };
        if count > 0 {
            return Err(WeightsError::NotFinite { tensor: name, count });
        }
    }
    Ok(())
}

/// Writes a file's bytes to `PATH.partial`, then renames it over `path`: an interrupted write never
/// leaves a broken file where a good one was.
#[cfg(not(target_arch = "wasm32"))]
pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<(), WeightsError> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    std::fs::write(&partial, bytes).map_err(io_error(&partial))?;
    std::fs::rename(&partial, path).map_err(io_error(path))
}

/// A weights file's bytes with a new description; its tensors stay byte for byte as they were.
pub fn with_info(bytes: &[u8], info: &ModelInfo) -> Result<Vec<u8>, WeightsError> {
    read_header(bytes)?;
    info.check()?;
    let (file, metadata) = parse(bytes)?;
    let mut metadata = metadata.unwrap_or_default();
    let json = serde_json::to_string(info).map_err(|e| WeightsError::Write(e.to_string()))?;
    metadata.insert(METADATA_KEY.to_string(), json);
    let tensors = file
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.dtype(), view.shape().to_vec(), view.data().to_vec()))
        .collect();
    write(tensors, Some(metadata))
}

/// The tensors of a safetensors file, and its metadata map.
fn parse(bytes: &[u8]) -> Result<(SafeTensors<'_>, Option<HashMap<String, String>>), WeightsError> {
    let not_safetensors = |e| WeightsError::NotSafetensors(format!("{e:?}"));
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(not_safetensors)?;
    let file = SafeTensors::deserialize(bytes).map_err(not_safetensors)?;
    Ok((file, header.metadata().clone()))
}

/// A safetensors file's bytes from (name, dtype, shape, data) tensors and a metadata map.
fn write(
    tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>, WeightsError> {
    let views = tensors
        .iter()
        .map(|(name, dtype, shape, data)| {
            TensorView::new(*dtype, shape.clone(), data).map(|v| (name.clone(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| WeightsError::Write(format!("{e:?}")))?;
    safetensors::serialize(views, metadata).map_err(|e| WeightsError::Write(format!("{e:?}")))
}

/// Reads the description from a weights file's header, without loading its tensors.
pub fn read_info(bytes: &[u8]) -> Result<ModelInfo, WeightsError> {
    read_header(bytes).map(|(info, _)| info)
}

/// How a weights file stores its tensors, from its header.
pub fn read_precision(bytes: &[u8]) -> Result<Precision, WeightsError> {
    read_header(bytes).map(|(_, precision)| precision)
}

fn read_header(bytes: &[u8]) -> Result<(ModelInfo, Precision), WeightsError> {
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| WeightsError::NotSafetensors(format!("{e:?}")))?;
    let json =
        header.metadata().as_ref().and_then(|m| m.get(METADATA_KEY)).ok_or(WeightsError::NotAlexNet)?;
    let info: ModelInfo = serde_json::from_str(json).map_err(|e| WeightsError::BadMetadata(e.to_string()))?;
    info.check()?;
    let tensors = header.tensors();
    if tensors.is_empty() {
        return Err(WeightsError::Mismatch("the file holds no tensors".into()));
    }
    let has = |dtype: Dtype| tensors.values().any(|t| t.dtype == dtype);
    // Int8 files keep biases and scales in f32.
    let precision = if has(Dtype::I8) {
        Precision::Int8
    } else if has(Dtype::F16) {
        Precision::F16
    } else {
        Precision::F32
    };
    let allowed: &[Dtype] = match precision {
        Precision::Int8 => &[Dtype::I8, Dtype::F32],
        Precision::F16 => &[Dtype::F16],
        Precision::F32 => &[Dtype::F32],
    };
    if let Some((name, t)) = tensors.iter().find(|(_, t)| !allowed.contains(&t.dtype)) {
        return Err(WeightsError::UnsupportedDtype(format!(
            "{:?} (`{name}`) in a {} file",
            t.dtype,
            precision.as_str()
        )));
    }
    Ok((info, precision))
}

/// Refuses partial loads: every parameter must come from the file, and every tensor in the file
/// must be used.
pub(crate) fn check_complete(result: &ApplyResult) -> Result<(), WeightsError> {
    if !result.errors.is_empty() {
        let errors: Vec<String> = result.errors.iter().map(|e| format!("{e:?}")).collect();
        return Err(WeightsError::Mismatch(errors.join("; ")));
    }
    if !result.missing.is_empty() {
        let missing: Vec<&str> = result.missing.iter().map(|(p, _)| p.as_str()).collect();
        return Err(WeightsError::Mismatch(format!("missing tensors: {}", missing.join(", "))));
    }
    if !result.unused.is_empty() {
        return Err(WeightsError::Mismatch(format!("unexpected tensors: {}", result.unused.join(", "))));
    }
    Ok(())
}
