//! The files `tramontane init` writes: a starter policy repository that validates, plans and
//! applies against a fresh sandbox, keeps secrets and tramontane's state out of git, and
//! carries the editor schema. The layout lives here; writing it and saying so is the command
//! line's job.

use std::path::PathBuf;

use crate::policy::schema::SCHEMA;

/// Where the policy files go, relative to the new repository.
pub const POLICIES_DIR: &str = "policies";

/// Where the JSON Schema is written, tracked so editors find it in every clone (the policy
/// files' `yaml-language-server` modelines and `.vscode/settings.json` point here).
pub const SCHEMA_PATH: &str = "schema/policy.schema.json";

/// The organization admin a starter is written with unless `--admin` says otherwise.
pub const DEFAULT_ADMIN: &str = "admin@example.com";

/// One file of the scaffold: its path relative to the new repository and its content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScaffoldFile {
    pub path: PathBuf,
    pub content: String,
}

/// What `init` is asked to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScaffoldOptions {
    /// The email of the starter's one organization admin.
    pub admin: String,
}

/// Every file of a new policy repository, in the order they are listed to the user.
pub fn scaffold(options: &ScaffoldOptions) -> Vec<ScaffoldFile> {
    let admin = &options.admin;
    let file = |path: &str, content: String| ScaffoldFile {
        path: PathBuf::from(path),
        content,
    };
    vec![
        file("policies/organization.yaml", ORGANIZATION.to_owned()),
        file("policies/members.yaml", MEMBERS.replace("{admin}", admin)),
        file("policies/teams.yaml", TEAMS.replace("{admin}", admin)),
        file(
            "policies/workspaces/starter.yaml",
            WORKSPACE.replace("{admin}", admin),
        ),
        file(SCHEMA_PATH, SCHEMA.to_owned()),
        file(".vscode/settings.json", VSCODE_SETTINGS.to_owned()),
        file(".gitignore", GITIGNORE.to_owned()),
        file("README.md", README.to_owned()),
        file(".github/workflows/plan.yml", pin_action(PLAN_WORKFLOW)),
        file(".github/workflows/apply.yml", pin_action(APPLY_WORKFLOW)),
        file(".github/workflows/drift.yml", pin_action(DRIFT_WORKFLOW)),
    ]
}

/// What `.gitignore` must cover for secrets and state never to be committed.
pub const GITIGNORE_ENTRIES: [&str; 4] = ["secrets/", ".tramontane/", "plan.json", ".env*"];

/// The lines to append to an existing `.gitignore` so it covers [`GITIGNORE_ENTRIES`], or
/// `None` when it already lists them all.
pub fn gitignore_additions(existing: &str) -> Option<String> {
    let listed: Vec<&str> = existing.lines().map(str::trim).collect();
    let missing: Vec<&str> = GITIGNORE_ENTRIES
        .into_iter()
        .filter(|entry| !listed.contains(entry))
        .collect();
    if missing.is_empty() {
        return None;
    }
    let separator = if existing.is_empty() || existing.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    Some(format!(
        "{separator}# Added by `tramontane init`: secrets and tramontane's state stay out of git.\n{}\n",
        missing.join("\n")
    ))
}

/// The workflows this project keeps for policy repositories. Here they install the action
/// from their own checkout (`uses: ./`); a policy repository must name this one instead.
const PLAN_WORKFLOW: &str = include_str!("../../../.github/workflows/plan.yml");
const APPLY_WORKFLOW: &str = include_str!("../../../.github/workflows/apply.yml");
const DRIFT_WORKFLOW: &str = include_str!("../../../.github/workflows/drift.yml");

/// The line in each workflow that installs tramontane from this repository's checkout.
const LOCAL_ACTION: &str = "uses: ./\n";

/// The instruction the workflows' headers give to whoever copies them by hand.
const COPY_INSTRUCTION: &str =
    "# Copy this file to your policy repository and replace `uses: ./` with";

/// The GitHub `owner/name` of this release's repository, from Cargo.toml's `repository`.
fn release_repository() -> Option<&'static str> {
    let url = env!("CARGO_PKG_REPOSITORY").trim_end_matches('/');
    let path = url.strip_prefix("https://github.com/")?;
    let path = path.strip_suffix(".git").unwrap_or(path);
    (path.split('/').count() == 2).then_some(path)
}

/// The action reference the workflows are written with: pinned to this release's tag when
/// the package names its repository, else `None` and the lines are marked for the user.
pub fn action_reference() -> Option<String> {
    release_repository().map(|repo| format!("{repo}@v{}", env!("CARGO_PKG_VERSION")))
}

/// The marker on a `uses:` line the user must edit before the workflow can run.
pub const EDIT_MARKER: &str = "EDIT: pin the tramontane action";

fn pin_action(workflow: &str) -> String {
    match action_reference() {
        Some(reference) => workflow
            .replace(
                COPY_INSTRUCTION,
                "# Written by `tramontane init` with the action pinned to this release's tag; a tag can move,\n# so prefer",
            )
            .replace(LOCAL_ACTION, &format!("uses: {reference}\n")),
        None => workflow
            .replace(
                COPY_INSTRUCTION,
                &format!("# Written by `tramontane init`. Before it can run, replace each `uses:` line marked\n# `{EDIT_MARKER}` with"),
            )
            .replace(
                LOCAL_ACTION,
                &format!(
                    "uses: OWNER/tramontane@v{} # {EDIT_MARKER}: OWNER/tramontane@<full commit SHA> # <tag>\n",
                    env!("CARGO_PKG_VERSION")
                ),
            ),
    }
}

