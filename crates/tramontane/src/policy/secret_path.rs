//! Secret file paths, normalised the way people read them, so that two spellings of one file
//! are one file and no path leaves the repository.

use std::path::{Component, Path, PathBuf};

/// Why a secret file path is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretPathError {
    #[error("is an absolute path")]
    Absolute,
    #[error("leaves the repository through `..`")]
    Escapes,
    #[error("names the repository itself, not a file in it")]
    NotAFile,
}

impl SecretPathError {
    /// What to do, for the line under the error: the same for every way a path is refused.
    pub fn help(&self) -> Option<&'static str> {
        Some(
            "secret files are relative to the repository root: use a path inside it, such as `secrets/<workspace>/<key>.key`, or deliver elsewhere with `secret: { command: [...] }`",
        )
    }
}

/// `path` relative to the directory tramontane runs in, with `.`, empty components (`a//b`)
/// and `..` resolved lexically: `secrets/sub/../ci.key` is `secrets/ci.key`. Lexical on
/// purpose: the file may not exist yet, and the same text must name the same file on every
/// machine whatever links its checkout holds. Absolute paths, and paths whose `..` climb
/// above the repository, are refused: a policy from a pull request must not choose where on
/// the applying machine a secret lands.
pub fn normalize(path: &str) -> Result<PathBuf, SecretPathError> {
    let mut normalized = PathBuf::new();
    let mut depth = 0usize;
    for component in Path::new(path).components() {
        match component {
            Component::Prefix(_) | Component::RootDir => return Err(SecretPathError::Absolute),
            Component::CurDir => {}
            Component::ParentDir => {
                if depth == 0 {
                    return Err(SecretPathError::Escapes);
                }
                normalized.pop();
                depth -= 1;
            }
            Component::Normal(part) => {
                normalized.push(part);
                depth += 1;
            }
        }
    }
    if depth == 0 {
        return Err(SecretPathError::NotAFile);
    }
    Ok(normalized)
}

/// The first part of `normalized` (a path [`normalize`] returned) that is a symbolic link
/// under `root`, relative to `root`; `None` when none is, as far as the path exists.
///
/// A sink is refused when its path crosses a link, however harmless the link looks: the
/// lexical path is what the policy, `.gitignore` and review all read, and a committed link
/// (`secrets -> ../elsewhere`, `secrets -> public`) would send the secret somewhere none of
/// them see. `root` itself may be reached through links; it is the user's own choice.
pub fn first_link(root: &Path, normalized: &Path) -> Option<PathBuf> {
    let mut relative = PathBuf::new();
    for part in normalized.components() {
        relative.push(part);
        match std::fs::symlink_metadata(root.join(&relative)) {
            Ok(metadata) if metadata.file_type().is_symlink() => return Some(relative),
            Ok(metadata) if metadata.is_dir() => {}
            // Missing, or a file where a directory is needed: nothing further to follow.
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(path: &str) -> String {
        normalize(path).unwrap().to_string_lossy().into_owned()
    }

    #[test]
    fn spellings_of_one_file_normalise_alike() {
        for spelling in [
            "secrets/shared.key",
            "./secrets/shared.key",
            "secrets/sub/../shared.key",
            "secrets//shared.key",
            "secrets/./sub/./../shared.key",
            "other/../secrets/shared.key",
        ] {
            assert_eq!(ok(spelling), "secrets/shared.key", "{spelling}");
        }
        assert_eq!(ok("k"), "k");
    }

    #[test]
    fn paths_outside_the_repository_are_refused() {
        assert_eq!(normalize("/etc/passwd"), Err(SecretPathError::Absolute));
        assert_eq!(normalize("//server/k"), Err(SecretPathError::Absolute));
        assert_eq!(normalize("../k"), Err(SecretPathError::Escapes));
        assert_eq!(normalize("secrets/../../k"), Err(SecretPathError::Escapes));
        // Climbing out and back in still left the repository on the way.
        assert_eq!(
            normalize("secrets/../../repo/k"),
            Err(SecretPathError::Escapes)
        );
        assert_eq!(normalize("."), Err(SecretPathError::NotAFile));
        assert_eq!(normalize("secrets/.."), Err(SecretPathError::NotAFile));
    }

    #[cfg(unix)]
    #[test]
    fn a_link_anywhere_in_the_path_is_found() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("public/deep")).unwrap();
        std::os::unix::fs::symlink("public", root.path().join("secrets")).unwrap();
        std::os::unix::fs::symlink("../x", root.path().join("public/deep/k.key")).unwrap();
        let link = |path: &str| first_link(root.path(), &normalize(path).unwrap());
        assert_eq!(link("secrets/k.key"), Some(PathBuf::from("secrets")));
        assert_eq!(
            link("public/deep/k.key"),
            Some(PathBuf::from("public/deep/k.key"))
        );
        assert_eq!(link("public/deep/other.key"), None);
        assert_eq!(link("missing/k.key"), None);
    }
}
