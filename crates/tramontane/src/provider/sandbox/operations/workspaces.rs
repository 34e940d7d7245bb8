//! Workspaces and their members: names are unique among active workspaces, and the
//! default workspace is never archived.

use std::collections::{BTreeMap, BTreeSet};

use crate::provider::Outcome;
use crate::provider::sandbox::{Result, SandboxError, SandboxOrg, WORKSPACE_ROLES, Workspace};

impl SandboxOrg {
    pub(super) fn create_workspace(
        &mut self,
        name: String,
        description: String,
        admin: String,
    ) -> Result<Outcome> {
        self.user(&admin)?;
        if name.trim().is_empty() {
            return Err(SandboxError::Unprocessable(
                "`name` must not be empty".into(),
            ));
        }
        if self
            .workspaces
            .values()
            .any(|w| !w.archived && w.name == name)
        {
            return Err(SandboxError::Conflict(format!(
                "a workspace named `{name}` exists"
            )));
        }
        let id = self.id();
        self.workspaces.insert(
            id.clone(),
            Workspace {
                name,
                description,
                is_default: false,
                archived: false,
                spend_limit: None,
                members: BTreeMap::from([(admin, BTreeSet::from(["workspace_admin".into()]))]),
            },
        );
        Ok(Outcome::Created(id))
    }

    pub(super) fn set_workspace_description(
        &mut self,
        workspace: String,
        description: String,
    ) -> Result<Outcome> {
        self.workspace_mut(&workspace)?.description = description;
        Ok(Outcome::Done)
    }

    pub(super) fn archive_workspace(&mut self, workspace: String) -> Result<Outcome> {
        let found = self.workspace_mut(&workspace)?;
        if found.is_default {
            return Err(SandboxError::Conflict(
                "the default workspace cannot be archived".into(),
            ));
        }
        found.archived = true;
        Ok(Outcome::Done)
    }

    pub(super) fn upsert_workspace_members(
        &mut self,
        workspace: String,
        members: Vec<(String, Vec<String>)>,
    ) -> Result<Outcome> {
        for (user, roles) in &members {
            self.user(user)?;
            Self::check_roles(roles, &WORKSPACE_ROLES, "workspace")?;
        }
        let found = self.workspace_mut(&workspace)?;
        for (user, roles) in members {
            found.members.insert(user, roles.into_iter().collect());
        }
        Ok(Outcome::Done)
    }

    pub(super) fn remove_workspace_members(
        &mut self,
        workspace: String,
        users: Vec<String>,
    ) -> Result<Outcome> {
        let found = self.workspace_mut(&workspace)?;
        for user in users {
            found.members.remove(&user);
        }
        Ok(Outcome::Done)
    }
}
