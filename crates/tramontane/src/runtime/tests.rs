//! Effective access from small policies: each inheritance rule on its own.

use super::*;

fn runtime(policy: serde_json::Value) -> Runtime {
    let desired: DesiredOrg = serde_json::from_value(policy).unwrap();
    Runtime::of(&desired, &catalog())
}

/// Two models of two names each, and one of one name.
fn catalog() -> Catalog {
    Catalog::from_json(
        r#"{"object": "list", "data": [
            {"id": "small-2506", "aliases": ["small-latest"]},
            {"id": "large-2411", "aliases": ["large-latest"]},
            {"id": "embed", "aliases": []}]}"#,
    )
    .unwrap()
}

fn only(names: &[&str]) -> Models {
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
    assert_eq!(own.limits.effective_rpm(), Some(60));
    assert!(own.limits.rpm_is_the_workspace_s());
    assert_eq!(
        own.limits.spend_limit,
        Some(Budget::Monthly(crate::model::Cents::from_amount(25.5)))
    );
    assert_eq!(keys["star"].limits.models, only(&["embed", "small-latest"]));
    assert!(!keys["star"].inherits_models);
    let inherits = &keys["inherits"];
    assert!(inherits.inherits_models);
    assert_eq!(inherits.limits.models, only(&["embed", "small-latest"]));
    assert_eq!(inherits.limits.effective_rpm(), Some(30));
    assert!(!inherits.limits.rpm_is_the_workspace_s());
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
