//! The demo org behind `--org sandbox:demo`: Acme's organization as the example policies in
//! `policies/` describe it, drifted in every way a plan can show, so one command shows a
//! realistic plan.

use jiff::civil::Date;

use super::{Invite, SandboxOrg, noon};
use crate::model::SpendLimit;
use crate::provider::{Operation, OrganizationLimit, Outcome};

/// Builds the demo org, its dates counted back from `today`.
pub fn demo_org(today: Date) -> SandboxOrg {
    let days_ago = |days: i64| {
        today
            .checked_sub(jiff::Span::new().days(days))
            .unwrap_or(today)
    };
    let mut org = SandboxOrg::new(
        "alice.martin@acme.example",
        "Alice Martin",
        &noon(days_ago(400)),
    );
    let created = |org: &mut SandboxOrg, operation: Operation, when: Date| -> String {
        match org.perform(operation, &noon(when)) {
            Ok(Outcome::Created(id)) | Ok(Outcome::Key { id, .. }) => id,
            // The demo is built from fixed data that the rules accept.
            other => unreachable!("the demo org breaks a sandbox rule: {other:?}"),
        }
    };
    let alice = org
        .users
        .iter()
        .find(|(_, user)| user.email.starts_with("alice"))
        .map(|(id, _)| id.clone())
        .unwrap_or_default();

    let user = |org: &mut SandboxOrg, email: &str, name: &str, role: &str| {
        let (first_name, last_name) = crate::provider::split_name(name);
        created(
            org,
            Operation::CreateUser {
                email: email.into(),
                first_name,
                last_name,
                roles: vec![role.into()],
            },
            days_ago(300),
        )
    };
    let farid = user(
        &mut org,
        "farid.haddad@acme.example",
        "Farid Haddad",
        "organization_admin",
    );
    // Drift: the policy makes Grace a billing manager.
    let grace = user(
        &mut org,
        "grace.okafor@acme.example",
        "Grace Okafor",
        "member",
    );
    let bob = user(&mut org, "bob.stone@acme.example", "Bob Stone", "member");
    let erin = user(&mut org, "erin.walsh@acme.example", "Erin Walsh", "member");
    user(
        &mut org,
        "hugo.lefebvre@acme.example",
        "Hugo Lefebvre",
        "member",
    );
    let carol = user(
        &mut org,
        "carol.nguyen@acme.example",
        "Carol Nguyen",
        "member",
    );
    let dan = user(
        &mut org,
        "dan.kowalski@acme.example",
        "Dan Kowalski",
        "member",
    );
    user(&mut org, "ci-bot@acme.example", "CI Bot", "member");
    // Drift: someone added in the console, in no policy.
    let mallory = user(
        &mut org,
        "mallory.contractor@acme.example",
        "Mallory Contractor",
        "member",
    );
    // Ines is invited and has not accepted yet; Jon is missing altogether.
    let invite = org.id();
    org.invites.insert(
        invite,
        Invite {
            email: "ines.garcia@acme.example".into(),
            roles: ["member".to_owned()].into(),
            created_at: noon(days_ago(2)),
            expired: false,
        },
    );

    let dev = created(
        &mut org,
        Operation::CreateWorkspace {
            name: "dev-workspace".into(),
            // Drift: edited in the console.
            description: "Developers".into(),
            admin: alice.clone(),
        },
        days_ago(300),
    );
    let ml = created(
        &mut org,
        Operation::CreateWorkspace {
            name: "ml-workspace".into(),
            description: "ML engineering and evaluation; every model".into(),
            admin: carol.clone(),
        },
        days_ago(300),
    );
    let members = [
        (dev.clone(), vec![(grace.clone(), vec!["billing"])]),
        (
            ml.clone(),
            vec![
                (
                    farid.clone(),
                    vec!["workspace_admin", "observability_viewer"],
                ),
                (grace.clone(), vec!["billing"]),
            ],
        ),
    ];
    for (workspace, people) in members {
        let members = people
            .into_iter()
            .map(|(user, roles)| (user, roles.into_iter().map(str::to_owned).collect()))
            .collect();
        let _ = org.perform(
            Operation::UpsertWorkspaceMembers { workspace, members },
            &noon(days_ago(300)),
        );
    }
    // Budgets are set in the console; ml-workspace's was raised there (drift).
    if let Some(workspace) = org.workspaces.get_mut(&dev) {
        workspace.spend_limit = Some(SpendLimit::Monthly(50.0));
    }
    if let Some(workspace) = org.workspaces.get_mut(&ml) {
        workspace.spend_limit = Some(SpendLimit::Monthly(800.0));
    }
    // Drift: the organization's budget is lower than the policy's.
    let _ = org.perform(
        Operation::SetSpendLimit {
            limit: OrganizationLimit::Monthly { units: 2500 },
        },
        &noon(today),
    );

    let group = |org: &mut SandboxOrg, name: &str, description: &str| {
        created(
            org,
            Operation::CreateGroup {
                name: name.into(),
                description: description.into(),
            },
            days_ago(300),
        )
    };
    // Drift: Hugo is missing from developers.
    let developers = group(&mut org, "developers", "All developers");
    let ml_engineers = group(&mut org, "ml-engineers", "Machine-learning engineers");
    let contractors = group(&mut org, "contractors", "External contractors");
    let assignments = [
        (
            developers.clone(),
            vec![bob.clone(), erin.clone()],
            vec![(dev.clone(), vec!["user", "dev"])],
        ),
        (
            ml_engineers.clone(),
            vec![carol.clone(), dan.clone()],
            vec![
                (ml.clone(), vec!["user", "dev"]),
                (dev.clone(), vec!["user"]),
            ],
        ),
        (
            contractors,
            vec![mallory.clone()],
            vec![(dev.clone(), vec!["user"])],
        ),
    ];
    for (group, users, workspaces) in assignments {
        let when = noon(days_ago(300));
        let _ = org.perform(
            Operation::AddGroupMembers {
                group: group.clone(),
                users,
            },
            &when,
        );
        for (workspace, roles) in workspaces {
            let roles = roles.into_iter().map(str::to_owned).collect();
            let _ = org.perform(
                Operation::AssignGroupWorkspace {
                    group: group.clone(),
                    workspace,
                    roles,
                },
                &when,
            );
        }
    }

    let plus = |day: Date, days: i64| day.checked_add(jiff::Span::new().days(days)).ok();
    // Inside its 14-day rotation window: created 80 days ago, expiring after 90.
    created(
        &mut org,
        Operation::CreateKey {
            workspace: dev.clone(),
            user: bob,
            name: "ide-completion".into(),
            expiration: plus(days_ago(80), 90),
            known: Vec::new(),
        },
        days_ago(80),
    );
    created(
        &mut org,
        Operation::CreateKey {
            workspace: ml.clone(),
            user: dan,
            name: "eval-harness".into(),
            expiration: plus(days_ago(20), 90),
            known: Vec::new(),
        },
        days_ago(20),
    );
    // Drift: a key made by hand, never expiring, in no policy.
    created(
        &mut org,
        Operation::CreateKey {
            workspace: ml,
            user: mallory,
            name: "old-notebook".into(),
            expiration: None,
            known: Vec::new(),
        },
        days_ago(200),
    );
    org
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_org_is_whole() {
        let org = demo_org("2026-06-01".parse().unwrap());
        let live = org.to_live();
        assert_eq!(live.members.len(), 10);
        assert_eq!(live.invites.len(), 1);
        assert_eq!(live.workspaces.len(), 3);
        assert_eq!(live.teams.len(), 3);
        assert_eq!(live.keys.len(), 3);
        assert_eq!(live.teams["developers"].members.len(), 2);
        assert_eq!(live.workspaces["ml-workspace"].members.len(), 3);
    }
}
