//! Stage: effective access, computed once from the desired organization (beside `plan`,
//! after `policy`). The plan's `runtime` section, `tramontane diff` and the gateway all read
//! this [`Runtime`]; none of them resolves inheritance on its own.
//!
//! For every caller the gateway serves — a workspace's service key, a team in each
//! workspace it is assigned to, a member through their teams — it says which models may be
//! called (aliases resolved through the catalog, `"*"` expanded to what the workspace
//! allows), the caller's own request rate and the workspace's shared one, the largest
//! request, the daily token budget, the workspace's monthly spend limit on the platform and
//! the gateway's spend guards the caller's requests count against.
//!
//! Inheritance: a key without `models` uses its workspace's, and its listed models are cut
//! to those the workspace allows; its rate, max tokens, daily budget and spend guard are its
//! own. A team's models, rate, max tokens and daily budget are its runtime role's (the rate
//! and budget per member), models within each workspace it is assigned; a team without a
//! role is limited by the workspace alone. A member's access in a workspace is the most
//! generous of the teams with a role that bring them there (any model one allows, the larger
//! of each limit, no limit where one has none), or the workspace's own when no such team
//! does. Spend guards add up instead: the workspace's, then every team's that brings the
//! caller there (with a role or without), or the key's own.
//!
//! The gateway (`tramontane-gateway`'s `access`) reads a caller's limits here through
//! [`Runtime::member`] and [`Runtime::key`]; it adds only where each limit is counted.

mod callers;
mod gateway_keys;
mod guards;
mod models;
mod rule;
mod workloads;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use callers::Caller;
pub use gateway_keys::{GatewayKeyAccess, fingerprint};
pub use guards::{GuardScope, SharedGuard, key_address};
pub use models::Models;
pub use rule::{Measure, Rule, RuleScope, Window};
pub use workloads::{IssuerTrust, WorkloadAccess};

use crate::model::{
    AccessProfile, Budget, DesiredOrg, Expiry, OrganizationRole, SpendGuard, Workspace,
    WorkspaceRole,
};
use crate::policy::catalog::Catalog;

/// Effective access under one policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Runtime {
    #[serde(default)]
    pub organization: OrganizationAccess,
    /// Runtime access profiles (the policy's `roles`) by name, as teams take them on.
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
    #[serde(default)]
    pub workspaces: BTreeMap<String, WorkspaceAccess>,
    #[serde(default)]
    pub teams: BTreeMap<String, TeamAccess>,
    /// Members by lower-cased email.
    #[serde(default)]
    pub members: BTreeMap<String, MemberAccess>,
    /// Gateway keys by public id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub gateway_keys: BTreeMap<String, GatewayKeyAccess>,
    /// Workloads (the policy's `workloads:`) by name, each with its issuer's trust.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub workloads: BTreeMap<String, WorkloadAccess>,
    /// The threshold alerts the gateway sends (the policy's `alerts`, URLs by where they are
    /// read, never themselves). Absent from records made before it was added.
    #[serde(default, skip_serializing_if = "crate::model::Alerts::is_default")]
    pub alerts: crate::model::Alerts,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OrganizationAccess {
    /// The organization's monthly limit, when the policy sets one.
    pub spend_limit: Option<Budget>,
}

/// A runtime access profile with its model list read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub models: Models,
    /// Requests per minute for each member with the profile.
    #[serde(default)]
    pub rpm: Option<u32>,
    pub max_tokens_per_request: Option<u64>,
    pub daily_token_budget: Option<u64>,
}

/// What the gateway lets one caller do in one workspace.
///
/// The caller's own rate and daily token budget count per service key for a key, and per
/// member for a member or a team (each member of a team has the role's allowance, across
/// all the gateway keys they hold).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    pub models: Models,
    /// The caller's own requests per minute; `None`: only the workspace's limit applies.
    pub rpm: Option<u32>,
    /// Requests per minute shared by every caller of the workspace.
    pub workspace_rpm: Option<u32>,
    pub max_tokens_per_request: Option<u64>,
    pub daily_token_budget: Option<u64>,
    /// The workspace's monthly spend limit on the platform, shared by its callers.
    pub spend_limit: Option<Budget>,
    /// The gateway's spend guards the caller's requests count against: the workspace's,
    /// then those of its teams there or its own as a service key. Absent from records made
    /// before it was added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spend_guards: Vec<SharedGuard>,
}

