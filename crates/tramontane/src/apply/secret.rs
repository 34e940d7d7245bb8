//! Delivering a new key's secret: the one moment the plaintext exists.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};

use crate::model::SecretSink;

/// How long a command sink may run before it is stopped and the delivery counted failed.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The secret files one apply writes, so two keys never share one: a second key's secret
/// written over the first's would leave the first key's consumers with the wrong secret.
/// Checked by path as the policy spells it, and again by the file itself (device and
/// inode), which catches two paths the file system takes for one (a case-insensitive
/// volume, a hard link).
pub struct SecretFiles {
    root: PathBuf,
    command_timeout: Duration,
    written: Mutex<HashMap<PathBuf, String>>,
    identities: Arc<Mutex<Identities>>,
}

/// The files written so far, by device and inode, with the key each holds.
type Identities = HashMap<(u64, u64), String>;

impl SecretFiles {
    pub fn new(root: PathBuf, command_timeout: Duration) -> SecretFiles {
        SecretFiles {
            root,
            command_timeout,
            written: Mutex::new(HashMap::new()),
            identities: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Delivers the secret of the key at `address` to its sink, off the async workers (a
    /// command may run up to its timeout). The error says what failed without the secret.
    pub async fn deliver(
        &self,
        address: &str,
        sink: &SecretSink,
        secret: &SecretString,
    ) -> Result<(), String> {
        self.claim(address, sink)?;
        let (sink, secret, root) = (sink.clone(), secret.clone(), self.root.clone());
        let timeout = self.command_timeout;
        let claim = (address.to_owned(), Arc::clone(&self.identities));
        tokio::task::spawn_blocking(move || {
            deliver_claimed(&sink, &secret, &root, timeout, Some(claim))
        })
        .await
        .unwrap_or_else(|error| Err(format!("the delivery stopped: {error}")))
    }

    /// The secret a file sink holds now, read back as apply wrote it (one line), through no
    /// symbolic link. The error says what failed without the secret.
    pub fn read_back(&self, path: &str) -> Result<SecretString, String> {
        let normalized = crate::policy::secret_path::normalize(path)
            .map_err(|problem| format!("the secret file `{path}` {problem}"))?;
        let shown = self.root.join(&normalized);
        if let Some(link) = crate::policy::secret_path::first_link(&self.root, &normalized) {
            return Err(link_refused(&shown, &link));
        }
        let text = std::fs::read_to_string(&shown)
            .map_err(|e| format!("cannot read {}: {e}", shown.display()))?;
        let secret = text.trim_end_matches(['\n', '\r']);
        if secret.is_empty() {
            return Err(format!("{} is empty", shown.display()));
        }
        Ok(SecretString::from(secret.to_owned()))
    }

    fn claim(&self, address: &str, sink: &SecretSink) -> Result<(), String> {
        if let SecretSink::File(path) = sink {
            // Keyed by the normalised path: `a/../k` and `k` are one file. Validation refused
            // paths outside the repository; a saved plan is refused them here again.
            let path = self.root.join(
                crate::policy::secret_path::normalize(path)
                    .map_err(|problem| format!("the secret file `{path}` {problem}"))?,
            );
            let mut written = self
                .written
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(other) = written.get(&path).filter(|other| *other != address) {
                return Err(format!(
                    "{} already holds the secret of {other}, written by this apply; give each key a file of its own",
                    path.display()
                ));
            }
            written.insert(path, address.to_owned());
        }
        Ok(())
    }
}

/// Writes the secret to its sink: a file replaced atomically with mode 0600 (its missing
/// parent directories created 0700), or a command's stdin. Never through argv or the
/// environment, where other processes could read it. A command gets `timeout` to finish.
///
/// A file's path is walked one directory at a time from `root`, following no symbolic
/// link: a path that crosses one is refused, since a committed link could send the secret
/// anywhere on the machine, or let two keys' paths name one file.
pub fn deliver(
    sink: &SecretSink,
    secret: &SecretString,
    root: &Path,
    timeout: Duration,
) -> Result<(), String> {
    deliver_claimed(sink, secret, root, timeout, None)
}

/// [`deliver`], refusing a file another key of this apply already holds.
fn deliver_claimed(
    sink: &SecretSink,
    secret: &SecretString,
    root: &Path,
    timeout: Duration,
    claim: Option<(String, Arc<Mutex<Identities>>)>,
) -> Result<(), String> {
    match sink {
        SecretSink::File(path) => {
            let normalized = crate::policy::secret_path::normalize(path)
                .map_err(|problem| format!("the secret file `{path}` {problem}"))?;
            write_file(root, &normalized, secret, claim.as_ref())
        }
        SecretSink::Command(argv) => run_command(argv, secret, root, timeout),
    }
}

fn link_refused(path: &Path, link: &Path) -> String {
    format!(
        "refused to write {}: `{}` is a symbolic link, and tramontane follows no link in a secret file's path; replace it with a directory",
        path.display(),
        link.display()
    )
}

#[cfg(unix)]
fn write_file(
    root: &Path,
    normalized: &Path,
    secret: &SecretString,
    claim: Option<&(String, Arc<Mutex<Identities>>)>,
) -> Result<(), String> {
    use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags};
    use rustix::io::Errno;

    let shown = root.join(normalized);
    let parts: Vec<&std::ffi::OsStr> = normalized.iter().collect();
    let Some((file_name, parents)) = parts.split_last() else {
        return Err(format!("{} is not a file path", shown.display()));
    };
    let directory_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut directory = rustix::fs::openat(
        CWD,
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("cannot open {}: {e}", root.display()))?;
    let is_link = |directory: &rustix::fd::OwnedFd, name: &std::ffi::OsStr| {
        rustix::fs::statat(directory, name, AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|stat| FileType::from_raw_mode(stat.st_mode) == FileType::Symlink)
    };
    let mut walked = PathBuf::new();
    for part in parents {
        walked.push(part);
        let opened = match rustix::fs::openat(&directory, *part, directory_flags, Mode::empty()) {
            Err(Errno::NOENT) => {
                match rustix::fs::mkdirat(&directory, *part, Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => {
                        return Err(format!(
                            "cannot create {}: {e}",
                            root.join(&walked).display()
                        ));
                    }
                }
                rustix::fs::openat(&directory, *part, directory_flags, Mode::empty())
            }
            other => other,
        };
        directory = match opened {
            Ok(opened) => opened,
            Err(_) if is_link(&directory, part) => return Err(link_refused(&shown, &walked)),
            Err(e) => return Err(format!("cannot open {}: {e}", root.join(&walked).display())),
        };
    }
    let file_name = *file_name;
    match rustix::fs::statat(&directory, file_name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::Symlink => {
            return Err(link_refused(&shown, normalized));
        }
        Ok(stat) => {
            if let Some((address, identities)) = claim {
                let identities = identities.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(other) = identities
                    .get(&identity(&stat))
                    .filter(|other| *other != address)
                {
                    return Err(format!(
                        "{} already holds the secret of {other}, written by this apply under another path; give each key a file of its own",
                        shown.display()
                    ));
                }
            }
        }
        Err(_) => {}
    }
    // Written beside the target and renamed over it: a reader sees the old secret or the
    // new one, never half of one, and a crash leaves no truncated file behind.
    let temporary = format!(
        ".{}.{}.tmp",
        file_name.to_string_lossy(),
        uuid::Uuid::new_v4().simple()
    );
    let result = (|| -> Result<(u64, u64), Errno> {
        let file = rustix::fs::openat(
            &directory,
            temporary.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?;
        let written = identity(&rustix::fs::fstat(&file)?);
        let mut file = std::fs::File::from(file);
        let write = |file: &mut std::fs::File| -> std::io::Result<()> {
            file.write_all(secret.expose_secret().as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()
        };
        write(&mut file).map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
        rustix::fs::renameat(&directory, temporary.as_str(), &directory, file_name)?;
        Ok(written)
    })();
    match result {
        Ok(written) => {
            if let Some((address, identities)) = claim {
                identities
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(written, address.clone());
            }
            Ok(())
        }
        Err(e) => {
            let _ = rustix::fs::unlinkat(&directory, temporary.as_str(), AtFlags::empty());
            Err(format!("cannot write {}: {e}", shown.display()))
        }
    }
}

/// A file's identity: its device and inode.
#[cfg(unix)]
// `st_dev` and `st_ino` are u64 on some targets and narrower on others.
#[allow(clippy::unnecessary_cast)]
fn identity(stat: &rustix::fs::Stat) -> (u64, u64) {
    (stat.st_dev as u64, stat.st_ino as u64)
}

/// Without `openat`, each part of the path is checked for a link before it is written
/// through: the same refusal, with a window between the check and the write.
#[cfg(not(unix))]
fn write_file(
    root: &Path,
    normalized: &Path,
    secret: &SecretString,
    _claim: Option<&(String, Arc<Mutex<Identities>>)>,
) -> Result<(), String> {
    let path = root.join(normalized);
    if let Some(link) = crate::policy::secret_path::first_link(root, normalized) {
        return Err(link_refused(&path, &link));
    }
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let file_name = path
        .file_name()
        .ok_or_else(|| format!("{} is not a file path", path.display()))?;
    let temporary = parent.join(format!(
        ".{}.{}.tmp",
        file_name.to_string_lossy(),
        uuid::Uuid::new_v4().simple()
    ));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)?;
        file.write_all(secret.expose_secret().as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::rename(&temporary, &path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        format!("cannot write {}: {e}", path.display())
    })
}

/// Whether a variable of tramontane's own environment holds a credential a sink has no
/// business with: the admin key, the GitHub tokens `comment` and CI use, and tramontane's
/// own keys and tokens. A sink that needs a token of its own reads it under another name.
fn is_secret_env(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy().to_ascii_uppercase();
    matches!(
        name.as_str(),
        "MISTRAL_ADMIN_API_KEY" | "GITHUB_TOKEN" | "GH_TOKEN"
    ) || (name.starts_with("TRAMONTANE_")
        && ["KEY", "TOKEN", "SECRET", "PASSWORD"]
            .iter()
            .any(|word| name.contains(word)))
}

/// How much of a failed command's stderr is shown: its end, where the reason usually is.
const STDERR_TAIL_BYTES: usize = 2048;
const STDERR_TAIL_LINES: usize = 20;

fn run_command(
    argv: &[String],
    secret: &SecretString,
    root: &Path,
    timeout: Duration,
) -> Result<(), String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("the secret command is empty".into());
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, _) in std::env::vars_os() {
        if is_secret_env(&name) {
            command.env_remove(name);
        }
    }
    #[cfg(unix)]
    {
        // A group of its own, so a timeout stops whatever the command started too.
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    let tail = child
        .stderr
        .take()
        .map(|stderr| StderrTail::start(stderr, secret));
    let fed = feed(&mut child, program, secret, timeout);
    let tail = tail.map(StderrTail::finish).unwrap_or_default();
    fed.map_err(|problem| {
        if tail.is_empty() {
            problem
        } else {
            format!("{problem}; its stderr ended with:\n{tail}")
        }
    })
}

/// Writes the secret to the command's stdin, closes it once every byte has been read, and
/// waits for the command to end within `timeout`. A command that ends, even with success,
/// before reading the whole secret has not received it.
fn feed(
    child: &mut std::process::Child,
    program: &str,
    secret: &SecretString,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let bytes = secret.expose_secret().as_bytes();
    let mut stdin = child.stdin.take();
    if let Some(pipe) = stdin.as_mut()
        && let Err(error) = pipe.write_all(bytes)
    {
        drop(stdin);
        // A broken pipe means the command is gone or going: its exit status, when it has
        // one, says more than the pipe does.
        let exited = (error.kind() == std::io::ErrorKind::BrokenPipe)
            .then(|| exit_status_soon(child, Duration::from_millis(500)))
            .flatten();
        stop(child);
        return Err(match exited {
            Some(status) if !status.success() => {
                format!("`{program}` exited with {status} without reading the secret")
            }
            _ if error.kind() == std::io::ErrorKind::BrokenPipe => {
                format!("`{program}` closed its stdin without reading the secret")
            }
            _ => format!("cannot write to the stdin of `{program}`: {error}"),
        });
    }
    let mut pause = Duration::from_millis(1);
    loop {
        let exited = child
            .try_wait()
            .map_err(|e| format!("`{program}` did not finish: {e}"))?;
        if let Some(status) = exited {
            // Bytes still in the pipe once the command is gone were never read.
            let unread = stdin.as_ref().and_then(unread_bytes).unwrap_or(0);
            drop(stdin);
            if !status.success() {
                return Err(format!("`{program}` exited with {status}"));
            }
            if unread > 0 {
                return Err(format!(
                    "`{program}` exited with success without reading the secret from its stdin ({unread} of {} bytes unread), so it cannot have stored it",
                    bytes.len()
                ));
            }
            return Ok(());
        }
        // Everything read: close the pipe, so a command reading to the end sees it.
        if stdin
            .as_ref()
            .is_some_and(|pipe| unread_bytes(pipe).is_none_or(|unread| unread == 0))
        {
            stdin = None;
        }
        if Instant::now() >= deadline {
            drop(stdin);
            stop(child);
            return Err(format!(
                "`{program}` did not finish within {} s, so it was stopped; raise --sink-timeout if it needs longer",
                timeout.as_secs_f64()
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// The command's exit status if it ends within `wait`.
fn exit_status_soon(
    child: &mut std::process::Child,
    wait: Duration,
) -> Option<std::process::ExitStatus> {
    let until = Instant::now() + wait;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(5)),
            _ => return None,
        }
    }
}

/// Bytes written to a command's stdin that it has not read yet; `None` where the platform
/// cannot tell, and the pipe is then closed at once, as a plain pipe would be.
fn unread_bytes(pipe: &std::process::ChildStdin) -> Option<u64> {
    #[cfg(unix)]
    {
        rustix::io::ioctl_fionread(pipe).ok()
    }
    #[cfg(not(unix))]
    {
        let _ = pipe;
        None
    }
}

/// Stops a command and everything it started, and reaps it.
fn stop(child: &mut std::process::Child) {
    #[cfg(unix)]
    {
        let _ = rustix::process::kill_process_group(
            rustix::process::Pid::from_child(child),
            rustix::process::Signal::KILL,
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The end of a command's stderr, read as it runs so a chatty command never blocks on a
/// full pipe, with the secret blotted out should the command echo it.
struct StderrTail {
    done: std::sync::mpsc::Receiver<String>,
}

impl StderrTail {
    fn start(mut stderr: std::process::ChildStderr, secret: &SecretString) -> StderrTail {
        let secret = secret.clone();
        let (sender, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let keep = STDERR_TAIL_BYTES + secret.expose_secret().len();
            let mut tail: Vec<u8> = Vec::new();
            let mut cut = false;
            let mut chunk = [0u8; 4096];
            loop {
                match stderr.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(read) => {
                        tail.extend_from_slice(&chunk[..read]);
                        if tail.len() > keep {
                            tail.drain(..tail.len() - keep);
                            cut = true;
                        }
                    }
                }
            }
            let _ = sender.send(shown_tail(&tail, cut, &secret));
        });
        StderrTail { done }
    }

    /// What the command wrote, once its stderr closes. A command that handed its stderr to
    /// something still running is not waited for long.
    fn finish(self) -> String {
        self.done
            .recv_timeout(Duration::from_millis(500))
            .unwrap_or_default()
    }
}

/// The last lines of `bytes`, indented, without control characters or the secret. When the
/// start was `cut`, a piece of the secret may open it, so that much is dropped first.
fn shown_tail(bytes: &[u8], cut: bool, secret: &SecretString) -> String {
    let secret = secret.expose_secret();
    let skip = if cut {
        secret.len().min(bytes.len())
    } else {
        0
    };
    let text = String::from_utf8_lossy(&bytes[skip..]);
    let text = if secret.is_empty() {
        text.into_owned()
    } else {
        text.replace(secret, "[the secret]")
    };
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            line.chars()
                .filter(|c| !c.is_control() || *c == '\t')
                .collect::<String>()
        })
        .filter(|line| !line.trim().is_empty())
        .collect();
    let mut shown: Vec<String> = Vec::new();
    let mut size = 0;
    for line in lines.iter().rev().take(STDERR_TAIL_LINES) {
        let line: String = if line.len() > STDERR_TAIL_BYTES {
            let mut start = line.len() - STDERR_TAIL_BYTES;
            while !line.is_char_boundary(start) {
                start += 1;
            }
            format!("…{}", &line[start..])
        } else {
            line.clone()
        };
        size += line.len();
        if size > STDERR_TAIL_BYTES && !shown.is_empty() {
            break;
        }
        shown.push(format!("    {line}"));
    }
    shown.reverse();
    shown.join("\n")
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn a_file_sink_is_private_atomic_and_one_key_s() {
        let root = tempfile::tempdir().unwrap();
        let files = SecretFiles::new(root.path().to_owned(), DEFAULT_COMMAND_TIMEOUT);
        let sink = SecretSink::File("secrets/dev/ci.key".into());
        files
            .deliver("workspace.dev.key.ci", &sink, &SecretString::from("first"))
            .await
            .unwrap();
        let path = root.path().join("secrets/dev/ci.key");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "first\n");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&root.path().join("secrets")), 0o700);
        assert_eq!(mode(&root.path().join("secrets/dev")), 0o700);

        // The same key again (a rotation) replaces its file; no temporary file is left.
        files
            .deliver("workspace.dev.key.ci", &sink, &SecretString::from("second"))
            .await
            .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second\n");
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );

