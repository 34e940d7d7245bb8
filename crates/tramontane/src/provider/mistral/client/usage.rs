//! `GET /v1/admin/usage`: one month's usage and prices, of the organization or of one
//! workspace. One answer, no pages.

use super::Client;
use crate::provider::mistral::api::UsageOutJson;
use crate::provider::mistral::error::ApiError;

impl Client {
    /// The usage of `year`-`month` (1–12), of the workspace with id `workspace` or, without
    /// it, of the whole organization. The spec types `month` and `year` as strings.
    pub async fn usage(
        &self,
        year: i16,
        month: i8,
        workspace: Option<&str>,
    ) -> Result<UsageOutJson, ApiError> {
        let mut query = vec![("month", month.to_string()), ("year", year.to_string())];
        if let Some(workspace) = workspace {
            query.push(("workspace_id", workspace.to_owned()));
        }
        self.get("/v1/admin/usage", &query).await
    }
}
