//! Teams (user groups): unique names, and one assignment per workspace.

use std::collections::{BTreeMap, BTreeSet};

use crate::provider::Outcome;
use crate::provider::sandbox::{
    Group, ORGANIZATION_ROLES, Result, SandboxError, SandboxOrg, WORKSPACE_ROLES,
};

impl SandboxOrg {
    pub(super) fn create_group(&mut self, name: String, description: String) -> Result<Outcome> {
        if self.groups.values().any(|group| group.name == name) {
            return Err(SandboxError::Conflict(format!(
                "a user group named `{name}` exists"
            )));
        }
        let id = self.id();
        self.groups.insert(
            id.clone(),
            Group {
                name,
                description,
                organization_role: None,
                members: BTreeSet::new(),
                workspaces: BTreeMap::new(),
            },
        );
        Ok(Outcome::Created(id))
    }

    pub(super) fn set_group_description(
        &mut self,
        group: String,
        description: String,
    ) -> Result<Outcome> {
        self.group_mut(&group)?.description = description;
        Ok(Outcome::Done)
    }

    pub(super) fn delete_group(&mut self, group: String) -> Result<Outcome> {
        self.groups.remove(&group).ok_or(SandboxError::NotFound {
            kind: "user group",
            id: group,
        })?;
        Ok(Outcome::Done)
    }

    pub(super) fn add_group_members(
        &mut self,
        group: String,
        users: Vec<String>,
    ) -> Result<Outcome> {
        for user in &users {
            self.user(user)?;
        }
        self.group_mut(&group)?.members.extend(users);
        Ok(Outcome::Done)
    }

    pub(super) fn remove_group_members(
        &mut self,
        group: String,
        users: Vec<String>,
    ) -> Result<Outcome> {
        let found = self.group_mut(&group)?;
        for user in users {
            found.members.remove(&user);
        }
        Ok(Outcome::Done)
    }

    pub(super) fn assign_group_workspace(
        &mut self,
        group: String,
        workspace: String,
        roles: Vec<String>,
    ) -> Result<Outcome> {
        Self::check_roles(&roles, &WORKSPACE_ROLES, "workspace")?;
        self.workspace_mut(&workspace)?;
        let found = self.group_mut(&group)?;
        if found.workspaces.contains_key(&workspace) {
            return Err(SandboxError::Conflict(
                "the group is already assigned to this workspace".into(),
            ));
        }
        found
            .workspaces
            .insert(workspace, roles.into_iter().collect());
        Ok(Outcome::Done)
    }

    pub(super) fn update_group_workspace(
        &mut self,
        group: String,
        workspace: String,
        roles: Vec<String>,
    ) -> Result<Outcome> {
        Self::check_roles(&roles, &WORKSPACE_ROLES, "workspace")?;
        let found = self.group_mut(&group)?;
        let assignment = found
            .workspaces
            .get_mut(&workspace)
            .ok_or(SandboxError::NotFound {
                kind: "workspace assignment",
                id: workspace,
            })?;
        *assignment = roles.into_iter().collect();
        Ok(Outcome::Done)
    }

    pub(super) fn unassign_group_workspace(
        &mut self,
        group: String,
        workspace: String,
    ) -> Result<Outcome> {
        self.group_mut(&group)?
            .workspaces
            .remove(&workspace)
            .ok_or(SandboxError::NotFound {
                kind: "workspace assignment",
                id: workspace,
            })?;
        Ok(Outcome::Done)
    }

    pub(super) fn set_group_organization_role(
        &mut self,
        group: String,
        role: String,
    ) -> Result<Outcome> {
        Self::check_roles(
            std::slice::from_ref(&role),
            &ORGANIZATION_ROLES,
            "organization",
        )?;
        self.group_mut(&group)?.organization_role = Some(role);
        Ok(Outcome::Done)
    }
}
