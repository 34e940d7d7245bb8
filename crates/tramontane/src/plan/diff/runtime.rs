//! Runtime: each caller whose limits differ from what the last apply put in force. The
//! live organization has no such settings, so the comparison is with the recorded runtime;
//! without a record there is nothing to compare, and no runtime change.

use std::collections::BTreeSet;

use crate::plan::{Change, ChangeSpec};
use crate::runtime::{Caller, Runtime};

/// The runtime changes from `recorded` to `effective`, one per caller that differs.
pub(super) fn runtime_changes(recorded: &Runtime, effective: &Runtime) -> Vec<Change> {
    let before = recorded.callers();
    let after = effective.callers();
    let callers: BTreeSet<&Caller> = before.keys().chain(after.keys()).collect();
    callers
        .into_iter()
        .filter_map(|caller| {
            let old = before.get(caller).copied();
            let new = after.get(caller).copied();
            let reason = match (old, new) {
                (None, Some(_)) => "a new caller: the gateway serves it from the next apply",
                (Some(_), None) => "no longer a caller: the gateway refuses it from the next apply",
                (Some(old), Some(new)) if old != new => {
                    "the policy changes what the gateway lets this caller do"
                }
                _ => return None,
            };
            let spec = ChangeSpec::Runtime {
                caller: caller.clone(),
                before: old.cloned(),
                after: new.cloned(),
            };
            Some(Change::new(caller.address(), reason, spec))
        })
        .collect()
}

/// The gateway key changes from `recorded` to `effective`, one per key issued, revoked, or
/// changed in its holder, workspace, expiry, secret or the access its holder has.
pub(super) fn gateway_key_changes(recorded: &Runtime, effective: &Runtime) -> Vec<Change> {
    let (before, after) = (&recorded.gateway_keys, &effective.gateway_keys);
    let ids: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    ids.into_iter()
        .filter_map(|id| {
            let old = before.get(id);
            let new = after.get(id);
            let reason = match (old, new) {
                (None, Some(_)) => {
                    "a new gateway key: the gateway accepts it once it loads this policy"
                }
                (Some(_), None) => {
                    "revoked: the gateway refuses this key once it loads this policy"
                }
                (Some(old), Some(new)) if old != new => {
                    "the policy changes what this gateway key lets its holder do"
                }
                _ => return None,
            };
            let spec = ChangeSpec::GatewayKey {
                id: id.clone(),
                before: old.cloned(),
                after: new.cloned(),
            };
            Some(Change::new(gateway_key_address(id), reason, spec))
        })
        .collect()
}

/// The workload changes from `recorded` to `effective`, one per workload added, removed, or
/// changed in the token it must present (its issuer's trust included) or the access it gets.
pub(super) fn workload_changes(recorded: &Runtime, effective: &Runtime) -> Vec<Change> {
    let (before, after) = (&recorded.workloads, &effective.workloads);
    let names: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| {
            let old = before.get(name);
            let new = after.get(name);
            let reason = match (old, new) {
                (None, Some(_)) => {
                    "a new workload: the gateway accepts its tokens once it loads this policy"
                }
                (Some(_), None) => {
                    "removed: the gateway refuses this workload's tokens once it loads this policy"
                }
                (Some(old), Some(new)) if old != new => {
                    "the policy changes which tokens are this workload, or what it may do"
                }
                _ => return None,
            };
            let spec = ChangeSpec::Workload {
                name: name.clone(),
                before: old.cloned(),
                after: new.cloned(),
            };
            Some(Change::new(workload_address(name), reason, spec))
        })
        .collect()
}

/// Where a plan shows a change to a workload.
pub(super) fn workload_address(name: &str) -> String {
    format!("runtime.workload.{name}")
}

/// The change to the gateway's threshold alerts from `recorded` to `effective`, if any:
/// alerts are the gateway's to send, so they change with the runtime record like a caller's
/// limits.
pub(super) fn alert_changes(recorded: &Runtime, effective: &Runtime) -> Option<Change> {
    let side = |runtime: &Runtime| (!runtime.alerts.is_default()).then(|| runtime.alerts.clone());
    let (before, after) = (side(recorded), side(effective));
    let reason = match (&before, &after) {
        (None, Some(_)) => "threshold alerts: the gateway sends them once it loads this policy",
        (Some(_), None) => "no more threshold alerts once the gateway loads this policy",
        (Some(old), Some(new)) if old != new => "the policy changes the gateway's threshold alerts",
        _ => return None,
    };
    Some(Change::new(
        "runtime.alerts",
        reason,
        ChangeSpec::Alerts { before, after },
    ))
}

