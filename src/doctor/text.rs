//! The doctor's report as the lines a person reads.

use super::{Cpu, Cuda, Libtorch, LoadedLibrary, Report};
use crate::memory::format_size;
use std::fmt::{self, Formatter, Result};

fn or_unknown(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "unknown".into())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut Formatter<'_>) -> Result {
        writeln!(f, "spidernet {}", self.spidernet)?;
        libtorch(f, &self.libtorch)?;
        cuda(f, &self.cuda)?;
        cpu(f, &self.cpu)?;
        libraries(f, &self.libraries)
    }
}

fn libtorch(f: &mut Formatter<'_>, torch: &Libtorch) -> Result {
    let built = if torch.built_with_cuda {
        format!(
            "built with CUDA {} and cuDNN {}",
            or_unknown(&torch.build_cuda_version),
            or_unknown(&torch.build_cudnn_version)
        )
    } else {
        "built without CUDA".into()
    };
    writeln!(f, "libtorch   {} ({built})", or_unknown(&torch.version))?;
    writeln!(
        f,
        "           binary built against {}, {} libtorch_cuda",
        torch.build_library_folder,
        if torch.binary_links_cuda_backend {
            "linking"
        } else {
            "without"
        }
    )
}

fn cuda(f: &mut Formatter<'_>, cuda: &Cuda) -> Result {
    let backend = if cuda.backend_loaded {
        format!(
            "backend loaded (CUDA runtime {}, cuDNN {})",
            or_unknown(&cuda.runtime_version),
            cuda.cudnn_version.as_deref().unwrap_or("not available")
        )
    } else {
        "backend not loaded".into()
    };
    writeln!(f, "CUDA       {backend}")?;
    match (&cuda.driver_cuda_version, &cuda.driver_error) {
        (Some(version), _) => writeln!(f, "           driver supports CUDA {version}")?,
        (None, Some(error)) => writeln!(f, "           {error}")?,
        (None, None) => {}
    }
    writeln!(f, "           {} device(s) seen by libtorch", cuda.device_count)?;
    for device in &cuda.devices {
        writeln!(
            f,
            "           cuda:{}  {}, {}, compute capability {}",
            device.index,
            device.name,
            format_size(device.memory_bytes),
            device.compute_capability
        )?;
    }
    match &cuda.problem {
        None => writeln!(f, "           --device cuda: ready"),
        Some(problem) => writeln!(f, "           --device cuda: not usable: {problem}"),
    }
}

fn cpu(f: &mut Formatter<'_>, cpu: &Cpu) -> Result {
    writeln!(f, "CPU        {}, {} logical CPUs", cpu.model, cpu.logical_cpus)?;
    writeln!(
        f,
        "           libtorch threads {} (inter-op {}){}",
        cpu.threads,
        cpu.interop_threads,
        cpu.omp_num_threads
            .as_ref()
            .map(|n| format!(", OMP_NUM_THREADS={n}"))
            .unwrap_or_default()
    )?;
    writeln!(
        f,
        "           ATen kernels {}; vector extensions: {}",
        cpu.aten_capability,
        if cpu.vector_extensions.is_empty() {
            "none detected".to_string()
        } else {
            cpu.vector_extensions.join(" ")
        }
    )?;
    let yes_no = |on: bool| if on { "yes" } else { "no" };
    writeln!(
        f,
        "           oneDNN {}, MKL {}, OpenMP {}",
        yes_no(cpu.onednn),
        yes_no(cpu.mkl),
        yes_no(cpu.openmp)
    )
}

fn libraries(f: &mut Formatter<'_>, libraries: &[LoadedLibrary]) -> Result {
    let width = libraries.iter().map(|l| l.name.len()).max().unwrap_or(0);
    for (i, library) in libraries.iter().enumerate() {
        let label = if i == 0 { "libraries" } else { "" };
        writeln!(f, "{label:<10} {:<width$}  {}", library.name, library.path)?;
    }
    Ok(())
}
