//! Reading the whole organization: every list to its last page, at once where the API
//! allows, then every role UUID resolved to its name.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::api::{
    AdminOrganizationMemberOut, AdminUserGroupOut, GroupWorkspaceAssignmentOut, RolesOut,
    WorkspaceOut,
};
use super::client::Client;
use super::join_all;
use crate::model::{
    LiveInvite, LiveKey, LiveMember, LiveOrg, LiveTeam, LiveWorkspace, RateLimits, SpendLimit,
    Unlimited, live::TokenLimits,
};
use crate::provider::ProviderError;

/// The organization as the Admin API shows it.
pub(super) async fn read_org(client: &Client) -> Result<LiveOrg, ProviderError> {
    let (roles, users, active, archived, groups, keys, spend, rate) = tokio::try_join!(
        client.roles(),
        client.list_users(),
        client.list_workspaces(false),
        client.list_workspaces(true),
        client.list_groups(),
        client.list_api_keys(),
        client.spend_limit(),
        client.rate_limit(),
    )?;
    let (members, invites) = users;
    // The client's semaphore bounds how many of these run at once.
    let group_details = join_all(
        groups
            .iter()
            .map(|group| async move {
                tokio::try_join!(
                    client.group_members(&group.uuid),
                    client.group_workspaces(&group.uuid)
                )
            })
            .collect(),
    )
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;

    let roles = RoleNames::new(&roles);
    let mut live = LiveOrg::default();
    let workspace_names: HashMap<&str, &str> = active
        .iter()
        .chain(archived.iter())
        .map(|workspace| (workspace.uuid.as_str(), workspace.name.as_str()))
        .collect();

    for workspace in &active {
        live.workspaces
            .insert(workspace.name.clone(), live_workspace(workspace));
    }
    for workspace in &archived {
        if !live.workspaces.contains_key(&workspace.name) {
            live.archived_workspaces.insert(workspace.name.clone());
        }
    }
    for member in &members {
        add_member(&mut live, member, &roles);
    }
    for invite in &invites {
        live.invites.insert(
            invite.email.to_lowercase(),
            LiveInvite {
                id: invite.uuid.clone(),
                email: invite.email.clone(),
                roles: RoleNames::names(&roles.organization, &invite.raw_roles),
                expired: invite.expired,
            },
        );
    }
    for (group, (group_members, assignments)) in groups.iter().zip(group_details) {
        live.teams.insert(
            group.name.clone(),
            live_team(
                group,
                &group_members
                    .iter()
                    .filter_map(|m| m.email.clone())
                    .collect::<Vec<_>>(),
                &assignments,
                &roles,
            ),
        );
    }
    for key in &keys {
        live.keys.push(LiveKey {
            id: key.key_id.clone(),
            name: key.name.clone(),
            workspace: key.workspace_id.as_deref().map(|id| {
                workspace_names
                    .get(id)
                    .map_or_else(|| id.to_owned(), |name| (*name).to_owned())
            }),
            created_by: key.created_by.clone(),
            created_at: key.created_at.clone(),
            expires: parse_date(
                key.expiration_date.as_deref(),
                "GET /v1/admin/api-keys",
                "expiration_date",
            )?,
            last_used: parse_date(
                key.last_used.as_deref(),
                "GET /v1/admin/api-keys",
                "last_used",
            )?,
        });
    }
    let completion = &spend.limits.completion;
    live.spend_limit = Some(if completion.no_monthly_limit {
        SpendLimit::Unlimited(Unlimited::Unlimited)
    } else {
        SpendLimit::Monthly(completion.usage_limit.unwrap_or(0.0))
    });
    live.rate_limits = Some(RateLimits {
        requests_per_second: u64::try_from(rate.requests_per_second).unwrap_or(0),
        tokens_by_model: rate
            .tokens_limits_by_model
            .iter()
            .map(|(model, limits)| {
                (
                    model.clone(),
                    TokenLimits {
                        tokens_per_minute: u64::try_from(limits.tokens_per_minute).unwrap_or(0),
                        tokens_per_month: u64::try_from(limits.tokens_per_month).unwrap_or(0),
                    },
                )
            })
            .collect(),
    });
    Ok(live)
}

