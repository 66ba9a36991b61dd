//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// Burn's fastest CPU backend here: Flex runs AlexNet's forward pass ~7x faster than NdArray
/// (`cargo run --release --example cpu_backends`).
pub type TestBackend = burn::backend::Flex;

pub fn device() -> burn::backend::flex::FlexDevice {
    Default::default()
}

/// The shared data folder: `$ALEXNET_DATA`, or `../shared/data` beside the repository.
pub fn data_dir() -> PathBuf {
    let dir = std::env::var_os("ALEXNET_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
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
