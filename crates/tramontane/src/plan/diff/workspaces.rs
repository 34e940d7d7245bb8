//! Workspaces: created with their admin, members kept in step, archived where
//! `prune.workspaces` says so, and budgets the console alone can set shown as manual steps.

use std::collections::{BTreeMap, BTreeSet};

use super::{Planner, members_not_in_policy, workspace_role_names};
use crate::model::{Budget, Workspace, WorkspaceRole};
use crate::plan::{
    ArchivedWorkspace, Change, ChangeSpec, Kind, NewWorkspace, Unmanaged, WorkspaceMembers,
    WorkspaceState,
};

impl Planner<'_> {
    pub(super) fn workspaces(&mut self) {
        let desired = &self.input.desired;
        let live = &self.input.live;
        for (name, workspace) in &desired.workspaces {
            let address = format!("workspace.{name}");
            let mut members = desired_members(workspace);
            members.retain(|email, _| !self.pending.contains(email));
            let wanted_limit = workspace.spend_limit.map(Budget::of);
            match live.workspaces.get(name) {
                None => {
                    let archived = live.archived_workspaces.contains(name);
                    let reason = if archived {
                        "in the policy; the organization has only an archived workspace of this name, which cannot be restored through the API"
                    } else {
                        "in the policy, not in the organization"
                    };
                    let spec = ChangeSpec::WorkspaceCreate(NewWorkspace {
                        name: name.clone(),
                        description: workspace.description.clone().unwrap_or_default(),
                        admin: workspace.admin.clone(),
                        members,
                    });
                    self.push(Change::new(address.clone(), reason, spec));
                    if let Some(limit) = wanted_limit {
                        self.push(manual_spend_limit(&address, name, None, limit, true));
                    }
                }
                Some(current) => {
                    let description = workspace.description.as_ref();
                    let before = WorkspaceState {
                        description: description.map(|_| current.description.clone()),
                        members: current.members.clone(),
                    };
                    let after = WorkspaceState {
                        description: description.cloned(),
                        members,
                    };
                    let spec = ChangeSpec::WorkspaceUpdate {
                        name: name.clone(),
                        before: before.clone(),
                        after: after.clone(),
                    };
                    self.update(address.clone(), &before, &after, spec);
                    let live_limit = current.spend_limit.map(Budget::of);
                    if let Some(limit) = wanted_limit
                        && live_limit != Some(limit)
                    {
                        self.push(manual_spend_limit(&address, name, live_limit, limit, false));
                    }
                }
            }
        }
        for (name, current) in &live.workspaces {
            if desired.workspaces.contains_key(name) {
                continue;
            }
            let address = format!("workspace.{name}");
            if current.is_default {
                self.unmanaged.push(Unmanaged {
                    address,
                    kind: Kind::Workspace,
                    note: "the organization's default workspace, which cannot be archived".into(),
                });
            } else {
                let archive = desired.organization.prune.workspaces.then(|| {
                    let spec = ChangeSpec::WorkspaceArchive(ArchivedWorkspace {
                        name: name.clone(),
                        description: current.description.clone(),
                        members: current.members.clone(),
                    });
                    (
                        "not in the policy, and `prune.workspaces` is on: the workspace is archived",
                        spec,
                    )
                });
                self.not_in_policy(address, Kind::Workspace, archive, || {
                    members_not_in_policy(current.members.len())
                });
            }
        }
    }
}

/// A workspace's members as the policy wants them: the listed ones, and the admin, who must
/// hold `workspace_admin`.
fn desired_members(workspace: &Workspace) -> WorkspaceMembers {
    let mut members: BTreeMap<String, BTreeSet<String>> = workspace
        .members
        .iter()
        .map(|(email, roles)| (email.to_lowercase(), workspace_role_names(roles)))
        .collect();
    if let Some(admin) = &workspace.admin {
        members
            .entry(admin.to_lowercase())
            .or_default()
            .insert(WorkspaceRole::WorkspaceAdmin.as_str().to_owned());
    }
    members
}

/// A workspace budget that differs from the policy's: the Admin API can read it but not set
/// it, so a person does, in the console.
fn manual_spend_limit(
    address: &str,
    name: &str,
    live: Option<Budget>,
    wanted: Budget,
    new: bool,
) -> Change {
    let what = match wanted {
        Budget::Monthly(amount) => format!("set the monthly limit to {amount}"),
        Budget::Unlimited(_) => "remove the monthly limit".into(),
    };
    let when = if new {
        "once the workspace exists, "
    } else {
        ""
    };
    let reason = format!(
        "the Admin API cannot set a workspace's budget: {when}in the console open Admin → Workspaces → {name} → Limits and {what}"
    );
    Change::new(
        address,
        reason,
        ChangeSpec::WorkspaceSpendLimit {
            workspace: name.to_owned(),
            before: live,
            after: wanted,
        },
    )
}
