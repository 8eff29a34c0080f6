//! The NVIDIA driver, asked directly through its C API (`libcuda.so.1`, loaded at run time): its version and each
//! device's name, memory and compute capability. libtorch counts devices but does not name them; the driver API is
//! stable across driver releases, so the few calls needed here are declared by hand rather than through a binding
//! crate built for one CUDA version.

use serde::Serialize;
use std::ffi::{CStr, c_char, c_int, c_void};

/// The driver library every NVIDIA driver install provides.
const DRIVER_LIBRARY: &CStr = c"libcuda.so.1";
const CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: c_int = 75;
const CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: c_int = 76;
const CUDA_ERROR_NO_DEVICE: c_int = 100;

/// One device as the driver reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DriverDevice {
    /// Driver ordinal (the index `--device cuda` and libtorch use, unless CUDA_VISIBLE_DEVICES reorders them).
    pub index: usize,
    /// Marketing name, e.g. "NVIDIA H200".
    pub name: String,
    /// Total device memory in bytes.
    pub memory_bytes: u64,
    /// Compute capability as "major.minor", e.g. "9.0".
    pub compute_capability: String,
}

/// What the driver reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Driver {
    /// The CUDA version the driver supports, e.g. "13.0".
    pub cuda_version: String,
    /// The devices this process may use.
    pub devices: Vec<DriverDevice>,
}

type CuResult = c_int;

struct Api {
    init: unsafe extern "C" fn(u32) -> CuResult,
    driver_get_version: unsafe extern "C" fn(*mut c_int) -> CuResult,
    device_get_count: unsafe extern "C" fn(*mut c_int) -> CuResult,
    device_get: unsafe extern "C" fn(*mut c_int, c_int) -> CuResult,
    device_get_name: unsafe extern "C" fn(*mut c_char, c_int, c_int) -> CuResult,
    device_total_mem: unsafe extern "C" fn(*mut usize, c_int) -> CuResult,
    device_get_attribute: unsafe extern "C" fn(*mut c_int, c_int, c_int) -> CuResult,
}

/// Looks up one symbol of the opened driver library.
///
/// # Safety
/// `F` must be the function-pointer type of the C function named `name`.
unsafe fn symbol<F: Copy>(library: *mut c_void, name: &CStr) -> Result<F, String> {
    // SAFETY: `library` is a live handle from dlopen and `name` is NUL-terminated.
    let address = unsafe { libc::dlsym(library, name.as_ptr()) };
    if address.is_null() {
        return Err(format!(
            "{} has no {}",
            DRIVER_LIBRARY.to_string_lossy(),
            name.to_string_lossy()
        ));
    }
    // SAFETY: the caller names the symbol's true type; a function pointer has the size of a data pointer here.
    Ok(unsafe { std::mem::transmute_copy::<*mut c_void, F>(&address) })
}

impl Api {
    fn load() -> Result<Self, String> {
        // SAFETY: dlopen with a constant name; the handle is kept for the life of the process (never closed), so
        // the function pointers below stay valid.
        let library = unsafe { libc::dlopen(DRIVER_LIBRARY.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if library.is_null() {
            return Err(format!("no NVIDIA driver ({})", dl_error()));
        }
        // SAFETY: each type below is the documented signature of the driver API function it names.
        unsafe {
            Ok(Api {
                init: symbol(library, c"cuInit")?,
                driver_get_version: symbol(library, c"cuDriverGetVersion")?,
                device_get_count: symbol(library, c"cuDeviceGetCount")?,
                device_get: symbol(library, c"cuDeviceGet")?,
                device_get_name: symbol(library, c"cuDeviceGetName")?,
                device_total_mem: symbol(library, c"cuDeviceTotalMem_v2")?,
                device_get_attribute: symbol(library, c"cuDeviceGetAttribute")?,
            })
        }
    }
}

fn dl_error() -> String {
    // SAFETY: dlerror returns null or a NUL-terminated message owned by libc.
    let message = unsafe { libc::dlerror() };
    if message.is_null() {
        "unknown error".into()
    } else {
        unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned()
    }
}

fn check(call: &str, result: CuResult) -> Result<(), String> {
    match result {
        0 => Ok(()),
        code => Err(format!("{call} failed with CUDA driver error {code}")),
    }
}

impl Driver {
    /// Asks the driver for its version and devices. An error says why there is no usable driver.
    pub fn probe() -> Result<Driver, String> {
        let api = Api::load()?;
        let mut version = 0;
        // SAFETY: every pointer passed below points at a live local of the type the driver writes.
        unsafe {
            check("cuDriverGetVersion", (api.driver_get_version)(&mut version))?;
            let cuda_version = format!("{}.{}", version / 1000, version % 1000 / 10);
            match (api.init)(0) {
                0 => {}
                CUDA_ERROR_NO_DEVICE => {
                    return Ok(Driver {
                        cuda_version,
                        devices: Vec::new(),
                    });
                }
                code => return Err(format!("cuInit failed with CUDA driver error {code}")),
            }
            let mut count = 0;
            check("cuDeviceGetCount", (api.device_get_count)(&mut count))?;
            let mut devices = Vec::new();
            for ordinal in 0..count {
                let mut device = 0;
                check("cuDeviceGet", (api.device_get)(&mut device, ordinal))?;
                let mut name = [0 as c_char; 256];
                check(
                    "cuDeviceGetName",
                    (api.device_get_name)(name.as_mut_ptr(), name.len() as c_int, device),
                )?;
                let mut memory = 0usize;
                check("cuDeviceTotalMem", (api.device_total_mem)(&mut memory, device))?;
                let (mut major, mut minor) = (0, 0);
                check(
                    "cuDeviceGetAttribute",
                    (api.device_get_attribute)(&mut major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device),
                )?;
                check(
                    "cuDeviceGetAttribute",
                    (api.device_get_attribute)(&mut minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device),
                )?;
                devices.push(DriverDevice {
                    index: ordinal as usize,
                    name: CStr::from_ptr(name.as_ptr()).to_string_lossy().into_owned(),
                    memory_bytes: memory as u64,
                    compute_capability: format!("{major}.{minor}"),
                });
            }
            Ok(Driver { cuda_version, devices })
        }
    }
}
