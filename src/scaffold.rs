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
    ]
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
    tramontane plan --org sandbox:org.json
    tramontane apply --org sandbox:org.json

Against the real organization, set `MISTRAL_ADMIN_API_KEY` and drop `--org`.

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
}
