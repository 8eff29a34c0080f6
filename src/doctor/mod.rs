//! `spidernet doctor`: what this binary runs on. The libtorch build and where it was loaded from, its CUDA backend,
//! the NVIDIA driver and devices, the CPU and its threads; and the one rule for whether `--device cuda` can work.

mod driver;
mod libraries;
mod text;

pub use driver::{Driver, DriverDevice};
pub use libraries::{LoadedLibrary, watched_in_maps};

use crate::system::native;
use serde::Serialize;

/// Everything `spidernet doctor` reports.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The spidernet version.
    pub spidernet: String,
    /// The libtorch build.
    pub libtorch: Libtorch,
    /// libtorch's CUDA backend, the driver and the devices.
    pub cuda: Cuda,
    /// The CPU and the threads libtorch uses.
    pub cpu: Cpu,
    /// The libtorch, CUDA and OpenMP libraries loaded, with their paths.
    pub libraries: Vec<LoadedLibrary>,
}

/// The libtorch build, from libtorch's own report (`at::show_config`).
#[derive(Clone, Debug, Serialize)]
pub struct Libtorch {
    /// TORCH_VERSION of the loaded library, e.g. "2.11.0".
    pub version: Option<String>,
    /// Whether the loaded libtorch was built with CUDA (USE_CUDA=ON).
    pub built_with_cuda: bool,
    /// CUDA version it was built for (CUDA_VERSION), if any.
    pub build_cuda_version: Option<String>,
    /// cuDNN version it was built for (CUDNN_VERSION), if any.
    pub build_cudnn_version: Option<String>,
    /// Whether this binary was linked against libtorch's CUDA backend (the libtorch folder had it at build time).
    pub binary_links_cuda_backend: bool,
    /// The libtorch library folder this binary was built against (its rpath).
    pub build_library_folder: String,
    /// libtorch's whole build report.
    pub config: String,
}

/// libtorch's CUDA backend, the NVIDIA driver and the devices.
#[derive(Clone, Debug, Serialize)]
pub struct Cuda {
    /// Whether libtorch's CUDA backend is loaded and registered in this process.
    pub backend_loaded: bool,
    /// CUDA runtime version of the backend, e.g. "13.0".
    pub runtime_version: Option<String>,
    /// cuDNN version the backend uses, e.g. "9.19.0".
    pub cudnn_version: Option<String>,
    /// The CUDA version the NVIDIA driver supports, when a driver is there.
    pub driver_cuda_version: Option<String>,
    /// Why the driver could not be asked, when it could not.
    pub driver_error: Option<String>,
    /// Devices libtorch sees.
    pub device_count: usize,
    /// The devices, as the driver names them.
    pub devices: Vec<DriverDevice>,
    /// Why `--device cuda` cannot work here; None when it can.
    pub problem: Option<String>,
}

/// The CPU and libtorch's use of it.
#[derive(Clone, Debug, Serialize)]
pub struct Cpu {
    /// Model name from /proc/cpuinfo.
    pub model: String,
    /// Logical CPUs this process may run on.
    pub logical_cpus: usize,
    /// libtorch's intra-op threads.
    pub threads: i32,
    /// libtorch's inter-op threads.
    pub interop_threads: i32,
    /// OMP_NUM_THREADS, when set.
    pub omp_num_threads: Option<String>,
    /// The kernel set ATen dispatches to: DEFAULT, AVX2, AVX512, …
    pub aten_capability: String,
    /// Vector extensions the CPU has (x86-64: sse4.2 … avx512bf16).
    pub vector_extensions: Vec<String>,
    /// Whether libtorch has oneDNN (MKL-DNN), which the channels-last CPU kernels come from.
    pub onednn: bool,
    /// Whether libtorch has MKL.
    pub mkl: bool,
    /// Whether libtorch has OpenMP.
    pub openmp: bool,
}

/// Gathers the report. The driver is asked before libtorch counts devices, so that a machine without one gets a
/// reason instead of libtorch's start-up warning.
pub fn report() -> Report {
    let config = native::torch_config().unwrap_or_else(|error| format!("(libtorch's build report failed: {error})"));
    let settings = build_settings(&config);
    let setting = |key: &str| settings.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let libtorch = Libtorch {
        version: setting("TORCH_VERSION"),
        built_with_cuda: setting("USE_CUDA").is_some_and(|v| v == "ON" || v == "1"),
        build_cuda_version: setting("CUDA_VERSION"),
        build_cudnn_version: setting("CUDNN_VERSION"),
        binary_links_cuda_backend: env!("SPIDERNET_LINKED_CUDA_BACKEND") == "yes",
        build_library_folder: env!("SPIDERNET_LIBTORCH_LIB").to_string(),
        config,
    };
    let cuda = cuda(&libtorch);
    Report {
        spidernet: env!("CARGO_PKG_VERSION").to_string(),
        libtorch,
        cuda,
        cpu: cpu(),
        libraries: libraries::loaded().unwrap_or_default(),
    }
}

