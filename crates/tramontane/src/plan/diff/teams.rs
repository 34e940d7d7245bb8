//! Teams (Mistral user groups): members, workspace assignments and organization role kept
//! in step, deleted where `prune.teams` says so.

use std::collections::BTreeSet;

use super::{Planner, members_not_in_policy, workspace_role_names};
use crate::plan::{Change, ChangeSpec, DeletedTeam, Kind, NewTeam, TeamState, TeamWorkspaces};

impl Planner<'_> {
    pub(super) fn teams(&mut self) {
        let desired = &self.input.desired;
        let live = &self.input.live;
        for (name, team) in &desired.teams {
            let address = format!("team.{name}");
            let members: BTreeSet<String> = team
                .members
                .iter()
                .map(|email| email.to_lowercase())
                .filter(|email| !self.pending.contains(email))
                .collect();
            let workspaces: TeamWorkspaces = team
                .workspaces
                .iter()
                .map(|(workspace, roles)| (workspace.clone(), workspace_role_names(roles)))
                .collect();
            let organization_role = team.organization_role.map(|role| role.as_str().to_owned());
            match live.teams.get(name) {
                None => {
                    let spec = ChangeSpec::TeamCreate(NewTeam {
                        name: name.clone(),
                        description: team.description.clone().unwrap_or_default(),
                        members,
                        workspaces,
                        organization_role,
                    });
                    self.push(Change::new(
                        address,
                        "in the policy, not in the organization",
                        spec,
                    ));
                }
                Some(current) => {
                    let description = team.description.as_ref();
                    let before = TeamState {
                        description: description.map(|_| current.description.clone()),
                        members: current.members.clone(),
                        workspaces: current.workspaces.clone(),
                        organization_role: organization_role
                            .as_ref()
                            .map(|_| current.organization_role.clone()),
                    };
                    let after = TeamState {
                        description: description.cloned(),
                        members,
                        workspaces,
                        organization_role: organization_role.map(Some),
                    };
                    let spec = ChangeSpec::TeamUpdate {
                        name: name.clone(),
                        before: before.clone(),
                        after: after.clone(),
                    };
                    self.update(address, &before, &after, spec);
                }
            }
        }
        for (name, current) in &live.teams {
            if desired.teams.contains_key(name) {
                continue;
            }
            let address = format!("team.{name}");
            let delete = desired.organization.prune.teams.then(|| {
                let spec = ChangeSpec::TeamDelete(DeletedTeam {
                    name: name.clone(),
                    description: current.description.clone(),
                    members: current.members.clone(),
                    workspaces: current.workspaces.clone(),
                });
                ("not in the policy, and `prune.teams` is on", spec)
            });
            self.not_in_policy(address, Kind::Team, delete, || {
                members_not_in_policy(current.members.len())
            });
        }
    }
}
