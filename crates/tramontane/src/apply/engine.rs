//! Stage: apply. The engine that makes one change true: the operations a typed change
//! needs, in order, with the live ids they name; a new key is created, shown to work where
//! it succeeds another, and delivered to its sink, or deleted again.

use std::collections::{BTreeMap, BTreeSet};

use super::{ApplyError, Ids, Shared};
use jiff::Timestamp;

use crate::model::{Budget, DesiredOrg, LiveOrg, SecretSink};
use crate::plan::{Change, ChangeSpec, KeySpec, LiveKeyRef, TeamWorkspaces, WorkspaceMembers};
use crate::provider::{Operation, OrganizationLimit, Outcome, Provider, split_name};

pub(super) struct Engine<'a, P> {
    pub change: &'a Change,
    pub shared: &'a Shared<'a>,
    pub provider: &'a P,
    pub live: &'a LiveOrg,
    pub desired: &'a DesiredOrg,
    /// What a person should know about how the change went beyond done or failed, such as
    /// a check that could only be partial.
    pub note: std::sync::Mutex<Option<String>>,
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

    fn ids(&self) -> std::sync::MutexGuard<'_, Ids> {
        self.shared
            .ids
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn user(&self, email: &str) -> Result<String, ApplyError> {
        self.ids()
            .users
            .get(&email.to_lowercase())
            .cloned()
            .ok_or_else(|| self.fail(format!("`{email}` is not a member of the organization")))
    }

    fn workspace(&self, name: &str) -> Result<String, ApplyError> {
        self.ids()
            .workspaces
            .get(name)
            .cloned()
            .ok_or_else(|| self.fail(format!("no workspace `{name}`")))
    }

    fn team(&self, name: &str) -> Result<String, ApplyError> {
        self.ids()
            .teams
            .get(name)
            .cloned()
            .ok_or_else(|| self.fail("no such team"))
    }

    /// Makes the change; for a new key, says where its secret went.
    pub(super) async fn run(&self) -> Result<Option<String>, ApplyError> {
        match &self.change.spec {
            ChangeSpec::OrganizationSpendLimit { after, .. } => {
                let limit = match after {
                    Budget::Monthly(amount) => OrganizationLimit::Monthly {
                        units: amount.whole_units().ok_or_else(|| {
                            self.fail(format!(
                                "the organization's limit {amount} is not a whole amount, which the Admin API requires; plan again"
                            ))
                        })?,
                    },
                    Budget::Unlimited(_) => OrganizationLimit::Unlimited,
                };
                self.perform(Operation::SetSpendLimit { limit }).await?;
            }
            ChangeSpec::MemberCreate(member) => {
                let (first_name, last_name) = split_name(&member.name);
                if let Outcome::Created(id) = self
                    .perform(Operation::CreateUser {
                        email: member.email.clone(),
                        first_name,
                        last_name,
                        roles: member.roles.iter().cloned().collect(),
                    })
                    .await?
                {
                    self.ids().users.insert(member.email.to_lowercase(), id);
                }
            }
            ChangeSpec::MemberRoles { email, after, .. } => {
                let user = self.user(email)?;
                self.perform(Operation::SetUserRoles {
                    user,
                    roles: after.iter().cloned().collect(),
                })
                .await?;
            }
            ChangeSpec::MemberDelete(member) => {
                let user = self.user(&member.email)?;
                self.perform(Operation::DeleteUser { user }).await?;
            }
            ChangeSpec::WorkspaceCreate(workspace) => {
                let admin = self.user(workspace.admin.as_deref().unwrap_or_default())?;
                let Outcome::Created(id) = self
                    .perform(Operation::CreateWorkspace {
                        name: workspace.name.clone(),
                        description: workspace.description.clone(),
                        admin,
                    })
                    .await?
                else {
                    return Err(self.fail("the workspace was created without an id"));
                };
                self.ids()
                    .workspaces
                    .insert(workspace.name.clone(), id.clone());
                self.upsert_members(&id, &BTreeMap::new(), &workspace.members)
                    .await?;
            }
            ChangeSpec::WorkspaceUpdate {
                name,
                before,
                after,
            } => {
                let id = self.workspace(name)?;
                if let Some(description) =
                    changed_description(&before.description, &after.description)
                {
                    self.perform(Operation::SetWorkspaceDescription {
                        workspace: id.clone(),
                        description,
                    })
                    .await?;
                }
                self.upsert_members(&id, &before.members, &after.members)
                    .await?;
                let gone: Vec<String> = before
                    .members
                    .keys()
                    .filter(|email| !after.members.contains_key(*email))
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
            ChangeSpec::WorkspaceArchive(workspace) => {
                let workspace = self.workspace(&workspace.name)?;
                self.perform(Operation::ArchiveWorkspace { workspace })
                    .await?;
            }
            ChangeSpec::WorkspaceSpendLimit { .. } => {
                // `wave` never schedules a manual step; a person takes it in the console.
                return Err(self.fail("a manual step is for a person, in the console"));
            }
            ChangeSpec::TeamCreate(team) => {
                let Outcome::Created(id) = self
                    .perform(Operation::CreateGroup {
                        name: team.name.clone(),
                        description: team.description.clone(),
                    })
                    .await?
                else {
                    return Err(self.fail("the team was created without an id"));
                };
                self.ids().teams.insert(team.name.clone(), id.clone());
                let empty = (BTreeSet::new(), TeamWorkspaces::new());
                let old = TeamSide {
                    members: &empty.0,
                    workspaces: &empty.1,
                    organization_role: None,
                };
                let new = TeamSide {
                    members: &team.members,
                    workspaces: &team.workspaces,
                    organization_role: team.organization_role.as_deref(),
                };
                self.sync_team(&id, old, new).await?;
            }
            ChangeSpec::TeamUpdate {
                name,
                before,
                after,
            } => {
                let id = self.team(name)?;
                if let Some(description) =
                    changed_description(&before.description, &after.description)
                {
                    self.perform(Operation::SetGroupDescription {
                        group: id.clone(),
                        description,
                    })
                    .await?;
                }
                let old = TeamSide {
                    members: &before.members,
                    workspaces: &before.workspaces,
                    organization_role: before.organization_role.as_ref().and_then(Option::as_deref),
                };
                let new = TeamSide {
                    members: &after.members,
                    workspaces: &after.workspaces,
                    organization_role: after.organization_role.as_ref().and_then(Option::as_deref),
                };
                self.sync_team(&id, old, new).await?;
            }
            ChangeSpec::TeamDelete(team) => {
                let group = self.team(&team.name)?;
                self.perform(Operation::DeleteGroup { group }).await?;
            }
            ChangeSpec::KeyCreate(key) => {
                return Ok(Some(self.create_key(key, false).await?));
            }
            // A key that succeeds another is shown to work before it is delivered, so a
            // broken successor never displaces a working key, in its sink or upstream.
            ChangeSpec::KeyReplace { before, after } => {
                let delivered = self.create_key(after, true).await?;
                // A replacement lets its predecessor go at once; a rotation keeps it for the
                // overlap.
                if let Some(old) = self.key_before(before) {
                    self.perform(Operation::DeleteKey { key: old }).await?;
                }
                return Ok(Some(delivered));
            }
            ChangeSpec::KeyRotate { after, .. } => {
                return Ok(Some(self.create_key(after, true).await?));
            }
            ChangeSpec::KeyDelete(before) => {
                let key = self
                    .key_before(before)
                    .ok_or_else(|| self.fail("the key is gone already; plan again"))?;
                self.check_successor(before, &key).await?;
                self.perform(Operation::DeleteKey { key }).await?;
            }
            // No platform call: the gateway enforces it. What puts it in force is the runtime
            // record the caller writes once the whole apply has succeeded (see
            // `runtime_record`).
            ChangeSpec::Runtime { .. }
            | ChangeSpec::GatewayKey { .. }
            | ChangeSpec::Workload { .. }
            | ChangeSpec::Alerts { .. } => {}
        }
        Ok(None)
    }

    async fn upsert_members(
        &self,
        workspace: &str,
        old: &WorkspaceMembers,
        new: &WorkspaceMembers,
    ) -> Result<(), ApplyError> {
        let mut members = Vec::new();
        for (email, roles) in new {
            if old.get(email) != Some(roles) {
                members.push((self.user(email)?, roles.iter().cloned().collect()));
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

    async fn sync_team(
        &self,
        group: &str,
        old: TeamSide<'_>,
        new: TeamSide<'_>,
    ) -> Result<(), ApplyError> {
        let added: Vec<String> = new
            .members
            .difference(old.members)
            .map(|email| self.user(email))
            .collect::<Result<_, _>>()?;
        if !added.is_empty() {
            self.perform(Operation::AddGroupMembers {
                group: group.into(),
                users: added,
            })
            .await?;
        }
        let removed: Vec<String> = old
            .members
            .difference(new.members)
            .map(|email| self.user(email))
            .collect::<Result<_, _>>()?;
        if !removed.is_empty() {
            self.perform(Operation::RemoveGroupMembers {
                group: group.into(),
                users: removed,
            })
            .await?;
        }
        for (name, roles) in new.workspaces {
            let workspace = self.workspace(name)?;
            let roles_now: Vec<String> = roles.iter().cloned().collect();
            match old.workspaces.get(name) {
                None => {
                    let operation = Operation::AssignGroupWorkspace {
                        group: group.into(),
                        workspace,
                        roles: roles_now,
                    };
                    self.perform(operation).await?;
                }
                Some(previous) if previous != roles => {
                    let operation = Operation::UpdateGroupWorkspace {
                        group: group.into(),
                        workspace,
                        roles: roles_now,
                    };
                    self.perform(operation).await?;
                }
                Some(_) => {}
            }
        }
        for name in old
            .workspaces
            .keys()
            .filter(|name| !new.workspaces.contains_key(*name))
        {
            let workspace = self.workspace(name)?;
            self.perform(Operation::UnassignGroupWorkspace {
                group: group.into(),
                workspace,
            })
            .await?;
        }
        if let Some(role) = new.organization_role
            && old.organization_role != Some(role)
        {
            self.perform(Operation::SetGroupOrganizationRole {
                group: group.into(),
                role: role.into(),
            })
            .await?;
        }
        Ok(())
    }

    /// The live key a change names: its workspace, name and creation time single it out
    /// among keys of one name. Claimed, so no other change picks it too.
    fn key_before(&self, before: &LiveKeyRef) -> Option<String> {
        let workspace = before.workspace.as_deref()?;
        let name = before.name.as_deref()?;
        let created = before.created.as_deref();
        let mut claimed = self
            .shared
            .claimed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let id = self
            .live
            .keys
            .iter()
            .find(|key| {
                key.workspace.as_deref() == Some(workspace)
                    && key.name.as_deref() == Some(name)
                    && key.created_at.as_deref() == created
                    && !claimed.contains(&key.id)
            })
            .map(|key| key.id.clone())?;
        claimed.insert(id.clone());
        Some(id)
    }

    /// Before a rotation's predecessor goes, its successor is checked again: it was shown to
    /// work when it was created, but the apply that ends the overlap runs a day or more
    /// later, and a successor deleted, expired or whose secret was lost since would leave
    /// the consumers with no working key at all. A file sink is read back and its secret
    /// shown to work; a command sink's secret cannot be read back, so all that can be
    /// checked is that the successor still exists and has not expired. A key with no newer
    /// key of its name is no predecessor, and goes as planned.
    async fn check_successor(
        &self,
        before: &LiveKeyRef,
        predecessor: &str,
    ) -> Result<(), ApplyError> {
        let (Some(workspace), Some(name)) = (before.workspace.as_deref(), before.name.as_deref())
        else {
            return Ok(());
        };
        let created = |text: Option<&str>| text.and_then(|text| text.parse::<Timestamp>().ok());
        let Some(predecessor_created) = created(before.created.as_deref()) else {
            return Ok(());
        };
        let successor = self
            .live
            .keys
            .iter()
            .filter(|key| {
                key.id != predecessor
                    && key.workspace.as_deref() == Some(workspace)
                    && key.name.as_deref() == Some(name)
            })
            .filter_map(|key| Some((created(key.created_at.as_deref())?, key)))
            .filter(|(created, _)| *created > predecessor_created)
            .max_by_key(|(created, _)| *created);
        let Some((_, successor)) = successor else {
            return Ok(());
        };
        let Some(declared) = self
            .desired
            .workspaces
            .get(workspace)
            .and_then(|workspace| workspace.keys.get(name))
        else {
            return Ok(());
        };
        let failing = |problem: String| ApplyError::SuccessorFailing {
            address: self.change.address.clone(),
            problem,
        };
        let today = self.shared.today;
        if successor.expires.is_some_and(|expires| expires <= today) {
            return Err(failing(format!(
                "the successor {} expired on {}",
                successor.id,
                successor
                    .expires
                    .map(|date| date.to_string())
                    .unwrap_or_default()
            )));
        }
        match &declared.secret {
            SecretSink::File(path) => {
                let secret = self.shared.files.read_back(path).map_err(failing)?;
                self.provider.verify_key(&secret).await.map_err(|problem| {
                    failing(format!("its secret in `{path}` was refused: {problem}"))
                })?;
            }
            _ => {
                *self
                    .note
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(format!(
                    "the successor {} was checked only partly: it still exists and has not expired, but its secret went to a command and cannot be read back to show it works",
                    successor.id
                ));
            }
        }
        Ok(())
    }

    /// Creates the key and delivers its secret; on a failed delivery the key is deleted
    /// again. With `verify`, the key is first shown to work, and deleted again if it does
    /// not. The intent is journalled before the create and the delivery after it, so a run
    /// that dies in between leaves the next plan a key to replace. Returns where the secret
    /// went.
    async fn create_key(&self, key: &KeySpec, verify: bool) -> Result<String, ApplyError> {
        let workspace_name = key.workspace.as_str();
        let name = key.name.clone();
        let owner = key.owner.as_str();
        let expiration = key.expires;
        let sink = self
            .desired
            .workspaces
            .get(workspace_name)
            .and_then(|workspace| workspace.keys.get(&name))
            .map(|key| key.secret.clone())
            .ok_or_else(|| self.fail("the policy no longer declares this key"))?;
        // Claimed before the create, so a lost answer can tell a new key from these.
        let known: Vec<String> = self
            .live
            .keys
            .iter()
            .filter(|key| {
                key.workspace.as_deref() == Some(workspace_name)
                    && key.name.as_deref() == Some(name.as_str())
            })
            .map(|key| key.id.clone())
            .collect();
        let operation = Operation::CreateKey {
            workspace: self.workspace(workspace_name)?,
            user: self.user(owner)?,
            name: name.clone(),
            expiration,
            known: known.clone(),
        };
        let address = self.change.address.clone();
        let intent = match self.shared.journal {
            Some(journal) => Some(
                journal
                    .creating(&address, workspace_name, &name, &known)
                    .await
                    .map_err(|source| ApplyError::JournalBefore {
                        address: address.clone(),
                        source,
                    })?,
            ),
            None => None,
        };
        let Outcome::Key { id, secret } = self.perform(operation).await? else {
            return Err(self.fail("the API returned no key"));
        };
        if let (Some(journal), Some(intent)) = (self.shared.journal, &intent) {
            // Best effort: without it, the intent still singles the key out by name.
            let _ = journal.created(intent, &id).await;
        }
        if verify && let Err(problem) = self.provider.verify_key(&secret).await {
            let problem = problem.to_string();
            return Err(match self.perform(Operation::DeleteKey { key: id }).await {
                Ok(_) => ApplyError::Unverified { address, problem },
                Err(cleanup) => ApplyError::UnverifiedOrphan {
                    address,
                    problem,
                    cleanup: cleanup.to_string(),
                },
            });
        }
        match self.shared.files.deliver(&address, &sink, &secret).await {
            Ok(()) => {
                if let (Some(journal), Some(intent)) = (self.shared.journal, &intent) {
                    journal
                        .delivered(intent, &id)
                        .await
                        .map_err(|source| ApplyError::JournalAfter { address, source })?;
                }
                Ok(crate::plan::sink_summary(&sink))
            }
            Err(problem) => {
                // No orphan key: a key whose secret reached nobody is deleted again.
                match self.perform(Operation::DeleteKey { key: id }).await {
                    Ok(_) => Err(ApplyError::Delivery { address, problem }),
                    Err(cleanup) => Err(ApplyError::Orphan {
                        address,
                        problem,
                        cleanup: cleanup.to_string(),
                    }),
                }
            }
        }
    }
}

/// One side of a team change, as `sync_team` compares them.
struct TeamSide<'a> {
    members: &'a BTreeSet<String>,
    workspaces: &'a TeamWorkspaces,
    organization_role: Option<&'a str>,
}

/// The description an update sets: the policy's, where it sets one the organization does
/// not already have.
fn changed_description(before: &Option<String>, after: &Option<String>) -> Option<String> {
    after
        .clone()
        .filter(|description| before.as_ref() != Some(description))
}
