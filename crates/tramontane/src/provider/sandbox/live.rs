//! The sandbox organization as a provider reports it: ids resolved to names.

use super::SandboxOrg;
use crate::model::{LiveInvite, LiveKey, LiveMember, LiveOrg, LiveTeam, LiveWorkspace, SpendLimit};

impl SandboxOrg {
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
