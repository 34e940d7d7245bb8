//! A local organization in one JSON file, with the same semantics and limits as the Admin
//! API: keys are immutable and their plaintext is returned once, a workspace's spend limit is
//! read-only, deleting a workspace archives it, the last organization admin stays, the
//! default workspace cannot be archived, a team is assigned to a workspace at most once.
//!
//! The same model, served over HTTP, is the fake Admin API the HTTP provider is tested and
//! benchmarked against, so both providers are held to one set of rules.

mod demo;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use jiff::civil::Date;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

pub use demo::demo_org;

use super::{Operation, OrganizationLimit, Outcome, Provider, ProviderError};
use crate::model::{
    LiveInvite, LiveKey, LiveMember, LiveOrg, LiveTeam, LiveWorkspace, RateLimits, SpendLimit,
    live::TokenLimits,
};

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

    fn user(&self, id: &str) -> Result<&User> {
        self.users.get(id).ok_or_else(|| SandboxError::NotFound {
            kind: "user",
            id: id.into(),
        })
    }

    fn workspace_mut(&mut self, id: &str) -> Result<&mut Workspace> {
        match self.workspaces.get_mut(id) {
            Some(workspace) if !workspace.archived => Ok(workspace),
            _ => Err(SandboxError::NotFound {
                kind: "workspace",
                id: id.into(),
            }),
        }
    }

    fn group_mut(&mut self, id: &str) -> Result<&mut Group> {
        self.groups
            .get_mut(id)
            .ok_or_else(|| SandboxError::NotFound {
                kind: "user group",
                id: id.into(),
            })
    }

    fn admins(&self) -> usize {
        self.users
            .values()
            .filter(|user| user.roles.contains("organization_admin"))
            .count()
    }

    fn check_roles(roles: &[String], known: &[&str], what: &str) -> Result<()> {
        for role in roles {
            if !known.contains(&role.as_str()) {
                return Err(SandboxError::Unprocessable(format!(
                    "`{role}` is not a {what} role"
                )));
            }
        }
        Ok(())
    }

    /// Applies one operation the way the Admin API would, `now` being an RFC 3339 timestamp.
    pub fn perform(&mut self, operation: Operation, now: &str) -> Result<Outcome> {
        use Operation::*;
        match operation {
            CreateUser {
                email,
                first_name,
                last_name,
                roles,
            } => {
                Self::check_roles(&roles, &ORGANIZATION_ROLES, "organization")?;
                if !email.contains('@') {
                    return Err(SandboxError::Unprocessable(format!(
                        "`{email}` is not an email"
                    )));
                }
                if self
                    .users
                    .values()
                    .any(|user| user.email.eq_ignore_ascii_case(&email))
                {
                    return Err(SandboxError::Conflict(format!(
                        "`{email}` is already a member"
                    )));
                }
                let id = self.id();
                self.invites
                    .retain(|_, invite| !invite.email.eq_ignore_ascii_case(&email));
                let roles = if roles.is_empty() {
                    BTreeSet::from(["member".into()])
                } else {
                    roles.into_iter().collect()
                };
                self.users.insert(
                    id.clone(),
                    User {
                        email,
                        first_name,
                        last_name,
                        roles,
                        created_at: now.into(),
                    },
                );
                Ok(Outcome::Created(id))
            }
            SetUserRoles { user, roles } => {
                Self::check_roles(&roles, &ORGANIZATION_ROLES, "organization")?;
                let was_admin = self.user(&user)?.roles.contains("organization_admin");
                let stays_admin = roles.iter().any(|role| role == "organization_admin");
                if was_admin && !stays_admin && self.admins() == 1 {
                    return Err(SandboxError::Conflict(
                        "the last organization admin cannot be demoted".into(),
                    ));
                }
                if let Some(member) = self.users.get_mut(&user) {
                    member.roles = roles.into_iter().collect();
                }
                Ok(Outcome::Done)
            }
            DeleteUser { user } => {
                if self.user(&user)?.roles.contains("organization_admin") && self.admins() == 1 {
                    return Err(SandboxError::Conflict(
                        "the last organization admin cannot be removed".into(),
                    ));
                }
                self.users.remove(&user);
                for workspace in self.workspaces.values_mut() {
                    workspace.members.remove(&user);
                }
                for group in self.groups.values_mut() {
                    group.members.remove(&user);
                }
                Ok(Outcome::Done)
            }
            CreateWorkspace {
                name,
                description,
                admin,
            } => {
                self.user(&admin)?;
                if name.trim().is_empty() {
                    return Err(SandboxError::Unprocessable(
                        "`name` must not be empty".into(),
                    ));
                }
                if self
                    .workspaces
                    .values()
                    .any(|w| !w.archived && w.name == name)
                {
                    return Err(SandboxError::Conflict(format!(
                        "a workspace named `{name}` exists"
                    )));
                }
                let id = self.id();
                self.workspaces.insert(
                    id.clone(),
                    Workspace {
                        name,
                        description,
                        is_default: false,
                        archived: false,
                        spend_limit: None,
                        members: BTreeMap::from([(
                            admin,
                            BTreeSet::from(["workspace_admin".into()]),
                        )]),
                    },
                );
                Ok(Outcome::Created(id))
            }
            SetWorkspaceDescription {
                workspace,
                description,
            } => {
                self.workspace_mut(&workspace)?.description = description;
                Ok(Outcome::Done)
            }
            ArchiveWorkspace { workspace } => {
                let found = self.workspace_mut(&workspace)?;
                if found.is_default {
                    return Err(SandboxError::Conflict(
                        "the default workspace cannot be archived".into(),
                    ));
                }
                found.archived = true;
                Ok(Outcome::Done)
            }
            UpsertWorkspaceMembers { workspace, members } => {
                for (user, roles) in &members {
                    self.user(user)?;
                    Self::check_roles(roles, &WORKSPACE_ROLES, "workspace")?;
                }
                let found = self.workspace_mut(&workspace)?;
                for (user, roles) in members {
                    found.members.insert(user, roles.into_iter().collect());
                }
                Ok(Outcome::Done)
            }
            RemoveWorkspaceMembers { workspace, users } => {
                let found = self.workspace_mut(&workspace)?;
                for user in users {
                    found.members.remove(&user);
                }
                Ok(Outcome::Done)
            }
            CreateGroup { name, description } => {
                if self.groups.values().any(|group| group.name == name) {
                    return Err(SandboxError::Conflict(format!(
                        "a user group named `{name}` exists"
                    )));
                }
                let id = self.id();
                self.groups.insert(
                    id.clone(),
                    Group {
                        name,
                        description,
                        organization_role: None,
                        members: BTreeSet::new(),
                        workspaces: BTreeMap::new(),
                    },
                );
                Ok(Outcome::Created(id))
            }
            SetGroupDescription { group, description } => {
                self.group_mut(&group)?.description = description;
                Ok(Outcome::Done)
            }
            DeleteGroup { group } => {
                self.groups.remove(&group).ok_or(SandboxError::NotFound {
                    kind: "user group",
                    id: group,
                })?;
                Ok(Outcome::Done)
            }
            AddGroupMembers { group, users } => {
                for user in &users {
                    self.user(user)?;
                }
                self.group_mut(&group)?.members.extend(users);
                Ok(Outcome::Done)
            }
            RemoveGroupMembers { group, users } => {
                let found = self.group_mut(&group)?;
                for user in users {
                    found.members.remove(&user);
                }
                Ok(Outcome::Done)
            }
            AssignGroupWorkspace {
                group,
                workspace,
                roles,
            } => {
                Self::check_roles(&roles, &WORKSPACE_ROLES, "workspace")?;
                self.workspace_mut(&workspace)?;
                let found = self.group_mut(&group)?;
                if found.workspaces.contains_key(&workspace) {
                    return Err(SandboxError::Conflict(
                        "the group is already assigned to this workspace".into(),
                    ));
                }
                found
                    .workspaces
                    .insert(workspace, roles.into_iter().collect());
                Ok(Outcome::Done)
            }
            UpdateGroupWorkspace {
                group,
                workspace,
                roles,
            } => {
                Self::check_roles(&roles, &WORKSPACE_ROLES, "workspace")?;
                let found = self.group_mut(&group)?;
                let assignment =
                    found
                        .workspaces
                        .get_mut(&workspace)
                        .ok_or(SandboxError::NotFound {
                            kind: "workspace assignment",
                            id: workspace,
                        })?;
                *assignment = roles.into_iter().collect();
                Ok(Outcome::Done)
            }
            UnassignGroupWorkspace { group, workspace } => {
                self.group_mut(&group)?
                    .workspaces
                    .remove(&workspace)
                    .ok_or(SandboxError::NotFound {
                        kind: "workspace assignment",
                        id: workspace,
                    })?;
                Ok(Outcome::Done)
            }
            SetGroupOrganizationRole { group, role } => {
                Self::check_roles(
                    std::slice::from_ref(&role),
                    &ORGANIZATION_ROLES,
                    "organization",
                )?;
                self.group_mut(&group)?.organization_role = Some(role);
                Ok(Outcome::Done)
            }
            CreateKey {
                workspace,
                user,
                name,
                expiration,
                ..
            } => {
                self.workspace_mut(&workspace)?;
                let created_by = Some(self.user(&user)?.email.clone());
                let id = self.id();
                // Not a real secret: the sandbox hands out a random string of the real shape.
                let plaintext: String = {
                    use rand::Rng;
                    let mut rng = rand::rng();
                    (0..32)
                        .map(|_| rng.sample(rand::distr::Alphanumeric) as char)
                        .collect()
                };
                let hidden_key = format!("{}…{}", &plaintext[..4], &plaintext[28..]);
                self.keys.insert(
                    id.clone(),
                    Key {
                        name: Some(name),
                        workspace: Some(workspace),
                        user,
                        created_by,
                        created_at: now.into(),
                        expiration,
                        last_used: None,
                        hidden_key,
                        secret_sha256: Some(secret_digest(&plaintext)),
                    },
                );
                Ok(Outcome::Key {
                    id,
                    secret: SecretString::from(plaintext),
                })
            }
            DeleteKey { key } => {
                self.keys.remove(&key).ok_or(SandboxError::NotFound {
                    kind: "API key",
                    id: key,
                })?;
                Ok(Outcome::Done)
            }
            SetSpendLimit { limit } => {
                self.spend_limit = match limit {
                    OrganizationLimit::Monthly { units } => {
                        if units < 0 {
                            return Err(SandboxError::Unprocessable(
                                "`amount` must not be negative".into(),
                            ));
                        }
                        OrgSpendLimit {
                            amount: units,
                            no_monthly_limit: false,
                        }
                    }
                    OrganizationLimit::Unlimited => OrgSpendLimit {
                        amount: 0,
                        no_monthly_limit: true,
                    },
                };
                Ok(Outcome::Done)
            }
        }
    }

    /// The organization resolved to names, as a provider reports it.
    pub fn to_live(&self) -> LiveOrg {
        let email = |id: &str| self.users.get(id).map(|user| user.email.to_lowercase());
        let workspace_name = |id: &str| self.workspaces.get(id).map(|w| w.name.clone());
        let mut live = LiveOrg::default();
        for (id, user) in &self.users {
            live.members.insert(
                user.email.to_lowercase(),
                LiveMember {
                    id: id.clone(),
                    email: user.email.clone(),
                    name: user.name(),
                    roles: user.roles.clone(),
                },
            );
        }
        for (id, invite) in &self.invites {
            live.invites.insert(
                invite.email.to_lowercase(),
                LiveInvite {
                    id: id.clone(),
                    email: invite.email.clone(),
                    roles: invite.roles.clone(),
                    expired: invite.expired,
                },
            );
        }
        for (id, workspace) in &self.workspaces {
            if workspace.archived {
                live.archived_workspaces.insert(workspace.name.clone());
                continue;
            }
            live.workspaces.insert(
                workspace.name.clone(),
                LiveWorkspace {
                    id: id.clone(),
                    name: workspace.name.clone(),
                    description: workspace.description.clone(),
                    is_default: workspace.is_default,
                    members: workspace
                        .members
                        .iter()
                        .filter_map(|(user, roles)| Some((email(user)?, roles.clone())))
                        .collect(),
                    spend_limit: workspace.spend_limit,
                },
            );
        }
        for (id, group) in &self.groups {
            live.teams.insert(
                group.name.clone(),
                LiveTeam {
                    id: id.clone(),
                    name: group.name.clone(),
                    description: group.description.clone(),
                    members: group
                        .members
                        .iter()
                        .filter_map(|user| email(user))
                        .collect(),
                    workspaces: group
                        .workspaces
                        .iter()
                        .filter_map(|(workspace, roles)| {
                            Some((workspace_name(workspace)?, roles.clone()))
                        })
                        .collect(),
                    organization_role: group.organization_role.clone(),
                },
            );
        }
        for (id, key) in &self.keys {
            live.keys.push(LiveKey {
                id: id.clone(),
                name: key.name.clone(),
                workspace: key.workspace.as_deref().and_then(workspace_name),
                created_by: key.created_by.clone(),
                created_at: Some(key.created_at.clone()),
                expires: key.expiration,
                last_used: key.last_used,
            });
        }
        live.spend_limit = Some(if self.spend_limit.no_monthly_limit {
            SpendLimit::Unlimited(crate::model::Unlimited::Unlimited)
        } else {
            SpendLimit::Monthly(self.spend_limit.amount as f64)
        });
        live.rate_limits = Some(self.rate_limit.clone());
        live
    }
}

