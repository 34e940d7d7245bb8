//! The organization's monthly spend limit: `/v1/admin/spend-limit`.

use serde_json::json;

use super::body;
use crate::model::SpendLimit;
use crate::provider::mistral::client::Client;
use crate::provider::{Outcome, ProviderError};

pub(super) async fn set_spend_limit(
    client: &Client,
    limit: SpendLimit,
) -> Result<Outcome, ProviderError> {
    let request = match limit {
        SpendLimit::Monthly(amount) => {
            json!({"amount": amount.round() as i64, "no_monthly_limit": false})
        }
        SpendLimit::Unlimited(_) => json!({"amount": 0, "no_monthly_limit": true}),
    };
    client.set_spend_limit(&body(request)?).await?;
    Ok(Outcome::Done)
}
