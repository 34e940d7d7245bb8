//! The live organization through Mistral's Admin API.
//!
//! [`client`] speaks HTTP (pages, retries, rate limits), [`paging`] accepts a list only
//! whole and [`transport`] bounds what the client trusts of a server; this module reads the
//! whole org with them, resolves every UUID to a name, and turns each [`Operation`] into its
//! one call.

pub mod api;
pub mod client;
pub mod error;
pub mod pacing;
mod paging;
pub mod transport;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use secrecy::SecretString;

use serde::de::DeserializeOwned;
use serde_json::json;

use self::api::{
    AdminOrganizationMemberOut, AdminUserGroupOut, GroupWorkspaceAssignmentOut, RolesOut,
    WorkspaceOut,
};
use self::client::Client;
use super::{Operation, OrganizationLimit, Outcome, Provider, ProviderError};
use crate::model::{
    LiveInvite, LiveKey, LiveMember, LiveOrg, LiveTeam, LiveWorkspace, RateLimits, SpendLimit,
    Unlimited, live::TokenLimits,
};

pub struct MistralProvider {
    client: Client,
    /// Where new keys are shown to work: the inference API's root; the Admin API's when
    /// `None`.
    inference_url: Option<url::Url>,
    /// The first pause between attempts to show a new key works; later ones double.
    verify_backoff: Duration,
}

impl MistralProvider {
    pub fn new(client: Client) -> MistralProvider {
        MistralProvider {
            client,
            inference_url: None,
            verify_backoff: Duration::from_millis(500),
        }
    }

    /// Verifies new keys against `url` (the inference API's root), pausing `backoff`, then
    /// twice that, and so on, between attempts: a key may take a moment to be accepted.
    pub fn verifying_at(mut self, url: url::Url, backoff: Duration) -> MistralProvider {
        self.inference_url = Some(url);
        self.verify_backoff = backoff;
        self
    }
}

/// How many times a new key is tried against `GET /v1/models` before it is judged broken,
/// and the longest pause between two tries: with the default first pause of 0.5 s, a new
/// key has about 45 s to be accepted, since one may take a moment to reach every server.
const VERIFY_ATTEMPTS: usize = 8;
const VERIFY_LONGEST_PAUSE: Duration = Duration::from_secs(15);

/// Role names by UUID, with the letter codes some fields use instead.
struct RoleNames {
    organization: HashMap<String, String>,
    workspace: HashMap<String, String>,
}

impl RoleNames {
    fn new(roles: &RolesOut) -> RoleNames {
        let mut organization: HashMap<String, String> = roles
            .organization_roles
            .iter()
            .map(|role| (role.uuid.clone(), role.name.clone()))
            .collect();
        // `UserRole` letter codes of the spec: Admin, Member, Billing.
        for (code, name) in [
            ("A", "organization_admin"),
            ("M", "member"),
            ("B", "billing_manager"),
        ] {
            organization
                .entry(code.into())
                .or_insert_with(|| name.into());
        }
        let mut workspace: HashMap<String, String> = roles
            .workspace_roles
            .iter()
            .map(|role| (role.uuid.clone(), role.name.clone()))
            .collect();
        for (code, name) in [("A", "workspace_admin"), ("M", "user")] {
            workspace.entry(code.into()).or_insert_with(|| name.into());
        }
        RoleNames {
            organization,
            workspace,
        }
    }

    /// Names for role ids; an id the roles list lacks is kept as it is, so a plan shows it
    /// rather than hiding it.
    fn names(map: &HashMap<String, String>, ids: &[String]) -> BTreeSet<String> {
        ids.iter()
            .map(|id| map.get(id).cloned().unwrap_or_else(|| id.clone()))
            .collect()
    }
}

