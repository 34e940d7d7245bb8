//! The organization's monthly spend limit: `/v1/admin/spend-limit`.

use serde_json::json;

use super::body;
use crate::provider::mistral::client::Client;
use crate::provider::{OrganizationLimit, Outcome, ProviderError};

pub(super) async fn set_spend_limit(
    client: &Client,
    limit: OrganizationLimit,
) -> Result<Outcome, ProviderError> {
    let request = match limit {
        OrganizationLimit::Monthly { units } => {
            json!({"amount": units, "no_monthly_limit": false})
        }
        OrganizationLimit::Unlimited => json!({"amount": 0, "no_monthly_limit": true}),
    };
    client.set_spend_limit(&body(request)?).await?;
    Ok(Outcome::Done)
}
