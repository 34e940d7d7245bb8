//! HTTP to the Admin API: authentication, pages read to the end, a pace that adapts to the
//! server's limit ([`super::pacing`]), and retries that are safe.
//!
//! Retries are hand-rolled rather than left to a retry crate because one 429 must pause
//! every request until its `Retry-After` has passed, not only the one that got it.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::api::*;
use super::error::{ApiError, details, excerpt};
use super::pacing::{Answer, Pacer};
use super::paging::{Collected, Listed, PAGES_PER_BATCH, Page, UserEntry};
use super::transport::{
    BodyError, DEFAULT_DEADLINE, Deadline, MAX_BODY_BYTES, human, read_body, redact_url,
    redirect_target, transport_cause,
};

/// Page sizes: the largest each list accepts. The spec caps user groups and a group's
/// workspace assignments at 100 and sets no cap elsewhere, where 1,000 keeps pages fast.
pub const USERS_PAGE_SIZE: usize = 1000;
pub const WORKSPACES_PAGE_SIZE: usize = 1000;
pub const GROUPS_PAGE_SIZE: usize = 100;
pub const GROUP_MEMBERS_PAGE_SIZE: usize = 1000;
pub const GROUP_WORKSPACES_PAGE_SIZE: usize = 100;
pub const API_KEYS_PAGE_SIZE: usize = 1000;

/// How the admin key is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthScheme {
    /// `x-api-key: KEY`, as Mistral's admin guides do.
    ApiKeyHeader,
    /// `Authorization: Bearer KEY`, as the OpenAPI spec says.
    Bearer,
}

pub struct ClientConfig {
    pub base_url: url::Url,
    pub key: SecretString,
    pub auth: AuthScheme,
    /// Most requests in flight; the pacer starts here and narrows on 429s.
    pub concurrency: usize,
    /// A ceiling on requests per second, whatever the server allows; none by default.
    pub max_requests_per_second: Option<NonZeroU32>,
    pub timeout: Duration,
    pub max_retries: usize,
    pub backoff_base: Duration,
    /// The most time one command spends on the Admin API (see [`Deadline`]).
    pub deadline: Duration,
    /// Told of each retry before its wait, so a caller on a terminal can show progress; the
    /// client itself prints nothing.
    pub on_retry: Option<RetryObserver>,
}

/// Receives a [`RetryNotice`] before each retry's wait.
pub type RetryObserver = Arc<dyn Fn(&RetryNotice) + Send + Sync>;

/// A call that failed and is about to be sent again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryNotice {
    /// The call, as errors name it: `GET /v1/admin/users`.
    pub call: String,
    /// What went wrong, in words: `connection refused`, `503 Service Unavailable`.
    pub cause: String,
    pub wait: Duration,
    /// Which retry this is, from 1, and the most there will be.
    pub retry: usize,
    pub max_retries: usize,
}

impl std::fmt::Display for RetryNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}; retrying in {} (retry {} of {})",
            self.call,
            self.cause,
            human(self.wait),
            self.retry,
            self.max_retries
        )
    }
}

/// By hand, so the URL shows without the password it may carry.
impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &redact_url(&self.base_url))
            .field("auth", &self.auth)
            .field("concurrency", &self.concurrency)
            .field("timeout", &self.timeout)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    pub fn new(base_url: url::Url, key: SecretString) -> ClientConfig {
        ClientConfig {
            base_url,
            key,
            auth: AuthScheme::ApiKeyHeader,
            concurrency: 8,
            max_requests_per_second: None,
            timeout: Duration::from_secs(30),
            max_retries: 5,
            backoff_base: Duration::from_millis(500),
            deadline: DEFAULT_DEADLINE,
            on_retry: None,
        }
    }
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    auth: (HeaderName, HeaderValue),
    pacer: Pacer,
    requests: AtomicU64,
    max_retries: usize,
    backoff_base: Duration,
    timeout: Duration,
    deadline: Deadline,
    on_retry: Option<RetryObserver>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let base =
            url::Url::parse(&self.base).map_or_else(|_| String::new(), |url| redact_url(&url));
        f.debug_struct("Client")
            .field("base", &base)
            .finish_non_exhaustive()
    }
}

