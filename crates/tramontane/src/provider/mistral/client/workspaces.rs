//! Workspaces and their members: `/v1/admin/workspaces`.

use reqwest::Method;

use super::send::Repeat;
use super::{Client, WORKSPACES_PAGE_SIZE};
use crate::provider::mistral::api::*;
use crate::provider::mistral::error::ApiError;
use crate::provider::mistral::paging::Page;

impl Client {
    pub async fn list_workspaces(&self, archived: bool) -> Result<Vec<WorkspaceOut>, ApiError> {
        let extra = [("is_archived", archived.to_string())];
        self.all_pages(
            "/v1/admin/workspaces",
            &extra,
            WORKSPACES_PAGE_SIZE,
            |page: WorkspacesOut| Page {
                total: Some(page.total),
                items: page.items,
            },
        )
        .await
    }

    pub async fn create_workspace(
        &self,
        workspace: &AdminWorkspaceIn,
    ) -> Result<WorkspaceEnrichedOut, ApiError> {
        self.send(
            Method::POST,
            "/v1/admin/workspaces",
            &[],
            Some(workspace),
            Repeat::OnlyIfRefused,
        )
        .await
    }

    pub async fn update_workspace(
        &self,
        workspace: &str,
        update: &UpdateWorkspaceIn,
    ) -> Result<WorkspaceOut, ApiError> {
        self.send(
            Method::PATCH,
            &format!("/v1/admin/workspaces/{workspace}"),
            &[],
            Some(update),
            Repeat::Safe,
        )
        .await
    }

    pub async fn archive_workspace(&self, workspace: &str) -> Result<(), ApiError> {
        self.send(
            Method::DELETE,
            &format!("/v1/admin/workspaces/{workspace}"),
            &[],
            None::<&()>,
            Repeat::Safe,
        )
        .await
    }

    pub async fn upsert_workspace_users(
        &self,
        workspace: &str,
        members: &WorkspaceMemberIn,
    ) -> Result<AddOrUpdateUsersToWorkspaceOut, ApiError> {
        self.send(
            Method::PATCH,
            &format!("/v1/admin/workspaces/{workspace}/users"),
            &[],
            Some(members),
            Repeat::Safe,
        )
        .await
    }

    pub async fn remove_workspace_users(
        &self,
        workspace: &str,
        members: &RemoveWorkspaceMembersIn,
    ) -> Result<RemoveWorkspaceMembersOut, ApiError> {
        let path = format!("/v1/admin/workspaces/{workspace}/remove-users");
        self.send(Method::DELETE, &path, &[], Some(members), Repeat::Safe)
            .await
    }
}
