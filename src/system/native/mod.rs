//! Safe wrappers over `torch_probe.cpp`: what libtorch reports about its build and its CUDA backend, and the peak
//! memory of its CUDA caching allocator; and over `sgd_step.cpp`, the SGD step with libtorch's arithmetic. These
//! are the libtorch calls tch does not offer.

use std::ffi::{CStr, c_char};

unsafe extern "C" {
    fn spidernet_torch_config(error: *mut *mut c_char) -> *mut c_char;
    fn spidernet_torch_cpu_capability(error: *mut *mut c_char) -> *mut c_char;
    fn spidernet_torch_has_cuda_backend() -> bool;
    fn spidernet_torch_cuda_runtime_version(error: *mut *mut c_char) -> i64;
    fn spidernet_torch_cudnn_version(error: *mut *mut c_char) -> i64;
    fn spidernet_torch_cuda_peak(index: i8, allocated: *mut i64, reserved: *mut i64, error: *mut *mut c_char) -> bool;
    fn spidernet_torch_cuda_reset_peak(index: i8, error: *mut *mut c_char) -> bool;
    fn spidernet_sgd_step(
        params: *const *mut std::ffi::c_void,
        buffers: *const *mut std::ffi::c_void,
        started: *mut bool,
        count: usize,
        lr: f64,
        momentum: f64,
        weight_decay: f64,
        nesterov: bool,
    ) -> std::ffi::c_long;
    fn spidernet_clear_grads(tensors: *const *mut std::ffi::c_void, count: usize);
    fn spidernet_zero_missing_grads(tensors: *const *mut std::ffi::c_void, count: usize) -> std::ffi::c_long;
}

/// Takes ownership of a string the probe allocated with malloc.
fn take(text: *mut c_char) -> Option<String> {
    if text.is_null() {
        return None;
    }
    // SAFETY: the probe returns NUL-terminated strings from malloc, each handed over exactly once.
    let owned = unsafe { CStr::from_ptr(text) }.to_string_lossy().into_owned();
    unsafe { libc::free(text.cast()) };
    Some(owned)
}

/// Calls a probe function that reports failure through an error string, and turns that into a `Result`.
fn call<T>(body: impl FnOnce(*mut *mut c_char) -> T) -> Result<T, String> {
    let mut error: *mut c_char = std::ptr::null_mut();
    let value = body(&mut error);
    match take(error) {
        Some(message) => Err(message),
        None => Ok(value),
    }
}

/// libtorch's own build report (`at::show_config`, the text of `torch.__config__.show()`).
pub fn torch_config() -> Result<String, String> {
    // SAFETY: the probe catches every C++ exception and returns a malloc'd string or null.
    call(|error| take(unsafe { spidernet_torch_config(error) }))?.ok_or_else(|| "out of memory".to_string())
}

/// The CPU kernel set ATen dispatches to here: `DEFAULT`, `AVX2`, `AVX512`, … (`torch.backends.cpu`).
pub fn cpu_capability() -> Result<String, String> {
    // SAFETY: as for `torch_config`.
    call(|error| take(unsafe { spidernet_torch_cpu_capability(error) }))?.ok_or_else(|| "out of memory".to_string())
}

/// Whether libtorch's CUDA backend is loaded and registered in this process (the libraries may be linked and the
/// machine still have no GPU: see `Cuda::device_count` for devices).
pub fn has_cuda_backend() -> bool {
    // SAFETY: no arguments; the probe catches every exception.
    unsafe { spidernet_torch_has_cuda_backend() }
}

/// The CUDA runtime version libtorch's CUDA backend was built with (e.g. 13000 for 13.0), when it is loaded.
pub fn cuda_runtime_version() -> Option<i64> {
    // SAFETY: the probe catches every exception and reports it through `error`.
    call(|error| unsafe { spidernet_torch_cuda_runtime_version(error) })
        .ok()
        .filter(|v| *v > 0)
}

/// The cuDNN version libtorch uses, when its CUDA backend and cuDNN are there.
pub fn cudnn_version() -> Option<i64> {
    // SAFETY: as for `cuda_runtime_version`.
    call(|error| unsafe { spidernet_torch_cudnn_version(error) })
        .ok()
        .filter(|v| *v > 0)
}

/// Peak bytes of libtorch's CUDA caching allocator on one device since its last reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CudaPeak {
    /// The most bytes held by live tensors at once.
    pub allocated: u64,
    /// The most bytes the allocator held from the driver at once (live tensors plus its cache).
    pub reserved: u64,
}

/// The peaks of CUDA device `index` since the last [`reset_cuda_peak`] (or since start).
pub fn cuda_peak(index: usize) -> Result<CudaPeak, String> {
    let index = device_index(index)?;
    let (mut allocated, mut reserved) = (0i64, 0i64);
    // SAFETY: the out-pointers live across the call; the probe catches every exception.
    let ok = call(|error| unsafe { spidernet_torch_cuda_peak(index, &mut allocated, &mut reserved, error) })?;
    if !ok {
        return Err("the CUDA allocator gave no statistics".into());
    }
    Ok(CudaPeak {
        allocated: allocated.max(0) as u64,
        reserved: reserved.max(0) as u64,
    })
}

