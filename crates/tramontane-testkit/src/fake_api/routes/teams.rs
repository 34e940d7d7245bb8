//! Teams (user groups), their members, workspaces and organization role: `/user-groups`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tramontane::provider::sandbox::SandboxOrg;
use tramontane::provider::{Operation, Outcome};

use super::{Call, error, no_content, not_found, page, refused, slice, strings, text};

pub(super) fn route(call: &Call, org: &mut SandboxOrg, segments: &[&str]) -> Response {
    match (call.method.as_str(), segments) {
        ("GET", ["user-groups"]) => {
            let (page, size) = match page(call.query, Some(100)) {
                Ok(p) => p,
                Err(refusal) => return *refusal,
            };
            let ids: Vec<String> = org.groups.keys().cloned().collect();
            let items: Vec<Value> = slice(&ids, page, size)
                .iter()
                .map(|id| group_json(id, org))
                .collect();
            axum::Json(json!({"total": ids.len(), "items": items, "page": page, "page_size": size}))
                .into_response()
        }
        ("POST", ["user-groups"]) => match call.perform(
            org,
            Operation::CreateGroup {
                name: text(call.body, "name"),
                description: text(call.body, "description"),
            },
        ) {
            Ok(Outcome::Created(id)) => axum::Json(group_json(&id, org)).into_response(),
            Ok(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            Err(e) => refused(e),
        },
        ("PATCH", ["user-groups", id]) => {
            let result = call.perform(
                org,
                Operation::SetGroupDescription {
                    group: (*id).into(),
                    description: text(call.body, "description"),
                },
            );
            match result {
                Ok(_) => axum::Json(group_json(id, org)).into_response(),
                Err(e) => refused(e),
            }
        }
        ("DELETE", ["user-groups", id]) => no_content(call.perform(
            org,
            Operation::DeleteGroup {
                group: (*id).into(),
            },
        )),
        ("GET", ["user-groups", id, "members"]) => {
            let (page, size) = match page(call.query, None) {
                Ok(p) => p,
                Err(refusal) => return *refusal,
            };
            let Some(group) = org.groups.get(*id) else {
                return error(StatusCode::NOT_FOUND, json!("no such group"));
            };
            let ids: Vec<String> = group.members.iter().cloned().collect();
            let members: Vec<Value> = slice(&ids, page, size)
                .iter()
                .filter_map(|uid| {
                    let user = org.users.get(uid)?;
                    Some(json!({"user_uuid": uid, "name": user.name(), "email": user.email}))
                })
                .collect();
            axum::Json(
                json!({"total": ids.len(), "members": members, "page": page, "page_size": size}),
            )
            .into_response()
        }
        ("POST", ["user-groups", id, "members"]) => no_content(call.perform(
            org,
            Operation::AddGroupMembers {
                group: (*id).into(),
                users: strings(&call.body["user_uuids"]),
            },
        )),
        ("DELETE", ["user-groups", id, "members"]) => no_content(call.perform(
            org,
            Operation::RemoveGroupMembers {
                group: (*id).into(),
                users: strings(&call.body["user_uuids"]),
            },
        )),
        ("GET", ["user-groups", id, "workspaces"]) => {
            let (page, size) = match page(call.query, Some(100)) {
                Ok(p) => p,
                Err(refusal) => return *refusal,
            };
            let Some(group) = org.groups.get(*id) else {
                return error(StatusCode::NOT_FOUND, json!("no such group"));
            };
            let assignments: Vec<(String, Vec<String>)> = group
                .workspaces
                .iter()
                .map(|(w, r)| (w.clone(), r.iter().cloned().collect()))
                .collect();
            let items: Vec<Value> = slice(&assignments, page, size).iter().filter_map(|(wid, roles)| {
                let workspace = org.workspaces.get(wid)?;
                let refs: Vec<Value> = roles.iter().map(|r| json!({"name": r, "uuid": org.roles.workspace.get(r)})).collect();
                Some(json!({"roles": refs, "role_uuid": null, "role_name": null, "workspace_uuid": wid, "workspace_name": workspace.name, "created": call.state.now}))
            }).collect();
            axum::Json(json!({"total": assignments.len(), "items": items, "page": page, "page_size": size})).into_response()
        }
        ("POST", ["user-groups", id, "workspaces"]) => match call.perform(
            org,
            Operation::AssignGroupWorkspace {
                group: (*id).into(),
                workspace: text(call.body, "workspace_uuid"),
                roles: strings(&call.body["role_names"]),
            },
        ) {
            Ok(_) => StatusCode::CREATED.into_response(),
            Err(e) => refused(e),
        },
        ("PATCH", ["user-groups", id, "workspaces", workspace]) => no_content(call.perform(
            org,
            Operation::UpdateGroupWorkspace {
                group: (*id).into(),
                workspace: (*workspace).into(),
                roles: strings(&call.body["role_names"]),
            },
        )),
        ("DELETE", ["user-groups", id, "workspaces", workspace]) => no_content(call.perform(
            org,
            Operation::UnassignGroupWorkspace {
                group: (*id).into(),
                workspace: (*workspace).into(),
            },
        )),
        ("PATCH", ["user-groups", id, "organization-role"]) => {
            let uuid = text(call.body, "organization_role");
            let Some(role) = org
                .roles
                .organization
                .iter()
                .find(|(_, u)| **u == uuid)
                .map(|(n, _)| n.clone())
            else {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!([{"loc": ["body", "organization_role"], "msg": "unknown role", "type": "value_error"}]),
                );
            };
            no_content(call.perform(
                org,
                Operation::SetGroupOrganizationRole {
                    group: (*id).into(),
                    role,
                },
            ))
        }
        _ => not_found(),
    }
}

fn group_json(id: &str, org: &SandboxOrg) -> Value {
    let group = &org.groups[id];
    json!({"uuid": id, "name": group.name, "description": group.description, "externally_managed": false,
           "target_type": null, "organization_role": group.organization_role.as_ref().map(|r| org.roles.organization.get(r).cloned().unwrap_or_default()),
           "parent_group_ids": []})
}
