//! Findings about spend limits: an organization or workspace with no monthly limit has
//! nothing to stop a leaked key's bill.

use super::{AuditInput, Finding, ObjectKind, Rule};
use crate::model::SpendLimit;

fn unlimited(limit: Option<SpendLimit>) -> bool {
    matches!(limit, None | Some(SpendLimit::Unlimited(_)))
}

pub(super) fn findings(input: &AuditInput<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let live = input.live;
    if unlimited(live.spend_limit) {
        let declared = input
            .desired
            .and_then(|d| d.organization.spend_limit)
            .is_some();
        findings.push(Finding {
            id: format!("{}:organization", Rule::NoSpendLimit.id()),
            rule: Rule::NoSpendLimit,
            severity: Rule::NoSpendLimit.severity(),
            kind: ObjectKind::Organization,
            address: "organization".into(),
            managed: declared,
            message: "the organization has no monthly spend limit".into(),
            remedy:
                "set `organization.spend_limit` to a monthly amount in the policy; apply sets it"
                    .into(),
            source: input.locator.organization_spend_limit(),
        });
    }
    for (name, workspace) in &live.workspaces {
        if !unlimited(workspace.spend_limit) {
            continue;
        }
        let declared = input
            .desired
            .is_some_and(|d| d.workspaces.contains_key(name));
        let address = format!("workspace.{name}");
        findings.push(Finding {
            id: format!("{}:{address}", Rule::NoSpendLimit.id()),
            rule: Rule::NoSpendLimit,
            // The organization's limit still caps it, so less than the organization's own.
            severity: super::Severity::Low,
            kind: ObjectKind::Workspace,
            address,
            managed: declared,
            message: format!("workspace `{name}` has no monthly spend limit"),
            remedy: "set the workspace's limit in the Mistral console (the Admin API cannot), and record it as `spend_limit` in its policy entry so plan shows any drift".into(),
            source: declared
                .then(|| input.locator.workspace(name))
                .flatten(),
        });
    }
    findings
}
