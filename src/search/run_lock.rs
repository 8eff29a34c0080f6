//! One process per run folder (docs/SEARCH.md, *One run per folder*): an advisory lock on the folder's `.lock`
//! file, which names the holder's process id. The kernel drops the lock when its process ends, however it ends, so
//! a lock file left by a dead process never blocks anyone.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The lock file's name inside a run folder.
pub const LOCK_FILE: &str = ".lock";

/// A held lock on a run folder; dropping it releases the folder.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Why a run folder could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the folder.
    #[error(
        "{} is in use by process {holder} (its lock is {}); wait for that run to end, or stop it, and try again",
        folder.display(),
        lock.display()
    )]
    Held {
        folder: PathBuf,
        lock: PathBuf,
        holder: String,
    },
    /// The folder is not there.
    #[error("{} is not a folder", folder.display())]
    NoFolder { folder: PathBuf },
    /// The lock file could not be opened, locked or written.
    #[error("cannot lock {}: {source}", lock.display())]
    Io {
        lock: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl RunLock {
    /// Takes the lock of the existing folder `folder`, or refuses at once when another process holds it.
    pub fn acquire(folder: &Path) -> Result<RunLock, LockError> {
        if !folder.is_dir() {
            return Err(LockError::NoFolder {
                folder: folder.to_path_buf(),
            });
        }
        let lock = folder.join(LOCK_FILE);
        let io = |source| LockError::Io {
            lock: lock.clone(),
            source,
        };
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock)
            .map_err(io)?;
        // The lock is held on a read-only descriptor: a folder with no file open for writing between writes can
        // be remounted read-only, and `flock` needs no write access.
        let mut file = File::open(&lock).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    folder: folder.to_path_buf(),
                    lock: lock.clone(),
                    holder: holder(&mut file),
                });
            }
            Err(TryLockError::Error(source)) => return Err(io(source)),
        }
        // The file may still name a dead holder; it names this process from now on.
        let mut writer = OpenOptions::new().write(true).truncate(true).open(&lock).map_err(io)?;
        writer
            .write_all(format!("{}\n", std::process::id()).as_bytes())
            .and_then(|()| writer.sync_all())
            .map_err(io)?;
        Ok(RunLock { _file: file })
    }
}

/// The process id that a held lock file names ("unknown" while its holder has not written it yet).
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    match file.read_to_string(&mut text) {
        Ok(_) => match text.trim().parse::<u32>() {
            Ok(pid) => pid.to_string(),
            Err(_) => "unknown".to_string(),
        },
        Err(_) => "unknown".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("spidernet-lock-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_second_lock_on_a_held_folder_is_refused_with_the_holders_pid() {
        let dir = scratch("held");
        let first = RunLock::acquire(&dir).unwrap();
        let error = RunLock::acquire(&dir).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, LockError::Held { .. }), "{message}");
        assert!(message.contains(&dir.display().to_string()), "{message}");
        assert!(
            message.contains(&format!("process {}", std::process::id())),
            "{message}"
        );
        drop(first);
        RunLock::acquire(&dir).expect("a released folder can be locked again");
    }

    #[test]
    fn a_lock_file_left_by_a_dead_process_does_not_block() {
        let dir = scratch("stale");
        // What a killed holder leaves: the file with its pid, and no lock (the kernel dropped it).
        std::fs::write(dir.join(LOCK_FILE), "4194000\n").unwrap();
        let _lock = RunLock::acquire(&dir).expect("a stale lock file is taken over");
        let named = std::fs::read_to_string(dir.join(LOCK_FILE)).unwrap();
        assert_eq!(named.trim(), std::process::id().to_string());
    }

    #[test]
    fn a_missing_folder_is_named() {
        let dir = scratch("missing").join("not-there");
        let error = RunLock::acquire(&dir).unwrap_err();
        assert!(matches!(error, LockError::NoFolder { .. }));
        assert!(error.to_string().contains("not-there"));
    }
}
