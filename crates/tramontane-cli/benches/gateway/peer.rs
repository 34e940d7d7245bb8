//! Another proxy measured in the same run, in front of the same mock, under the same load:
//! `TRAMONTANE_BENCH_PEER=litellm` starts LiteLLM's proxy with its default flags and a
//! config that routes `mistral-small-latest` to the mock as a `mistral/...` model.
//!
//! The `litellm` command is `TRAMONTANE_BENCH_LITELLM`, or `target/litellm-venv/bin/litellm`
//! under the workspace, where `benches/gateway/litellm.sh` installs it. LiteLLM runs without
//! a database, so it checks only its master key: it enforces no per-key models, rates or
//! budgets on the measured path, where the gateway enforces all three.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::procfs::Processes;

/// The variable that names the peer to measure beside the gateway.
pub const PEER_VARIABLE: &str = "TRAMONTANE_BENCH_PEER";
/// The variable that names the `litellm` command.
pub const LITELLM_VARIABLE: &str = "TRAMONTANE_BENCH_LITELLM";
/// A Python proxy imports for a while before it listens, longer on a busy machine.
const START_TIMEOUT: Duration = Duration::from_secs(180);
/// LiteLLM's master key, the only credential it checks without a database. A bench value,
/// valid nowhere else.
const LITELLM_MASTER_KEY: &str = "sk-tramontane-bench-peer";

/// A running peer proxy, stopped when dropped.
pub struct Peer {
    pub name: &'static str,
    pub address: SocketAddr,
    pub authorization: String,
    pub processes: Processes,
    child: Child,
    /// Its config and its log; removed when the peer is.
    dir: tempfile::TempDir,
}

/// The peer `TRAMONTANE_BENCH_PEER` asks for, started in front of `mock`: `None` when none
/// is asked, an error when it is unknown or does not start.
pub fn from_env(mock: SocketAddr) -> Option<Result<Peer, String>> {
    let name = std::env::var(PEER_VARIABLE)
        .ok()
        .filter(|s| !s.is_empty())?;
    Some(match name.as_str() {
        "litellm" => litellm(mock),
        other => Err(format!(
            "{PEER_VARIABLE}={other}: the known peer is `litellm`"
        )),
    })
}

fn litellm_command() -> PathBuf {
    std::env::var_os(LITELLM_VARIABLE).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/litellm-venv/bin/litellm"),
        PathBuf::from,
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// The status of `GET path` at `address`, `None` while nothing answers.
fn status_of(address: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.split_whitespace().nth(1)?.parse().ok()
}

fn litellm(mock: SocketAddr) -> Result<Peer, String> {
    let command = litellm_command();
    if !command.exists() {
        return Err(format!(
            "no `litellm` at {} (run benches/gateway/litellm.sh, or set {LITELLM_VARIABLE})",
            command.display()
        ));
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = format!(
        r#"model_list:
  - model_name: mistral-small-latest
    litellm_params:
      model: mistral/mistral-small-latest
      api_base: http://{mock}/v1
      api_key: bench-upstream-key
general_settings:
  master_key: {LITELLM_MASTER_KEY}
"#
    );
    std::fs::write(dir.path().join("config.yaml"), config).map_err(|e| e.to_string())?;
    let log = std::fs::File::create(dir.path().join("litellm.log")).map_err(|e| e.to_string())?;
    let port = free_port();
    let child = Command::new(&command)
        .args(["--config", "config.yaml", "--host", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .current_dir(dir.path())
        // The model prices bundled with the package, not fetched at start: the bench
        // reaches nothing beyond loopback.
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .env_remove("DATABASE_URL")
        .env_remove("MISTRAL_API_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().map_err(|e| e.to_string())?))
        .stderr(Stdio::from(log))
        .spawn()
        .map_err(|e| format!("{}: {e}", command.display()))?;
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut peer = Peer {
        name: "litellm",
        address,
        authorization: format!("Bearer {LITELLM_MASTER_KEY}"),
        processes: Processes::new(vec![child.id()]),
        child,
        dir,
    };
    let started = Instant::now();
    loop {
        if status_of(address, "/health/liveliness") == Some(200) {
            return Ok(peer);
        }
        if let Ok(Some(status)) = peer.child.try_wait() {
            return Err(format!(
                "litellm exited ({status}) before it listened:\n{}",
                peer.log_tail()
            ));
        }
        if started.elapsed() > START_TIMEOUT {
            return Err(format!(
                "litellm did not listen within {START_TIMEOUT:?}:\n{}",
                peer.log_tail()
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

impl Peer {
    /// The last lines the peer wrote, to show why it failed.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("litellm.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Workers it forked first, so none outlives the bench.
        let workers: Vec<String> = self
            .processes
            .pids()
            .into_iter()
            .filter(|pid| *pid != self.child.id())
            .map(|pid| pid.to_string())
            .collect();
        if !workers.is_empty() {
            let _ = Command::new("kill").arg("-9").args(&workers).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