impl Limits {
    /// The counted limits a caller of `workspace` meets, in the order a refusal is checked:
    /// the workspace's shared rate, the caller's own rate and daily token budget (counted
    /// under `own`), then every spend guard of every group the caller spends for.
    pub fn rules(&self, workspace: &str, own: &RuleScope) -> Vec<Rule> {
        let mut rules = Vec::new();
        if let Some(rpm) = self.workspace_rpm {
            rules.push(Rule::new(
                RuleScope::Workspace(workspace.to_owned()),
                Measure::Requests,
                Window::Minute,
                u64::from(rpm),
            ));
        }
        if let Some(rpm) = self.rpm {
            rules.push(Rule::new(
                own.clone(),
                Measure::Requests,
                Window::Minute,
                u64::from(rpm),
            ));
        }
        if let Some(daily) = self.daily_token_budget {
            rules.push(Rule::new(own.clone(), Measure::Tokens, Window::Day, daily));
        }
        for shared in &self.spend_guards {
            let scope = match &shared.scope {
                GuardScope::Workspace(name) => RuleScope::Workspace(name.clone()),
                GuardScope::Team(name) => RuleScope::Team(name.clone()),
                GuardScope::Key(address) => RuleScope::Key(address.clone()),
                GuardScope::Workload(name) => RuleScope::Workload(name.clone()),
            };
            for (window, amount) in [
                (Window::Hour, shared.guard.hour),
                (Window::Day, shared.guard.day),
                (Window::Month, shared.guard.month),
            ] {
                if let Some(amount) = amount {
                    rules.push(Rule::new(
                        scope.clone(),
                        Measure::Spend,
                        window,
                        amount.micros(),
                    ));
                }
            }
        }
        rules
    }

