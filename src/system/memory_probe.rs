//! Measures the real peak memory of training steps, to check the analytic estimate against it.

use crate::system::native::{self, CudaPeak};
use anyhow::Context;
use tch::Device;

/// A value from /proc/self/status in bytes (`VmRSS`, `VmHWM`, …).
fn status_bytes(field: &str) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string("/proc/self/status").context("cannot read /proc/self/status")?;
    let line = text
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("/proc/self/status has no {field}"))?;
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("cannot parse {line}"))?;
    Ok(kib * 1024)
}

/// A window over which the process's peak resident memory is measured (Linux `/proc`).
pub struct PeakRss {
    baseline: u64,
}

/// What a [`PeakRss`] window saw.
#[derive(Clone, Copy, Debug)]
pub struct PeakReading {
    /// The highest resident memory of the process inside the window.
    pub peak: u64,
    /// `peak` minus the resident memory when the window opened.
    pub added: u64,
}

impl PeakRss {
    /// Opens a window: records the current RSS and resets the kernel's peak (VmHWM) to it.
    pub fn start() -> anyhow::Result<Self> {
        let baseline = status_bytes("VmRSS:")?;
        // Writing 5 to clear_refs resets the peak (VmHWM) to the current RSS.
        std::fs::write("/proc/self/clear_refs", "5").context("cannot reset the peak RSS via /proc/self/clear_refs")?;
        Ok(Self { baseline })
    }

    /// The resident memory when the window opened.
    pub fn baseline(&self) -> u64 {
        self.baseline
    }

    /// Closes the window and reads the peak.
    pub fn finish(self) -> anyhow::Result<PeakReading> {
        let peak = status_bytes("VmHWM:")?;
        Ok(PeakReading {
            peak,
            added: peak.saturating_sub(self.baseline),
        })
    }
}

/// A window over which both the process's peak RSS and, on CUDA, the peak of libtorch's caching allocator on the
/// device are measured.
pub struct MemoryWindow {
    device: Device,
    rss: Option<PeakRss>,
    cuda: Option<usize>,
}

/// What a [`MemoryWindow`] saw; each part is None where it could not be measured.
#[derive(Clone, Copy, Debug)]
pub struct MemoryReading {
    /// The device the window watched.
    pub device: Device,
    /// Resident memory of the process (Linux only).
    pub rss: Option<PeakReading>,
    /// Device memory of libtorch's CUDA allocator (CUDA runs only).
    pub cuda: Option<CudaPeak>,
}

impl MemoryWindow {
    /// Opens a window: resets the kernel's RSS peak and, on a CUDA device, the allocator's peak statistics.
    pub fn start(device: Device) -> Self {
        let cuda = match device {
            Device::Cuda(index) => native::reset_cuda_peak(index).ok().map(|()| index),
            _ => None,
        };
        MemoryWindow {
            device,
            rss: PeakRss::start().ok(),
            cuda,
        }
    }

    /// Closes the window and reads both peaks.
    pub fn finish(self) -> MemoryReading {
        if let Some(index) = self.cuda {
            tch::Cuda::synchronize(index as i64);
        }
        MemoryReading {
            device: self.device,
            rss: self.rss.and_then(|window| window.finish().ok()),
            cuda: self.cuda.and_then(|index| native::cuda_peak(index).ok()),
        }
    }
}
