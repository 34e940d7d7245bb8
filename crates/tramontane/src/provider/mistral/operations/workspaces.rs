//! Workspaces and their members: `/v1/admin/workspaces`.

use serde_json::json;

use super::body;
use crate::provider::mistral::client::Client;
use crate::provider::{Outcome, ProviderError};

pub(super) async fn create(
    client: &Client,
    name: &str,
    description: &str,
    admin: &str,
) -> Result<Outcome, ProviderError> {
    let created = client
        .create_workspace(&body(
            json!({"name": name, "description": description, "admin_user_id": admin}),
        )?)
        .await?;
    Ok(Outcome::Created(created.uuid))
}

pub(super) async fn set_description(
    client: &Client,
    workspace: &str,
    description: &str,
) -> Result<Outcome, ProviderError> {
    client
        .update_workspace(workspace, &body(json!({"description": description}))?)
        .await?;
    Ok(Outcome::Done)
}

/// The API's DELETE archives a workspace.
pub(super) async fn archive(client: &Client, workspace: &str) -> Result<Outcome, ProviderError> {
    client.archive_workspace(workspace).await?;
    Ok(Outcome::Done)
}

pub(super) async fn upsert_members(
    client: &Client,
    workspace: &str,
    members: Vec<(String, Vec<String>)>,
) -> Result<Outcome, ProviderError> {
    let members: Vec<_> = members
        .into_iter()
        .map(|(user, roles)| json!({"user_uuid": user, "role_names": roles}))
        .collect();
    client
        .upsert_workspace_users(workspace, &body(json!({"members": members}))?)
        .await?;
    Ok(Outcome::Done)
}

pub(super) async fn remove_members(
    client: &Client,
    workspace: &str,
    users: Vec<String>,
) -> Result<Outcome, ProviderError> {
    let members: Vec<_> = users
        .into_iter()
        .map(|user| json!({"user_uuid": user}))
        .collect();
    client
        .remove_workspace_users(workspace, &body(json!({"members": members}))?)
        .await?;
    Ok(Outcome::Done)
}
