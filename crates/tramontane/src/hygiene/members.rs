//! Findings about members.

use std::collections::BTreeSet;

use super::{AuditInput, Finding, ObjectKind, Rule};

pub(super) fn findings(input: &AuditInput<'_>) -> Vec<Finding> {
    let in_a_team: BTreeSet<&str> = input
        .live
        .teams
        .values()
        .flat_map(|team| team.members.iter().map(String::as_str))
        .collect();
    input
        .live
        .members
        .iter()
        .filter(|(email, _)| !in_a_team.contains(email.as_str()))
        .map(|(email, member)| {
            let address = format!("member.{}", member.email);
            let source = input.locator.member(email);
            let managed = input
                .desired
                .is_some_and(|d| d.members.keys().any(|m| m.eq_ignore_ascii_case(email)));
            Finding {
                id: format!("{}:{address}", Rule::MemberNoTeam.id()),
                rule: Rule::MemberNoTeam,
                severity: Rule::MemberNoTeam.severity(),
                kind: ObjectKind::Member,
                address,
                managed,
                message: format!("member {} belongs to no team", member.email),
                remedy: "add them to a team's `members` in the policy, so their access comes from a role, not from one-off grants".into(),
                source,
            }
        })
        .collect()
}