        let error = files
            .deliver(
                "workspace.dev.key.other",
                &sink,
                &SecretString::from("third"),
            )
            .await
            .unwrap_err();
        assert!(
            error.contains("already holds the secret of workspace.dev.key.ci"),
            "{error}"
        );
        assert!(!error.contains("third"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second\n");

        // Another spelling of the same file is the same file.
        let respelled = SecretSink::File("secrets/dev/../dev//./ci.key".into());
        let error = files
            .deliver(
                "workspace.dev.key.other",
                &respelled,
                &SecretString::from("fourth"),
            )
            .await
            .unwrap_err();
        assert!(
            error.contains("already holds the secret of workspace.dev.key.ci"),
            "{error}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second\n");

        // A path out of the repository is never written.
        let outside = SecretSink::File("../escaped.key".into());
        let error = files
            .deliver("workspace.dev.key.out", &outside, &SecretString::from("x"))
            .await
            .unwrap_err();
        assert!(error.contains("leaves the repository"), "{error}");
        assert!(!root.path().parent().unwrap().join("escaped.key").exists());
    }

    #[tokio::test]
    async fn a_file_sink_follows_no_symbolic_link_and_no_file_holds_two_keys() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let files = SecretFiles::new(root.path().to_owned(), DEFAULT_COMMAND_TIMEOUT);
        let secret = SecretString::from("s3cret");
        // A committed link to a directory outside the repository.
        std::os::unix::fs::symlink(outside.path(), root.path().join("secrets")).unwrap();
        // A link between two directories of the repository: `public/k` and `alias/k` are
        // one file.
        std::fs::create_dir(root.path().join("public")).unwrap();
        std::os::unix::fs::symlink("public", root.path().join("alias")).unwrap();
        // A link as the file itself.
        std::os::unix::fs::symlink(outside.path().join("x"), root.path().join("public/l.key"))
            .unwrap();
        for (address, path, link) in [
            ("workspace.a.key.out", "secrets/ci.key", "secrets"),
            ("workspace.a.key.deep", "secrets/new/ci.key", "secrets"),
            ("workspace.a.key.alias", "alias/k", "alias"),
            ("workspace.a.key.file", "public/l.key", "public/l.key"),
        ] {
            let error = files
                .deliver(address, &SecretSink::File(path.into()), &secret)
                .await
                .unwrap_err();
            assert!(
                error.contains(&format!("`{link}` is a symbolic link")),
                "{path}: {error}"
            );
        }
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        assert_eq!(
            std::fs::read_dir(root.path().join("public"))
                .unwrap()
                .count(),
            1
        );

        // Two paths the file system takes for one file: the second key is refused.
        files
            .deliver(
                "workspace.a.key.one",
                &SecretSink::File("public/k".into()),
                &secret,
            )
            .await
            .unwrap();
        std::fs::hard_link(
            root.path().join("public/k"),
            root.path().join("public/same"),
        )
        .unwrap();
        let error = files
            .deliver(
                "workspace.a.key.two",
                &SecretSink::File("public/same".into()),
                &SecretString::from("other"),
            )
            .await
            .unwrap_err();
        assert!(
            error.contains("already holds the secret of workspace.a.key.one"),
            "{error}"
        );
        assert_eq!(
            std::fs::read_to_string(root.path().join("public/k")).unwrap(),
            "s3cret\n"
        );
    }

