//! Members, pending invitations and the roles table: `/v1/admin/roles`, `/v1/admin/users`.

use reqwest::Method;

use super::send::Repeat;
use super::{Client, USERS_PAGE_SIZE};
use crate::provider::mistral::api::*;
use crate::provider::mistral::error::ApiError;
use crate::provider::mistral::paging::{Page, UserEntry};

impl Client {
    pub async fn roles(&self) -> Result<RolesOut, ApiError> {
        self.get("/v1/admin/roles", &[]).await
    }

    /// Members and pending invitations; a page holds both, and `total` counts both.
    pub async fn list_users(
        &self,
    ) -> Result<(Vec<AdminOrganizationMemberOut>, Vec<OrganizationInviteOut>), ApiError> {
        let entries = self
            .all_pages(
                "/v1/admin/users",
                &[],
                USERS_PAGE_SIZE,
                |page: OrganizationAdminUsersOut| Page {
                    total: page.total,
                    items: (page.members.into_iter().map(UserEntry::Member))
                        .chain(page.invites.into_iter().map(UserEntry::Invite))
                        .collect(),
                },
            )
            .await?;
        let mut members = Vec::new();
        let mut invites = Vec::new();
        for entry in entries {
            match entry {
                UserEntry::Member(member) => members.push(member),
                UserEntry::Invite(invite) => invites.push(invite),
            }
        }
        Ok((members, invites))
    }

    pub async fn create_users(
        &self,
        users: &[OrganizationMemberCreate],
    ) -> Result<OrganizationUsersCreateOut, ApiError> {
        self.send(
            Method::POST,
            "/v1/admin/users",
            &[],
            Some(&users),
            Repeat::OnlyIfRefused,
        )
        .await
    }

    pub async fn update_user(
        &self,
        user: &str,
        update: &AdminOrganizationMemberUpdate,
    ) -> Result<AdminOrganizationMemberOut, ApiError> {
        self.send(
            Method::PATCH,
            &format!("/v1/admin/users/{user}"),
            &[],
            Some(update),
            Repeat::Safe,
        )
        .await
    }

    pub async fn delete_user(&self, user: &str) -> Result<DeleteOut, ApiError> {
        self.send(
            Method::DELETE,
            &format!("/v1/admin/users/{user}"),
            &[],
            None::<&()>,
            Repeat::Safe,
        )
        .await
    }
}