/// Whether a request may be sent twice with the same effect.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Repeat {
    Safe,
    /// A create: repeating it after the server may have acted would make a second object.
    OnlyIfRefused,
}

pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The longest `Retry-After` taken as asked; one beyond the command's deadline fails the
/// call at once, saying what the server asked.
const MAX_RETRY_AFTER_SECONDS: u64 = 24 * 60 * 60;

/// Seconds or an HTTP date, as `Retry-After` allows.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds.min(MAX_RETRY_AFTER_SECONDS)));
    }
    let when = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let wait = jiff::Timestamp::now()
        .until(when)
        .ok()?
        .total(jiff::Unit::Second)
        .ok()?;
    Some(Duration::from_secs_f64(
        wait.clamp(0.0, MAX_RETRY_AFTER_SECONDS as f64),
    ))
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Client, ApiError> {
        let scheme = config.base_url.scheme();
        if scheme != "https" && !(scheme == "http" && is_loopback(&config.base_url)) {
            return Err(ApiError::InsecureUrl {
                url: redact_url(&config.base_url),
            });
        }
        let (name, value) = match config.auth {
            AuthScheme::ApiKeyHeader => (
                HeaderName::from_static("x-api-key"),
                config.key.expose_secret().to_owned(),
            ),
            AuthScheme::Bearer => (
                reqwest::header::AUTHORIZATION,
                format!("Bearer {}", config.key.expose_secret()),
            ),
        };
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            ApiError::Client("the admin key holds characters a header cannot carry".into())
        })?;
        value.set_sensitive(true);
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            // A redirect would carry the admin key wherever it points (reqwest drops only
            // the standard credential headers, not `x-api-key`): none is followed.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tramontane/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| ApiError::Client(error.to_string()))?;
        Ok(Client {
            http,
            base: config.base_url.as_str().trim_end_matches('/').to_owned(),
            auth: (name, value),
            pacer: Pacer::new(config.concurrency, config.max_requests_per_second),
            requests: AtomicU64::new(0),
            max_retries: config.max_retries,
            backoff_base: config.backoff_base,
            timeout: config.timeout,
            deadline: Deadline::new(config.deadline),
            on_retry: config.on_retry,
        })
    }

    /// HTTP attempts so far, retries included.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Requests that may be in flight now, as the pacer has learnt from the server.
    pub fn window(&self) -> usize {
        self.pacer.window()
    }

    /// Tells the observer, if any, that `call` failed on `attempt` and is retried after `wait`.
    fn notify_retry(
        &self,
        call: &str,
        attempt: usize,
        wait: Duration,
        cause: impl FnOnce() -> String,
    ) {
        if let Some(observer) = &self.on_retry {
            observer(&RetryNotice {
                call: call.to_owned(),
                cause: cause(),
                wait,
                retry: attempt,
                max_retries: self.max_retries,
            });
        }
    }

    /// The wait before retry `attempt` (from 1): the base, then doubling.
    fn backoff(&self, attempt: usize) -> Duration {
        use rand::Rng;
        let ceiling = self
            .backoff_base
            .saturating_mul(1 << attempt.saturating_sub(1).min(10) as u32)
            .min(Duration::from_secs(30));
        // Full jitter: clients that failed together do not retry together.
        ceiling.mul_f64(rand::rng().random_range(0.5..=1.0))
    }

    fn deadline_exceeded(&self, call: &str) -> ApiError {
        ApiError::DeadlineExceeded {
            call: call.to_owned(),
            deadline: human(self.deadline.limit()),
        }
    }

    /// What is left of the deadline, or the error saying it has passed.
    fn time_left(&self, call: &str) -> Result<Duration, ApiError> {
        let left = self.deadline.left();
        if left.is_zero() {
            return Err(self.deadline_exceeded(call));
        }
        Ok(left)
    }

    async fn within_deadline<F: Future>(&self, call: &str, wait: F) -> Result<F::Output, ApiError> {
        tokio::time::timeout(self.time_left(call)?, wait)
            .await
            .map_err(|_| self.deadline_exceeded(call))
    }

    async fn sleep_within_deadline(&self, call: &str, wait: Duration) -> Result<(), ApiError> {
        if wait >= self.time_left(call)? {
            return Err(self.deadline_exceeded(call));
        }
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// A wait the server asks for that the deadline cannot hold fails now, not after it.
    fn retry_after_fits(&self, call: &str, asked: Option<Duration>) -> Result<(), ApiError> {
        let left = self.time_left(call)?;
        match asked {
            Some(asked) if asked >= left => Err(ApiError::WaitBeyondDeadline {
                call: call.to_owned(),
                asked: human(asked),
                left: human(left),
            }),
            _ => Ok(()),
        }
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&(impl Serialize + Sync)>,
        repeat: Repeat,
    ) -> Result<T, ApiError> {
        let mut call = format!("{method} {path}");
        if !query.is_empty() {
            let pairs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            call = format!("{call}?{}", pairs.join("&"));
        }
        // The deadline's clock runs while this call is under way, waits included.
        let _busy = self.deadline.start();
        let mut attempt = 0;
        loop {
            attempt += 1;
            // The pause a 429 set, and a free slot, are waited for within the deadline.
            let ticket = self.within_deadline(&call, self.pacer.start()).await?;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let mut url = url::Url::parse(&self.url(path))
                .map_err(|error| ApiError::Client(format!("{call}: {error}")))?;
            if !query.is_empty() {
                url.query_pairs_mut()
                    .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
            }
            let mut request = self
                .http
                .request(method.clone(), url)
                .header(self.auth.0.clone(), self.auth.1.clone());
            if let Some(body) = body {
                request = request.json(body);
            }
            if repeat == Repeat::Safe {
                // A repeatable call may be cut at the deadline; a create is left its own
                // timeout, so whether it happened is known rather than cut off.
                request = request.timeout(self.timeout.min(self.time_left(&call)?));
            }
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    if let Some(id) = crate::provider::request_id::HEADERS
                        .iter()
                        .find_map(|name| response.headers().get(*name))
                        .and_then(|value| value.to_str().ok())
                    {
                        crate::provider::request_id::note(id);
                    }
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_retry_after);
                    if status.is_redirection() {
                        let location = response
                            .headers()
                            .get(reqwest::header::LOCATION)
                            .and_then(|v| v.to_str().ok());
                        return Err(ApiError::Redirected {
                            call,
                            status: status.as_u16(),
                            location: redirect_target(response.url(), location),
                        });
                    }
                    match read_body(response, MAX_BODY_BYTES).await {
                        Ok(body) => Ok((
                            status,
                            retry_after,
                            String::from_utf8_lossy(&body).into_owned(),
                        )),
                        Err(BodyError::TooLarge) => {
                            return Err(ApiError::BodyTooLarge {
                                call,
                                limit_mib: MAX_BODY_BYTES / (1024 * 1024),
                            });
                        }
                        Err(BodyError::Http(error)) => Err(error),
                    }
                }
                Err(error) => Err(error),
            };
            match &outcome {
                // Refused, so not acted on: every request waits, and the pace comes down.
                Ok((status, retry_after, _)) if status.as_u16() == 429 => {
                    let wait = retry_after.unwrap_or_else(|| self.backoff(attempt));
                    ticket.answered(Answer::Throttled { wait });
                }
                Ok((status, _, _)) if !status.is_server_error() => {
                    ticket.answered(Answer::Accepted);
                }
                _ => ticket.answered(Answer::Unanswered),
            }
            let retries_left = attempt <= self.max_retries;
            match outcome {
                Err(error) => {
                    if repeat == Repeat::Safe
                        && error.is_timeout()
                        && self.deadline.left().is_zero()
                    {
                        // Cut short by the deadline, not by the request's own timeout.
                        return Err(self.deadline_exceeded(&call));
                    }
                    // A connection never made means nothing was sent: safe to repeat.
                    let unsent = error.is_connect();
                    if retries_left && (repeat == Repeat::Safe || unsent) {
                        let wait = self.backoff(attempt);
                        self.notify_retry(&call, attempt, wait, || {
                            if error.is_timeout() {
                                "timed out".to_owned()
                            } else {
                                transport_cause(&error).0
                            }
                        });
                        self.sleep_within_deadline(&call, wait).await?;
                        continue;
                    }
                    return Err(if error.is_timeout() {
                        ApiError::Timeout {
                            call,
                            attempts: attempt,
                        }
                    } else {
                        let (cause, detail) = transport_cause(&error.without_url());
                        ApiError::Transport {
                            call,
                            cause,
                            detail,
                        }
                    });
                }
                Ok((status, retry_after, text)) => {
                    let code = status.as_u16();
                    if status.is_success() {
                        let text = if text.trim().is_empty() {
                            "null"
                        } else {
                            text.as_str()
                        };
                        return serde_json::from_str(text).map_err(|error| {
                            ApiError::InvalidResponse {
                                call,
                                message: error.to_string(),
                                body: excerpt(text),
                            }
                        });
                    }
                    if code == 429 {
                        // Refused, so not acted on: even a create may be sent again, once
                        // the pause the ticket set is over, if the deadline can hold it.
                        self.retry_after_fits(&call, retry_after)?;
                        if retries_left {
                            continue;
                        }
                        return Err(ApiError::RateLimited {
                            call,
                            attempts: attempt,
                        });
                    }
                    if status.is_server_error() {
                        if retries_left && repeat == Repeat::Safe {
                            let wait = self.backoff(attempt);
                            self.notify_retry(&call, attempt, wait, || status.to_string());
                            self.sleep_within_deadline(&call, wait).await?;
                            continue;
                        }
                        return Err(ApiError::Server {
                            call,
                            status: code,
                            attempts: attempt,
                        });
                    }
                    return Err(match code {
                        401 => ApiError::Unauthorized { call },
                        403 => ApiError::Forbidden { call },
                        404 => ApiError::NotFound {
                            call,
                            detail: details(&text).join("; "),
                        },
                        422 => ApiError::Unprocessable {
                            call,
                            details: details(&text),
                        },
                        _ => ApiError::Status {
                            call,
                            status: code,
                            detail: details(&text).join("; "),
                        },
                    });
                }
            }
        }
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ApiError> {
        self.send(Method::GET, path, query, None::<&()>, Repeat::Safe)
            .await
    }

    /// Reads every page of a list. The first page shows how many items the server puts on
    /// a page, which may be fewer than asked: the rest are asked at that size, at once (the
    /// semaphore bounds them), as many as the `total` needs. Without a total, pages are read
    /// until an empty one. The list is accepted only whole: as many items as the total, and
    /// none twice.
    async fn all_pages<P, T>(
        &self,
        path: &str,
        extra: &[(&str, String)],
        size: usize,
        split: impl Fn(P) -> Page<T>,
    ) -> Result<Vec<T>, ApiError>
    where
        P: DeserializeOwned,
        T: Listed,
    {
        let query = |page: usize, size: usize| {
            let mut query = extra.to_vec();
            query.push(("page", page.to_string()));
            query.push(("page_size", size.to_string()));
            query
        };
        let mut list = Collected::new(format!("GET {path}"));
        let first = split(self.get(path, &query(1, size)).await?);
        let served = first.items.len();
        list.add(first.items)?;
        let Some(total) = first.total else {
            // A short page may be only the server's cap, so only an empty one ends the list.
            let mut page = 1;
            let mut last = served;
            while last > 0 {
                page += 1;
                let more = split(self.get(path, &query(page, served)).await?);
                last = more.items.len();
                list.add(more.items)?;
            }
            return list.finish(None);
        };
        if total > super::paging::MAX_LIST_ITEMS as u64 {
            return Err(list.too_long(total));
        }
        if served as u64 >= total {
            return list.finish(Some(total));
        }
        if served == 0 {
            return Err(list.changed(format!(
                "the first page is empty where the total is {total}"
            )));
        }
        // More items remain, so the first page was full: its size is the server's.
        let pages = (total as usize).div_ceil(served);
        for first_of_batch in (2..=pages).step_by(PAGES_PER_BATCH) {
            let batch = first_of_batch..=pages.min(first_of_batch + PAGES_PER_BATCH - 1);
            let answers = super::join_all(
                batch
                    .map(|page| {
                        let query = query(page, served);
                        async move { self.get::<P>(path, &query).await }
                    })
                    .collect(),
            )
            .await;
            for answer in answers {
                let page = split(answer?);
                if let Some(now) = page.total
                    && now != total
                {
                    return Err(list.changed(format!("the total went from {total} to {now}")));
                }
                list.add(page.items)?;
            }
        }
        list.finish(Some(total))
    }

    pub async fn roles(&self) -> Result<RolesOut, ApiError> {
        self.get("/v1/admin/roles", &[]).await
    }

    /// Members and pending invitations; a page holds both, and `total` counts both.
    pub async fn list_users(
        &self,
    ) -> Result<(Vec<AdminOrganizationMemberOut>, Vec<OrganizationInviteOut>), ApiError> {
        let entries = self
            .all_pages(
                "/v1/admin/users",
                &[],
                USERS_PAGE_SIZE,
                |page: OrganizationAdminUsersOut| Page {
                    total: page.total,
                    items: (page.members.into_iter().map(UserEntry::Member))
                        .chain(page.invites.into_iter().map(UserEntry::Invite))
                        .collect(),
                },
            )
            .await?;
        let mut members = Vec::new();
        let mut invites = Vec::new();
        for entry in entries {
            match entry {
                UserEntry::Member(member) => members.push(member),
                UserEntry::Invite(invite) => invites.push(invite),
            }
        }
        Ok((members, invites))
    }

    pub async fn list_workspaces(&self, archived: bool) -> Result<Vec<WorkspaceOut>, ApiError> {
        let extra = [("is_archived", archived.to_string())];
        self.all_pages(
            "/v1/admin/workspaces",
            &extra,
            WORKSPACES_PAGE_SIZE,
            |page: WorkspacesOut| Page {
                total: Some(page.total),
                items: page.items,
            },
        )
        .await
    }

    pub async fn list_groups(&self) -> Result<Vec<AdminUserGroupOut>, ApiError> {
        self.all_pages(
            "/v1/admin/user-groups",
            &[],
            GROUPS_PAGE_SIZE,
            |page: AdminUserGroupsOut| Page {
                total: Some(page.total),
                items: page.items,
            },
        )
        .await
    }

    pub async fn group_members(
        &self,
        group: &str,
    ) -> Result<Vec<AdminUserGroupMemberOut>, ApiError> {
        let path = format!("/v1/admin/user-groups/{group}/members");
        self.all_pages(
            &path,
            &[],
            GROUP_MEMBERS_PAGE_SIZE,
            |page: AdminUserGroupMembersOut| Page {
                total: Some(page.total),
                items: page.members,
            },
        )
        .await
    }

    pub async fn group_workspaces(
        &self,
        group: &str,
    ) -> Result<Vec<GroupWorkspaceAssignmentOut>, ApiError> {
        let path = format!("/v1/admin/user-groups/{group}/workspaces");
        self.all_pages(
            &path,
            &[],
            GROUP_WORKSPACES_PAGE_SIZE,
            |page: GroupWorkspaceAssignmentsOut| Page {
                total: Some(page.total),
                items: page.items,
            },
        )
        .await
    }

    /// Offset paging without a total: page after page until an empty one, since the server
    /// may serve fewer than the `limit` asked.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyExtendedOut>, ApiError> {
        self.list_api_keys_matching(None).await
    }

    /// Keys whose name contains `name` (the API matches substrings, case-insensitively):
    /// the cheap way to look for one key.
    pub async fn list_api_keys_matching(
        &self,
        name: Option<&str>,
    ) -> Result<Vec<ApiKeyExtendedOut>, ApiError> {
        let mut keys = Collected::new("GET /v1/admin/api-keys".to_owned());
        loop {
            let mut query = vec![
                ("limit", API_KEYS_PAGE_SIZE.to_string()),
                ("offset", keys.len().to_string()),
            ];
            if let Some(name) = name {
                query.push(("name", name.to_owned()));
            }
            let page: ApiKeysExtendedOut = self.get("/v1/admin/api-keys", &query).await?;
            if page.keys.is_empty() {
                return keys.finish(None);
            }
            // A page served again (or forever) repeats its ids, and ends the read there.
            keys.add(page.keys)?;
        }
    }

    pub async fn spend_limit(&self) -> Result<LimitsOut, ApiError> {
        self.get("/v1/admin/spend-limit", &[]).await
    }

    pub async fn rate_limit(&self) -> Result<RateLimitsOut, ApiError> {
        self.get("/v1/admin/rate-limit", &[]).await
    }

    pub async fn create_users(
        &self,
        users: &[OrganizationMemberCreate],
    ) -> Result<OrganizationUsersCreateOut, ApiError> {
        self.send(
            Method::POST,
            "/v1/admin/users",
            &[],
            Some(&users),
            Repeat::OnlyIfRefused,
        )
        .await
    }

    pub async fn update_user(
        &self,
        user: &str,
        update: &AdminOrganizationMemberUpdate,
    ) -> Result<AdminOrganizationMemberOut, ApiError> {
        self.send(
            Method::PATCH,
            &format!("/v1/admin/users/{user}"),
            &[],
            Some(update),
            Repeat::Safe,
        )
        .await
    }

    pub async fn delete_user(&self, user: &str) -> Result<DeleteOut, ApiError> {
        self.send(
            Method::DELETE,
            &format!("/v1/admin/users/{user}"),
            &[],
            None::<&()>,
            Repeat::Safe,
        )
        .await
    }

    pub async fn create_workspace(
        &self,
        workspace: &AdminWorkspaceIn,
    ) -> Result<WorkspaceEnrichedOut, ApiError> {
        self.send(
            Method::POST,
            "/v1/admin/workspaces",
            &[],
            Some(workspace),
            Repeat::OnlyIfRefused,
        )
        .await
    }

    pub async fn update_workspace(
        &self,
        workspace: &str,
        update: &UpdateWorkspaceIn,
    ) -> Result<WorkspaceOut, ApiError> {
        self.send(
            Method::PATCH,
            &format!("/v1/admin/workspaces/{workspace}"),
            &[],
            Some(update),
            Repeat::Safe,
        )
        .await
    }

    pub async fn archive_workspace(&self, workspace: &str) -> Result<(), ApiError> {
        self.send(
            Method::DELETE,
            &format!("/v1/admin/workspaces/{workspace}"),
            &[],
            None::<&()>,
            Repeat::Safe,
        )
        .await
    }

    pub async fn upsert_workspace_users(
        &self,
        workspace: &str,
        members: &WorkspaceMemberIn,
    ) -> Result<AddOrUpdateUsersToWorkspaceOut, ApiError> {
        self.send(
            Method::PATCH,
            &format!("/v1/admin/workspaces/{workspace}/users"),
            &[],
            Some(members),
            Repeat::Safe,
        )
        .await
    }

    pub async fn remove_workspace_users(
        &self,
        workspace: &str,
        members: &RemoveWorkspaceMembersIn,
    ) -> Result<RemoveWorkspaceMembersOut, ApiError> {
        let path = format!("/v1/admin/workspaces/{workspace}/remove-users");
        self.send(Method::DELETE, &path, &[], Some(members), Repeat::Safe)
            .await
    }

    pub async fn create_group(
        &self,
        group: &AdminUserGroupIn,
    ) -> Result<AdminUserGroupOut, ApiError> {
        self.send(
            Method::POST,
            "/v1/admin/user-groups",
            &[],
            Some(group),
            Repeat::OnlyIfRefused,
        )
        .await
    }

    pub async fn update_group(
        &self,
        group: &str,
        update: &AdminUpdateUserGroupIn,
    ) -> Result<AdminUserGroupOut, ApiError> {
        self.send(
            Method::PATCH,
            &format!("/v1/admin/user-groups/{group}"),
            &[],
            Some(update),
            Repeat::Safe,
        )
        .await
    }

    pub async fn delete_group(&self, group: &str) -> Result<(), ApiError> {
        self.send(
            Method::DELETE,
            &format!("/v1/admin/user-groups/{group}"),
            &[],
            None::<&()>,
            Repeat::Safe,
        )
        .await
    }

    /// Adding members who are already in the group changes nothing, so this is repeatable.
    pub async fn add_group_members(
        &self,
        group: &str,
        users: &AdminAssignUsersToGroupIn,
    ) -> Result<(), ApiError> {
        self.send(
            Method::POST,
            &format!("/v1/admin/user-groups/{group}/members"),
            &[],
            Some(users),
            Repeat::Safe,
        )
        .await
    }

    pub async fn remove_group_members(
        &self,
        group: &str,
        users: &AdminAssignUsersToGroupIn,
    ) -> Result<(), ApiError> {
        self.send(
            Method::DELETE,
            &format!("/v1/admin/user-groups/{group}/members"),
            &[],
            Some(users),
            Repeat::Safe,
        )
        .await
    }

    pub async fn assign_group_workspace(
        &self,
        group: &str,
        assignment: &AssignGroupToWorkspaceIn,
    ) -> Result<(), ApiError> {
        let path = format!("/v1/admin/user-groups/{group}/workspaces");
        self.send(
            Method::POST,
            &path,
            &[],
            Some(assignment),
            Repeat::OnlyIfRefused,
        )
        .await
    }

    pub async fn update_group_workspace(
        &self,
        group: &str,
        workspace: &str,
        update: &UpdateGroupWorkspaceAssignmentIn,
    ) -> Result<(), ApiError> {
        let path = format!("/v1/admin/user-groups/{group}/workspaces/{workspace}");
        self.send(Method::PATCH, &path, &[], Some(update), Repeat::Safe)
            .await
    }

    pub async fn unassign_group_workspace(
        &self,
        group: &str,
        workspace: &str,
    ) -> Result<(), ApiError> {
        let path = format!("/v1/admin/user-groups/{group}/workspaces/{workspace}");
        self.send(Method::DELETE, &path, &[], None::<&()>, Repeat::Safe)
            .await
    }

    pub async fn set_group_organization_role(
        &self,
        group: &str,
        role: &UpdateUserGroupOrganizationRoleIn,
    ) -> Result<(), ApiError> {
        let path = format!("/v1/admin/user-groups/{group}/organization-role");
        self.send(Method::PATCH, &path, &[], Some(role), Repeat::Safe)
            .await
    }

    /// Never repeated after the server may have acted: a second key would be an orphan.
    /// The answer carries the new secret, so no error quotes its body.
    pub async fn create_api_key(&self, key: &AdminCreateApiKeyIn) -> Result<ApiKeyOut, ApiError> {
        self.send(
            Method::POST,
            "/v1/admin/api-keys",
            &[],
            Some(key),
            Repeat::OnlyIfRefused,
        )
        .await
        .map_err(ApiError::withholding_body)
    }

    /// `GET {base}/v1/models` with `key`, a key of the inference API, as a bearer token:
    /// the status it answers. The body is never read; only whether the key is let in counts.
    pub async fn models_status(
        &self,
        base: &url::Url,
        key: &SecretString,
    ) -> Result<u16, ApiError> {
        let call = "GET /v1/models (with the new key)".to_owned();
        let url = format!("{}/v1/models", base.as_str().trim_end_matches('/'));
        let mut token = HeaderValue::from_str(&format!("Bearer {}", key.expose_secret()))
            .map_err(|_| ApiError::Client(format!("{call}: the key cannot travel in a header")))?;
        token.set_sensitive(true);
        self.requests.fetch_add(1, Ordering::Relaxed);
        match self
            .http
            .get(url)
            .header(reqwest::header::AUTHORIZATION, token)
            .send()
            .await
        {
            Ok(response) => Ok(response.status().as_u16()),
            Err(error) if error.is_timeout() => Err(ApiError::Timeout { call, attempts: 1 }),
            Err(error) => {
                let (cause, detail) = transport_cause(&error.without_url());
                Err(ApiError::Transport {
                    call,
                    cause,
                    detail,
                })
            }
        }
    }

    pub async fn delete_api_key(&self, key: &str) -> Result<DeleteApiKeyOut, ApiError> {
        self.send(
            Method::DELETE,
            &format!("/v1/admin/api-keys/{key}"),
            &[],
            None::<&()>,
            Repeat::Safe,
        )
        .await
    }

    /// Setting the same limit twice has one effect, so this POST is repeatable.
    pub async fn set_spend_limit(&self, limit: &NewUsageLimitIn) -> Result<LimitsOut, ApiError> {
        self.send(
            Method::POST,
            "/v1/admin/spend-limit",
            &[],
            Some(limit),
            Repeat::Safe,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> ClientConfig {
        ClientConfig::new(
            url::Url::parse(url).unwrap(),
            SecretString::from("sk-admin-very-secret"),
        )
    }

    #[test]
    fn debug_never_shows_the_key() {
        let config = config("https://api.mistral.ai");
        assert!(!format!("{config:?}").contains("very-secret"));
        let client = Client::new(config).unwrap();
        assert!(!format!("{client:?}").contains("very-secret"));
    }

    #[test]
    fn a_password_in_the_url_is_never_shown() {
        let config_with_password = config("http://admin:hunter2@api.example.com");
        assert!(!format!("{config_with_password:?}").contains("hunter2"));
        let refused = Client::new(config_with_password).unwrap_err().to_string();
        assert!(refused.contains("`http://api.example.com/`"), "{refused}");
        assert!(!refused.contains("hunter2"), "{refused}");
        let client = Client::new(config("http://admin:hunter2@127.0.0.1:1")).unwrap();
        assert!(!format!("{client:?}").contains("hunter2"));
    }

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(matches!(
            Client::new(config("http://api.example.com")),
            Err(ApiError::InsecureUrl { .. })
        ));
        for url in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:9",
        ] {
            assert!(Client::new(config(url)).is_ok(), "{url}");
        }
    }

    #[test]
    fn paths_are_appended_to_the_base() {
        let client = Client::new(config("https://gw.example/prefix/")).unwrap();
        assert_eq!(
            client.url("/v1/admin/users"),
            "https://gw.example/prefix/v1/admin/users"
        );
        let client = Client::new(config("http://127.0.0.1:1234")).unwrap();
        assert_eq!(
            client.url("/v1/admin/users"),
            "http://127.0.0.1:1234/v1/admin/users"
        );
    }

    #[test]
    fn each_retry_is_told_to_the_observer_as_it_happens() {
        // A port nothing listens on: every attempt is refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let notices = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut config = config(&format!("http://127.0.0.1:{port}"));
        config.max_retries = 2;
        config.backoff_base = Duration::from_millis(1);
        let seen = Arc::clone(&notices);
        config.on_retry = Some(Arc::new(move |notice: &RetryNotice| {
            seen.lock().unwrap().push(notice.clone());
        }));
        let client = Client::new(config).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let outcome = runtime.block_on(client.send::<serde_json::Value>(
            Method::GET,
            "/v1/admin/users",
            &[],
            None::<&()>,
            Repeat::Safe,
        ));
        assert!(
            matches!(&outcome, Err(ApiError::Transport { cause, .. }) if cause == "connection refused"),
            "{outcome:?}"
        );
        let notices = notices.lock().unwrap().clone();
        assert_eq!(notices.len(), 2, "{notices:?}");
        for (index, notice) in notices.iter().enumerate() {
            assert_eq!(notice.call, "GET /v1/admin/users");
            assert_eq!(notice.cause, "connection refused");
            assert_eq!((notice.retry, notice.max_retries), (index + 1, 2));
        }
        let shown = RetryNotice {
            wait: Duration::from_millis(1200),
            ..notices[1].clone()
        };
        assert_eq!(
            shown.to_string(),
            "GET /v1/admin/users: connection refused; retrying in 1.2s (retry 2 of 2)"
        );
    }

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
        // Taken as asked, for the deadline to judge, not cut to a few minutes unseen.
        assert_eq!(parse_retry_after("3600"), Some(Duration::from_secs(3600)));
    }
}