impl Provider for MistralProvider {
    async fn read(&self) -> Result<LiveOrg, ProviderError> {
        let client = &self.client;
        let (roles, users, active, archived, groups, keys, spend, rate) = tokio::try_join!(
            client.roles(),
            client.list_users(),
            client.list_workspaces(false),
            client.list_workspaces(true),
            client.list_groups(),
            client.list_api_keys(),
            client.spend_limit(),
            client.rate_limit(),
        )?;
        let (members, invites) = users;
        // The client's semaphore bounds how many of these run at once.
        let group_details = join_all(
            groups
                .iter()
                .map(|group| async move {
                    tokio::try_join!(
                        client.group_members(&group.uuid),
                        client.group_workspaces(&group.uuid)
                    )
                })
                .collect(),
        )
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;

        let roles = RoleNames::new(&roles);
        let mut live = LiveOrg::default();
        let workspace_names: HashMap<&str, &str> = active
            .iter()
            .chain(archived.iter())
            .map(|workspace| (workspace.uuid.as_str(), workspace.name.as_str()))
            .collect();

        for workspace in &active {
            live.workspaces
                .insert(workspace.name.clone(), live_workspace(workspace));
        }
        for workspace in &archived {
            if !live.workspaces.contains_key(&workspace.name) {
                live.archived_workspaces.insert(workspace.name.clone());
            }
        }
        for member in &members {
            add_member(&mut live, member, &roles);
        }
        for invite in &invites {
            live.invites.insert(
                invite.email.to_lowercase(),
                LiveInvite {
                    id: invite.uuid.clone(),
                    email: invite.email.clone(),
                    roles: RoleNames::names(&roles.organization, &invite.raw_roles),
                    expired: invite.expired,
                },
            );
        }
        for (group, (group_members, assignments)) in groups.iter().zip(group_details) {
            live.teams.insert(
                group.name.clone(),
                live_team(
                    group,
                    &group_members
                        .iter()
                        .filter_map(|m| m.email.clone())
                        .collect::<Vec<_>>(),
                    &assignments,
                    &roles,
                ),
            );
        }
        for key in &keys {
            live.keys.push(LiveKey {
                id: key.key_id.clone(),
                name: key.name.clone(),
                workspace: key.workspace_id.as_deref().map(|id| {
                    workspace_names
                        .get(id)
                        .map_or_else(|| id.to_owned(), |name| (*name).to_owned())
                }),
                created_by: key.created_by.clone(),
                created_at: key.created_at.clone(),
                expires: parse_date(
                    key.expiration_date.as_deref(),
                    "GET /v1/admin/api-keys",
                    "expiration_date",
                )?,
                last_used: parse_date(
                    key.last_used.as_deref(),
                    "GET /v1/admin/api-keys",
                    "last_used",
                )?,
            });
        }
        let completion = &spend.limits.completion;
        live.spend_limit = Some(if completion.no_monthly_limit {
            SpendLimit::Unlimited(Unlimited::Unlimited)
        } else {
            SpendLimit::Monthly(completion.usage_limit.unwrap_or(0.0))
        });
        live.rate_limits = Some(RateLimits {
            requests_per_second: u64::try_from(rate.requests_per_second).unwrap_or(0),
            tokens_by_model: rate
                .tokens_limits_by_model
                .iter()
                .map(|(model, limits)| {
                    (
                        model.clone(),
                        TokenLimits {
                            tokens_per_minute: u64::try_from(limits.tokens_per_minute).unwrap_or(0),
                            tokens_per_month: u64::try_from(limits.tokens_per_month).unwrap_or(0),
                        },
                    )
                })
                .collect(),
        });
        Ok(live)
    }

    async fn perform(&self, operation: Operation) -> Result<Outcome, ProviderError> {
        let mut attempt = 1;
        loop {
            match self.perform_once(operation.clone()).await {
                Err(ProviderError::Api(error)) if error.is_ambiguous() && is_create(&operation) => {
                    // The create may have happened though no answer said so: look before
                    // sending it again, so nothing is ever created twice.
                    if let Some(outcome) = self.find_created(&operation).await? {
                        return Ok(outcome);
                    }
                    if attempt >= CREATE_ATTEMPTS {
                        return Err(error.into());
                    }
                    attempt += 1;
                }
                // A delete answered 404 has nothing left to delete: what it asked for holds.
                // This is how a retried delete whose first answer was lost ends.
                Err(ProviderError::Api(error::ApiError::NotFound { .. }))
                    if is_delete(&operation) =>
                {
                    return Ok(Outcome::Done);
                }
                other => return other,
            }
        }
    }

