//! Helpers shared by the integration tests of the library and of the trainer (which includes
//! this file with `#[path]`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use alexnet::labels::Label;
use alexnet::weights::{ModelInfo, SavedModel};
use alexnet::AlexNetConfig;
use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use rand::{Rng, SeedableRng};

/// Burn's fastest CPU backend for AlexNet (the alternatives measured:
/// docs/benchmarks-history.md).
pub type TestBackend = burn::backend::Flex;

pub fn device() -> burn::backend::flex::FlexDevice {
    Default::default()
}

/// The shared data folder: `$ALEXNET_DATA`, or `../shared/data` beside the repository.
pub fn data_dir() -> PathBuf {
    let repository = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .expect("the workspace root (holding Cargo.lock)");
    let dir = std::env::var_os("ALEXNET_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repository.join("../shared/data"));
    assert!(
        dir.is_dir(),
        "test data not found at {} (set ALEXNET_DATA to the folder holding photos/ and imagenette/)",
        dir.display()
    );
    dir
}

/// A fresh folder under the target directory, removed when dropped.
pub struct ScratchDir(pub PathBuf);

impl ScratchDir {
    pub fn new(name: &str) -> Self {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The committable test photos (`photos/` in the data folder), sorted.
pub fn photos() -> Vec<PathBuf> {
    let dir = data_dir().join("photos");
    let mut photos: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    photos.sort();
    photos
}

/// Imagenette (10 classes, train/ and val/) in the data folder.
pub fn imagenette() -> PathBuf {
    let dir = data_dir().join("imagenette");
    assert!(dir.join("train").is_dir(), "Imagenette not found at {} (set ALEXNET_DATA)", dir.display());
    dir
}

/// A narrow paper-preset model with random weights (drawn by [`Draws`], seeded by the number of
/// classes) and labels `class 0`, `class 1`, ... Its weights have He's variance in every layer,
/// the last too: with the paper's N(0, 0.01) the logits fade to nearly equal, and checks of the
/// probabilities would pass for any model.
pub fn small_model(num_classes: usize) -> SavedModel<TestBackend> {
    let config = AlexNetConfig::paper(num_classes).with_width(0.125);
    let labels = (0..num_classes).map(|i| Label { name: format!("class {i}"), wnid: None }).collect();
    let model = Draws::new(num_classes as u64).redraw(config.init(&device()));
    SavedModel { model, info: ModelInfo::new(config, labels) }
}

/// The largest difference between `a` and `b`, relative to the largest magnitude in `a`.
pub fn max_relative_difference(a: &[f32], b: &[f32]) -> f32 {
    max_difference(a, b) / largest_magnitude(a).max(f32::MIN_POSITIVE)
}

/// The largest `|a[i] - b[i]|`.
pub fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max)
}

/// The largest `|value|`.
pub fn largest_magnitude<'a>(values: impl IntoIterator<Item = &'a f32>) -> f32 {
    values.into_iter().fold(0f32, |m, x| m.max(x.abs()))
}

/// Every parameter of `model` by name, as f32 values.
pub fn parameters<B: burn::tensor::backend::Backend>(model: &alexnet::AlexNet<B>) -> Vec<(String, Vec<f32>)> {
    use burn_store::ModuleSnapshot;
    model
        .collect(None, None, false)
        .iter()
        .map(|p| (p.full_path(), p.to_data().unwrap().convert::<f32>().to_vec().unwrap()))
        .collect()
}

/// Test values from the test's own seeded generator: the same on every run, whatever other tests
/// draw at the same time from Burn's generator (one per backend, shared by the process).
pub struct Draws(rand::rngs::StdRng);

impl Draws {
    pub fn new(seed: u64) -> Self {
        Self(rand::rngs::StdRng::seed_from_u64(seed))
    }

    /// Uniform in [-limit, limit).
    pub fn uniform<B: Backend, const D: usize>(
        &mut self,
        shape: [usize; D],
        limit: f32,
        device: &B::Device,
    ) -> Tensor<B, D> {
        let values: Vec<f32> =
            (0..shape.iter().product()).map(|_| self.0.random_range(-limit..limit)).collect();
        Tensor::from_data(TensorData::new(values, shape), device)
    }

    /// Around zero with variance 1.
    pub fn unit<B: Backend, const D: usize>(
        &mut self,
        shape: [usize; D],
        device: &B::Device,
    ) -> Tensor<B, D> {
        self.uniform(shape, 3f32.sqrt(), device)
    }

    /// `module` with every parameter drawn again from this generator: weights of He's variance
    /// (convolutions `[out, in, k, k]`, Burn's linear layers `[in, out]`), biases within 0.1.
    pub fn redraw<B: Backend, M: Module<B>>(&mut self, module: M) -> M {
        module.map(&mut Redraw(self))
    }
}

struct Redraw<'a>(&'a mut Draws);

impl<B: Backend> ModuleMapper<B> for Redraw<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let dims = tensor.dims();
        let fan_in = match D {
            4 => dims[1] * dims[2] * dims[3],
            2 => dims[0],
            _ => 0,
        };
        let limit = if fan_in > 0 { (6.0 / fan_in as f32).sqrt() } else { 0.1 };
        let drawn = self.0.uniform(dims, limit, &tensor.device()).set_require_grad(tensor.is_require_grad());
        Param::from_mapped_value(id, drawn, mapper)
    }
}
