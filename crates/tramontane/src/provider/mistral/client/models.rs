//! `GET /v1/models`, read with the admin key: the models the organization is served, which
//! `tramontane models diff` compares with the bundled catalog.

use super::Client;
use crate::provider::mistral::error::ApiError;

impl Client {
    /// The answer as it came, re-encoded: [`crate::policy::catalog::Catalog::from_slice`]
    /// reads it like any saved answer.
    pub async fn list_models(&self) -> Result<Vec<u8>, ApiError> {
        let list: serde_json::Value = self.get("/v1/models", &[]).await?;
        Ok(serde_json::to_vec(&list).unwrap_or_default())
    }
}
