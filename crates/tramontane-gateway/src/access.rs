//! What each gateway key may do, derived from the policy: the one place the gateway reads
//! access out of a [`DesiredOrg`]. The library's typed `tramontane::runtime::Runtime` (each
//! caller's effective models, rpm, max tokens and budgets) will replace this derivation once it
//! lands; nothing else in the gateway looks at the policy's access fields, so the swap stays
//! inside this file.
//!
//! The rules, for a key held by a member of workspace W, reading the teams that bring the
//! member into W (as the library's effective access does):
//! - models: W's list, and the union of the lists of those teams' runtime roles (a member
//!   no such team gives a role is held to W's list alone); `"*"` allows every model;
//! - max tokens per request, daily token budget and rpm: the most generous of the member's
//!   roles (a role without the limit leaves it unlimited), counted per member across keys;
//! - W's rpm is shared by every caller of W; spend guards of W and of each of those teams
//!   apply to their whole group;
//! - forwarded with W's `gateway.upstream_key`.
//!
//! For a key held by a service key `workspace.W.key.K`: K's models (else W's), K's rpm, max
//! tokens, daily budget and spend guard, W's shared rpm and spend guard, forwarded with K's own
//! Mistral key.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;
use tramontane::model::{
    ALL_MODELS, DesiredOrg, GatewayKey, GatewayKeyId, Holder, KeyDigest, SpendGuard, StoreFailure,
    Workspace,
};

use crate::models::ModelDirectory;
use crate::refusal::LimitScope;

/// Everyone who may call the gateway, by public key id.
#[derive(Clone, Debug, Default)]
pub struct CallerTable {
    callers: BTreeMap<String, Caller>,
}

/// One gateway key and what it grants.
#[derive(Clone, Debug)]
pub struct Caller {
    pub id: GatewayKeyId,
    pub digest: KeyDigest,
    pub holder: Holder,
    pub workspace: String,
    /// The last day (UTC) the key works.
    pub expires: Date,
    pub grant: Grant,
}

/// A caller's effective limits.
#[derive(Clone, Debug, Default)]
pub struct Grant {
    /// Every rule must allow a model for the caller to use it.
    pub model_rules: Vec<ModelRule>,
    pub max_tokens_per_request: Option<u64>,
    pub rates: Vec<RateRule>,
    pub token_budgets: Vec<TokenBudget>,
    pub spend_guards: Vec<SpendRule>,
    /// The address (`workspace.W.key.K`) of the Mistral key requests are forwarded with.
    pub upstream_key: Option<String>,
    pub agents: BTreeSet<String>,
    /// Extra paths the workspace opens.
    pub paths: BTreeSet<String>,
    pub store_failure: StoreFailure,
}

/// A list of models from one place in the policy; `None` allows every model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelRule {
    pub names: Option<BTreeSet<String>>,
}

impl ModelRule {
    fn from_list(list: Option<&[String]>) -> ModelRule {
        match list {
            Some(names) if !names.iter().any(|name| name == ALL_MODELS) => ModelRule {
                names: Some(names.iter().cloned().collect()),
            },
            _ => ModelRule { names: None },
        }
    }

