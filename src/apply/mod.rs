//! Carries a plan out: each change becomes the Admin API operations that make it true, in
//! the plan's order, and every new key's secret goes to its sink the moment it exists.

pub mod guard;
mod secret;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use serde_json::Value;

use crate::model::{DesiredOrg, LiveOrg, SpendLimit, Unlimited};
use crate::plan::{Action, Change, Kind, Plan};
use crate::provider::{Operation, Outcome, Provider, ProviderError, split_name};

pub use secret::deliver;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{address}: {source}")]
    Provider {
        address: String,
        #[source]
        source: ProviderError,
    },
    #[error("{address}: {message}")]
    Plan { address: String, message: String },
    #[error(
        "{address}: the new key could not be delivered ({problem}); it was deleted again, so no key is left without its secret"
    )]
    Delivery { address: String, problem: String },
}

impl ApplyError {
    /// The address of the change that failed.
    pub fn address(&self) -> &str {
        match self {
            ApplyError::Provider { address, .. }
            | ApplyError::Plan { address, .. }
            | ApplyError::Delivery { address, .. } => address,
        }
    }
}

/// Where relative secret-sink paths and commands are resolved.
pub struct ApplyOptions {
    pub root: PathBuf,
}

/// What an apply did, change by change.
#[derive(Debug, Default)]
pub struct ApplyReport {
    pub applied: Vec<String>,
    pub skipped_manual: Vec<String>,
}

/// Live ids by name, kept current as objects are created.
struct Ids {
    users: HashMap<String, String>,
    workspaces: HashMap<String, String>,
    teams: HashMap<String, String>,
}

impl Ids {
    fn new(live: &LiveOrg) -> Ids {
        Ids {
            users: live
                .members
                .iter()
                .map(|(email, m)| (email.clone(), m.id.clone()))
                .collect(),
            workspaces: live
                .workspaces
                .iter()
                .map(|(name, w)| (name.clone(), w.id.clone()))
                .collect(),
            teams: live
                .teams
                .iter()
                .map(|(name, t)| (name.clone(), t.id.clone()))
                .collect(),
        }
    }
}

pub async fn apply<P: Provider>(
    plan: &Plan,
    desired: &DesiredOrg,
    live: &LiveOrg,
    provider: &P,
    options: &ApplyOptions,
) -> Result<ApplyReport, ApplyError> {
    apply_each(plan, desired, live, provider, options, |_, _| {}).await
}

/// Like [`apply`], calling `done` after every change attempted with its result, so the
/// caller can keep an audit log as it goes. Stops at the first failure.
pub async fn apply_each<P: Provider>(
    plan: &Plan,
    desired: &DesiredOrg,
    live: &LiveOrg,
    provider: &P,
    options: &ApplyOptions,
    mut done: impl FnMut(&Change, Result<(), &ApplyError>),
) -> Result<ApplyReport, ApplyError> {
    let mut ids = Ids::new(live);
    let mut report = ApplyReport::default();
    for change in &plan.changes {
        if change.action == Action::Manual {
            report.skipped_manual.push(change.address.clone());
            continue;
        }
        let mut engine = Engine {
            change,
            ids: &mut ids,
            provider,
            live,
            desired,
            options,
        };
        match engine.run().await {
            Ok(()) => {
                done(change, Ok(()));
                report.applied.push(change.address.clone());
            }
            Err(error) => {
                done(change, Err(&error));
                return Err(error);
            }
        }
    }
    Ok(report)
}

struct Engine<'a, P> {
    change: &'a Change,
    ids: &'a mut Ids,
    provider: &'a P,
    live: &'a LiveOrg,
    desired: &'a DesiredOrg,
    options: &'a ApplyOptions,
}

