//! An organization written out as a policy directory, the way a person would lay it out:
//! `organization.yaml` with the members, `teams.yaml`, and one file per workspace under
//! `workspaces/`, each pointing the editor at the schema when one is there to point at.

use std::path::{Path, PathBuf};

use jiff::civil::Date;

use super::write::to_yaml;
use crate::model::DesiredOrg;

/// A policy file that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write `{}`: {source}", path.display())]
pub struct WriteError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl WriteError {
    /// What to do, for the line under the error.
    pub fn help(&self) -> Option<&'static str> {
        Some("check the path and its permissions")
    }
}

/// Writes `desired` into `out` as policy files (the organization and its members, the
/// teams, one file per workspace), each headed with the day it was imported; returns how
/// many files were written.
pub fn write(out: &Path, desired: &DesiredOrg, today: Date) -> Result<usize, WriteError> {
    let mut files: Vec<(PathBuf, DesiredOrg)> = Vec::new();
    let mut head = DesiredOrg {
        organization: desired.organization.clone(),
        ..DesiredOrg::default()
    };
    head.members = desired.members.clone();
    files.push((PathBuf::from("organization.yaml"), head));
    if !desired.teams.is_empty() {
        files.push((
            PathBuf::from("teams.yaml"),
            DesiredOrg {
                teams: desired.teams.clone(),
                ..DesiredOrg::default()
            },
        ));
    }
    for (name, workspace) in &desired.workspaces {
        let mut part = DesiredOrg::default();
        part.workspaces.insert(name.clone(), workspace.clone());
        files.push((
            Path::new("workspaces").join(format!("{}.yaml", file_stem(name))),
            part,
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (relative, part) in &mut files {
        // Two workspace names can make the same file name: number the later ones.
        let mut candidate = relative.clone();
        let mut n = 2;
        while !seen.insert(candidate.clone()) {
            candidate = relative.with_file_name(format!(
                "{}-{n}.yaml",
                relative
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("workspace")
            ));
            n += 1;
        }
        let path = out.join(&candidate);
        let write = |source| WriteError {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(write)?;
        }
        let modeline = schema_relative_to(&path)
            .map(|schema| format!("# yaml-language-server: $schema={schema}\n"))
            .unwrap_or_default();
        let text = format!(
            "{modeline}# Imported by `tramontane import` on {today}.\n{}",
            to_yaml(part)
        );
        std::fs::write(&path, text).map_err(write)?;
    }
    Ok(files.len())
}

/// Whether `dir` already holds policy files (or directories that may hold some): an import
/// into it would mix two policies.
pub fn holds_policy_files(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.filter_map(Result::ok).any(|entry| {
        let path = entry.path();
        path.is_dir()
            || path
                .extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
    })
}

/// Where the schema sits, as an editor resolves it from `file`: the nearest
/// `policy.schema.json` or `schema/policy.schema.json` in the file's directory or above, up
/// to the repository root. None when there is none, since a modeline naming a missing file
/// only makes the editor complain (`tramontane schema > policy.schema.json` adds one).
fn schema_relative_to(file: &Path) -> Option<String> {
    let dir = std::path::absolute(file.parent()?).ok()?;
    for (levels_up, ancestor) in dir.ancestors().enumerate() {
        if let Some(schema) = SCHEMA_PATHS
            .iter()
            .find(|schema| ancestor.join(schema).is_file())
        {
            return Some(format!("{}{schema}", "../".repeat(levels_up)));
        }
        if ancestor.join(".git").exists() {
            break;
        }
    }
    None
}

/// Where a policy repository keeps the schema, as the README suggests, and as this project
/// keeps it.
const SCHEMA_PATHS: [&str; 2] = ["policy.schema.json", "schema/policy.schema.json"];

/// A file name for a workspace: lower case, letters, digits and dashes.
fn file_stem(name: &str) -> String {
    let stem: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let stem = stem.trim_matches('-').to_owned();
    if stem.is_empty() {
        "workspace".into()
    } else {
        stem
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_file_names_are_lower_case_letters_digits_and_dashes() {
        assert_eq!(file_stem("ML Workspace"), "ml-workspace");
        assert_eq!(file_stem("dev_team-2"), "dev_team-2");
        assert_eq!(file_stem("***"), "workspace");
    }

    #[test]
    fn a_directory_with_yaml_or_subdirectories_holds_policy_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!holds_policy_files(&dir.path().join("missing")));
        std::fs::write(dir.path().join("README.md"), "notes").unwrap();
        assert!(!holds_policy_files(dir.path()));
        std::fs::write(dir.path().join("org.yml"), "version: 1").unwrap();
        assert!(holds_policy_files(dir.path()));
    }
}
