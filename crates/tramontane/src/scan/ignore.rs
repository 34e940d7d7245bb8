//! Files git would commit that should never be: `.env` files, and the files policies deliver
//! new keys' secrets to. What counts as ignored is git's own answer (`.gitignore` at every
//! level, `.git/info/exclude`, the global excludes file), asked through libgit2.

use std::collections::HashSet;
use std::path::Path;

use crate::apply::git_ignore;
use crate::model::SecretSink;
use crate::policy::source::Span;
use crate::policy::{self, LoadOptions, yaml};

use super::detect::Rule;
use super::finding::Finding;
use super::tree::WorkingFiles;

/// The policy directory `scan` reads secret sinks from, relative to the work tree.
pub const POLICY_DIR: &str = "policies";

/// Suffixes of `.env.<suffix>` files that are templates, meant to be committed.
const ENV_TEMPLATE_SUFFIXES: &[&str] = &["example", "sample", "template", "dist", "defaults"];

/// Whether the file at `path` is a `.env` file: `.env`, `.envrc` (direnv), or
/// `.env.<anything>` except templates (`.env.example`, `.env.sample`, `.env.template`,
/// `.env.dist`, `.env.defaults`).
pub fn is_env_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name == ".env" || name == ".envrc" {
        return true;
    }
    name.strip_prefix(".env.").is_some_and(|suffix| {
        !suffix.is_empty() && !ENV_TEMPLATE_SUFFIXES.contains(&suffix.to_ascii_lowercase().as_str())
    })
}

/// `env-file-tracked` for every tracked `.env` file, `env-not-ignored` for every untracked
/// one git does not ignore.
pub(super) fn env_files(files: &WorkingFiles) -> Vec<Finding> {
    let tracked = files
        .tracked
        .iter()
        .filter(|file| is_env_file(&file.path))
        .map(|file| (Rule::EnvFileTracked, file));
    let untracked = files
        .untracked
        .iter()
        .filter(|file| is_env_file(&file.path))
        .map(|file| (Rule::EnvNotIgnored, file));
    tracked
        .chain(untracked)
        .map(|(rule, file)| {
            let mut finding = Finding::file(rule, &file.path, 1, 1, "");
            finding.in_working_tree = true;
            finding
        })
        .collect()
}

/// The `file` secret sinks the repository's policies name.
#[derive(Debug, Default)]
pub struct SecretSinks {
    /// Every sink path, relative to the work tree and `/`-separated: a file there holds a
    /// bare key, with no context of its own.
    pub paths: HashSet<String>,
    /// `sink-not-ignored` for each sink git would commit, at the policy line naming it.
    pub unignored: Vec<Finding>,
}

/// Reads the policies under [`POLICY_DIR`] of `work_tree`, if there are any. A policy with
/// errors still yields the sinks of its valid parts; `validate` is where errors are told.
pub(super) fn secret_sinks(work_tree: &Path) -> SecretSinks {
    let dir = work_tree.join(POLICY_DIR);
    if !dir.is_dir() {
        return SecretSinks::default();
    }
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let loaded = policy::load(&dir, &LoadOptions::new(today));
    let mut paths = HashSet::new();
    for workspace in loaded.desired.workspaces.values() {
        for key in workspace.keys.values() {
            if let SecretSink::File(path) = &key.secret
                && let Ok(normalized) = policy::secret_path::normalize(path)
            {
                paths.insert(git_path(&normalized));
            }
        }
    }
    let named = sink_lines(&loaded, work_tree);
    let mut unignored = Vec::new();
    for file in git_ignore::unignored_secret_files(&loaded.desired, work_tree) {
        let place = named.iter().find(|named| named.sink == file.path);
        let (policy_file, line, column, owner) = match place {
            Some(named) => (
                named.policy_file.clone(),
                named.span.start.line,
                named.span.start.column,
                format!(" of key `{}` in workspace `{}`", named.key, named.workspace),
            ),
            None => (file.path.clone(), 1, 1, String::new()),
        };
        let detail = match &file.through_link {
            Some(link) => format!(
                "secret file `{}`{owner} is reached through the symbolic link `{link}`, so git's ignore rules for its path do not cover where it lands; replace the link with a directory",
                file.path
            ),
            None => format!(
                "secret file `{}`{owner} is not ignored by git; add `{}` to .gitignore",
                file.path, file.ignore_line
            ),
        };
        let mut finding =
            Finding::file(Rule::SinkNotIgnored, &policy_file, line, column, &file.path)
                .with_detail(detail);
        finding.in_working_tree = true;
        unignored.push(finding);
    }
    SecretSinks { paths, unignored }
}

/// A `secret: {file: …}` line of a policy file.
struct SinkLine {
    /// The policy file, relative to the work tree.
    policy_file: String,
    span: Span,
    sink: String,
    workspace: String,
    key: String,
}

/// Every `workspaces.<w>.keys.<k>.secret.file` value, with where it is written.
fn sink_lines(loaded: &policy::LoadedPolicy, work_tree: &Path) -> Vec<SinkLine> {
    let mut lines = Vec::new();
    for (id, source) in loaded.sources.iter() {
        let Ok(Some(root)) = yaml::parse(id, &source.text) else {
            continue;
        };
        let policy_file = source
            .path
            .strip_prefix(work_tree)
            .map(git_path)
            .unwrap_or_else(|_| source.display.clone());
        let Some(workspaces) = root.get("workspaces") else {
            continue;
        };
        for workspace in workspaces.value.entries() {
            let Some(keys) = workspace.value.get("keys") else {
                continue;
            };
            for key in keys.value.entries() {
                let file = key
                    .value
                    .get("secret")
                    .and_then(|secret| secret.value.get("file"));
                if let Some(file) = file
                    && let Some(sink) = file.value.as_str()
                {
                    lines.push(SinkLine {
                        policy_file: policy_file.clone(),
                        span: file.value.span,
                        sink: sink.to_owned(),
                        workspace: workspace.key.clone(),
                        key: key.key.clone(),
                    });
                }
            }
        }
    }
    lines
}

/// A relative path as git writes it: `/`-separated.
fn git_path(path: &Path) -> String {
    path.components()
        .map(|component| component.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_are_told_from_their_templates() {
        for env in [
            ".env",
            "app/.env",
            ".env.local",
            ".env.production",
            ".envrc",
        ] {
            assert!(is_env_file(env), "{env}");
        }
        for not_env in [
            ".env.example",
            "app/.env.sample",
            ".env.template",
            ".env.dist",
            ".env.defaults",
            ".env.EXAMPLE",
            "env",
            "prod.env",
            ".environment",
            ".env.",
        ] {
            assert!(!is_env_file(not_env), "{not_env}");
        }
    }
}
