//! One run of the real `tramontane` binary, described step by step and checked when it ends:
//!
//! ```no_run
//! # use tramontane_testkit::Test;
//! let output = Test::new()
//!     .example_policies()
//!     .args(["plan", "--org", "sandbox:demo"])
//!     .expect_code(0)
//!     .expect_stdout_contains("Plan: ")
//!     .run();
//! // The next run goes on in the directory the first left behind.
//! Test::in_dir(&output.dir).args(["apply", "--org", "sandbox:demo", "--auto-approve"]).run();
//! ```
//!
//! The environment does not depend on the machine: every variable tramontane, Mistral or
//! GitHub reads is removed, the day is pinned to [`TODAY`], and the terminal is dumb.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::fake_api::FakeApi;
use crate::fake_github::FakeGitHub;
use crate::test_dir::TestDir;

/// The day expiry checks count from in every test, so results never drift with the calendar.
pub const TODAY: &str = "2026-06-01";

/// How long a run may take before it counts as a hang and the test fails.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Variables removed from the environment the binary inherits: whatever the machine running
/// the tests has set for tramontane, the Mistral API or GitHub must not change a result.
const CLEARED_PREFIXES: &[&str] = &["TRAMONTANE_", "MISTRAL_", "GITHUB_"];
const CLEARED: &[&str] = &["NO_COLOR", "GH_TOKEN", "CLICOLOR_FORCE"];

/// A run of the binary, built up and then [`run`](Test::run).
#[must_use = "a Test does nothing until it is run"]
pub struct Test {
    dir: TestDir,
    current_dir: Option<PathBuf>,
    args: Vec<OsString>,
    /// In order; `None` removes the variable.
    env: Vec<(OsString, Option<OsString>)>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    expected_code: Option<i32>,
    expected_stdout: Option<String>,
    expected_stderr: Option<String>,
    stdout_contains: Vec<String>,
    stderr_contains: Vec<String>,
    secrets: Vec<String>,
}

/// What one run produced, and the directory it ran in.
#[derive(Debug)]
pub struct Output {
    /// The exit code; -1 when a signal ended the process.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub dir: TestDir,
}

impl Test {
    /// A run in a new, empty scratch directory.
    pub fn new() -> Test {
        Test::in_dir(&TestDir::new())
    }

    /// A run in `dir`, after whatever earlier runs left there.
    pub fn in_dir(dir: &TestDir) -> Test {
        Test {
            dir: dir.clone(),
            current_dir: None,
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            timeout: DEFAULT_TIMEOUT,
            expected_code: None,
            expected_stdout: None,
            expected_stderr: None,
            stdout_contains: Vec::new(),
            stderr_contains: Vec::new(),
            secrets: Vec::new(),
        }
    }

    /// The scratch directory the run happens in.
    pub fn dir(&self) -> &TestDir {
        &self.dir
    }

    /// Copies the example organization's `policies/` into the scratch directory.
    pub fn example_policies(self) -> Test {
        self.dir.copy_example_policies();
        self
    }

    /// Writes a file under the scratch directory before the run, creating its parents.
    pub fn write(self, path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> Test {
        self.dir.write(path, contents);
        self
    }

    /// Runs in `dir`: relative to the scratch directory, or absolute (the repository, for
    /// commands that read its files).
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Test {
        self.current_dir = Some(self.dir.join(dir));
        self
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Test {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Test
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|arg| arg.as_ref().to_owned()));
        self
    }