/// Role names by UUID, with the letter codes some fields use instead.
struct RoleNames {
    organization: HashMap<String, String>,
    workspace: HashMap<String, String>,
}

impl RoleNames {
    fn new(roles: &RolesOut) -> RoleNames {
        let mut organization: HashMap<String, String> = roles
            .organization_roles
            .iter()
            .map(|role| (role.uuid.clone(), role.name.clone()))
            .collect();
        // `UserRole` letter codes of the spec: Admin, Member, Billing.
        for (code, name) in [
            ("A", "organization_admin"),
            ("M", "member"),
            ("B", "billing_manager"),
        ] {
            organization
                .entry(code.into())
                .or_insert_with(|| name.into());
        }
        let mut workspace: HashMap<String, String> = roles
            .workspace_roles
            .iter()
            .map(|role| (role.uuid.clone(), role.name.clone()))
            .collect();
        for (code, name) in [("A", "workspace_admin"), ("M", "user")] {
            workspace.entry(code.into()).or_insert_with(|| name.into());
        }
        RoleNames {
            organization,
            workspace,
        }
    }

    /// Names for role ids; an id the roles list lacks is kept as it is, so a plan shows it
    /// rather than hiding it.
    fn names(map: &HashMap<String, String>, ids: &[String]) -> BTreeSet<String> {
        ids.iter()
            .map(|id| map.get(id).cloned().unwrap_or_else(|| id.clone()))
            .collect()
    }
}

fn parse_date(
    text: Option<&str>,
    call: &str,
    field: &str,
) -> Result<Option<jiff::civil::Date>, ProviderError> {
    let Some(text) = text else { return Ok(None) };
    let day = text.get(..10).unwrap_or(text);
    day.parse()
        .map(Some)
        .map_err(|_| ProviderError::Unexpected {
            call: call.into(),
            problem: format!("`{field}` is `{text}`, not a date"),
        })
}

fn live_workspace(workspace: &WorkspaceOut) -> LiveWorkspace {
    LiveWorkspace {
        id: workspace.uuid.clone(),
        name: workspace.name.clone(),
        description: workspace.description.clone().unwrap_or_default(),
        is_default: workspace.is_default,
        members: BTreeMap::new(),
        spend_limit: workspace.spend_limit.as_ref().and_then(|limit| {
            if limit.no_monthly_limit == Some(true) {
                Some(SpendLimit::Unlimited(Unlimited::Unlimited))
            } else {
                limit.value.map(SpendLimit::Monthly)
            }
        }),
    }
}

fn add_member(live: &mut LiveOrg, member: &AdminOrganizationMemberOut, roles: &RoleNames) {
    let Some(email) = member.email.clone() else {
        return;
    };
    let lower = email.to_lowercase();
    for workspace in member.workspaces.iter().flatten() {
        if let Some(found) = live.workspaces.get_mut(&workspace.name) {
            found.members.insert(
                lower.clone(),
                RoleNames::names(&roles.workspace, &workspace.raw_roles),
            );
        }
    }
    live.members.insert(
        lower,
        LiveMember {
            id: member.uuid.clone(),
            name: member.name.clone().unwrap_or_default(),
            email,
            roles: RoleNames::names(&roles.organization, &member.raw_roles),
        },
    );
}

fn live_team(
    group: &AdminUserGroupOut,
    emails: &[String],
    assignments: &[GroupWorkspaceAssignmentOut],
    roles: &RoleNames,
) -> LiveTeam {
    LiveTeam {
        id: group.uuid.clone(),
        name: group.name.clone(),
        description: group.description.clone().unwrap_or_default(),
        members: emails.iter().map(|email| email.to_lowercase()).collect(),
        workspaces: assignments
            .iter()
            .map(|assignment| {
                let names = assignment
                    .roles
                    .iter()
                    .map(|role| role.name.clone())
                    .collect();
                (assignment.workspace_name.clone(), names)
            })
            .collect(),
        organization_role: group.organization_role.as_ref().map(|role| {
            roles
                .organization
                .get(role)
                .cloned()
                .unwrap_or_else(|| role.clone())
        }),
    }
}
