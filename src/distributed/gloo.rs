//! The safe side of `native/c10d_shim.cpp`: a c10d Gloo process group joined through a TCPStore. Built only with
//! the `distributed` feature.

use super::Reduction;
use super::launch::Launch;
use std::ffi::{CStr, CString, c_char, c_void};
use tch::Tensor;

unsafe extern "C" {
    fn spidernet_group_gloo(
        host: *const c_char,
        port: u16,
        rank: i32,
        world: i32,
        host_store: bool,
        prefix: *const c_char,
        interfaces: *const c_char,
        timeout_ms: i64,
        error: *mut *mut c_char,
    ) -> *mut c_void;
    fn spidernet_group_free(group: *mut c_void);
    fn spidernet_all_reduce(
        group: *mut c_void,
        tensors: *const *mut c_void,
        count: usize,
        op: i32,
        error: *mut *mut c_char,
    ) -> bool;
    fn spidernet_broadcast(
        group: *mut c_void,
        tensors: *const *mut c_void,
        count: usize,
        root: i32,
        error: *mut *mut c_char,
    ) -> bool;
    fn spidernet_all_gather(
        group: *mut c_void,
        input: *mut c_void,
        outputs: *const *mut c_void,
        world: usize,
        error: *mut *mut c_char,
    ) -> bool;
    fn spidernet_barrier(group: *mut c_void, error: *mut *mut c_char) -> bool;
}

/// A joined Gloo group; leaving it is dropping it.
pub struct GlooGroup {
    handle: *mut c_void,
}

// SAFETY: the group is used from one thread at a time (every method takes &self but the callers are sequential);
// c10d's ProcessGroupGloo is itself safe to call from any thread.
unsafe impl Send for GlooGroup {}

/// Calls the shim, turning its error string into an `Err`.
fn call(body: impl FnOnce(*mut *mut c_char) -> bool) -> Result<(), String> {
    let mut error: *mut c_char = std::ptr::null_mut();
    let ok = body(&mut error);
    if error.is_null() {
        return if ok {
            Ok(())
        } else {
            Err("the c10d call failed without a message".into())
        };
    }
    // SAFETY: the shim hands over a NUL-terminated malloc'd string, once.
    let message = unsafe { CStr::from_ptr(error) }.to_string_lossy().into_owned();
    unsafe { libc::free(error.cast()) };
    Err(message)
}

fn handles(tensors: &[Tensor]) -> Vec<*mut c_void> {
    tensors.iter().map(|t| t.as_ptr() as *mut c_void).collect()
}

fn c_string(text: &str) -> Result<CString, String> {
    CString::new(text).map_err(|_| format!("{text:?} holds a NUL byte"))
}

impl GlooGroup {
    /// Joins the group `launch` describes; fails after its timeout when the store or a peer cannot be reached.
    pub fn join(launch: &Launch) -> Result<Self, String> {
        let (host, prefix) = (c_string(&launch.master_addr)?, c_string(&launch.store_prefix())?);
        let interfaces = c_string(&launch.interfaces)?;
        let mut handle = std::ptr::null_mut();
        call(|error| {
            // SAFETY: every pointer is a live NUL-terminated string for the call; the shim catches all exceptions.
            handle = unsafe {
                spidernet_group_gloo(
                    host.as_ptr(),
                    launch.master_port,
                    launch.rank as i32,
                    launch.world as i32,
                    launch.hosts_store(),
                    prefix.as_ptr(),
                    interfaces.as_ptr(),
                    launch.timeout.as_millis().min(i64::MAX as u128) as i64,
                    error,
                )
            };
            !handle.is_null()
        })?;
        Ok(GlooGroup { handle })
    }

    /// Reduces each of `tensors` (contiguous, on the CPU) across the group, in place.
    pub fn all_reduce(&self, tensors: &[Tensor], reduction: Reduction) -> Result<(), String> {
        let list = handles(tensors);
        // SAFETY: tch tensors are `at::Tensor*` handles that outlive the call.
        call(|error| unsafe { spidernet_all_reduce(self.handle, list.as_ptr(), list.len(), reduction as i32, error) })
    }

    /// Overwrites each of `tensors` (contiguous, on the CPU) with `root`'s.
    pub fn broadcast(&self, tensors: &[Tensor], root: usize) -> Result<(), String> {
        let list = handles(tensors);
        // SAFETY: as for `all_reduce`.
        call(|error| unsafe { spidernet_broadcast(self.handle, list.as_ptr(), list.len(), root as i32, error) })
    }

    /// Gathers every rank's `input` into `outputs`, one tensor per rank shaped as `input`.
    pub fn all_gather(&self, input: &Tensor, outputs: &[Tensor]) -> Result<(), String> {
        let list = handles(outputs);
        // SAFETY: as for `all_reduce`.
        call(|error| unsafe {
            spidernet_all_gather(
                self.handle,
                input.as_ptr() as *mut c_void,
                list.as_ptr(),
                list.len(),
                error,
            )
        })
    }

    /// Returns when every rank has reached it.
    pub fn barrier(&self) -> Result<(), String> {
        // SAFETY: the handle is live.
        call(|error| unsafe { spidernet_barrier(self.handle, error) })
    }
}

impl Drop for GlooGroup {
    fn drop(&mut self) {
        // SAFETY: the handle came from `spidernet_group_gloo` and is freed once.
        unsafe { spidernet_group_free(self.handle) }
    }
}
