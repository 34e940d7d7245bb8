//! Where relative paths land. tramontane's own state (`.tramontane/`: the audit log, the
//! journal, the demo org) and the files a policy names (secret file sinks, and the directory
//! a command sink runs in) belong to the policy repository, as `.terraform/` belongs to its
//! configuration: a command run from another directory with `--policies` reads and writes
//! them where a run at the repository's root would. Paths given for one command (`--out`, a
//! plan file, `--reviewed-plan`, `sandbox:PATH`) stay relative to the shell's directory, as
//! every command line's do (and as the shell completes them).

use std::path::{Path, PathBuf};

/// The root of the repository holding the policies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepositoryRoot(PathBuf);

impl RepositoryRoot {
    /// The git work tree holding `policies`, or, outside git, the directory holding it.
    pub fn of_policies(policies: &Path) -> RepositoryRoot {
        let policies = std::path::absolute(policies).unwrap_or_else(|_| policies.to_owned());
        let work_tree = git2::Repository::discover(&policies)
            .ok()
            .and_then(|repo| repo.workdir().map(Path::to_owned));
        let root = work_tree
            .or_else(|| policies.parent().map(Path::to_owned))
            .unwrap_or(policies);
        RepositoryRoot(root)
    }

    /// The shell's directory, for a command that reads no policies (`import`).
    pub fn current() -> RepositoryRoot {
        RepositoryRoot(std::env::current_dir().unwrap_or_default())
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `path` itself when absolute, else the same path under the root.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.0.join(path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_git_the_root_is_the_directory_holding_the_policies() {
        let dir = tempfile::tempdir().unwrap();
        let policies = dir.path().join("repo/policies");
        std::fs::create_dir_all(&policies).unwrap();
        let root = RepositoryRoot::of_policies(&policies);
        assert_eq!(root.path(), dir.path().join("repo"));
        assert_eq!(
            root.resolve(Path::new(".tramontane/audit.jsonl")),
            dir.path().join("repo/.tramontane/audit.jsonl")
        );
        assert_eq!(
            root.resolve(Path::new("/var/log/a")),
            Path::new("/var/log/a")
        );
    }

    #[test]
    fn in_git_the_root_is_the_work_tree() {
        let dir = tempfile::tempdir().unwrap();
        git2::Repository::init(dir.path()).unwrap();
        let policies = dir.path().join("infra/mistral/policies");
        std::fs::create_dir_all(&policies).unwrap();
        let root = RepositoryRoot::of_policies(&policies);
        assert_eq!(
            root.path().canonicalize().unwrap(),
            dir.path().canonicalize().unwrap()
        );
    }
}
