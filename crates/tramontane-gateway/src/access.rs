//! What each gateway key may do: the caller's limits read from the library's effective
//! access, [`tramontane::runtime::Runtime`], and turned into the rules the gateway counts.
//! The gateway computes no inheritance of its own: which models a member has through which
//! teams, which rate and budget bind, which spend guards count a request are the Runtime's
//! answers, the same the plan's `runtime` section shows.
//!
//! What this file adds is where each limit is counted:
//! - a member's own rate and daily token budget count per member, across all the keys they
//!   hold; a service key's, per service key;
//! - the workspace's rate is shared by every caller of the workspace, and each spend guard by
//!   the group it belongs to (workspace, team, service key);
//! - the workspace's model list is checked again at request time against the upstream's live
//!   model list, so an alias the upstream adds after the policy was read still resolves;
//! - a member's requests are forwarded with the workspace's `gateway.upstream_key`, a service
//!   key's with its own Mistral key.
//!
//! The workspace's gateway settings (agents, opened paths, upstream key, what to do when the
//! limit store fails) are not access and nothing inherits them: they are read here, from the
//! workspace's `gateway` section, and nowhere else.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;
use tramontane::model::{
    DesiredOrg, GatewayKeyId, Holder, KeyDigest, OpenedPath, StoreFailure, Workspace,
};
use tramontane::policy::catalog::Catalog;
use tramontane::runtime::{
    Limits, Measure, Models, Rule, RuleScope, Runtime, WorkspaceAccess, key_address,
};

use crate::models::ModelDirectory;

/// Everyone who may call the gateway: gateway keys by public id, and workloads.
#[derive(Clone, Debug, Default)]
pub struct CallerTable {
    callers: BTreeMap<String, Caller>,
    workloads: crate::workloads::WorkloadTable,
}

/// One caller and what it grants: a gateway key's holder, or a workload.
#[derive(Clone, Debug)]
pub struct Caller {
    pub principal: Principal,
    pub workspace: String,
    pub grant: Grant,
}

/// Who a caller is.
#[derive(Clone, Debug)]
pub enum Principal {
    /// The holder of a gateway key.
    Key {
        id: GatewayKeyId,
        digest: KeyDigest,
        holder: Holder,
        /// The last day (UTC) the key works.
        expires: Date,
    },
    /// A workload, by its name under `workloads:`, presenting a token of `issuer`.
    Workload { name: String, issuer: String },
}

impl Caller {
    /// The name this caller's counted limits are metered under, unique across keys and
    /// workloads: a key's public id (never with `:`), or `workload:<name>`.
    pub fn meter_name(&self) -> String {
        match &self.principal {
            Principal::Key { id, .. } => id.as_str().to_owned(),
            Principal::Workload { name, .. } => workload_meter_name(name),
        }
    }
}

/// The name a workload's counted limits are metered under.
pub fn workload_meter_name(name: &str) -> String {
    format!("workload:{name}")
}

/// A caller's effective limits.
#[derive(Clone, Debug, Default)]
pub struct Grant {
    /// Every list must allow a model for the caller to use it.
    pub model_rules: Vec<Models>,
    pub max_tokens_per_request: Option<u64>,
    /// Every counted limit the caller meets, from the library's runtime: rates, token
    /// budgets and spend guards alike.
    pub rules: Vec<Rule>,
    /// The address (`workspace.W.key.K`) of the Mistral key requests are forwarded with.
    pub upstream_key: Option<String>,
    pub agents: BTreeSet<String>,
    /// Extra paths the workspace opens, with their methods.
    pub paths: Vec<OpenedPath>,
    pub store_failure: StoreFailure,
    /// What each fetched or expanded item is reserved at; `None`: refused under a budget.
    pub fetched_content_tokens: Option<u64>,
}

impl Grant {
    /// Whether the caller may use `model`.
    pub fn allows_model(&self, model: &str, directory: &ModelDirectory) -> bool {
        self.model_rules
            .iter()
            .all(|rule| rule.allows(model, directory.catalog()))
    }