    async fn verify_key(&self, secret: &SecretString) -> Result<(), ProviderError> {
        // The inference API shares the Admin API's root unless told otherwise.
        let base = match &self.inference_url {
            Some(url) => url.clone(),
            None => url::Url::parse(&self.client.url("")).map_err(|error| {
                ProviderError::Unexpected {
                    call: "GET /v1/models".into(),
                    problem: format!("the API root is not a URL: {error}"),
                }
            })?,
        };
        let mut pause = self.verify_backoff;
        let mut attempt = 1;
        loop {
            let answer = self.client.models_status(&base, secret).await;
            let last = attempt >= VERIFY_ATTEMPTS;
            match answer {
                Ok(200..=299) => return Ok(()),
                // A key just made may not be accepted yet, and refusals and server errors
                // pass: each is asked again, up to the last attempt.
                Ok(401 | 403 | 429 | 500..=599) if !last => {}
                Ok(status) => {
                    return Err(ProviderError::KeyRejected {
                        call: "GET /v1/models".into(),
                        status,
                        attempts: attempt,
                    });
                }
                Err(_) if !last => {}
                Err(error) => return Err(error.into()),
            }
            tokio::time::sleep(pause).await;
            pause = pause.saturating_mul(2).min(VERIFY_LONGEST_PAUSE);
            attempt += 1;
        }
    }

    fn requests(&self) -> u64 {
        self.client.requests()
    }
}

/// How many times a create whose answer was lost is sent, each after checking that the
/// previous one did not happen.
const CREATE_ATTEMPTS: usize = 3;

fn is_delete(operation: &Operation) -> bool {
    matches!(
        operation,
        Operation::DeleteUser { .. }
            | Operation::ArchiveWorkspace { .. }
            | Operation::DeleteGroup { .. }
            | Operation::UnassignGroupWorkspace { .. }
            | Operation::DeleteKey { .. }
    )
}

fn is_create(operation: &Operation) -> bool {
    matches!(
        operation,
        Operation::CreateUser { .. }
            | Operation::CreateWorkspace { .. }
            | Operation::CreateGroup { .. }
            | Operation::AssignGroupWorkspace { .. }
            | Operation::CreateKey { .. }
    )
}

