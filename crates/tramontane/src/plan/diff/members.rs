//! Organization members: invited, given roles, removed where `prune.members` says so.

use std::collections::{BTreeMap, BTreeSet};

use super::Planner;
use crate::plan::change::RolesSide;
use crate::plan::{Change, ChangeSpec, Kind, MemberSpec};

impl Planner<'_> {
    pub(super) fn members(&mut self) {
        let desired = &self.input.desired;
        let live = &self.input.live;
        let prune = desired.organization.prune.members;
        let wanted: BTreeMap<String, _> = desired
            .members
            .iter()
            .map(|(email, member)| (email.to_lowercase(), (email, member)))
            .collect();
        for (lower, (email, member)) in &wanted {
            let roles: BTreeSet<String> = member
                .roles
                .iter()
                .map(|role| role.as_str().to_owned())
                .collect();
            let address = format!("member.{email}");
            match live.members.get(lower) {
                Some(current) => {
                    if current.name != member.name {
                        self.warnings.push(format!(
                            "`{address}`: the organization knows this person as `{}`, the policy as `{}`; \
                             names belong to the person's own profile and the Admin API cannot change them",
                            current.name, member.name
                        ));
                    }
                    let before = RolesSide {
                        roles: current.roles.clone(),
                    };
                    let after = RolesSide {
                        roles: roles.clone(),
                    };
                    let spec = ChangeSpec::MemberRoles {
                        email: email.to_string(),
                        before: current.roles.clone(),
                        after: roles,
                    };
                    self.update(address, &before, &after, spec);
                }
                None => {
                    if let Some(invite) = live.invites.get(lower) {
                        self.warnings.push(if invite.expired {
                            format!("`{address}` was invited but the invitation expired: invite them again from the console")
                        } else {
                            format!("`{address}` is invited and not a member until they accept; their workspaces and teams follow on the first plan after that")
                        });
                        continue;
                    }
                    let spec = ChangeSpec::MemberCreate(MemberSpec {
                        email: email.to_string(),
                        name: member.name.clone(),
                        roles,
                    });
                    self.push(Change::new(
                        address,
                        "in the policy, not in the organization",
                        spec,
                    ));
                }
            }
        }
        for (lower, current) in &live.members {
            if wanted.contains_key(lower) {
                continue;
            }
            let address = format!("member.{}", current.email);
            let delete = prune.then(|| {
                let spec = ChangeSpec::MemberDelete(MemberSpec {
                    email: current.email.clone(),
                    name: current.name.clone(),
                    roles: current.roles.clone(),
                });
                ("not in the policy, and `prune.members` is on", spec)
            });
            self.not_in_policy(address, Kind::Member, delete, || {
                format!(
                    "{} ({}) is not in the policy",
                    current.name,
                    current.roles.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            });
        }
    }
}
