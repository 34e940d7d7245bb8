//! `/usage`: one month's usage of the organization or of one workspace, from the sandbox's
//! records, in the spec's `UsageOUTJSON`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tramontane::provider::sandbox::SandboxOrg;

use super::{Call, error, not_found, refused};

pub(super) fn route(call: &Call, org: &mut SandboxOrg, segments: &[&str]) -> Response {
    if (call.method.as_str(), segments) != ("GET", &["usage"][..]) {
        return not_found();
    }
    let today: jiff::Timestamp = call
        .state
        .now
        .parse()
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let today = today.to_zoned(jiff::tz::TimeZone::UTC).date();
    let number =
        |name: &str, default: i64, range: std::ops::RangeInclusive<i64>| match call.query.get(name)
        {
            None => Ok(default),
            Some(text) => text
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| Box::new(invalid(name, "not a whole number in range"))),
        };
    let month = match number("month", i64::from(today.month()), 1..=12) {
        Ok(month) => month as i8,
        Err(response) => return *response,
    };
    let year = match number("year", i64::from(today.year()), 1..=9999) {
        Ok(year) => year as i16,
        Err(response) => return *response,
    };
    if let Some(zone) = call.query.get("api_zone")
        && !["global", "us", "eu"].contains(&zone.as_str())
    {
        return invalid("api_zone", "Input should be 'global', 'us' or 'eu'");
    }
    match org.usage_report(
        year,
        month,
        call.query.get("workspace_id").map(String::as_str),
    ) {
        Ok(report) => axum::Json(report).into_response(),
        Err(e) => refused(e),
    }
}

fn invalid(field: &str, message: &str) -> Response {
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!([{"loc": ["query", field], "msg": message, "type": "value_error"}]),
    )
}
