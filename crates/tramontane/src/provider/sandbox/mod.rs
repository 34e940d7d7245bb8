//! A local organization in one JSON file, with the same semantics and limits as the Admin
//! API: keys are immutable and their plaintext is returned once, a workspace's spend limit is
//! read-only, deleting a workspace archives it, the last organization admin stays, the
//! default workspace cannot be archived, a team is assigned to a workspace at most once.
//!
//! The same model, served over HTTP, is the fake Admin API the HTTP provider is tested and
//! benchmarked against, so both providers are held to one set of rules.

mod activity;
mod demo;
mod live;
mod operations;
mod provider;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

pub use activity::{SEED_MODEL, SandboxUsage, UsageEntry};
pub use demo::demo_org;
pub use provider::{SandboxAdmin, SandboxProvider};

use crate::model::{RateLimits, SpendLimit, live::TokenLimits};

pub const FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot read the sandbox org `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "`{path}` is not a sandbox organization file ({source}); name a new file with `--org sandbox:NEW.json` (it is created on first use), or move this one away to start a fresh sandbox here"
    )]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("the sandbox org `{path}` has format {found}, this tramontane reads {FORMAT}")]
    Format { path: PathBuf, found: u32 },
    #[error(
        "the sandbox org `{path}` does not exist yet, and it needs one organization admin to be created with: give a member `roles: [organization_admin]` in the policy, or pass `--sandbox-admin EMAIL`"
    )]
    NeedsAdmin { path: PathBuf },
    #[error("`--sandbox-admin {email}` is not an email")]
    AdminNotEmail { email: String },
    #[error("cannot write the sandbox org `{path}`: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("404 not found: no {kind} with id `{id}`")]
    NotFound { kind: &'static str, id: String },
    #[error("409 conflict: {0}")]
    Conflict(String),
    #[error("422 unprocessable: {0}")]
    Unprocessable(String),
}

impl SandboxError {
    /// What to do, for the line under the error; `None` where the message already says.
    pub fn help(&self) -> Option<&'static str> {
        match self {
            SandboxError::Read { .. } => Some("check that the file exists and is readable"),
            SandboxError::Write { .. } => {
                Some("check that its directory exists and that you may write there")
            }
            SandboxError::Format { .. } => Some(
                "use the tramontane that wrote the file, or start a fresh sandbox with `--org sandbox:NEW.json`",
            ),
            SandboxError::AdminNotEmail { .. } => {
                Some("pass the admin's email, such as `--sandbox-admin ada@example.com`")
            }
            SandboxError::NotFound { .. } => {
                Some("the object may have been deleted since it was read: plan again")
            }
            SandboxError::Conflict(_) => Some(
                "the sandbox keeps the platform's rules: change the policy so the plan no longer asks for this",
            ),
            SandboxError::Unprocessable(_) => Some(
                "the policy passed validation but the platform would refuse it: please report it",
            ),
            SandboxError::Parse { .. } | SandboxError::NeedsAdmin { .. } => None,
        }
    }

    /// The HTTP status the real API would answer with, for the fake server.
    pub fn status(&self) -> u16 {
        match self {
            SandboxError::NotFound { .. } => 404,
            SandboxError::Conflict(_) => 409,
            SandboxError::Unprocessable(_) => 422,
            _ => 500,
        }
    }
}

type Result<T, E = SandboxError> = std::result::Result<T, E>;

/// The whole organization, as stored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SandboxOrg {
    pub format: u32,
    /// Ids are handed out in order so a sandbox file diffs well and tests are repeatable.
    pub next_id: u64,
    pub roles: Roles,
    pub users: BTreeMap<String, User>,
    pub invites: BTreeMap<String, Invite>,
    pub workspaces: BTreeMap<String, Workspace>,
    pub groups: BTreeMap<String, Group>,
    pub keys: BTreeMap<String, Key>,
    pub spend_limit: OrgSpendLimit,
    pub rate_limit: RateLimits,
    /// Usage and prices, for `GET /v1/admin/usage`; empty in an org nothing was recorded in.
    #[serde(default, skip_serializing_if = "SandboxUsage::is_empty")]
    pub usage: SandboxUsage,
    /// The audit log's entries, in the Admin API's shape.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit_log: Vec<crate::provider::mistral::api::AuditLogOut>,
}

/// Role names and their UUIDs, as `GET /v1/admin/roles` returns them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Roles {
    pub organization: BTreeMap<String, String>,
    pub workspace: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub roles: BTreeSet<String>,
    pub created_at: String,
}

impl User {
    pub fn name(&self) -> String {
        if self.first_name == self.last_name {
            self.first_name.clone()
        } else {
            format!("{} {}", self.first_name, self.last_name)
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Invite {
    pub email: String,
    pub roles: BTreeSet<String>,
    pub created_at: String,
    pub expired: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Workspace {
    pub name: String,
    pub description: String,
    pub is_default: bool,
    pub archived: bool,
    /// Set in the console only.
    pub spend_limit: Option<SpendLimit>,
    /// Members by user id, with role names.
    pub members: BTreeMap<String, BTreeSet<String>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub name: String,
    pub description: String,
    pub organization_role: Option<String>,
    pub members: BTreeSet<String>,
    /// Assignments by workspace id, with role names.
    pub workspaces: BTreeMap<String, BTreeSet<String>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Key {
    pub name: Option<String>,
    pub workspace: Option<String>,
    pub user: String,
    /// The creator's email: the API reports who created a key, not whose it is.
    pub created_by: Option<String>,
    pub created_at: String,
    pub expiration: Option<Date>,
    pub last_used: Option<Date>,
    /// The masked form the API shows; the plaintext is never stored.
    pub hidden_key: String,
    /// SHA-256 of the plaintext, so the sandbox can tell a live key's secret as the
    /// inference API does (`GET /v1/models`); absent in files from before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_sha256: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OrgSpendLimit {
    pub amount: i64,
    pub no_monthly_limit: bool,
}

const ORGANIZATION_ROLES: [&str; 3] = ["member", "billing_manager", "organization_admin"];
const WORKSPACE_ROLES: [&str; 7] = [
    "user",
    "dev",
    "mistral_code_user",
    "billing",
    "workspace_contributor",
    "workspace_admin",
    "observability_viewer",
];

impl SandboxOrg {
    /// An organization with one admin and its default workspace, as a new org starts.
    pub fn new(admin_email: &str, admin_name: &str, now: &str) -> SandboxOrg {
        let mut org = SandboxOrg {
            format: FORMAT,
            ..SandboxOrg::default()
        };
        for name in ORGANIZATION_ROLES {
            let id = org.id();
            org.roles.organization.insert(name.into(), id);
        }
        for name in WORKSPACE_ROLES {
            let id = org.id();
            org.roles.workspace.insert(name.into(), id);
        }
        org.rate_limit = RateLimits {
            requests_per_second: 6,
            tokens_by_model: BTreeMap::from([(
                "mistral-small-2506".into(),
                TokenLimits {
                    tokens_per_minute: 500_000,
                    tokens_per_month: 1_000_000_000,
                },
            )]),
        };
        org.spend_limit = OrgSpendLimit {
            amount: 0,
            no_monthly_limit: true,
        };
        let (first, last) = super::split_name(admin_name);
        let admin = org.id();
        org.users.insert(
            admin.clone(),
            User {
                email: admin_email.into(),
                first_name: first,
                last_name: last,
                roles: BTreeSet::from(["organization_admin".into()]),
                created_at: now.into(),
            },
        );
        let default = org.id();
        org.workspaces.insert(
            default,
            Workspace {
                name: "Default Workspace".into(),
                description: String::new(),
                is_default: true,
                archived: false,
                spend_limit: None,
                members: BTreeMap::from([(admin, BTreeSet::from(["workspace_admin".into()]))]),
            },
        );
        org
    }

    /// A fresh UUID-shaped id, deterministic per file.
    pub fn id(&mut self) -> String {
        self.next_id += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.next_id)
    }

    pub fn load(path: &Path) -> Result<SandboxOrg> {
        let text = std::fs::read_to_string(path).map_err(|source| SandboxError::Read {
            path: path.to_owned(),
            source,
        })?;
        SandboxOrg::parse(path, &text)
    }

    /// An org from the text of the file at `path`, which names it in errors.
    fn parse(path: &Path, text: &str) -> Result<SandboxOrg> {
        let org: SandboxOrg = serde_json::from_str(text).map_err(|source| SandboxError::Parse {
            path: path.to_owned(),
            source,
        })?;
        if org.format != FORMAT {
            return Err(SandboxError::Format {
                path: path.to_owned(),
                found: org.format,
            });
        }
        Ok(org)
    }

    /// Writes atomically: a crash mid-write leaves the previous org, not half of one.
    pub fn save(&self, path: &Path) -> Result<()> {
        let write = |source| SandboxError::Write {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(write)?;
        }
        let text =
            serde_json::to_string_pretty(self).map_err(|e| write(std::io::Error::other(e)))?;
        let temporary = path.with_extension("json.tmp");
        std::fs::write(&temporary, text + "\n").map_err(write)?;
        std::fs::rename(&temporary, path).map_err(write)
    }
}

pub fn noon(day: Date) -> String {
    format!("{day}T12:00:00Z")
}

/// How the sandbox recognises a key's secret without keeping it.
pub fn secret_digest(secret: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(secret.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

impl SandboxOrg {
    /// Whether `secret` is a live key's, as the inference API would accept it.
    pub fn accepts(&self, secret: &str) -> bool {
        let digest = secret_digest(secret);
        self.keys
            .values()
            .any(|key| key.secret_sha256.as_deref() == Some(digest.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{Operation, Outcome};

    #[test]
    fn the_platform_rules_hold() {
        let mut org = SandboxOrg::new("ada@x.example", "Ada Admin", "2026-01-01T00:00:00Z");
        let now = "2026-01-02T00:00:00Z";
        let ada = org.users.keys().next().unwrap().clone();
        let default = org.workspaces.keys().next().unwrap().clone();
        assert!(matches!(
            org.perform(Operation::DeleteUser { user: ada.clone() }, now),
            Err(SandboxError::Conflict(_))
        ));
        assert!(matches!(
            org.perform(
                Operation::SetUserRoles {
                    user: ada.clone(),
                    roles: vec!["member".into()]
                },
                now
            ),
            Err(SandboxError::Conflict(_))
        ));
        assert!(matches!(
            org.perform(
                Operation::ArchiveWorkspace {
                    workspace: default.clone()
                },
                now
            ),
            Err(SandboxError::Conflict(_))
        ));
        let Outcome::Created(group) = org
            .perform(
                Operation::CreateGroup {
                    name: "devs".into(),
                    description: String::new(),
                },
                now,
            )
            .unwrap()
        else {
            panic!("no id")
        };
        let assign = Operation::AssignGroupWorkspace {
            group,
            workspace: default.clone(),
            roles: vec!["user".into()],
        };
        org.perform(assign.clone(), now).unwrap();
        assert!(matches!(
            org.perform(assign, now),
            Err(SandboxError::Conflict(_))
        ));
        let Outcome::Key { id, secret } = org
            .perform(
                Operation::CreateKey {
                    workspace: default,
                    user: ada,
                    name: "ci".into(),
                    expiration: None,
                    known: Vec::new(),
                },
                now,
            )
            .unwrap()
        else {
            panic!("no key")
        };
        use secrecy::ExposeSecret;
        let stored = serde_json::to_string(&org).unwrap();
        assert!(
            !stored.contains(secret.expose_secret()),
            "the plaintext is never stored"
        );
        assert!(org.keys.contains_key(&id));
    }
}
