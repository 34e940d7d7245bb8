//! The organization's limits: `/spend-limit` (read and set), `/rate-limit` (read only).

use std::collections::BTreeMap;

use axum::http::Method;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use tramontane::provider::sandbox::SandboxOrg;
use tramontane::provider::{Operation, OrganizationLimit};

use super::{Call, not_found, refused};

pub(super) fn route(call: &Call, org: &mut SandboxOrg, segments: &[&str]) -> Response {
    match (call.method.as_str(), segments) {
        ("GET", ["spend-limit"]) | ("POST", ["spend-limit"]) => {
            if *call.method == Method::POST {
                let limit =
                    if call.body.get("no_monthly_limit").and_then(Value::as_bool) == Some(true) {
                        OrganizationLimit::Unlimited
                    } else {
                        // The API takes `amount` as an integer.
                        OrganizationLimit::Monthly {
                            units: call.body.get("amount").and_then(Value::as_i64).unwrap_or(0),
                        }
                    };
                if let Err(e) = call.perform(org, Operation::SetSpendLimit { limit }) {
                    return refused(e);
                }
            }
            let limit = &org.spend_limit;
            axum::Json(json!({"limits": {"completion": {"no_monthly_limit": limit.no_monthly_limit, "monthly_limit_reached": false,
                "usage": 0.0, "vibe_usage": null, "total_usage": null, "usage_limit": if limit.no_monthly_limit { Value::Null } else { json!(limit.amount) }},
                "last_payment_failure": false, "last_payment_failure_protection": null, "currency": "EUR"}})).into_response()
        }
        ("GET", ["rate-limit"]) => {
            let limits: BTreeMap<&String, Value> = org.rate_limit.tokens_by_model.iter()
                .map(|(m, l)| (m, json!({"tokens_per_minute": l.tokens_per_minute, "tokens_per_month": l.tokens_per_month}))).collect();
            axum::Json(json!({"requests_per_second": org.rate_limit.requests_per_second, "tokens_limits_by_model": limits})).into_response()
        }
        _ => not_found(),
    }
}
