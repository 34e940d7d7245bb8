//! Each [`Operation`] as its one Admin API call, by resource kind, and what a create whose
//! answer was lost is found to have made.

mod keys;
mod limits;
mod members;
mod teams;
mod workspaces;

use serde::de::DeserializeOwned;

use super::client::Client;
use crate::provider::{Operation, Outcome, ProviderError};

/// How many times a create whose answer was lost is sent, each after checking that the
/// previous one did not happen.
pub(super) const CREATE_ATTEMPTS: usize = 3;

pub(super) fn is_delete(operation: &Operation) -> bool {
    matches!(
        operation,
        Operation::DeleteUser { .. }
            | Operation::ArchiveWorkspace { .. }
            | Operation::DeleteGroup { .. }
            | Operation::UnassignGroupWorkspace { .. }
            | Operation::DeleteKey { .. }
    )
}

pub(super) fn is_create(operation: &Operation) -> bool {
    matches!(
        operation,
        Operation::CreateUser { .. }
            | Operation::CreateWorkspace { .. }
            | Operation::CreateGroup { .. }
            | Operation::AssignGroupWorkspace { .. }
            | Operation::CreateKey { .. }
    )
}

/// Sends `operation` once.
pub(super) async fn perform_once(
    client: &Client,
    operation: Operation,
) -> Result<Outcome, ProviderError> {
    use Operation::*;
    match operation {
        CreateUser {
            email,
            first_name,
            last_name,
            roles,
        } => members::create(client, &email, &first_name, &last_name, &roles).await,
        SetUserRoles { user, roles } => members::set_roles(client, &user, &roles).await,
        DeleteUser { user } => members::delete(client, &user).await,
        CreateWorkspace {
            name,
            description,
            admin,
        } => workspaces::create(client, &name, &description, &admin).await,
        SetWorkspaceDescription {
            workspace,
            description,
        } => workspaces::set_description(client, &workspace, &description).await,
        ArchiveWorkspace { workspace } => workspaces::archive(client, &workspace).await,
        UpsertWorkspaceMembers { workspace, members } => {
            workspaces::upsert_members(client, &workspace, members).await
        }
        RemoveWorkspaceMembers { workspace, users } => {
            workspaces::remove_members(client, &workspace, users).await
        }
        CreateGroup { name, description } => teams::create(client, &name, &description).await,
        SetGroupDescription { group, description } => {
            teams::set_description(client, &group, &description).await
        }
        DeleteGroup { group } => teams::delete(client, &group).await,
        AddGroupMembers { group, users } => {
            teams::change_members(client, &group, &users, teams::Membership::Join).await
        }
        RemoveGroupMembers { group, users } => {
            teams::change_members(client, &group, &users, teams::Membership::Leave).await
        }
        AssignGroupWorkspace {
            group,
            workspace,
            roles,
        } => {
            let new = teams::Assignment::New;
            teams::set_workspace_roles(client, &group, &workspace, &roles, new).await
        }
        UpdateGroupWorkspace {
            group,
            workspace,
            roles,
        } => {
            let existing = teams::Assignment::Existing;
            teams::set_workspace_roles(client, &group, &workspace, &roles, existing).await
        }
        UnassignGroupWorkspace { group, workspace } => {
            teams::unassign_workspace(client, &group, &workspace).await
        }
        SetGroupOrganizationRole { group, role } => {
            teams::set_organization_role(client, &group, &role).await
        }
        CreateKey {
            workspace,
            user,
            name,
            expiration,
            ..
        } => keys::create(client, &workspace, &user, &name, expiration).await,
        DeleteKey { key } => keys::delete(client, &key).await,
        SetSpendLimit { limit } => limits::set_spend_limit(client, limit).await,
    }
}

/// After an ambiguous failure of a create: what the call made, if it made anything.
/// A key found this way has lost its secret with the answer, so it is deleted and
/// `None` returned, for the key to be created again.
pub(super) async fn find_created(
    client: &Client,
    operation: &Operation,
) -> Result<Option<Outcome>, ProviderError> {
    Ok(match operation {
        Operation::CreateUser { email, .. } => {
            let (members, _) = client.list_users().await?;
            members
                .into_iter()
                .find(|member| {
                    member
                        .email
                        .as_deref()
                        .is_some_and(|found| found.eq_ignore_ascii_case(email))
                })
                .map(|member| Outcome::Created(member.uuid))
        }
        Operation::CreateWorkspace { name, .. } => client
            .list_workspaces(false)
            .await?
            .into_iter()
            .find(|workspace| workspace.name == *name)
            .map(|workspace| Outcome::Created(workspace.uuid)),
        Operation::CreateGroup { name, .. } => client
            .list_groups()
            .await?
            .into_iter()
            .find(|group| group.name == *name)
            .map(|group| Outcome::Created(group.uuid)),
        Operation::AssignGroupWorkspace {
            group, workspace, ..
        } => client
            .group_workspaces(group)
            .await?
            .iter()
            .any(|assignment| assignment.workspace_uuid == *workspace)
            .then_some(Outcome::Done),
        Operation::CreateKey {
            workspace,
            name,
            known,
            ..
        } => {
            let orphans: Vec<String> = client
                .list_api_keys_matching(Some(name))
                .await?
                .into_iter()
                .filter(|key| {
                    key.workspace_id.as_deref() == Some(workspace.as_str())
                        && key.name.as_deref() == Some(name.as_str())
                        && !known.contains(&key.key_id)
                })
                .map(|key| key.key_id)
                .collect();
            for orphan in orphans {
                client.delete_api_key(&orphan).await?;
            }
            None
        }
        _ => None,
    })
}

/// Builds a request body from its JSON shape, so a body reads like the API documents it.
fn body<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ProviderError> {
    serde_json::from_value(value).map_err(|error| ProviderError::Unexpected {
        call: "building a request".into(),
        problem: error.to_string(),
    })
}
