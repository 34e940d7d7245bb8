//! Key and membership hygiene: what `tramontane audit` reports about the live organization,
//! judged against the policy's thresholds. Each finding has a stable id (rule and address),
//! a severity, the object's address, the policy line that governs it when there is one, and
//! what to do. This module computes and renders; it never prints.
//!
//! Not to be confused with [`crate::apply::audit`], the log of changes an apply made.

pub mod applied;
mod budgets;
mod console;
mod keys;
pub mod locate;
mod members;
pub mod render;
pub mod sarif;
mod unmetered;

use jiff::civil::Date;
use serde::Serialize;

use crate::model::activity::Activity;
use crate::model::{AuditSettings, DesiredOrg, LiveOrg};
pub use applied::{AppliedChange, AppliedLogError, read_applied};
pub use keys::key_address;
pub use locate::{PolicyLocator, SourceRef};
pub use unmetered::{Metering, UnmeteredTolerance};

/// How much a finding matters; `--fail-on` compares against it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// What a finding is about. The ids are part of the output contract: never rename one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Rule {
    #[serde(rename = "key-expired-present")]
    KeyExpiredPresent,
    #[serde(rename = "key-expiring")]
    KeyExpiring,
    #[serde(rename = "key-no-expiry")]
    KeyNoExpiry,
    #[serde(rename = "key-max-age")]
    KeyMaxAge,
    #[serde(rename = "key-unused")]
    KeyUnused,
    #[serde(rename = "key-never-used")]
    KeyNeverUsed,
    #[serde(rename = "key-orphan-creator")]
    KeyOrphanCreator,
    #[serde(rename = "key-unmanaged")]
    KeyUnmanaged,
    #[serde(rename = "member-no-team")]
    MemberNoTeam,
    #[serde(rename = "no-spend-limit")]
    NoSpendLimit,
    #[serde(rename = "budget-threshold")]
    BudgetThreshold,
    #[serde(rename = "budget-forecast")]
    BudgetForecast,
    #[serde(rename = "console-change")]
    ConsoleChange,
    #[serde(rename = "spend-unmetered")]
    SpendUnmetered,
}

impl Rule {
    pub const ALL: [Rule; 14] = [
        Rule::KeyExpiredPresent,
        Rule::KeyExpiring,
        Rule::KeyNoExpiry,
        Rule::KeyMaxAge,
        Rule::KeyUnused,
        Rule::KeyNeverUsed,
        Rule::KeyOrphanCreator,
        Rule::KeyUnmanaged,
        Rule::MemberNoTeam,
        Rule::NoSpendLimit,
        Rule::BudgetThreshold,
        Rule::BudgetForecast,
        Rule::ConsoleChange,
        Rule::SpendUnmetered,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Rule::KeyExpiredPresent => "key-expired-present",
            Rule::KeyExpiring => "key-expiring",
            Rule::KeyNoExpiry => "key-no-expiry",
            Rule::KeyMaxAge => "key-max-age",
            Rule::KeyUnused => "key-unused",
            Rule::KeyNeverUsed => "key-never-used",
            Rule::KeyOrphanCreator => "key-orphan-creator",
            Rule::KeyUnmanaged => "key-unmanaged",
            Rule::MemberNoTeam => "member-no-team",
            Rule::NoSpendLimit => "no-spend-limit",
            Rule::BudgetThreshold => "budget-threshold",
            Rule::BudgetForecast => "budget-forecast",
            Rule::ConsoleChange => "console-change",
            Rule::SpendUnmetered => "spend-unmetered",
        }
    }

    /// The severity a finding of this rule usually has: a workspace without a spend limit
    /// is one lower (the organization's limit still caps it), a budget threshold's rises
    /// with the threshold crossed, and a console change to a workspace's limit (which only
    /// the console can set) is low.
    pub fn severity(self) -> Severity {
        match self {
            // A key whose creator has left, or that never expires, is the kind a leak lives
            // on in: nobody is left to notice, and nothing ends it.
            Rule::KeyOrphanCreator | Rule::KeyNoExpiry => Severity::High,
            Rule::KeyExpiredPresent
            | Rule::KeyExpiring
            | Rule::KeyMaxAge
            | Rule::KeyUnused
            | Rule::KeyNeverUsed
            | Rule::KeyUnmanaged
            | Rule::NoSpendLimit
            | Rule::BudgetThreshold
            | Rule::BudgetForecast
            | Rule::SpendUnmetered
            | Rule::ConsoleChange => Severity::Medium,
            Rule::MemberNoTeam => Severity::Low,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Rule::KeyExpiredPresent => "An expired API key is still present",
            Rule::KeyExpiring => "An API key is close to its expiry",
            Rule::KeyNoExpiry => "An API key never expires",
            Rule::KeyMaxAge => "An API key is older than the maximum age",
            Rule::KeyUnused => "An API key has not been used for a long time",
            Rule::KeyNeverUsed => "An API key was never used",
            Rule::KeyOrphanCreator => "An API key was created by someone no longer a member",
            Rule::KeyUnmanaged => "An API key no policy declares",
            Rule::MemberNoTeam => "A member belongs to no team",
            Rule::NoSpendLimit => "No monthly spend limit",
            Rule::BudgetThreshold => "Spend has crossed a threshold of the monthly limit",
            Rule::BudgetForecast => "Spend is on course to pass the monthly limit",
            Rule::ConsoleChange => "A policy-managed object was changed outside tramontane",
            Rule::SpendUnmetered => "A workspace was billed more than the gateway metered",
        }
    }
}

