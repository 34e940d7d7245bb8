//! Which commit the policies come from, so a saved plan names the policy it was made from.

use std::path::Path;

/// `HEAD` of the repository holding `dir`, and whether files under `dir` differ from it.
/// Policies outside any repository have no commit; that is not an error.
pub fn locate(dir: &Path) -> (Option<String>, bool) {
    let Ok(repo) = git2::Repository::discover(dir) else {
        return (None, false);
    };
    let commit = repo
        .head()
        .ok()
        .and_then(|head| head.peel_to_commit().ok())
        .map(|commit| commit.id().to_string());
    let dirty =
        (|| {
            let workdir = repo.workdir()?.canonicalize().ok()?;
            let relative = dir
                .canonicalize()
                .ok()?
                .strip_prefix(&workdir)
                .ok()?
                .to_owned();
            let mut options = git2::StatusOptions::new();
            options.include_untracked(true).recurse_untracked_dirs(true);
            if !relative.as_os_str().is_empty() {
                options.pathspec(relative);
            }
            let statuses = repo.statuses(Some(&mut options)).ok()?;
            Some(statuses.iter().any(|entry| {
                entry.status() != git2::Status::CURRENT && !entry.status().is_ignored()
            }))
        })()
        .unwrap_or(false);
    (commit, dirty)
}

/// Why the policies at a git revision could not be read. Where git said why, its error is
/// kept whole as the source (its class and code tell a missing object from a corrupt one);
/// the message quotes only git's own words.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("`{dir}` is not inside a git repository")]
    NotARepository {
        dir: String,
        #[source]
        source: git2::Error,
    },
    #[error("`{dir}` is outside the work tree of the repository at `{root}`")]
    OutsideWorkTree { dir: String, root: String },
    #[error("`{rev}` names no commit in this repository ({})", .source.message())]
    UnknownRevision {
        rev: String,
        #[source]
        source: git2::Error,
    },
    #[error("`{path}` at `{rev}` is a file, not a directory of policy files")]
    NotADirectory { rev: String, path: String },
    #[error("cannot read `{rev}`: {}", .source.message())]
    Read {
        rev: String,
        #[source]
        source: git2::Error,
    },
    #[error("the policy files of `{path}` at `{rev}` exceed the limit of {limit}")]
    TooLarge {
        rev: String,
        path: String,
        limit: String,
    },
}

impl GitError {
    /// What to do, for the line under the error.
    pub fn help(&self) -> Option<&'static str> {
        Some(match self {
            GitError::NotARepository { .. } => {
                "run `tramontane diff` inside a clone of the policy repository"
            }
            GitError::OutsideWorkTree { .. } => {
                "pass --policies with a directory inside the repository"
            }
            GitError::UnknownRevision { .. } => {
                "fetch it first; in GitHub Actions check out with `fetch-depth: 0`, or on a pull request compare with `--base HEAD^1` after checking out with `fetch-depth: 2`"
            }
            GitError::NotADirectory { .. } => {
                "pass --policies with the directory that holds the policy files"
            }
            GitError::Read { .. } => "check the repository with `git fsck`",
            GitError::TooLarge { .. } => {
                "real policies are a few kilobytes per file: keep generated data out of the policy directory"
            }
        })
    }

    /// Git's own error, where git said why: its class, code and message.
    pub fn git(&self) -> Option<&git2::Error> {
        match self {
            GitError::NotARepository { source, .. }
            | GitError::UnknownRevision { source, .. }
            | GitError::Read { source, .. } => Some(source),
            GitError::OutsideWorkTree { .. }
            | GitError::NotADirectory { .. }
            | GitError::TooLarge { .. } => None,
        }
    }
}

/// The repository that holds a policy directory, and where the directory is inside it.
pub struct PolicyRepository {
    repo: git2::Repository,
    /// The policy directory relative to the repository's root, `/`-separated; empty for the
    /// root itself.
    relative: String,
}

/// The policy files of one revision.
pub struct FilesAtRevision {
    /// The full id of the commit the revision names.
    pub commit: String,
    /// `None` when the policy directory does not exist at that commit.
    pub files: Option<Vec<crate::policy::PolicyText>>,
}

impl PolicyRepository {
    /// Finds the repository holding `dir` (which need not exist in the work tree: it may
    /// exist only at some revision), searching up from `dir` or from the current directory.
    pub fn open(dir: &Path) -> Result<PolicyRepository, GitError> {
        let shown = dir.to_string_lossy().replace('\\', "/");
        let absolute = if dir.exists() {
            dir.canonicalize().ok()
        } else {
            std::env::current_dir()
                .and_then(|cwd| cwd.canonicalize())
                .ok()
                .map(|cwd| cwd.join(dir))
        };
        let start = absolute
            .as_deref()
            .and_then(|path| path.ancestors().find(|p| p.exists()))
            .unwrap_or(Path::new("."));
        let repo =
            git2::Repository::discover(start).map_err(|source| GitError::NotARepository {
                dir: shown.clone(),
                source,
            })?;
        let relative = match (repo.workdir(), absolute) {
            (Some(workdir), Some(absolute)) => {
                let root = workdir
                    .canonicalize()
                    .unwrap_or_else(|_| workdir.to_owned());
                let inside =
                    absolute
                        .strip_prefix(&root)
                        .map_err(|_| GitError::OutsideWorkTree {
                            dir: shown.clone(),
                            root: root.to_string_lossy().into_owned(),
                        })?;
                normalize(inside)
            }
            // A bare repository has no work tree: the directory is a path inside it.
            _ => normalize(dir),
        };
        Ok(PolicyRepository { repo, relative })
    }

