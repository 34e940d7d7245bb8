//! The sandbox's usage and audit log: records kept in the org file and answered in the
//! Admin API's shapes (`UsageOUTJSON`, `AuditLogOut`), so the HTTP provider's pricing and
//! event reading apply to the sandbox unchanged, and the fake Admin API serves the same.
//!
//! Nothing in the sandbox spends money or writes its audit log by itself: tests and demos
//! put records there ([`SandboxOrg::record_usage`], [`SandboxOrg::seed_usage`], or
//! `audit_log` directly), so a run is repeatable.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{SandboxError, SandboxOrg, SandboxProvider};
use crate::provider::ProviderError;
use crate::provider::activity::ActivitySource;
use crate::provider::mistral::api::{
    ApiZone, AuditLogOut, BasicModelUsageDataJson, FineTuningDataJson, LagoEventType,
    LibrariesApiUsageDataJson, PriceData, PriceValue, ServiceTier, UsageOutJson,
    VibeCodeUsageDataJson,
};

/// The model seeded usage is of, and its prices per token (EUR), as the sandbox lists them.
pub const SEED_MODEL: &str = "mistral-small-2506";
pub const SEED_INPUT_PRICE: f64 = 0.000_000_1;
pub const SEED_OUTPUT_PRICE: f64 = 0.000_000_3;

/// Usage records and the prices they are billed at.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SandboxUsage {
    pub prices: Vec<PriceData>,
    pub records: Vec<UsageEntry>,
}

impl SandboxUsage {
    pub fn is_empty(&self) -> bool {
        self.prices.is_empty() && self.records.is_empty()
    }
}

/// One day's use of one model by one workspace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UsageEntry {
    /// The workspace's id.
    pub workspace: String,
    pub day: Date,
    pub model: String,
    /// `input`, `output`…: the usage kind the answer groups records by.
    pub kind: String,
    pub billing_metric: String,
    pub billing_group: String,
    pub value: f64,
}

impl SandboxOrg {
    /// Records `amount` (EUR) of completion use by workspace `workspace` (an id) on `day`, as
    /// input tokens of [`SEED_MODEL`] at its sandbox price.
    pub fn record_usage(&mut self, workspace: &str, day: Date, amount: f64) {
        self.ensure_seed_prices();
        self.usage.records.push(UsageEntry {
            workspace: workspace.to_owned(),
            day,
            model: SEED_MODEL.into(),
            kind: "input".into(),
            billing_metric: SEED_MODEL.into(),
            billing_group: "input".into(),
            value: amount / SEED_INPUT_PRICE,
        });
    }

    /// Deterministic usage from `seed`: every active workspace, every day from the 1st to
    /// `through` of `through`'s month, between half and one and a half `daily_tokens`
    /// input tokens and a third of that in output. One seed gives one org, on any machine.
    pub fn seed_usage(&mut self, seed: u64, through: Date, daily_tokens: u64) {
        self.ensure_seed_prices();
        let mut random = SplitMix64(seed);
        let workspaces: Vec<String> = self
            .workspaces
            .iter()
            .filter(|(_, workspace)| !workspace.archived)
            .map(|(id, _)| id.clone())
            .collect();
        for day in 1..=through.day() {
            let date = through.with().day(day).build().unwrap_or(through);
            for workspace in &workspaces {
                let input = (daily_tokens as f64 * (0.5 + random.unit())).round();
                for (kind, value) in [("input", input), ("output", (input / 3.0).round())] {
                    self.usage.records.push(UsageEntry {
                        workspace: workspace.clone(),
                        day: date,
                        model: SEED_MODEL.into(),
                        kind: kind.into(),
                        billing_metric: SEED_MODEL.into(),
                        billing_group: kind.into(),
                        value,
                    });
                }
            }
        }
    }

    fn ensure_seed_prices(&mut self) {
        for (group, price) in [("input", SEED_INPUT_PRICE), ("output", SEED_OUTPUT_PRICE)] {
            let known =
                self.usage.prices.iter().any(|known| {
                    known.billing_metric == SEED_MODEL && known.billing_group == group
                });
            if !known {
                self.usage.prices.push(PriceData {
                    event_type: Some(LagoEventType::ApiTokens),
                    billing_metric: SEED_MODEL.into(),
                    billing_group: group.into(),
                    api_zone: ApiZone::Global,
                    service_tier: ServiceTier::Standard,
                    price: PriceValue::Number(price),
                });
            }
        }
    }

