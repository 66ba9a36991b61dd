//! Choosing among the backends compiled in: CUDA and wgpu behind features, the CPU (Flex) always.

use alexnet::AlexNet;
use anyhow::{anyhow, Result};
use burn::backend::Autodiff;
use burn::tensor::backend::{AutodiffBackend, Backend};

#[cfg(any(feature = "cuda", feature = "wgpu"))]
use crate::gpu;

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

/// The backend a command runs on, and the device's limit on one buffer.
#[derive(Debug, Clone, Copy)]
pub struct BackendInUse {
    pub kind: BackendKind,
    /// The most bytes one tensor may occupy (a GPU's storage-binding limit: 128 MiB on Mesa's
    /// lavapipe; `None` on the CPU).
    pub max_tensor_bytes: Option<u64>,
}

impl BackendInUse {
    /// The CPU (Flex): no limit on one tensor.
    pub fn cpu() -> Self {
        Self { kind: BackendKind::Cpu, max_tensor_bytes: None }
    }

    /// Refuses a model with a tensor larger than the device can bind, before any of it is
    /// allocated: the GPU runtime would otherwise fail on a thread of its own. Works on a freshly
    /// built (lazily initialised) model.
    pub fn check_fits<B: Backend>(&self, model: &AlexNet<B>) -> Result<()> {
        let Some(limit) = self.max_tensor_bytes else { return Ok(()) };
        let (name, elements) = model.largest_parameter();
        let bytes = elements as u64 * 4;
        if bytes > limit {
            return Err(anyhow!(
                "this model's {name} ({:.1} MB as f32) is larger than the {} device can hold in one \
                 buffer ({:.1} MB): use a narrower model (--width) or --backend cpu",
                bytes as f64 / 1e6,
                self.kind,
                limit as f64 / 1e6
            ));
        }
        Ok(())
    }
}

/// Work that runs on whichever backend is chosen at run time.
pub trait RunsOnBackend {
    type Output;
    fn run<B: AutodiffBackend>(self, device: B::Device, backend: BackendInUse) -> Result<Self::Output>;
}

/// A backend whose device has started.
enum Opened {
    #[cfg(feature = "cuda")]
    Cuda(burn::backend::cuda::CudaDevice),
    #[cfg(feature = "wgpu")]
    Wgpu(gpu::WgpuStarted),
    Cpu,
}

/// Runs `job` on `kind`; with `None`, on the fastest compiled backend whose device starts (a
/// software GPU, such as Mesa's lavapipe, is slower than the CPU backend and is only used when
/// asked for by name).
pub fn run<J: RunsOnBackend>(kind: Option<BackendKind>, job: J) -> Result<J::Output> {
    #[cfg(any(feature = "cuda", feature = "wgpu"))]
    gpu::configure();
    let kinds = compiled();
    let opened = match kind {
        Some(kind) if !kinds.contains(&kind) => {
            return Err(anyhow!(
                "this trainer was built without the {kind} backend (available: {}; rebuild with \
                 `--features {kind}`)",
                list(&kinds)
            ))
        }
        Some(kind) => open(kind).map_err(|reason| {
            let others: Vec<BackendKind> = kinds.iter().copied().filter(|&k| k != kind).collect();
            anyhow!(
                "the {kind} backend cannot start: {reason}. Available instead: {} (`--backend {}`)",
                list(&others),
                others.last().copied().unwrap_or(BackendKind::Cpu)
            )
        })?,
        None => kinds
            .iter()
            .find_map(|&k| open(k).ok().filter(|opened| !opened.is_software()))
            .unwrap_or(Opened::Cpu),
    };
    match opened {
        #[cfg(feature = "cuda")]
        Opened::Cuda(device) => {
            let limit = gpu::max_tensor_bytes::<burn::cubecl::cuda::CudaRuntime>(&device);
            let in_use = BackendInUse { kind: BackendKind::Cuda, max_tensor_bytes: Some(limit) };
            job.run::<Autodiff<burn::backend::Cuda>>(device, in_use)
        }
        #[cfg(feature = "wgpu")]
        Opened::Wgpu(started) => {
            eprintln!("wgpu adapter: {}", started.adapter);
            let limit = gpu::max_tensor_bytes::<burn::backend::wgpu::WgpuRuntime>(&started.device);
            let in_use = BackendInUse { kind: BackendKind::Wgpu, max_tensor_bytes: Some(limit) };
            job.run::<Autodiff<burn::backend::Wgpu>>(started.device, in_use)
        }
        Opened::Cpu => job.run::<Autodiff<burn::backend::Flex>>(Default::default(), BackendInUse::cpu()),
    }
}

impl Opened {
    fn is_software(&self) -> bool {
        match self {
            #[cfg(feature = "wgpu")]
            Opened::Wgpu(started) => started.software,
            _ => false,
        }
    }
}

fn open(kind: BackendKind) -> Result<Opened, String> {
    match kind {
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => gpu::start_cuda().map(Opened::Cuda),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => gpu::start_wgpu().map(Opened::Wgpu),
        BackendKind::Cpu => Ok(Opened::Cpu),
        #[allow(unreachable_patterns)]
        _ => Err("not compiled in".into()),
    }
}

fn list(kinds: &[BackendKind]) -> String {
    kinds.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(", ")
}
