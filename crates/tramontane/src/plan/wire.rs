//! A change as a plan file holds it: `address`, `kind`, `action`, `enforcement`, `reason`,
//! and the `before` and `after` objects (DESIGN §3). Reading one decodes its sides into the
//! typed spec its kind and action call for, so a change apply cannot carry out is refused
//! when the plan is read, naming the change, rather than half-way through an apply.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::change::{
    ArchivedWorkspace, CallerSide, Change, ChangeSpec, DeletedTeam, GatewayKeySide, KeySpec,
    LiveKeyRef, MemberSpec, NewTeam, NewWorkspace, RolesSide, SpendLimitSide, TeamState,
    WorkloadSide, WorkspaceState,
};
use super::{AccessEffect, Action};
use crate::model::{Budget, Enforcement, Kind};

#[derive(Serialize, Deserialize)]
struct WireChange {
    address: String,
    kind: Kind,
    action: Action,
    enforcement: Enforcement,
    reason: String,
    before: Option<Value>,
    after: Option<Value>,
    /// Who gains or loses what, for a runtime change: derived from the sides, so it is
    /// written for readers and not read back.
    #[serde(default, skip_serializing_if = "Option::is_none", skip_deserializing)]
    access: Option<AccessEffect>,
}

impl Serialize for Change {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (before, after) = self.spec.sides();
        WireChange {
            address: self.address.clone(),
            kind: self.kind,
            action: self.action,
            enforcement: self.enforcement,
            reason: self.reason.clone(),
            before,
            after,
            access: self.access_effect(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Change {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Change, D::Error> {
        let wire = WireChange::deserialize(deserializer)?;
        let spec = decode(&wire).map_err(|problem| {
            D::Error::custom(format!(
                "the {} of `{}` {problem}",
                wire.action.as_str(),
                wire.address
            ))
        })?;
        if spec.enforcement() != wire.enforcement {
            return Err(D::Error::custom(format!(
                "the {} of `{}` is enforced by `{}`, not `{}`",
                wire.action.as_str(),
                wire.address,
                spec.enforcement().as_str(),
                wire.enforcement.as_str()
            )));
        }
        Ok(Change {
            address: wire.address,
            kind: wire.kind,
            action: wire.action,
            enforcement: wire.enforcement,
            reason: wire.reason,
            spec,
        })
    }
}

/// The typed spec of a wire change; the problem, in words that follow its address.
fn decode(wire: &WireChange) -> Result<ChangeSpec, String> {
    // The name an update's sides leave out is its address's: `member.EMAIL`,
    // `workspace.NAME`, `team.NAME`.
    let named = |prefix: &str| {
        wire.address
            .strip_prefix(prefix)
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| format!("has an address that does not start with `{prefix}`"))
    };
    Ok(match (wire.kind, wire.action) {
        (Kind::Organization, Action::Update) => {
            let (before, after): (SpendLimitSide, SpendLimitSide) =
                (side(&wire.before, "before")?, side(&wire.after, "after")?);
            ChangeSpec::OrganizationSpendLimit {
                before: before.spend_limit,
                after: whole(required(after.spend_limit)?)?,
            }
        }
        (Kind::Member, Action::Create) => ChangeSpec::MemberCreate(side(&wire.after, "after")?),
        (Kind::Member, Action::Update) => {
            let (old, new): (RolesSide, RolesSide) =
                (side(&wire.before, "before")?, side(&wire.after, "after")?);
            ChangeSpec::MemberRoles {
                email: named("member.")?,
                before: old.roles,
                after: new.roles,
            }
        }
        (Kind::Member, Action::Delete) => {
            ChangeSpec::MemberDelete(side::<MemberSpec>(&wire.before, "before")?)
        }
        (Kind::Workspace, Action::Create) => {
            ChangeSpec::WorkspaceCreate(side::<NewWorkspace>(&wire.after, "after")?)
        }
        (Kind::Workspace, Action::Update) => ChangeSpec::WorkspaceUpdate {
            name: named("workspace.")?,
            before: side::<WorkspaceState>(&wire.before, "before")?,
            after: side::<WorkspaceState>(&wire.after, "after")?,
        },
        (Kind::Workspace, Action::Delete) => {
            ChangeSpec::WorkspaceArchive(side::<ArchivedWorkspace>(&wire.before, "before")?)
        }
        (Kind::Workspace, Action::Manual) => {
            let (before, after): (SpendLimitSide, SpendLimitSide) =
                (side(&wire.before, "before")?, side(&wire.after, "after")?);
            ChangeSpec::WorkspaceSpendLimit {
                workspace: named("workspace.")?,
                before: before.spend_limit,
                after: required(after.spend_limit)?,
            }
        }
        (Kind::Team, Action::Create) => {
            ChangeSpec::TeamCreate(side::<NewTeam>(&wire.after, "after")?)
        }
        (Kind::Team, Action::Update) => ChangeSpec::TeamUpdate {
            name: named("team.")?,
            before: side::<TeamState>(&wire.before, "before")?,
            after: side::<TeamState>(&wire.after, "after")?,
        },
        (Kind::Team, Action::Delete) => {
            ChangeSpec::TeamDelete(side::<DeletedTeam>(&wire.before, "before")?)
        }
        (Kind::ApiKey, Action::Create) => {
            ChangeSpec::KeyCreate(side::<KeySpec>(&wire.after, "after")?)
        }
        (Kind::ApiKey, Action::Replace) => ChangeSpec::KeyReplace {
            before: side::<LiveKeyRef>(&wire.before, "before")?,
            after: side::<KeySpec>(&wire.after, "after")?,
        },
        (Kind::ApiKey, Action::Rotate) => ChangeSpec::KeyRotate {
            before: side::<LiveKeyRef>(&wire.before, "before")?,
            after: side::<KeySpec>(&wire.after, "after")?,
        },
        (Kind::ApiKey, Action::Delete) => {
            ChangeSpec::KeyDelete(side::<LiveKeyRef>(&wire.before, "before")?)
        }
        (Kind::Runtime, action @ (Action::Create | Action::Update | Action::Delete))
            if is_alerts(wire) =>
        {
            let before = alerts_side(&wire.before, "before", action != Action::Create)?;
            let after = alerts_side(&wire.after, "after", action != Action::Delete)?;
            ChangeSpec::Alerts { before, after }
        }
        (Kind::Runtime, action @ (Action::Create | Action::Update | Action::Delete))
            if is_gateway_key(wire) =>
        {
            let before = gateway_key_side(&wire.before, "before", action != Action::Create)?;
            let after = gateway_key_side(&wire.after, "after", action != Action::Delete)?;
            let id = one_subject(
                before.as_ref().map(|side| &side.id),
                after.as_ref().map(|side| &side.id),
                "gateway keys",
            )?;
            ChangeSpec::GatewayKey {
                id,
                before: before.map(|side| side.access),
                after: after.map(|side| side.access),
            }
        }
        (Kind::Runtime, action @ (Action::Create | Action::Update | Action::Delete))
            if has_caller(wire, "workload") =>
        {
            let before =
                tagged_side::<WorkloadSide>(&wire.before, "before", action != Action::Create)?;
            let after =
                tagged_side::<WorkloadSide>(&wire.after, "after", action != Action::Delete)?;
            let name = one_subject(
                before.as_ref().map(|side| &side.name),
                after.as_ref().map(|side| &side.name),
                "workloads",
            )?;
            ChangeSpec::Workload {
                name,
                before: before.map(|side| side.access),
                after: after.map(|side| side.access),
            }
        }
        (Kind::Runtime, action @ (Action::Create | Action::Update | Action::Delete)) => {
            let before = runtime_side(&wire.before, "before", action != Action::Create)?;
            let after = runtime_side(&wire.after, "after", action != Action::Delete)?;
            let caller = one_subject(
                before.as_ref().map(|side| &side.caller),
                after.as_ref().map(|side| &side.caller),
                "callers",
            )?;
            ChangeSpec::Runtime {
                caller,
                before: before.map(|side| side.limits),
                after: after.map(|side| side.limits),
            }
        }
        (kind, action) => {
            return Err(format!(
                "is not a change tramontane makes: no {} {} a {}",
                action.as_str(),
                if action == Action::Manual {
                    "step for"
                } else {
                    "of"
                },
                kind.as_str()
            ));
        }
    })
}

/// What a runtime change is a change of (a caller, a gateway key): the same on both sides,
/// or read from the one side there is. `what` names such subjects in the error.
fn one_subject<T: PartialEq + Clone>(
    before: Option<&T>,
    after: Option<&T>,
    what: &str,
) -> Result<T, String> {
    match (before, after) {
        (Some(old), Some(new)) if old != new => {
            Err(format!("has a `before` and an `after` of different {what}"))
        }
        (Some(subject), _) | (_, Some(subject)) => Ok(subject.clone()),
        (None, None) => Err("has neither `before` nor `after`".into()),
    }
}

fn side<T: DeserializeOwned>(value: &Option<Value>, which: &str) -> Result<T, String> {
    let value = value.clone().ok_or_else(|| format!("has no `{which}`"))?;
    serde_json::from_value(value).map_err(|error| format!("has an unreadable `{which}`: {error}"))
}

/// One side of a runtime change: present exactly where the action says.
fn runtime_side(
    value: &Option<Value>,
    which: &str,
    wanted: bool,
) -> Result<Option<CallerSide>, String> {
    match (value, wanted) {
        (Some(_), true) => side::<CallerSide>(value, which).map(Some),
        (None, false) => Ok(None),
        (None, true) => Err(format!("has no `{which}`")),
        (Some(_), false) => Err(format!("has a `{which}`, which its action has none of")),
    }
}

/// Whether a runtime change is a gateway key's: its sides say `"caller": "gateway_key"`.
fn is_alerts(wire: &WireChange) -> bool {
    [&wire.before, &wire.after]
        .into_iter()
        .flatten()
        .any(|side| side.get("caller").and_then(Value::as_str) == Some("alerts"))
}

/// One side of an alerts change: present exactly where the action says.
fn alerts_side(
    side: &Option<Value>,
    name: &str,
    present: bool,
) -> Result<Option<crate::model::Alerts>, String> {
    match (side, present) {
        (Some(value), true) => serde_json::from_value::<super::change::AlertsSide>(value.clone())
            .map(|side| Some(side.alerts))
            .map_err(|error| format!("has a `{name}` that is not the gateway's alerts: {error}")),
        (None, false) => Ok(None),
        (Some(_), false) => Err(format!("has a `{name}` its action does not allow")),
        (None, true) => Err(format!("has no `{name}`")),
    }
}

fn is_gateway_key(wire: &WireChange) -> bool {
    has_caller(wire, "gateway_key")
}

/// Whether a side of a runtime change says `"caller": <tag>`.
fn has_caller(wire: &WireChange, tag: &str) -> bool {
    [&wire.before, &wire.after]
        .into_iter()
        .flatten()
        .any(|side| side.get("caller").and_then(Value::as_str) == Some(tag))
}

/// One side of a tagged runtime change: present exactly where the action says.
fn tagged_side<T: DeserializeOwned>(
    value: &Option<Value>,
    which: &str,
    wanted: bool,
) -> Result<Option<T>, String> {
    match (value, wanted) {
        (Some(_), true) => side::<T>(value, which).map(Some),
        (None, false) => Ok(None),
        (None, true) => Err(format!("has no `{which}`")),
        (Some(_), false) => Err(format!("has a `{which}`, which its action has none of")),
    }
}

/// One side of a gateway key change: present exactly where the action says.
fn gateway_key_side(
    value: &Option<Value>,
    which: &str,
    wanted: bool,
) -> Result<Option<GatewayKeySide>, String> {
    match (value, wanted) {
        (Some(_), true) => side::<GatewayKeySide>(value, which).map(Some),
        (None, false) => Ok(None),
        (None, true) => Err(format!("has no `{which}`")),
        (Some(_), false) => Err(format!("has a `{which}`, which its action has none of")),
    }
}

fn required(limit: Option<Budget>) -> Result<Budget, String> {
    limit.ok_or_else(|| "has no `after.spend_limit`".to_owned())
}

/// The organization's limit is set in whole units: a plan makes it so.
fn whole(limit: Budget) -> Result<Budget, String> {
    match limit.monthly() {
        Some(amount) if amount.whole_units().is_none() => Err(format!(
            "sets the limit to {amount}, but the Admin API takes whole amounts"
        )),
        _ => Ok(limit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(change: serde_json::Value) -> Result<Change, String> {
        serde_json::from_value(change).map_err(|error| error.to_string())
    }

    #[test]
    fn a_change_reads_back_as_it_was_written() {
        let change = Change::new(
            "team.ops",
            "in the policy",
            ChangeSpec::TeamUpdate {
                name: "ops".into(),
                before: TeamState {
                    description: None,
                    members: ["a@x.example".to_owned()].into(),
                    workspaces: Default::default(),
                    organization_role: Some(None),
                },
                after: TeamState {
                    description: None,
                    members: Default::default(),
                    workspaces: Default::default(),
                    organization_role: Some(Some("billing_manager".into())),
                },
            },
        );
        let text = serde_json::to_value(&change).unwrap();
        assert_eq!(text["before"]["organization_role"], Value::Null);
        assert_eq!(read(text).unwrap(), change);
    }

    #[test]
    fn a_change_apply_cannot_carry_out_is_refused_naming_it() {
        let base = serde_json::json!({
            "address": "member.a@x.example", "kind": "member", "action": "update",
            "enforcement": "platform", "reason": "", "before": {"roles": ["member"]},
            "after": {"roles": "member"}
        });
        let error = read(base.clone()).unwrap_err();
        assert!(
            error.starts_with(
                "the update of `member.a@x.example` has an unreadable `after`: invalid type"
            ),
            "{error}"
        );
        let mut manual = base.clone();
        manual["action"] = "manual".into();
        assert!(
            read(manual)
                .unwrap_err()
                .contains("no manual step for a member"),
        );
        let mut console = base;
        console["after"] = serde_json::json!({"roles": []});
        console["enforcement"] = "console".into();
        assert!(
            read(console)
                .unwrap_err()
                .contains("is enforced by `platform`")
        );
        let fractional = serde_json::json!({
            "address": "organization", "kind": "organization", "action": "update",
            "enforcement": "platform", "reason": "", "before": {"spend_limit": null},
            "after": {"spend_limit": 10.5}
        });
        assert!(
            read(fractional)
                .unwrap_err()
                .contains("takes whole amounts")
        );
    }
}
