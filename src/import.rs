//! Importing PyTorch `state_dict` files (`.pth`), e.g. torchvision's pretrained AlexNet.

use std::path::Path;

use burn::tensor::backend::Backend;
use burn_store::{ModuleSnapshot, ModuleStore, PytorchStore};

use crate::labels::{self, Label};
use crate::model::AlexNetConfig;
use crate::weights::{check_complete, ModelInfo, SavedModel, WeightsError};

/// torchvision's `nn.Sequential` indices, renamed to our layer names.
const TORCHVISION_NAMES: [(&str, &str); 8] = [
    (r"^features\.0\.", "conv1."),
    (r"^features\.3\.", "conv2."),
    (r"^features\.6\.", "conv3."),
    (r"^features\.8\.", "conv4."),
    (r"^features\.10\.", "conv5."),
    (r"^classifier\.1\.", "fc6."),
    (r"^classifier\.4\.", "fc7."),
    (r"^classifier\.6\.", "fc8."),
];

fn open(path: &Path) -> PytorchStore {
    let mut store = PytorchStore::from_file(path)
        // Keep torchvision's indices as they are: the renaming above relies on them.
        .map_indices_contiguous(false);
    for (from, to) in TORCHVISION_NAMES {
        store = store.with_key_remapping(from, to);
    }
    store
}

fn pytorch_error(path: &Path, e: impl std::fmt::Display) -> WeightsError {
    WeightsError::Pytorch(format!("{}: {e}", path.display()))
}

/// Loads a PyTorch `state_dict` into a network built from `config`. Keys may be torchvision's
/// (`features.0.weight`, ..., `classifier.6.bias`) or ours (`conv1.weight`, ..., `fc8.bias`).
pub fn import_pytorch<B: Backend>(
    path: &Path,
    config: AlexNetConfig,
    labels: Vec<Label>,
    device: &B::Device,
) -> Result<SavedModel<B>, WeightsError> {
    if !path.exists() {
        return Err(WeightsError::Io {
            path: path.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    let info = ModelInfo::new(config, labels).with_provenance("imported_from", path.display().to_string());
    let mut model = info.config.init::<B>(device);
    let result = model
        .load_from(&mut open(path).allow_partial(true).validate(false))
        .map_err(|e| pytorch_error(path, e))?;
    check_complete(&result)?;
    Ok(SavedModel { model, info })
}

/// Imports torchvision's `alexnet` `state_dict` into the `torchvision` preset, with ImageNet's
/// labels when it has 1000 classes (`class N` names otherwise).
pub fn import_torchvision<B: Backend>(
    path: &Path,
    device: &B::Device,
) -> Result<SavedModel<B>, WeightsError> {
    let mut store = open(path);
    let num_classes = match store.get_snapshot("fc8.weight") {
        Ok(Some(fc8)) => fc8.shape[0],
        Ok(None) => {
            return Err(pytorch_error(path, "no `classifier.6.weight`: not a torchvision AlexNet state_dict"))
        }
        Err(e) => return Err(pytorch_error(path, e)),
    };
    let labels = if num_classes == 1000 {
        labels::imagenet()
    } else {
        (0..num_classes).map(|i| Label { name: format!("class {i}"), wnid: None }).collect()
    };
    let saved = import_pytorch(path, AlexNetConfig::torchvision(num_classes), labels, device)?;
    Ok(SavedModel { info: saved.info.with_provenance("source", "torchvision alexnet state_dict"), ..saved })
}
