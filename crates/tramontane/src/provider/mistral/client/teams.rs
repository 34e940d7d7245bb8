//! Teams (user groups), their members, workspace assignments and organization role:
//! `/v1/admin/user-groups`.

use reqwest::Method;

use super::send::Repeat;
use super::{Client, GROUP_MEMBERS_PAGE_SIZE, GROUP_WORKSPACES_PAGE_SIZE, GROUPS_PAGE_SIZE};
use crate::provider::mistral::api::*;
use crate::provider::mistral::error::ApiError;
use crate::provider::mistral::paging::Page;

impl Client {
    pub async fn list_groups(&self) -> Result<Vec<AdminUserGroupOut>, ApiError> {
        self.all_pages(
            "/v1/admin/user-groups",
            &[],
            GROUPS_PAGE_SIZE,
            |page: AdminUserGroupsOut| Page {
                total: Some(page.total),
                items: page.items,
            },
        )
        .await
    }

    pub async fn group_members(
        &self,
        group: &str,
    ) -> Result<Vec<AdminUserGroupMemberOut>, ApiError> {
        let path = format!("/v1/admin/user-groups/{group}/members");
        self.all_pages(
            &path,
            &[],
            GROUP_MEMBERS_PAGE_SIZE,
            |page: AdminUserGroupMembersOut| Page {
                total: Some(page.total),
                items: page.members,
            },
        )
        .await
    }

    pub async fn group_workspaces(
        &self,
        group: &str,
    ) -> Result<Vec<GroupWorkspaceAssignmentOut>, ApiError> {
        let path = format!("/v1/admin/user-groups/{group}/workspaces");
        self.all_pages(
            &path,
            &[],
            GROUP_WORKSPACES_PAGE_SIZE,
            |page: GroupWorkspaceAssignmentsOut| Page {
                total: Some(page.total),
                items: page.items,
            },
        )
        .await
    }

    pub async fn create_group(
        &self,
        group: &AdminUserGroupIn,
    ) -> Result<AdminUserGroupOut, ApiError> {
        self.send(
            Method::POST,
            "/v1/admin/user-groups",
            &[],
            Some(group),
            Repeat::OnlyIfRefused,
        )
        .await
    }

    pub async fn update_group(
        &self,
        group: &str,
        update: &AdminUpdateUserGroupIn,
    ) -> Result<AdminUserGroupOut, ApiError> {
        self.send(
            Method::PATCH,
            &format!("/v1/admin/user-groups/{group}"),
            &[],
            Some(update),
            Repeat::Safe,
        )
        .await
    }

    pub async fn delete_group(&self, group: &str) -> Result<(), ApiError> {
        self.send(
            Method::DELETE,
            &format!("/v1/admin/user-groups/{group}"),
            &[],
            None::<&()>,
            Repeat::Safe,
        )
        .await
    }

    /// Adding members who are already in the group changes nothing, so this is repeatable.
    pub async fn add_group_members(
        &self,
        group: &str,
        users: &AdminAssignUsersToGroupIn,
    ) -> Result<(), ApiError> {
        self.send(
            Method::POST,
            &format!("/v1/admin/user-groups/{group}/members"),
            &[],
            Some(users),
            Repeat::Safe,
        )
        .await
    }

    pub async fn remove_group_members(
        &self,
        group: &str,
        users: &AdminAssignUsersToGroupIn,
    ) -> Result<(), ApiError> {
        self.send(
            Method::DELETE,
            &format!("/v1/admin/user-groups/{group}/members"),
            &[],
            Some(users),
            Repeat::Safe,
        )
        .await
    }

    pub async fn assign_group_workspace(
        &self,
        group: &str,
        assignment: &AssignGroupToWorkspaceIn,
    ) -> Result<(), ApiError> {
        let path = format!("/v1/admin/user-groups/{group}/workspaces");
        self.send(
            Method::POST,
            &path,
            &[],
            Some(assignment),
            Repeat::OnlyIfRefused,
        )
        .await
    }

    pub async fn update_group_workspace(
        &self,
        group: &str,
        workspace: &str,
        update: &UpdateGroupWorkspaceAssignmentIn,
    ) -> Result<(), ApiError> {
        let path = format!("/v1/admin/user-groups/{group}/workspaces/{workspace}");
        self.send(Method::PATCH, &path, &[], Some(update), Repeat::Safe)
            .await
    }

    pub async fn unassign_group_workspace(
        &self,
        group: &str,
        workspace: &str,
    ) -> Result<(), ApiError> {
        let path = format!("/v1/admin/user-groups/{group}/workspaces/{workspace}");
        self.send(Method::DELETE, &path, &[], None::<&()>, Repeat::Safe)
            .await
    }

    pub async fn set_group_organization_role(
        &self,
        group: &str,
        role: &UpdateUserGroupOrganizationRoleIn,
    ) -> Result<(), ApiError> {
        let path = format!("/v1/admin/user-groups/{group}/organization-role");
        self.send(Method::PATCH, &path, &[], Some(role), Repeat::Safe)
            .await
    }
}
