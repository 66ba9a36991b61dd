//! Training the whole network live, the page's "Train": the trainer's recipe (the same step and
//! SGD with momentum 0.9 and weight decay 5e-4, a cosine schedule, random-resized crops, flips and
//! PCA lighting, dropout) on photos given one by one, one batch per call, so that a page can
//! draw, pause and stop between batches. After each epoch a [`Checkpoint`] can be taken (the page
//! keeps it in the browser's storage), and [`LiveTraining::resume`] goes on from it as the run
//! would have: momentum included, and the augmentation and dropout seeded per epoch.

use burn::module::{AutodiffModule, Module};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::Optimizer;
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};
use image::RgbImage;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::teach::held_out_split;
use super::{augment, draw_weights, hits, readback, Compute, Meter, Schedule, ScheduleKind, Sgd, Stepper};
use crate::inside::{self, Picture};
use crate::labels::Label;
use crate::preprocess::{self, ImageError, Normalization};
use crate::weights::{ModelInfo, Precision, SavedModel, WeightsError};
use crate::{AlexNet, AlexNetConfig, Initialization};

type LiveOptimizer<B> = OptimizerAdaptor<Sgd, AlexNet<B>, B>;

/// The trainer's SGD: momentum 0.9, weight decay 5e-4.
fn sgd<B: AutodiffBackend>() -> LiveOptimizer<B> {
    Sgd { momentum: 0.9, weight_decay: 5e-4 }.init()
}

