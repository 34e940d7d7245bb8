//! Billed against metered: a workspace Mistral billed more than tramontane's gateway metered
//! for the same month. Every request through the gateway is metered at the gateway's prices,
//! so a bill beyond the meter is spend the gateway never saw (a Mistral key used around it)
//! or saw at the wrong price (a price table out of date). Either way the gateway's spend
//! guards promised less than they held.
//!
//! Judged are the workspaces behind the gateway: those the policy gives a `gateway:` block or
//! a gateway key, and any the gateway metered this month. A workspace nothing routes through
//! the gateway is billed without a meter by design and says nothing here.

use std::collections::BTreeSet;

use super::budgets::money;
use super::{AuditInput, Finding, ObjectKind, Rule};
use crate::model::Money;
use crate::model::activity::{MonthMeters, WorkspaceMeter};

/// How far a bill may run past its meter before it is a finding: a share of the bill, and
/// never less than one unit of the currency. Rounding, usage billed a little after its month
/// and requests settled at their estimate all leave small, honest gaps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UnmeteredTolerance {
    /// Percent of the billed amount, 0 to 100.
    pub percent: f64,
}

impl UnmeteredTolerance {
    pub const DEFAULT_PERCENT: f64 = 5.0;
    /// The least tolerance, whatever the percentage: one unit of the currency.
    pub const FLOOR: Money = Money::units(1);

    /// The gap allowed on a bill of `billed`.
    pub fn of(self, billed: Money) -> Money {
        let share = billed.as_f64() * self.percent.clamp(0.0, 100.0) / 100.0;
        Money::from_amount(share).max(UnmeteredTolerance::FLOOR)
    }
}

impl Default for UnmeteredTolerance {
    fn default() -> UnmeteredTolerance {
        UnmeteredTolerance {
            percent: UnmeteredTolerance::DEFAULT_PERCENT,
        }
    }
}

/// The gateway's meters and how far a bill may pass them.
#[derive(Clone, Copy, Debug)]
pub struct Metering<'a> {
    pub meters: &'a MonthMeters,
    pub tolerance: UnmeteredTolerance,
}

pub(super) fn findings(input: &AuditInput<'_>) -> Vec<Finding> {
    let (Some(metering), Some(activity)) = (input.metering, input.activity) else {
        return Vec::new();
    };
    let spend = &activity.spend;
    let meters = metering.meters;
    // Meters of another month than the bill say nothing about it.
    if (meters.year, meters.month) != (spend.year, spend.month) {
        return Vec::new();
    }
    let currency = spend.currency.as_deref().unwrap_or("");
    let mut behind: BTreeSet<&str> = meters.workspaces.keys().map(String::as_str).collect();
    if let Some(desired) = input.desired {
        behind.extend(
            desired
                .workspaces
                .iter()
                .filter(|(_, workspace)| workspace.gateway.is_some())
                .map(|(name, _)| name.as_str()),
        );
        behind.extend(
            desired
                .gateway_keys
                .values()
                .map(|key| key.workspace.as_str()),
        );
    }
    let unmetered = WorkspaceMeter::default();
    let mut findings = Vec::new();
    for name in behind {
        // A workspace the bill does not name (archived, or not in this organization).
        let Some(billed) = spend.workspaces.get(name) else {
            continue;
        };
        let billed = Money::from_amount(*billed);
        let meter = meters.workspaces.get(name).unwrap_or(&unmetered);
        let gap = billed.saturating_sub(meter.cost);
        let tolerance = metering.tolerance.of(billed);
        if gap <= tolerance {
            continue;
        }
        let managed = input
            .desired
            .is_some_and(|desired| desired.workspaces.contains_key(name));
        let address = format!("workspace.{name}");
        let rule = Rule::SpendUnmetered;
        let metered = if meter.requests == 0 {
            "nothing".to_owned()
        } else {
            format!(
                "{} ({} requests, {} tokens)",
                money(meter.cost.as_f64(), currency),
                meter.requests,
                meter.tokens()
            )
        };
        findings.push(Finding {
            id: format!("{}:{address}", rule.id()),
            rule,
            severity: rule.severity(),
            kind: ObjectKind::Workspace,
            address,
            managed,
            message: format!(
                "workspace `{name}` was billed {} for {}-{:02}, but the gateway's store at {} metered {metered}: {} unmetered, more than the tolerance of {}",
                money(billed.as_f64(), currency),
                spend.year,
                spend.month,
                meters.store,
                money(gap.as_f64(), currency),
                money(tolerance.as_f64(), currency),
            ),
            remedy: "either a Mistral key of the workspace was used around the gateway: find it among the key findings (`last_used` of keys the gateway does not forward with) and revoke it (`tramontane revoke`); or the gateway's prices are out of date: compare the bundled records with Mistral's live model list (`tramontane models diff`) and declare newer models and negotiated prices in the policy's `models:` section".into(),
            source: managed.then(|| input.locator.workspace(name)).flatten(),
        });
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tolerance_is_a_share_of_the_bill_and_at_least_one_unit() {
        let default = UnmeteredTolerance::default();
        assert_eq!(default.of(Money::units(100)), Money::units(5));
        assert_eq!(default.of(Money::units(10)), Money::units(1));
        assert_eq!(default.of(Money::ZERO), Money::units(1));
        let tight = UnmeteredTolerance { percent: 0.0 };
        assert_eq!(tight.of(Money::units(1000)), Money::units(1));
        let loose = UnmeteredTolerance { percent: 250.0 };
        assert_eq!(loose.of(Money::units(40)), Money::units(40));
    }
}
