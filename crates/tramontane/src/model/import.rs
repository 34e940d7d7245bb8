//! The live organization written back as policy: what `tramontane import` starts a policy
//! repository from. Planning the result against the same organization changes nothing.

use std::collections::BTreeMap;

use jiff::civil::Date;
use serde::de::DeserializeOwned;

use super::{
    ApiKey, DesiredOrg, LiveOrg, Member, OrganizationRole, SecretSink, Team, Workspace,
    WorkspaceRole,
};

/// The policy that describes `live`, and notes on what could not be carried over.
pub fn desired_from_live(live: &LiveOrg, today: Date) -> (DesiredOrg, Vec<String>) {
    let mut notes = Vec::new();
    let mut desired = DesiredOrg::default();
    desired.organization.spend_limit = live.spend_limit;

    for member in live.members.values() {
        let roles: Vec<OrganizationRole> = member
            .roles
            .iter()
            .filter_map(|role| organization_role(role, &mut notes))
            .collect();
        let name = if member.name.trim().is_empty() {
            member
                .email
                .split('@')
                .next()
                .unwrap_or(&member.email)
                .to_owned()
        } else {
            member.name.clone()
        };
        desired.members.insert(
            member.email.clone(),
            Member {
                name,
                roles: if roles.is_empty() {
                    vec![OrganizationRole::Member]
                } else {
                    roles
                },
            },
        );
    }
    let email = |lower: &str| {
        live.members
            .get(lower)
            .map_or_else(|| lower.to_owned(), |m| m.email.clone())
    };

    for (name, workspace) in &live.workspaces {
        let mut members = BTreeMap::new();
        let mut admin = None;
        for (lower, roles) in &workspace.members {
            let roles: Vec<WorkspaceRole> = roles
                .iter()
                .filter_map(|role| workspace_role(role, &mut notes))
                .collect();
            if admin.is_none() && roles.contains(&WorkspaceRole::WorkspaceAdmin) {
                admin = Some(email(lower));
            }
            members.insert(email(lower), roles);
        }
        if admin.is_none() {
            notes.push(format!("workspace `{name}` has no member with `workspace_admin`: add an `admin` before validating"));
        }
        let mut keys = BTreeMap::new();
        let mut newest: BTreeMap<&str, &super::LiveKey> = BTreeMap::new();
        for key in live
            .keys
            .iter()
            .filter(|key| key.workspace.as_deref() == Some(name.as_str()))
        {
            let Some(key_name) = key.name.as_deref() else {
                continue;
            };
            let slot = newest.entry(key_name).or_insert(key);
            if key.created_at > slot.created_at {
                *slot = key;
            }
        }
        for (key_name, key) in newest {
            if key.expires.is_some_and(|expires| expires <= today) {
                notes.push(format!(
                    "key `{key_name}` of workspace `{name}` has expired and is left out"
                ));
                continue;
            }
            let owner = key
                .created_by
                .as_deref()
                .map(str::to_lowercase)
                .filter(|creator| live.members.contains_key(creator))
                .map(|creator| email(&creator))
                .or_else(|| admin.clone())
                .unwrap_or_default();
            keys.insert(
                key_name.to_owned(),
                ApiKey {
                    owner,
                    expires: key.expires,
                    expires_after_days: None,
                    rotate_before_days: None,
                    rotation_overlap_hours: None,
                    models: None,
                    rpm: None,
                    max_tokens_per_request: None,
                    daily_token_budget: None,
                    spend_guard: None,
                    secret: SecretSink::File(format!("secrets/{name}/{key_name}.key")),
                },
            );
        }
        desired.workspaces.insert(
            name.clone(),
            Workspace {
                description: Some(workspace.description.clone()),
                admin,
                members,
                spend_limit: workspace.spend_limit,
                rpm: None,
                models: None,
                keys,
                spend_guard: None,
                gateway: None,
            },
        );
    }

    for (name, team) in &live.teams {
        desired.teams.insert(
            name.clone(),
            Team {
                description: Some(team.description.clone()),
                members: team.members.iter().map(|lower| email(lower)).collect(),
                workspaces: team
                    .workspaces
                    .iter()
                    .map(|(workspace, roles)| {
                        (
                            workspace.clone(),
                            roles
                                .iter()
                                .filter_map(|role| workspace_role(role, &mut notes))
                                .collect(),
                        )
                    })
                    .collect(),
                organization_role: team
                    .organization_role
                    .as_deref()
                    .and_then(|role| organization_role(role, &mut notes)),
                role: None,
                spend_guard: None,
            },
        );
    }
    notes.sort();
    notes.dedup();
    (desired, notes)
}

fn organization_role(name: &str, notes: &mut Vec<String>) -> Option<OrganizationRole> {
    known_role("organization", name, notes)
}

fn workspace_role(name: &str, notes: &mut Vec<String>) -> Option<WorkspaceRole> {
    known_role("workspace", name, notes)
}

/// The role the API calls `name`, when the policy format knows it; otherwise a note says
/// the `scope` role was left out.
fn known_role<Role: DeserializeOwned>(
    scope: &str,
    name: &str,
    notes: &mut Vec<String>,
) -> Option<Role> {
    let role = serde_json::from_value(serde_json::Value::String(name.to_owned())).ok();
    if role.is_none() {
        notes.push(format!(
            "{scope} role `{name}` is not one the policy format knows; left out"
        ));
    }
    role
}
