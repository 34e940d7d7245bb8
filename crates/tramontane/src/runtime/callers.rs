//! The runtime as a flat list of callers, each with its limits in one workspace: the unit a
//! plan shows a runtime change for and the gateway decides a request by.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Limits, RuleScope, Runtime, key_address};

/// One caller the gateway serves in one workspace.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "caller", rename_all = "snake_case")]
pub enum Caller {
    /// A workspace's service key.
    Key { workspace: String, key: String },
    /// A team in a workspace it is assigned.
    Team { team: String, workspace: String },
    /// A member in a workspace, directly or through their teams.
    Member { email: String, workspace: String },
}

impl Caller {
    /// Whose own rate and token budget a caller's rules count: the key, the member, or each
    /// member of the team.
    pub fn own_scope(&self) -> RuleScope {
        match self {
            Caller::Key { workspace, key } => RuleScope::Key(key_address(workspace, key)),
            Caller::Team { team, .. } => RuleScope::Team(team.clone()),
            Caller::Member { email, .. } => RuleScope::Member(email.clone()),
        }
    }

    pub fn workspace(&self) -> &str {
        match self {
            Caller::Key { workspace, .. }
            | Caller::Team { workspace, .. }
            | Caller::Member { workspace, .. } => workspace,
        }
    }

    /// Where a plan shows a change to this caller's limits.
    pub fn address(&self) -> String {
        match self {
            Caller::Key { workspace, key } => format!("runtime.workspace.{workspace}.key.{key}"),
            Caller::Team { team, workspace } => {
                format!("runtime.team.{team}.workspace.{workspace}")
            }
            Caller::Member { email, workspace } => {
                format!("runtime.member.{email}.workspace.{workspace}")
            }
        }
    }
}

impl Runtime {
    /// Every caller and its limits, in a stable order.
    pub fn callers(&self) -> BTreeMap<Caller, &Limits> {
        let mut callers = BTreeMap::new();
        for (workspace, access) in &self.workspaces {
            for (key, key_access) in &access.keys {
                let caller = Caller::Key {
                    workspace: workspace.clone(),
                    key: key.clone(),
                };
                callers.insert(caller, &key_access.limits);
            }
        }
        for (team, access) in &self.teams {
            for (workspace, grant) in &access.workspaces {
                let caller = Caller::Team {
                    team: team.clone(),
                    workspace: workspace.clone(),
                };
                callers.insert(caller, &grant.limits);
            }
        }
        for (email, access) in &self.members {
            for (workspace, grant) in &access.workspaces {
                let caller = Caller::Member {
                    email: email.clone(),
                    workspace: workspace.clone(),
                };
                callers.insert(caller, &grant.limits);
            }
        }
        callers
    }
}
