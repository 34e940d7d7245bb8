//! API keys: `/v1/admin/api-keys`, whose create answers with the secret once, and the
//! inference API's `GET /v1/models`, which shows a new key works.

use std::sync::atomic::Ordering;

use reqwest::Method;
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};

use super::send::Repeat;
use super::{API_KEYS_PAGE_SIZE, Client};
use crate::provider::mistral::api::*;
use crate::provider::mistral::error::ApiError;
use crate::provider::mistral::paging::{OffsetRead, PAGES_PER_BATCH};
use crate::provider::mistral::transport::transport_cause;

impl Client {
    /// Offset paging without a total, read ahead ([`OffsetRead`]): after the first page, as
    /// many pages at once as requests may be in flight, until the first short one.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyExtendedOut>, ApiError> {
        self.list_api_keys_matching(None).await
    }

    /// Keys whose name contains `name` (the API matches substrings, case-insensitively):
    /// the cheap way to look for one key.
    pub async fn list_api_keys_matching(
        &self,
        name: Option<&str>,
    ) -> Result<Vec<ApiKeyExtendedOut>, ApiError> {
        let path = "/v1/admin/api-keys";
        let mut keys = OffsetRead::new(format!("GET {path}"), API_KEYS_PAGE_SIZE);
        loop {
            let window = keys.window(self.window().clamp(1, PAGES_PER_BATCH));
            if window.is_empty() {
                return keys.finish();
            }
            let answers = crate::provider::mistral::join_all(
                window
                    .iter()
                    .map(|&(offset, limit)| {
                        let mut query =
                            vec![("limit", limit.to_string()), ("offset", offset.to_string())];
                        if let Some(name) = name {
                            query.push(("name", name.to_owned()));
                        }
                        async move { self.get::<ApiKeysExtendedOut>(path, &query).await }
                    })
                    .collect(),
            )
            .await;
            for (&(offset, _), answer) in window.iter().zip(answers) {
                match answer {
                    Ok(page) => keys.take(offset, page.keys)?,
                    Err(_) if keys.failed_past_end() => {}
                    Err(error) => return Err(error),
                }
            }
        }
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
}
