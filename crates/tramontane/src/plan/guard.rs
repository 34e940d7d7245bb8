//! Stage: plan (checked again by apply).
//!
//! Safety guards: changes that need a person to say so explicitly, each with its own flag.
//! The plan lists the guards it trips at their defaults, so a reviewer sees them before
//! apply refuses; apply checks again with the flags it was given.

use std::collections::{BTreeMap, BTreeSet};

use super::{Action, ChangeSpec, Kind, Plan};
use crate::model::{DesiredOrg, LiveOrg};

pub struct GuardOptions {
    /// `--allow-destroy workspace`: deleting (archiving) workspaces is intended.
    pub allow_workspace_destroy: bool,
    /// The largest share of one kind's live objects a plan may delete.
    pub max_delete_ratio: f64,
    /// `--allow-empty`: an empty policy against a populated org is intended.
    pub allow_empty: bool,
}

impl Default for GuardOptions {
    fn default() -> GuardOptions {
        GuardOptions {
            allow_workspace_destroy: false,
            max_delete_ratio: 0.25,
            allow_empty: false,
        }
    }
}

/// A guard a plan trips, with what would let it through.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tripped {
    pub message: String,
    pub flag: String,
}

/// Kinds need at least this many live objects before the delete ratio applies: deleting one
/// of three is not a mass deletion.
const RATIO_MINIMUM: usize = 8;

pub fn check(
    plan: &Plan,
    desired: &DesiredOrg,
    live: &LiveOrg,
    options: &GuardOptions,
) -> Vec<Tripped> {
    let mut tripped = Vec::new();
    let deletes = |kind: Kind| {
        plan.changes
            .iter()
            .filter(move |c| c.kind == kind && c.action == Action::Delete)
    };

    let workspaces: Vec<&str> = deletes(Kind::Workspace)
        .map(|c| c.address.as_str())
        .collect();
    if !workspaces.is_empty() && !options.allow_workspace_destroy {
        tripped.push(Tripped {
            message: format!("the plan deletes (archives) {}", workspaces.join(", ")),
            flag: "--allow-destroy workspace".into(),
        });
    }

    let live_counts: BTreeMap<Kind, usize> = BTreeMap::from([
        (Kind::Member, live.members.len()),
        (Kind::Workspace, live.workspaces.len()),
        (Kind::Team, live.teams.len()),
        (Kind::ApiKey, live.keys.len()),
    ]);
    for (kind, total) in live_counts {
        let count = deletes(kind).count();
        if total >= RATIO_MINIMUM && count as f64 > options.max_delete_ratio * total as f64 {
            tripped.push(Tripped {
                message: format!(
                    "the plan deletes {count} of {total} {}s, more than {:.0} %",
                    kind.as_str().replace('_', " "),
                    options.max_delete_ratio * 100.0
                ),
                flag: format!("--max-delete-ratio {:.2}", count as f64 / total as f64),
            });
        }
    }

    if let Some(minimum) = desired.organization.min_admins {
        let admins = admins_after(plan, live);
        if (admins.len() as u32) < minimum {
            tripped.push(Tripped {
                message: format!(
                    "after this plan the organization would have {} admin(s), fewer than `min_admins: {minimum}`",
                    admins.len()
                ),
                flag: "a policy with more `organization_admin` members".into(),
            });
        }
    }

    let live_is_empty = live.members.len() <= 1
        && live.workspaces.values().all(|w| w.is_default)
        && live.teams.is_empty();
    if desired.is_empty() && !live_is_empty && !options.allow_empty {
        tripped.push(Tripped {
            message:
                "the policy is empty but the organization is not: the wrong --policies directory?"
                    .into(),
            flag: "--allow-empty".into(),
        });
    }
    tripped
}

/// The organization admins once the plan's member changes are made.
fn admins_after(plan: &Plan, live: &LiveOrg) -> BTreeSet<String> {
    let mut admins: BTreeSet<String> = live.admins().into_iter().map(str::to_lowercase).collect();
    let is_admin = |roles: &BTreeSet<String>| roles.contains("organization_admin");
    for change in &plan.changes {
        match &change.spec {
            ChangeSpec::MemberDelete(member) => {
                admins.remove(&member.email.to_lowercase());
            }
            ChangeSpec::MemberCreate(member) if is_admin(&member.roles) => {
                admins.insert(member.email.to_lowercase());
            }
            ChangeSpec::MemberRoles { email, after, .. } => {
                if is_admin(after) {
                    admins.insert(email.to_lowercase());
                } else {
                    admins.remove(&email.to_lowercase());
                }
            }
            _ => {}
        }
    }
    admins
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LiveMember, LiveWorkspace};
    use crate::plan::{PlanInput, PolicyRef, diff};

    fn live() -> LiveOrg {
        let mut live = LiveOrg::default();
        for i in 0..10 {
            let name = format!("ws-{i}");
            live.workspaces.insert(
                name.clone(),
                LiveWorkspace {
                    id: name.clone(),
                    name,
                    description: String::new(),
                    is_default: false,
                    members: Default::default(),
                    spend_limit: None,
                },
            );
        }
        live.members.insert(
            "a@x.example".into(),
            LiveMember {
                id: "a".into(),
                email: "a@x.example".into(),
                name: "A".into(),
                roles: ["organization_admin".to_owned()].into(),
            },
        );
        live
    }

    fn plan(desired: &DesiredOrg, live: &LiveOrg) -> Plan {
        diff(&PlanInput {
            desired,
            live,
            now: "2026-06-01T12:00:00Z".parse().unwrap(),
            org: "t".into(),
            policy: PolicyRef::default(),
        })
    }

    #[test]
    fn each_guard_trips_and_its_flag_lets_it_through() {
        let live = live();
        let mut desired: DesiredOrg = serde_json::from_value(serde_json::json!({
            "members": {"a@x.example": {"name": "A", "roles": ["organization_admin"]}},
            "organization": {"min_admins": 1, "prune": {"workspaces": true}},
            "workspaces": {"ws-0": {"admin": "a@x.example"}, "ws-1": {"admin": "a@x.example"}, "ws-2": {"admin": "a@x.example"}}
        })).unwrap();
        let tripped = check(
            &plan(&desired, &live),
            &desired,
            &live,
            &GuardOptions::default(),
        );
        assert_eq!(tripped.len(), 2, "{tripped:?}");
        assert_eq!(tripped[0].flag, "--allow-destroy workspace");
        assert!(
            tripped[1].message.contains("deletes 7 of 10 workspaces"),
            "{tripped:?}"
        );
        let allowed = GuardOptions {
            allow_workspace_destroy: true,
            max_delete_ratio: 0.7,
            allow_empty: false,
        };
        assert!(check(&plan(&desired, &live), &desired, &live, &allowed).is_empty());

        desired.organization.min_admins = Some(2);
        let tripped = check(&plan(&desired, &live), &desired, &live, &allowed);
        assert!(
            tripped[0].message.contains("fewer than `min_admins: 2`"),
            "{tripped:?}"
        );

        let empty = DesiredOrg::default();
        let tripped = check(
            &plan(&empty, &live),
            &empty,
            &live,
            &GuardOptions::default(),
        );
        assert_eq!(tripped.last().unwrap().flag, "--allow-empty");
    }
}
