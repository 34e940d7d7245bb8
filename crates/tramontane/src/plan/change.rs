//! One change of a plan, typed: a spec per kind and action, so apply matches on it
//! exhaustively and the compiler names any case it forgets.
//!
//! Names are fields of the spec, never fragments of the address; amounts are [`Budget`]s,
//! rounded when the plan is made and exact ever after. The JSON a plan file holds is the
//! wire form in [`super::wire`]; the side types here serialize to exactly the `before` and
//! `after` objects that form has always had.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::Action;
use crate::model::{Alerts, Budget, Enforcement, Kind};
use crate::runtime::{Caller, GatewayKeyAccess, Limits, WorkloadAccess};

/// One change: where it applies, why, and what it does.
///
/// `kind`, `action` and `enforcement` follow from `spec`; [`Change::new`] sets them, and a
/// plan read from a file is refused where they disagree.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub address: String,
    pub kind: Kind,
    pub action: Action,
    pub enforcement: Enforcement,
    pub reason: String,
    pub spec: ChangeSpec,
}

impl Change {
    pub fn new(address: impl Into<String>, reason: impl Into<String>, spec: ChangeSpec) -> Change {
        Change {
            address: address.into(),
            kind: spec.kind(),
            action: spec.action(),
            enforcement: spec.enforcement(),
            reason: reason.into(),
            spec,
        }
    }

    /// The resource's managed attributes as they are, as the plan file shows them; `None`
    /// for a create.
    pub fn before(&self) -> Option<Value> {
        self.spec.sides().0
    }

    /// The resource's managed attributes as they will be; `None` for a delete.
    pub fn after(&self) -> Option<Value> {
        self.spec.sides().1
    }

