//! The plan's `runtime` section: what the gateway enforces, which the platform has no
//! setting for. The declared lines (`roles`, `teams`, `workspaces`) keep the shape plan
//! files have always had; `effective` is the [`Runtime`] every caller gets, so a reader of
//! the plan sees the access the gateway will grant, not only the lines that grant it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{AccessProfile, DesiredOrg};
use crate::runtime::Runtime;

pub const RUNTIME_NOTE: &str = "the platform has no per-key or per-team model lists, request rates or token budgets; the gateway enforces these";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RuntimeSection {
    #[serde(default)]
    pub note: String,
    /// The runtime access profiles as declared.
    #[serde(default)]
    pub roles: BTreeMap<String, AccessProfile>,
    /// Teams with a runtime role.
    #[serde(default)]
    pub teams: BTreeMap<String, RuntimeTeam>,
    #[serde(default)]
    pub workspaces: BTreeMap<String, RuntimeWorkspace>,
    /// Effective access per caller. Absent from plans made before it was added.
    #[serde(default, skip_serializing_if = "Runtime::is_empty")]
    pub effective: Runtime,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuntimeTeam {
    pub role: String,
    pub members: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuntimeWorkspace {
    pub models: Option<Vec<String>>,
    pub rpm: Option<u32>,
    pub keys: BTreeMap<String, RuntimeKey>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuntimeKey {
    pub models: Option<Vec<String>>,
    pub rpm: Option<u32>,
}

impl RuntimeSection {
    pub fn of(desired: &DesiredOrg, effective: Runtime) -> RuntimeSection {
        let teams = desired
            .teams
            .iter()
            .filter_map(|(name, team)| {
                let team = RuntimeTeam {
                    role: team.role.clone()?,
                    members: team.members.clone(),
                };
                Some((name.clone(), team))
            })
            .collect();
        let workspaces = desired
            .workspaces
            .iter()
            .map(|(name, workspace)| {
                let keys = workspace
                    .keys
                    .iter()
                    .map(|(key_name, key)| {
                        let key = RuntimeKey {
                            models: key.models.clone(),
                            rpm: key.rpm,
                        };
                        (key_name.clone(), key)
                    })
                    .collect();
                let workspace = RuntimeWorkspace {
                    models: workspace.models.clone(),
                    rpm: workspace.rpm,
                    keys,
                };
                (name.clone(), workspace)
            })
            .collect();
        RuntimeSection {
            note: RUNTIME_NOTE.into(),
            roles: desired.roles.clone(),
            teams,
            workspaces,
            effective,
        }
    }
}
