//! Each [`Operation`] carried out on the organization as the Admin API would, by resource
//! kind, and refused as the API refuses it.

mod keys;
mod limits;
mod members;
mod teams;
mod workspaces;

use super::{Group, Result, SandboxError, SandboxOrg, User, Workspace};
use crate::provider::{Operation, Outcome};

impl SandboxOrg {
    /// Applies one operation the way the Admin API would, `now` being an RFC 3339 timestamp.
    pub fn perform(&mut self, operation: Operation, now: &str) -> Result<Outcome> {
        use Operation::*;
        match operation {
            CreateUser {
                email,
                first_name,
                last_name,
                roles,
            } => self.create_user(email, first_name, last_name, roles, now),
            SetUserRoles { user, roles } => self.set_user_roles(user, roles),
            DeleteUser { user } => self.delete_user(user),
            CreateWorkspace {
                name,
                description,
                admin,
            } => self.create_workspace(name, description, admin),
            SetWorkspaceDescription {
                workspace,
                description,
            } => self.set_workspace_description(workspace, description),
            ArchiveWorkspace { workspace } => self.archive_workspace(workspace),
            UpsertWorkspaceMembers { workspace, members } => {
                self.upsert_workspace_members(workspace, members)
            }
            RemoveWorkspaceMembers { workspace, users } => {
                self.remove_workspace_members(workspace, users)
            }
            CreateGroup { name, description } => self.create_group(name, description),
            SetGroupDescription { group, description } => {
                self.set_group_description(group, description)
            }
            DeleteGroup { group } => self.delete_group(group),
            AddGroupMembers { group, users } => self.add_group_members(group, users),
            RemoveGroupMembers { group, users } => self.remove_group_members(group, users),
            AssignGroupWorkspace {
                group,
                workspace,
                roles,
            } => self.assign_group_workspace(group, workspace, roles),
            UpdateGroupWorkspace {
                group,
                workspace,
                roles,
            } => self.update_group_workspace(group, workspace, roles),
            UnassignGroupWorkspace { group, workspace } => {
                self.unassign_group_workspace(group, workspace)
            }
            SetGroupOrganizationRole { group, role } => {
                self.set_group_organization_role(group, role)
            }
            CreateKey {
                workspace,
                user,
                name,
                expiration,
                ..
            } => self.create_key(workspace, user, name, expiration, now),
            DeleteKey { key } => self.delete_key(key),
            SetSpendLimit { limit } => self.set_spend_limit(limit),
        }
    }

    fn user(&self, id: &str) -> Result<&User> {
        self.users.get(id).ok_or_else(|| SandboxError::NotFound {
            kind: "user",
            id: id.into(),
        })
    }

    fn workspace_mut(&mut self, id: &str) -> Result<&mut Workspace> {
        match self.workspaces.get_mut(id) {
            Some(workspace) if !workspace.archived => Ok(workspace),
            _ => Err(SandboxError::NotFound {
                kind: "workspace",
                id: id.into(),
            }),
        }
    }

    fn group_mut(&mut self, id: &str) -> Result<&mut Group> {
        self.groups
            .get_mut(id)
            .ok_or_else(|| SandboxError::NotFound {
                kind: "user group",
                id: id.into(),
            })
    }

    fn admins(&self) -> usize {
        self.users
            .values()
            .filter(|user| user.roles.contains("organization_admin"))
            .count()
    }

    fn check_roles(roles: &[String], known: &[&str], what: &str) -> Result<()> {
        for role in roles {
            if !known.contains(&role.as_str()) {
                return Err(SandboxError::Unprocessable(format!(
                    "`{role}` is not a {what} role"
                )));
            }
        }
        Ok(())
    }
}
