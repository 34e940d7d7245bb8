//! Findings about spend: an organization or workspace with no monthly limit has nothing to
//! stop a leaked key's bill; one past a threshold of its limit, or on course to pass the
//! limit by the month's end, is about to be stopped.

use jiff::Timestamp;

use super::{AuditInput, Finding, ObjectKind, Rule, Severity};
use crate::model::{AuditSettings, SpendLimit};

/// Days of a month that must have passed before its spend is projected: a day or two says
/// little about a month.
pub const FORECAST_AFTER_DAYS: f64 = 3.0;

/// Slack for a percentage computed from amounts in floating point: 50 % spent shows as
/// 49.999999… and must still count as 50.
const PERCENT_SLACK: f64 = 1e-9;

fn unlimited(limit: Option<SpendLimit>) -> bool {
    matches!(limit, None | Some(SpendLimit::Unlimited(_)))
}

fn monthly(limit: Option<SpendLimit>) -> Option<f64> {
    match limit {
        Some(SpendLimit::Monthly(amount)) if amount > 0.0 => Some(amount),
        _ => None,
    }
}

pub(super) fn findings(input: &AuditInput<'_>, settings: &AuditSettings) -> Vec<Finding> {
    let mut findings = no_limit(input);
    let Some(activity) = input.activity else {
        return findings;
    };
    let spend = &activity.spend;
    let currency = spend.currency.as_deref().unwrap_or("");
    let declared = input
        .desired
        .and_then(|d| d.organization.spend_limit)
        .is_some();
    let mut objects = vec![Budgeted {
        address: "organization".into(),
        label: "the organization".into(),
        kind: ObjectKind::Organization,
        managed: declared,
        limit: monthly(input.live.spend_limit),
        spent: spend.organization,
        source: input.locator.organization_spend_limit(),
    }];
    for (name, workspace) in &input.live.workspaces {
        let managed = input
            .desired
            .is_some_and(|d| d.workspaces.contains_key(name));
        objects.push(Budgeted {
            address: format!("workspace.{name}"),
            label: format!("workspace `{name}`"),
            kind: ObjectKind::Workspace,
            managed,
            limit: monthly(workspace.spend_limit),
            spent: spend.workspaces.get(name).copied().unwrap_or(0.0),
            source: managed.then(|| input.locator.workspace(name)).flatten(),
        });
    }
    let thresholds = settings.budget_thresholds();
    let elapsed = month_elapsed_days(input.now);
    let days_in_month = f64::from(input.today.days_in_month());
    for object in objects {
        let Some(limit) = object.limit else { continue };
        if let Some(finding) = threshold(&object, limit, &thresholds, currency) {
            findings.push(finding);
        }
        if let Some(finding) = forecast(&object, limit, elapsed, days_in_month, currency) {
            findings.push(finding);
        }
    }
    findings
}

/// An organization or workspace whose spend is judged against its monthly limit.
struct Budgeted {
    address: String,
    label: String,
    kind: ObjectKind,
    managed: bool,
    limit: Option<f64>,
    spent: f64,
    source: Option<super::SourceRef>,
}

/// Days since the start of `now`'s month (UTC), with the fraction of today.
fn month_elapsed_days(now: Timestamp) -> f64 {
    let zoned = now.to_zoned(jiff::tz::TimeZone::UTC);
    let start = zoned
        .date()
        .first_of_month()
        .to_zoned(jiff::tz::TimeZone::UTC);
    match start {
        Ok(start) => now.duration_since(start.timestamp()).as_secs_f64() / 86_400.0,
        Err(_) => 0.0,
    }
}

/// The severity of crossing the `index`-th of `count` thresholds, ascending: the highest is
/// high, the one below medium, any lower low; the limit itself reached is critical.
fn threshold_severity(index: usize, count: usize, percent: f64) -> Severity {
    if percent + PERCENT_SLACK >= 100.0 {
        return Severity::Critical;
    }
    match count - 1 - index {
        0 => Severity::High,
        1 => Severity::Medium,
        _ => Severity::Low,
    }
}

