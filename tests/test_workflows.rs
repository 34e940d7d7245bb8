//! The workflows a policy repository copies, and this project's own, read as a security
//! review would: the admin key only where tramontane runs, every third-party action pinned
//! to a commit, write permissions only on the jobs that write.

use crate::common::repo_root;

/// Every workflow and the composite action, with their text.
fn workflow_files() -> Vec<(String, String)> {
    let root = repo_root();
    let mut files = vec![("action.yml".to_owned(), root.join("action.yml"))];
    for entry in std::fs::read_dir(root.join(".github/workflows")).unwrap() {
        let path = entry.unwrap().path();
        if path
            .extension()
            .is_some_and(|ext| ext == "yml" || ext == "yaml")
        {
            let name = format!(
                ".github/workflows/{}",
                path.file_name().unwrap().to_string_lossy()
            );
            files.push((name, path));
        }
    }
    assert!(files.len() >= 5, "{files:?}");
    files
        .into_iter()
        .map(|(name, path)| (name, std::fs::read_to_string(path).unwrap()))
        .collect()
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches([' ', '-']).len()
}

/// The keys enclosing line `at` of a block-style YAML file, innermost first.
fn ancestors(lines: &[&str], at: usize) -> Vec<String> {
    let mut keys = Vec::new();
    let mut depth = indent(lines[at]);
    for line in lines[..at].iter().rev() {
        let content = line.trim_start_matches([' ', '-']);
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if indent(line) < depth {
            depth = indent(line);
            keys.push(
                content
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
            );
        }
    }
    keys
}

#[test]
fn secrets_reach_only_the_steps_that_use_them() {
    for (name, text) in workflow_files() {
        let lines: Vec<&str> = text.lines().collect();
        for (at, line) in lines.iter().enumerate() {
            if !line.contains("secrets.") || line.trim_start().starts_with('#') {
                continue;
            }
            let keys = ancestors(&lines, at);
            assert!(
                keys.iter().any(|key| key == "steps"),
                "{name}:{}: a secret outside any step (in {:?}): {line}",
                at + 1,
                keys
            );
        }
    }
}

#[test]
fn third_party_actions_are_pinned_to_a_commit() {
    let mut checked = 0;
    for (name, text) in workflow_files() {
        for (at, line) in text.lines().enumerate() {
            let Some(used) = line
                .trim_start()
                .trim_start_matches("- ")
                .strip_prefix("uses:")
            else {
                continue;
            };
            let (reference, comment) = used.split_once('#').unwrap_or((used, ""));
            let reference = reference.trim();
            if reference.starts_with("./") {
                continue;
            }
            let (action, commit) = reference
                .split_once('@')
                .unwrap_or_else(|| panic!("{name}:{}: no version: {line}", at + 1));
            assert!(action.contains('/'), "{name}:{}: {line}", at + 1);
            assert!(
                commit.len() == 40
                    && commit
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
                "{name}:{}: {action} is pinned to `{commit}`, not a full commit SHA",
                at + 1
            );
            assert!(
                !comment.trim().is_empty(),
                "{name}:{}: say which tag the commit is, in a comment",
                at + 1
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 8,
        "only {checked} actions found: the test reads less than it says"
    );
}

#[test]
fn only_the_jobs_that_write_may_write() {
    for (name, text) in workflow_files() {
        if name == "action.yml" {
            continue;
        }
        let lines: Vec<&str> = text.lines().collect();
        let top: Vec<&&str> = lines
            .iter()
            .filter(|line| line.starts_with("permissions:"))
            .collect();
        assert_eq!(
            top,
            [&"permissions: {}"],
            "{name}: the workflow grants nothing by default"
        );
        for (at, line) in lines.iter().enumerate() {
            if line.trim_end().ends_with(": write") {
                let keys = ancestors(&lines, at);
                assert_eq!(
                    keys.first().map(String::as_str),
                    Some("permissions"),
                    "{name}:{}",
                    at + 1
                );
                assert_eq!(
                    keys.get(2).map(String::as_str),
                    Some("jobs"),
                    "{name}:{}: write outside a job",
                    at + 1
                );
            }
        }
    }
    let drift = std::fs::read_to_string(repo_root().join(".github/workflows/drift.yml")).unwrap();
    assert_eq!(drift.matches("issues: write").count(), 1);
}

#[test]
fn the_merge_applies_only_the_reviewed_plan_and_the_schedule_only_rotations() {
    let apply = std::fs::read_to_string(repo_root().join(".github/workflows/apply.yml")).unwrap();
    assert!(apply.contains("push) scope=(--reviewed-plan reviewed/plan.json) ;;"));
    assert!(apply.contains("schedule) scope=(--only rotations) ;;"));
    assert!(apply.contains("--name \"plan-$pr\""));
    let plan = std::fs::read_to_string(repo_root().join(".github/workflows/plan.yml")).unwrap();
    assert!(plan.contains("name: plan-${{ github.event.pull_request.number }}"));
}
