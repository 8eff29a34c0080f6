//! Which libtorch, CUDA and OpenMP libraries this process has loaded, and from where (Linux `/proc/self/maps`).

use serde::Serialize;

/// File-name prefixes of the libraries worth naming: libtorch's own, its CUDA backend and the CUDA libraries it
/// pulls in, the NVIDIA driver, and the OpenMP runtime that sets the CPU threads.
const WATCHED: [&str; 11] = [
    "libtorch",
    "libc10",
    "libcudart",
    "libcudnn",
    "libcublas",
    "libcuda.so",
    "libnvrtc",
    "libnccl",
    "libgomp",
    "libiomp",
    "libomp",
];

/// One loaded library.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LoadedLibrary {
    /// File name, e.g. `libtorch_cuda.so`.
    pub name: String,
    /// Full path it was mapped from.
    pub path: String,
}

/// The watched libraries mapped into this process, each once, in the order of `WATCHED` and then by name.
pub fn loaded() -> Result<Vec<LoadedLibrary>, String> {
    let maps = std::fs::read_to_string("/proc/self/maps").map_err(|e| format!("cannot read /proc/self/maps: {e}"))?;
    let mut found = watched_in_maps(&maps);
    let rank = |name: &str| {
        WATCHED
            .iter()
            .position(|prefix| name.starts_with(prefix))
            .unwrap_or(WATCHED.len())
    };
    found.sort_by(|a, b| (rank(&a.name), &a.name).cmp(&(rank(&b.name), &b.name)));
    Ok(found)
}

/// The watched libraries in the text of a `/proc/<pid>/maps` file, each once, in the order they appear.
pub fn watched_in_maps(maps: &str) -> Vec<LoadedLibrary> {
    let mut found: Vec<LoadedLibrary> = Vec::new();
    for line in maps.lines() {
        // Fields: address, permissions, offset, device, inode, then the path (which may contain spaces).
        let Some(path) = line.splitn(6, char::is_whitespace).nth(5).map(str::trim) else {
            continue;
        };
        if !path.starts_with('/') {
            continue;
        }
        let name = path.rsplit('/').next().unwrap_or(path);
        let watched = WATCHED.iter().any(|prefix| name.starts_with(prefix)) && name.contains(".so");
        if watched && !found.iter().any(|library| library.path == path) {
            found.push(LoadedLibrary {
                name: name.to_string(),
                path: path.to_string(),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_give_each_watched_library_once() {
        let maps = "\
7f00-7f10 r--p 00000000 08:01 123   /opt/torch/lib/libtorch_cpu.so
7f10-7f20 r-xp 00010000 08:01 123   /opt/torch/lib/libtorch_cpu.so
7f20-7f30 r--p 00000000 08:01 124   /opt/my libs/libc10_cuda.so
7f30-7f40 r--p 00000000 08:01 125   /usr/lib/x86_64-linux-gnu/libm.so.6
7f40-7f50 r--p 00000000 08:01 126   /usr/lib/x86_64-linux-gnu/libcuda.so.550.54
7f50-7f60 rw-p 00000000 00:00 0     [heap]
7f60-7f70 rw-p 00000000 00:00 0
";
        let names: Vec<_> = watched_in_maps(maps).into_iter().map(|l| (l.name, l.path)).collect();
        assert_eq!(
            names,
            [
                ("libtorch_cpu.so".into(), "/opt/torch/lib/libtorch_cpu.so".into()),
                ("libc10_cuda.so".into(), "/opt/my libs/libc10_cuda.so".into()),
                (
                    "libcuda.so.550.54".into(),
                    "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54".into()
                ),
            ]
        );
    }

    #[test]
    fn this_process_has_libtorch_cpu_loaded() {
        let loaded = loaded().unwrap();
        assert!(loaded.iter().any(|l| l.name == "libtorch_cpu.so"), "{loaded:?}");
    }
}
