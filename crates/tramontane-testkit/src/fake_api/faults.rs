//! Misbehaviour on demand: scripted faults, seeded chaos and a server-side request limit.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::FakeState;
use super::serve::error;

/// A scripted misbehaviour for the next request whose path starts with `path`.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status; `retry_after` in seconds for a 429.
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    /// Answer with a body that is not JSON (an HTML error page from a proxy).
    Html,
    /// Do the work, then wait this long before answering: the client's timeout loses it.
    Stall(Duration),
    /// Answer 200 with a body cut off mid-way.
    Truncated,
    /// Do the work, then answer 502: the answer is lost on its way back.
    Lost,
}

/// Random misbehaviour on every request, from a seeded generator so a failing run can be
/// repeated: refusals that did nothing (5xx, 429) and creates whose answer is lost after the
/// work is done.
#[derive(Clone, Copy, Debug)]
pub struct Chaos {
    pub seed: u64,
    /// Share of requests answered 503 without acting.
    pub server_errors: f64,
    /// Share of requests answered 429 (`Retry-After: 0`) without acting.
    pub rate_limited: f64,
    /// Share of creates and deletes carried out and then answered 502, as if the answer
    /// was lost.
    pub lost_writes: f64,
}

/// A server-side request limit, enforced the way a real API's gateway does: a request over
/// it is answered 429 without being acted on (so even a create may be sent again).
#[derive(Clone, Copy, Debug)]
pub struct ServerLimit {
    /// Requests accepted per second on average: a token bucket refilled at this rate.
    pub per_second: f64,
    /// What the bucket holds: how many requests may come at once after a quiet spell.
    pub burst: f64,
    /// Most requests being served at once; `None` for no such limit.
    pub max_in_flight: Option<usize>,
    pub retry_after: RetryAfter,
}

/// What a 429 of the [`ServerLimit`] says about when to come back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryAfter {
    /// No `Retry-After`: the client must guess.
    Absent,
    /// `Retry-After: N` seconds.
    Seconds(u64),
    /// `Retry-After: N` on every other 429, none on the rest.
    Alternating(u64),
}

impl ServerLimit {
    pub fn per_second(per_second: f64, retry_after: RetryAfter) -> ServerLimit {
        ServerLimit {
            per_second,
            burst: per_second / 5.0,
            max_in_flight: None,
            retry_after,
        }
    }
}

/// The limit's state: the bucket's tokens, when it was last refilled, and the 429s sent.
pub(super) struct ServerLimiter {
    pub(super) limit: ServerLimit,
    pub(super) tokens: f64,
    pub(super) refilled: Instant,
}

/// The server-side limit's verdict on a request arriving now: a 429 if it is over.
pub(super) fn judge_server_limit(state: &FakeState) -> Option<Response> {
    let mut limiter = state.server_limit.lock().unwrap();
    let limiter = limiter.as_mut()?;
    let now = Instant::now();
    let limit = limiter.limit;
    limiter.tokens = (limiter.tokens
        + now.duration_since(limiter.refilled).as_secs_f64() * limit.per_second)
        .min(limit.burst.max(1.0));
    limiter.refilled = now;
    let crowded = limit
        .max_in_flight
        .is_some_and(|max| state.in_flight.load(Ordering::SeqCst) > max);
    if !crowded && limiter.tokens >= 1.0 {
        limiter.tokens -= 1.0;
        return None;
    }
    let refused = state.throttled.fetch_add(1, Ordering::SeqCst);
    let mut response = error(StatusCode::TOO_MANY_REQUESTS, json!("Rate limit exceeded"));
    let seconds = match limit.retry_after {
        RetryAfter::Absent => None,
        RetryAfter::Seconds(seconds) => Some(seconds),
        RetryAfter::Alternating(seconds) => refused.is_multiple_of(2).then_some(seconds),
    };
    if let Some(seconds) = seconds {
        response
            .headers_mut()
            .insert("retry-after", seconds.to_string().parse().unwrap());
    }
    Some(response)
}

/// The chaos's verdict on one request: a refusal to send instead, and whether a create's
/// answer is to be lost after the work.
pub(super) fn roll_chaos(
    state: &FakeState,
    method: &Method,
    path: &str,
) -> (Option<Response>, bool) {
    use rand::Rng;
    let mut chaos = state.chaos.lock().unwrap();
    let Some((chaos, rng)) = chaos.as_mut() else {
        return (None, false);
    };
    let roll: f64 = rng.random();
    if roll < chaos.server_errors {
        return (
            Some(error(
                StatusCode::SERVICE_UNAVAILABLE,
                json!("injected 503"),
            )),
            false,
        );
    }
    if roll < chaos.server_errors + chaos.rate_limited {
        let mut response = error(StatusCode::TOO_MANY_REQUESTS, json!("injected 429"));
        response
            .headers_mut()
            .insert("retry-after", "0".parse().unwrap());
        return (Some(response), false);
    }
    let creates = *method == Method::POST
        && ["/users", "/workspaces", "/user-groups", "/api-keys"]
            .iter()
            .any(|end| path.ends_with(end));
    let deletes = *method == Method::DELETE;
    (
        None,
        (creates || deletes) && rng.random::<f64>() < chaos.lost_writes,
    )
}
