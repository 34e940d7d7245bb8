//! Finding the policy files under `--policies`, within bounds, without following links.
//!
//! A policy directory comes from a pull request, so it is hostile input: a link named
//! `org.yaml` pointing at `/proc/self/environ` must not be read (its text would be quoted in
//! a diagnostic), and a directory of huge files must fail before any of them is parsed.

use std::path::{Path, PathBuf};

use super::diagnostic::{Code, Diagnostic};
use super::{MAX_FILE_BYTES, io_reason, source};

/// Most bytes read across all policy files of one load. Real policies are kilobytes.
pub const MAX_TOTAL_BYTES: u64 = 16 * 1024 * 1024;
/// Most policy files one load reads.
pub const MAX_FILES: usize = 2_000;

/// What the walk found: the files to read and what it refused along the way.
pub(super) struct Discovered {
    /// Relative to the policy directory, sorted.
    pub files: Vec<PathBuf>,
    /// Entries that would have been read or walked but were not (symbolic links): errors,
    /// because a policy missing one of its files must not be planned as if it were whole.
    pub refused: Vec<Diagnostic>,
}

/// Every `*.yaml` / `*.yml` under `dir`, relative to it, sorted. Hidden entries are skipped.
/// Symbolic links are never followed (which also keeps a link cycle from trapping the walk):
/// one that names a policy file or points at a directory is reported. Fails, before reading
/// any file, when the files together exceed [`MAX_TOTAL_BYTES`] or number over [`MAX_FILES`].
pub(super) fn discover(dir: &Path) -> Result<Discovered, Box<Diagnostic>> {
    let shown = dir.to_string_lossy();
    let shown = shown.as_ref();
    let metadata = std::fs::metadata(dir).map_err(|error| {
        Box::new(
            Diagnostic::new(
                Code::Io,
                format!(
                    "cannot read the policy directory `{shown}`: {}",
                    io_reason(&error)
                ),
            )
            .help("run tramontane from the repository root, or pass --policies DIR"),
        )
    })?;
    if !metadata.is_dir() {
        return Err(Box::new(
            Diagnostic::new(Code::Io, format!("`{shown}` is not a directory"))
                .help("--policies takes the directory that holds the policy files"),
        ));
    }
    let mut files = Vec::new();
    let mut refused = Vec::new();
    let mut total_bytes: u64 = 0;
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let entries = std::fs::read_dir(dir.join(&relative)).map_err(|error| {
            Box::new(Diagnostic::new(
                Code::Io,
                format!(
                    "cannot read the directory `{}`: {}",
                    source::display_path(dir, &relative),
                    io_reason(&error)
                ),
            ))
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name_text) = name.to_str() else {
                continue;
            };
            if name_text.starts_with('.') {
                continue;
            }
            // The entry itself, never what a link points at.
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            let child = relative.join(&name);
            let is_policy_name = name_text.ends_with(".yaml") || name_text.ends_with(".yml");
            if file_type.is_symlink() {
                // Only whether the target is a directory is asked (a stat, never a read),
                // so that a link to a directory of policies is not silently left out.
                let points_at_directory = std::fs::metadata(entry.path()).is_ok_and(|m| m.is_dir());
                if is_policy_name || points_at_directory {
                    refused.push(symlink_refused(dir, &child));
                }
            } else if file_type.is_dir() {
                pending.push(child);
            } else if is_policy_name {
                let size = entry.metadata().map_or(0, |metadata| metadata.len());
                // A single file over its own limit is reported by name when read.
                total_bytes += size.min(MAX_FILE_BYTES + 1);
                files.push(child);
                if files.len() > MAX_FILES {
                    return Err(too_many_files(shown));
                }
                if total_bytes > MAX_TOTAL_BYTES {
                    return Err(too_many_bytes(shown, files.len()));
                }
            }
        }
    }
    files.sort();
    refused.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Discovered { files, refused })
}

fn symlink_refused(dir: &Path, relative: &Path) -> Diagnostic {
    let display = source::display_path(dir, relative);
    Diagnostic::new(
        Code::Symlink,
        format!("`{display}` is a symbolic link; tramontane does not follow links under the policy directory"),
    )
    .path(display)
    .help("replace the link with the file or directory it points to (a copy), or point --policies at the real directory")
}

pub(super) fn too_many_files(shown: &str) -> Box<Diagnostic> {
    Box::new(
        Diagnostic::new(
            Code::Limit,
            format!("`{shown}` holds more than {MAX_FILES} policy files"),
        )
        .path(shown)
        .help("check that --policies points at the policy directory, or merge small files"),
    )
}

/// The error when the files together are too large, noticed at the `files`-th file.
pub(super) fn too_many_bytes(shown: &str, files: usize) -> Box<Diagnostic> {
    Box::new(
        Diagnostic::new(
            Code::Limit,
            format!(
                "the policy files under `{shown}` hold more than {} MiB together (limit reached at {files} file{})",
                MAX_TOTAL_BYTES / 1024 / 1024,
                if files == 1 { "" } else { "s" }
            ),
        )
        .path(shown)
        .help("real policies are a few kilobytes per file: check that --policies points at the policy directory and holds no generated data"),
    )
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn links_are_reported_and_never_listed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("org.yaml"), "version: 1\n").unwrap();
        std::fs::create_dir(root.join("real")).unwrap();
        std::fs::write(root.join("real/team.yaml"), "version: 1\n").unwrap();
        std::os::unix::fs::symlink("/proc/self/environ", root.join("env.yaml")).unwrap();
        std::os::unix::fs::symlink(root.join("real"), root.join("linked-dir")).unwrap();
        // A link that is neither a policy file nor a directory is not a policy file at all.
        std::os::unix::fs::symlink(root.join("org.yaml"), root.join("notes.txt")).unwrap();
        let found = discover(root).unwrap();
        assert_eq!(
            found.files,
            vec![PathBuf::from("org.yaml"), PathBuf::from("real/team.yaml")]
        );
        let refused: Vec<_> = found
            .refused
            .iter()
            .map(|d| (d.code, d.path.clone().unwrap()))
            .collect();
        let shown = |name: &str| root.join(name).to_string_lossy().into_owned();
        assert_eq!(
            refused,
            vec![
                (Code::Symlink, shown("env.yaml")),
                (Code::Symlink, shown("linked-dir")),
            ]
        );
    }

    #[test]
    fn totals_are_capped_before_anything_is_read() {
        let dir = tempfile::tempdir().unwrap();
        // Sparse files: their size counts, though nothing was written.
        for i in 0..5 {
            let file = std::fs::File::create(dir.path().join(format!("f{i}.yaml"))).unwrap();
            file.set_len(MAX_FILE_BYTES - 1).unwrap();
        }
        let error = discover(dir.path()).err().unwrap();
        assert_eq!(error.code, Code::Limit);
        assert!(
            error.message.contains("more than 16 MiB together"),
            "{}",
            error.message
        );

        let dir = tempfile::tempdir().unwrap();
        for i in 0..=MAX_FILES {
            std::fs::write(dir.path().join(format!("f{i}.yaml")), "").unwrap();
        }
        let error = discover(dir.path()).err().unwrap();
        assert!(
            error.message.contains("more than 2000 policy files"),
            "{}",
            error.message
        );
    }
}