impl<P: Provider> Engine<'_, P> {
    fn fail(&self, message: impl Into<String>) -> ApplyError {
        ApplyError::Plan {
            address: self.change.address.clone(),
            message: message.into(),
        }
    }

    async fn perform(&self, operation: Operation) -> Result<Outcome, ApplyError> {
        self.provider
            .perform(operation)
            .await
            .map_err(|source| ApplyError::Provider {
                address: self.change.address.clone(),
                source,
            })
    }

    fn after(&self, name: &str) -> Option<&Value> {
        self.change.after.as_ref()?.get(name)
    }

    fn before(&self, name: &str) -> Option<&Value> {
        self.change.before.as_ref()?.get(name)
    }

    fn user(&self, email: &str) -> Result<String, ApplyError> {
        self.ids
            .users
            .get(&email.to_lowercase())
            .cloned()
            .ok_or_else(|| self.fail(format!("`{email}` is not a member of the organization")))
    }

    fn workspace(&self, name: &str) -> Result<String, ApplyError> {
        self.ids
            .workspaces
            .get(name)
            .cloned()
            .ok_or_else(|| self.fail(format!("no workspace `{name}`")))
    }

    fn name(&self) -> &str {
        let address = self.change.address.as_str();
        address.split_once('.').map_or(address, |(_, rest)| rest)
    }

    async fn run(&mut self) -> Result<(), ApplyError> {
        match (self.change.kind, self.change.action) {
            (Kind::Organization, _) => {
                let limit = match self.after("spend_limit") {
                    Some(Value::Number(amount)) => {
                        SpendLimit::Monthly(amount.as_f64().unwrap_or(0.0))
                    }
                    _ => SpendLimit::Unlimited(Unlimited::Unlimited),
                };
                self.perform(Operation::SetSpendLimit { limit }).await?;
            }
            (Kind::Member, Action::Create) => {
                let email = self.name().to_owned();
                let name = self
                    .after("name")
                    .and_then(Value::as_str)
                    .unwrap_or(&email)
                    .to_owned();
                let (first_name, last_name) = split_name(&name);
                let roles = strings(self.after("roles"));
                if let Outcome::Created(id) = self
                    .perform(Operation::CreateUser {
                        email: email.clone(),
                        first_name,
                        last_name,
                        roles,
                    })
                    .await?
                {
                    self.ids.users.insert(email.to_lowercase(), id);
                }
            }
            (Kind::Member, Action::Update) => {
                let user = self.user(self.name())?;
                self.perform(Operation::SetUserRoles {
                    user,
                    roles: strings(self.after("roles")),
                })
                .await?;
            }
            (Kind::Member, Action::Delete) => {
                let user = self.user(self.name())?;
                self.perform(Operation::DeleteUser { user }).await?;
            }
            (Kind::Workspace, Action::Create) => {
                let name = self.name().to_owned();
                let admin_email = self
                    .after("admin")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let admin = self.user(&admin_email)?;
                let description = self
                    .after("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let Outcome::Created(id) = self
                    .perform(Operation::CreateWorkspace {
                        name: name.clone(),
                        description,
                        admin,
                    })
                    .await?
                else {
                    return Err(self.fail("the workspace was created without an id"));
                };
                self.ids.workspaces.insert(name, id.clone());
                let members = role_map(self.after("members"));
                self.upsert_members(&id, &BTreeMap::new(), &members).await?;
            }
            (Kind::Workspace, Action::Update) => {
                let id = self.workspace(self.name())?;
                if let Some(description) = self.after("description").and_then(Value::as_str)
                    && self.before("description").and_then(Value::as_str) != Some(description)
                {
                    let description = description.to_owned();
                    self.perform(Operation::SetWorkspaceDescription {
                        workspace: id.clone(),
                        description,
                    })
                    .await?;
                }
                let old = role_map(self.before("members"));
                let new = role_map(self.after("members"));
                self.upsert_members(&id, &old, &new).await?;
                let gone: Vec<String> = old
                    .keys()
                    .filter(|email| !new.contains_key(*email))
                    .map(|email| self.user(email))
                    .collect::<Result<_, _>>()?;
                if !gone.is_empty() {
                    self.perform(Operation::RemoveWorkspaceMembers {
                        workspace: id,
                        users: gone,
                    })
                    .await?;
                }
            }
            (Kind::Workspace, Action::Delete) => {
                let workspace = self.workspace(self.name())?;
                self.perform(Operation::ArchiveWorkspace { workspace })
                    .await?;
            }
            (Kind::Team, Action::Create) => {
                let name = self.name().to_owned();
                let description = self
                    .after("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let Outcome::Created(id) = self
                    .perform(Operation::CreateGroup {
                        name: name.clone(),
                        description,
                    })
                    .await?
                else {
                    return Err(self.fail("the team was created without an id"));
                };
                self.ids.teams.insert(name, id.clone());
                self.sync_team(&id, None).await?;
            }
            (Kind::Team, Action::Update) => {
                let id = self
                    .ids
                    .teams
                    .get(self.name())
                    .cloned()
                    .ok_or_else(|| self.fail("no such team"))?;
                if let Some(description) = self.after("description").and_then(Value::as_str)
                    && self.before("description").and_then(Value::as_str) != Some(description)
                {
                    let description = description.to_owned();
                    self.perform(Operation::SetGroupDescription {
                        group: id.clone(),
                        description,
                    })
                    .await?;
                }
                self.sync_team(&id, self.change.before.as_ref()).await?;
            }
            (Kind::Team, Action::Delete) => {
                let group = self
                    .ids
                    .teams
                    .get(self.name())
                    .cloned()
                    .ok_or_else(|| self.fail("no such team"))?;
                self.perform(Operation::DeleteGroup { group }).await?;
            }
            (Kind::ApiKey, Action::Create | Action::Replace | Action::Rotate) => {
                self.create_key().await?;
                if self.change.action == Action::Replace
                    && let Some(old) = self.current_key()
                {
                    self.perform(Operation::DeleteKey { key: old }).await?;
                }
            }
            (Kind::ApiKey, Action::Delete) => {
                let key = self
                    .current_key()
                    .ok_or_else(|| self.fail("the key is gone already"))?;
                self.perform(Operation::DeleteKey { key }).await?;
            }
            (kind, action) => {
                return Err(self.fail(format!(
                    "no way to {} a {}",
                    action.as_str(),
                    kind.as_str()
                )));
            }
        }
        Ok(())
    }

    async fn upsert_members(
        &self,
        workspace: &str,
        old: &BTreeMap<String, Vec<String>>,
        new: &BTreeMap<String, Vec<String>>,
    ) -> Result<(), ApplyError> {
        let mut members = Vec::new();
        for (email, roles) in new {
            if old.get(email) != Some(roles) {
                members.push((self.user(email)?, roles.clone()));
            }
        }
        if !members.is_empty() {
            self.perform(Operation::UpsertWorkspaceMembers {
                workspace: workspace.into(),
                members,
            })
            .await?;
        }
        Ok(())
    }

    async fn sync_team(&self, group: &str, before: Option<&Value>) -> Result<(), ApplyError> {
        let field = |value: Option<&Value>, name: &str| value.and_then(|v| v.get(name)).cloned();
        let old_members: BTreeSet<String> = strings(field(before, "members").as_ref())
            .into_iter()
            .collect();
        let new_members: BTreeSet<String> = strings(self.after("members")).into_iter().collect();
        let added: Vec<String> = new_members
            .difference(&old_members)
            .map(|email| self.user(email))
            .collect::<Result<_, _>>()?;
        if !added.is_empty() {
            self.perform(Operation::AddGroupMembers {
                group: group.into(),
                users: added,
            })
            .await?;
        }
        let removed: Vec<String> = old_members
            .difference(&new_members)
            .map(|email| self.user(email))
            .collect::<Result<_, _>>()?;
        if !removed.is_empty() {
            self.perform(Operation::RemoveGroupMembers {
                group: group.into(),
                users: removed,
            })
            .await?;
        }
        let old = role_map(field(before, "workspaces").as_ref());
        let new = role_map(self.after("workspaces"));
        for (name, roles) in &new {
            let workspace = self.workspace(name)?;
            match old.get(name) {
                None => {
                    let operation = Operation::AssignGroupWorkspace {
                        group: group.into(),
                        workspace,
                        roles: roles.clone(),
                    };
                    self.perform(operation).await?;
                }
                Some(previous) if previous != roles => {
                    let operation = Operation::UpdateGroupWorkspace {
                        group: group.into(),
                        workspace,
                        roles: roles.clone(),
                    };
                    self.perform(operation).await?;
                }
                Some(_) => {}
            }
        }
        for name in old.keys().filter(|name| !new.contains_key(*name)) {
            let workspace = self.workspace(name)?;
            self.perform(Operation::UnassignGroupWorkspace {
                group: group.into(),
                workspace,
            })
            .await?;
        }
        if let Some(role) = self.after("organization_role").and_then(Value::as_str)
            && field(before, "organization_role")
                .as_ref()
                .and_then(Value::as_str)
                != Some(role)
        {
            self.perform(Operation::SetGroupOrganizationRole {
                group: group.into(),
                role: role.into(),
            })
            .await?;
        }
        Ok(())
    }

    /// The newest live key at this address: the one the plan compared.
    fn current_key(&self) -> Option<String> {
        let workspace = self.before("workspace").and_then(Value::as_str)?;
        let name = self.before("name").and_then(Value::as_str)?;
        self.live
            .keys
            .iter()
            .filter(|key| {
                key.workspace.as_deref() == Some(workspace) && key.name.as_deref() == Some(name)
            })
            .max_by(|a, b| a.created_at.cmp(&b.created_at))
            .map(|key| key.id.clone())
    }

    async fn create_key(&self) -> Result<(), ApplyError> {
        let workspace_name = self
            .after("workspace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name = self
            .after("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let owner = self
            .after("owner")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let expiration = match self.after("expires").and_then(Value::as_str) {
            Some(date) => Some(
                date.parse()
                    .map_err(|_| self.fail(format!("`{date}` is not a date")))?,
            ),
            None => None,
        };
        let sink = self
            .desired
            .workspaces
            .get(workspace_name)
            .and_then(|workspace| workspace.keys.get(&name))
            .map(|key| key.secret.clone())
            .ok_or_else(|| self.fail("the policy no longer declares this key"))?;
        let operation = Operation::CreateKey {
            workspace: self.workspace(workspace_name)?,
            user: self.user(owner)?,
            name,
            expiration,
        };
        let Outcome::Key { id, secret } = self.perform(operation).await? else {
            return Err(self.fail("the API returned no key"));
        };
        if let Err(problem) = deliver(&sink, &secret, &self.options.root) {
            // No orphan key: a key whose secret reached nobody is deleted again.
            let _ = self.perform(Operation::DeleteKey { key: id }).await;
            return Err(ApplyError::Delivery {
                address: self.change.address.clone(),
                problem,
            });
        }
        Ok(())
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn role_map(value: Option<&Value>) -> BTreeMap<String, Vec<String>> {
    value
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .map(|(key, roles)| (key.clone(), strings(Some(roles))))
                .collect()
        })
        .unwrap_or_default()
}
