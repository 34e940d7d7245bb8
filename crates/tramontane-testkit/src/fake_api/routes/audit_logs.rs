//! `/audit-logs`: the sandbox's audit log, filtered, sorted and cut to `limit` as the spec
//! describes, as a bare array. The page clamp serves fewer than `limit`; whether `after`
//! and `before` include their own instants is a knob, since the spec does not say.
//!
//! Times are kept in microseconds, as the real server (pydantic over Postgres) keeps them:
//! entries are served with their times truncated to the microsecond, and a bound finer
//! than that is truncated before it filters.

use std::sync::atomic::Ordering;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tramontane::provider::sandbox::SandboxOrg;

use super::{Call, error, not_found};

pub(super) fn route(call: &Call, org: &mut SandboxOrg, segments: &[&str]) -> Response {
    if (call.method.as_str(), segments) != ("GET", &["audit-logs"][..]) {
        return not_found();
    }
    let time = |name: &str| match call.query.get(name) {
        None => Ok(None),
        Some(text) => text
            .parse::<jiff::Timestamp>()
            .map(|time| Some(to_micros(time)))
            .map_err(|_| Box::new(invalid(name, "Input should be a valid datetime"))),
    };
    let (after, before) = match (time("after"), time("before")) {
        (Ok(after), Ok(before)) => (after, before),
        (Err(response), _) | (_, Err(response)) => return *response,
    };
    let ascending = match call.query.get("sort").map(String::as_str) {
        None | Some("descending") => false,
        Some("ascending") => true,
        Some(_) => return invalid("sort", "Input should be 'ascending' or 'descending'"),
    };
    let limit = match call.query.get("limit") {
        None => 20,
        Some(text) => match text.parse::<usize>() {
            Ok(limit) if limit > 0 => limit,
            _ => return invalid("limit", "Input should be a valid integer"),
        },
    };
    // The page clamp has already cut `limit` (serve.rs).
    let inclusive = call.state.audit_log_after_inclusive.load(Ordering::SeqCst);
    let mut timed: Vec<(jiff::Timestamp, _)> = org
        .audit_log_between(None, None)
        .into_iter()
        .filter_map(|mut entry| {
            let time = to_micros(entry.created_at.parse::<jiff::Timestamp>().ok()?);
            entry.created_at = time.to_string();
            Some((time, entry))
        })
        .filter(|(time, _)| {
            let after = after.is_none_or(|after| *time > after || (inclusive && *time == after));
            let before =
                before.is_none_or(|before| *time < before || (inclusive && *time == before));
            after && before
        })
        .collect();
    timed.sort_by_key(|(time, entry)| (*time, entry.log_id));
    let mut entries: Vec<_> = timed.into_iter().map(|(_, entry)| entry).collect();
    let wanted = |name: &str| call.query.get(name).map(String::as_str);
    entries.retain(|entry| {
        wanted("actor_type").is_none_or(|want| entry.actor_type.as_str() == want)
            && wanted("event_type").is_none_or(|want| entry.event_type.as_str() == want)
            && wanted("target_type").is_none_or(|want| entry.target_type.as_str() == want)
            && wanted("actor_user_uuid")
                .is_none_or(|want| entry.actor_metadata.values().any(|value| value == want))
    });
    if !ascending {
        entries.reverse();
    }
    entries.truncate(limit);
    axum::Json(entries).into_response()
}

fn invalid(field: &str, message: &str) -> Response {
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!([{"loc": ["query", field], "msg": message, "type": "value_error"}]),
    )
}

/// `time` truncated to the microsecond, as pydantic reads a finer one.
fn to_micros(time: jiff::Timestamp) -> jiff::Timestamp {
    time.round(
        jiff::TimestampRound::new()
            .smallest(jiff::Unit::Microsecond)
            .mode(jiff::RoundMode::Trunc),
    )
    .unwrap_or(time)
}