    fn allows(&self, model: &str, directory: &ModelDirectory) -> bool {
        match &self.names {
            None => true,
            Some(names) => names.iter().any(|name| directory.same(name, model)),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateRule {
    pub scope: LimitScope,
    pub rpm: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenBudget {
    pub scope: LimitScope,
    pub daily: u64,
}

/// A calendar window a spend guard counts over (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Period {
    Hour,
    Day,
    Month,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Month => "month",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpendRule {
    pub scope: LimitScope,
    pub period: Period,
    pub limit_micros: u64,
}

impl Grant {
    /// Whether the caller may use `model`.
    pub fn allows_model(&self, model: &str, directory: &ModelDirectory) -> bool {
        self.model_rules
            .iter()
            .all(|rule| rule.allows(model, directory))
    }

    /// The names the policy allows, as it writes them, for telling a refused caller what
    /// they may use; `None` when no rule restricts models.
    pub fn allowed_models(&self, directory: &ModelDirectory) -> Option<Vec<String>> {
        let mut candidates: BTreeSet<&String> = BTreeSet::new();
        for rule in &self.model_rules {
            if let Some(names) = &rule.names {
                candidates.extend(names);
            }
        }
        if self.model_rules.iter().all(|rule| rule.names.is_none()) {
            return None;
        }
        Some(
            candidates
                .into_iter()
                .filter(|name| self.allows_model(name, directory))
                .cloned()
                .collect(),
        )
    }
}

impl CallerTable {
    pub fn get(&self, id: &str) -> Option<&Caller> {
        self.callers.get(id)
    }

    pub fn len(&self) -> usize {
        self.callers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.callers.is_empty()
    }

    /// Every key of the policy and its grant. An entry naming a workspace the policy does
    /// not have grants nothing and is left out (validation reports it).
    pub fn of(desired: &DesiredOrg) -> CallerTable {
        let callers = desired
            .gateway_keys
            .iter()
            .filter_map(|(id, entry)| {
                let workspace = desired.workspaces.get(&entry.workspace)?;
                let grant = match &entry.holder {
                    Holder::Member(email) => member_grant(desired, entry, workspace, email),
                    Holder::ServiceKey {
                        workspace: key_workspace,
                        key,
                    } => {
                        let owner = desired.workspaces.get(key_workspace)?;
                        let api_key = owner.keys.get(key)?;
                        service_grant(entry, workspace, key_workspace, key, api_key)
                    }
                };
                Some((
                    id.as_str().to_owned(),
                    Caller {
                        id: id.clone(),
                        digest: entry.digest,
                        holder: entry.holder.clone(),
                        workspace: entry.workspace.clone(),
                        expires: entry.expires,
                        grant,
                    },
                ))
            })
            .collect();
        CallerTable { callers }
    }
}

fn scope(kind: &'static str, name: &str) -> LimitScope {
    LimitScope {
        kind,
        name: name.to_owned(),
    }
}

/// What every caller of the workspace shares.
fn workspace_grant(entry: &GatewayKey, workspace: &Workspace) -> Grant {
    let mut grant = Grant {
        model_rules: vec![ModelRule::from_list(workspace.models.as_deref())],
        ..Grant::default()
    };
    if let Some(rpm) = workspace.rpm {
        grant.rates.push(RateRule {
            scope: scope("workspace", &entry.workspace),
            rpm,
        });
    }
    push_guard(
        &mut grant,
        scope("workspace", &entry.workspace),
        workspace.spend_guard.as_ref(),
    );
    if let Some(gateway) = &workspace.gateway {
        grant.agents = gateway.agents.iter().cloned().collect();
        grant.paths = gateway.paths.iter().cloned().collect();
        grant.store_failure = gateway.store_failure;
    }
    grant
}

fn push_guard(grant: &mut Grant, scope: LimitScope, guard: Option<&SpendGuard>) {
    let Some(guard) = guard else { return };
    for (period, amount) in [
        (Period::Hour, guard.hour),
        (Period::Day, guard.day),
        (Period::Month, guard.month),
    ] {
        if let Some(amount) = amount {
            grant.spend_guards.push(SpendRule {
                scope: scope.clone(),
                period,
                limit_micros: amount.micros(),
            });
        }
    }
}

fn member_grant(
    desired: &DesiredOrg,
    entry: &GatewayKey,
    workspace: &Workspace,
    email: &str,
) -> Grant {
    let mut grant = workspace_grant(entry, workspace);
    let email = email.to_lowercase();
    let teams: Vec<(&String, &tramontane::model::Team)> = desired
        .teams
        .iter()
        .filter(|(_, team)| {
            team.workspaces.contains_key(&entry.workspace)
                && team.members.iter().any(|m| m.to_lowercase() == email)
        })
        .collect();
    let profiles: Vec<&tramontane::model::AccessProfile> = teams
        .iter()
        .filter_map(|(_, team)| team.role.as_deref())
        .filter_map(|role| desired.roles.get(role))
        .collect();
    if !profiles.is_empty() {
        // A member's roles add up: a model any of them allows is allowed.
        let every = profiles
            .iter()
            .any(|profile| profile.models.iter().any(|m| m == ALL_MODELS));
        grant.model_rules.push(if every {
            ModelRule { names: None }
        } else {
            ModelRule {
                names: Some(
                    profiles
                        .iter()
                        .flat_map(|profile| profile.models.iter().cloned())
                        .collect(),
                ),
            }
        });
        let most = |pick: fn(&tramontane::model::AccessProfile) -> Option<u64>| {
            profiles
                .iter()
                .map(|profile| pick(profile))
                .try_fold(0u64, |most, limit| limit.map(|limit| most.max(limit)))
        };
        grant.max_tokens_per_request = most(|profile| profile.max_tokens_per_request);
        if let Some(daily) = most(|profile| profile.daily_token_budget) {
            grant.token_budgets.push(TokenBudget {
                scope: scope("member", &email),
                daily,
            });
        }
        if let Some(rpm) = most(|profile| profile.rpm.map(u64::from)) {
            grant.rates.push(RateRule {
                scope: scope("member", &email),
                rpm: u32::try_from(rpm).unwrap_or(u32::MAX),
            });
        }
    }
    for (name, team) in &teams {
        push_guard(&mut grant, scope("team", name), team.spend_guard.as_ref());
    }
    grant.upstream_key = workspace
        .gateway
        .as_ref()
        .and_then(|gateway| gateway.upstream_key.as_deref())
        .map(|key| format!("workspace.{}.key.{key}", entry.workspace));
    grant
}

fn service_grant(
    entry: &GatewayKey,
    workspace: &Workspace,
    key_workspace: &str,
    key_name: &str,
    key: &tramontane::model::ApiKey,
) -> Grant {
    let mut grant = workspace_grant(entry, workspace);
    let address = format!("workspace.{key_workspace}.key.{key_name}");
    if key.models.is_some() {
        grant
            .model_rules
            .push(ModelRule::from_list(key.models.as_deref()));
    }
    grant.max_tokens_per_request = key.max_tokens_per_request;
    if let Some(rpm) = key.rpm {
        grant.rates.push(RateRule {
            scope: scope("key", &address),
            rpm,
        });
    }
    if let Some(daily) = key.daily_token_budget {
        grant.token_budgets.push(TokenBudget {
            scope: scope("key", &address),
            daily,
        });
    }
    push_guard(&mut grant, scope("key", &address), key.spend_guard.as_ref());
    grant.upstream_key = Some(address);
    grant
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org() -> DesiredOrg {
        let digest = KeyDigest::of("tmt_abcd_x").to_string();
        serde_json::from_value(serde_json::json!({
            "roles": {
                "dev": {"models": ["mistral-small-latest"], "max_tokens_per_request": 100,
                        "daily_token_budget": 1000, "rpm": 5},
                "embed": {"models": ["mistral-embed"], "max_tokens_per_request": 300},
                "everything": {"models": ["*"]}
            },
            "teams": {
                "devs": {"members": ["Bob@acme.example"], "role": "dev",
                         "workspaces": {"dev": ["user"]}, "spend_guard": {"day": 2}},
                "search": {"members": ["bob@acme.example"], "role": "embed",
                           "workspaces": {"dev": ["user"]}},
                "elsewhere": {"members": ["bob@acme.example"], "role": "everything",
                              "workspaces": {"other": ["user"]}, "spend_guard": {"hour": 1}}
            },
            "workspaces": {
                "other": {},
                "dev": {
                    "rpm": 60, "models": ["mistral-small-latest", "mistral-embed", "codestral-latest"],
                    "spend_guard": {"month": 50.5},
                    "gateway": {"upstream_key": "gw", "agents": ["ag_1"]},
                    "keys": {
                        "gw": {"owner": "a@acme.example", "secret": {"file": "gw.key"}},
                        "ci": {"owner": "a@acme.example", "secret": {"file": "ci.key"},
                               "models": ["codestral-latest"], "rpm": 10,
                               "max_tokens_per_request": 50, "daily_token_budget": 500,
                               "spend_guard": {"hour": 0.25}}
                    }
                }
            },
            "gateway_keys": {
                "bobk": {"digest": digest, "holder": "bob@acme.example", "workspace": "dev",
                         "expires": "2027-01-01"},
                "cikey": {"digest": digest, "holder": "workspace.dev.key.ci", "workspace": "dev",
                          "expires": "2027-01-01"},
                "lost": {"digest": digest, "holder": "bob@acme.example", "workspace": "gone",
                         "expires": "2027-01-01"}
            }
        }))
        .unwrap()
    }

    #[test]
    fn a_member_gets_the_union_of_the_roles_of_the_teams_that_bring_them_into_the_workspace() {
        let table = CallerTable::of(&org());
        let models = ModelDirectory::bundled();
        let bob = &table.get("bobk").unwrap().grant;
        assert!(bob.allows_model("mistral-small-2506", &models));
        assert!(bob.allows_model("mistral-embed", &models));
        assert!(!bob.allows_model("codestral-latest", &models));
        assert!(!bob.allows_model("mistral-large-latest", &models));
        assert_eq!(
            bob.allowed_models(&models).unwrap(),
            vec!["mistral-embed", "mistral-small-latest"]
        );
        // One role has no rpm and no budget: the more generous role leaves them unlimited.
        assert_eq!(bob.max_tokens_per_request, Some(300));
        assert!(bob.token_budgets.is_empty());
        assert_eq!(bob.rates.len(), 1, "only the workspace's shared rpm");
        assert_eq!(bob.upstream_key.as_deref(), Some("workspace.dev.key.gw"));
        assert!(bob.agents.contains("ag_1"));
        let guards: Vec<(&str, Period, u64)> = bob
            .spend_guards
            .iter()
            .map(|g| (g.scope.kind, g.period, g.limit_micros))
            .collect();
        assert_eq!(
            guards,
            vec![
                ("workspace", Period::Month, 50_500_000),
                ("team", Period::Day, 2_000_000)
            ]
        );
        assert!(table.get("lost").is_none());
    }

    #[test]
    fn a_service_key_forwards_with_its_own_key_and_limits() {
        let table = CallerTable::of(&org());
        let models = ModelDirectory::bundled();
        let ci = &table.get("cikey").unwrap().grant;
        assert!(ci.allows_model("codestral-2508", &models));
        assert!(!ci.allows_model("mistral-small-latest", &models));
        assert_eq!(ci.max_tokens_per_request, Some(50));
        assert_eq!(ci.upstream_key.as_deref(), Some("workspace.dev.key.ci"));
        let rates: Vec<u32> = ci.rates.iter().map(|r| r.rpm).collect();
        assert_eq!(rates, vec![60, 10]);
        assert_eq!(ci.token_budgets[0].daily, 500);
        assert_eq!(ci.spend_guards.len(), 2);
    }
}