    #[test]
    fn a_command_sink_gets_the_secret_on_stdin_and_its_failure_is_reported() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("got");
        let argv = vec![
            "sh".to_owned(),
            "-c".to_owned(),
            format!("cat > '{}'", out.display()),
        ];
        deliver(
            &SecretSink::Command(argv),
            &SecretString::from("s3cret"),
            root.path(),
            DEFAULT_COMMAND_TIMEOUT,
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "s3cret");
        let failing = vec!["sh".to_owned(), "-c".to_owned(), "exit 3".to_owned()];
        let error = deliver(
            &SecretSink::Command(failing),
            &SecretString::from("s3cret"),
            root.path(),
            DEFAULT_COMMAND_TIMEOUT,
        )
        .unwrap_err();
        assert!(error.contains("exited with"), "{error}");
    }

    fn sh(script: &str) -> SecretSink {
        SecretSink::Command(vec!["sh".into(), "-c".into(), script.into()])
    }

    #[test]
    fn a_hanging_command_is_stopped_at_its_timeout_with_what_it_started() {
        let root = tempfile::tempdir().unwrap();
        let started = Instant::now();
        // `sleep` is a grandchild holding stderr open: the whole group must go.
        let error = deliver(
            &sh("cat > /dev/null; echo waiting >&2; sleep 1000"),
            &SecretString::from("s3cret-value"),
            root.path(),
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(error.contains("did not finish within 0.3 s"), "{error}");
        assert!(error.contains("    waiting"), "{error}");
    }

    #[test]
    fn a_command_that_succeeds_without_reading_its_stdin_has_not_received_the_secret() {
        let root = tempfile::tempdir().unwrap();
        for script in [
            "exit 0",
            "sleep 0.2",
            "dd bs=1 count=3 of=/dev/null 2>/dev/null",
        ] {
            let error = deliver(
                &sh(script),
                &SecretString::from("s3cret-value-of-some-length"),
                root.path(),
                DEFAULT_COMMAND_TIMEOUT,
            )
            .unwrap_err();
            assert!(
                error.contains("without reading the secret"),
                "{script}: {error}"
            );
        }
        // Reading it all and then taking a while is fine.
        deliver(
            &sh("cat > /dev/null; sleep 0.1"),
            &SecretString::from("s3cret-value-of-some-length"),
            root.path(),
            DEFAULT_COMMAND_TIMEOUT,
        )
        .unwrap();
    }

    #[test]
    fn a_failing_command_shows_the_end_of_its_stderr_without_the_secret() {
        let root = tempfile::tempdir().unwrap();
        let script = "secret=$(cat); i=0; while [ $i -lt 500 ]; do echo \"noise line $i\" >&2; i=$((i+1)); done; \
                      echo \"rejected token $secret\" >&2; printf 'bell\\007 and escape\\033[31m\\n' >&2; exit 4";
        let error = deliver(
            &sh(script),
            &SecretString::from("s3cret-value"),
            root.path(),
            DEFAULT_COMMAND_TIMEOUT,
        )
        .unwrap_err();
        assert!(error.contains("exited with exit status: 4"), "{error}");
        assert!(error.contains("    rejected token [the secret]"), "{error}");
        assert!(error.contains("noise line 499"), "{error}");
        assert!(!error.contains("noise line 100\n"), "{error}");
        assert!(!error.contains("s3cret"), "{error}");
        assert!(
            !error.contains('\u{7}') && !error.contains('\u{1b}'),
            "{error}"
        );
        let shown = error.split_once(":\n").unwrap().1;
        assert!(shown.lines().count() <= STDERR_TAIL_LINES, "{shown}");
        assert!(
            shown.len() <= STDERR_TAIL_BYTES + 4 * STDERR_TAIL_LINES,
            "{shown}"
        );
    }

    #[test]
    fn a_command_never_sees_tramontane_s_credentials() {
        const CREDENTIALS: [&str; 4] = [
            "MISTRAL_ADMIN_API_KEY",
            "GITHUB_TOKEN",
            "GH_TOKEN",
            "TRAMONTANE_GATEWAY_KEY",
        ];
        // The credentials are set on a copy of this test in a child process, never on this
        // process, where other tests run beside it.
        let Some(dir) = std::env::var_os("TRAMONTANE_SCRUB_TEST_DIR") else {
            let root = tempfile::tempdir().unwrap();
            let mut command = Command::new(std::env::current_exe().unwrap());
            command
                .args([
                    "--exact",
                    "apply::secret::tests::a_command_never_sees_tramontane_s_credentials",
                ])
                .env("TRAMONTANE_SCRUB_TEST_DIR", root.path())
                .stdout(Stdio::null())
                .env("KEEP_ME", "visible");
            for name in CREDENTIALS {
                command.env(name, "credential-value");
            }
            assert!(command.status().unwrap().success());
            let seen = std::fs::read_to_string(root.path().join("env")).unwrap();
            assert!(seen.contains("KEEP_ME=visible"), "{seen}");
            for name in CREDENTIALS {
                assert!(
                    !seen.contains(&format!("{name}=")),
                    "{name} reached the sink"
                );
            }
            return;
        };
        let dir = PathBuf::from(dir);
        let script = format!("cat > /dev/null; env > '{}'", dir.join("env").display());
        deliver(
            &sh(&script),
            &SecretString::from("s3cret"),
            &dir,
            DEFAULT_COMMAND_TIMEOUT,
        )
        .unwrap();
    }
}
