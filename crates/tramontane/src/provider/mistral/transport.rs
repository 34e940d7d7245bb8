//! What the HTTP client refuses to trust: answers of any size, servers that never finish,
//! redirects, and URLs carrying a password. Each is bounded or turned into an error that
//! says what happened without echoing a credential.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The largest answer read. The biggest the Admin API sends is a page of 1,000 members
/// with their workspaces, a few MiB; anything far beyond is not the Admin API.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// How long one command may spend on the Admin API unless told otherwise: enough to read
/// an organization of tens of thousands of keys at a few requests per second.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10 * 60);

/// Why a body could not be read whole.
pub enum BodyError {
    TooLarge,
    Http(reqwest::Error),
}

/// Reads a body chunk by chunk and stops at `limit` bytes, so an answer that never ends
/// costs `limit` bytes of memory, not all of it. The client's timeout bounds the time.
pub async fn read_body(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Http)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Whether a credential (an admin key, a key under test, a token) may be sent to `url`:
/// over https, or over plain http only to this machine.
pub fn may_carry_credentials(url: &url::Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => is_loopback(url),
        _ => false,
    }
}

fn is_loopback(url: &url::Url) -> bool {
    url.host_str().is_some_and(crate::tls::is_loopback_host)
}

/// A URL as it may be shown: without the user and password it may carry.
pub fn redact_url(url: &url::Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() || !shown.username().is_empty() {
        // Fails only for URLs that cannot have userinfo, which then have none.
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
    }
    shown.to_string()
}

/// Text that may hold a URL, with any `user:password@` after a `scheme://` removed: for
/// strings that did not parse as a URL and are echoed all the same.
pub fn redact_userinfo(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("://") {
        let (before, after) = rest.split_at(start + 3);
        shown.push_str(before);
        let authority_end = after.find(['/', '?', '#', ' ']).unwrap_or(after.len());
        match after[..authority_end].rfind('@') {
            Some(at) => rest = &after[at + 1..],
            None => rest = after,
        }
    }
    shown.push_str(rest);
    shown
}

/// Where a redirect pointed, fit to show: resolved against the request, without userinfo,
/// without control characters and cut short.
pub fn redirect_target(request: &url::Url, location: Option<&str>) -> String {
    let Some(location) = location else {
        return "nowhere (no Location header)".into();
    };
    let shown = match request.join(location) {
        Ok(target) => redact_url(&target),
        Err(_) => redact_userinfo(location),
    };
    let clean: String = shown
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    format!("`{clean}`")
}

/// What went wrong sending a request, in a few words, and the error chain it came from:
/// reqwest's own message is only "error sending request", the cause is in its sources.
pub fn transport_cause(error: &reqwest::Error) -> (String, String) {
    let mut chain: Vec<String> = Vec::new();
    let mut cause = None;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        let text = current.to_string();
        if cause.is_none() {
            cause = current
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io_cause(io.kind()))
                .or_else(|| text_cause(&text));
        }
        // A level often repeats the one below it; each says something only once.
        if !text.is_empty() && !chain.iter().any(|seen| seen.contains(&text)) {
            chain.push(text);
        }
        source = current.source();
    }
    let detail = redact_userinfo(&chain.join(": "));
    let cause = match cause {
        Some(cause) => cause.to_owned(),
        None if error.is_body() || error.is_decode() => {
            "the connection broke while the answer was read".to_owned()
        }
        None => chain
            .last()
            .map_or_else(|| "unknown error".to_owned(), |last| redact_userinfo(last)),
    };
    (cause, detail)
}

fn io_cause(kind: std::io::ErrorKind) -> Option<&'static str> {
    use std::io::ErrorKind::*;
    Some(match kind {
        ConnectionRefused => "connection refused",
        ConnectionReset => "connection reset by the server",
        ConnectionAborted => "connection aborted",
        TimedOut => "timed out",
        HostUnreachable => "host unreachable",
        NetworkUnreachable => "network unreachable",
        AddrNotAvailable => "address not available",
        UnexpectedEof => "the server closed the connection",
        _ => return None,
    })
}

