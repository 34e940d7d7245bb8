//! Whether a secret file would be committed: a `file` sink inside a git work tree that its
//! ignore rules do not cover is one `git add -A` away from publishing a live key. `apply`
//! says so before writing; it does not refuse, since the user may mean to encrypt or move it.

use std::path::Path;

use crate::model::{DesiredOrg, SecretSink};

/// A secret file the policy names that git would pick up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnignoredSecretFile {
    /// The path as the policy wrote it.
    pub path: String,
    /// The `.gitignore` line that covers it: its top directory, or the file itself.
    pub ignore_line: String,
    /// The symbolic link its path crosses, relative to the root and `/`-separated: git's
    /// rules for the path say nothing of where the file would really land (`secrets ->
    /// public` with `secrets/` ignored). `apply` refuses to write through it.
    pub through_link: Option<String>,
}

/// Every `file` sink of `desired` that lies inside the git work tree holding `root` and is
/// not ignored there, in the policy's order. Outside git, or for paths outside the work
/// tree, there is nothing to warn about.
pub fn unignored_secret_files(desired: &DesiredOrg, root: &Path) -> Vec<UnignoredSecretFile> {
    let Ok(repo) = git2::Repository::discover(root) else {
        return Vec::new();
    };
    let Some(work_tree) = repo.workdir() else {
        return Vec::new();
    };
    let mut unignored = Vec::new();
    for workspace in desired.workspaces.values() {
        for key in workspace.keys.values() {
            let SecretSink::File(path) = &key.secret else {
                continue;
            };
            // Validation refused paths that escape the repository; nothing to say about them.
            let Ok(normalized) = crate::policy::secret_path::normalize(path) else {
                continue;
            };
            let absolute = root.join(&normalized);
            let Ok(in_work_tree) = absolute.strip_prefix(work_tree) else {
                continue;
            };
            let through_link = crate::policy::secret_path::first_link(root, &normalized)
                .map(|link| link.to_string_lossy().replace('\\', "/"));
            if through_link.is_none() && repo.is_path_ignored(in_work_tree).unwrap_or(true) {
                continue;
            }
            let mut components = in_work_tree.components();
            let first = components
                .next()
                .map(|component| component.as_os_str().to_string_lossy().into_owned())
                .unwrap_or_default();
            let ignore_line = if components.next().is_some() {
                format!("{first}/")
            } else {
                format!("/{first}")
            };
            if !unignored
                .iter()
                .any(|known: &UnignoredSecretFile| known.path == *path)
            {
                unignored.push(UnignoredSecretFile {
                    path: path.clone(),
                    ignore_line,
                    through_link,
                });
            }
        }
    }
    unignored
}
