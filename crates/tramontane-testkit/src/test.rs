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
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::fake_api::FakeApi;
use crate::fake_github::FakeGitHub;
use crate::output::Output;
use crate::process::{binary, spawn_and_wait};
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
        let command = self.command();
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

    /// The run as a process not yet started, in the same controlled environment, for the
    /// few tests that must drive it themselves: one output stream in the order a terminal
    /// shows it, a server left running, a signal sent mid-run. Expectations set on the
    /// builder are not checked; stdin is the caller's to set.
    pub fn command(&self) -> Command {
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
        command
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
