//! A live training run on the classifier's backend: WebGPU when the page classifies there, the
//! CPU otherwise. The same library run (`alexnet::train::live`) on either; its reads wait for the
//! device without blocking the worker.

use alexnet::inside::Picture;
use alexnet::train::live::{Checkpoint, LiveError, LiveTraining, Progress, Start};
use burn::backend::{Autodiff, Flex, WebGpu};

use crate::Engine;

// Boxed, as the classifier's `Engine`: the two kinds differ in size.
pub enum LiveRun {
    Gpu(Box<LiveTraining<Autodiff<WebGpu>>>),
    Cpu(Box<LiveTraining<Autodiff<Flex>>>),
}

/// `$body` with `$run` bound to the run, whichever its backend.
macro_rules! on_either {
    ($live:expr, $run:ident => $body:expr) => {
        match $live {
            LiveRun::Gpu($run) => $body,
            LiveRun::Cpu($run) => $body,
        }
    };
}

impl LiveRun {
    pub fn new(start: Start, names: &[String], epochs: usize, engine: &Engine) -> Result<Self, LiveError> {
        Ok(match engine {
            Engine::Gpu(_, device) => {
                LiveRun::Gpu(Box::new(LiveTraining::new(start, names, epochs, device)?))
            }
            Engine::Cpu(_) => {
                LiveRun::Cpu(Box::new(LiveTraining::new(start, names, epochs, &Default::default())?))
            }
        })
    }

    /// Goes on with a checkpoint's run (taken on either backend) on `engine`'s.
    pub fn resume(checkpoint: Checkpoint, engine: &Engine) -> Result<Self, LiveError> {
        Ok(match engine {
            Engine::Gpu(_, device) => LiveRun::Gpu(Box::new(LiveTraining::resume(checkpoint, device)?)),
            Engine::Cpu(_) => LiveRun::Cpu(Box::new(LiveTraining::resume(checkpoint, &Default::default())?)),
        })
    }

    pub fn add(&mut self, bytes: &[u8], class: usize) -> Result<usize, LiveError> {
        on_either!(self, run => run.add(bytes, class))
    }

    pub async fn step(&mut self) -> Result<Option<Progress>, LiveError> {
        on_either!(self, run => run.step().await)
    }

    pub async fn checkpoint(&self) -> Result<Option<Checkpoint>, LiveError> {
        on_either!(self, run => run.checkpoint().await)
    }

    pub async fn filters(&self) -> Result<Picture, LiveError> {
        on_either!(self, run => run.filters().await)
    }

    pub async fn weights(&self) -> Result<Vec<u8>, LiveError> {
        on_either!(self, run => run.weights().await)
    }
}
