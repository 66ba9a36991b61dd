//! The native trainer's building blocks (the `trainer` binary is a thin CLI over them).

pub mod augment;
pub mod backend;
pub mod bench;
pub mod cache;
pub mod calibrate;
pub mod checkpoint;
pub mod cli;
pub mod dashboard;
pub mod data;
pub mod eval;
#[cfg(any(feature = "cuda", feature = "wgpu"))]
pub mod gpu;
pub mod memory;
pub mod metrics;
pub mod peers;
pub mod precision;
pub mod ranks;
pub mod schedule;
pub mod sgd;
pub mod train;
