//! The workflows a policy repository copies, and this project's own, read as a security
//! review would: the admin key only where tramontane runs, every third-party action pinned
//! to a commit, write permissions only on the jobs that write.

use tramontane_testkit::repo_root;

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

/// The lines of the `run: |` block of the step named `step`, unindented.
fn run_block(text: &str, step: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let named = lines
        .iter()
        .position(|line| line.trim() == format!("- name: {step}"))
        .unwrap_or_else(|| panic!("no step named {step}"));
    let run = named
        + lines[named..]
            .iter()
            .position(|line| line.trim() == "run: |")
            .unwrap_or_else(|| panic!("step {step} has no `run: |` block"));
    let leading = |line: &str| line.len() - line.trim_start_matches(' ').len();
    let depth = leading(lines[run + 1]);
    lines[run + 1..]
        .iter()
        .take_while(|line| line.trim().is_empty() || leading(line) >= depth)
        .map(|line| line.get(depth..).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Each workflow's Plan step run as GitHub runs it (`bash -eo pipefail`), with a
/// `tramontane` that exits as told: 0 and 2 are a plan made, anything else (a usage error
/// included) fails the step, so the run fails and plan.yml marks its comment failed.
#[cfg(unix)]
#[test]
fn the_plan_steps_fail_on_any_status_but_0_and_2() {
    use std::os::unix::fs::PermissionsExt;
    for (workflow, output) in [
        ("plan.yml", None),
        ("apply.yml", Some("changes")),
        ("drift.yml", Some("drift")),
    ] {
        let text =
            std::fs::read_to_string(repo_root().join(".github/workflows").join(workflow)).unwrap();
        let script = run_block(&text, "Plan");
        for status in [0, 1, 2, 3, 64] {
            let dir = tempfile::tempdir().unwrap();
            let fake = dir.path().join("bin/tramontane");
            std::fs::create_dir_all(fake.parent().unwrap()).unwrap();
            std::fs::write(
                &fake,
                "#!/bin/sh\nif [ \"$1\" = plan ]; then echo \"$*\" >> calls; exit \"$PLAN_STATUS\"; fi\n",
            )
            .unwrap();
            std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
            let path = format!(
                "{}:{}",
                fake.parent().unwrap().display(),
                std::env::var("PATH").unwrap_or_default()
            );
            let ran = std::process::Command::new("bash")
                .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", &script])
                .current_dir(dir.path())
                .env("PATH", path)
                .env("PLAN_STATUS", status.to_string())
                .env("GITHUB_OUTPUT", dir.path().join("output"))
                .env("GITHUB_STEP_SUMMARY", dir.path().join("summary"))
                .output()
                .unwrap();
            let code = ran.status.code();
            let expected = if status == 0 || status == 2 {
                0
            } else {
                status
            };
            assert_eq!(
                code,
                Some(expected),
                "{workflow} with plan exiting {status}: {}",
                String::from_utf8_lossy(&ran.stderr)
            );
            if let (Some(name), 0 | 2) = (output, status) {
                let written = std::fs::read_to_string(dir.path().join("output")).unwrap();
                assert_eq!(written, format!("{name}={}\n", status == 2), "{workflow}");
            }
            let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
            assert!(calls.contains("--detailed-exitcode"), "{workflow}: {calls}");
            // Drift includes console steps; apply has nothing to do for them.
            assert_eq!(
                calls.contains("--count-manual"),
                workflow == "drift.yml",
                "{workflow}: {calls}"
            );
        }
    }
    let plan = std::fs::read_to_string(repo_root().join(".github/workflows/plan.yml")).unwrap();
    let failed = plan
        .find("if: failure() && steps.plan.outcome == 'failure'")
        .expect("plan.yml marks the comment failed when planning fails");
    assert!(plan[failed..].contains("--failed"));
}
