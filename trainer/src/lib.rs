//! The native trainer's building blocks (the `trainer` binary is a thin CLI over them).

pub mod augment;
pub mod backend;
pub mod bench;
pub mod dashboard;
pub mod data;
pub mod eval;
pub mod schedule;
pub mod train;
