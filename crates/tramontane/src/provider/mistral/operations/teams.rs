//! Teams (user groups): `/v1/admin/user-groups`, their members, workspace assignments and
//! organization role.

use serde_json::json;

use super::body;
use crate::provider::mistral::client::Client;
use crate::provider::{Outcome, ProviderError};

pub(super) async fn create(
    client: &Client,
    name: &str,
    description: &str,
) -> Result<Outcome, ProviderError> {
    let created = client
        .create_group(&body(
            json!({"name": name, "description": description, "parent_group_ids": []}),
        )?)
        .await?;
    Ok(Outcome::Created(created.uuid))
}

pub(super) async fn set_description(
    client: &Client,
    group: &str,
    description: &str,
) -> Result<Outcome, ProviderError> {
    client
        .update_group(group, &body(json!({"description": description}))?)
        .await?;
    Ok(Outcome::Done)
}

pub(super) async fn delete(client: &Client, group: &str) -> Result<Outcome, ProviderError> {
    client.delete_group(group).await?;
    Ok(Outcome::Done)
}

/// Whether members join a group or leave it: one body, two verbs on one path.
pub(super) enum Membership {
    Join,
    Leave,
}

pub(super) async fn change_members(
    client: &Client,
    group: &str,
    users: &[String],
    change: Membership,
) -> Result<Outcome, ProviderError> {
    let users = body(json!({"user_uuids": users}))?;
    match change {
        Membership::Join => client.add_group_members(group, &users).await?,
        Membership::Leave => client.remove_group_members(group, &users).await?,
    }
    Ok(Outcome::Done)
}

/// Whether a team is new to a workspace or already assigned to it: a new assignment names
/// the workspace in its body, an existing one in its path.
pub(super) enum Assignment {
    New,
    Existing,
}

pub(super) async fn set_workspace_roles(
    client: &Client,
    group: &str,
    workspace: &str,
    roles: &[String],
    assignment: Assignment,
) -> Result<Outcome, ProviderError> {
    match assignment {
        Assignment::New => {
            let assignment = body(json!({"workspace_uuid": workspace, "role_names": roles}))?;
            client.assign_group_workspace(group, &assignment).await?
        }
        Assignment::Existing => {
            let roles = body(json!({"role_names": roles}))?;
            client
                .update_group_workspace(group, workspace, &roles)
                .await?
        }
    }
    Ok(Outcome::Done)
}

pub(super) async fn unassign_workspace(
    client: &Client,
    group: &str,
    workspace: &str,
) -> Result<Outcome, ProviderError> {
    client.unassign_group_workspace(group, workspace).await?;
    Ok(Outcome::Done)
}

/// The endpoint takes a role id, not a name: the id is looked up first.
pub(super) async fn set_organization_role(
    client: &Client,
    group: &str,
    role: &str,
) -> Result<Outcome, ProviderError> {
    let roles = client.roles().await?;
    let id = roles
        .organization_roles
        .iter()
        .find(|known| known.name == role)
        .map(|known| known.uuid.clone())
        .ok_or_else(|| ProviderError::Unexpected {
            call: "GET /v1/admin/roles".into(),
            problem: format!("no organization role named `{role}`"),
        })?;
    client
        .set_group_organization_role(group, &body(json!({"organization_role": id}))?)
        .await?;
    Ok(Outcome::Done)
}
