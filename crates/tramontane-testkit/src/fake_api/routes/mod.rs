//! The Admin API's paths, one module per resource kind, each acting on the sandbox org with
//! the sandbox's own operations and answering in the spec's JSON shapes.

mod audit_logs;
mod keys;
mod limits;
mod members;
mod teams;
mod usage;
mod workspaces;

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tramontane::provider::sandbox::{SandboxError, SandboxOrg};
use tramontane::provider::{Operation, Outcome};

use super::FakeState;
pub(super) use super::serve::error;

/// One request to an admin path, as the routes see it.
pub(super) struct Call<'a> {
    pub state: &'a FakeState,
    pub method: &'a Method,
    pub query: &'a BTreeMap<String, String>,
    pub body: &'a Value,
}

impl Call<'_> {
    /// Carries out an operation on the org at the server's fixed `now`.
    fn perform(&self, org: &mut SandboxOrg, operation: Operation) -> Result<Outcome, SandboxError> {
        org.perform(operation, &self.state.now)
    }
}

/// Answers a request to `/v1/admin/...`.
pub(super) fn route(
    state: &FakeState,
    method: &Method,
    path: &str,
    query: &BTreeMap<String, String>,
    body: &Value,
) -> Response {
    let segments: Vec<&str> = path.trim_start_matches("/v1/admin/").split('/').collect();
    let mut org = state.org.lock().unwrap();
    let call = Call {
        state,
        method,
        query,
        body,
    };
    match segments.first().copied() {
        Some("roles" | "users") => members::route(&call, &mut org, &segments),
        Some("workspaces") => workspaces::route(&call, &mut org, &segments),
        Some("user-groups") => teams::route(&call, &mut org, &segments),
        Some("api-keys") => keys::route(&call, &mut org, &segments),
        Some("spend-limit" | "rate-limit") => limits::route(&call, &mut org, &segments),
        Some("usage") => usage::route(&call, &mut org, &segments),
        Some("audit-logs") => audit_logs::route(&call, &mut org, &segments),
        _ => not_found(),
    }
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, json!("Not Found"))
}

/// What the API answers when the org refuses an operation: the status the sandbox names.
fn refused(error: SandboxError) -> Response {
    self::error(
        StatusCode::from_u16(error.status()).unwrap(),
        json!(error.to_string()),
    )
}

/// 200 with `ok` when the operation succeeded.
fn outcome(result: Result<Outcome, SandboxError>, ok: Value) -> Response {
    match result {
        Ok(_) => (StatusCode::OK, axum::Json(ok)).into_response(),
        Err(e) => refused(e),
    }
}

/// 204 when the operation succeeded.
fn no_content(result: Result<Outcome, SandboxError>) -> Response {
    match result {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => refused(e),
    }
}

/// A string field of a JSON object; empty when missing.
fn text(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn page(q: &BTreeMap<String, String>, max: Option<usize>) -> Result<(usize, usize), Box<Response>> {
    let number = |name: &str, default: usize| {
        q.get(name)
            .map_or(Ok(default), |v| v.parse::<usize>().map_err(|_| ()))
    };
    let (Ok(page), Ok(size)) = (number("page", 1), number("page_size", 25)) else {
        return Err(Box::new(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!([{"loc": ["query"], "msg": "not an integer", "type": "int_parsing"}]),
        )));
    };
    if page == 0 || size == 0 || max.is_some_and(|max| size > max) {
        return Err(Box::new(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!([{"loc": ["query", "page_size"], "msg": format!("Input should be less than or equal to {}", max.unwrap_or(0)), "type": "less_than_equal"}]),
        )));
    }
    Ok((page, size))
}

fn slice<T: Clone>(items: &[T], page: usize, size: usize) -> Vec<T> {
    items
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .cloned()
        .collect()
}

fn role_ids(
    map: &BTreeMap<String, String>,
    names: impl IntoIterator<Item = impl AsRef<str>>,
) -> Vec<String> {
    names
        .into_iter()
        .filter_map(|name| map.get(name.as_ref()).cloned())
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}
