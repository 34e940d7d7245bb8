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