/// Where a plan shows a change to a gateway key.
pub(super) fn gateway_key_address(id: &str) -> String {
    format!("runtime.gateway_key.{id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DesiredOrg;
    use crate::plan::Action;
    use crate::policy::catalog::Catalog;

    fn runtime(policy: serde_json::Value) -> Runtime {
        let desired: DesiredOrg = serde_json::from_value(policy).unwrap();
        Runtime::of(&desired, Catalog::bundled())
    }

    #[test]
    fn alerts_added_changed_or_removed_are_one_runtime_change_that_round_trips() {
        let none = runtime(serde_json::json!({}));
        let hook = |thresholds: serde_json::Value| {
            runtime(serde_json::json!({"alerts": {
                "thresholds": thresholds,
                "destinations": {"ops": {"kind": "webhook", "url": {"env": "OPS_URL"}}}
            }}))
        };
        let (first, second) = (
            hook(serde_json::json!([50, 80])),
            hook(serde_json::json!([90])),
        );
        assert!(alert_changes(&none, &none).is_none());
        assert!(alert_changes(&first, &first).is_none());
        for (before, after, action) in [
            (&none, &first, Action::Create),
            (&first, &second, Action::Update),
            (&second, &none, Action::Delete),
        ] {
            let change = alert_changes(before, after).expect("a change");
            assert_eq!(change.address, "runtime.alerts");
            assert_eq!(change.action, action);
            assert_eq!(change.enforcement, crate::model::Enforcement::Runtime);
            let text = serde_json::to_string(&change).unwrap();
            // Where the URL is read, never a URL.
            assert!(text.contains("OPS_URL"), "{text}");
            let again: Change = serde_json::from_str(&text).unwrap();
            assert_eq!(again, change);
        }
    }

    #[test]
    fn each_caller_whose_limits_change_is_one_change() {
        let recorded = runtime(
            serde_json::json!({"workspaces": {"dev": {"rpm": 60, "keys": {
                "ci": {"owner": "a@x.example", "rpm": 30, "secret": {"file": "k"}},
                "old": {"owner": "a@x.example", "secret": {"file": "k"}}
            }}}}),
        );
        assert!(runtime_changes(&recorded, &recorded).is_empty());
        let effective = runtime(
            serde_json::json!({"workspaces": {"dev": {"rpm": 60, "keys": {
                "ci": {"owner": "a@x.example", "rpm": 45, "secret": {"file": "k"}},
                "new": {"owner": "a@x.example", "secret": {"file": "k"}}
            }}}}),
        );
        let changes = runtime_changes(&recorded, &effective);
        let shown = addresses_and_actions(&changes);
        assert_eq!(
            shown,
            [
                ("runtime.workspace.dev.key.ci", Action::Update),
                ("runtime.workspace.dev.key.new", Action::Create),
                ("runtime.workspace.dev.key.old", Action::Delete),
            ]
        );
        assert_eq!(changed_names(&changes[0]), ["rpm"]);
        // The change reads back from a plan file as it was made.
        let text = serde_json::to_string(&changes).unwrap();
        assert_eq!(serde_json::from_str::<Vec<Change>>(&text).unwrap(), changes);
    }

    fn addresses_and_actions(changes: &[Change]) -> Vec<(&str, Action)> {
        changes
            .iter()
            .map(|change| (change.address.as_str(), change.action))
            .collect()
    }

    fn changed_names(change: &Change) -> Vec<String> {
        change
            .changed_attributes()
            .into_iter()
            .map(|attribute| attribute.name)
            .collect()
    }

    fn with_gateway_keys(keys: serde_json::Value) -> Runtime {
        runtime(serde_json::json!({
            "members": {"a@x.example": {"name": "A"}},
            "workspaces": {"dev": {"admin": "a@x.example", "rpm": 60, "models": ["m1", "m2"], "keys": {
                "ci": {"owner": "a@x.example", "rpm": 30, "models": ["m1"], "secret": {"file": "k"}}
            }}},
            "gateway_keys": keys
        }))
    }

    fn digest(digit: char) -> String {
        format!("sha256:{}", digit.to_string().repeat(64))
    }

    #[test]
    fn a_gateway_key_issued_revoked_or_re_issued_is_one_change_without_its_digest() {
        let recorded = with_gateway_keys(serde_json::json!({
            "alicekey": {"digest": digest('1'), "holder": "a@x.example", "workspace": "dev", "expires": "2027-01-01"},
            "cikey001": {"digest": digest('2'), "holder": "workspace.dev.key.ci", "workspace": "dev", "expires": "2027-01-01"}
        }));
        assert!(gateway_key_changes(&recorded, &recorded).is_empty());
        let alice = &recorded.gateway_keys["alicekey"];
        assert_eq!(alice.limits.as_ref().unwrap().workspace_rpm, Some(60));
        let ci = recorded.gateway_keys["cikey001"].limits.as_ref().unwrap();
        assert_eq!(ci.rpm, Some(30));
        let effective = with_gateway_keys(serde_json::json!({
            "cikey001": {"digest": digest('3'), "holder": "workspace.dev.key.ci", "workspace": "dev", "expires": "2027-01-01"},
            "newkey01": {"digest": digest('4'), "holder": "a@x.example", "workspace": "dev", "expires": "2027-01-01"}
        }));
        let changes = gateway_key_changes(&recorded, &effective);
        let shown = addresses_and_actions(&changes);
        assert_eq!(
            shown,
            [
                ("runtime.gateway_key.alicekey", Action::Delete),
                ("runtime.gateway_key.cikey001", Action::Update),
                ("runtime.gateway_key.newkey01", Action::Create),
            ]
        );
        assert_eq!(changed_names(&changes[1]), ["fingerprint"]);
        let text = serde_json::to_string(&changes).unwrap();
        for digit in ['1', '2', '3', '4'] {
            assert!(!text.contains(&digit.to_string().repeat(64)), "{text}");
        }
        // The change reads back as it was made; `access` is written, not read.
        assert_eq!(serde_json::from_str::<Vec<Change>>(&text).unwrap(), changes);
    }
}
