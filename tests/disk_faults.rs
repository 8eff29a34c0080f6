//! A disk that fails under a search: the run folder turned read-only mid-run (docs/SEARCH.md, *Full or read-only
//! disks*). The folder lives on a tmpfs this test mounts, which needs root; elsewhere it says that it skipped.

mod common;

use common::{scratch, turn};
use spidernet::genotype::Genotype;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` on a fresh folder; None, with a message, where this process may not mount.
    fn mount(name: &str, size: &str) -> Option<Tmpfs> {
        let path = scratch(name);
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if mounted {
            return Some(Tmpfs { path });
        }
        // SAFETY: geteuid(2) only reads the process's credentials.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED {name}: mounting a tmpfs needs root");
            return None;
        }
        panic!("cannot mount a tmpfs on {} although running as root", path.display());
    }

    /// Remounts it `ro` or `rw`, retrying while a write under way keeps it busy.
    fn remount(&self, mode: &str) {
        let start = Instant::now();
        loop {
            let status = Command::new("mount")
                .args(["-o", &format!("remount,{mode}")])
                .arg(&self.path)
                .stderr(Stdio::null())
                .status()
                .unwrap();
            if status.success() {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "cannot remount {} {mode}",
                self.path.display()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn search(out: &Path) -> Command {
    let settings = "--strategy random --reductions 1 --channels 4 --iterations 6 --epochs-per-iteration 1 --search-samples 600 --no-final --seed 5";
    let mut command = Command::new(env!("CARGO_BIN_EXE_spidernet"));
    command
        .args(["search", "--out"])
        .arg(out)
        .args(settings.split(' '))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

fn history_lines(root: &Path) -> usize {
    std::fs::read_to_string(root.join("history.jsonl")).map_or(0, |text| text.lines().count())
}

/// Every temporary file of an atomic write in `root` and its `checkpoint/`.
fn temporaries(root: &Path) -> Vec<String> {
    [root.to_path_buf(), root.join("checkpoint")]
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).unwrap())
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".tmp-"))
        .collect()
}

#[test]
fn a_run_folder_turned_read_only_mid_search_fails_naming_the_file_and_resumes_once_writable() {
    let _turn = turn();
    let Some(disk) = Tmpfs::mount("read-only-disk", "64m") else {
        return;
    };
    let whole = scratch("read-only-whole");
    assert!(search(&whole).status().unwrap().success());

    let run = disk.path.join("run");
    let mut child = search(&run).stderr(Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    // Records 0 (the pass before training) and 1 are written: the run is in its second iteration.
    while history_lines(&run) < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the run did not reach its second iteration"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before its second iteration"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    disk.remount("ro");
    let state = std::fs::read(run.join("checkpoint/state.json")).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let error = stderr
        .lines()
        .find(|line| line.starts_with("error: "))
        .unwrap_or_default();
    assert!(
        error.contains(&format!("cannot write {}", run.display())) && error.contains("Read-only file system"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(run.join("checkpoint/state.json")).unwrap(),
        state,
        "the checkpoint changed"
    );
    assert!(temporaries(&run).is_empty(), "{:?}", temporaries(&run));
    assert!(
        history_lines(&run) < history_lines(&whole),
        "the run finished before the disk turned read-only"
    );

    disk.remount("rw");
    let resumed = Command::new(env!("CARGO_BIN_EXE_spidernet"))
        .args(["search", "--resume"])
        .arg(&run)
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    let genotype = |root: &Path| Genotype::load(&root.join("genotype.json")).unwrap();
    assert_eq!(genotype(&run), genotype(&whole));
    assert_eq!(history_lines(&run), history_lines(&whole));
    let _ = std::fs::remove_dir_all(&whole);
}
