//! What the gateway metered: per workspace and calendar month (UTC), the requests it settled,
//! their tokens and their cost. Kept beside the limits, in the same store, so that
//! `tramontane audit` can set them against what Mistral billed the workspace: a workspace
//! billed more than its meter has keys used around the gateway, or a price table out of date.
//!
//! Meters only ever grow: one settled request adds to its workspace's month, in one operation.
//! Costs are in integer micro-units of the billing currency, as every amount the gateway
//! counts.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;

use super::StoreError;

/// How long a shared store keeps a month's meters after their last write: past the end of
/// the month after, so last month can still be audited when its bill is final.
pub const METER_RETENTION: Duration = Duration::from_secs(100 * 24 * 3600);

/// One settled request, added to its workspace's monthly meter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeterEntry {
    /// The workspace's policy name.
    pub workspace: String,
    /// `YYYY-MM`, UTC: see [`month_of`].
    pub month: String,
    /// `YYYY-MM-DD`, UTC, within `month`: the day its spend is charted under.
    pub day: String,
    /// The model that answered (or was asked for, when the answer named none).
    pub model: String,
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_micros: u64,
}

impl MeterEntry {
    /// One request settled at `at`.
    pub fn settled(
        workspace: &str,
        model: &str,
        prompt_tokens: u64,
        completion_tokens: u64,
        cost_micros: u64,
        at: Timestamp,
    ) -> MeterEntry {
        MeterEntry {
            workspace: workspace.to_owned(),
            month: month_of(at),
            day: at.to_zoned(jiff::tz::TimeZone::UTC).date().to_string(),
            model: model.to_owned(),
            requests: 1,
            prompt_tokens,
            completion_tokens,
            cost_micros,
        }
    }
}

/// The month a moment falls in, `YYYY-MM` in UTC: the calendar Mistral bills by.
pub fn month_of(at: Timestamp) -> String {
    let date = at.to_zoned(jiff::tz::TimeZone::UTC).date();
    format!("{:04}-{:02}", date.year(), date.month())
}

/// Counts of one meter: a workspace's month, or one model within it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MeterCounts {
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_micros: u64,
}

impl MeterCounts {
    pub(super) fn add(&mut self, entry: &MeterEntry) {
        self.requests = self.requests.saturating_add(entry.requests);
        self.prompt_tokens = self.prompt_tokens.saturating_add(entry.prompt_tokens);
        self.completion_tokens = self
            .completion_tokens
            .saturating_add(entry.completion_tokens);
        self.cost_micros = self.cost_micros.saturating_add(entry.cost_micros);
    }

    /// Sets the counter a store names `field` (`requests`, `prompt_tokens`…); a name this
    /// gateway does not know (written by a newer one) is left out.
    pub(super) fn set(&mut self, field: &str, value: u64) {
        match field {
            "requests" => self.requests = value,
            "prompt_tokens" => self.prompt_tokens = value,
            "completion_tokens" => self.completion_tokens = value,
            "cost_micros" => self.cost_micros = value,
            _ => {}
        }
    }

    /// The counters with the names a store keeps them under.
    pub(super) fn fields(entry: &MeterEntry) -> [(&'static str, u64); 4] {
        [
            ("requests", entry.requests),
            ("prompt_tokens", entry.prompt_tokens),
            ("completion_tokens", entry.completion_tokens),
            ("cost_micros", entry.cost_micros),
        ]
    }
}

/// One workspace's month as metered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meter {
    pub workspace: String,
    /// `YYYY-MM`, UTC.
    pub month: String,
    pub total: MeterCounts,
    /// The same counts per model.
    pub models: BTreeMap<String, MeterCounts>,
    /// Spend (micro-units) per day of the month, `YYYY-MM-DD`: for `tramontane usage`'s chart.
    pub days: BTreeMap<String, u64>,
}

/// Why the meters could not be read back: an audit never goes on without them once asked to
/// compare, since a missing meter would read as spend the gateway never saw.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the gateway's meters from the store at {store}: {}", source.0)]
pub struct MeterReadError {
    /// The store's address and prefix (never a password).
    pub store: String,
    pub source: StoreError,
}

impl MeterReadError {
    pub fn help(&self) -> &'static str {
        "check that the store answers from here, and give the --store address, --store-prefix and password (--store-password-file or TRAMONTANE_STORE_PASSWORD) that `gateway serve` runs with; or leave out --store to audit without comparing"
    }
}
