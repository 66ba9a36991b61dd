//! Training the whole network in the page, live, with the trainer's recipe from the library: the
//! same step and SGD (momentum 0.9, weight decay 5e-4), a cosine schedule, random-resized crops,
//! flips and PCA lighting, dropout. On the photos the visitor gave for teaching, one batch per
//! call, so that the page draws, pauses and stops between batches. On the CPU (in the worker).
//! After each epoch the page keeps a [`Checkpoint`] in the browser's storage, so that a run
//! survives a reload: [`LiveTraining::resume`] goes on from it exactly (momentum included).

use alexnet::inside::{self, Picture};
use alexnet::labels::Label;
use alexnet::preprocess::{self, Normalization};
use alexnet::train::teach::held_out_split;
use alexnet::train::{augment, draw_weights, Compute, Meter, Schedule, ScheduleKind, Sgd, Stepper};
use alexnet::weights::{ModelInfo, Precision, SavedModel};
use alexnet::{AlexNet, AlexNetConfig, Initialization};
use burn::backend::{Autodiff, Flex};
use burn::module::{AutodiffModule, Module};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::Optimizer;
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use image::RgbImage;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::WebError;

type Train = Autodiff<Flex>;
type LiveOptimizer = OptimizerAdaptor<Sgd, AlexNet<Train>, Train>;

/// The trainer's SGD: momentum 0.9, weight decay 5e-4.
fn sgd() -> LiveOptimizer {
    Sgd { momentum: 0.9, weight_decay: 5e-4 }.init()
}

/// At most this many photos are kept (decoded at 256x256, 196 KB each).
pub const MAX_PHOTOS: usize = 2000;
const BATCH_SIZE: usize = 16;
const MIN_CROP_AREA: f32 = 0.35;

