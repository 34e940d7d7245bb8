//! The diff's behaviour across kinds: ordering, pruning, key lifecycles.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::model::{LiveKey, LiveTeam, LiveWorkspace, Prune};
use crate::plan::RotationStage;

fn plan(desired: &DesiredOrg, live: &LiveOrg) -> Plan {
    plan_at(desired, live, "2026-06-01T12:00:00Z")
}

fn plan_at(desired: &DesiredOrg, live: &LiveOrg, now: &str) -> Plan {
    diff(&PlanInput {
        desired,
        live,
        now: now.parse().unwrap(),
        org: "test".into(),
        policy: PolicyRef::default(),
    })
}

fn workspace(name: &str, is_default: bool) -> LiveWorkspace {
    LiveWorkspace {
        id: format!("id-{name}"),
        name: name.into(),
        description: String::new(),
        is_default,
        members: BTreeMap::new(),
        spend_limit: None,
    }
}

fn key(expires: &str, created: &str) -> LiveKey {
    LiveKey {
        id: "k".into(),
        name: Some("ci".into()),
        workspace: Some("dev".into()),
        created_by: None,
        created_at: Some(format!("{created}T09:00:00Z")),
        expires: Some(expires.parse().unwrap()),
        last_used: None,
    }
}

fn desired_key(days: u32, rotate: Option<u32>) -> DesiredOrg {
    serde_json::from_value(serde_json::json!({
        "workspaces": {"dev": {"keys": {"ci": {
            "owner": "a@x.example", "expires_after_days": days, "rotate_before_days": rotate,
            "secret": {"file": "ci.key"}
        }}}}
    }))
    .unwrap()
}

fn live_with(key: LiveKey) -> LiveOrg {
    let mut live = LiveOrg::default();
    live.workspaces
        .insert("dev".into(), workspace("dev", false));
    live.keys.push(key);
    live
}

#[test]
fn expiry_after_days_counts_from_creation() {
    let in_sync = plan(
        &desired_key(90, Some(14)),
        &live_with(key("2026-08-30", "2026-06-01")),
    );
    assert!(in_sync.changes.is_empty(), "{:?}", in_sync.changes);
    let replaced = plan(
        &desired_key(30, None),
        &live_with(key("2026-08-30", "2026-06-01")),
    );
    assert_eq!(replaced.changes[0].action, Action::Replace);
    let rotated = plan(
        &desired_key(90, Some(14)),
        &live_with(key("2026-06-10", "2026-03-12")),
    );
    assert_eq!(rotated.changes[0].action, Action::Rotate);
    let expired = plan(
        &desired_key(90, None),
        &live_with(key("2026-05-01", "2026-01-31")),
    );
    assert_eq!(expired.changes[0].action, Action::Replace);
}

#[test]
fn a_rotation_starts_overlaps_then_deletes_the_predecessor_after_the_overlap() {
    let desired = desired_key(90, Some(14));
    let old = key("2026-06-10", "2026-03-12");
    let starting = plan(&desired, &live_with(old.clone()));
    assert_eq!(starting.changes[0].action, Action::Rotate);
    assert_eq!(starting.rotations[0].stage, RotationStage::Starting);
    assert_eq!(
        starting.rotations[0].retire_after.as_deref(),
        Some("2026-06-02T12:00:00Z")
    );

    let mut live = live_with(old);
    live.keys.push(LiveKey {
        id: "k2".into(),
        created_at: Some("2026-06-01T12:00:00Z".into()),
        expires: Some("2026-08-30".parse().unwrap()),
        ..live.keys[0].clone()
    });
    let overlapping = plan_at(&desired, &live, "2026-06-02T11:59:59Z");
    assert!(overlapping.changes.is_empty(), "{:?}", overlapping.changes);
    assert!(
        overlapping.unmanaged.is_empty(),
        "{:?}",
        overlapping.unmanaged
    );
    assert_eq!(overlapping.rotations[0].stage, RotationStage::Overlapping);

    let finishing = plan_at(&desired, &live, "2026-06-02T12:00:00Z");
    assert_eq!(finishing.rotations[0].stage, RotationStage::Finishing);
    let delete = &finishing.changes[0];
    assert_eq!(delete.action, Action::Delete);
    assert_eq!(delete.address, "workspace.dev.key.ci");
    // The delete names the predecessor by its creation time, never the successor.
    assert_eq!(delete.before().unwrap()["created"], "2026-03-12T09:00:00Z");

    let mut longer = desired.clone();
    longer
        .workspaces
        .get_mut("dev")
        .unwrap()
        .keys
        .get_mut("ci")
        .unwrap()
        .rotation_overlap_hours = Some(48);
    let waiting = plan_at(&longer, &live, "2026-06-02T12:00:00Z");
    assert!(waiting.changes.is_empty(), "{:?}", waiting.changes);
}