    /// Sets a variable for the run; a later setting of the same name wins.
    pub fn env(mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Test {
        self.env
            .push((name.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Removes a variable the run would otherwise inherit.
    pub fn env_remove(mut self, name: impl AsRef<OsStr>) -> Test {
        self.env.push((name.as_ref().to_owned(), None));
        self
    }

    /// The policy directory, as `TRAMONTANE_POLICIES` gives it to every command that reads
    /// one (relative to where the run happens).
    pub fn policies(self, dir: impl AsRef<OsStr>) -> Test {
        self.env("TRAMONTANE_POLICIES", dir)
    }

    /// Counts expiries from this instant (RFC 3339) rather than noon of [`TODAY`].
    pub fn now(self, instant: &str) -> Test {
        self.env("TRAMONTANE_NOW", instant)
    }

    /// Counts expiries from noon of this day rather than [`TODAY`].
    pub fn today(self, day: &str) -> Test {
        self.env("TRAMONTANE_TODAY", day)
    }

    /// Points `--org mistral` at the fake Admin API with the key it accepts, and fails the
    /// test if that key shows up in the output.
    pub fn fake_api(self, api: &FakeApi) -> Test {
        let key = api.state.key.clone();
        self.env("MISTRAL_ADMIN_API_KEY", &key)
            .env("MISTRAL_API_URL", &api.url)
            .no_secret_in_output(&key)
    }

    /// Points `comment` at the fake GitHub with the token it accepts, and fails the test if
    /// that token shows up in the output.
    pub fn fake_github(self, github: &FakeGitHub) -> Test {
        let token = github.state.token.clone();
        self.env("GITHUB_TOKEN", &token)
            .env("GITHUB_API_URL", &github.url)
            .no_secret_in_output(&token)
    }

    /// What the binary reads on stdin; without it, stdin is empty and not a terminal.
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Test {
        self.stdin = Some(input.into());
        self
    }

    /// Fails the test if the run takes longer (killing it): a hang is a failure, not a
    /// stuck test run. Ten minutes unless set.
    pub fn timeout(mut self, limit: Duration) -> Test {
        self.timeout = limit;
        self
    }

    pub fn expect_code(mut self, code: i32) -> Test {
        self.expected_code = Some(code);
        self
    }

    /// Stdout must be exactly this.
    pub fn expect_stdout(mut self, stdout: impl Into<String>) -> Test {
        self.expected_stdout = Some(stdout.into());
        self
    }

    /// Stderr must be exactly this.
    pub fn expect_stderr(mut self, stderr: impl Into<String>) -> Test {
        self.expected_stderr = Some(stderr.into());
        self
    }

    pub fn expect_stdout_contains(mut self, text: impl Into<String>) -> Test {
        self.stdout_contains.push(text.into());
        self
    }

    pub fn expect_stderr_contains(mut self, text: impl Into<String>) -> Test {
        self.stderr_contains.push(text.into());
        self
    }

    /// Fails the test if `secret` appears in stdout, stderr or any file tramontane reports
    /// into (see [`Output::assert_no_secret`]).
    pub fn no_secret_in_output(mut self, secret: impl Into<String>) -> Test {
        self.secrets.push(secret.into());
        self
    }

    /// Runs the binary, waits for it (killing it at the timeout), checks every expectation
    /// and returns what it produced.
    pub fn run(self) -> Output {
        let current_dir = self
            .current_dir
            .clone()
            .unwrap_or_else(|| self.dir.path().to_owned());
        let mut command = Command::new(binary());
        command.current_dir(&current_dir).args(&self.args);
        for (name, _) in std::env::vars_os() {
            let text = name.to_string_lossy();
            if CLEARED_PREFIXES
                .iter()
                .any(|prefix| text.starts_with(prefix))
                || CLEARED.contains(&text.as_ref())
            {
                command.env_remove(&name);
            }
        }
        command.env("TRAMONTANE_TODAY", TODAY).env("TERM", "dumb");
        for (name, value) in &self.env {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        let shown = self.command_line();
        let (code, stdout, stderr) = spawn_and_wait(command, self.stdin.as_deref(), self.timeout)
            .unwrap_or_else(|problem| panic!("{shown}: {problem}"));
        let output = Output {
            code,
            stdout: String::from_utf8(stdout)
                .unwrap_or_else(|_| panic!("{shown}: stdout is not UTF-8")),
            stderr: String::from_utf8(stderr)
                .unwrap_or_else(|_| panic!("{shown}: stderr is not UTF-8")),
            dir: self.dir.clone(),
        };
        self.check(&shown, &output);
        output
    }

    /// The run as a person would type it, for failure messages.
    fn command_line(&self) -> String {
        let args: Vec<String> = self
            .args
            .iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        format!("tramontane {}", args.join(" "))
    }

    fn check(&self, shown: &str, output: &Output) {
        let transcript = || {
            format!(
                "{shown}\n--- exit code {}\n--- stdout\n{}--- stderr\n{}",
                output.code, output.stdout, output.stderr
            )
        };
        if let Some(code) = self.expected_code {
            assert_eq!(output.code, code, "exit code\n{}", transcript());
        }
        if let Some(stdout) = &self.expected_stdout {
            assert_eq!(&output.stdout, stdout, "stdout\n{}", transcript());
        }
        if let Some(stderr) = &self.expected_stderr {
            assert_eq!(&output.stderr, stderr, "stderr\n{}", transcript());
        }
        for text in &self.stdout_contains {
            assert!(
                output.stdout.contains(text.as_str()),
                "stdout lacks `{text}`\n{}",
                transcript()
            );
        }
        for text in &self.stderr_contains {
            assert!(
                output.stderr.contains(text.as_str()),
                "stderr lacks `{text}`\n{}",
                transcript()
            );
        }
        for secret in &self.secrets {
            output.assert_no_secret(secret);
        }
    }
}

impl Default for Test {
    fn default() -> Test {
        Test::new()
    }
}

impl Output {
    /// Stdout as JSON, failing the test when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|error| {
            panic!(
                "stdout is not JSON ({error}):\n{}\n--- stderr\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Stdout then stderr, for a failure message.
    pub fn transcript(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// A run of the binary in the same directory, after this one.
    pub fn then(&self) -> Test {
        Test::in_dir(&self.dir)
    }

    /// Fails the test if `secret` appears in stdout, stderr, or a file tramontane reports
    /// into: anything under `.tramontane/` (the audit log, the key journal, the demo
    /// sandbox) and every `*.json`, `*.jsonl` or `*.md` in the scratch directory (saved
    /// plans, sandbox orgs, step summaries). A secret's own sink is none of these.
    pub fn assert_no_secret(&self, secret: &str) {
        assert!(!secret.is_empty(), "an empty secret proves nothing");
        assert!(
            !self.stdout.contains(secret),
            "a secret is on stdout:\n{}",
            self.stdout
        );
        assert!(
            !self.stderr.contains(secret),
            "a secret is on stderr:\n{}",
            self.stderr
        );
        for file in reported_files(self.dir.path()) {
            let Ok(bytes) = std::fs::read(&file) else {
                continue;
            };
            assert!(
                !bytes
                    .windows(secret.len())
                    .any(|window| window == secret.as_bytes()),
                "a secret is in {}",
                file.display()
            );
        }
    }
}

/// The files under `root` tramontane writes reports, logs and state into.
fn reported_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![(root.to_owned(), false)];
    while let Some((dir, inside_state)) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                let state = inside_state || entry.file_name() == ".tramontane";
                pending.push((path, state));
            } else if kind.is_file() {
                let reported = path
                    .extension()
                    .is_some_and(|ext| ext == "json" || ext == "jsonl" || ext == "md");
                if inside_state || reported {
                    found.push(path);
                }
            }
        }
    }
    found
}

/// The `tramontane` binary Cargo built beside the running test: test executables live in
/// `target/<profile>/deps/`, binaries one level up (as assert_cmd's `cargo_bin` finds them).
/// `CARGO_BIN_EXE_tramontane`, when set at run time, wins.
pub fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(path) = std::env::var_os("CARGO_BIN_EXE_tramontane") {
            return PathBuf::from(path);
        }
        let mut dir = std::env::current_exe().expect("the test executable's path");
        dir.pop();
        if dir.ends_with("deps") {
            dir.pop();
        }
        let path = dir.join(format!("tramontane{}", std::env::consts::EXE_SUFFIX));
        assert!(
            path.is_file(),
            "no tramontane binary at {}: build it first (`cargo build -p tramontane-cli`)",
            path.display()
        );
        path
    })
}