/// Why a live run cannot start, take a photo or go on.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("live training holds at most {MAX_PHOTOS} photos in memory, and these classes have {0}: give fewer (teaching a new last layer, \"Teach\", takes them all)")]
    TooManyPhotos(usize),
    #[error("class {class} is not one of the {classes}")]
    UnknownClass { class: usize, classes: usize },
    #[error("every class needs photos before training")]
    ClassWithoutPhotos,
    #[error("this image cannot be used: {0}")]
    Image(#[from] ImageError),
    #[error("the model file is not usable: {0}")]
    Weights(#[from] WeightsError),
    #[error("the saved live run cannot be read: {0}")]
    Unreadable(String),
    #[error("the live run cannot be saved: {0}")]
    Unsaved(String),
    #[error("the live run's numbers could not be read: {0}")]
    Device(String),
}

/// At most this many photos are kept (decoded at 256x256, 196 KB each).
pub const MAX_PHOTOS: usize = 2000;
const BATCH_SIZE: usize = 16;
const MIN_CROP_AREA: f32 = 0.35;

/// Whether a run on `photos` photos can be kept in memory (see [`MAX_PHOTOS`]).
pub fn check_photo_count(photos: usize) -> Result<(), LiveError> {
    if photos > MAX_PHOTOS {
        return Err(LiveError::TooManyPhotos(photos));
    }
    Ok(())
}

/// Where a live run starts.
pub enum Start {
    /// The loaded model's weights (a weights file's bytes), with a new last layer.
    FineTune(Vec<u8>),
    /// A new paper AlexNet of this width.
    Scratch(f64),
}

/// After a batch: where the run is, and after an epoch's last batch, that epoch's figures.
#[derive(Serialize)]
pub struct Progress {
    pub epoch: usize,
    pub epochs: usize,
    pub batch: usize,
    pub batches: usize,
    /// The photos in this batch (the last of an epoch may have fewer).
    pub images: usize,
    pub epoch_end: Option<EpochEnd>,
}

#[derive(Debug, PartialEq, Serialize)]
pub struct EpochEnd {
    pub loss: f64,
    pub top1: f64,
    /// Top-1 on every fifth photo of each class (centre crop), kept out of training; `None` when
    /// some class has fewer than five.
    pub held_out_top1: Option<f64>,
    pub lr: f64,
}

/// A live run between two epochs: its state (JSON) and Burn's records of the model and of the
/// optimizer (momentum).
pub struct Checkpoint {
    pub state: String,
    pub model: Vec<u8>,
    pub optim: Vec<u8>,
}

/// What a checkpoint's state holds.
#[derive(Serialize, Deserialize)]
struct RunState {
    info: ModelInfo,
    schedule: Schedule,
    epoch: usize,
    epochs: usize,
}

type Records = BinBytesRecorder<FullPrecisionSettings>;

pub struct LiveTraining<B: AutodiffBackend> {
    model: Option<AlexNet<B>>,
    stepper: Stepper<B, LiveOptimizer<B>>,
    schedule: Schedule,
    info: ModelInfo,
    photos: Vec<(RgbImage, usize)>,
    trained: Vec<usize>,
    held_out: Vec<usize>,
    next: usize,
    epoch: usize,
    epochs: usize,
    meter: Meter<B::InnerBackend>,
    rng: StdRng,
    device: B::Device,
}

impl<B: AutodiffBackend> LiveTraining<B> {
    pub fn new(start: Start, names: &[String], epochs: usize, device: &B::Device) -> Result<Self, LiveError> {
        let labels: Vec<Label> =
            names.iter().map(|n| Label { name: n.trim().to_string(), wnid: None }).collect();
        let (model, config, normalization, lr) = match start {
            Start::FineTune(bytes) => {
                let base = SavedModel::<B>::from_bytes(bytes, device)?;
                let config = base.info.config.clone().with_num_classes(names.len());
                (base.model.with_new_classes(names.len()), config, base.info.normalization, 0.003)
            }
            Start::Scratch(width) => {
                let config = AlexNetConfig::paper(names.len())
                    .with_width(width)
                    .with_initialization(Initialization::HeSmallConv1);
                // Seeded, as the trainer's runs: the same photos give the same run.
                B::seed(device, 0);
                let model = config.init::<B>(device);
                draw_weights(&model);
                (model, config, Normalization::default(), 0.003)
            }
        };
        let mut info = ModelInfo::new(config, labels);
        info.normalization = normalization;
        let schedule = Schedule::new(ScheduleKind::Cosine, lr, 0, 0, epochs);
        Ok(Self::from_parts(model, sgd(), RunState { info, schedule, epoch: 0, epochs }, device))
    }

    /// The run a checkpoint was taken of, ready for its photos (added again, in the same order)
    /// and its next epoch.
    pub fn resume(checkpoint: Checkpoint, device: &B::Device) -> Result<Self, LiveError> {
        let unreadable = |e: &dyn std::fmt::Display| LiveError::Unreadable(e.to_string());
        let state: RunState = serde_json::from_str(&checkpoint.state).map_err(|e| unreadable(&e))?;
        state.info.config.validate().map_err(|e| unreadable(&e))?;
        let records = Records::default();
        let model_record = records.load(checkpoint.model, device).map_err(|e| unreadable(&e))?;
        let model = state.info.config.init::<B>(device).load_record(model_record);
        let optim_record = records.load(checkpoint.optim, device).map_err(|e| unreadable(&e))?;
        Ok(Self::from_parts(model, sgd().load_record(optim_record), state, device))
    }

    fn from_parts(model: AlexNet<B>, optim: LiveOptimizer<B>, state: RunState, device: &B::Device) -> Self {
        Self {
            model: Some(model),
            stepper: Stepper::new(optim, Compute::F32, device),
            schedule: state.schedule,
            info: state.info,
            photos: Vec::new(),
            trained: Vec::new(),
            held_out: Vec::new(),
            next: 0,
            epoch: state.epoch,
            epochs: state.epochs,
            meter: Meter::default(),
            rng: StdRng::seed_from_u64(state.epoch as u64),
            device: device.clone(),
        }
    }

    /// The run after its last complete epoch; `None` in the middle of one. Its records are of a
    /// CPU copy, which any backend loads.
    pub async fn checkpoint(&self) -> Result<Option<Checkpoint>, LiveError> {
        if self.next != 0 {
            return Ok(None);
        }
        let failed = |e: burn::record::RecorderError| LiveError::Unsaved(e.to_string());
        let state = RunState {
            info: self.info.clone(),
            schedule: self.schedule.clone(),
            epoch: self.epoch,
            epochs: self.epochs,
        };
        let model =
            readback::model_on_cpu(self.model(), &self.info.config).await.map_err(LiveError::Unsaved)?;
        let optim = readback::sgd_on_cpu(&self.stepper.optim).await.map_err(LiveError::Unsaved)?;
        let records = Records::default();
        Ok(Some(Checkpoint {
            state: serde_json::to_string(&state).map_err(|e| LiveError::Unsaved(e.to_string()))?,
            model: records.record(model.into_record(), ()).map_err(failed)?,
            optim: records.record(optim, ()).map_err(failed)?,
        }))
    }

    /// Adds a photo of class `class` (an encoded image), decoded and kept at training size.
    pub fn add(&mut self, bytes: &[u8], class: usize) -> Result<usize, LiveError> {
        check_photo_count(self.photos.len() + 1)?;
        let classes = self.info.labels.len();
        if class >= classes {
            return Err(LiveError::UnknownClass { class, classes });
        }
        let image = preprocess::decode(bytes)?;
        self.photos.push((augment::train_base(&image), class));
        Ok(self.photos.len())
    }

    /// One batch of training; after the epoch's last, the held-out photos are scored and the
    /// schedule moves on. `None` once every epoch is done. Only an epoch's last batch waits for the
    /// device (to read the epoch's figures).
    pub async fn step(&mut self) -> Result<Option<Progress>, LiveError> {
        if self.epoch >= self.epochs {
            return Ok(None);
        }
        if self.next == 0 {
            self.start_epoch()?;
        }
        let batch: Vec<usize> = self.trained.iter().skip(self.next).take(BATCH_SIZE).copied().collect();
        let norm = self.info.normalization;
        let mut inputs = Vec::with_capacity(batch.len() * 3 * crate::INPUT_SIZE * crate::INPUT_SIZE);
        for &i in &batch {
            inputs.extend(augment::train_transform(
                &self.photos[i].0,
                &norm,
                Some(MIN_CROP_AREA),
                &mut self.rng,
            ));
        }
        let labels: Vec<usize> = batch.iter().map(|&i| self.photos[i].1).collect();
        let (images, targets) = self.stepper.batch(inputs, &labels);
        let model = self.model.take().expect("a model between steps");
        self.model = Some(self.stepper.step(model, images, targets, self.schedule.lr(), &mut self.meter));
        self.next += batch.len();
        let batches = self.trained.len().div_ceil(BATCH_SIZE);
        let mut progress = Progress {
            epoch: self.epoch + 1,
            epochs: self.epochs,
            batch: self.next.div_ceil(BATCH_SIZE),
            batches,
            images: batch.len(),
            epoch_end: None,
        };
        if self.next >= self.trained.len() {
            progress.epoch_end = Some(self.end_epoch().await?);
        }
        Ok(Some(progress))
    }

    fn start_epoch(&mut self) -> Result<(), LiveError> {
        if self.trained.is_empty() {
            let labels: Vec<usize> = self.photos.iter().map(|p| p.1).collect();
            let classes = self.info.labels.len();
            if (0..classes).any(|c| !labels.contains(&c)) {
                return Err(LiveError::ClassWithoutPhotos);
            }
            (self.trained, self.held_out) =
                held_out_split(&labels, classes).unwrap_or_else(|| ((0..labels.len()).collect(), Vec::new()));
        }
        // Seeded per epoch (the augmentation, and the backend's dropout masks), so that a run
        // resumed from a checkpoint draws what it would have.
        self.rng = StdRng::seed_from_u64(self.epoch as u64);
        B::seed(&self.device, self.epoch as u64);
        self.trained.sort_unstable();
        self.trained.shuffle(&mut self.rng);
        Ok(())
    }

    async fn end_epoch(&mut self) -> Result<EpochEnd, LiveError> {
        let means = std::mem::take(&mut self.meter).read_async().await.map_err(LiveError::Device)?;
        self.epoch += 1;
        self.next = 0;
        let held_out_top1 = if self.held_out.is_empty() { None } else { Some(self.held_out_top1().await?) };
        let lr = self.schedule.lr();
        self.schedule.end_epoch(self.epoch, 1.0 - held_out_top1.unwrap_or(means.top1));
        Ok(EpochEnd { loss: means.loss, top1: means.top1, held_out_top1, lr })
    }

    async fn held_out_top1(&self) -> Result<f64, LiveError> {
        let model = self.model().valid();
        let norm = self.info.normalization;
        let mut right = Tensor::zeros([1], &self.device);
        for chunk in self.held_out.chunks(BATCH_SIZE) {
            let inputs: Vec<Vec<f32>> =
                chunk.iter().map(|&i| preprocess::eval_transform(&self.photos[i].0, &norm)).collect();
            let logits = model.forward(preprocess::batch(&inputs, &self.device));
            let labels: Vec<i64> = chunk.iter().map(|&i| self.photos[i].1 as i64).collect();
            let targets = Tensor::from_data(TensorData::new(labels, [chunk.len()]), &self.device);
            right = right + hits(logits, targets).0;
        }
        let right = readback::read_f32(right).await.map_err(LiveError::Device)?;
        Ok(f64::from(right[0]) / self.held_out.len() as f64)
    }

    fn model(&self) -> &AlexNet<B> {
        self.model.as_ref().expect("a model between steps")
    }

    /// conv1's filters as they are now (the paper's Figure 3, forming).
    pub async fn filters(&self) -> Result<Picture, LiveError> {
        let weights = self.model().conv1_filters();
        let dims = weights.dims();
        let values = readback::read_f32(weights).await.map_err(LiveError::Device)?;
        Ok(inside::filters_of(dims, &values))
    }

    /// The trained model as a weights file (f32).
    pub async fn weights(&self) -> Result<Vec<u8>, LiveError> {
        let model =
            readback::model_on_cpu(self.model(), &self.info.config).await.map_err(LiveError::Device)?;
        Ok(SavedModel { model, info: self.info.clone() }.to_bytes(Precision::F32)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use futures_lite::future::block_on;
    use std::io::Cursor;

    type B = Autodiff<Flex>;

    /// Ten small photos as PNG files, five of each of two classes (so that every fifth is held out).
    fn photos() -> Vec<(Vec<u8>, usize)> {
        (0..10u32)
            .map(|i| {
                let class = (i % 2) as usize;
                let photo = RgbImage::from_fn(40, 32, |x, y| {
                    let v = ((x * 7 + y * 3 + i * 11) % 256) as u8;
                    image::Rgb(if class == 0 { [v, 40, 200] } else { [200, v, 40] })
                });
                let mut png = Vec::new();
                image::DynamicImage::ImageRgb8(photo)
                    .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
                    .unwrap();
                (png, class)
            })
            .collect()
    }

    fn with_photos(mut run: LiveTraining<B>) -> LiveTraining<B> {
        for (png, class) in photos() {
            run.add(&png, class).unwrap();
        }
        run
    }

    fn started(epochs: usize) -> LiveTraining<B> {
        let names = ["red".to_string(), "blue".to_string()];
        with_photos(LiveTraining::new(Start::Scratch(0.125), &names, epochs, &Default::default()).unwrap())
    }

    /// Steps to the end of the run's next epoch.
    fn epoch(run: &mut LiveTraining<B>) -> EpochEnd {
        loop {
            if let Some(end) = block_on(run.step()).unwrap().expect("epochs left").epoch_end {
                return end;
            }
        }
    }

    /// The run's weights, by name.
    fn weights(run: &LiveTraining<B>) -> Vec<(String, Vec<f32>)> {
        let bytes = block_on(run.weights()).unwrap();
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut tensors: Vec<(String, Vec<f32>)> = file
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap()));
                (name, values.collect())
            })
            .collect();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        tensors
    }

    #[test]
    fn a_run_resumed_from_its_checkpoint_goes_on_as_it_would_have() {
        let mut straight = started(3);
        let all: Vec<EpochEnd> = (0..3).map(|_| epoch(&mut straight)).collect();

        let mut interrupted = started(3);
        assert_eq!(epoch(&mut interrupted), all[0]);
        let checkpoint = block_on(interrupted.checkpoint()).unwrap().expect("a checkpoint between epochs");
        drop(interrupted);
        let mut resumed = with_photos(LiveTraining::resume(checkpoint, &Default::default()).unwrap());
        let rest: Vec<EpochEnd> = (0..2).map(|_| epoch(&mut resumed)).collect();
        assert_eq!(rest, all[1..]);
        assert!(block_on(resumed.step()).unwrap().is_none(), "three epochs in all");
        let (resumed, straight) = (weights(&resumed), weights(&straight));
        assert_eq!(resumed.len(), straight.len());
        for ((name, a), (_, b)) in resumed.iter().zip(&straight) {
            let largest = b.iter().fold(0f32, |m, v| m.max(v.abs()));
            let differs = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(differs <= 1e-6 * largest, "{name}: differs by {differs} (largest {largest})");
        }
        assert!(all[0].loss.is_finite() && all[0].held_out_top1.is_some());
    }

    #[test]
    fn bad_photos_classes_and_checkpoints_are_errors() {
        let mut run = started(1);
        assert!(matches!(run.add(b"not an image", 0), Err(LiveError::Image(_))));
        assert!(matches!(run.add(&photos()[0].0, 2), Err(LiveError::UnknownClass { class: 2, classes: 2 })));
        assert!(matches!(check_photo_count(MAX_PHOTOS + 1), Err(LiveError::TooManyPhotos(_))));
        block_on(run.step()).unwrap();
        assert!(block_on(run.checkpoint()).unwrap().is_none() || block_on(run.step()).unwrap().is_none());
        let broken = Checkpoint { state: "{".into(), model: Vec::new(), optim: Vec::new() };
        assert!(matches!(
            LiveTraining::<B>::resume(broken, &Default::default()),
            Err(LiveError::Unreadable(_))
        ));
    }
}