    /// The names the policy allows, as it writes them, for telling a refused caller what
    /// they may use; `None` when no rule restricts models.
    pub fn allowed_models(&self, directory: &ModelDirectory) -> Option<Vec<String>> {
        let mut candidates: BTreeSet<&String> = BTreeSet::new();
        for rule in &self.model_rules {
            if let Models::Only(names) = rule {
                candidates.extend(names);
            }
        }
        if self.model_rules.iter().all(|rule| *rule == Models::Every) {
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

    /// What a caller of `workspace` with `limits` may do, its own rate and token budget
    /// counted under `own`.
    fn of(workspace: &str, access: &WorkspaceAccess, limits: &Limits, own: &RuleScope) -> Grant {
        Grant {
            model_rules: vec![access.models.clone(), limits.models.clone()],
            max_tokens_per_request: limits.max_tokens_per_request,
            rules: limits.rules(workspace, own),
            ..Grant::default()
        }
    }

    /// Whether a token or spend rule applies: then every request's worst case needs a bound.
    pub fn budgeted(&self) -> bool {
        self.rules
            .iter()
            .any(|rule| rule.measure != Measure::Requests)
    }

    /// Whether a spend rule applies: then every request needs a price.
    pub fn spend_guarded(&self) -> bool {
        self.rules.iter().any(|rule| rule.measure == Measure::Spend)
    }

    /// The rule of this grant with `id`.
    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|rule| rule.id == id)
    }

    /// The workspace's gateway settings, as its `gateway` section has them.
    fn with_settings(mut self, workspace: &Workspace) -> Grant {
        if let Some(gateway) = &workspace.gateway {
            self.agents = gateway.agents.iter().cloned().collect();
            self.paths = gateway.paths.clone();
            self.store_failure = gateway.store_failure;
            self.fetched_content_tokens = gateway.fetched_content_tokens;
        }
        self
    }
}

impl CallerTable {
    pub fn get(&self, id: &str) -> Option<&Caller> {
        self.callers.get(id)
    }

    /// How many gateway keys and workloads may call.
    pub fn len(&self) -> usize {
        self.callers.len() + self.workloads.len()
    }

    /// The workloads, for matching a verified token.
    pub fn workloads(&self) -> &crate::workloads::WorkloadTable {
        &self.workloads
    }

    /// Every caller, gateway keys and workloads.
    pub fn iter(&self) -> impl Iterator<Item = &Caller> {
        self.callers.values().chain(self.workloads.callers())
    }

    /// Every model name some caller's grant lists, each once; `every` is true when some
    /// caller may use every model.
    pub fn named_models(&self) -> (std::collections::BTreeSet<&str>, bool) {
        let mut names = std::collections::BTreeSet::new();
        let mut every = false;
        for caller in self.iter() {
            let rules = &caller.grant.model_rules;
            every |= rules.iter().all(|rule| *rule == Models::Every);
            for rule in rules {
                if let Models::Only(listed) = rule {
                    names.extend(listed.iter().map(String::as_str));
                }
            }
        }
        (names, every)
    }

    pub fn is_empty(&self) -> bool {
        self.callers.is_empty() && self.workloads.len() == 0
    }

