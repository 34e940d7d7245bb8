//! `tramontane usage`: for every rule in force, what its counter holds in the current window
//! and what is left, beside what each workspace was metered this month and who used most.
//!
//! The library decides what to read and computes the report; the store is read by the
//! gateway crate (Redis, or a running gateway's in-process store through its admin
//! listener), which hands back plain numbers: [`probes`] names the counters, [`report`] sets
//! what they hold against each rule. A counter holds what was used *or reserved*: a request
//! in flight holds its worst case until it settles, so the report says "used or reserved".

pub mod render;

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::model::Money;
use crate::runtime::{Measure, Rule, RuleScope, Runtime, Window};

/// The version of the JSON report; raised when a field changes meaning or goes away.
pub const FORMAT_VERSION: u32 = 1;

/// A calendar window (UTC) as the gateway names its counters: `2026-11-26T10`, `2026-11-26`,
/// `2026-11`; a requests-a-minute rule slides over the last minute and is named `now`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Period {
    pub name: String,
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Period {
    /// The window of `window` that `now` falls in.
    pub fn of(window: Window, now: Timestamp) -> Period {
        let minute = std::time::Duration::from_secs(60);
        let zoned = now.to_zoned(TimeZone::UTC);
        let date = zoned.date();
        let at = |date: jiff::civil::Date, hour: i8| {
            date.at(hour, 0, 0, 0)
                .to_zoned(TimeZone::UTC)
                .map_or(Timestamp::MAX, |zoned| zoned.timestamp())
        };
        let next_day =
            |date: jiff::civil::Date| date.tomorrow().map_or(Timestamp::MAX, |d| at(d, 0));
        match window {
            Window::Minute => Period {
                name: "now".into(),
                start: now.checked_sub(minute).unwrap_or(now),
                end: now,
            },
            Window::Hour => {
                let start = at(date, zoned.hour());
                Period {
                    name: format!("{date}T{:02}", zoned.hour()),
                    start,
                    end: start
                        .checked_add(jiff::SignedDuration::from_hours(1))
                        .unwrap_or(Timestamp::MAX),
                }
            }
            Window::Day => Period {
                name: date.to_string(),
                start: at(date, 0),
                end: next_day(date),
            },
            Window::Month => Period {
                name: date.first_of_month().strftime("%Y-%m").to_string(),
                start: at(date.first_of_month(), 0),
                end: next_day(date.last_of_month()),
            },
        }
    }
}

/// One counter to read: a rule in force and its key in the current window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    pub rule: Rule,
    pub period: Period,
    /// The rule's store key in the window ([`Rule::store_key`]).
    pub key: String,
    /// A rate (a sliding log of admissions), not a counter.
    pub rate: bool,
}

/// Every rule in force under `runtime`, once each (rules several callers share, such as a
/// workspace's rate or a team's spend guard, by id), with the key it is counted under at
/// `now`. A team's own rate and token budget are left out: the gateway counts them per member
/// (under each member's rule), never under the team.
pub fn probes(runtime: &Runtime, now: Timestamp) -> Vec<Probe> {
    let mut seen = BTreeSet::new();
    let mut probes = Vec::new();
    let callers = runtime
        .callers()
        .into_iter()
        .map(|(caller, limits)| limits.rules(caller.workspace(), &caller.own_scope()));
    // A workload counts its own rules as a service key does, beside its workspace's.
    let workloads = runtime.workloads.iter().filter_map(|(name, workload)| {
        let limits = workload.limits.as_ref()?;
        Some(limits.rules(&workload.workspace, &RuleScope::Workload(name.clone())))
    });
    for rules in callers.chain(workloads) {
        for rule in rules {
            if matches!(rule.scope, RuleScope::Team(_)) && rule.measure != Measure::Spend {
                continue;
            }
            if !seen.insert(rule.id.clone()) {
                continue;
            }
            let period = Period::of(rule.window, now);
            probes.push(Probe {
                key: rule.store_key(&period.name),
                rate: rule.measure == Measure::Requests,
                rule,
                period,
            });
        }
    }
    probes.sort_by(|a, b| a.rule.id.cmp(&b.rule.id));
    probes
}

/// One workspace's month as the gateway metered it, in plain numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metered {
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_micros: u64,
}

/// A workspace's meter for the month: totals, per model, and spend per day (`YYYY-MM-DD`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkspaceMeter {
    pub workspace: String,
    pub total: Metered,
    pub models: BTreeMap<String, Metered>,
    pub days: BTreeMap<String, u64>,
}

/// What was read: each probe's counter by key, and the month's meters.
#[derive(Clone, Debug, Default)]
pub struct Readings {
    pub used: BTreeMap<String, u64>,
    pub meters: Vec<WorkspaceMeter>,
}

/// The report, as every format shows it and `GET /usage` answers it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UsageReport {
    pub format_version: u32,
    /// When it was read (RFC 3339).
    pub at: Timestamp,
    /// The month the meters are for, `YYYY-MM`.
    pub month: String,
    pub rules: Vec<RuleUsage>,
    pub workspaces: Vec<WorkspaceMonth>,
    /// Spend per day of the month up to `at`, every workspace together.
    pub days: Vec<DaySpend>,
    /// Who used most, heaviest first: scopes ranked by their monthly spend counter, then
    /// their daily tokens, then their requests in the last minute.
    pub consumers: Vec<Consumer>,
}