/// Starts a new peak window on CUDA device `index`.
pub fn reset_cuda_peak(index: usize) -> Result<(), String> {
    let index = device_index(index)?;
    // SAFETY: the probe catches every exception and reports it through `error`.
    call(|error| unsafe { spidernet_torch_cuda_reset_peak(index, error) }).map(|_| ())
}

fn device_index(index: usize) -> Result<i8, String> {
    i8::try_from(index).map_err(|_| format!("CUDA device index {index} is out of range"))
}

/// The settings of one SGD update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdSettings {
    /// Learning rate.
    pub lr: f64,
    /// Momentum μ.
    pub momentum: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// Nesterov momentum: the step uses d + μ·buffer instead of the buffer.
    pub nesterov: bool,
}

/// One SGD step over `params`, with libtorch's arithmetic: for each tensor that has a gradient, d = g + wd·p;
/// its buffer ← d on its first update (`started` false, then set), else μ·buffer + d; p ← p − lr·buffer (with Nesterov, p ← p − lr·(d + μ·buffer)). Every
/// buffer must have its tensor's shape; tensors beyond the shortest of the three slices are left alone. Returns the index of a tensor libtorch refused, if any.
pub fn sgd_step(
    params: &[tch::Tensor],
    buffers: &[tch::Tensor],
    started: &mut [bool],
    settings: SgdSettings,
) -> Option<usize> {
    let count = params.len().min(buffers.len()).min(started.len());
    let handles = |tensors: &[tch::Tensor]| -> Vec<*mut std::ffi::c_void> {
        tensors.iter().map(|t| t.as_ptr() as *mut std::ffi::c_void).collect()
    };
    let (params_ptr, buffers_ptr) = (handles(params), handles(buffers));
    // SAFETY: tch tensors are `at::Tensor*` handles that outlive the call, the three arrays have at least `count`
    // entries,
    // and the step changes only the tensors' data, catching every C++ exception.
    let refused = unsafe {
        spidernet_sgd_step(
            params_ptr.as_ptr(),
            buffers_ptr.as_ptr(),
            started.as_mut_ptr(),
            count,
            settings.lr,
            settings.momentum,
            settings.weight_decay,
            settings.nesterov,
        )
    };
    usize::try_from(refused).ok()
}

/// Drops the gradients of `tensors`, as libtorch's `zero_grad` does.
pub fn clear_grads(tensors: &[tch::Tensor]) {
    let handles: Vec<*mut std::ffi::c_void> = tensors.iter().map(|t| t.as_ptr() as *mut std::ffi::c_void).collect();
    // SAFETY: as for `sgd_step`; resetting a gradient leaves the handle itself untouched.
    unsafe { spidernet_clear_grads(handles.as_ptr(), handles.len()) }
}

/// Gives each of `tensors` that has no gradient a zero gradient of its shape.
pub fn zero_missing_grads(tensors: &[tch::Tensor]) -> anyhow::Result<()> {
    let handles: Vec<*mut std::ffi::c_void> = tensors.iter().map(|t| t.as_ptr() as *mut std::ffi::c_void).collect();
    // SAFETY: as for `sgd_step`; the native side catches every exception and reports the tensor's index.
    let refused = unsafe { spidernet_zero_missing_grads(handles.as_ptr(), handles.len()) };
    anyhow::ensure!(refused < 0, "libtorch could not give tensor {refused} a zero gradient");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_report_names_the_libtorch_version_tch_was_built_for() {
        let config = torch_config().expect("show_config works without a GPU");
        assert!(config.contains("TORCH_VERSION=2.11.0"), "{config}");
        let capability = cpu_capability().unwrap();
        assert!(
            ["DEFAULT", "AVX2", "AVX512", "ZVECTOR", "VSX", "SVE256"].contains(&capability.as_str()),
            "{capability}"
        );
    }

    #[test]
    fn cuda_queries_answer_without_a_gpu_instead_of_throwing() {
        if std::path::Path::new("/dev/nvidiactl").exists() {
            eprintln!("skipped: an NVIDIA driver is present, so the no-GPU answers cannot be checked here");
            return;
        }
        // With the backend loaded (PyPI's libtorch) the build versions are known; without it there are none.
        assert_eq!(cuda_runtime_version().is_some(), has_cuda_backend());
        let peak = cuda_peak(0);
        assert!(peak.is_err(), "no device, yet a peak: {peak:?}");
        assert!(reset_cuda_peak(0).is_err());
        assert!(cuda_peak(300).unwrap_err().contains("out of range"));
    }
}
