//! The live organization through Mistral's Admin API.
//!
//! [`client`] speaks HTTP (pages, retries, rate limits), [`paging`] accepts a list only
//! whole and [`transport`] bounds what the client trusts of a server; `read` reads the
//! whole org with them and resolves every UUID to a name, and `operations` turns each
//! [`Operation`] into its one call, finding out after a lost answer whether a create
//! happened.

mod activity;
pub mod api;
pub mod client;
pub mod error;
mod operations;
pub mod pacing;
mod paging;
mod read;
pub mod transport;

use std::time::Duration;

use secrecy::SecretString;

use self::client::Client;
use self::operations::{CREATE_ATTEMPTS, is_create, is_delete};
use super::{Operation, Outcome, Provider, ProviderError};
use crate::model::LiveOrg;

pub struct MistralProvider {
    client: Client,
    /// Where new keys are shown to work: the inference API's root; the Admin API's when
    /// `None`.
    inference_url: Option<url::Url>,
    /// The first pause between attempts to show a new key works; later ones double.
    verify_backoff: Duration,
}

impl MistralProvider {
    pub fn new(client: Client) -> MistralProvider {
        MistralProvider {
            client,
            inference_url: None,
            verify_backoff: Duration::from_millis(500),
        }
    }

    /// The models the organization is served (`GET /v1/models`), as a model list answer.
    pub async fn model_list(&self) -> Result<Vec<u8>, ProviderError> {
        Ok(self.client.list_models().await?)
    }

    /// Verifies new keys against `url` (the inference API's root), pausing `backoff`, then
    /// twice that, and so on, between attempts: a key may take a moment to be accepted.
    pub fn verifying_at(mut self, url: url::Url, backoff: Duration) -> MistralProvider {
        self.inference_url = Some(url);
        self.verify_backoff = backoff;
        self
    }
}

/// How many times a new key is tried against `GET /v1/models` before it is judged broken,
/// and the longest pause between two tries: with the default first pause of 0.5 s, a new
/// key has about 45 s to be accepted, since one may take a moment to reach every server.
const VERIFY_ATTEMPTS: usize = 8;
const VERIFY_LONGEST_PAUSE: Duration = Duration::from_secs(15);

impl Provider for MistralProvider {
    async fn read(&self) -> Result<LiveOrg, ProviderError> {
        read::read_org(&self.client).await
    }

    async fn perform(&self, operation: Operation) -> Result<Outcome, ProviderError> {
        let mut attempt = 1;
        loop {
            match operations::perform_once(&self.client, operation.clone()).await {
                Err(ProviderError::Api(error)) if error.is_ambiguous() && is_create(&operation) => {
                    // The create may have happened though no answer said so: look before
                    // sending it again, so nothing is ever created twice.
                    if let Some(outcome) =
                        operations::find_created(&self.client, &operation).await?
                    {
                        return Ok(outcome);
                    }
                    if attempt >= CREATE_ATTEMPTS {
                        return Err(error.into());
                    }
                    attempt += 1;
                }
                // A delete answered 404 has nothing left to delete: what it asked for holds.
                // This is how a retried delete whose first answer was lost ends.
                Err(ProviderError::Api(error::ApiError::NotFound { .. }))
                    if is_delete(&operation) =>
                {
                    return Ok(Outcome::Done);
                }
                other => return other,
            }
        }
    }

    async fn verify_key(&self, secret: &SecretString) -> Result<(), ProviderError> {
        // The inference API shares the Admin API's root unless told otherwise.
        let base = match &self.inference_url {
            Some(url) => url.clone(),
            None => url::Url::parse(&self.client.url("")).map_err(|error| {
                ProviderError::Unexpected {
                    call: "GET /v1/models".into(),
                    problem: format!("the API root is not a URL: {error}"),
                }
            })?,
        };
        let mut pause = self.verify_backoff;
        let mut attempt = 1;
        loop {
            let answer = self.client.models_status(&base, secret).await;
            let last = attempt >= VERIFY_ATTEMPTS;
            match answer {
                Ok(200..=299) => return Ok(()),
                // A key just made may not be accepted yet, and refusals and server errors
                // pass: each is asked again, up to the last attempt.
                Ok(401 | 403 | 429 | 500..=599) if !last => {}
                Ok(status) => {
                    return Err(ProviderError::KeyRejected {
                        call: "GET /v1/models".into(),
                        status,
                        attempts: attempt,
                    });
                }
                Err(_) if !last => {}
                Err(error) => return Err(error.into()),
            }
            tokio::time::sleep(pause).await;
            pause = pause.saturating_mul(2).min(VERIFY_LONGEST_PAUSE);
            attempt += 1;
        }
    }

    fn requests(&self) -> u64 {
        self.client.requests()
    }
}

/// Polls every future to completion concurrently, keeping their order.
pub(crate) async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
