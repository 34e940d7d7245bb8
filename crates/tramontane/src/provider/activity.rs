//! What the organization did: one month's spend (`GET /v1/admin/usage`) and its audit log
//! (`GET /v1/admin/audit-logs`), read by both providers through the Admin API's shapes, so
//! the sandbox and the HTTP provider price usage and read events by one set of rules.
//!
//! # Pricing
//! The usage answer carries quantities, not amounts: each record sits under a category
//! (`completion`, `ocr`, …), a model and a usage kind, and the answer's `prices` give the
//! unit price of each `billing_metric` and `billing_group` (per `api_zone` and
//! `service_tier`). A record is priced by its own `billing_metric` and `billing_group`
//! (narrowed by its `api_zone` and `service_tier` when it names them), times its quantity:
//! `value_paid` when the record has it (the billed part), else `value`. A record without
//! them, or without a price, is an error naming the call, the category and the model:
//! a spend silently short of the truth would hide the very overrun the audit looks for.
//! Fine-tuning storage is given as bare units without a billing metric and is not priced.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::Value;

use super::ProviderError;
use super::mistral::api::{
    ActorType, AuditLogOut, BasicModelUsageDataJson, PriceData, UsageOutJson, UsageRecord,
};
use crate::model::LiveOrg;
use crate::model::activity::{Activity, ActorKind, MonthSpend, OrgEvent};

/// A source of spend and audit-log events.
pub trait ActivitySource {
    /// The usage answer for `year`-`month`, of one workspace (by id) or the organization.
    fn usage(
        &self,
        year: i16,
        month: i8,
        workspace: Option<&str>,
    ) -> impl Future<Output = Result<UsageOutJson, ProviderError>>;

    /// The audit log's entries after `after` and before `before`, oldest first.
    fn audit_logs(
        &self,
        after: Timestamp,
        before: Timestamp,
    ) -> impl Future<Output = Result<Vec<AuditLogOut>, ProviderError>>;
}