fn cuda(libtorch: &Libtorch) -> Cuda {
    let backend_loaded = native::has_cuda_backend();
    let driver = Driver::probe();
    let device_count = match &driver {
        Ok(driver) if backend_loaded && !driver.devices.is_empty() => tch::Cuda::device_count().max(0) as usize,
        _ => 0,
    };
    let mut cuda = Cuda {
        backend_loaded,
        runtime_version: native::cuda_runtime_version().map(|v| format!("{}.{}", v / 1000, v % 1000 / 10)),
        cudnn_version: native::cudnn_version().map(cudnn_version_text),
        driver_cuda_version: driver.as_ref().ok().map(|d| d.cuda_version.clone()),
        driver_error: driver.as_ref().err().cloned(),
        device_count,
        devices: driver.map(|d| d.devices).unwrap_or_default(),
        problem: None,
    };
    cuda.problem = cuda_problem(libtorch, &cuda);
    cuda
}

/// Why `--device cuda` cannot work, from the first missing link in the chain: a CUDA build of libtorch, its backend
/// linked into this binary and loaded, a driver, a device. None when every link holds.
pub fn cuda_problem(libtorch: &Libtorch, cuda: &Cuda) -> Option<String> {
    if !libtorch.built_with_cuda {
        return Some(format!(
            "the libtorch in {} was built without CUDA; run on a CUDA build of libtorch 2.11.0 (PyPI's torch wheel)",
            libtorch.build_library_folder
        ));
    }
    if !libtorch.binary_links_cuda_backend {
        return Some(format!(
            "this binary was built against {}, which has no libtorch_cuda.so, so it cannot load libtorch's CUDA \
             backend; rebuild it against a CUDA build of libtorch",
            libtorch.build_library_folder
        ));
    }
    if !cuda.backend_loaded {
        return Some(
            "libtorch's CUDA backend (libtorch_cuda.so) did not load, so libtorch registered no CUDA support".into(),
        );
    }
    if let Some(error) = &cuda.driver_error {
        return Some(error.clone());
    }
    if cuda.devices.is_empty() {
        return Some("the NVIDIA driver reports no CUDA device (check CUDA_VISIBLE_DEVICES)".into());
    }
    if cuda.device_count == 0 {
        return Some(format!(
            "the driver sees {} device(s) but libtorch sees none: its CUDA {} runtime may need a newer driver than \
             this one (CUDA {})",
            cuda.devices.len(),
            cuda.runtime_version.as_deref().unwrap_or("?"),
            cuda.driver_cuda_version.as_deref().unwrap_or("?"),
        ));
    }
    None
}

impl Report {
    /// The CUDA device `--device cuda` selects, or an error saying why CUDA cannot work here.
    pub fn cuda_device(&self) -> anyhow::Result<tch::Device> {
        match &self.cuda.problem {
            None => Ok(tch::Device::Cuda(0)),
            Some(problem) => anyhow::bail!("--device cuda cannot work here: {problem}"),
        }
    }
}

/// The CUDA device `--device cuda` selects, or an error saying why there is none (pointing to `spidernet doctor`).
pub fn cuda_device() -> anyhow::Result<tch::Device> {
    report()
        .cuda_device()
        .map_err(|error| anyhow::anyhow!("{error} (details: spidernet doctor)"))
}

/// The `KEY=VALUE` pairs of the "Build settings:" line of libtorch's build report.
pub fn build_settings(config: &str) -> Vec<(String, String)> {
    let Some(line) = config
        .lines()
        .find_map(|line| line.trim().strip_prefix("- Build settings:"))
    else {
        return Vec::new();
    };
    line.split(", ")
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.trim().to_string(), value.trim().trim_end_matches(',').to_string()))
        .collect()
}

/// cuDNN's version number (major·10000 + minor·100 + patch since cuDNN 9, major·1000 + … before) as text.
fn cudnn_version_text(version: i64) -> String {
    if version >= 90000 {
        format!("{}.{}.{}", version / 10000, version % 10000 / 100, version % 100)
    } else {
        format!("{}.{}.{}", version / 1000, version % 1000 / 100, version % 100)
    }
}

