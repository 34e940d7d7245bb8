//! The organization's limits: `/v1/admin/spend-limit` (read and set), `/v1/admin/rate-limit`
//! (read only).

use reqwest::Method;

use super::Client;
use super::send::Repeat;
use crate::provider::mistral::api::*;
use crate::provider::mistral::error::ApiError;

impl Client {
    pub async fn spend_limit(&self) -> Result<LimitsOut, ApiError> {
        self.get("/v1/admin/spend-limit", &[]).await
    }

    pub async fn rate_limit(&self) -> Result<RateLimitsOut, ApiError> {
        self.get("/v1/admin/rate-limit", &[]).await
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
