//! Delivering a new key's secret: the one moment the plaintext exists.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use secrecy::{ExposeSecret, SecretString};

use crate::model::SecretSink;

/// Writes the secret to its sink: a file created with mode 0600, or a command's stdin. Never
/// through argv or the environment, where other processes could read it. The error says
/// what failed without the secret.
pub fn deliver(sink: &SecretSink, secret: &SecretString, root: &Path) -> Result<(), String> {
    match sink {
        SecretSink::File(path) => {
            let path = root.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options
                .open(&path)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            file.write_all(secret.expose_secret().as_bytes())
                .and_then(|()| file.write_all(b"\n"))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
        SecretSink::Command(argv) => {
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
                stdin
                    .write_all(secret.expose_secret().as_bytes())
                    .map_err(|e| format!("cannot write to `{program}`: {e}"))?;
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
    }
}
