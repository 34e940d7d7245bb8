//! Effective access from small policies: each inheritance rule on its own.

use super::*;

fn runtime(policy: serde_json::Value) -> Runtime {
    let desired: DesiredOrg = serde_json::from_value(policy).unwrap();
    Runtime::of(&desired, &catalog())
}

/// Two models of two names each, and one of one name.
pub(super) fn catalog() -> Catalog {
    Catalog::from_json(
        r#"{"object": "list", "data": [
            {"id": "small-2506", "aliases": ["small-latest"]},
            {"id": "large-2411", "aliases": ["large-latest"]},
            {"id": "embed", "aliases": []}]}"#,
    )
    .unwrap()
}

pub(super) fn only(names: &[&str]) -> Models {
    Models::Only(names.iter().map(|n| n.to_string()).collect())
}

#[test]
fn a_service_key_has_its_own_rate_under_the_shared_one_and_models_within_the_workspace() {
    let runtime = runtime(serde_json::json!({
        "workspaces": {"dev": {"rpm": 60, "spend_limit": 25.5, "models": ["small-latest", "embed"], "keys": {
            "own": {"owner": "X@acme.example", "rpm": 90, "models": ["small-2506"], "secret": {"file": "s"}},
            "star": {"owner": "x@acme.example", "models": ["*"], "secret": {"file": "s"}},
            "inherits": {"owner": "x@acme.example", "rpm": 30, "secret": {"file": "s"}}
        }}}
    }));
    let keys = &runtime.workspaces["dev"].keys;
    let own = &keys["own"];
    assert_eq!(own.owner, "x@acme.example");
    assert_eq!(
        own.limits.models,
        only(&["small-2506"]),
        "an alias of an allowed model"
    );
    assert_eq!(
        (own.limits.rpm, own.limits.workspace_rpm),
        (Some(90), Some(60))
    );
    let ids: Vec<String> = own
        .limits
        .rules("dev", &crate::runtime::RuleScope::Key("k".into()))
        .into_iter()
        .filter(|rule| rule.measure == crate::runtime::Measure::Requests)
        .map(|rule| format!("{} {}", rule.id, rule.limit))
        .collect();
    assert_eq!(
        ids,
        vec![
            "workspace:dev:requests:minute 60",
            "key:k:requests:minute 90"
        ]
    );
    assert_eq!(
        own.limits.spend_limit,
        Some(Budget::Monthly(crate::model::Money::from_amount(25.5)))
    );
    assert_eq!(keys["star"].limits.models, only(&["embed", "small-latest"]));
    assert!(!keys["star"].inherits_models);
    let inherits = &keys["inherits"];
    assert!(inherits.inherits_models);
    assert_eq!(inherits.limits.models, only(&["embed", "small-latest"]));
    assert_eq!(inherits.limits.rpm, Some(30));
}

#[test]
fn a_team_gets_its_role_within_each_workspace_and_without_a_role_the_workspace_s() {
    let runtime = runtime(serde_json::json!({
        "roles": {
            "dev": {"models": ["small-latest", "large-latest"], "max_tokens_per_request": 2000, "daily_token_budget": 500000},
            "admin": {"models": ["*"], "max_tokens_per_request": 8000}
        },
        "teams": {
            "devs": {"members": ["A@acme.example"], "role": "dev", "workspaces": {"small": ["user"], "open": ["user", "dev"]}},
            "admins": {"members": ["b@acme.example"], "role": "admin", "workspaces": {"small": ["user"]}},
            "plain": {"members": ["c@acme.example"], "workspaces": {"small": ["user"]}}
        },
        "workspaces": {
            "small": {"models": ["small-2506"], "rpm": 100},
            "open": {"models": ["*"]}
        }
    }));
    let devs = &runtime.teams["devs"];
    assert_eq!(devs.members, ["a@acme.example".to_owned()].into());
    let small = &devs.workspaces["small"].limits;
    assert_eq!(small.models, only(&["small-latest"]));
    assert_eq!(small.max_tokens_per_request, Some(2000));
    assert_eq!(small.daily_token_budget, Some(500000));
    assert_eq!((small.rpm, small.workspace_rpm), (None, Some(100)));
    assert_eq!(
        devs.workspaces["open"].limits.models,
        only(&["large-latest", "small-latest"])
    );
    assert_eq!(
        devs.workspaces["open"].roles,
        [WorkspaceRole::User, WorkspaceRole::Dev].into()
    );
    let admins = &runtime.teams["admins"].workspaces["small"].limits;
    assert_eq!(
        admins.models,
        only(&["small-2506"]),
        "`*` is what the workspace allows"
    );
    assert_eq!(admins.daily_token_budget, None);
    let plain = &runtime.teams["plain"].workspaces["small"].limits;
    assert_eq!(plain.models, only(&["small-2506"]));
    assert_eq!(plain.max_tokens_per_request, None);
    assert_eq!(runtime.workspaces["small"].teams.len(), 3);
}

