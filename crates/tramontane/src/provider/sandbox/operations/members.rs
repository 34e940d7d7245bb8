//! Organization members: the last organization admin is never demoted or removed.

use std::collections::BTreeSet;

use crate::provider::Outcome;
use crate::provider::sandbox::{ORGANIZATION_ROLES, Result, SandboxError, SandboxOrg, User};

impl SandboxOrg {
    pub(super) fn create_user(
        &mut self,
        email: String,
        first_name: String,
        last_name: String,
        roles: Vec<String>,
        now: &str,
    ) -> Result<Outcome> {
        Self::check_roles(&roles, &ORGANIZATION_ROLES, "organization")?;
        if !email.contains('@') {
            return Err(SandboxError::Unprocessable(format!(
                "`{email}` is not an email"
            )));
        }
        if self
            .users
            .values()
            .any(|user| user.email.eq_ignore_ascii_case(&email))
        {
            return Err(SandboxError::Conflict(format!(
                "`{email}` is already a member"
            )));
        }
        let id = self.id();
        self.invites
            .retain(|_, invite| !invite.email.eq_ignore_ascii_case(&email));
        let roles = if roles.is_empty() {
            BTreeSet::from(["member".into()])
        } else {
            roles.into_iter().collect()
        };
        self.users.insert(
            id.clone(),
            User {
                email,
                first_name,
                last_name,
                roles,
                created_at: now.into(),
            },
        );
        Ok(Outcome::Created(id))
    }

    pub(super) fn set_user_roles(&mut self, user: String, roles: Vec<String>) -> Result<Outcome> {
        Self::check_roles(&roles, &ORGANIZATION_ROLES, "organization")?;
        let was_admin = self.user(&user)?.roles.contains("organization_admin");
        let stays_admin = roles.iter().any(|role| role == "organization_admin");
        if was_admin && !stays_admin && self.admins() == 1 {
            return Err(SandboxError::Conflict(
                "the last organization admin cannot be demoted".into(),
            ));
        }
        if let Some(member) = self.users.get_mut(&user) {
            member.roles = roles.into_iter().collect();
        }
        Ok(Outcome::Done)
    }

    pub(super) fn delete_user(&mut self, user: String) -> Result<Outcome> {
        if self.user(&user)?.roles.contains("organization_admin") && self.admins() == 1 {
            return Err(SandboxError::Conflict(
                "the last organization admin cannot be removed".into(),
            ));
        }
        self.users.remove(&user);
        for workspace in self.workspaces.values_mut() {
            workspace.members.remove(&user);
        }
        for group in self.groups.values_mut() {
            group.members.remove(&user);
        }
        Ok(Outcome::Done)
    }
}
