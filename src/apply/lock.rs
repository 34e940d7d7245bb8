//! One apply at a time per organization on a machine: an advisory lock on a file named
//! after the organization, which the operating system releases when the process ends, so a
//! crashed apply never leaves a stale lock behind.

use std::fs::{File, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another apply against {org} holds its lock ({}){}", path.display(), holder.as_deref().map(|h| format!(": {h}")).unwrap_or_default()
    )]
    Busy {
        org: String,
        path: PathBuf,
        holder: Option<String>,
    },
    #[error("cannot lock {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Held for the whole apply; dropping it releases the lock.
#[derive(Debug)]
pub struct OrgLock {
    _file: File,
    pub path: PathBuf,
}

/// Where the lock for the organization `identity` lives: one directory for the machine, so
/// applies from different checkouts see each other.
pub fn lock_path(dir: &Path, identity: &str) -> PathBuf {
    let digest = Sha256::digest(identity.as_bytes());
    let name: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    dir.join(format!("{name}.lock"))
}

/// The machine-wide directory of apply locks.
pub fn default_dir() -> PathBuf {
    std::env::temp_dir().join("tramontane-locks")
}

/// Takes the lock of `org` (shown) identified by `identity`, waiting up to `timeout`;
/// `waiting` is called once if the lock is busy, to say so.
pub fn acquire(
    dir: &Path,
    org: &str,
    identity: &str,
    timeout: Duration,
    waiting: impl FnOnce(&Path, Option<&str>),
) -> Result<OrgLock, LockError> {
    let path = lock_path(dir, identity);
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    let started = Instant::now();
    let mut waiting = Some(waiting);
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path)
                    .ok()
                    .map(|text| text.trim().to_owned())
                    .filter(|text| !text.is_empty());
                if started.elapsed() >= timeout {
                    return Err(LockError::Busy {
                        org: org.to_owned(),
                        path,
                        holder,
                    });
                }
                if let Some(say) = waiting.take() {
                    say(&path, holder.as_deref());
                }
                std::thread::sleep(Duration::from_millis(100).min(timeout));
            }
            Err(TryLockError::Error(source)) => return Err(io(source)),
        }
    }
    // Who holds it, for the message another apply prints while it waits.
    let holder = format!(
        "pid {} since {}",
        std::process::id(),
        crate::plan::timestamp(jiff::Timestamp::now())
    );
    file.set_len(0).map_err(io)?;
    file.write_all(holder.as_bytes()).map_err(io)?;
    Ok(OrgLock { _file: file, path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_waits_then_fails_and_succeeds_once_released() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path(), "sandbox:a", "a", Duration::ZERO, |_, _| {}).unwrap();
        let mut said = None;
        let busy = acquire(
            dir.path(),
            "sandbox:a",
            "a",
            Duration::from_millis(250),
            |_, holder| said = holder.map(str::to_owned),
        )
        .unwrap_err();
        assert!(said.unwrap().starts_with("pid "));
        assert!(
            busy.to_string()
                .starts_with("another apply against sandbox:a holds its lock")
        );
        // Another organization is not blocked.
        acquire(dir.path(), "sandbox:b", "b", Duration::ZERO, |_, _| {}).unwrap();
        drop(first);
        acquire(dir.path(), "sandbox:a", "a", Duration::ZERO, |_, _| {}).unwrap();
    }
}
