//! The scratch directory a test writes policies into and runs the binary in.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::output::Output;
use crate::test::Test;

/// A temporary directory, removed when the last handle to it goes. Cloning shares it, so an
/// [`Output`] carries the directory its run left behind and the next run can go on there.
#[derive(Clone)]
pub struct TestDir(Arc<tempfile::TempDir>);

impl TestDir {
    pub fn new() -> TestDir {
        TestDir(Arc::new(
            tempfile::tempdir().expect("a temporary directory"),
        ))
    }

    /// A scratch directory holding a copy of the example organization's `policies/`, from
    /// the suite's own fixture (see [`example_policies`]).
    pub fn with_example_policies() -> TestDir {
        let dir = TestDir::new();
        dir.copy_example_policies();
        dir
    }

    /// Copies the suite's fixture of the example `policies/` into `policies/` here.
    pub fn copy_example_policies(&self) -> &TestDir {
        copy_dir(&example_policies(), &self.join("policies"));
        self
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// A path inside the directory.
    pub fn join(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.path().join(relative)
    }

    /// Writes a file under the directory, creating its parents.
    pub fn write(&self, relative: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> &TestDir {
        let path = self.join(relative);
        let parent = path.parent().expect("a file inside the directory");
        std::fs::create_dir_all(parent)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", parent.display()));
        std::fs::write(&path, contents)
            .unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
        self
    }

    /// The text of a file under the directory.
    pub fn read(&self, relative: impl AsRef<Path>) -> String {
        let path = self.join(relative);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
    }

    /// Replaces `from` with `to` in a file under the directory, failing the test when `from`
    /// is not there: an edit that silently does nothing proves nothing.
    pub fn edit(&self, relative: impl AsRef<Path>, from: &str, to: &str) -> &TestDir {
        let relative = relative.as_ref();
        let text = self.read(relative);
        assert!(
            text.contains(from),
            "`{from}` is not in {}:\n{text}",
            relative.display()
        );
        self.write(relative, text.replacen(from, to, 1))
    }

    /// A run of the binary in this directory.
    pub fn test(&self) -> Test {
        Test::in_dir(self)
    }

    /// Runs the binary here with `args` and nothing else set.
    pub fn run(&self, args: &[&str]) -> Output {
        self.test().args(args).run()
    }

    /// Runs `git` here, with a fixed author and none of the caller's repository variables,
    /// failing the test when it fails; returns its stdout.
    pub fn git(&self, args: &[&str]) -> String {
        let output = std::process::Command::new("git")
            .current_dir(self.path())
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .output()
            .expect("git runs");
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("git's stdout is UTF-8")
    }
}

impl Default for TestDir {
    fn default() -> TestDir {
        TestDir::new()
    }
}

impl std::fmt::Debug for TestDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("TestDir").field(&self.path()).finish()
    }
}

/// The workspace's root, where the schema, the README and the docs live. Its `policies/` is
/// the example a reader edits while following the README: no test reads it (use
/// [`example_policies`]).
pub fn repo_root() -> PathBuf {
    // This crate lives at crates/tramontane-testkit.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The suite's own copy of the example organization's `policies/`, which tests copy from.
/// The README has a reader edit the repository's `policies/` (break it for `validate`, issue
/// a gateway key into it), so a test reading that would pass or fail with the reader's
/// edits; `test_example` checks this copy against the example as committed.
pub fn example_policies() -> PathBuf {
    repo_root().join("crates/tramontane-cli/tests/fixtures/example/policies")
}

/// Copies a directory tree: what [`TestDir::copy_example_policies`] does, for a test that
/// needs the example somewhere else.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
