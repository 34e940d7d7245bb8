//! One apply at a time per organization on a machine: an advisory lock on a file named
//! after the organization, which the operating system releases when the process ends, so a
//! crashed apply never leaves a stale lock behind.
//!
//! The lock lives in a directory of the current user's, checked before use (owned by this
//! user, writable by no one else, not a link), and the file is opened without following a
//! link: in a shared directory anyone could plant a link at the lock's path, and opening it
//! would truncate whatever the link points at.

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
    /// The lock directory or file is not safely this user's: using it could let another
    /// user hold off applies or turn the lock into a write to a file of their choosing.
    #[error(
        "refusing to lock with {}: {reason}; remove it (tramontane recreates it, private to this user) and run apply again",
        path.display()
    )]
    Unsafe { path: PathBuf, reason: String },
}

impl LockError {
    /// What to do, for the line under the error; `None` where the message already says.
    pub fn help(&self) -> Option<&'static str> {
        match self {
            LockError::Busy { .. } => {
                Some("wait for it to finish and run apply again, or pass --lock-timeout 5m to wait")
            }
            LockError::Io { .. } => Some(
                "check that the lock directory (TRAMONTANE_LOCK_DIR, else the user's runtime directory) can be written",
            ),
            LockError::Unsafe { .. } => None,
        }
    }
}

/// Held for the whole apply; dropping it releases the lock.
#[derive(Debug)]
pub struct OrgLock {
    _file: File,
    pub path: PathBuf,
}

/// Where the lock for the organization `identity` lives: one directory per user, so
/// applies from different checkouts see each other.
pub fn lock_path(dir: &Path, identity: &str) -> PathBuf {
    let digest = Sha256::digest(identity.as_bytes());
    let name: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    dir.join(format!("{name}.lock"))
}

/// The current user's directory of apply locks: `$XDG_RUNTIME_DIR/tramontane` (private to
/// the user by its specification), else `tramontane-<uid>` in the temporary directory.
pub fn default_dir() -> PathBuf {
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
    {
        return runtime.join("tramontane");
    }
    #[cfg(unix)]
    {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        std::env::temp_dir().join(format!("tramontane-{uid}"))
    }
    #[cfg(not(unix))]
    std::env::temp_dir().join("tramontane-locks")
}

/// What names an organization behind an Admin API URL, for its lock: two spellings of one
/// server take one lock. The scheme, the host lowercased (every loopback spelling, such as
/// `localhost`, `127.0.0.1` and `[::1]`, is one host), the effective port and the path
/// without trailing slashes; never the userinfo, query or fragment.
pub fn api_identity(api_url: &str) -> String {
    let Ok(url) = url::Url::parse(api_url.trim()) else {
        // Not a URL: opening the organization refuses it before anything is applied.
        return api_url.trim().trim_end_matches('/').to_owned();
    };
    let host = match url.host() {
        Some(url::Host::Domain(domain)) => {
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            if domain == "localhost" {
                "loopback".to_owned()
            } else {
                domain
            }
        }
        Some(url::Host::Ipv4(ip)) if ip.is_loopback() => "loopback".to_owned(),
        Some(url::Host::Ipv6(ip)) if ip.is_loopback() => "loopback".to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        None => String::new(),
    };
    let port = url
        .port_or_known_default()
        .map(|port| format!(":{port}"))
        .unwrap_or_default();
    format!(
        "{}://{host}{port}{}",
        url.scheme(),
        url.path().trim_end_matches('/')
    )
}

/// Creates the lock directory private to this user if it is missing, and refuses one that
/// another user owns or could write to, or that is a link.
fn prepare_dir(dir: &Path) -> Result<(), LockError> {
    let io = |source| LockError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io)?;
    let metadata = std::fs::symlink_metadata(dir).map_err(io)?;
    let refuse = |reason: String| {
        Err(LockError::Unsafe {
            path: dir.to_owned(),
            reason,
        })
    };
    if metadata.file_type().is_symlink() {
        return refuse("the lock directory is a symbolic link".into());
    }
    if !metadata.is_dir() {
        return refuse("the lock directory is not a directory".into());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        if metadata.uid() != uid {
            return refuse(format!(
                "the lock directory belongs to uid {}, not to this user (uid {uid})",
                metadata.uid()
            ));
        }
        let mode = metadata.mode() & 0o7777;
        if mode & 0o022 != 0 {
            return refuse(format!(
                "the lock directory is writable by other users (mode {mode:04o})"
            ));
        }
    }
    Ok(())
}