/// An amount as findings show it: to the cent, with the currency when the bill names one.
pub(super) fn money(amount: f64, currency: &str) -> String {
    if currency.is_empty() {
        format!("{amount:.2}")
    } else {
        format!("{amount:.2} {currency}")
    }
}

fn threshold(object: &Budgeted, limit: f64, thresholds: &[u32], currency: &str) -> Option<Finding> {
    let percent = object.spent / limit * 100.0;
    let (index, crossed) = thresholds
        .iter()
        .enumerate()
        .rfind(|(_, threshold)| percent + PERCENT_SLACK >= f64::from(**threshold))?;
    let rule = Rule::BudgetThreshold;
    Some(Finding {
        id: format!("{}:{}", rule.id(), object.address),
        rule,
        severity: threshold_severity(index, thresholds.len(), percent),
        kind: object.kind,
        address: object.address.clone(),
        managed: object.managed,
        message: format!(
            "{} has spent {} this month, {percent:.1} % of its monthly limit of {} (threshold {crossed} %)",
            object.label,
            money(object.spent, currency),
            money(limit, currency)
        ),
        remedy: match object.kind {
            ObjectKind::Organization => "find what drives the spend (the console's usage page); if it is expected, raise `organization.spend_limit` in the policy, else revoke the key behind it (`tramontane revoke`)",
            _ => "find what drives the spend (the console's usage page); if it is expected, raise the workspace's limit in the console (the Admin API cannot) and record it in its policy entry, else revoke the key behind it (`tramontane revoke`)",
        }
        .into(),
        source: object.source.clone(),
    })
}

fn forecast(
    object: &Budgeted,
    limit: f64,
    elapsed: f64,
    days_in_month: f64,
    currency: &str,
) -> Option<Finding> {
    if elapsed < FORECAST_AFTER_DAYS || object.spent >= limit {
        return None;
    }
    let projected = object.spent / elapsed * days_in_month;
    if projected <= limit {
        return None;
    }
    // The day of the month the limit is reached at this pace: after N.x days, day N + 1.
    let reached_on = (limit / (object.spent / elapsed)).floor() + 1.0;
    let rule = Rule::BudgetForecast;
    Some(Finding {
        id: format!("{}:{}", rule.id(), object.address),
        rule,
        severity: rule.severity(),
        kind: object.kind,
        address: object.address.clone(),
        managed: object.managed,
        message: format!(
            "{} has spent {} in {elapsed:.1} days; at that pace the month ends at {}, past its limit of {} (reached about day {reached_on:.0})",
            object.label,
            money(object.spent, currency),
            money(projected, currency),
            money(limit, currency)
        ),
        remedy: "slow the spend or raise the limit before requests are refused: the limit stops every key of it at once".into(),
        source: object.source.clone(),
    })
}

fn no_limit(input: &AuditInput<'_>) -> Vec<Finding> {
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
            severity: Severity::Low,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_rises_with_the_threshold() {
        assert_eq!(threshold_severity(0, 3, 50.0), Severity::Low);
        assert_eq!(threshold_severity(1, 3, 80.0), Severity::Medium);
        assert_eq!(threshold_severity(2, 3, 95.0), Severity::High);
        assert_eq!(threshold_severity(2, 3, 100.0), Severity::Critical);
        assert_eq!(threshold_severity(0, 1, 60.0), Severity::High);
    }

    #[test]
    fn elapsed_days_count_from_the_first_at_midnight_utc() {
        let now: Timestamp = "2026-06-10T12:00:00Z".parse().unwrap();
        assert!((month_elapsed_days(now) - 9.5).abs() < 1e-9);
        let now: Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
        assert_eq!(month_elapsed_days(now), 0.0);
    }
}
