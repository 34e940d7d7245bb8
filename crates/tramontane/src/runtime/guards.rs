//! Spend guards as callers meet them: each guard counts the spending of one group (a
//! workspace, a team, a service key, a workload), so a caller is held by every guard of every group it
//! spends for, and two callers of one group share that group's guard.

use serde::{Deserialize, Serialize};

use crate::model::SpendGuard;

/// The group whose spending a guard counts.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardScope {
    /// Every caller of the workspace.
    Workspace(String),
    /// Every member of the team, in every workspace it is assigned.
    Team(String),
    /// One service key, by address (`workspace.W.key.K`).
    Key(String),
    /// One workload, by name.
    Workload(String),
}

/// A spend guard and the group it counts for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedGuard {
    pub scope: GuardScope,
    pub guard: SpendGuard,
}

impl SharedGuard {
    pub(super) fn of(scope: GuardScope, guard: Option<&SpendGuard>) -> Option<SharedGuard> {
        guard.map(|guard| SharedGuard {
            scope,
            guard: *guard,
        })
    }
}

/// The address a service key has in the policy, and in the gateway's limit scopes.
pub fn key_address(workspace: &str, key: &str) -> String {
    format!("workspace.{workspace}.key.{key}")
}
