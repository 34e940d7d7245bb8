//! Calling a gateway as its callers do: a POST or GET with a gateway key, the answer kept
//! whole (status, headers, body) so a test can check Mistral's error shape and search it for
//! leaks, and the gateway's Prometheus metrics read one value at a time.

use std::time::{Duration, Instant};

use serde_json::Value;

/// An HTTP client for gateway tests: generous timeouts, and a pool large enough that a burst
/// of concurrent requests is not serialized by it.
pub fn client() -> reqwest::Client {
    tramontane::tls::install_default_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(600)
        .build()
        .expect("an HTTP client")
}

/// An answer read whole.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }

    /// Status, headers and body in one string, for leak checks.
    pub fn shown(&self) -> String {
        format!("{} {:?} {}", self.status, self.headers, self.body)
    }

    /// Asserts a gateway decision in Mistral's error shape: `object: error`, this `code`, a
    /// message, and the `type` and `param` fields Mistral's clients read.
    pub fn refusal(&self, status: u16, code: &str) -> &Answer {
        assert_eq!(self.status, status, "{}", self.body);
        let body = self.json();
        assert_eq!(body["object"], "error", "{}", self.body);
        assert_eq!(body["code"], code, "{}", self.body);
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}",
            self.body
        );
        assert!(
            body.get("type").is_some() && body.get("param").is_some(),
            "{}",
            self.body
        );
        self
    }
}

async fn read(response: reqwest::Response) -> Answer {
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.expect("the answer's body arrives"),
    }
}

/// POSTs a JSON body, with `Authorization: Bearer KEY` when a key is given.
pub async fn post(client: &reqwest::Client, url: &str, key: Option<&str>, body: &str) -> Answer {
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    read(request.send().await.expect("the gateway answers")).await
}

pub async fn get(client: &reqwest::Client, url: &str, key: Option<&str>) -> Answer {
    let mut request = client.get(url);
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    read(request.send().await.expect("the gateway answers")).await
}

/// The value of one metric line of the gateway whose admin listener is at `base`
/// (`http://HOST:PORT`), such as
/// `tramontane_gateway_reservations_open`, or with its labels,
/// `tramontane_gateway_tokens_total{kind="completion"}`.
pub async fn metric(client: &reqwest::Client, base: &str, name: &str) -> Option<f64> {
    let text = get(client, &format!("{base}/metrics"), None).await.body;
    text.lines().find_map(|line| {
        let (key, value) = line.rsplit_once(' ')?;
        (key == name).then(|| value.parse().ok())?
    })
}

/// Waits until a metric reads `want`, failing the test after `timeout`.
pub async fn wait_for_metric(
    client: &reqwest::Client,
    base: &str,
    name: &str,
    want: f64,
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let value = metric(client, base, name).await;
        if value == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} at {base} stayed at {value:?}, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
