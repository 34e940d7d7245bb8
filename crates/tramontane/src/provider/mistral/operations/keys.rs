//! API keys: `/v1/admin/api-keys`. A create answers with the key's secret once; a key
//! whose answer lacks it is deleted again, since nobody will ever see its secret.

use jiff::civil::Date;
use serde_json::json;

use super::body;
use crate::provider::mistral::client::Client;
use crate::provider::mistral::error::ApiError;
use crate::provider::{Outcome, ProviderError};

pub(super) async fn create(
    client: &Client,
    workspace: &str,
    user: &str,
    name: &str,
    expiration: Option<Date>,
) -> Result<Outcome, ProviderError> {
    let created = client
        .create_api_key(&body(json!({
            "workspace_uuid": workspace,
            "user_id": user,
            "name": name,
            "expiration": expiration.map(|d| d.to_string()),
        }))?)
        .await?;
    if let Some(secret) = created.key {
        return Ok(Outcome::Key {
            id: created.key_id,
            secret,
        });
    }
    // A key whose secret nobody will ever see must not stay.
    let problem = match client.delete_api_key(&created.key_id).await {
        Ok(_) | Err(ApiError::NotFound { .. }) => "no `key` in the answer, so the new key's secret is lost; the key was deleted again, so run apply again".to_owned(),
        Err(cleanup) => format!(
            "no `key` in the answer, so the new key's secret is lost, and deleting the key failed too ({cleanup}); delete key {} in the console (Admin → API keys)",
            created.key_id
        ),
    };
    Err(ProviderError::SecretLost {
        call: "POST /v1/admin/api-keys".into(),
        problem,
    })
}

pub(super) async fn delete(client: &Client, key: &str) -> Result<Outcome, ProviderError> {
    client.delete_api_key(key).await?;
    Ok(Outcome::Done)
}
