//! The native trainer's building blocks (the `trainer` binary is a thin CLI over them).

pub mod backend;
pub mod bench;
pub mod cache;
pub mod calibrate;
pub mod checkpoint;
pub mod cli;
pub mod dashboard;
pub mod data;
pub mod eval;
pub mod filters;
#[cfg(any(feature = "cuda", feature = "wgpu"))]
pub mod gpu;
pub mod memory;
pub mod metrics;
pub mod options;
pub mod panics;
pub mod parallel;
pub mod peers;
pub mod ranks;
pub mod teach;
pub mod train;
