//! Delivering a new key's secret: the one moment the plaintext exists.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use secrecy::{ExposeSecret, SecretString};

use crate::model::SecretSink;

/// The secret files one apply writes, so two keys never share one: a second key's secret
/// written over the first's would leave the first key's consumers with the wrong secret.
pub struct SecretFiles {
    root: PathBuf,
    written: Mutex<HashMap<PathBuf, String>>,
}

impl SecretFiles {
    pub fn new(root: PathBuf) -> SecretFiles {
        SecretFiles {
            root,
            written: Mutex::new(HashMap::new()),
        }
    }

    /// Delivers the secret of the key at `address` to its sink. The error says what failed
    /// without the secret.
    pub fn deliver(
        &self,
        address: &str,
        sink: &SecretSink,
        secret: &SecretString,
    ) -> Result<(), String> {
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
        deliver(sink, secret, &self.root)
    }
}

/// Writes the secret to its sink: a file replaced atomically with mode 0600 (its missing
/// parent directories created 0700), or a command's stdin. Never through argv or the
/// environment, where other processes could read it.
pub fn deliver(sink: &SecretSink, secret: &SecretString, root: &Path) -> Result<(), String> {
    match sink {
        SecretSink::File(path) => write_file(&root.join(path), secret),
        SecretSink::Command(argv) => run_command(argv, secret, root),
    }
}

fn write_file(path: &Path, secret: &SecretString) -> Result<(), String> {
    let parent = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(parent)
        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let file_name = path
        .file_name()
        .ok_or_else(|| format!("{} is not a file path", path.display()))?;
    // Written beside the target and renamed over it: a reader sees the old secret or the
    // new one, never half of one, and a crash leaves no truncated file behind.
    let temporary = parent.join(format!(
        ".{}.{}.tmp",
        file_name.to_string_lossy(),
        uuid::Uuid::new_v4().simple()
    ));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&temporary)?;
        file.write_all(secret.expose_secret().as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        format!("cannot write {}: {e}", path.display())
    })
}

fn run_command(argv: &[String], secret: &SecretString, root: &Path) -> Result<(), String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("the secret command is empty".into());
    };
    let mut child = Command::new(program)
        .args(args)
        .current_dir(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that exits without reading is judged by its exit status below.
        let _ = stdin.write_all(secret.expose_secret().as_bytes());
    }
    let status = child
        .wait()
        .map_err(|e| format!("`{program}` did not finish: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program}` exited with {status}"))
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_file_sink_is_private_atomic_and_one_key_s() {
        let root = tempfile::tempdir().unwrap();
        let files = SecretFiles::new(root.path().to_owned());
        let sink = SecretSink::File("secrets/dev/ci.key".into());
        files
            .deliver("workspace.dev.key.ci", &sink, &SecretString::from("first"))
            .unwrap();
        let path = root.path().join("secrets/dev/ci.key");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "first\n");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&root.path().join("secrets")), 0o700);
        assert_eq!(mode(&root.path().join("secrets/dev")), 0o700);

        // The same key again (a rotation) replaces its file; no temporary file is left.
        files
            .deliver("workspace.dev.key.ci", &sink, &SecretString::from("second"))
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
            .unwrap_err();
        assert!(error.contains("leaves the repository"), "{error}");
        assert!(!root.path().parent().unwrap().join("escaped.key").exists());
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
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "s3cret");
        let failing = vec!["sh".to_owned(), "-c".to_owned(), "exit 3".to_owned()];
        let error = deliver(
            &SecretSink::Command(failing),
            &SecretString::from("s3cret"),
            root.path(),
        )
        .unwrap_err();
        assert!(error.contains("exited with"), "{error}");
    }
}
