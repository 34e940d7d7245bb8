//! `/audit-logs`: the sandbox's audit log, filtered, sorted and cut to `limit` as the spec
//! describes, as a bare array. The page clamp serves fewer than `limit`; whether `after`
//! includes its own instant is a knob, since the spec does not say.

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
            .map(Some)
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
    // The sandbox's `after` is strict; an inclusive server also serves the instant itself.
    let inclusive = call.state.audit_log_after_inclusive.load(Ordering::SeqCst);
    let after = after.map(|after| {
        if inclusive {
            after - jiff::SignedDuration::from_nanos(1)
        } else {
            after
        }
    });
    let mut entries = org.audit_log_between(after, before);
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
