//! The CUDA path without a GPU: the binaries link libtorch's CUDA backend, `doctor` reports it, and `--device cuda`
//! fails with a reason instead of a panic.

mod common;

use common::{scratch, skip};
use std::path::Path;
use std::process::{Command, Output};

/// The libtorch library folder the binaries were built against (set by build.rs).
const LIBTORCH_LIB: &str = env!("SPIDERNET_LIBTORCH_LIB");

fn spidernet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spidernet"))
        .args(args)
        .output()
        .unwrap()
}

fn folder_has_cuda_backend() -> bool {
    ["libtorch_cuda.so", "libc10_cuda.so"]
        .iter()
        .all(|name| Path::new(LIBTORCH_LIB).join(name).exists())
}

/// The NEEDED entries of an ELF file's dynamic section, by `readelf -d` (binutils, which the linker comes with).
fn needed(binary: &Path) -> Vec<String> {
    let output = Command::new("readelf")
        .arg("-d")
        .arg(binary)
        .output()
        .expect("readelf (binutils) must be installed to check the dynamic section");
    assert!(
        output.status.success(),
        "readelf -d {}: {}",
        binary.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.contains("(NEEDED)"))
        .filter_map(|line| Some(line.split_once('[')?.1.split_once(']')?.0.to_string()))
        .collect()
}

/// Whether this machine has an NVIDIA driver, in which case the no-GPU expectations below do not apply.
fn has_driver() -> bool {
    ["/dev/nvidiactl", "/proc/driver/nvidia/version"]
        .iter()
        .any(|p| Path::new(p).exists())
}

#[test]
fn the_release_binary_and_this_test_need_the_cuda_backend_when_libtorch_has_it() {
    let binary = Path::new(env!("CARGO_BIN_EXE_spidernet"));
    let libraries = needed(binary);
    assert!(libraries.iter().any(|l| l == "libtorch_cpu.so"), "{libraries:?}");
    let this_test = std::env::current_exe().unwrap();
    let ours = needed(&this_test);
    for library in ["libtorch_cuda.so", "libc10_cuda.so"] {
        let expected = folder_has_cuda_backend();
        assert_eq!(
            libraries.contains(&library.to_string()),
            expected,
            "{library} in {libraries:?} of {binary:?}"
        );
        assert_eq!(
            ours.contains(&library.to_string()),
            expected,
            "{library} in {ours:?} of this test"
        );
    }
    if !folder_has_cuda_backend() {
        skip(
            "the CUDA half",
            &format!("{LIBTORCH_LIB} is a CPU-only libtorch, so nothing links libtorch_cuda"),
        );
    }
}

#[test]
fn doctor_reports_cuda_built_in_and_no_device_here() {
    let output = spidernet(&["doctor", "--json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("doctor --json prints JSON");
    assert_eq!(report["libtorch"]["version"], "2.11.0");
    assert_eq!(
        report["libtorch"]["binary_links_cuda_backend"],
        folder_has_cuda_backend()
    );
    assert_eq!(report["libtorch"]["build_library_folder"], LIBTORCH_LIB);
    assert!(
        report["libtorch"]["config"]
            .as_str()
            .unwrap()
            .contains("PyTorch built with")
    );
    assert!(report["cpu"]["threads"].as_i64().unwrap() >= 1);
    let libraries = report["libraries"].as_array().unwrap();
    let path_of = |name: &str| {
        libraries
            .iter()
            .find(|l| l["name"] == name)
            .map(|l| l["path"].as_str().unwrap().to_string())
    };
    assert_eq!(
        path_of("libtorch_cpu.so"),
        Some(format!("{LIBTORCH_LIB}/libtorch_cpu.so")),
        "{libraries:?}"
    );
    if !folder_has_cuda_backend() {
        skip("doctor's CUDA half", &format!("{LIBTORCH_LIB} is a CPU-only libtorch"));
        return;
    }
    assert_eq!(report["libtorch"]["built_with_cuda"], true);
    assert_eq!(report["cuda"]["backend_loaded"], true, "{}", report["cuda"]);
    assert_eq!(
        path_of("libtorch_cuda.so"),
        Some(format!("{LIBTORCH_LIB}/libtorch_cuda.so"))
    );
    assert!(report["cuda"]["runtime_version"].is_string(), "{}", report["cuda"]);
    if has_driver() {
        skip("doctor's no-GPU half", "this machine has an NVIDIA driver");
        return;
    }
    assert_eq!(report["cuda"]["device_count"], 0);
    assert_eq!(report["cuda"]["devices"].as_array().map(Vec::len), Some(0));
    let problem = report["cuda"]["problem"]
        .as_str()
        .expect("a reason why CUDA cannot work");
    assert!(problem.contains("no NVIDIA driver"), "{problem}");

    let text = spidernet(&["doctor"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("libtorch   2.11.0 (built with CUDA"), "{text}");
    assert!(text.contains("--device cuda: not usable: no NVIDIA driver"), "{text}");
}

#[test]
fn device_cuda_without_a_gpu_is_a_clear_error_not_a_panic() {
    if has_driver() {
        skip(
            "device_cuda_without_a_gpu",
            "this machine has an NVIDIA driver, so --device cuda may work",
        );
        return;
    }
    let dir = scratch("doctor-cuda");
    let run = dir.join("run");
    let genotype = dir.join("genotype.json");
    let minimal = spidernet::genotype::Genotype::minimal(2, 16, spidernet::genotype::InputShape::new(1, 8, 8), 10);
    std::fs::write(&genotype, minimal.unwrap().to_json()).unwrap();
    let cases: [Vec<&str>; 4] = [
        vec!["doctor", "--device", "cuda"],
        vec!["search", "--device", "cuda", "--out", run.to_str().unwrap()],
        vec!["train", genotype.to_str().unwrap(), "--device", "cuda", "--epochs", "1"],
        vec!["bench", "--device", "cuda", "--workload", "a", "--quick"],
    ];
    for args in cases {
        let output = spidernet(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("error: --device cuda cannot work here: no NVIDIA driver"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    assert!(!run.exists(), "a refused search must leave no run folder");
    let _ = std::fs::remove_dir_all(&dir);
}
