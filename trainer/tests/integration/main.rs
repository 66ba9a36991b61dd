//! The trainer's integration tests, in one binary: one link, and each backend's generic code
//! compiled once for all of them instead of once per file. The tests run one at a time
//! (.cargo/config.toml sets `RUST_TEST_THREADS=1`): several draw from Flex's random generator,
//! which is global to the process, and the training tests use both cores on their own.

#[path = "../../../tests/common/mod.rs"]
mod common;

mod cli;
#[cfg(feature = "mpi")]
mod mpi;
mod peers;
mod precision;
mod training;
#[cfg(feature = "wgpu")]
mod wgpu;