/// One rule in its current window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleUsage {
    pub id: String,
    /// The rule in words ([`Rule`]'s `Display`).
    pub rule: String,
    pub scope: RuleScope,
    pub measure: Measure,
    pub window: Window,
    /// The window's name as the store counts it (`2026-11-26`; `now` for a rate).
    pub window_name: String,
    pub window_start: Timestamp,
    /// Used or reserved in the window (for a rate: requests in the last minute).
    pub used: u64,
    pub limit: u64,
    pub left: u64,
    /// `used` in percent of `limit`, one decimal (100 for a limit of zero).
    pub percent: f64,
}

impl RuleUsage {
    /// An amount of what the rule counts, in words (spend as money).
    pub fn amount(&self, amount: u64) -> String {
        match self.measure {
            Measure::Spend => Money::from_micros(amount).to_string(),
            _ => amount.to_string(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceMonth {
    pub workspace: String,
    pub requests: u64,
    pub tokens: u64,
    pub spend_micros: u64,
    pub models: Vec<ModelMonth>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelMonth {
    pub model: String,
    pub requests: u64,
    pub tokens: u64,
    pub spend_micros: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaySpend {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub spend_micros: u64,
}

/// A team, member, key or workspace and what its rules counted in their current windows;
/// `None` where it has no such rule (team, member and key month-to-date spend is read from
/// their monthly spend guards: the meters are per workspace and model).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consumer {
    pub scope: RuleScope,
    pub spend_month_micros: Option<u64>,
    pub tokens_day: Option<u64>,
    pub requests_minute: Option<u64>,
}

/// The report at `now` from what was read for `probes`; a counter not read (absent in the
/// store) counts as nothing used.
pub fn report(probes: &[Probe], readings: &Readings, now: Timestamp) -> UsageReport {
    let rules: Vec<RuleUsage> = probes
        .iter()
        .map(|probe| {
            let used = readings.used.get(&probe.key).copied().unwrap_or(0);
            let limit = probe.rule.limit;
            RuleUsage {
                id: probe.rule.id.clone(),
                rule: probe.rule.to_string(),
                scope: probe.rule.scope.clone(),
                measure: probe.rule.measure,
                window: probe.rule.window,
                window_name: probe.period.name.clone(),
                window_start: probe.period.start,
                used,
                limit,
                left: limit.saturating_sub(used),
                percent: percent(used, limit),
            }
        })
        .collect();
    let month = Period::of(Window::Month, now).name;
    let mut workspaces: Vec<WorkspaceMonth> = readings
        .meters
        .iter()
        .map(|meter| WorkspaceMonth {
            workspace: meter.workspace.clone(),
            requests: meter.total.requests,
            tokens: meter.total.prompt_tokens + meter.total.completion_tokens,
            spend_micros: meter.total.cost_micros,
            models: meter
                .models
                .iter()
                .map(|(model, counts)| ModelMonth {
                    model: model.clone(),
                    requests: counts.requests,
                    tokens: counts.prompt_tokens + counts.completion_tokens,
                    spend_micros: counts.cost_micros,
                })
                .collect(),
        })
        .collect();
    workspaces.sort_by(|a, b| a.workspace.cmp(&b.workspace));
    UsageReport {
        format_version: FORMAT_VERSION,
        at: now,
        days: days(&readings.meters, now),
        consumers: consumers(&rules),
        month,
        rules,
        workspaces,
    }
}

fn percent(used: u64, limit: u64) -> f64 {
    if limit == 0 {
        return 100.0;
    }
    (used as f64 * 1000.0 / limit as f64).round() / 10.0
}

/// Every day of `now`'s month up to its day, with the spend metered on it.
fn days(meters: &[WorkspaceMeter], now: Timestamp) -> Vec<DaySpend> {
    let today = now.to_zoned(TimeZone::UTC).date();
    let mut spend: BTreeMap<String, u64> = BTreeMap::new();
    for meter in meters {
        for (day, micros) in &meter.days {
            *spend.entry(day.clone()).or_default() += micros;
        }
    }
    (1..=today.day())
        .filter_map(|day| jiff::civil::Date::new(today.year(), today.month(), day).ok())
        .map(|date| {
            let day = date.to_string();
            DaySpend {
                spend_micros: spend.get(&day).copied().unwrap_or(0),
                day,
            }
        })
        .collect()
}

fn consumers(rules: &[RuleUsage]) -> Vec<Consumer> {
    let mut by_scope: BTreeMap<RuleScope, Consumer> = BTreeMap::new();
    for rule in rules {
        let consumer = by_scope
            .entry(rule.scope.clone())
            .or_insert_with(|| Consumer {
                scope: rule.scope.clone(),
                spend_month_micros: None,
                tokens_day: None,
                requests_minute: None,
            });
        let slot = match (rule.measure, rule.window) {
            (Measure::Spend, Window::Month) => &mut consumer.spend_month_micros,
            (Measure::Tokens, Window::Day) => &mut consumer.tokens_day,
            (Measure::Requests, Window::Minute) => &mut consumer.requests_minute,
            _ => continue,
        };
        *slot = Some(slot.unwrap_or(0).max(rule.used));
    }
    let mut consumers: Vec<Consumer> = by_scope
        .into_values()
        .filter(|c| {
            c.spend_month_micros.is_some() || c.tokens_day.is_some() || c.requests_minute.is_some()
        })
        .collect();
    // Heaviest first; ties keep scope order, so the list is stable.
    consumers.sort_by_key(|c| {
        std::cmp::Reverse((
            c.spend_month_micros.unwrap_or(0),
            c.tokens_day.unwrap_or(0),
            c.requests_minute.unwrap_or(0),
        ))
    });
    consumers
}

impl UsageReport {
    /// The report with its `n` heaviest consumers only.
    pub fn top(mut self, n: usize) -> UsageReport {
        self.consumers.truncate(n);
        self
    }
}

#[cfg(test)]
mod tests;