fn cpu() -> Cpu {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name").and_then(|rest| rest.split_once(':')))
                .map(|(_, name)| name.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    Cpu {
        model,
        logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        threads: tch::get_num_threads(),
        interop_threads: tch::get_num_interop_threads(),
        omp_num_threads: std::env::var("OMP_NUM_THREADS").ok(),
        aten_capability: native::cpu_capability().unwrap_or_else(|error| format!("unknown ({error})")),
        vector_extensions: vector_extensions(),
        onednn: tch::utils::has_mkldnn(),
        mkl: tch::utils::has_mkl(),
        openmp: tch::utils::has_openmp(),
    }
}

#[cfg(target_arch = "x86_64")]
fn vector_extensions() -> Vec<String> {
    let mut found = Vec::new();
    macro_rules! check {
        ($($feature:tt),*) => {$(
            if std::arch::is_x86_feature_detected!($feature) {
                found.push($feature.to_string());
            }
        )*};
    }
    check!(
        "sse4.2",
        "avx",
        "avx2",
        "fma",
        "f16c",
        "avx512f",
        "avx512bw",
        "avx512vl",
        "avx512vnni",
        "avx512bf16"
    );
    found
}

#[cfg(target_arch = "aarch64")]
fn vector_extensions() -> Vec<String> {
    let mut found = Vec::new();
    if std::arch::is_aarch64_feature_detected!("neon") {
        found.push("neon".to_string());
    }
    if std::arch::is_aarch64_feature_detected!("sve") {
        found.push("sve".to_string());
    }
    found
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn vector_extensions() -> Vec<String> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "PyTorch built with:\n  - GCC 13.3\n  - CPU capability usage: AVX512\n  - Build settings: \
        BLAS_INFO=mkl, CUDA_VERSION=13.0, CUDNN_VERSION=9.19.0, CXX_FLAGS= -O2 -fPIC, TORCH_VERSION=2.11.0, \
        USE_CUDA=ON, USE_ROCM=OFF, \n";

    #[test]
    fn build_settings_are_read_from_the_report_line() {
        let settings = build_settings(CONFIG);
        let get = |key: &str| settings.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        assert_eq!(get("TORCH_VERSION"), Some("2.11.0"));
        assert_eq!(get("USE_CUDA"), Some("ON"));
        assert_eq!(get("CXX_FLAGS"), Some("-O2 -fPIC"));
        assert_eq!(get("USE_ROCM"), Some("OFF"));
        assert!(build_settings("PyTorch built with:\n  - GCC 13.3\n").is_empty());
    }

    #[test]
    fn cudnn_versions_of_both_numbering_schemes() {
        assert_eq!(cudnn_version_text(91900), "9.19.0");
        assert_eq!(cudnn_version_text(8902), "8.9.2");
    }

    fn usable() -> (Libtorch, Cuda) {
        let libtorch = Libtorch {
            version: Some("2.11.0".into()),
            built_with_cuda: true,
            build_cuda_version: Some("13.0".into()),
            build_cudnn_version: None,
            binary_links_cuda_backend: true,
            build_library_folder: "/opt/libtorch/lib".into(),
            config: String::new(),
        };
        let cuda = Cuda {
            backend_loaded: true,
            runtime_version: Some("13.0".into()),
            cudnn_version: None,
            driver_cuda_version: Some("13.0".into()),
            driver_error: None,
            device_count: 1,
            devices: vec![DriverDevice {
                index: 0,
                name: "NVIDIA H200".into(),
                memory_bytes: 150 << 30,
                compute_capability: "9.0".into(),
            }],
            problem: None,
        };
        (libtorch, cuda)
    }

    #[test]
    fn the_first_broken_link_is_the_reason_cuda_cannot_work() {
        let (libtorch, cuda) = usable();
        assert_eq!(cuda_problem(&libtorch, &cuda), None);
        let broken = |edit: &dyn Fn(&mut Libtorch, &mut Cuda)| {
            let (mut libtorch, mut cuda) = usable();
            edit(&mut libtorch, &mut cuda);
            cuda_problem(&libtorch, &cuda).expect("a broken link is reported")
        };
        assert!(broken(&|l, _| l.built_with_cuda = false).contains("built without CUDA"));
        assert!(
            broken(&|l, c| {
                l.binary_links_cuda_backend = false;
                c.backend_loaded = false;
            })
            .contains("has no libtorch_cuda.so")
        );
        assert!(broken(&|_, c| c.backend_loaded = false).contains("did not load"));
        assert!(broken(&|_, c| c.driver_error = Some("no NVIDIA driver: x".into())).contains("no NVIDIA driver"));
        assert!(broken(&|_, c| c.devices.clear()).contains("no CUDA device"));
        assert!(broken(&|_, c| c.device_count = 0).contains("libtorch sees none"));
    }
}
