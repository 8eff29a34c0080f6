//! Links libtorch the way the binaries need it at run time:
//! - embeds the libtorch library folder as an rpath, so that binaries and tests run without LD_LIBRARY_PATH;
//! - links libtorch's CUDA backend (`libtorch_cuda.so`, `libc10_cuda.so`) whenever the folder has it, with
//!   `--no-as-needed`: nothing calls into it directly, so the linker would drop it, and without it loaded libtorch
//!   never registers CUDA and `--device cuda` sees no device on any machine;
//! - compiles `src/system/native/torch_probe.cpp`, the few libtorch queries that `spidernet doctor` needs and tch lacks, and
//!   `src/system/native/sgd_step.cpp`, the SGD update with libtorch's arithmetic (`optim`);
//! - with the `distributed` feature, compiles `src/distributed/native/c10d_shim.cpp`, the C API over c10d's TCPStore
//!   and ProcessGroupGloo, against gloo's headers from `GLOO_INCLUDE` (set by `.cargo/config.toml`).

use std::path::{Path, PathBuf};

/// The CUDA backend's libraries, in the order they must be linked.
const CUDA_BACKEND: [&str; 2] = ["torch_cuda", "c10_cuda"];

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=GLOO_INCLUDE");
    println!("cargo:rerun-if-changed=src/distributed/native/c10d_shim.cpp");
    println!("cargo:rerun-if-changed=src/system/native/torch_probe.cpp");
    println!("cargo:rerun-if-changed=src/system/native/sgd_step.cpp");
    let Some(libtorch) = std::env::var_os("LIBTORCH") else {
        panic!("LIBTORCH is not set: run scripts/setup.sh first, which points .libtorch at libtorch 2.11.0");
    };
    let root = PathBuf::from(libtorch);
    // The canonical path keeps working if the checkout's .libtorch link is later replaced.
    let lib = root.join("lib");
    let lib = lib.canonicalize().unwrap_or(lib);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rustc-link-search=native={}", lib.display());

    let cuda = has_cuda_backend(&lib);
    if cuda {
        let names: Vec<String> = CUDA_BACKEND.iter().map(|name| format!("-l{name}")).collect();
        println!(
            "cargo:rustc-link-arg=-Wl,--no-as-needed,{},--as-needed",
            names.join(",")
        );
    }
    // Read by `doctor`, which says whether this build carries the CUDA backend.
    println!(
        "cargo:rustc-env=SPIDERNET_LINKED_CUDA_BACKEND={}",
        if cuda { "yes" } else { "no" }
    );
    println!("cargo:rustc-env=SPIDERNET_LIBTORCH_LIB={}", lib.display());

    compile_probe(&root);
    if std::env::var_os("CARGO_FEATURE_DISTRIBUTED").is_some() {
        compile_c10d_shim(&root);
    }
    println!("cargo:rustc-link-lib=dylib=torch_cpu");
    println!("cargo:rustc-link-lib=dylib=c10");
}

/// Whether the libtorch folder holds the CUDA backend (PyPI's Linux wheels do; CPU-only builds do not).
fn has_cuda_backend(lib: &Path) -> bool {
    CUDA_BACKEND
        .iter()
        .all(|name| lib.join(format!("lib{name}.so")).exists())
}

/// Compiles the C++ probe against libtorch's headers, with libtorch's own ABI settings.
fn compile_probe(root: &Path) {
    let include = root.join("include");
    if !include.join("ATen").join("Version.h").exists() {
        panic!(
            "{} has no ATen/Version.h: LIBTORCH must be a libtorch folder (run scripts/setup.sh)",
            include.display()
        );
    }
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .file("src/system/native/torch_probe.cpp")
        .file("src/system/native/sgd_step.cpp")
        .compile("spidernet_torch_probe");
}

/// Compiles the c10d shim; libtorch holds gloo's code, so nothing more is linked.
fn compile_c10d_shim(root: &Path) {
    let gloo = std::env::var_os("GLOO_INCLUDE").map(PathBuf::from).unwrap_or_default();
    if !gloo.join("gloo").join("algorithm.h").exists() {
        panic!(
            "GLOO_INCLUDE ({}) holds no gloo/algorithm.h: run scripts/setup.sh, which unpacks gloo's headers, or \
             build with --no-default-features for a single-process build",
            gloo.display()
        );
    }
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .include(&gloo)
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .define("USE_C10D_GLOO", None)
        .file("src/distributed/native/c10d_shim.cpp")
        .compile("spidernet_c10d_shim");
}