    /// The policy directory as a path inside the repository.
    pub fn relative_dir(&self) -> &str {
        &self.relative
    }

    /// Every `*.yaml` / `*.yml` under the policy directory at `rev`, skipping hidden files and
    /// directories as a load from disk does. Symbolic links and submodules are not followed.
    pub fn files_at(&self, rev: &str) -> Result<FilesAtRevision, GitError> {
        let commit = self
            .repo
            .revparse_single(rev)
            .and_then(|object| object.peel_to_commit())
            .map_err(|source| GitError::UnknownRevision {
                rev: rev.to_owned(),
                source,
            })?;
        let read_error = |source: git2::Error| GitError::Read {
            rev: rev.to_owned(),
            source,
        };
        let root = commit.tree().map_err(read_error)?;
        let tree = if self.relative.is_empty() {
            root
        } else {
            let entry = match root.get_path(Path::new(&self.relative)) {
                Ok(entry) => entry,
                Err(error) if error.code() == git2::ErrorCode::NotFound => {
                    return Ok(FilesAtRevision {
                        commit: commit.id().to_string(),
                        files: None,
                    });
                }
                Err(error) => return Err(read_error(error)),
            };
            if entry.kind() != Some(git2::ObjectType::Tree) {
                return Err(GitError::NotADirectory {
                    rev: rev.to_owned(),
                    path: self.relative.clone(),
                });
            }
            self.repo.find_tree(entry.id()).map_err(read_error)?
        };

        let mut found: Vec<(std::path::PathBuf, git2::Oid)> = Vec::new();
        tree.walk(git2::TreeWalkMode::PreOrder, |parent, entry| {
            let Ok(name) = entry.name() else {
                return git2::TreeWalkResult::Skip;
            };
            if name.starts_with('.') {
                return git2::TreeWalkResult::Skip;
            }
            let is_file = matches!(entry.filemode(), 0o100644 | 0o100755);
            if is_file && (name.ends_with(".yaml") || name.ends_with(".yml")) {
                found.push((Path::new(parent).join(name), entry.id()));
            }
            git2::TreeWalkResult::Ok
        })
        .map_err(read_error)?;
        // The same order as a load from disk, so the same definition counts as the first.
        found.sort();

        // Sized from the object headers before any blob is loaded: a revision is as hostile
        // as a work tree, and a load from disk is held to the same totals.
        let shown_path = || {
            if self.relative.is_empty() {
                ".".to_owned()
            } else {
                self.relative.clone()
            }
        };
        if found.len() > crate::policy::discover::MAX_FILES {
            return Err(GitError::TooLarge {
                rev: rev.to_owned(),
                path: shown_path(),
                limit: format!("{} files", crate::policy::discover::MAX_FILES),
            });
        }
        let odb = self.repo.odb().map_err(read_error)?;
        let mut total: u64 = 0;
        for (_, id) in &found {
            let (size, _) = odb.read_header(*id).map_err(read_error)?;
            total += size as u64;
        }
        if total > crate::policy::discover::MAX_TOTAL_BYTES {
            return Err(GitError::TooLarge {
                rev: rev.to_owned(),
                path: shown_path(),
                limit: format!(
                    "{} MiB together",
                    crate::policy::discover::MAX_TOTAL_BYTES / 1024 / 1024
                ),
            });
        }

        let prefix = if self.relative.is_empty() {
            String::new()
        } else {
            format!("{}/", self.relative)
        };
        let mut files = Vec::with_capacity(found.len());
        for (path, id) in found {
            let blob = self.repo.find_blob(id).map_err(read_error)?;
            files.push(crate::policy::PolicyText {
                display: format!(
                    "{rev}:{prefix}{}",
                    path.to_string_lossy().replace('\\', "/")
                ),
                bytes: blob.content().to_vec(),
            });
        }
        Ok(FilesAtRevision {
            commit: commit.id().to_string(),
            files: Some(files),
        })
    }
}

/// A relative path as git names it: `/`-separated, without `.` parts or a trailing slash.
fn normalize(path: &Path) -> String {
    path.components()
        .filter_map(|part| match part {
            std::path::Component::Normal(name) => Some(name.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_errors_keep_what_git_said_and_say_what_to_do() {
        let outside = tempfile::tempdir().unwrap();
        let error = match PolicyRepository::open(&outside.path().join("policies")) {
            Ok(_) => return, // the temporary directory is inside a repository: nothing to test
            Err(error) => error,
        };
        assert!(matches!(error, GitError::NotARepository { .. }), "{error}");
        assert_eq!(
            error.git().map(git2::Error::code),
            Some(git2::ErrorCode::NotFound)
        );
        assert!(error.help().unwrap().contains("inside a clone"));

        let dir = tempfile::tempdir().unwrap();
        git2::Repository::init(dir.path()).unwrap();
        let repo = PolicyRepository::open(&dir.path().join("policies")).unwrap();
        let Err(error) = repo.files_at("origin/main") else {
            panic!("a revision of an empty repository was found");
        };
        assert_eq!(
            error.to_string(),
            "`origin/main` names no commit in this repository (revspec 'origin/main' not found)"
        );
        let git = error.git().expect("git's error is kept");
        assert_eq!(git.code(), git2::ErrorCode::NotFound);
        assert_eq!(git.class(), git2::ErrorClass::Reference);
        assert!(error.help().unwrap().contains("fetch-depth"));
    }
}
