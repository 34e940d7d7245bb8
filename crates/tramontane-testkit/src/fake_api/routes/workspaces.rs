//! Workspaces and their members: `/workspaces`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tramontane::model::SpendLimit;
use tramontane::provider::sandbox::SandboxOrg;
use tramontane::provider::{Operation, Outcome};

use super::{Call, no_content, not_found, outcome, page, refused, slice, strings, text};

pub(super) fn route(call: &Call, org: &mut SandboxOrg, segments: &[&str]) -> Response {
    match (call.method.as_str(), segments) {
        ("GET", ["workspaces"]) => {
            let (page, size) = match page(call.query, None) {
                Ok(p) => p,
                Err(refusal) => return *refusal,
            };
            let archived = call.query.get("is_archived").is_some_and(|v| v == "true");
            let ids: Vec<String> = org
                .workspaces
                .iter()
                .filter(|(_, w)| w.archived == archived)
                .map(|(id, _)| id.clone())
                .collect();
            let items: Vec<Value> = slice(&ids, page, size)
                .iter()
                .map(|id| workspace_json(id, org))
                .collect();
            axum::Json(json!({"total": ids.len(), "items": items, "object": "list", "page": page, "page_size": size})).into_response()
        }
        ("POST", ["workspaces"]) => {
            match call.perform(
                org,
                Operation::CreateWorkspace {
                    name: text(call.body, "name"),
                    description: text(call.body, "description"),
                    admin: text(call.body, "admin_user_id"),
                },
            ) {
                Ok(Outcome::Created(id)) => {
                    let mut out = workspace_json(&id, org);
                    out["raw_roles"] = json!([]);
                    out["raw_role"] = json!("A");
                    axum::Json(out).into_response()
                }
                Ok(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                Err(e) => refused(e),
            }
        }
        ("PATCH", ["workspaces", id]) => {
            let result = call.perform(
                org,
                Operation::SetWorkspaceDescription {
                    workspace: (*id).into(),
                    description: text(call.body, "description"),
                },
            );
            match result {
                Ok(_) => axum::Json(workspace_json(id, org)).into_response(),
                Err(e) => refused(e),
            }
        }
        ("DELETE", ["workspaces", id]) => no_content(call.perform(
            org,
            Operation::ArchiveWorkspace {
                workspace: (*id).into(),
            },
        )),
        ("PATCH", ["workspaces", id, "users"]) | ("POST", ["workspaces", id, "add-users"]) => {
            let members: Vec<(String, Vec<String>)> = call.body["members"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| (text(m, "user_uuid"), strings(&m["role_names"])))
                .collect();
            let count = members.len();
            outcome(
                call.perform(
                    org,
                    Operation::UpsertWorkspaceMembers {
                        workspace: (*id).into(),
                        members,
                    },
                ),
                json!({"added_members_count": count, "updated_members_count": 0}),
            )
        }
        ("DELETE", ["workspaces", id, "remove-users"]) => {
            let users: Vec<String> = call.body["members"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| text(m, "user_uuid"))
                .collect();
            let count = users.len();
            outcome(
                call.perform(
                    org,
                    Operation::RemoveWorkspaceMembers {
                        workspace: (*id).into(),
                        users,
                    },
                ),
                json!({"deleted_members_count": count, "not_deleted_members": []}),
            )
        }
        _ => not_found(),
    }
}

fn workspace_json(id: &str, org: &SandboxOrg) -> Value {
    let workspace = &org.workspaces[id];
    let spend_limit = workspace.spend_limit.map(|limit| match limit {
        SpendLimit::Monthly(value) => {
            json!({"value": value, "currency": "EUR", "no_monthly_limit": false})
        }
        SpendLimit::Unlimited(_) => {
            json!({"value": null, "currency": "EUR", "no_monthly_limit": true})
        }
    });
    json!({"uuid": id, "name": workspace.name, "description": workspace.description, "icon": "",
           "members_count": workspace.members.len(), "spend_limit": spend_limit, "is_default": workspace.is_default})
}