/// Whether a run on `photos` photos can be kept in memory (see [`MAX_PHOTOS`]).
pub fn check_photo_count(photos: usize) -> Result<(), WebError> {
    if photos > MAX_PHOTOS {
        return Err(WebError::Other(format!(
            "live training holds at most {MAX_PHOTOS} photos in memory, and these classes have \
             {photos}: give fewer (teaching a new last layer, \"Teach\", takes them all)"
        )));
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
    pub epoch_end: Option<EpochEnd>,
}

#[derive(Serialize)]
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

pub struct LiveTraining {
    model: Option<AlexNet<Train>>,
    stepper: Stepper<Train, LiveOptimizer>,
    schedule: Schedule,
    info: ModelInfo,
    photos: Vec<(RgbImage, usize)>,
    trained: Vec<usize>,
    held_out: Vec<usize>,
    next: usize,
    epoch: usize,
    epochs: usize,
    meter: Meter<Flex>,
    rng: StdRng,
}

impl LiveTraining {
    pub fn new(start: Start, names: &[String], epochs: usize) -> Result<Self, WebError> {
        let device = Default::default();
        let labels: Vec<Label> =
            names.iter().map(|n| Label { name: n.trim().to_string(), wnid: None }).collect();
        let (model, config, normalization, lr) = match start {
            Start::FineTune(bytes) => {
                let base = SavedModel::<Train>::from_bytes(bytes, &device).map_err(WebError::Weights)?;
                let config = base.info.config.clone().with_num_classes(names.len());
                (base.model.with_new_classes(names.len()), config, base.info.normalization, 0.003)
            }
            Start::Scratch(width) => {
                let config = AlexNetConfig::paper(names.len())
                    .with_width(width)
                    .with_initialization(Initialization::HeSmallConv1);
                let model = config.init::<Train>(&device);
                draw_weights(&model);
                (model, config, Normalization::default(), 0.003)
            }
        };
        let mut info = ModelInfo::new(config, labels);
        info.normalization = normalization;
        let schedule = Schedule::new(ScheduleKind::Cosine, lr, 0, 0, epochs);
        Ok(Self::from_parts(model, sgd(), RunState { info, schedule, epoch: 0, epochs }))
    }

    /// The run a checkpoint was taken of, ready for its photos (added again, in the same order)
    /// and its next epoch.
    pub fn resume(checkpoint: Checkpoint) -> Result<Self, WebError> {
        let unreadable = |e: String| WebError::Other(format!("the saved live run cannot be read: {e}"));
        let state: RunState =
            serde_json::from_str(&checkpoint.state).map_err(|e| unreadable(e.to_string()))?;
        state.info.config.validate().map_err(unreadable)?;
        let device = Default::default();
        let records = Records::default();
        let model_record = records.load(checkpoint.model, &device).map_err(|e| unreadable(e.to_string()))?;
        let model = state.info.config.init::<Train>(&device).load_record(model_record);
        let optim_record = records.load(checkpoint.optim, &device).map_err(|e| unreadable(e.to_string()))?;
        Ok(Self::from_parts(model, sgd().load_record(optim_record), state))
    }

    fn from_parts(model: AlexNet<Train>, optim: LiveOptimizer, state: RunState) -> Self {
        Self {
            model: Some(model),
            stepper: Stepper::new(optim, Compute::F32, &Default::default()),
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
        }
    }

    /// The run after its last complete epoch; `None` in the middle of one.
    pub fn checkpoint(&self) -> Result<Option<Checkpoint>, WebError> {
        if self.next != 0 {
            return Ok(None);
        }
        let failed = |e: burn::record::RecorderError| WebError::Other(format!("saving the live run: {e}"));
        let state = RunState {
            info: self.info.clone(),
            schedule: self.schedule.clone(),
            epoch: self.epoch,
            epochs: self.epochs,
        };
        let records = Records::default();
        let model = self.model.as_ref().expect("a model between steps").clone().into_record();
        Ok(Some(Checkpoint {
            state: serde_json::to_string(&state).map_err(|e| WebError::Other(e.to_string()))?,
            model: records.record(model, ()).map_err(failed)?,
            optim: records.record(self.stepper.optim.to_record(), ()).map_err(failed)?,
        }))
    }

    /// Adds a photo of class `class` (an encoded image), decoded and kept at training size.
    pub fn add(&mut self, bytes: &[u8], class: usize) -> Result<usize, WebError> {
        check_photo_count(self.photos.len() + 1)?;
        if class >= self.info.labels.len() {
            return Err(WebError::Other(format!(
                "class {class} is not one of the {}",
                self.info.labels.len()
            )));
        }
        let image = preprocess::decode(bytes).map_err(WebError::Image)?;
        self.photos.push((augment::train_base(&image), class));
        Ok(self.photos.len())
    }

    /// One batch of training; after the epoch's last, the held-out photos are scored and the
    /// schedule moves on. `None` once every epoch is done.
    pub fn step(&mut self) -> Result<Option<Progress>, WebError> {
        if self.epoch >= self.epochs {
            return Ok(None);
        }
        if self.next == 0 {
            self.start_epoch()?;
        }
        let batch: Vec<usize> = self.trained.iter().skip(self.next).take(BATCH_SIZE).copied().collect();
        let norm = self.info.normalization;
        let mut inputs = Vec::with_capacity(batch.len() * 3 * alexnet::INPUT_SIZE * alexnet::INPUT_SIZE);
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
            epoch_end: None,
        };
        if self.next >= self.trained.len() {
            progress.epoch_end = Some(self.end_epoch());
        }
        Ok(Some(progress))
    }

    fn start_epoch(&mut self) -> Result<(), WebError> {
        if self.trained.is_empty() {
            let labels: Vec<usize> = self.photos.iter().map(|p| p.1).collect();
            let classes = self.info.labels.len();
            if (0..classes).any(|c| !labels.contains(&c)) {
                return Err(WebError::Other("every class needs photos before training".into()));
            }
            (self.trained, self.held_out) =
                held_out_split(&labels, classes).unwrap_or_else(|| ((0..labels.len()).collect(), Vec::new()));
        }
        // Seeded per epoch, so that a run resumed from a checkpoint draws what it would have.
        self.rng = StdRng::seed_from_u64(self.epoch as u64);
        self.trained.shuffle(&mut self.rng);
        Ok(())
    }

    fn end_epoch(&mut self) -> EpochEnd {
        let means = std::mem::take(&mut self.meter).read();
        self.epoch += 1;
        self.next = 0;
        let held_out_top1 = (!self.held_out.is_empty()).then(|| self.held_out_top1());
        let lr = self.schedule.lr();
        self.schedule.end_epoch(self.epoch, 1.0 - held_out_top1.unwrap_or(means.top1));
        EpochEnd { loss: means.loss, top1: means.top1, held_out_top1, lr }
    }

    fn held_out_top1(&self) -> f64 {
        let model = self.model.as_ref().expect("a model between steps").valid();
        let norm = self.info.normalization;
        let mut hits = 0;
        for chunk in self.held_out.chunks(BATCH_SIZE) {
            let inputs: Vec<Vec<f32>> =
                chunk.iter().map(|&i| preprocess::eval_transform(&self.photos[i].0, &norm)).collect();
            let logits = model.forward(preprocess::batch(&inputs, &Default::default()));
            let predicted: Vec<i64> = logits.argmax(1).into_data().iter::<i64>().collect();
            hits += chunk.iter().zip(&predicted).filter(|(&i, &p)| self.photos[i].1 as i64 == p).count();
        }
        hits as f64 / self.held_out.len() as f64
    }

    /// conv1's filters as they are now (the paper's Figure 3, forming).
    pub fn filters(&self) -> Picture {
        inside::filters(self.model.as_ref().expect("a model between steps"))
    }

    /// The trained model as a weights file (f32).
    pub fn weights(&self) -> Result<Vec<u8>, WebError> {
        let model = self.model.as_ref().expect("a model between steps").valid();
        SavedModel { model, info: self.info.clone() }.to_bytes(Precision::F32).map_err(WebError::Weights)
    }
}