/// The kind of object a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    ApiKey,
    Member,
    Organization,
    Team,
    Workspace,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    /// `rule:address`, with the key's id after `@` when several live keys share an address:
    /// the same object and problem keeps its id from run to run.
    pub id: String,
    pub rule: Rule,
    pub severity: Severity,
    pub kind: ObjectKind,
    pub address: String,
    /// Whether the policy declares the object.
    pub managed: bool,
    pub message: String,
    /// What to do about it.
    pub remedy: String,
    /// The policy entry that governs the object, when one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceRef>,
}

/// Everything one audit reads.
pub struct AuditInput<'a> {
    pub live: &'a LiveOrg,
    /// The policy, when there is one: without it every key is judged as unmanaged would be,
    /// but none is reported as unmanaged.
    pub desired: Option<&'a DesiredOrg>,
    pub locator: &'a PolicyLocator,
    pub today: Date,
    /// The moment of the audit: month-end forecasts count the days up to it.
    pub now: jiff::Timestamp,
    /// Spend and audit-log events, when they were read: without them, no budget-threshold,
    /// budget-forecast or console-change finding.
    pub activity: Option<&'a Activity>,
    /// The changes tramontane's own apply audit log records, so its own changes are not
    /// reported as console changes.
    pub applied: &'a [AppliedChange],
    /// What the gateway metered in the month of `activity`'s spend, when its store was read:
    /// without it (or without `activity`), no spend-unmetered finding.
    pub metering: Option<Metering<'a>>,
}

impl AuditInput<'_> {
    fn settings(&self) -> AuditSettings {
        self.desired
            .map(|desired| desired.audit.clone())
            .unwrap_or_default()
    }
}

/// The findings of one audit, most severe first, then by address and rule.
#[derive(Clone, Debug, Serialize)]
pub struct AuditReport {
    pub today: Date,
    pub findings: Vec<Finding>,
}

impl AuditReport {
    /// Findings at or above `severity`.
    pub fn at_or_above(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|finding| finding.severity >= severity)
            .count()
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|finding| finding.severity == severity)
            .count()
    }
}

/// Audits the live organization.
pub fn audit(input: &AuditInput<'_>) -> AuditReport {
    let settings = input.settings();
    let mut findings = keys::findings(input, &settings);
    findings.extend(members::findings(input));
    findings.extend(budgets::findings(input, &settings));
    findings.extend(console::findings(input, &settings, input.applied));
    findings.extend(unmetered::findings(input));
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.address.cmp(&b.address))
            .then_with(|| a.rule.cmp(&b.rule))
            .then_with(|| a.id.cmp(&b.id))
    });
    AuditReport {
        today: input.today,
        findings,
    }
}
