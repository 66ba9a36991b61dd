//! Choosing among the backends compiled in: CUDA and wgpu behind features, the CPU (Flex) always.

use anyhow::{anyhow, Result};
use burn::backend::Autodiff;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// NVIDIA GPU through Burn's CUDA backend (feature `cuda`).
    Cuda,
    /// Vulkan/Metal/DX12 GPU through Burn's wgpu backend (feature `wgpu`).
    Wgpu,
    /// The CPU, through Burn's Flex backend.
    Cpu,
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendKind::Cuda => "cuda",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Cpu => "cpu",
        })
    }
}

/// The backends this binary was built with, fastest first.
pub fn compiled() -> Vec<BackendKind> {
    let mut kinds = Vec::new();
    if cfg!(feature = "cuda") {
        kinds.push(BackendKind::Cuda);
    }
    if cfg!(feature = "wgpu") {
        kinds.push(BackendKind::Wgpu);
    }
    kinds.push(BackendKind::Cpu);
    kinds
}

/// Work that runs on whichever backend is chosen at run time.
pub trait Job {
    type Output;
    fn run<B: AutodiffBackend>(self, device: B::Device, kind: BackendKind) -> Result<Self::Output>;
}

/// Runs `job` on `kind`, or on the fastest compiled backend that works when `kind` is `None`.
pub fn run<J: Job>(kind: Option<BackendKind>, job: J) -> Result<J::Output> {
    let kinds = compiled();
    let kind = match kind {
        Some(kind) if !kinds.contains(&kind) => {
            return Err(anyhow!(
                "this trainer was built without the {kind} backend (available: {}; rebuild with \
                 `--features {kind}`)",
                list(&kinds)
            ))
        }
        Some(kind) => kind,
        None => kinds
            .iter()
            .copied()
            .find(|&k| k == BackendKind::Cpu || usable(k).is_ok())
            .unwrap_or(BackendKind::Cpu),
    };
    if let Err(reason) = usable(kind) {
        let others: Vec<BackendKind> = kinds.iter().copied().filter(|&k| k != kind).collect();
        return Err(anyhow!(
            "the {kind} backend cannot start: {reason}. Available instead: {} (`--backend {}`)",
            list(&others),
            others.last().copied().unwrap_or(BackendKind::Cpu)
        ));
    }
    match kind {
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => job.run::<Autodiff<burn::backend::Cuda>>(Default::default(), kind),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => job.run::<Autodiff<burn::backend::Wgpu>>(Default::default(), kind),
        _ => job.run::<Autodiff<burn::backend::Flex>>(Default::default(), kind),
    }
}

fn list(kinds: &[BackendKind]) -> String {
    kinds.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(", ")
}

/// Starts the backend with a tiny computation; GPU runtimes panic when no device is present, so
/// the panic is caught and turned into a reason.
fn usable(kind: BackendKind) -> Result<(), String> {
    match kind {
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => probe::<burn::backend::Cuda>(),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => probe::<burn::backend::Wgpu>(),
        BackendKind::Cpu => Ok(()),
        #[allow(unreachable_patterns)]
        _ => Err("not compiled in".into()),
    }
}

#[allow(dead_code)]
fn probe<B: Backend>() -> Result<(), String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(|| {
        let device = B::Device::default();
        Tensor::<B, 1>::ones([4], &device).sum().into_scalar()
    });
    std::panic::set_hook(hook);
    result.map(|_| ()).map_err(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown error".into());
        let first_line = message.lines().next().unwrap_or("").trim().to_string();
        format!("no usable device ({first_line})")
    })
}
