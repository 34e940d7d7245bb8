//! The server's front: every request is counted, logged, limited, delayed and faulted here
//! before the routes see it, and every answer leaves with a request id.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::faults::{Fault, judge_server_limit, roll_chaos};
use super::{FakeState, routes};

pub(super) async fn handle(
    State(state): State<Arc<FakeState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let path = uri.path().to_owned();
    let shown = match uri.query() {
        Some(q) => format!("{method} {path}?{q}"),
        None => format!("{method} {path}"),
    };
    state.log.lock().unwrap().push(shown);
    let _serving = Serving::enter(&state);
    // The limit is judged on arrival, and its 429 comes back after the same latency.
    let over_limit = judge_server_limit(&state);
    if !state.latency.is_zero() {
        tokio::time::sleep(state.latency).await;
    }
    if let Some(response) = over_limit {
        return response;
    }
    if path == "/v1/models" {
        return with_request_id(&state, models(&state, &headers));
    }
    let authorized = headers.get("x-api-key").and_then(|v| v.to_str().ok())
        == Some(state.key.as_str())
        || headers.get("authorization").and_then(|v| v.to_str().ok())
            == Some(format!("Bearer {}", state.key).as_str());
    if !authorized {
        return error(StatusCode::UNAUTHORIZED, json!("Unauthorized"));
    }
    let (refusal, mut lose) = roll_chaos(&state, &method, &path);
    if let Some(response) = refusal {
        return with_request_id(&state, response);
    }
    let fault = {
        let mut faults = state.faults.lock().unwrap();
        // `METHOD /path` matches that method only; a bare `/path` any method.
        let call = format!("{method} {path}");
        let position = faults.iter().position(|(prefix, _)| {
            if prefix.starts_with('/') {
                path.starts_with(prefix.as_str())
            } else {
                call.starts_with(prefix.as_str())
            }
        });
        position
            .and_then(|i| faults.remove(i))
            .map(|(_, fault)| fault)
    };
    let mut stall = None;
    match fault {
        Some(Fault::Status {
            status,
            retry_after,
        }) => {
            let mut response = error(
                StatusCode::from_u16(status).unwrap(),
                json!("injected fault"),
            );
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", seconds.to_string().parse().unwrap());
            }
            return response;
        }
        Some(Fault::Html) => {
            return (
                StatusCode::BAD_GATEWAY,
                [("content-type", "text/html")],
                "<html><body>502 Bad Gateway</body></html>",
            )
                .into_response();
        }
        Some(Fault::Stall(duration)) => stall = Some(duration),
        Some(Fault::Lost) => lose = true,
        Some(Fault::Truncated) => {
            return (
                StatusCode::OK,
                [("content-type", "application/json")],
                "{\"members\": [{\"uuid\": \"0000",
            )
                .into_response();
        }
        None => {}
    }
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(value) => value,
            Err(e) => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!([{"loc": ["body"], "msg": e.to_string(), "type": "json_invalid"}]),
                );
            }
        }
    };
    let response = routes::route(&state, &method, &path, &clamped(&state, query(&uri)), &body);
    if let Some(duration) = stall {
        tokio::time::sleep(duration).await;
    }
    if lose && response.status().is_success() {
        state.lost.fetch_add(1, Ordering::SeqCst);
        return with_request_id(
            &state,
            error(StatusCode::BAD_GATEWAY, json!("upstream timed out")),
        );
    }
    with_request_id(&state, response)
}

/// Counts a request as being served until it is answered.
struct Serving<'a>(&'a FakeState);

impl<'a> Serving<'a> {
    fn enter(state: &'a FakeState) -> Serving<'a> {
        state.in_flight.fetch_add(1, Ordering::SeqCst);
        Serving(state)
    }
}

impl Drop for Serving<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Every answer carries an id, as the real API's do, for the audit log.
fn with_request_id(state: &FakeState, mut response: Response) -> Response {
    let id = format!("req-{:06}", state.requests.load(Ordering::SeqCst));
    response
        .headers_mut()
        .insert("x-request-id", id.parse().unwrap());
    response
}

/// The inference API's `GET /v1/models`: open to live keys, by their bearer secret, and to the
/// admin key, which is answered the bundled catalog's list (as `tramontane models diff --org
/// mistral` reads it).
fn models(state: &FakeState, headers: &HeaderMap) -> Response {
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) == Some(state.key.as_str()) {
        return (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            tramontane::policy::catalog::Catalog::bundled_json(),
        )
            .into_response();
    }
    let secret = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let accepted = !state.secrets.reject_all.load(Ordering::SeqCst)
        && secret.is_some_and(|secret| state.org.lock().unwrap().accepts(secret));
    if !accepted {
        return error(StatusCode::UNAUTHORIZED, json!("Unauthorized"));
    }
    axum::Json(
        json!({"object": "list", "data": [{"id": "mistral-small-latest", "object": "model"}]}),
    )
    .into_response()
}

/// The query as the server takes it: `page_size` and `limit` cut to the page clamp.
fn clamped(state: &FakeState, mut q: BTreeMap<String, String>) -> BTreeMap<String, String> {
    if let Some(max) = *state.page_clamp.lock().unwrap() {
        for name in ["page_size", "limit"] {
            if let Some(asked) = q.get(name).and_then(|v| v.parse::<usize>().ok()) {
                q.insert(name.to_owned(), asked.min(max).to_string());
            }
        }
    }
    q
}

pub(super) fn error(status: StatusCode, detail: Value) -> Response {
    (status, axum::Json(json!({ "detail": detail }))).into_response()
}

/// The query's pairs, percent-decoded as a server does (`after=2026-06-01T10%3A00%3A00Z`).
fn query(uri: &Uri) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}
