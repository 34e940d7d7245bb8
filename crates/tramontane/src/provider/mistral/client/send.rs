//! One call to the Admin API, sent until it is answered: paced, within the command's
//! deadline, and retried only where repeating it is safe.

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Client, RetryNotice};
use crate::provider::mistral::error::{ApiError, details, excerpt};
use crate::provider::mistral::pacing::Answer;
use crate::provider::mistral::transport::{
    BodyError, MAX_BODY_BYTES, human, read_body, redirect_target, transport_cause,
};

/// Whether a request may be sent twice with the same effect.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Repeat {
    Safe,
    /// A create: repeating it after the server may have acted would make a second object.
    OnlyIfRefused,
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

    pub(super) async fn send<T: DeserializeOwned>(
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

    pub(super) async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ApiError> {
        self.send(Method::GET, path, query, None::<&()>, Repeat::Safe)
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::provider::mistral::client::tests::config;

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