    /// The most generous of two ways into one workspace: any model either allows, the
    /// larger of each limit, and no limit where either has none.
    fn most_generous(&self, other: &Limits) -> Limits {
        fn larger<T: Ord + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
            Some(a?.max(b?))
        }
        Limits {
            models: self.models.union(&other.models),
            rpm: larger(self.rpm, other.rpm),
            workspace_rpm: self.workspace_rpm,
            max_tokens_per_request: larger(
                self.max_tokens_per_request,
                other.max_tokens_per_request,
            ),
            daily_token_budget: larger(self.daily_token_budget, other.daily_token_budget),
            spend_limit: self.spend_limit,
            // Guards add up rather than pick: the caller's `member_access` sets them.
            spend_guards: self.spend_guards.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceAccess {
    /// What the workspace allows any of its callers.
    pub models: Models,
    pub rpm: Option<u32>,
    pub spend_limit: Option<Budget>,
    /// Absent from records made before it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend_guard: Option<SpendGuard>,
    /// Direct members by lower-cased email, the admin among them as `workspace_admin`.
    pub members: BTreeMap<String, BTreeSet<WorkspaceRole>>,
    /// Teams assigned to the workspace, with their roles in it.
    pub teams: BTreeMap<String, BTreeSet<WorkspaceRole>>,
    /// The workspace's service keys.
    pub keys: BTreeMap<String, KeyAccess>,
}

impl WorkspaceAccess {
    /// A caller of this workspace limited by nothing but the workspace.
    fn limits(&self, name: &str) -> Limits {
        Limits {
            models: self.models.clone(),
            rpm: None,
            workspace_rpm: self.rpm,
            max_tokens_per_request: None,
            daily_token_budget: None,
            spend_limit: self.spend_limit,
            spend_guards: SharedGuard::of(
                GuardScope::Workspace(name.to_owned()),
                self.spend_guard.as_ref(),
            )
            .into_iter()
            .collect(),
        }
    }
}

/// A service key: a caller of its workspace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyAccess {
    /// The owner's lower-cased email.
    pub owner: String,
    pub expiry: Option<Expiry>,
    /// The key lists no models of its own: it has its workspace's.
    pub inherits_models: bool,
    pub limits: Limits,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TeamAccess {
    /// Lower-cased emails.
    pub members: BTreeSet<String>,
    pub organization_role: Option<OrganizationRole>,
    /// The runtime role's name; `None`: the gateway restricts the team by nothing but its
    /// workspaces.
    pub role: Option<String>,
    /// What the whole team may spend through the gateway. Absent from records made before
    /// it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend_guard: Option<SpendGuard>,
    /// The team's access in each workspace it is assigned.
    pub workspaces: BTreeMap<String, Grant>,
}

/// A team's place in one workspace: its roles there and what it may do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    pub roles: BTreeSet<WorkspaceRole>,
    pub limits: Limits,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberAccess {
    pub roles: BTreeSet<OrganizationRole>,
    pub teams: BTreeSet<String>,
    pub workspaces: BTreeMap<String, MemberGrant>,
}

/// How a member reaches one workspace, and what they may do there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberGrant {
    /// Roles the workspace gives them directly; `None`: they are not a direct member.
    pub roles: Option<BTreeSet<WorkspaceRole>>,
    /// Roles they hold through each of their teams.
    pub through_teams: BTreeMap<String, BTreeSet<WorkspaceRole>>,
    pub limits: Limits,
}

impl Runtime {
    /// Effective access under `desired`, model names resolved through `catalog` and the
    /// models `desired` declares.
    pub fn of(desired: &DesiredOrg, catalog: &Catalog) -> Runtime {
        let merged;
        let catalog = if desired.models.is_empty() {
            catalog
        } else {
            merged = catalog.with_declared(&desired.models);
            &merged
        };
        let profiles: BTreeMap<String, Profile> = desired
            .roles
            .iter()
            .map(|(name, profile)| (name.clone(), Profile::of(profile)))
            .collect();
        let workspaces: BTreeMap<String, WorkspaceAccess> = desired
            .workspaces
            .iter()
            .map(|(name, workspace)| {
                (
                    name.clone(),
                    WorkspaceAccess::of(name, workspace, desired, catalog),
                )
            })
            .collect();
        let teams: BTreeMap<String, TeamAccess> = desired
            .teams
            .iter()
            .map(|(name, team)| {
                let profile = team.role.as_ref().and_then(|role| profiles.get(role));
                let grants = team
                    .workspaces
                    .iter()
                    .map(|(workspace, roles)| {
                        let limits = match workspaces.get(workspace) {
                            Some(access) => {
                                let mut limits = team_limits(workspace, access, profile, catalog);
                                limits.spend_guards.extend(SharedGuard::of(
                                    GuardScope::Team(name.clone()),
                                    team.spend_guard.as_ref(),
                                ));
                                limits
                            }
                            // Validation refuses an unknown workspace; without one there is
                            // nothing to allow.
                            None => Limits::nothing(),
                        };
                        let roles = roles.iter().copied().collect();
                        (workspace.clone(), Grant { roles, limits })
                    })
                    .collect();
                let access = TeamAccess {
                    members: team.members.iter().map(|e| e.to_lowercase()).collect(),
                    organization_role: team.organization_role,
                    role: team.role.clone(),
                    spend_guard: team.spend_guard,
                    workspaces: grants,
                };
                (name.clone(), access)
            })
            .collect();
        let members = desired
            .members
            .iter()
            .map(|(email, member)| {
                let email = email.to_lowercase();
                let access = member_access(&email, &member.roles, &workspaces, &teams);
                (email, access)
            })
            .collect();
        let gateway_keys =
            gateway_keys::gateway_keys_of(&desired.gateway_keys, &workspaces, &members);
        let workloads =
            workloads::workloads_of(&desired.issuers, &desired.workloads, &workspaces, catalog);
        Runtime {
            organization: OrganizationAccess {
                spend_limit: desired.organization.spend_limit.map(Budget::of),
            },
            profiles,
            workspaces,
            teams,
            members,
            gateway_keys,
            workloads,
            alerts: desired.alerts.clone(),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Runtime::default()
    }

    /// The profile of a team's runtime role, when it has one.
    pub fn profile_of(&self, team: &TeamAccess) -> Option<&Profile> {
        self.profiles.get(team.role.as_deref()?)
    }

    /// A member's limits in a workspace: through their teams there, or the workspace's own
    /// when no team of theirs brings them (a direct member, or one the policy does not list).
    /// `None` when the workspace does not exist.
    pub fn member(&self, email: &str, workspace: &str) -> Option<Limits> {
        let email = email.to_lowercase();
        let grant = self
            .members
            .get(&email)
            .and_then(|member| member.workspaces.get(workspace));
        match grant {
            Some(grant) => Some(grant.limits.clone()),
            None => Some(self.workspaces.get(workspace)?.limits(workspace)),
        }
    }

    /// A service key's access, by its workspace and name.
    pub fn key(&self, workspace: &str, key: &str) -> Option<&KeyAccess> {
        self.workspaces.get(workspace)?.keys.get(key)
    }
}

impl Profile {
    fn of(profile: &AccessProfile) -> Profile {
        Profile {
            models: Models::declared(Some(&profile.models)),
            rpm: profile.rpm,
            max_tokens_per_request: profile.max_tokens_per_request,
            daily_token_budget: profile.daily_token_budget,
        }
    }
}

impl Limits {
    fn nothing() -> Limits {
        Limits {
            models: Models::Only(BTreeSet::new()),
            rpm: None,
            workspace_rpm: None,
            max_tokens_per_request: None,
            daily_token_budget: None,
            spend_limit: None,
            spend_guards: Vec::new(),
        }
    }
}

impl WorkspaceAccess {
    fn of(name: &str, workspace: &Workspace, desired: &DesiredOrg, catalog: &Catalog) -> Self {
        let mut members: BTreeMap<String, BTreeSet<WorkspaceRole>> = BTreeMap::new();
        if let Some(admin) = &workspace.admin {
            members
                .entry(admin.to_lowercase())
                .or_default()
                .insert(WorkspaceRole::WorkspaceAdmin);
        }
        for (email, roles) in &workspace.members {
            members
                .entry(email.to_lowercase())
                .or_default()
                .extend(roles.iter().copied());
        }
        let teams = desired
            .teams
            .iter()
            .filter_map(|(team, spec)| {
                let roles = spec.workspaces.get(name)?;
                Some((team.clone(), roles.iter().copied().collect()))
            })
            .collect();
        let mut access = WorkspaceAccess {
            models: Models::declared(workspace.models.as_deref()),
            rpm: workspace.rpm,
            spend_limit: workspace.spend_limit.map(Budget::of),
            spend_guard: workspace.spend_guard,
            members,
            teams,
            keys: BTreeMap::new(),
        };
        access.keys = workspace
            .keys
            .iter()
            .map(|(key_name, key)| {
                let models = match &key.models {
                    Some(own) => Models::declared(Some(own)).within(&access.models, catalog),
                    None => access.models.clone(),
                };
                let mut limits = Limits {
                    models,
                    rpm: key.rpm,
                    max_tokens_per_request: key.max_tokens_per_request,
                    daily_token_budget: key.daily_token_budget,
                    ..access.limits(name)
                };
                limits.spend_guards.extend(SharedGuard::of(
                    GuardScope::Key(key_address(name, key_name)),
                    key.spend_guard.as_ref(),
                ));
                let key_access = KeyAccess {
                    owner: key.owner.to_lowercase(),
                    expiry: key.expiry(),
                    inherits_models: key.models.is_none(),
                    limits,
                };
                (key_name.clone(), key_access)
            })
            .collect();
        access
    }
}

/// A team's limits in one workspace: its profile's, within what the workspace allows.
fn team_limits(
    name: &str,
    workspace: &WorkspaceAccess,
    profile: Option<&Profile>,
    catalog: &Catalog,
) -> Limits {
    let base = workspace.limits(name);
    match profile {
        Some(profile) => Limits {
            models: profile.models.within(&workspace.models, catalog),
            rpm: profile.rpm,
            max_tokens_per_request: profile.max_tokens_per_request,
            daily_token_budget: profile.daily_token_budget,
            ..base
        },
        None => base,
    }
}

fn member_access(
    email: &str,
    roles: &[OrganizationRole],
    workspaces: &BTreeMap<String, WorkspaceAccess>,
    teams: &BTreeMap<String, TeamAccess>,
) -> MemberAccess {
    let mut grants: BTreeMap<String, MemberGrant> = BTreeMap::new();
    // Team grants that carry a runtime role, per workspace: they decide the limits.
    let mut restricted: BTreeMap<String, Limits> = BTreeMap::new();
    for (name, workspace) in workspaces {
        if let Some(direct) = workspace.members.get(email) {
            grants.insert(
                name.clone(),
                MemberGrant {
                    roles: Some(direct.clone()),
                    through_teams: BTreeMap::new(),
                    limits: workspace.limits(name),
                },
            );
        }
    }
    let mut member_teams = BTreeSet::new();
    for (team_name, team) in teams.iter().filter(|(_, t)| t.members.contains(email)) {
        member_teams.insert(team_name.clone());
        for (workspace, grant) in &team.workspaces {
            let entry = grants
                .entry(workspace.clone())
                .or_insert_with(|| MemberGrant {
                    roles: None,
                    through_teams: BTreeMap::new(),
                    limits: workspaces
                        .get(workspace)
                        .map_or_else(Limits::nothing, |access| access.limits(workspace)),
                });
            entry
                .through_teams
                .insert(team_name.clone(), grant.roles.clone());
            if team.role.is_some() {
                restricted
                    .entry(workspace.clone())
                    .and_modify(|limits| *limits = limits.most_generous(&grant.limits))
                    .or_insert_with(|| grant.limits.clone());
            }
        }
    }
    for (workspace, limits) in restricted {
        if let Some(grant) = grants.get_mut(&workspace) {
            grant.limits = limits;
        }
    }
    // Every team that brings the member into a workspace counts their spending, whether or
    // not it gives them a role: the workspace's guard first, then the teams' by name.
    for (workspace, grant) in &mut grants {
        grant.limits.spend_guards = workspaces
            .get(workspace)
            .map(|access| access.limits(workspace).spend_guards)
            .unwrap_or_default();
        for team in grant.through_teams.keys() {
            let guard = teams.get(team).and_then(|team| team.spend_guard.as_ref());
            grant
                .limits
                .spend_guards
                .extend(SharedGuard::of(GuardScope::Team(team.clone()), guard));
        }
    }
    MemberAccess {
        roles: roles.iter().copied().collect(),
        teams: member_teams,
        workspaces: grants,
    }
}

#[cfg(test)]
mod tests;
