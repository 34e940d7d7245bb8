//! The real `tramontane gateway serve`, started from the release binary with its default
//! flags (audit to stdout, here into a file; logs at `info` on stderr) and a policy whose
//! limits are all on the measured path but never bind: a models list, an rpm far above the
//! load, and a daily token budget, so every request is reserved against and settled.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tramontane::model::KeyDigest;

/// The gateway key the bench presents: `tmt_<id>_<43 base62 characters>`.
pub const GATEWAY_KEY: &str = "tmt_bench_0123456789abcdefghijABCDEFGHIJ0123456789xyz";

/// Writes the policy and the upstream key into `dir`.
pub fn write_policy(dir: &Path) {
    let policy = format!(
        r#"version: 1
members:
  ada@bench.example: {{ name: Ada Admin, roles: [organization_admin] }}
workspaces:
  bench:
    admin: ada@bench.example
    members: {{ ada@bench.example: [workspace_admin] }}
    models: [mistral-small-latest]
    keys:
      svc:
        owner: ada@bench.example
        models: [mistral-small-latest]
        rpm: 100000000
        max_tokens_per_request: 1000
        daily_token_budget: 1000000000000
        secret: {{ file: secrets/svc.key }}
gateway_keys:
  bench: {{ digest: "{digest}", holder: workspace.bench.key.svc, workspace: bench, expires: 2099-01-01 }}
"#,
        digest = KeyDigest::of(GATEWAY_KEY)
    );
    std::fs::create_dir_all(dir.join("policies")).expect("a policy directory");
    std::fs::write(dir.join("policies/org.yaml"), policy).expect("the policy");
    std::fs::create_dir_all(dir.join("upstream-keys")).expect("a key directory");
    std::fs::write(
        dir.join("upstream-keys/workspace.bench.key.svc"),
        "bench-upstream-key",
    )
    .expect("the upstream key");
}

/// The variable holding flags the bench adds to every gateway it starts.
pub const FLAGS_VARIABLE: &str = "TRAMONTANE_BENCH_GATEWAY_FLAGS";

/// The flags [`FLAGS_VARIABLE`] adds, split on whitespace; none by default.
pub fn extra_flags() -> Vec<String> {
    std::env::var(FLAGS_VARIABLE)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// A running gateway, stopped when dropped.
pub struct Gateway {
    child: Child,
    pub address: SocketAddr,
}

impl Gateway {
    /// Starts one gateway in `dir` in front of `upstream`; `store` is passed as `--store`
    /// when given (a shared store, for replicas).
    pub fn start(
        binary: &Path,
        dir: &Path,
        upstream: SocketAddr,
        store: Option<&str>,
        replica: usize,
    ) -> Gateway {
        let audit = std::fs::File::create(dir.join(format!("audit-{replica}.jsonl")))
            .expect("an audit file");
        let mut command = Command::new(binary);
        command
            .args([
                "gateway",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "off",
            ])
            .arg("--upstream")
            .arg(format!("http://{upstream}"))
            .args(["--upstream-keys", "upstream-keys", "--policies", "policies"])
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .env_remove("TRAMONTANE_POLICIES")
            .stdin(Stdio::null())
            .stdout(Stdio::from(audit))
            .stderr(Stdio::piped());
        if let Some(store) = store {
            command.args(["--store", store]);
        }
        // Flags beside the defaults, to measure what one changes (`--worker-threads 1`,
        // `--audit off`); the table is then not the default flags' and says so.
        command.args(extra_flags());
        let mut child = command.spawn().expect("the gateway starts");
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        // Drained for the gateway's whole life so a full pipe never blocks it.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                if event["message"] == "listening"
                    && let Some(address) = event["address"].as_str()
                {
                    let _ = tx.send(Ok(address.to_owned()));
                } else if event["level"] == "ERROR" || event.is_null() {
                    let _ = tx.send(Err(line));
                }
            }
        });
        loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(Ok(address)) => {
                    return Gateway {
                        child,
                        address: address.parse().expect("a socket address"),
                    };
                }
                Ok(Err(line)) => eprintln!("gateway: {line}"),
                Err(_) => {
                    let _ = child.kill();
                    panic!("the gateway did not start (see its messages above)");
                }
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
