//! The working tree as git sees it: every tracked file, and every untracked file git would
//! pick up with `git add -A` (not ignored). Ignored files are where secrets belong, so they
//! are not read.

use std::io::Read;
use std::path::{Path, PathBuf};

use git2::{Repository, Status, StatusOptions};

use super::detect::{self, FileContext};
use super::error::ScanError;
use super::finding::Finding;
use super::{Coverage, SecretSinks};

/// A file of the working tree: its path as git names it, and where it is on disk.
pub(super) struct WorkingFile {
    /// Relative to the work tree, `/`-separated (lossy where the name is not UTF-8).
    pub path: String,
    pub on_disk: PathBuf,
}

/// The files `scan` reads from the working tree.
pub(super) struct WorkingFiles {
    /// In the index, present on disk (a tracked file deleted from disk is not in the
    /// working tree), and neither a symbolic link nor a submodule.
    pub tracked: Vec<WorkingFile>,
    /// Untracked and not ignored.
    pub untracked: Vec<WorkingFile>,
}

const MODE_SYMLINK: u32 = 0o120000;
const MODE_GITLINK: u32 = 0o160000;

pub(super) fn list(repo: &Repository, work_tree: &Path) -> Result<WorkingFiles, ScanError> {
    let index = repo
        .index()
        .map_err(|error| ScanError::git("read the index", &error))?;
    let mut tracked = Vec::new();
    for entry in index.iter() {
        if entry.mode == MODE_SYMLINK || entry.mode == MODE_GITLINK {
            continue;
        }
        let file = working_file(work_tree, &entry.path);
        // Still there, and a regular file: a deleted file is not in the working tree.
        if std::fs::symlink_metadata(&file.on_disk).is_ok_and(|meta| meta.is_file()) {
            tracked.push(file);
        }
    }
    let mut options = StatusOptions::new();
    options
        .include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false)
        .include_unmodified(false)
        .exclude_submodules(true);
    let statuses = repo
        .statuses(Some(&mut options))
        .map_err(|error| ScanError::git("read the working tree's status", &error))?;
    let mut untracked = Vec::new();
    for entry in statuses.iter() {
        if !entry.status().contains(Status::WT_NEW) {
            continue;
        }
        let file = working_file(work_tree, entry.path_bytes());
        if std::fs::symlink_metadata(&file.on_disk).is_ok_and(|meta| meta.is_file()) {
            untracked.push(file);
        }
    }
    Ok(WorkingFiles { tracked, untracked })
}

/// Reads and checks every file of `files`.
pub(super) fn scan(
    files: &WorkingFiles,
    sinks: &SecretSinks,
    max_file_bytes: u64,
    coverage: &mut Coverage,
) -> Result<Vec<Finding>, ScanError> {
    let mut findings = Vec::new();
    for file in files.tracked.iter().chain(&files.untracked) {
        coverage.files += 1;
        let Some(bytes) = read_capped(&file.on_disk, max_file_bytes)? else {
            coverage.too_large(&file.path);
            continue;
        };
        if detect::is_binary(&bytes) {
            coverage.binary += 1;
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        let context = FileContext {
            is_secret_sink: sinks.paths.contains(&file.path),
        };
        for found in detect::find_secrets(&file.path, &text, context) {
            let mut finding = Finding::secret(
                found.rule,
                &file.path,
                found.line,
                found.column,
                found.secret,
            );
            finding.in_working_tree = true;
            findings.push(finding);
        }
    }
    Ok(findings)
}

/// The file's bytes, or `None` when it holds more than `max` bytes. Reads at most `max + 1`
/// bytes, so a file growing while it is read cannot take unbounded memory.
fn read_capped(path: &Path, max: u64) -> Result<Option<Vec<u8>>, ScanError> {
    let file = std::fs::File::open(path).map_err(|error| ScanError::read(path, error))?;
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|error| ScanError::read(path, error))?;
    Ok((bytes.len() as u64 <= max).then_some(bytes))
}

fn working_file(work_tree: &Path, git_path: &[u8]) -> WorkingFile {
    WorkingFile {
        path: String::from_utf8_lossy(git_path).into_owned(),
        on_disk: work_tree.join(path_from_git(git_path)),
    }
}

/// A path as git stores it (bytes, `/`-separated) as a path on this system.
#[cfg(unix)]
fn path_from_git(bytes: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
}

#[cfg(not(unix))]
fn path_from_git(bytes: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(bytes).replace('/', "\\"))
}