const ORGANIZATION: &str = r#"# yaml-language-server: $schema=../schema/policy.schema.json
#
# The organization-wide settings. Every change here is planned, reviewed and applied.
version: 1

organization:
  min_admins: 1            # refuse any plan that leaves fewer organization admins
"#;

const MEMBERS: &str = r#"# yaml-language-server: $schema=../schema/policy.schema.json
#
# Everyone in the organization, by email. Roles default to [member].
version: 1

members:
  {admin}: { name: Organization Admin, roles: [organization_admin] }
"#;

const TEAMS: &str = r#"# yaml-language-server: $schema=../schema/policy.schema.json
#
# Teams are Mistral user groups: their members and the workspaces they reach.
version: 1

teams:
  platform:
    description: The people who run this policy repository
    members:
      - {admin}
    workspaces:
      starter: [user, dev]
"#;

const WORKSPACE: &str = r#"# yaml-language-server: $schema=../../schema/policy.schema.json
version: 1

workspaces:
  starter:
    description: A first workspace; rename it, or add more files beside this one
    admin: {admin}
    members:
      {admin}: [workspace_admin]
    gateway:
      # Members' gateway keys (`tramontane gateway issue`) are forwarded to Mistral with this
      # key's secret, so the starter takes one without an edit.
      upstream_key: starter-key
    keys:
      starter-key:
        owner: {admin}
        expires_after_days: 90
        rotate_before_days: 14
        # Written by `apply`, mode 0600, under secrets/ (which .gitignore keeps out of git).
        secret: { file: secrets/starter/starter-key.key }
"#;

const VSCODE_SETTINGS: &str = r#"{
  "yaml.schemas": {
    "./schema/policy.schema.json": "policies/**/*.yaml"
  }
}
"#;

const GITIGNORE: &str = r#"# Secrets that `apply` delivers to file sinks: never commit them.
secrets/
# tramontane's own state: the audit log, the apply journal.
.tramontane/
# Saved plans name the organization's members and keys.
plan.json
# Environment files hold API keys.
.env*
"#;

const README: &str = r#"# Mistral organization policy

This repository is the source of truth for a Mistral AI organization, kept with
tramontane: the YAML under `policies/` says who is a member, which workspaces and teams
exist, and which API keys there are; tramontane plans and applies the difference against
the live organization, as Terraform does.

## Plan and apply

Try it against a sandbox (a local file standing in for the organization) first:

    tramontane validate
    tramontane plan --org sandbox:.tramontane/org.json
    tramontane apply --org sandbox:.tramontane/org.json

Against the real organization, pass `--org mistral` with an admin key in
`MISTRAL_ADMIN_API_KEY`; in CI the workflows do this with the repository secret.

## Secrets

`apply` writes each new key's secret to the sink its policy names: a `file` sink writes
under `secrets/` (mode 0600). `.gitignore` keeps `secrets/`, `.tramontane/` (the audit log),
`plan.json` and `.env*` out of git; keep it that way.

## Editing

`schema/policy.schema.json` is the policy files' JSON Schema; editors with the YAML
language server use it through each file's modeline and `.vscode/settings.json`.
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_is_written_everywhere_the_starter_names_one() {
        let files = scaffold(&ScaffoldOptions {
            admin: "ops@acme.example".into(),
        });
        let policies: String = files
            .iter()
            .filter(|file| file.path.starts_with(POLICIES_DIR))
            .map(|file| file.content.as_str())
            .collect();
        assert!(!policies.contains("{admin}"));
        assert_eq!(policies.matches("ops@acme.example").count(), 5);
    }

    #[test]
    fn an_existing_gitignore_gains_only_the_entries_it_lacks() {
        assert_eq!(
            gitignore_additions("target/\nsecrets/").as_deref(),
            Some(
                "\n# Added by `tramontane init`: secrets and tramontane's state stay out of git.\n.tramontane/\nplan.json\n.env*\n"
            )
        );
        assert_eq!(gitignore_additions(GITIGNORE), None);
    }

    #[test]
    fn every_workflow_names_the_action_instead_of_a_local_checkout() {
        let files = scaffold(&ScaffoldOptions {
            admin: DEFAULT_ADMIN.into(),
        });
        let workflows: Vec<&ScaffoldFile> = files
            .iter()
            .filter(|file| file.path.starts_with(".github/workflows"))
            .collect();
        assert_eq!(workflows.len(), 3);
        for workflow in workflows {
            assert!(
                !workflow.content.contains("uses: ./"),
                "{:?}",
                workflow.path
            );
            assert!(!workflow.content.contains(COPY_INSTRUCTION));
            let pinned = workflow
                .content
                .lines()
                .filter(|line| line.trim_start().starts_with("uses: "))
                .filter(|line| line.contains("tramontane@"))
                .count();
            assert!(pinned >= 1, "{:?}", workflow.path);
            if action_reference().is_none() {
                assert!(workflow.content.contains(EDIT_MARKER));
            }
        }
    }
}
