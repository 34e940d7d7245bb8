//! `tramontane gateway serve` as a child process, for the tests that drive the gateway over
//! HTTP: started on a free loopback port in a scratch directory, its log (stderr) and audit
//! lines (stdout) collected as they come, stopped by a signal of the test's choosing, and
//! killed when dropped. Also the gateway keys those tests hand out, derived from a public id
//! so that every test computes the same key and digest without storing a secret.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tramontane::model::KeyDigest;

use crate::test::Test;
use crate::test_dir::TestDir;

/// How long a gateway may take to say it is listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A well-formed gateway key for a public id: `tmt_<id>_<43 base62 characters>`, the same
/// for the same id in every test.
pub fn gateway_key(id: &str) -> String {
    let alphabet = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let seed = id
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let secret: String = (0..43)
        .map(|i| alphabet[((seed.wrapping_mul(i + 13) >> 7) % 62) as usize] as char)
        .collect();
    format!("tmt_{id}_{secret}")
}

/// The digest a policy's `gateway_keys` entry holds for [`gateway_key`]`(id)`.
pub fn key_digest(id: &str) -> String {
    KeyDigest::of(&gateway_key(id)).to_string()
}

/// A running `tramontane gateway serve`, killed when dropped.
pub struct GatewayProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`, as the gateway's `listening` log line gave it.
    pub base: String,
    /// `http://127.0.0.1:PORT` of its admin listener (`/metrics`, `/readyz`, `/healthz`).
    pub admin_base: String,
    logs: Arc<Mutex<Vec<String>>>,
    audit: Arc<Mutex<Vec<String>>>,
}

fn collect(stream: impl std::io::Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            into.lock().unwrap().push(line);
        }
    });
}

impl GatewayProcess {
    /// Starts `tramontane gateway serve --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0
    /// ARGS...` in `dir` (paths in
    /// `args` are relative to it) and waits until it listens. Fails the test, with the
    /// gateway's log, if it exits or stays silent.
    pub fn start(dir: &TestDir, args: &[&str]) -> GatewayProcess {
        GatewayProcess::start_with_env(dir, args, &[])
    }

    /// [`start`](GatewayProcess::start) with extra environment variables.
    pub fn start_with_env(dir: &TestDir, args: &[&str], env: &[(&str, &str)]) -> GatewayProcess {
        let mut test = Test::in_dir(dir)
            .args(["gateway", "serve", "--listen", "127.0.0.1:0"])
            .args(["--admin-listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info");
        for (name, value) in env {
            test = test.env(name, value);
        }
        let mut child = test
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the gateway starts");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let audit = Arc::new(Mutex::new(Vec::new()));
        collect(child.stderr.take().expect("piped stderr"), logs.clone());
        collect(child.stdout.take().expect("piped stdout"), audit.clone());
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let addresses = logs.lock().unwrap().iter().find_map(|line| {
                let event: Value = serde_json::from_str(line).ok()?;
                (event["message"] == "listening").then(|| {
                    Some((
                        event["address"].as_str()?.to_owned(),
                        event["admin_address"].as_str()?.to_owned(),
                    ))
                })?
            });
            if let Some((address, admin)) = addresses {
                return GatewayProcess {
                    child,
                    base: format!("http://{address}"),
                    admin_base: format!("http://{admin}"),
                    logs,
                    audit,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                // The reader threads may still hold the last lines: give them a moment.
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "the gateway exited with {status}: {}",
                    logs.lock().unwrap().join("\n")
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "the gateway did not start within {START_TIMEOUT:?}: {}",
                    logs.lock().unwrap().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything logged so far, one JSON event a line.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// The audit lines written so far, as text.
    pub fn audit_text(&self) -> String {
        self.audit.lock().unwrap().join("\n")
    }

    pub fn audit_lines(&self) -> Vec<Value> {
        self.audit
            .lock()
            .unwrap()
            .iter()
            .map(|line| serde_json::from_str(line).expect("an audit line is JSON"))
            .collect()
    }

    /// Waits for an audit line: they are written once an answer has been sent.
    pub fn audit_line(&self, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(line) = self.audit_lines().into_iter().find(|line| wanted(line)) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no such audit line in:\n{}",
                self.audit_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the log holds `text`.
    pub fn wait_for_log(&self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.logs().contains(text) {
            assert!(
                Instant::now() < deadline,
                "the gateway did not log `{text}` within {timeout:?}:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal by name (`TERM`, `HUP`, ...).
    pub fn signal(&self, name: &str) {
        let sent = std::process::Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -{name} failed");
    }

    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// SIGKILL: the process ends at once, finishing nothing, and is reaped.
    pub fn kill(&mut self) {
        self.child.kill().expect("the gateway can be killed");
        let _ = self.child.wait();
    }

    /// The exit code once the process ends within `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_well_formed_and_the_same_for_the_same_id() {
        let key = gateway_key("racekey");
        assert_eq!(key, gateway_key("racekey"));
        assert_ne!(key, gateway_key("otherkey"));
        let secret = key.strip_prefix("tmt_racekey_").unwrap();
        assert_eq!(secret.len(), 43);
        assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(key_digest("racekey"), KeyDigest::of(&key).to_string());
    }
}