/// The month `now` falls in (UTC), its spend, and the events of the `window_days` before
/// `now`.
pub async fn read_activity<S: ActivitySource>(
    source: &S,
    live: &LiveOrg,
    now: Timestamp,
    window_days: u32,
) -> Result<Activity, ProviderError> {
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let (year, month) = (today.year(), today.month());
    let after = now
        .checked_sub(jiff::SignedDuration::from_hours(
            24 * i64::from(window_days),
        ))
        .unwrap_or(Timestamp::MIN);
    let organization = source.usage(year, month, None);
    let workspaces = super::mistral::join_all(
        live.workspaces
            .values()
            .map(|workspace| async move {
                let usage = source.usage(year, month, Some(&workspace.id)).await?;
                Ok::<_, ProviderError>((workspace.name.clone(), usage))
            })
            .collect(),
    );
    let events = source.audit_logs(after, now);
    let (organization, workspaces, events) = tokio::join!(organization, workspaces, events);
    let organization = organization?;
    let mut spend = MonthSpend {
        year,
        month,
        currency: organization.currency.clone(),
        organization: spend_of(&organization, "GET /v1/admin/usage")?,
        workspaces: BTreeMap::new(),
    };
    for answer in workspaces {
        let (name, usage) = answer?;
        let call = format!("GET /v1/admin/usage (workspace `{name}`)");
        spend.workspaces.insert(name, spend_of(&usage, &call)?);
    }
    let events = events?
        .into_iter()
        .map(|entry| event_of(entry, "GET /v1/admin/audit-logs"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Activity { spend, events })
}

/// The total amount of one usage answer, priced as the module says.
pub fn spend_of(usage: &UsageOutJson, call: &str) -> Result<f64, ProviderError> {
    let prices = usage.prices.as_deref().unwrap_or_default();
    let categories: [(&str, &BasicModelUsageDataJson); 15] = [
        ("completion", &usage.completion),
        ("ocr", &usage.ocr),
        ("connectors", &usage.connectors),
        ("libraries_api.pages", &usage.libraries_api.pages),
        ("libraries_api.tokens", &usage.libraries_api.tokens),
        (
            "libraries_api.audio_seconds",
            &usage.libraries_api.audio_seconds,
        ),
        ("audio", &usage.audio),
        ("audio_characters", &usage.audio_characters),
        ("vibe_code.completion", &usage.vibe_code.completion),
        ("vibe_code.ocr", &usage.vibe_code.ocr),
        ("vibe_code.connectors", &usage.vibe_code.connectors),
        ("vibe_code.audio", &usage.vibe_code.audio),
        (
            "vibe_code.audio_characters",
            &usage.vibe_code.audio_characters,
        ),
        ("chat", &usage.chat),
        (
            "fine_tuning.training",
            &BasicModelUsageDataJson {
                models: usage.fine_tuning.training.clone(),
            },
        ),
    ];
    let mut total = 0.0;
    for (category, data) in categories {
        for (model, kinds) in &data.models {
            for records in kinds.values() {
                for record in records {
                    total +=
                        amount_of(record, prices).map_err(|problem| ProviderError::Unexpected {
                            call: call.to_owned(),
                            problem: format!(
                                "a `{category}` record of model `{}` {problem}",
                                shown(model)
                            ),
                        })?;
                }
            }
        }
    }
    Ok(total)
}

/// One record's amount: its quantity times its unit price.
fn amount_of(record: &UsageRecord, prices: &[PriceData]) -> Result<f64, String> {
    let text = |field: &str| record.get(field).and_then(Value::as_str);
    let metric = text("billing_metric").ok_or("has no `billing_metric` to price it by")?;
    let group = text("billing_group").ok_or("has no `billing_group` to price it by")?;
    let quantity = record
        .get("value_paid")
        .or_else(|| record.get("value"))
        .ok_or("has neither `value_paid` nor `value`")?;
    let quantity = quantity
        .as_f64()
        .filter(|q| q.is_finite())
        .ok_or("has a quantity that is not a number")?;
    let zone = text("api_zone");
    let tier = text("service_tier");
    let matching: Vec<f64> = prices
        .iter()
        .filter(|price| price.billing_metric == metric && price.billing_group == group)
        .filter(|price| zone.is_none_or(|zone| price.api_zone.as_str() == zone))
        .filter(|price| tier.is_none_or(|tier| price.service_tier.as_str() == tier))
        .map(|price| {
            price.price.amount().ok_or_else(|| {
                format!("is priced by a `price` that is not a number ({metric}/{group})")
            })
        })
        .collect::<Result<_, _>>()?;
    let Some(first) = matching.first().copied() else {
        return Err(format!(
            "(billing metric `{}`, group `{}`) has no price in `prices`",
            shown(metric),
            shown(group)
        ));
    };
    if matching.iter().any(|price| *price != first) {
        return Err(format!(
            "(billing metric `{}`, group `{}`) has several different prices and names no zone or tier to choose by",
            shown(metric),
            shown(group)
        ));
    }
    Ok(quantity * first)
}

/// An audit-log entry as the model holds it.
pub fn event_of(entry: AuditLogOut, call: &str) -> Result<OrgEvent, ProviderError> {
    let time = entry
        .created_at
        .parse()
        .map_err(|_| ProviderError::Unexpected {
            call: call.to_owned(),
            problem: format!(
                "entry {} has `created_at` `{}`, not an RFC 3339 time",
                entry.log_id,
                shown(&entry.created_at)
            ),
        })?;
    Ok(OrgEvent {
        id: entry.log_id,
        time,
        actor_kind: match entry.actor_type {
            ActorType::Human => ActorKind::Human,
            ActorType::ApiKey => ActorKind::ApiKey,
            ActorType::Other => ActorKind::Other,
        },
        actor: entry.actor_metadata,
        event_type: entry.event_type.as_str().to_owned(),
        details: entry.event_metadata,
        target_type: entry.target_type.as_str(),
        target: entry.target_metadata,
        workspace_id: entry.workspace_uuid,
    })
}

/// A name from the server, fit for a message: no control characters, not too long.
fn shown(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(records: Value, prices: Value) -> UsageOutJson {
        let empty = serde_json::json!({"models": {}});
        serde_json::from_value(serde_json::json!({
            "completion": {"models": {"mistral-small": {"input": records}}},
            "ocr": empty, "connectors": empty,
            "libraries_api": {"pages": empty, "tokens": empty, "audio_seconds": empty},
            "fine_tuning": {"training": {}, "storage": {"ft:1": 3}},
            "audio": empty, "audio_characters": empty, "vibe_usage": 0,
            "vibe_code": {"completion": empty, "ocr": empty, "connectors": empty, "audio": empty, "audio_characters": empty},
            "chat": empty, "date": "2026-06-01T00:00:00Z", "previous_month": null, "next_month": null,
            "start_date": "2026-06-01T00:00:00Z", "end_date": "2026-06-30T23:59:59Z",
            "currency": "EUR", "currency_symbol": "€", "prices": prices
        }))
        .unwrap()
    }

    fn price(metric: &str, group: &str, zone: &str, price: Value) -> Value {
        serde_json::json!({"event_type": "api_tokens", "billing_metric": metric, "billing_group": group,
            "api_zone": zone, "service_tier": "standard", "price": price})
    }

    #[test]
    fn records_are_priced_by_metric_and_group() {
        let answer = usage(
            serde_json::json!([
                {"billing_metric": "small", "billing_group": "input", "value": 1000},
                {"billing_metric": "small", "billing_group": "output", "value": 10, "value_paid": 4},
            ]),
            serde_json::json!([
                price("small", "input", "global", serde_json::json!("0.002")),
                price("small", "output", "global", serde_json::json!(0.5)),
            ]),
        );
        let total = spend_of(&answer, "GET /v1/admin/usage").unwrap();
        assert!((total - 4.0).abs() < 1e-9, "{total}");
    }

    #[test]
    fn a_record_without_a_price_is_an_error_not_zero() {
        let answer = usage(
            serde_json::json!([{"billing_metric": "large", "billing_group": "input", "value": 1}]),
            serde_json::json!([price("small", "input", "global", serde_json::json!(1))]),
        );
        let error = spend_of(&answer, "GET /v1/admin/usage")
            .unwrap_err()
            .to_string();
        assert!(error.contains("GET /v1/admin/usage"), "{error}");
        assert!(
            error.contains("`completion` record of model `mistral-small`"),
            "{error}"
        );
        assert!(error.contains("no price"), "{error}");
        let answer = usage(serde_json::json!([{"value": 1}]), serde_json::json!([]));
        let error = spend_of(&answer, "call").unwrap_err().to_string();
        assert!(error.contains("no `billing_metric`"), "{error}");
    }

    #[test]
    fn the_zone_chooses_between_prices() {
        let prices = serde_json::json!([
            price("small", "input", "eu", serde_json::json!(1)),
            price("small", "input", "us", serde_json::json!(2)),
        ]);
        let answer = usage(
            serde_json::json!([{"billing_metric": "small", "billing_group": "input", "value": 3, "api_zone": "us"}]),
            prices.clone(),
        );
        assert_eq!(spend_of(&answer, "call").unwrap(), 6.0);
        let answer = usage(
            serde_json::json!([{"billing_metric": "small", "billing_group": "input", "value": 3}]),
            prices,
        );
        let error = spend_of(&answer, "call").unwrap_err().to_string();
        assert!(error.contains("several different prices"), "{error}");
    }
}