/// The one organization admin a new sandbox org starts with, as a new Mistral org starts
/// with the person who made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxAdmin {
    pub email: String,
    pub name: String,
}

/// The sandbox as a provider: every operation is saved to the file at once, so an
/// interrupted apply leaves the org as far as it got, like the real API would.
pub struct SandboxProvider {
    path: PathBuf,
    org: Mutex<SandboxOrg>,
    now: String,
}

impl SandboxProvider {
    /// Opens the org at `path`. `now` is the sandbox's clock: what it creates is created then.
    pub fn open(path: &Path, now: jiff::Timestamp) -> Result<SandboxProvider> {
        Ok(SandboxProvider {
            path: path.to_owned(),
            org: Mutex::new(SandboxOrg::load(path)?),
            now: crate::model::timestamp(now),
        })
    }

    /// Opens the org at `path`, first creating it, with `admin` as its one organization
    /// admin, when the file is missing or empty: an empty file is what `touch` or an editor
    /// leaves, not an org. Says whether it created the org.
    pub fn open_or_create(
        path: &Path,
        now: jiff::Timestamp,
        admin: Option<&SandboxAdmin>,
    ) -> Result<(SandboxProvider, bool)> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(SandboxError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        if let Some(text) = text.filter(|text| !text.trim().is_empty()) {
            let provider = SandboxProvider {
                path: path.to_owned(),
                org: Mutex::new(SandboxOrg::parse(path, &text)?),
                now: crate::model::timestamp(now),
            };
            return Ok((provider, false));
        }
        let admin = admin.ok_or_else(|| SandboxError::NeedsAdmin {
            path: path.to_owned(),
        })?;
        if !admin.email.contains('@') {
            return Err(SandboxError::AdminNotEmail {
                email: admin.email.clone(),
            });
        }
        let now_text = crate::model::timestamp(now);
        let org = SandboxOrg::new(&admin.email, &admin.name, &now_text);
        org.save(path)?;
        let provider = SandboxProvider {
            path: path.to_owned(),
            org: Mutex::new(org),
            now: now_text,
        };
        Ok((provider, true))
    }

    /// Opens the demo org at `path`, creating it first when it does not exist.
    pub fn open_demo(path: &Path, now: jiff::Timestamp) -> Result<SandboxProvider> {
        if !path.exists() {
            demo_org(now.to_zoned(jiff::tz::TimeZone::UTC).date()).save(path)?;
        }
        SandboxProvider::open(path, now)
    }

    pub fn org(&self) -> SandboxOrg {
        self.org
            .lock()
            .map(|org| org.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
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

impl Provider for SandboxProvider {
    async fn read(&self) -> Result<LiveOrg, ProviderError> {
        Ok(self.org().to_live())
    }

    async fn verify_key(&self, secret: &SecretString) -> Result<(), ProviderError> {
        use secrecy::ExposeSecret;
        let accepted = self
            .org
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .accepts(secret.expose_secret());
        if accepted {
            Ok(())
        } else {
            Err(ProviderError::KeyRejected {
                call: "GET /v1/models".into(),
                status: 401,
                attempts: 1,
            })
        }
    }

    async fn perform(&self, operation: Operation) -> Result<Outcome, ProviderError> {
        let mut org = self
            .org
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut next = org.clone();
        let outcome = next.perform(operation, &self.now)?;
        next.save(&self.path)?;
        *org = next;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
