//! A fake Mistral Admin API on loopback: the sandbox org served over HTTP in the spec's JSON
//! shapes, with injectable latency and faults. The HTTP provider is tested and benchmarked
//! against it, so it keeps the same rules as the sandbox provider.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tramontane::model::SpendLimit;
use tramontane::provider::sandbox::{SandboxOrg, noon};
use tramontane::provider::{Operation, OrganizationLimit, Outcome};

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
struct ServerLimiter {
    limit: ServerLimit,
    tokens: f64,
    refilled: Instant,
}

pub struct FakeState {
    /// The server-side limit, if one is set, and how many requests it refused.
    server_limit: Mutex<Option<ServerLimiter>>,
    pub throttled: AtomicU64,
    in_flight: AtomicUsize,
    pub org: Mutex<SandboxOrg>,
    pub chaos: Mutex<Option<(Chaos, rand::rngs::StdRng)>>,
    pub lost: AtomicU64,
    pub key: String,
    pub latency: Duration,
    pub faults: Mutex<VecDeque<(String, Fault)>>,
    pub requests: AtomicU64,
    pub log: Mutex<Vec<String>>,
    pub now: String,
    pub secrets: SecretKnobs,
    /// Paging as a server may do it: the most items served on one page, whatever
    /// `page_size` or `limit` asked (the echoed `page_size` says what was served).
    pub page_clamp: Mutex<Option<usize>>,
}

/// Knobs for the moments a key's secret is in play: the create's answer, and the inference
/// API's `GET /v1/models`, which answers 200 for a live key's secret and 401 otherwise.
#[derive(Default)]
pub struct SecretKnobs {
    /// Creates answer without `key`: the key is made, its secret never shown.
    pub without_key: AtomicBool,
    /// Creates answer with a `key_id` of the wrong type beside the real `key`.
    pub malformed: AtomicBool,
    /// The secrets handed out in malformed answers, for tests to look for.
    pub handed_out: Mutex<Vec<String>>,
    /// `GET /v1/models` refuses every key, live or not.
    pub reject_all: AtomicBool,
}

pub struct FakeApi {
    pub url: String,
    pub state: Arc<FakeState>,
    _runtime: tokio::runtime::Runtime,
}