/// Runs `command` to its end or the timeout, feeding it `stdin`; the exit code (-1 for a
/// signal), stdout and stderr. Both streams are read as the process writes them, so a
/// chatty run never blocks on a full pipe.
fn spawn_and_wait(
    mut command: Command,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<(i32, Vec<u8>, Vec<u8>), String> {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|error| format!("cannot start the binary: {error}"))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let input = input.to_vec();
        // A process that exits without reading all of it closes the pipe: not our failure.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let stdout = collect(child.stdout.take());
    let stderr = collect(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|error| format!("cannot wait for the binary: {error}"))?
        {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            // A grandchild (a secret sink) may still hold the pipes: take what is there
            // rather than wait for it.
            return Err(format!(
                "still running after {timeout:?}, so it was killed; stderr so far:\n{}",
                String::from_utf8_lossy(&stderr.0.lock().unwrap())
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ok((
        status.code().unwrap_or(-1),
        stdout.finish(),
        stderr.finish(),
    ))
}

/// A stream read to its end on a thread of its own, into a buffer shared with the caller.
struct Collected(Arc<Mutex<Vec<u8>>>, Option<std::thread::JoinHandle<()>>);

fn collect(stream: Option<impl Read + Send + 'static>) -> Collected {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let handle = stream.map(|mut stream| {
        let buffer = buffer.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(read) = stream.read(&mut chunk) {
                if read == 0 {
                    break;
                }
                buffer.lock().unwrap().extend_from_slice(&chunk[..read]);
            }
        })
    });
    Collected(buffer, handle)
}

impl Collected {
    fn finish(self) -> Vec<u8> {
        if let Some(handle) = self.1 {
            let _ = handle.join();
        }
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(dir: &TestDir, stdout: &str, stderr: &str) -> Output {
        Output {
            code: 0,
            stdout: stdout.into(),
            stderr: stderr.into(),
            dir: dir.clone(),
        }
    }

    fn leaks(output: &Output, secret: &str) -> bool {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            output.assert_no_secret(secret)
        }))
        .is_err()
    }

    #[test]
    fn a_secret_is_found_on_either_stream_and_in_every_reported_file() {
        let dir = TestDir::new();
        assert!(!leaks(&output(&dir, "plan", "done"), "sk-123"));
        assert!(leaks(&output(&dir, "key sk-123", ""), "sk-123"));
        assert!(leaks(&output(&dir, "", "key sk-123"), "sk-123"));
        for file in [
            ".tramontane/audit.jsonl",
            ".tramontane/sandbox/demo.json",
            ".tramontane/lock/anything",
            "plan.json",
            "nested/summary.md",
        ] {
            let dir = TestDir::new();
            dir.write(file, "x sk-123 y");
            assert!(leaks(&output(&dir, "", ""), "sk-123"), "{file}");
        }
    }

    #[test]
    fn a_secret_in_its_own_sink_is_where_it_belongs() {
        let dir = TestDir::new();
        dir.write("secrets/ci.key", "sk-123")
            .write("policies/org.yaml", "sk-123");
        assert!(!leaks(&output(&dir, "", ""), "sk-123"));
    }
}