/// Opens (creating, never truncating) the lock file without following a link, and checks it
/// is a plain file of this user's.
fn open_lock_file(path: &Path) -> Result<File, LockError> {
    let io = |source| LockError::Io {
        path: path.to_owned(),
        source,
    };
    let refuse = |reason: &str| LockError::Unsafe {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|error| {
        #[cfg(unix)]
        if error.raw_os_error() == Some(libc::ELOOP) {
            return refuse("the lock file is a symbolic link");
        }
        io(error)
    })?;
    let metadata = file.metadata().map_err(io)?;
    if !metadata.is_file() {
        return Err(refuse("the lock file is not a regular file"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions and cannot fail.
        if metadata.uid() != unsafe { libc::geteuid() } {
            return Err(refuse("the lock file belongs to another user"));
        }
        if metadata.nlink() != 1 {
            return Err(refuse("the lock file has other hard links"));
        }
    }
    Ok(file)
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
    prepare_dir(dir)?;
    let mut file = open_lock_file(&path)?;
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

    #[test]
    fn spellings_of_one_server_are_one_identity() {
        let port = 43_117;
        let same = [
            format!("http://127.0.0.1:{port}"),
            format!("http://localhost:{port}/"),
            format!("http://LOCALHOST:{port}//"),
            format!("http://[::1]:{port}"),
            format!("http://user:pass@127.0.0.1:{port}/"),
            format!(" http://localhost.:{port}"),
        ];
        for spelling in &same {
            assert_eq!(
                api_identity(spelling),
                format!("http://loopback:{port}"),
                "{spelling}"
            );
        }
        assert_eq!(
            api_identity("https://API.Mistral.ai/"),
            api_identity("https://api.mistral.ai:443")
        );
        // Userinfo never reaches the identity.
        assert!(!api_identity("https://admin:hunter2@api.mistral.ai").contains("hunter2"));
        // Different servers stay apart.
        for (a, b) in [
            ("http://localhost:1", "http://localhost:2"),
            ("http://localhost:80", "https://localhost:80"),
            ("https://api.mistral.ai", "https://api.mistral.ai/eu"),
            ("https://api.mistral.ai", "https://other.example"),
        ] {
            assert_ne!(api_identity(a), api_identity(b), "{a} {b}");
        }
    }
}

#[cfg(all(test, unix))]
mod unix_tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn take(dir: &Path) -> Result<OrgLock, LockError> {
        acquire(dir, "mistral", "mistral x", Duration::ZERO, |_, _| {})
    }

    #[test]
    fn a_link_planted_at_the_lock_path_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let target = elsewhere.path().join("precious");
        std::fs::write(&target, "precious data\n").unwrap();
        std::os::unix::fs::symlink(&target, lock_path(dir.path(), "mistral x")).unwrap();
        let error = take(dir.path()).unwrap_err();
        assert!(
            matches!(&error, LockError::Unsafe { reason, .. } if reason.contains("symbolic link")),
            "{error}"
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious data\n");
        // A dangling link is not followed to create its target either.
        let missing = elsewhere.path().join("created-by-the-lock");
        std::fs::remove_file(lock_path(dir.path(), "mistral x")).unwrap();
        std::os::unix::fs::symlink(&missing, lock_path(dir.path(), "mistral x")).unwrap();
        assert!(matches!(take(dir.path()), Err(LockError::Unsafe { .. })));
        assert!(!missing.exists());
    }

    #[test]
    fn a_directory_others_can_write_or_a_linked_one_is_refused() {
        let parent = tempfile::tempdir().unwrap();
        let shared = parent.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        let error = take(&shared).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("writable by other users (mode 0777)"),
            "{error}"
        );
        assert_eq!(
            std::fs::read_dir(&shared).unwrap().count(),
            0,
            "a lock file was created"
        );

        let private = parent.path().join("private");
        let link = parent.path().join("link");
        std::fs::create_dir(&private).unwrap();
        std::os::unix::fs::symlink(&private, &link).unwrap();
        let error = take(&link).unwrap_err();
        assert!(error.to_string().contains("is a symbolic link"), "{error}");

        // As root, a directory another user owns can be made, and must be refused too.
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            let theirs = parent.path().join("theirs");
            std::fs::create_dir(&theirs).unwrap();
            std::os::unix::fs::chown(&theirs, Some(4242), None).unwrap();
            let error = take(&theirs).unwrap_err();
            assert!(error.to_string().contains("belongs to uid 4242"), "{error}");
        }
    }

    #[test]
    fn a_missing_directory_is_created_private() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("a/locks");
        let lock = take(&dir).unwrap();
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&lock.path), 0o600);
    }
}