impl FakeApi {
    /// Serves `org` on a free loopback port from a runtime of its own, so tests that run
    /// the binary synchronously can use it.
    pub fn start(org: SandboxOrg, key: &str, latency: Duration, today: &str) -> FakeApi {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let state = Arc::new(FakeState {
            server_limit: Mutex::new(None),
            throttled: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            org: Mutex::new(org),
            chaos: Mutex::new(None),
            lost: AtomicU64::new(0),
            key: key.to_owned(),
            latency,
            faults: Mutex::new(VecDeque::new()),
            requests: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
            now: noon(today.parse().expect("a date")),
            secrets: SecretKnobs::default(),
            page_clamp: Mutex::new(None),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(SocketAddr::from((
                [127, 0, 0, 1],
                0,
            ))))
            .expect("a loopback port");
        let address = listener.local_addr().expect("an address");
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeApi {
            url: format!("http://{address}"),
            state,
            _runtime: runtime,
        }
    }

    pub fn fail_next(&self, path: &str, fault: Fault) {
        self.state
            .faults
            .lock()
            .unwrap()
            .push_back((path.to_owned(), fault));
    }

    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Enforces a server-side request limit from now on (`None`: no limit), its bucket full.
    pub fn set_server_limit(&self, limit: Option<ServerLimit>) {
        *self.state.server_limit.lock().unwrap() = limit.map(|limit| ServerLimiter {
            limit,
            tokens: limit.burst.max(1.0),
            refilled: Instant::now(),
        });
    }

    /// Requests the server-side limit refused with a 429.
    pub fn throttled(&self) -> u64 {
        self.state.throttled.load(Ordering::SeqCst)
    }

    /// Misbehaves at random from now on (`None`: behaves again).
    pub fn set_chaos(&self, chaos: Option<Chaos>) {
        use rand::SeedableRng;
        *self.state.chaos.lock().unwrap() =
            chaos.map(|chaos| (chaos, rand::rngs::StdRng::seed_from_u64(chaos.seed)));
    }

    /// Creates and deletes carried out whose answer the chaos dropped.
    pub fn lost_writes(&self) -> u64 {
        self.state.lost.load(Ordering::SeqCst)
    }

    pub fn log(&self) -> Vec<String> {
        self.state.log.lock().unwrap().clone()
    }

    pub fn org(&self) -> SandboxOrg {
        self.state.org.lock().unwrap().clone()
    }

    /// Key creates answer without `key` from now on (`false`: with it again).
    pub fn answer_creates_without_key(&self, on: bool) {
        self.state.secrets.without_key.store(on, Ordering::SeqCst);
    }

    /// Key creates answer with a body that does not parse, the secret inside.
    pub fn answer_creates_malformed(&self, on: bool) {
        self.state.secrets.malformed.store(on, Ordering::SeqCst);
    }

    /// The secrets the malformed answers carried.
    pub fn secrets_handed_out(&self) -> Vec<String> {
        self.state.secrets.handed_out.lock().unwrap().clone()
    }

    /// `GET /v1/models` refuses every key from now on: no new key can be shown to work.
    pub fn reject_keys_on_models(&self, on: bool) {
        self.state.secrets.reject_all.store(on, Ordering::SeqCst);
    }

    // ---- paging knobs

    /// Serves at most `max` items a page from now on (`None`: as many as asked).
    pub fn clamp_pages(&self, max: Option<usize>) {
        *self.state.page_clamp.lock().unwrap() = max;
    }
}

/// The inference API's `GET /v1/models`: open to live keys, by their bearer secret.
fn models(state: &FakeState, headers: &HeaderMap) -> Response {
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

fn error(status: StatusCode, detail: Value) -> Response {
    (status, axum::Json(json!({ "detail": detail }))).into_response()
}

fn query(uri: &Uri) -> BTreeMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

async fn handle(
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
    let response = route(&state, &method, &path, &clamped(&state, query(&uri)), &body);
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

/// The server-side limit's verdict on a request arriving now: a 429 if it is over.
fn judge_server_limit(state: &FakeState) -> Option<Response> {
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

/// Every answer carries an id, as the real API's do, for the audit log.
fn with_request_id(state: &FakeState, mut response: Response) -> Response {
    let id = format!("req-{:06}", state.requests.load(Ordering::SeqCst));
    response
        .headers_mut()
        .insert("x-request-id", id.parse().unwrap());
    response
}

/// The chaos's verdict on one request: a refusal to send instead, and whether a create's
/// answer is to be lost after the work.
fn roll_chaos(state: &FakeState, method: &Method, path: &str) -> (Option<Response>, bool) {
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

fn workspace_json(id: &str, org: &SandboxOrg) -> Value {
    let workspace = &org.workspaces[id];
    let spend_limit = workspace.spend_limit.map(|limit| match limit {
        SpendLimit::Monthly(value) => {
            json!({"value": value, "currency": "EUR", "no_monthly_limit": false})
        }
        SpendLimit::Unlimited(_) => {
            json!({"value": null, "currency": "EUR", "no_monthly_limit": true})
        }
    });
    json!({"uuid": id, "name": workspace.name, "description": workspace.description, "icon": "",
           "members_count": workspace.members.len(), "spend_limit": spend_limit, "is_default": workspace.is_default})
}

fn group_json(id: &str, org: &SandboxOrg) -> Value {
    let group = &org.groups[id];
    json!({"uuid": id, "name": group.name, "description": group.description, "externally_managed": false,
           "target_type": null, "organization_role": group.organization_role.as_ref().map(|r| org.roles.organization.get(r).cloned().unwrap_or_default()),
           "parent_group_ids": []})
}

fn member_json(id: &str, org: &SandboxOrg) -> Value {
    let user = &org.users[id];
    let workspaces: Vec<Value> = org
        .workspaces
        .iter()
        .filter(|(_, w)| !w.archived)
        .filter_map(|(wid, w)| {
            let roles = role_ids(&org.roles.workspace, w.members.get(id)?);
            Some(json!({"uuid": wid, "name": w.name, "is_default": w.is_default, "raw_role": roles.first(), "raw_roles": roles}))
        })
        .collect();
    let roles = role_ids(&org.roles.organization, &user.roles);
    json!({"uuid": id, "oid_id": null, "name": user.name(), "email": user.email, "is_sso_outsider": false,
           "workspaces": workspaces, "subscriptions": [], "raw_roles": roles, "raw_role": roles.first(),
           "subscription_types": null, "created_at": user.created_at})
}

fn route(
    state: &FakeState,
    method: &Method,
    path: &str,
    q: &BTreeMap<String, String>,
    body: &Value,
) -> Response {
    let segments: Vec<&str> = path.trim_start_matches("/v1/admin/").split('/').collect();
    let mut org = state.org.lock().unwrap();
    let perform = |org: &mut SandboxOrg, operation: Operation| org.perform(operation, &state.now);
    let outcome = |result: Result<Outcome, tramontane::provider::sandbox::SandboxError>,
                   ok: Value|
     -> Response {
        match result {
            Ok(_) => (StatusCode::OK, axum::Json(ok)).into_response(),
            Err(e) => error(
                StatusCode::from_u16(e.status()).unwrap(),
                json!(e.to_string()),
            ),
        }
    };
    let no_content =
        |result: Result<Outcome, tramontane::provider::sandbox::SandboxError>| -> Response {
            match result {
                Ok(_) => StatusCode::NO_CONTENT.into_response(),
                Err(e) => error(
                    StatusCode::from_u16(e.status()).unwrap(),
                    json!(e.to_string()),
                ),
            }
        };
    let s = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["roles"]) => {
            let list = |map: &BTreeMap<String, String>| -> Vec<Value> {
                map.iter().map(|(name, uuid)| json!({"name": name, "uuid": uuid, "description": "", "is_custom_role": false})).collect()
            };
            axum::Json(json!({"workspace_roles": list(&org.roles.workspace), "organization_roles": list(&org.roles.organization)})).into_response()
        }
        ("GET", ["users"]) => {
            let (page, size) = match page(q, None) {
                Ok(p) => p,
                Err(r) => return *r,
            };
            let mut items: Vec<(bool, String)> =
                org.users.keys().map(|id| (true, id.clone())).collect();
            items.extend(org.invites.keys().map(|id| (false, id.clone())));
            let total = items.len();
            let mut members = Vec::new();
            let mut invites = Vec::new();
            for (is_member, id) in slice(&items, page, size) {
                if is_member {
                    members.push(member_json(&id, &org));
                } else {
                    let invite = &org.invites[&id];
                    let roles = role_ids(&org.roles.organization, &invite.roles);
                    invites.push(json!({"uuid": id, "raw_roles": roles, "raw_role": roles.first(), "email": invite.email,
                                        "expired": invite.expired, "created_at": invite.created_at, "workspace_uuids": []}));
                }
            }
            axum::Json(json!({"members": members, "invites": invites, "total": total, "page": page, "page_size": size})).into_response()
        }
        ("POST", ["users"]) => {
            let mut map = serde_json::Map::new();
            for person in body.as_array().into_iter().flatten() {
                let result = perform(
                    &mut org,
                    Operation::CreateUser {
                        email: s(person, "email"),
                        first_name: s(person, "first_name"),
                        last_name: s(person, "last_name"),
                        roles: strings(&person["role_names"]),
                    },
                );
                match result {
                    Ok(Outcome::Created(id)) => {
                        map.insert(s(person, "email"), json!(id));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        return error(
                            StatusCode::from_u16(e.status()).unwrap(),
                            json!(e.to_string()),
                        );
                    }
                }
            }
            axum::Json(json!({"invalid_emails": [], "email_to_user_id": map})).into_response()
        }
        ("PATCH", ["users", id]) => {
            let result = perform(
                &mut org,
                Operation::SetUserRoles {
                    user: (*id).into(),
                    roles: strings(&body["role_names"]),
                },
            );
            match result {
                Ok(_) => axum::Json(member_json(id, &org)).into_response(),
                Err(e) => error(
                    StatusCode::from_u16(e.status()).unwrap(),
                    json!(e.to_string()),
                ),
            }
        }
        ("DELETE", ["users", id]) => outcome(
            perform(&mut org, Operation::DeleteUser { user: (*id).into() }),
            json!({"message": "deleted"}),
        ),
        ("GET", ["workspaces"]) => {
            let (page, size) = match page(q, None) {
                Ok(p) => p,
                Err(r) => return *r,
            };
            let archived = q.get("is_archived").is_some_and(|v| v == "true");
            let ids: Vec<String> = org
                .workspaces
                .iter()
                .filter(|(_, w)| w.archived == archived)
                .map(|(id, _)| id.clone())
                .collect();
            let items: Vec<Value> = slice(&ids, page, size)
                .iter()
                .map(|id| workspace_json(id, &org))
                .collect();
            axum::Json(json!({"total": ids.len(), "items": items, "object": "list", "page": page, "page_size": size})).into_response()
        }
        ("POST", ["workspaces"]) => {
            match perform(
                &mut org,
                Operation::CreateWorkspace {
                    name: s(body, "name"),
                    description: s(body, "description"),
                    admin: s(body, "admin_user_id"),
                },
            ) {
                Ok(Outcome::Created(id)) => {
                    let mut out = workspace_json(&id, &org);
                    out["raw_roles"] = json!([]);
                    out["raw_role"] = json!("A");
                    axum::Json(out).into_response()
                }
                Ok(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                Err(e) => error(
                    StatusCode::from_u16(e.status()).unwrap(),
                    json!(e.to_string()),
                ),
            }
        }
        ("PATCH", ["workspaces", id]) => {
            let result = perform(
                &mut org,
                Operation::SetWorkspaceDescription {
                    workspace: (*id).into(),
                    description: s(body, "description"),
                },
            );
            match result {
                Ok(_) => axum::Json(workspace_json(id, &org)).into_response(),
                Err(e) => error(
                    StatusCode::from_u16(e.status()).unwrap(),
                    json!(e.to_string()),
                ),
            }
        }
        ("DELETE", ["workspaces", id]) => no_content(perform(
            &mut org,
            Operation::ArchiveWorkspace {
                workspace: (*id).into(),
            },
        )),
        ("PATCH", ["workspaces", id, "users"]) | ("POST", ["workspaces", id, "add-users"]) => {
            let members: Vec<(String, Vec<String>)> = body["members"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| (s(m, "user_uuid"), strings(&m["role_names"])))
                .collect();
            let count = members.len();
            outcome(
                perform(
                    &mut org,
                    Operation::UpsertWorkspaceMembers {
                        workspace: (*id).into(),
                        members,
                    },
                ),
                json!({"added_members_count": count, "updated_members_count": 0}),
            )
        }
        ("DELETE", ["workspaces", id, "remove-users"]) => {
            let users: Vec<String> = body["members"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| s(m, "user_uuid"))
                .collect();
            let count = users.len();
            outcome(
                perform(
                    &mut org,
                    Operation::RemoveWorkspaceMembers {
                        workspace: (*id).into(),
                        users,
                    },
                ),
                json!({"deleted_members_count": count, "not_deleted_members": []}),
            )
        }
        ("GET", ["user-groups"]) => {
            let (page, size) = match page(q, Some(100)) {
                Ok(p) => p,
                Err(r) => return *r,
            };
            let ids: Vec<String> = org.groups.keys().cloned().collect();
            let items: Vec<Value> = slice(&ids, page, size)
                .iter()
                .map(|id| group_json(id, &org))
                .collect();
            axum::Json(json!({"total": ids.len(), "items": items, "page": page, "page_size": size}))
                .into_response()
        }
        ("POST", ["user-groups"]) => match perform(
            &mut org,
            Operation::CreateGroup {
                name: s(body, "name"),
                description: s(body, "description"),
            },
        ) {
            Ok(Outcome::Created(id)) => axum::Json(group_json(&id, &org)).into_response(),
            Ok(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            Err(e) => error(
                StatusCode::from_u16(e.status()).unwrap(),
                json!(e.to_string()),
            ),
        },
        ("PATCH", ["user-groups", id]) => {
            let result = perform(
                &mut org,
                Operation::SetGroupDescription {
                    group: (*id).into(),
                    description: s(body, "description"),
                },
            );
            match result {
                Ok(_) => axum::Json(group_json(id, &org)).into_response(),
                Err(e) => error(
                    StatusCode::from_u16(e.status()).unwrap(),
                    json!(e.to_string()),
                ),
            }
        }
        ("DELETE", ["user-groups", id]) => no_content(perform(
            &mut org,
            Operation::DeleteGroup {
                group: (*id).into(),
            },
        )),
        ("GET", ["user-groups", id, "members"]) => {
            let (page, size) = match page(q, None) {
                Ok(p) => p,
                Err(r) => return *r,
            };
            let Some(group) = org.groups.get(*id) else {
                return error(StatusCode::NOT_FOUND, json!("no such group"));
            };
            let ids: Vec<String> = group.members.iter().cloned().collect();
            let members: Vec<Value> = slice(&ids, page, size)
                .iter()
                .filter_map(|uid| {
                    let user = org.users.get(uid)?;
                    Some(json!({"user_uuid": uid, "name": user.name(), "email": user.email}))
                })
                .collect();
            axum::Json(
                json!({"total": ids.len(), "members": members, "page": page, "page_size": size}),
            )
            .into_response()
        }
        ("POST", ["user-groups", id, "members"]) => no_content(perform(
            &mut org,
            Operation::AddGroupMembers {
                group: (*id).into(),
                users: strings(&body["user_uuids"]),
            },
        )),
        ("DELETE", ["user-groups", id, "members"]) => no_content(perform(
            &mut org,
            Operation::RemoveGroupMembers {
                group: (*id).into(),
                users: strings(&body["user_uuids"]),
            },
        )),
        ("GET", ["user-groups", id, "workspaces"]) => {
            let (page, size) = match page(q, Some(100)) {
                Ok(p) => p,
                Err(r) => return *r,
            };
            let Some(group) = org.groups.get(*id) else {
                return error(StatusCode::NOT_FOUND, json!("no such group"));
            };
            let assignments: Vec<(String, Vec<String>)> = group
                .workspaces
                .iter()
                .map(|(w, r)| (w.clone(), r.iter().cloned().collect()))
                .collect();
            let items: Vec<Value> = slice(&assignments, page, size).iter().filter_map(|(wid, roles)| {
                let workspace = org.workspaces.get(wid)?;
                let refs: Vec<Value> = roles.iter().map(|r| json!({"name": r, "uuid": org.roles.workspace.get(r)})).collect();
                Some(json!({"roles": refs, "role_uuid": null, "role_name": null, "workspace_uuid": wid, "workspace_name": workspace.name, "created": state.now}))
            }).collect();
            axum::Json(json!({"total": assignments.len(), "items": items, "page": page, "page_size": size})).into_response()
        }
        ("POST", ["user-groups", id, "workspaces"]) => match perform(
            &mut org,
            Operation::AssignGroupWorkspace {
                group: (*id).into(),
                workspace: s(body, "workspace_uuid"),
                roles: strings(&body["role_names"]),
            },
        ) {
            Ok(_) => StatusCode::CREATED.into_response(),
            Err(e) => error(
                StatusCode::from_u16(e.status()).unwrap(),
                json!(e.to_string()),
            ),
        },
        ("PATCH", ["user-groups", id, "workspaces", workspace]) => no_content(perform(
            &mut org,
            Operation::UpdateGroupWorkspace {
                group: (*id).into(),
                workspace: (*workspace).into(),
                roles: strings(&body["role_names"]),
            },
        )),
        ("DELETE", ["user-groups", id, "workspaces", workspace]) => no_content(perform(
            &mut org,
            Operation::UnassignGroupWorkspace {
                group: (*id).into(),
                workspace: (*workspace).into(),
            },
        )),
        ("PATCH", ["user-groups", id, "organization-role"]) => {
            let uuid = s(body, "organization_role");
            let Some(role) = org
                .roles
                .organization
                .iter()
                .find(|(_, u)| **u == uuid)
                .map(|(n, _)| n.clone())
            else {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!([{"loc": ["body", "organization_role"], "msg": "unknown role", "type": "value_error"}]),
                );
            };
            no_content(perform(
                &mut org,
                Operation::SetGroupOrganizationRole {
                    group: (*id).into(),
                    role,
                },
            ))
        }
        ("GET", ["api-keys"]) => {
            let limit: usize = q.get("limit").and_then(|v| v.parse().ok()).unwrap_or(100);
            let offset: usize = q.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
            // The API's `name` filter: a case-insensitive substring.
            let wanted = q.get("name").map(|name| name.to_lowercase());
            let keys: Vec<Value> = org.keys.iter()
                .filter(|(_, key)| wanted.as_ref().is_none_or(|wanted| {
                    key.name.as_deref().unwrap_or("").to_lowercase().contains(wanted.as_str())
                }))
                .skip(offset).take(limit).map(|(id, key)| {
                let workspace_name = key.workspace.as_ref().and_then(|w| org.workspaces.get(w)).map(|w| w.name.clone());
                json!({"key_id": id, "key": null, "name": key.name, "hidden_key": key.hidden_key, "created_at": key.created_at,
                       "expiration_date": key.expiration.map(|d| d.to_string()), "actions": {}, "workspace_id": key.workspace,
                       "workspace_name": workspace_name, "created_by": key.created_by, "product": null,
                       "last_used": key.last_used.map(|d| d.to_string()), "can_delete": true})
            }).collect();
            axum::Json(json!({"keys": keys})).into_response()
        }
        ("POST", ["api-keys"]) => {
            let expiration = body
                .get("expiration")
                .and_then(Value::as_str)
                .and_then(|d| d.parse().ok());
            match perform(
                &mut org,
                Operation::CreateKey {
                    workspace: s(body, "workspace_uuid"),
                    user: s(body, "user_id"),
                    name: s(body, "name"),
                    expiration,
                    known: Vec::new(),
                },
            ) {
                Ok(Outcome::Key { id, secret }) => {
                    use secrecy::ExposeSecret;
                    let key = &org.keys[&id];
                    if state.secrets.malformed.load(Ordering::SeqCst) {
                        let plaintext = secret.expose_secret().to_owned();
                        state
                            .secrets
                            .handed_out
                            .lock()
                            .unwrap()
                            .push(plaintext.clone());
                        return axum::Json(json!({"key_id": 12345, "key": plaintext, "hidden_key": key.hidden_key}))
                            .into_response();
                    }
                    if state.secrets.without_key.load(Ordering::SeqCst) {
                        return axum::Json(json!({"key_id": id, "key": null, "name": key.name, "hidden_key": key.hidden_key,
                                                 "created_at": key.created_at, "actions": {}}))
                            .into_response();
                    }
                    axum::Json(json!({"key_id": id, "key": secret.expose_secret(), "name": key.name, "hidden_key": key.hidden_key,
                                      "created_at": key.created_at, "expiration_date": key.expiration.map(|d| d.to_string()), "actions": {}})).into_response()
                }
                Ok(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                Err(e) => error(
                    StatusCode::from_u16(e.status()).unwrap(),
                    json!(e.to_string()),
                ),
            }
        }
        ("DELETE", ["api-keys", id]) => outcome(
            perform(&mut org, Operation::DeleteKey { key: (*id).into() }),
            json!({"detail": "deleted"}),
        ),
        ("GET", ["spend-limit"]) | ("POST", ["spend-limit"]) => {
            if method == Method::POST {
                let limit = if body.get("no_monthly_limit").and_then(Value::as_bool) == Some(true) {
                    OrganizationLimit::Unlimited
                } else {
                    // The API takes `amount` as an integer.
                    OrganizationLimit::Monthly {
                        units: body.get("amount").and_then(Value::as_i64).unwrap_or(0),
                    }
                };
                if let Err(e) = perform(&mut org, Operation::SetSpendLimit { limit }) {
                    return error(
                        StatusCode::from_u16(e.status()).unwrap(),
                        json!(e.to_string()),
                    );
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
        _ => error(StatusCode::NOT_FOUND, json!("Not Found")),
    }
}
