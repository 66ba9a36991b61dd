//! Settings and checks for Burn's GPU backends (CubeCL: CUDA, wgpu).

use std::path::PathBuf;

use burn::cubecl::config::cache::CacheConfig;
use burn::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};

/// Where CubeCL keeps its autotune results and compiled kernels, so that the next run (a resumed
/// one, an `eval` after `train`) starts with tuned kernels: `$ALEXNET_GPU_CACHE`, else
/// `$XDG_CACHE_HOME/alexnet-burn/cubecl`, else `~/.cache/alexnet-burn/cubecl`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ALEXNET_GPU_CACHE") {
        return dir.into();
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("alexnet-burn").join("cubecl")
}

/// Sets CubeCL's configuration before the first GPU call: autotune results and compiled kernels
/// cached in [`cache_dir`] (CubeCL's default, the `target/` of the nearest Cargo project, is
/// wrong for an installed binary and for a copy of the trainer on a rented machine).
///
/// The autotune level stays CubeCL's `balanced` unless `CUBECL_AUTOTUNE_LEVEL` says otherwise:
/// tuning times each candidate kernel once per shape and the cache keeps the winners, so it is
/// paid once per machine (see docs/benchmarks-history.md for what it costs on a software GPU).
/// A `cubecl.toml` in the working directory still wins for everything it sets.
pub fn configure() {
    let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
    let dir = cache_dir();
    if matches!(config.autotune.cache, CacheConfig::Target) {
        config.autotune.cache = CacheConfig::File(dir.join("autotune"));
    }
    if config.compilation.cache.is_none() {
        config.compilation.cache = Some(CacheConfig::File(dir.join("kernels")));
    }
    // Set only once per process (a second `set` panics); later calls keep the first.
    let storage = CubeClRuntimeConfig::storage();
    let mut state = storage.lock();
    if state.is_none() {
        *state = Some(std::sync::Arc::new(config));
    }
}

/// The most bytes one buffer binding may hold on `device` (CubeCL's largest memory page, which
/// is the adapter's `max_storage_buffer_binding_size` on wgpu).
pub fn max_tensor_bytes<R: burn::cubecl::Runtime>(device: &R::Device) -> u64 {
    R::client(device).properties().memory.max_page_size
}

/// Runs `start` with its panics caught and kept quiet (GPU runtimes panic when no device, driver
/// or compiler is there): the first line of the message becomes the error.
fn catching<T>(start: impl FnOnce() -> T + std::panic::UnwindSafe) -> Result<T, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(start);
    std::panic::set_hook(hook);
    result.map_err(|panic| {
        let message = crate::panics::panic_message(panic.as_ref());
        format!("no usable device ({})", message.lines().next().unwrap_or("").trim())
    })
}

/// Starts CUDA's first device and runs one small computation on it (which compiles a kernel
/// with NVRTC: a missing or too new NVRTC fails here, not in the middle of training).
#[cfg(feature = "cuda")]
pub fn start_cuda() -> Result<burn::backend::cuda::CudaDevice, String> {
    use burn::tensor::Tensor;
    catching(|| {
        let device = burn::backend::cuda::CudaDevice::default();
        Tensor::<burn::backend::Cuda, 1>::ones([4], &device).sum().into_scalar();
        device
    })
}

/// A started wgpu device and the adapter behind it.
#[cfg(feature = "wgpu")]
pub struct WgpuStarted {
    pub device: burn::backend::wgpu::WgpuDevice,
    /// Name, kind and graphics API, e.g. `llvmpipe (LLVM 15.0.6, 256 bits) (Cpu, Vulkan)`.
    pub adapter: String,
    /// A GPU emulated on the CPU (Mesa's lavapipe, SwiftShader): correct, but slower than the
    /// CPU backend.
    pub software: bool,
}

/// Starts wgpu on the adapter it prefers, with that adapter's own limits (not WebGPU's
/// defaults: fc6's f32 weight is 151 MB, over the default 128 MiB binding), and runs one small
/// computation on it.
#[cfg(feature = "wgpu")]
pub fn start_wgpu() -> Result<WgpuStarted, String> {
    use burn::backend::wgpu::{graphics::AutoGraphicsApi, init_setup, RuntimeOptions, WgpuDevice};
    use burn::tensor::Tensor;
    catching(|| {
        let device = WgpuDevice::default();
        let setup = init_setup::<AutoGraphicsApi>(&device, RuntimeOptions::default());
        let info = setup.adapter.get_info();
        Tensor::<burn::backend::Wgpu, 1>::ones([4], &device).sum().into_scalar();
        WgpuStarted {
            device,
            adapter: format!("{} ({:?}, {:?})", info.name, info.device_type, info.backend),
            software: info.device_type == wgpu::DeviceType::Cpu,
        }
    })
}