    /// `GET /v1/admin/usage` for `year`-`month`: of the workspace with id `workspace`, or of
    /// the whole organization.
    pub fn usage_report(
        &self,
        year: i16,
        month: i8,
        workspace: Option<&str>,
    ) -> Result<UsageOutJson, SandboxError> {
        if let Some(id) = workspace
            && !self.workspaces.contains_key(id)
        {
            return Err(SandboxError::NotFound {
                kind: "workspace",
                id: id.to_owned(),
            });
        }
        let start = Date::new(year, month, 1)
            .map_err(|_| SandboxError::Unprocessable(format!("{year}-{month} is not a month")))?;
        let mut completion: BTreeMap<String, BTreeMap<String, Vec<Map<String, Value>>>> =
            BTreeMap::new();
        for entry in &self.usage.records {
            if entry.day.year() != year || entry.day.month() != month {
                continue;
            }
            if workspace.is_some_and(|id| id != entry.workspace) {
                continue;
            }
            let record = json!({
                "billing_metric": entry.billing_metric,
                "billing_group": entry.billing_group,
                "value": entry.value,
                "timestamp": format!("{}T00:00:00Z", entry.day),
                "workspace_id": entry.workspace,
            });
            let Value::Object(record) = record else {
                continue;
            };
            completion
                .entry(entry.model.clone())
                .or_default()
                .entry(entry.kind.clone())
                .or_default()
                .push(record);
        }
        let end = start.last_of_month();
        let neighbour =
            |date: Option<Date>| date.map(|date| format!("{}-{:02}", date.year(), date.month()));
        Ok(UsageOutJson {
            completion: BasicModelUsageDataJson { models: completion },
            ocr: BasicModelUsageDataJson::default(),
            connectors: BasicModelUsageDataJson::default(),
            libraries_api: LibrariesApiUsageDataJson::default(),
            fine_tuning: FineTuningDataJson::default(),
            audio: BasicModelUsageDataJson::default(),
            audio_characters: BasicModelUsageDataJson::default(),
            vibe_usage: 0.0,
            vibe_code: VibeCodeUsageDataJson::default(),
            chat: BasicModelUsageDataJson::default(),
            date: format!("{start}T00:00:00Z"),
            previous_month: neighbour(start.checked_sub(jiff::Span::new().months(1)).ok()),
            next_month: neighbour(start.checked_add(jiff::Span::new().months(1)).ok()),
            start_date: format!("{start}T00:00:00Z"),
            end_date: format!("{end}T23:59:59Z"),
            currency: Some("EUR".into()),
            currency_symbol: Some("€".into()),
            prices: Some(self.usage.prices.clone()),
        })
    }

    /// The audit log's entries created after `after` (strictly) and before `before`, oldest
    /// first.
    pub fn audit_log_between(
        &self,
        after: Option<Timestamp>,
        before: Option<Timestamp>,
    ) -> Vec<AuditLogOut> {
        let mut entries: Vec<(Timestamp, &AuditLogOut)> = self
            .audit_log
            .iter()
            .filter_map(|entry| Some((entry.created_at.parse::<Timestamp>().ok()?, entry)))
            .filter(|(time, _)| after.is_none_or(|after| *time > after))
            .filter(|(time, _)| before.is_none_or(|before| *time < before))
            .collect();
        entries.sort_by_key(|(time, entry)| (*time, entry.log_id));
        entries
            .into_iter()
            .map(|(_, entry)| entry.clone())
            .collect()
    }
}

/// SplitMix64: a generator whose sequence is fixed by its seed on every platform and
/// version, unlike a library's `StdRng`.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl ActivitySource for SandboxProvider {
    async fn usage(
        &self,
        year: i16,
        month: i8,
        workspace: Option<&str>,
    ) -> Result<UsageOutJson, ProviderError> {
        Ok(self.org().usage_report(year, month, workspace)?)
    }

    async fn audit_logs(
        &self,
        after: Timestamp,
        before: Timestamp,
    ) -> Result<Vec<AuditLogOut>, ProviderError> {
        Ok(self.org().audit_log_between(Some(after), Some(before)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::activity::spend_of;

    fn org() -> (SandboxOrg, String) {
        let org = SandboxOrg::new("ada@example.com", "Ada", "2026-06-01T00:00:00Z");
        let id = org.workspaces.keys().next().unwrap().clone();
        (org, id)
    }

    #[test]
    fn recorded_usage_prices_to_its_amount_in_its_month_only() {
        let (mut org, id) = org();
        org.record_usage(&id, "2026-06-03".parse().unwrap(), 12.5);
        org.record_usage(&id, "2026-05-31".parse().unwrap(), 100.0);
        let june = org.usage_report(2026, 6, Some(&id)).unwrap();
        assert!((spend_of(&june, "call").unwrap() - 12.5).abs() < 1e-9);
        let may = org.usage_report(2026, 5, None).unwrap();
        assert!((spend_of(&may, "call").unwrap() - 100.0).abs() < 1e-9);
        assert!(org.usage_report(2026, 6, Some("nope")).is_err());
    }

    #[test]
    fn one_seed_gives_one_usage() {
        let (mut first, _) = org();
        let (mut second, _) = org();
        let day: Date = "2026-06-10".parse().unwrap();
        first.seed_usage(7, day, 1_000_000);
        second.seed_usage(7, day, 1_000_000);
        assert_eq!(first.usage, second.usage);
        let (mut other, _) = org();
        other.seed_usage(8, day, 1_000_000);
        assert_ne!(first.usage, other.usage);
        assert_eq!(first.usage.records.len(), 10 * 2);
        let spend = spend_of(&first.usage_report(2026, 6, None).unwrap(), "call").unwrap();
        // Ten days of 0.5–1.5 M input tokens at 0.1 €/M, and a third as many out at 0.3 €/M.
        assert!((1.0..=3.0).contains(&spend), "{spend}");
    }
}