    /// Every key of the policy and its grant, read from the policy's effective access as the
    /// plan computes it (names resolved through the bundled catalog). An entry naming a
    /// workspace or service key the policy does not have grants nothing and is left out
    /// (validation reports it).
    pub fn of(desired: &DesiredOrg) -> CallerTable {
        let runtime = Runtime::of(desired, Catalog::bundled());
        let callers = desired
            .gateway_keys
            .iter()
            .filter_map(|(id, entry)| {
                let workspace = desired.workspaces.get(&entry.workspace)?;
                let access = runtime.workspaces.get(&entry.workspace)?;
                let grant = match &entry.holder {
                    Holder::Member(email) => {
                        let limits = runtime.member(email, &entry.workspace)?;
                        let own = RuleScope::Member(email.to_lowercase());
                        Grant {
                            upstream_key: upstream_key_of(&entry.workspace, workspace),
                            ..Grant::of(&entry.workspace, access, &limits, &own)
                        }
                    }
                    Holder::ServiceKey {
                        workspace: key_workspace,
                        key,
                    } => {
                        let key_access = runtime.key(key_workspace, key)?;
                        let address = key_address(key_workspace, key);
                        let own = RuleScope::Key(address.clone());
                        Grant {
                            upstream_key: Some(address),
                            ..Grant::of(&entry.workspace, access, &key_access.limits, &own)
                        }
                    }
                };
                Some((
                    id.as_str().to_owned(),
                    Caller {
                        principal: Principal::Key {
                            id: id.clone(),
                            digest: entry.digest,
                            holder: entry.holder.clone(),
                            expires: entry.expires,
                        },
                        workspace: entry.workspace.clone(),
                        grant: grant.with_settings(workspace),
                    },
                ))
            })
            .collect();
        let workloads = crate::workloads::WorkloadTable::of(desired, |name, workload| {
            let workspace = desired.workspaces.get(&workload.workspace)?;
            let access = runtime.workspaces.get(&workload.workspace)?;
            let limits = runtime.workloads.get(name)?.limits.as_ref()?;
            let own = RuleScope::Workload(name.to_owned());
            Some(
                Grant {
                    upstream_key: upstream_key_of(&workload.workspace, workspace),
                    ..Grant::of(&workload.workspace, access, limits, &own)
                }
                .with_settings(workspace),
            )
        });
        CallerTable { callers, workloads }
    }
}

/// The address of the key `workspace` forwards its members' and workloads' requests with.
fn upstream_key_of(name: &str, workspace: &Workspace) -> Option<String> {
    workspace
        .gateway
        .as_ref()
        .and_then(|gateway| gateway.upstream_key.as_deref())
        .map(|key| key_address(name, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org() -> DesiredOrg {
        let digest = KeyDigest::of("tmt_abcd_x").to_string();
        // As validation leaves it: every member a team or key names is defined.
        serde_json::from_value(serde_json::json!({
            "members": {"bob@acme.example": {"name": "Bob"}, "a@acme.example": {"name": "A"}},
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
        assert!(bob.allows_model("mistral-small-2603", &models));
        assert!(bob.allows_model("mistral-embed", &models));
        assert!(!bob.allows_model("codestral-latest", &models));
        assert!(!bob.allows_model("mistral-large-latest", &models));
        assert_eq!(
            bob.allowed_models(&models).unwrap(),
            vec!["mistral-embed", "mistral-small-latest"]
        );
        // One role has no rpm and no budget: the more generous role leaves them unlimited.
        assert_eq!(bob.max_tokens_per_request, Some(300));
        assert_eq!(bob.upstream_key.as_deref(), Some("workspace.dev.key.gw"));
        assert!(bob.agents.contains("ag_1"));
        let rules: Vec<(&str, u64)> = bob
            .rules
            .iter()
            .map(|rule| (rule.id.as_str(), rule.limit))
            .collect();
        // Only the workspace's shared rpm; no token budget; the workspace's and the team's
        // spend guards.
        assert_eq!(
            rules,
            vec![
                ("workspace:dev:requests:minute", 60),
                ("workspace:dev:spend:month", 50_500_000),
                ("team:devs:spend:day", 2_000_000)
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
        let rules: Vec<(&str, u64)> = ci
            .rules
            .iter()
            .map(|rule| (rule.id.as_str(), rule.limit))
            .collect();
        assert_eq!(
            &rules[..3],
            &[
                ("workspace:dev:requests:minute", 60),
                ("key:workspace.dev.key.ci:requests:minute", 10),
                ("key:workspace.dev.key.ci:tokens:day", 500),
            ]
        );
        assert_eq!(rules.len(), 5, "and two spend guards");
    }
}
