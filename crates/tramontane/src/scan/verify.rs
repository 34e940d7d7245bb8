//! `--verify`: whether a Mistral key candidate works, by asking the inference API for its
//! model list with it (`GET /v1/models`, which reads nothing and costs nothing). Opt-in:
//! sending a found key anywhere is a choice the person running the scan makes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::detect::Rule;
use super::error::ScanError;
use super::finding::{Finding, Verification};
use crate::provider::mistral::transport::{
    may_carry_credentials, redact_url, redact_userinfo, transport_cause,
};

/// The API verified against when `MISTRAL_API_URL` is not set.
pub const DEFAULT_API_URL: &str = "https://api.mistral.ai";
/// Checks in flight at once: a leak of many keys must not look like an attack.
const CONCURRENCY: usize = 4;

/// Asks the inference API about keys.
pub struct Verifier {
    http: reqwest::Client,
    models_url: String,
}

impl Verifier {
    /// A verifier for the API at `api_url` (https, or plain http to loopback only: the keys
    /// travel in the request), each check given up after `timeout`.
    pub fn new(api_url: &str, timeout: Duration) -> Result<Verifier, ScanError> {
        let url = url::Url::parse(api_url).map_err(|error| ScanError::VerifyUrl {
            url: redact_userinfo(api_url),
            reason: format!("not a URL: {error}"),
        })?;
        if !may_carry_credentials(&url) {
            return Err(ScanError::VerifyUrl {
                url: redact_url(&url),
                reason: "keys are sent only over https (or plain http to loopback)".into(),
            });
        }
        crate::tls::install_default_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            // A redirect would carry the key wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tramontane/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| ScanError::VerifyUrl {
                url: redact_url(&url),
                reason: error.to_string(),
            })?;
        Ok(Verifier {
            http,
            models_url: format!("{}/v1/models", url.as_str().trim_end_matches('/')),
        })
    }

    /// [`Verifier::verify_all`] for a caller with no async runtime of its own.
    pub fn verify_all_blocking(&self, findings: &mut [Finding]) -> Result<(), ScanError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| ScanError::VerifyUrl {
                url: self.models_url.clone(),
                reason: format!("cannot start the HTTP runtime: {error}"),
            })?;
        runtime.block_on(self.verify_all(findings));
        Ok(())
    }

    /// Verifies every Mistral key among `findings`, each distinct key once, and records the
    /// answer on each finding of it.
    pub async fn verify_all(&self, findings: &mut [Finding]) {
        let mut distinct: HashMap<String, SecretString> = HashMap::new();
        for finding in findings.iter() {
            if finding.rule == Rule::MistralApiKey
                && let Some(secret) = finding.secret_value()
            {
                distinct
                    .entry(digest(secret))
                    .or_insert_with(|| secret.clone());
            }
        }
        let limit = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
        let mut checks = tokio::task::JoinSet::new();
        for (id, secret) in distinct {
            let http = self.http.clone();
            let url = self.models_url.clone();
            let limit = Arc::clone(&limit);
            checks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                (id, check(&http, &url, &secret).await)
            });
        }
        let mut answers = HashMap::new();
        while let Some(joined) = checks.join_next().await {
            if let Ok((id, answer)) = joined {
                answers.insert(id, answer);
            }
        }
        for finding in findings.iter_mut() {
            if finding.rule != Rule::MistralApiKey {
                continue;
            }
            if let Some(secret) = finding.secret_value() {
                finding.verification =
                    Some(answers.get(&digest(secret)).cloned().unwrap_or_else(|| {
                        Verification::Unknown("the check did not finish".into())
                    }));
            }
        }
    }
}

/// `GET /v1/models` with the key as a bearer token: 2xx is live, 401 revoked, anything
/// else unknown. The body is never read.
async fn check(http: &reqwest::Client, url: &str, key: &SecretString) -> Verification {
    let Ok(mut token) = HeaderValue::from_str(&format!("Bearer {}", key.expose_secret())) else {
        return Verification::Unknown("the key cannot travel in a header".into());
    };
    token.set_sensitive(true);
    match http
        .get(url)
        .header(reqwest::header::AUTHORIZATION, token)
        .send()
        .await
    {
        Ok(response) => match response.status().as_u16() {
            200..=299 => Verification::Live,
            401 => Verification::Revoked,
            status @ 300..=399 => {
                Verification::Unknown(format!("HTTP {status}: redirects are not followed"))
            }
            status => Verification::Unknown(format!("HTTP {status}")),
        },
        Err(error) if error.is_timeout() => Verification::Unknown("timed out".into()),
        Err(error) => {
            let (cause, _) = transport_cause(&error.without_url());
            Verification::Unknown(cause)
        }
    }
}

/// Identifies a secret in memory without keeping a second copy of it as a map key.
fn digest(secret: &SecretString) -> String {
    let digest = Sha256::digest(secret.expose_secret().as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_travel_only_over_https_or_to_loopback() {
        assert!(Verifier::new("https://api.mistral.ai", Duration::from_secs(1)).is_ok());
        assert!(Verifier::new("http://127.0.0.1:9", Duration::from_secs(1)).is_ok());
        assert!(Verifier::new("http://localhost:9", Duration::from_secs(1)).is_ok());
        let Err(error) = Verifier::new("http://user:pw@api.example.com", Duration::from_secs(1))
        else {
            panic!("plain http to a remote host was accepted");
        };
        let shown = error.to_string();
        assert!(shown.contains("only over https"), "{shown}");
        assert!(!shown.contains("pw"), "{shown}");
        assert!(Verifier::new("not a url", Duration::from_secs(1)).is_err());
    }
}
