// What libtorch knows about itself and its devices, as plain C functions for `src/system/native/mod.rs`.
// Every function catches libtorch's exceptions: a missing CUDA backend is an answer here, never a crash.
// Strings are returned from malloc and freed by the caller with free().

#include <ATen/Context.h>
#include <ATen/Version.h>
#include <c10/core/CachingDeviceAllocator.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

namespace {

char* copy(const std::string& text) {
  char* out = static_cast<char*>(std::malloc(text.size() + 1));
  if (out != nullptr) {
    std::memcpy(out, text.c_str(), text.size() + 1);
  }
  return out;
}

// Runs `body`; on an exception, stores its message in *error (when given) and returns `fallback`.
template <typename T, typename Body>
T guarded(char** error, T fallback, Body body) {
  try {
    return body();
  } catch (const std::exception& e) {
    if (error != nullptr) *error = copy(e.what());
  } catch (...) {
    if (error != nullptr) *error = copy("unknown C++ exception");
  }
  return fallback;
}

}  // namespace

extern "C" {

// libtorch's build report (at::show_config): version, compiler, BLAS, build settings, and the CUDA runtime and
// cuDNN lines when the CUDA backend is loaded.
char* spidernet_torch_config(char** error) {
  return guarded<char*>(error, nullptr, [] { return copy(at::show_config()); });
}

// The CPU kernel set ATen dispatches to on this machine (e.g. "AVX2", "AVX512", "DEFAULT").
char* spidernet_torch_cpu_capability(char** error) {
  return guarded<char*>(error, nullptr, [] { return copy(at::get_cpu_capability()); });
}

// True when libtorch's CUDA backend (libtorch_cuda) is loaded and has registered itself.
bool spidernet_torch_has_cuda_backend() {
  return guarded<bool>(nullptr, false, [] { return at::globalContext().hasCUDART(); });
}

// The CUDA runtime version libtorch was built against (e.g. 12080), or -1 without the CUDA backend.
int64_t spidernet_torch_cuda_runtime_version(char** error) {
  return guarded<int64_t>(error, -1, [] { return static_cast<int64_t>(at::globalContext().versionCUDART()); });
}

// The cuDNN version libtorch uses (e.g. 91002), or -1 without it.
int64_t spidernet_torch_cudnn_version(char** error) {
  return guarded<int64_t>(error, -1, [] {
    if (!at::globalContext().hasCuDNN()) return static_cast<int64_t>(-1);
    return static_cast<int64_t>(at::globalContext().versionCuDNN());
  });
}

// Peak bytes allocated and reserved by libtorch's caching allocator on CUDA device `index` since the last reset.
// Returns false (and sets *error) when the CUDA allocator is not there.
bool spidernet_torch_cuda_peak(int8_t index, int64_t* allocated, int64_t* reserved, char** error) {
  return guarded<bool>(error, false, [&] {
    auto* allocator = c10::getDeviceAllocator(c10::DeviceType::CUDA);
    auto stats = allocator->getDeviceStats(index);
    const auto all = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
    *allocated = stats.allocated_bytes[all].peak;
    *reserved = stats.reserved_bytes[all].peak;
    return true;
  });
}

// Starts a new peak window on CUDA device `index`. Returns false (and sets *error) without the CUDA allocator.
bool spidernet_torch_cuda_reset_peak(int8_t index, char** error) {
  return guarded<bool>(error, false, [&] {
    c10::getDeviceAllocator(c10::DeviceType::CUDA)->resetPeakStats(index);
    return true;
  });
}

}  // extern "C"