/// Causes whose error types are private to the HTTP stack, known by what they say.
fn text_cause(text: &str) -> Option<&'static str> {
    let lower = text.to_lowercase();
    if lower.contains("dns error") || lower.contains("failed to lookup address") {
        Some("DNS lookup failed: no such host, or no resolver")
    } else if lower.contains("certificate") {
        Some("TLS: the server's certificate was not accepted")
    } else if ["tls", "handshake", "corrupt message", "alert"]
        .iter()
        .any(|word| lower.contains(word))
    {
        // rustls's words for a peer that does not speak TLS, or refuses to.
        Some("TLS handshake failed")
    } else if lower.contains("connection closed before message completed") {
        Some("the server closed the connection")
    } else {
        None
    }
}

/// A duration as a person reads it: `1h`, `10m`, `90s`, `1.5s`.
pub fn human(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if duration.subsec_millis() != 0 && seconds < 60 {
        format!("{:.1}s", duration.as_secs_f64())
    } else if seconds >= 3600 && seconds.is_multiple_of(3600) {
        format!("{}h", seconds / 3600)
    } else if seconds >= 60 && seconds.is_multiple_of(60) {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}

/// The time one command may spend on the Admin API. It runs only while a request is in
/// flight or waiting its turn, so a confirmation prompt, a lock wait or a secret's sink
/// does not use it up.
pub struct Deadline {
    limit: Duration,
    clock: Mutex<BusyClock>,
}

#[derive(Default)]
struct BusyClock {
    spent: Duration,
    busy: usize,
    since: Option<Instant>,
}

/// Held while one call is under way; the clock stops when the last is dropped.
pub struct Busy<'a>(&'a Deadline);

impl Deadline {
    pub fn new(limit: Duration) -> Deadline {
        Deadline {
            limit,
            clock: Mutex::new(BusyClock::default()),
        }
    }

    pub fn limit(&self) -> Duration {
        self.limit
    }

    pub fn start(&self) -> Busy<'_> {
        if let Ok(mut clock) = self.clock.lock() {
            if clock.busy == 0 {
                clock.since = Some(Instant::now());
            }
            clock.busy += 1;
        }
        Busy(self)
    }

    /// What is left; zero once the deadline has passed.
    pub fn left(&self) -> Duration {
        let spent = self.clock.lock().map_or(Duration::ZERO, |clock| {
            clock.spent + clock.since.map_or(Duration::ZERO, |since| since.elapsed())
        });
        self.limit.saturating_sub(spent)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if let Ok(mut clock) = self.0.clock.lock() {
            clock.busy = clock.busy.saturating_sub(1);
            if clock.busy == 0
                && let Some(since) = clock.since.take()
            {
                clock.spent += since.elapsed();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_never_shown() {
        let url = url::Url::parse("http://admin:hunter2@api.example.com/v1?x=1").unwrap();
        assert_eq!(redact_url(&url), "http://api.example.com/v1?x=1");
        assert_eq!(
            redact_userinfo("see http://u:hunter2@h:1/p and https://x@y/"),
            "see http://h:1/p and https://y/"
        );
        assert_eq!(redact_userinfo("no url here"), "no url here");
        assert_eq!(redact_userinfo("http://a@b@c/d"), "http://c/d");
    }

    #[test]
    fn a_redirect_target_is_resolved_and_cleaned() {
        let request = url::Url::parse("https://api.example.com/v1/admin/users").unwrap();
        assert_eq!(
            redirect_target(&request, Some("http://u:hunter2@evil.example/x")),
            "`http://evil.example/x`"
        );
        assert_eq!(
            redirect_target(&request, Some("/elsewhere\u{1b}[2J")),
            "`https://api.example.com/elsewhere%1B[2J`"
        );
        assert_eq!(
            redirect_target(&request, Some("http://u:hunter2@[::1\u{7}/x")),
            "`http://[::1/x`"
        );
        assert!(redirect_target(&request, None).contains("no Location"));
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human(Duration::from_secs(3600)), "1h");
        assert_eq!(human(Duration::from_secs(600)), "10m");
        assert_eq!(human(Duration::from_secs(90)), "90s");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn the_deadline_runs_only_while_busy() {
        let deadline = Deadline::new(Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(
            deadline.left(),
            Duration::from_secs(60),
            "idle time counted"
        );
        {
            let _outer = deadline.start();
            let _inner = deadline.start();
            std::thread::sleep(Duration::from_millis(30));
        }
        let left = deadline.left();
        assert!(left <= Duration::from_millis(59_970), "{left:?}");
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(
            deadline.left(),
            left,
            "the clock ran after the last call ended"
        );
    }
}