#[test]
fn a_member_gets_the_most_generous_of_their_teams_or_the_workspace_s_own() {
    let runtime = runtime(serde_json::json!({
        "members": {
            "A@acme.example": {"name": "A"},
            "b@acme.example": {"name": "B", "roles": ["organization_admin"]}
        },
        "roles": {
            "reader": {"models": ["embed"], "max_tokens_per_request": 500, "daily_token_budget": 1000},
            "writer": {"models": ["small-latest"], "max_tokens_per_request": 4000}
        },
        "teams": {
            "readers": {"members": ["a@acme.example"], "role": "reader", "workspaces": {"w": ["user"]}},
            "writers": {"members": ["a@acme.example"], "role": "writer", "workspaces": {"w": ["dev"]}}
        },
        "workspaces": {"w": {"admin": "b@acme.example", "members": {"a@acme.example": ["billing"]}, "rpm": 10}}
    }));
    let a = &runtime.members["a@acme.example"];
    assert_eq!(a.teams, ["readers".to_owned(), "writers".to_owned()].into());
    let grant = &a.workspaces["w"];
    assert_eq!(grant.roles, Some([WorkspaceRole::Billing].into()));
    assert_eq!(grant.through_teams.len(), 2);
    assert_eq!(grant.limits.models, only(&["embed", "small-latest"]));
    assert_eq!(grant.limits.max_tokens_per_request, Some(4000));
    assert_eq!(
        grant.limits.daily_token_budget, None,
        "one team has no daily cap"
    );
    assert_eq!(grant.limits.workspace_rpm, Some(10));

    let b = &runtime.members["b@acme.example"];
    assert_eq!(b.roles, [OrganizationRole::OrganizationAdmin].into());
    let admin = &b.workspaces["w"];
    assert_eq!(admin.roles, Some([WorkspaceRole::WorkspaceAdmin].into()));
    assert_eq!(admin.limits.models, Models::Every);
    assert_eq!(admin.limits.max_tokens_per_request, None);
}

#[test]
fn the_organization_budget_and_an_empty_policy() {
    let runtime = runtime(serde_json::json!({"organization": {"spend_limit": "unlimited"}}));
    assert_eq!(runtime.organization.spend_limit, Some(Budget::UNLIMITED));
    assert!(!runtime.is_empty());
    let empty = Runtime::of(&DesiredOrg::default(), &catalog());
    assert!(empty.is_empty());
    // It travels in plans: what is written reads back the same.
    let text = serde_json::to_string(&runtime).unwrap();
    assert_eq!(serde_json::from_str::<Runtime>(&text).unwrap(), runtime);
}

#[test]
fn keys_roles_and_teams_carry_the_gateway_s_own_limits_and_guards() {
    let runtime = runtime(serde_json::json!({
        "members": {"a@acme.example": {"name": "A"}, "d@acme.example": {"name": "D"}},
        "roles": {
            "fast": {"models": ["small-latest"], "rpm": 30},
            "slow": {"models": ["embed"], "rpm": 5}
        },
        "teams": {
            "fast": {"members": ["a@acme.example"], "role": "fast", "workspaces": {"w": ["user"]},
                     "spend_guard": {"day": 2}},
            "slow": {"members": ["a@acme.example"], "role": "slow", "workspaces": {"w": ["user"]}},
            "plain": {"members": ["a@acme.example"], "workspaces": {"w": ["user"]},
                      "spend_guard": {"hour": 0.5}}
        },
        "workspaces": {"w": {
            "spend_guard": {"month": 50.5},
            "members": {"d@acme.example": ["user"]},
            "keys": {"ci": {"owner": "a@acme.example", "secret": {"file": "s"}, "rpm": 10,
                            "max_tokens_per_request": 50, "daily_token_budget": 500,
                            "spend_guard": {"hour": 0.25}}}
        }}
    }));
    let scopes = |limits: &Limits| -> Vec<GuardScope> {
        limits
            .spend_guards
            .iter()
            .map(|g| g.scope.clone())
            .collect()
    };
    let workspace = GuardScope::Workspace("w".into());

    let ci = &runtime.key("w", "ci").unwrap().limits;
    assert_eq!(
        (ci.rpm, ci.max_tokens_per_request, ci.daily_token_budget),
        (Some(10), Some(50), Some(500))
    );
    assert_eq!(
        scopes(ci),
        vec![
            workspace.clone(),
            GuardScope::Key("workspace.w.key.ci".into())
        ]
    );

    let fast = &runtime.teams["fast"].workspaces["w"].limits;
    assert_eq!(fast.rpm, Some(30), "a role's rate, per member");
    assert_eq!(
        scopes(fast),
        vec![workspace.clone(), GuardScope::Team("fast".into())]
    );

    // Through two teams with roles the larger rate wins; every team's guard counts, with a
    // role or without.
    let a = runtime.member("A@acme.example", "w").unwrap();
    assert_eq!(a.rpm, Some(30));
    assert_eq!(a.models, only(&["embed", "small-latest"]));
    assert_eq!(
        scopes(&a),
        vec![
            workspace.clone(),
            GuardScope::Team("fast".into()),
            GuardScope::Team("plain".into())
        ]
    );
    // A direct member, and one the workspace does not list, have the workspace's own.
    let d = runtime.member("d@acme.example", "w").unwrap();
    assert_eq!((d.rpm, scopes(&d)), (None, vec![workspace.clone()]));
    assert_eq!(runtime.member("nobody@acme.example", "w").unwrap(), d);
    assert_eq!(runtime.member("d@acme.example", "gone"), None);

    // Older records, without guards or a role's rate, still read.
    let mut old = serde_json::to_value(&runtime).unwrap();
    let text = old.to_string();
    assert!(text.contains("spend_guards"));
    old["workspaces"]["w"]
        .as_object_mut()
        .unwrap()
        .remove("spend_guard");
    for key in old["workspaces"]["w"]["keys"]
        .as_object_mut()
        .unwrap()
        .values_mut()
    {
        key["limits"]
            .as_object_mut()
            .unwrap()
            .remove("spend_guards");
    }
    old["profiles"]["fast"]
        .as_object_mut()
        .unwrap()
        .remove("rpm");
    let read: Runtime = serde_json::from_value(old).unwrap();
    assert!(read.key("w", "ci").unwrap().limits.spend_guards.is_empty());
    assert_eq!(read.profiles["fast"].rpm, None);
}