#[test]
fn a_key_whose_secret_was_never_delivered_is_never_in_sync() {
    let desired = desired_key(90, Some(14));
    let mut live = live_with(key("2026-08-30", "2026-06-01"));
    assert!(plan(&desired, &live).changes.is_empty());
    live.undelivered.insert("k".into());
    let replaced = plan(&desired, &live);
    assert_eq!(replaced.changes.len(), 1, "{:?}", replaced.changes);
    assert_eq!(replaced.changes[0].action, Action::Replace);
    assert!(
        replaced.changes[0]
            .reason
            .contains("stopped before its secret reached its sink"),
        "{}",
        replaced.changes[0].reason
    );

    // An interrupted rotation: the delivered predecessor stays (no overlap has begun),
    // and the undelivered successor is replaced.
    let mut live = live_with(key("2026-06-10", "2026-03-12"));
    live.keys.push(LiveKey {
        id: "k2".into(),
        created_at: Some("2026-05-01T12:00:00Z".into()),
        expires: Some("2026-07-30".parse().unwrap()),
        ..live.keys[0].clone()
    });
    live.undelivered.insert("k2".into());
    let resumed = plan(&desired, &live);
    let actions: Vec<Action> = resumed.changes.iter().map(|c| c.action).collect();
    assert_eq!(actions, [Action::Replace], "{:?}", resumed.changes);
    assert_eq!(
        resumed.changes[0].before().unwrap()["created"],
        "2026-05-01T12:00:00Z"
    );

    // An older key never delivered goes at once; so does one the policy no longer names.
    let mut live = live_with(key("2026-08-30", "2026-06-01"));
    live.keys.push(LiveKey {
        id: "stray".into(),
        created_at: Some("2026-05-01T12:00:00Z".into()),
        ..live.keys[0].clone()
    });
    live.keys.push(LiveKey {
        id: "gone".into(),
        name: Some("removed".into()),
        ..live.keys[0].clone()
    });
    live.undelivered
        .extend(["stray".to_owned(), "gone".to_owned()]);
    let cleaned = plan(&desired, &live);
    let deletes: Vec<&str> = cleaned
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .map(|c| c.address.as_str())
        .collect();
    assert_eq!(
        deletes,
        ["workspace.dev.key.ci", "workspace.dev.key.removed"],
        "{:?}",
        cleaned.changes
    );
}

#[test]
fn an_owner_change_replaces_the_key_only_where_the_owner_can_be_read() {
    let desired = desired_key(90, None);
    let mut live = live_with(key("2026-08-30", "2026-06-01"));
    // Nobody named as creator: the owner cannot be read, so nothing to compare.
    assert!(plan(&desired, &live).changes.is_empty());
    for email in ["a@x.example", "b@x.example"] {
        live.members.insert(
            email.into(),
            crate::model::LiveMember {
                id: email.into(),
                email: email.into(),
                name: "Someone".into(),
                roles: BTreeSet::new(),
            },
        );
    }
    live.keys[0].created_by = Some("A@x.example".into());
    assert!(plan(&desired, &live).changes.is_empty());
    live.keys[0].created_by = Some("b@x.example".into());
    let replaced = plan(&desired, &live);
    assert_eq!(replaced.changes[0].action, Action::Replace);
    assert!(
        replaced.changes[0]
            .reason
            .contains("belongs to b@x.example")
    );
    // A creator who is not a member says nothing about the owner.
    live.keys[0].created_by = Some("0b6d-uuid".into());
    assert!(plan(&desired, &live).changes.is_empty());
}