impl MistralProvider {
    /// After an ambiguous failure of a create: what the call made, if it made anything.
    /// A key found this way has lost its secret with the answer, so it is deleted and
    /// `None` returned, for the key to be created again.
    async fn find_created(&self, operation: &Operation) -> Result<Option<Outcome>, ProviderError> {
        let client = &self.client;
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

    async fn perform_once(&self, operation: Operation) -> Result<Outcome, ProviderError> {
        let client = &self.client;
        use Operation::*;
        Ok(match operation {
            CreateUser {
                email,
                first_name,
                last_name,
                roles,
            } => {
                let created = client
                    .create_users(&[body(json!({"email": email, "first_name": first_name, "last_name": last_name, "role_names": roles}))?])
                    .await?;
                let id = created
                    .email_to_user_id
                    .iter()
                    .find(|(address, _)| address.eq_ignore_ascii_case(&email))
                    .map(|(_, id)| id.clone());
                match id {
                    Some(id) => Outcome::Created(id),
                    None => {
                        return Err(ProviderError::Unexpected {
                            call: "POST /v1/admin/users".into(),
                            problem: format!(
                                "no user id for `{email}` (invalid emails: {:?})",
                                created.invalid_emails
                            ),
                        });
                    }
                }
            }
            SetUserRoles { user, roles } => {
                client
                    .update_user(&user, &body(json!({"role_names": roles}))?)
                    .await?;
                Outcome::Done
            }
            DeleteUser { user } => {
                client.delete_user(&user).await?;
                Outcome::Done
            }
            CreateWorkspace {
                name,
                description,
                admin,
            } => {
                let created = client
                    .create_workspace(&body(
                        json!({"name": name, "description": description, "admin_user_id": admin}),
                    )?)
                    .await?;
                Outcome::Created(created.uuid)
            }
            SetWorkspaceDescription {
                workspace,
                description,
            } => {
                client
                    .update_workspace(&workspace, &body(json!({"description": description}))?)
                    .await?;
                Outcome::Done
            }
            ArchiveWorkspace { workspace } => {
                client.archive_workspace(&workspace).await?;
                Outcome::Done
            }
            UpsertWorkspaceMembers { workspace, members } => {
                let members: Vec<_> = members
                    .into_iter()
                    .map(|(user, roles)| json!({"user_uuid": user, "role_names": roles}))
                    .collect();
                client
                    .upsert_workspace_users(&workspace, &body(json!({"members": members}))?)
                    .await?;
                Outcome::Done
            }
            RemoveWorkspaceMembers { workspace, users } => {
                let members: Vec<_> = users
                    .into_iter()
                    .map(|user| json!({"user_uuid": user}))
                    .collect();
                client
                    .remove_workspace_users(&workspace, &body(json!({"members": members}))?)
                    .await?;
                Outcome::Done
            }
            CreateGroup { name, description } => {
                let created = client
                    .create_group(&body(
                        json!({"name": name, "description": description, "parent_group_ids": []}),
                    )?)
                    .await?;
                Outcome::Created(created.uuid)
            }
            SetGroupDescription { group, description } => {
                client
                    .update_group(&group, &body(json!({"description": description}))?)
                    .await?;
                Outcome::Done
            }
            DeleteGroup { group } => {
                client.delete_group(&group).await?;
                Outcome::Done
            }
            AddGroupMembers { group, users } => {
                client
                    .add_group_members(&group, &body(json!({"user_uuids": users}))?)
                    .await?;
                Outcome::Done
            }
            RemoveGroupMembers { group, users } => {
                client
                    .remove_group_members(&group, &body(json!({"user_uuids": users}))?)
                    .await?;
                Outcome::Done
            }
            AssignGroupWorkspace {
                group,
                workspace,
                roles,
            } => {
                client
                    .assign_group_workspace(
                        &group,
                        &body(json!({"workspace_uuid": workspace, "role_names": roles}))?,
                    )
                    .await?;
                Outcome::Done
            }
            UpdateGroupWorkspace {
                group,
                workspace,
                roles,
            } => {
                client
                    .update_group_workspace(
                        &group,
                        &workspace,
                        &body(json!({"role_names": roles}))?,
                    )
                    .await?;
                Outcome::Done
            }
            UnassignGroupWorkspace { group, workspace } => {
                client.unassign_group_workspace(&group, &workspace).await?;
                Outcome::Done
            }
            SetGroupOrganizationRole { group, role } => {
                // The endpoint takes a role id, not a name.
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
                    .set_group_organization_role(&group, &body(json!({"organization_role": id}))?)
                    .await?;
                Outcome::Done
            }
            CreateKey {
                workspace,
                user,
                name,
                expiration,
                ..
            } => {
                let created = client
                    .create_api_key(&body(json!({
                        "workspace_uuid": workspace,
                        "user_id": user,
                        "name": name,
                        "expiration": expiration.map(|d| d.to_string()),
                    }))?)
                    .await?;
                match created.key {
                    Some(secret) => Outcome::Key {
                        id: created.key_id,
                        secret,
                    },
                    None => {
                        // A key whose secret nobody will ever see must not stay.
                        let problem = match client.delete_api_key(&created.key_id).await {
                            Ok(_) | Err(error::ApiError::NotFound { .. }) => "no `key` in the answer, so the new key's secret is lost; the key was deleted again, so run apply again".to_owned(),
                            Err(cleanup) => format!(
                                "no `key` in the answer, so the new key's secret is lost, and deleting the key failed too ({cleanup}); delete key {} in the console (Admin → API keys)",
                                created.key_id
                            ),
                        };
                        return Err(ProviderError::Unexpected {
                            call: "POST /v1/admin/api-keys".into(),
                            problem,
                        });
                    }
                }
            }
            DeleteKey { key } => {
                client.delete_api_key(&key).await?;
                Outcome::Done
            }
            SetSpendLimit { limit } => {
                let request = match limit {
                    OrganizationLimit::Monthly { units } => {
                        json!({"amount": units, "no_monthly_limit": false})
                    }
                    OrganizationLimit::Unlimited => json!({"amount": 0, "no_monthly_limit": true}),
                };
                client.set_spend_limit(&body(request)?).await?;
                Outcome::Done
            }
        })
    }
}

/// Builds a request body from its JSON shape, so a body reads like the API documents it.
fn body<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ProviderError> {
    serde_json::from_value(value).map_err(|error| ProviderError::Unexpected {
        call: "building a request".into(),
        problem: error.to_string(),
    })
}

/// Polls every future to completion concurrently, keeping their order.
pub(crate) async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

fn parse_date(
    text: Option<&str>,
    call: &str,
    field: &str,
) -> Result<Option<jiff::civil::Date>, ProviderError> {
    let Some(text) = text else { return Ok(None) };
    let day = text.get(..10).unwrap_or(text);
    day.parse()
        .map(Some)
        .map_err(|_| ProviderError::Unexpected {
            call: call.into(),
            problem: format!("`{field}` is `{text}`, not a date"),
        })
}

fn live_workspace(workspace: &WorkspaceOut) -> LiveWorkspace {
    LiveWorkspace {
        id: workspace.uuid.clone(),
        name: workspace.name.clone(),
        description: workspace.description.clone().unwrap_or_default(),
        is_default: workspace.is_default,
        members: BTreeMap::new(),
        spend_limit: workspace.spend_limit.as_ref().and_then(|limit| {
            if limit.no_monthly_limit == Some(true) {
                Some(SpendLimit::Unlimited(Unlimited::Unlimited))
            } else {
                limit.value.map(SpendLimit::Monthly)
            }
        }),
    }
}

fn add_member(live: &mut LiveOrg, member: &AdminOrganizationMemberOut, roles: &RoleNames) {
    let Some(email) = member.email.clone() else {
        return;
    };
    let lower = email.to_lowercase();
    for workspace in member.workspaces.iter().flatten() {
        if let Some(found) = live.workspaces.get_mut(&workspace.name) {
            found.members.insert(
                lower.clone(),
                RoleNames::names(&roles.workspace, &workspace.raw_roles),
            );
        }
    }
    live.members.insert(
        lower,
        LiveMember {
            id: member.uuid.clone(),
            name: member.name.clone().unwrap_or_default(),
            email,
            roles: RoleNames::names(&roles.organization, &member.raw_roles),
        },
    );
}

fn live_team(
    group: &AdminUserGroupOut,
    emails: &[String],
    assignments: &[GroupWorkspaceAssignmentOut],
    roles: &RoleNames,
) -> LiveTeam {
    LiveTeam {
        id: group.uuid.clone(),
        name: group.name.clone(),
        description: group.description.clone().unwrap_or_default(),
        members: emails.iter().map(|email| email.to_lowercase()).collect(),
        workspaces: assignments
            .iter()
            .map(|assignment| {
                let names = assignment
                    .roles
                    .iter()
                    .map(|role| role.name.clone())
                    .collect();
                (assignment.workspace_name.clone(), names)
            })
            .collect(),
        organization_role: group.organization_role.as_ref().map(|role| {
            roles
                .organization
                .get(role)
                .cloned()
                .unwrap_or_else(|| role.clone())
        }),
    }
}
