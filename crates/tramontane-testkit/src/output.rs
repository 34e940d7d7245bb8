//! What a run of the binary produced, and the checks on it that need more than one line.

use std::path::{Path, PathBuf};

use crate::test::Test;
use crate::test_dir::TestDir;

/// What one run produced, and the directory it ran in.
#[derive(Debug)]
pub struct Output {
    /// The exit code; -1 when a signal ended the process.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub dir: TestDir,
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