#[test]
fn unmanaged_objects_are_deleted_only_when_pruned_and_never_the_default_workspace() {
    let mut live = LiveOrg::default();
    live.workspaces
        .insert("old".into(), workspace("old", false));
    live.workspaces.insert(
        "Default Workspace".into(),
        workspace("Default Workspace", true),
    );
    let mut desired = DesiredOrg::default();
    let listed = plan(&desired, &live);
    assert!(listed.changes.is_empty());
    assert_eq!(listed.unmanaged.len(), 2);
    desired.organization.prune = Prune {
        workspaces: true,
        ..Prune::default()
    };
    let pruned = plan(&desired, &live);
    assert_eq!(pruned.changes.len(), 1);
    assert_eq!(pruned.changes[0].address, "workspace.old");
    assert_eq!(pruned.changes[0].action, Action::Delete);
    assert_eq!(pruned.unmanaged.len(), 1);
}

#[test]
fn creates_run_parents_first_and_deletes_children_first() {
    let desired: DesiredOrg = serde_json::from_value(serde_json::json!({
        "members": {"a@x.example": {"name": "A"}},
        "workspaces": {"dev": {"admin": "a@x.example", "keys": {"ci": {"owner": "a@x.example", "secret": {"file": "k"}}}}},
        "organization": {"prune": {"keys": true, "teams": true}}
    }))
    .unwrap();
    let mut live = LiveOrg::default();
    live.teams.insert(
        "t".into(),
        LiveTeam {
            id: "t".into(),
            name: "t".into(),
            description: String::new(),
            members: BTreeSet::new(),
            workspaces: BTreeMap::new(),
            organization_role: None,
        },
    );
    let plan = plan(&desired, &live);
    let order: Vec<&str> = plan.changes.iter().map(|c| c.address.as_str()).collect();
    assert_eq!(
        order,
        [
            "member.a@x.example",
            "workspace.dev",
            "workspace.dev.key.ci",
            "team.t"
        ]
    );
}

#[test]
fn runtime_changes_come_only_against_a_record_last_among_updates_and_first_among_deletes() {
    let desired: DesiredOrg = serde_json::from_value(serde_json::json!({
        "members": {"a@x.example": {"name": "A"}},
        "workspaces": {"dev": {"rpm": 60, "admin": "a@x.example", "keys": {
            "ci": {"owner": "a@x.example", "rpm": 30, "secret": {"file": "k"}}
        }}},
        "organization": {"prune": {"teams": true}}
    }))
    .unwrap();
    let mut live = LiveOrg::default();
    live.teams.insert(
        "t".into(),
        LiveTeam {
            id: "t".into(),
            name: "t".into(),
            description: String::new(),
            members: BTreeSet::new(),
            workspaces: BTreeMap::new(),
            organization_role: None,
        },
    );
    let input = PlanInput {
        desired: &desired,
        live: &live,
        now: "2026-06-01T12:00:00Z".parse().unwrap(),
        org: "test".into(),
        policy: PolicyRef::default(),
    };
    let without = diff(&input);
    assert!(without.changes.iter().all(|c| c.kind != Kind::Runtime));

    let recorded: DesiredOrg = serde_json::from_value(serde_json::json!({
        "workspaces": {"old": {"keys": {"gone": {"owner": "a@x.example", "secret": {"file": "k"}}}}}
    }))
    .unwrap();
    let recorded = Runtime::of(&recorded, Catalog::bundled());
    let plan = diff_against(&input, Some(&recorded));
    let order: Vec<(&str, Action)> = plan
        .changes
        .iter()
        .map(|c| (c.address.as_str(), c.action))
        .collect();
    assert_eq!(
        order,
        [
            ("member.a@x.example", Action::Create),
            ("workspace.dev", Action::Create),
            ("workspace.dev.key.ci", Action::Create),
            ("runtime.workspace.dev.key.ci", Action::Create),
            ("runtime.member.a@x.example.workspace.dev", Action::Create),
            ("runtime.workspace.old.key.gone", Action::Delete),
            ("team.t", Action::Delete),
        ]
    );
    assert_eq!(plan.summary.create, 5);
    assert!(
        plan.changes
            .iter()
            .filter(|c| c.kind == Kind::Runtime)
            .all(|c| c.enforcement == crate::model::Enforcement::Runtime)
    );
}