    /// The attributes whose values differ between `before` and `after`, in a stable order
    /// (every attribute, for anything but an update).
    pub fn changed_attributes(&self) -> Vec<AttributeChange> {
        let (before, after) = self.spec.sides();
        let object = |side: Option<Value>| match side {
            Some(Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        let (mut before, mut after) = (object(before), object(after));
        let mut names: Vec<String> = after.keys().cloned().collect();
        names.extend(before.keys().filter(|n| !after.contains_key(*n)).cloned());
        names
            .into_iter()
            .filter_map(|name| {
                let old = before.remove(&name);
                let new = after.remove(&name);
                (old != new || self.action != Action::Update).then_some(AttributeChange {
                    name,
                    before: old,
                    after: new,
                })
            })
            .collect()
    }
}

pub struct AttributeChange {
    pub name: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// What a change does, by kind and action.
#[derive(Clone, Debug, PartialEq)]
pub enum ChangeSpec {
    /// The organization's monthly limit, in the whole units the Admin API takes.
    OrganizationSpendLimit {
        before: Option<Budget>,
        after: Budget,
    },
    MemberCreate(MemberSpec),
    MemberRoles {
        email: String,
        before: BTreeSet<String>,
        after: BTreeSet<String>,
    },
    MemberDelete(MemberSpec),
    WorkspaceCreate(NewWorkspace),
    WorkspaceUpdate {
        name: String,
        before: WorkspaceState,
        after: WorkspaceState,
    },
    /// Deleting a workspace archives it: the API has no other way.
    WorkspaceArchive(ArchivedWorkspace),
    /// A workspace's budget, which only a person can set, in the console.
    WorkspaceSpendLimit {
        workspace: String,
        before: Option<Budget>,
        after: Budget,
    },
    TeamCreate(NewTeam),
    TeamUpdate {
        name: String,
        before: TeamState,
        after: TeamState,
    },
    TeamDelete(DeletedTeam),
    KeyCreate(KeySpec),
    /// A new key replaces the live one, which is deleted once the new one is delivered.
    KeyReplace {
        before: LiveKeyRef,
        after: KeySpec,
    },
    /// A successor is created; the live key stays for the overlap.
    KeyRotate {
        before: LiveKeyRef,
        after: KeySpec,
    },
    KeyDelete(LiveKeyRef),
    /// What the gateway enforces for one caller, against what the last apply put in force:
    /// `None` before for a new caller, `None` after for one that goes.
    Runtime {
        caller: Caller,
        before: Option<Limits>,
        after: Option<Limits>,
    },
    /// A gateway key against what the last apply put in force: `None` before for a key
    /// issued since, `None` after for one revoked.
    GatewayKey {
        /// The key's public id.
        id: String,
        before: Option<GatewayKeyAccess>,
        after: Option<GatewayKeyAccess>,
    },
    /// A workload (who a verified token is) against what the last apply put in force:
    /// `None` before for a new workload, `None` after for one removed.
    Workload {
        name: String,
        before: Option<WorkloadAccess>,
        after: Option<WorkloadAccess>,
    },
    /// The gateway's threshold alerts: `None` on a side without an `alerts` section.
    Alerts {
        before: Option<Alerts>,
        after: Option<Alerts>,
    },
}

impl ChangeSpec {
    pub fn kind(&self) -> Kind {
        match self {
            ChangeSpec::OrganizationSpendLimit { .. } => Kind::Organization,
            ChangeSpec::MemberCreate(_)
            | ChangeSpec::MemberRoles { .. }
            | ChangeSpec::MemberDelete(_) => Kind::Member,
            ChangeSpec::WorkspaceCreate(_)
            | ChangeSpec::WorkspaceUpdate { .. }
            | ChangeSpec::WorkspaceArchive(_)
            | ChangeSpec::WorkspaceSpendLimit { .. } => Kind::Workspace,
            ChangeSpec::TeamCreate(_)
            | ChangeSpec::TeamUpdate { .. }
            | ChangeSpec::TeamDelete(_) => Kind::Team,
            ChangeSpec::KeyCreate(_)
            | ChangeSpec::KeyReplace { .. }
            | ChangeSpec::KeyRotate { .. }
            | ChangeSpec::KeyDelete(_) => Kind::ApiKey,
            ChangeSpec::Runtime { .. }
            | ChangeSpec::GatewayKey { .. }
            | ChangeSpec::Workload { .. }
            | ChangeSpec::Alerts { .. } => Kind::Runtime,
        }
    }

    pub fn action(&self) -> Action {
        match self {
            ChangeSpec::MemberCreate(_)
            | ChangeSpec::WorkspaceCreate(_)
            | ChangeSpec::TeamCreate(_)
            | ChangeSpec::KeyCreate(_) => Action::Create,
            ChangeSpec::OrganizationSpendLimit { .. }
            | ChangeSpec::MemberRoles { .. }
            | ChangeSpec::WorkspaceUpdate { .. }
            | ChangeSpec::TeamUpdate { .. } => Action::Update,
            ChangeSpec::MemberDelete(_)
            | ChangeSpec::WorkspaceArchive(_)
            | ChangeSpec::TeamDelete(_)
            | ChangeSpec::KeyDelete(_) => Action::Delete,
            ChangeSpec::KeyReplace { .. } => Action::Replace,
            ChangeSpec::KeyRotate { .. } => Action::Rotate,
            ChangeSpec::WorkspaceSpendLimit { .. } => Action::Manual,
            ChangeSpec::Runtime { before, after, .. } => sides_action(before, after),
            ChangeSpec::GatewayKey { before, after, .. } => sides_action(before, after),
            ChangeSpec::Workload { before, after, .. } => sides_action(before, after),
            ChangeSpec::Alerts { before, after } => sides_action(before, after),
        }
    }

    /// Who makes the change true: the Admin API, except a workspace's budget, which the
    /// API can read but only the console can set, and a caller's limits, which the gateway
    /// enforces.
    pub fn enforcement(&self) -> Enforcement {
        match self {
            ChangeSpec::WorkspaceSpendLimit { .. } => Enforcement::Console,
            ChangeSpec::Runtime { .. }
            | ChangeSpec::GatewayKey { .. }
            | ChangeSpec::Workload { .. }
            | ChangeSpec::Alerts { .. } => Enforcement::Runtime,
            _ => Enforcement::Platform,
        }
    }

    /// `before` and `after` as the plan file shows them.
    pub(super) fn sides(&self) -> (Option<Value>, Option<Value>) {
        fn value(side: &impl Serialize) -> Option<Value> {
            // Plain data of strings, numbers, dates and maps: serializing cannot fail.
            serde_json::to_value(side).ok()
        }
        let limit = |limit: &Option<Budget>| {
            value(&SpendLimitSide {
                spend_limit: *limit,
            })
        };
        let roles = |roles: &BTreeSet<String>| {
            value(&RolesSide {
                roles: roles.clone(),
            })
        };
        match self {
            ChangeSpec::OrganizationSpendLimit { before, after }
            | ChangeSpec::WorkspaceSpendLimit { before, after, .. } => {
                (limit(before), limit(&Some(*after)))
            }
            ChangeSpec::MemberCreate(member) => (None, value(member)),
            ChangeSpec::MemberRoles { before, after, .. } => (roles(before), roles(after)),
            ChangeSpec::MemberDelete(member) => (value(member), None),
            ChangeSpec::WorkspaceCreate(workspace) => (None, value(workspace)),
            ChangeSpec::WorkspaceUpdate { before, after, .. } => (value(before), value(after)),
            ChangeSpec::WorkspaceArchive(workspace) => (value(workspace), None),
            ChangeSpec::TeamCreate(team) => (None, value(team)),
            ChangeSpec::TeamUpdate { before, after, .. } => (value(before), value(after)),
            ChangeSpec::TeamDelete(team) => (value(team), None),
            ChangeSpec::KeyCreate(key) => (None, value(key)),
            ChangeSpec::KeyReplace { before, after } | ChangeSpec::KeyRotate { before, after } => {
                (value(before), value(after))
            }
            ChangeSpec::KeyDelete(key) => (value(key), None),
            ChangeSpec::Runtime {
                caller,
                before,
                after,
            } => {
                let side = |limits: &Option<Limits>| {
                    let limits = limits.clone()?;
                    value(&CallerSide {
                        caller: caller.clone(),
                        limits,
                    })
                };
                (side(before), side(after))
            }
            ChangeSpec::GatewayKey { id, before, after } => {
                let side = |access: &Option<GatewayKeyAccess>| {
                    value(&GatewayKeySide {
                        caller: GatewayKeyTag::GatewayKey,
                        id: id.clone(),
                        access: access.clone()?,
                    })
                };
                (side(before), side(after))
            }
            ChangeSpec::Workload {
                name,
                before,
                after,
            } => {
                let side = |access: &Option<WorkloadAccess>| {
                    value(&WorkloadSide {
                        caller: WorkloadTag::Workload,
                        name: name.clone(),
                        access: access.clone()?,
                    })
                };
                (side(before), side(after))
            }
            ChangeSpec::Alerts { before, after } => {
                let side = |alerts: &Option<Alerts>| {
                    value(&AlertsSide {
                        caller: AlertsTag::Alerts,
                        alerts: alerts.clone()?,
                    })
                };
                (side(before), side(after))
            }
        }
    }
}

/// A runtime change's action: a create has no `before`, a delete no `after`.
fn sides_action<T>(before: &Option<T>, after: &Option<T>) -> Action {
    match (before, after) {
        (None, _) => Action::Create,
        (Some(_), None) => Action::Delete,
        (Some(_), Some(_)) => Action::Update,
    }
}

/// A gateway key and its access: one side of a gateway key change. `caller` is
/// `gateway_key`, as a runtime caller's side names its kind.
#[derive(Serialize, Deserialize)]
pub(super) struct GatewayKeySide {
    pub caller: GatewayKeyTag,
    /// The key's public id.
    pub id: String,
    #[serde(flatten)]
    pub access: GatewayKeyAccess,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum GatewayKeyTag {
    GatewayKey,
}

/// A workload and its access: one side of a workload change. `caller` is `workload`, as a
/// runtime caller's side names its kind.
#[derive(Serialize, Deserialize)]
pub(super) struct WorkloadSide {
    pub caller: WorkloadTag,
    /// The workload's name under `workloads:`.
    pub name: String,
    #[serde(flatten)]
    pub access: WorkloadAccess,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum WorkloadTag {
    Workload,
}

/// The gateway's alerts: one side of an alerts change. `caller` is `alerts`, as a runtime
/// caller's side names its kind.
#[derive(Serialize, Deserialize)]
pub(super) struct AlertsSide {
    pub caller: AlertsTag,
    pub alerts: Alerts,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum AlertsTag {
    Alerts,
}

/// A caller and its limits: one side of a runtime change.
#[derive(Serialize, Deserialize)]
pub(super) struct CallerSide {
    #[serde(flatten)]
    pub caller: Caller,
    #[serde(flatten)]
    pub limits: Limits,
}

/// `{"spend_limit": …}`: the one attribute of an organization or workspace budget change.
#[derive(Serialize, Deserialize)]
pub(super) struct SpendLimitSide {
    pub spend_limit: Option<Budget>,
}

/// `{"roles": […]}`: a member's organization roles.
#[derive(Serialize, Deserialize)]
pub(super) struct RolesSide {
    pub roles: BTreeSet<String>,
}

/// A member as a create makes them or a delete finds them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberSpec {
    pub email: String,
    pub name: String,
    /// Organization role names, as the Admin API spells them.
    pub roles: BTreeSet<String>,
}

/// Workspace members by lower-cased email, with their workspace role names.
pub type WorkspaceMembers = BTreeMap<String, BTreeSet<String>>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewWorkspace {
    pub name: String,
    pub description: String,
    /// The API creates a workspace with its admin; validation makes sure there is one.
    pub admin: Option<String>,
    pub members: WorkspaceMembers,
}

/// What an update compares of a workspace; the description only where the policy sets one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub members: WorkspaceMembers,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArchivedWorkspace {
    pub name: String,
    pub description: String,
    pub members: WorkspaceMembers,
}

/// A team's workspace assignments by workspace name, with role names.
pub type TeamWorkspaces = BTreeMap<String, BTreeSet<String>>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewTeam {
    pub name: String,
    pub description: String,
    /// Lower-cased emails.
    pub members: BTreeSet<String>,
    pub workspaces: TeamWorkspaces,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_role: Option<String>,
}

/// What an update compares of a team; the description and organization role only where
/// the policy sets them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TeamState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub members: BTreeSet<String>,
    pub workspaces: TeamWorkspaces,
    /// Absent: the policy leaves it alone. `Some(None)`: the live team has none.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub organization_role: Option<Option<String>>,
}

/// A field that is present, even as `null`, is `Some`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeletedTeam {
    pub name: String,
    pub description: String,
    pub members: BTreeSet<String>,
    pub workspaces: TeamWorkspaces,
}

/// A key as the policy wants it. The secret's sink is shown, never used: apply takes the
/// sink from the policy it runs with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeySpec {
    pub workspace: String,
    pub name: String,
    pub owner: String,
    /// The expiry the key gets if it is created on the day of the plan.
    #[serde(default)]
    pub expires: Option<Date>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_after_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotate_before_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_overlap_hours: Option<u32>,
    /// Where the secret goes, as [`super::sink_summary`] shows it.
    pub secret: String,
}

/// A live key a change acts on. With the workspace and name, `created` (the full creation
/// time) tells which of several keys of one name it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveKeyRef {
    pub workspace: Option<String>,
    pub name: Option<String>,
    /// Where the API lets the owner be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub created: Option<String>,
    pub expires: Option<Date>,
}
