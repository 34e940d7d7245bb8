//! Members and their roles: `/roles`, `/users`.

use std::collections::BTreeMap;

use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tramontane::provider::sandbox::SandboxOrg;
use tramontane::provider::{Operation, Outcome};

use super::{Call, not_found, outcome, page, refused, role_ids, slice, strings, text};

pub(super) fn route(call: &Call, org: &mut SandboxOrg, segments: &[&str]) -> Response {
    match (call.method.as_str(), segments) {
        ("GET", ["roles"]) => {
            let list = |map: &BTreeMap<String, String>| -> Vec<Value> {
                map.iter().map(|(name, uuid)| json!({"name": name, "uuid": uuid, "description": "", "is_custom_role": false})).collect()
            };
            axum::Json(json!({"workspace_roles": list(&org.roles.workspace), "organization_roles": list(&org.roles.organization)})).into_response()
        }
        ("GET", ["users"]) => {
            let (page, size) = match page(call.query, None) {
                Ok(p) => p,
                Err(refusal) => return *refusal,
            };
            let mut items: Vec<(bool, String)> =
                org.users.keys().map(|id| (true, id.clone())).collect();
            items.extend(org.invites.keys().map(|id| (false, id.clone())));
            let total = items.len();
            let mut members = Vec::new();
            let mut invites = Vec::new();
            for (is_member, id) in slice(&items, page, size) {
                if is_member {
                    members.push(member_json(&id, org));
                } else {
                    let invite = &org.invites[&id];
                    let roles = role_ids(&org.roles.organization, &invite.roles);
                    invites.push(json!({"uuid": id, "raw_roles": roles, "raw_role": roles.first(), "email": invite.email,
                                        "expired": invite.expired, "created_at": invite.created_at, "workspace_uuids": []}));
                }
            }
            axum::Json(json!({"members": members, "invites": invites, "total": total, "page": page, "page_size": size})).into_response()
        }
        ("POST", ["users"]) => {
            let mut map = serde_json::Map::new();
            for person in call.body.as_array().into_iter().flatten() {
                let result = call.perform(
                    org,
                    Operation::CreateUser {
                        email: text(person, "email"),
                        first_name: text(person, "first_name"),
                        last_name: text(person, "last_name"),
                        roles: strings(&person["role_names"]),
                    },
                );
                match result {
                    Ok(Outcome::Created(id)) => {
                        map.insert(text(person, "email"), json!(id));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        return refused(e);
                    }
                }
            }
            axum::Json(json!({"invalid_emails": [], "email_to_user_id": map})).into_response()
        }
        ("PATCH", ["users", id]) => {
            let result = call.perform(
                org,
                Operation::SetUserRoles {
                    user: (*id).into(),
                    roles: strings(&call.body["role_names"]),
                },
            );
            match result {
                Ok(_) => axum::Json(member_json(id, org)).into_response(),
                Err(e) => refused(e),
            }
        }
        ("DELETE", ["users", id]) => outcome(
            call.perform(org, Operation::DeleteUser { user: (*id).into() }),
            json!({"message": "deleted"}),
        ),
        _ => not_found(),
    }
}

fn member_json(id: &str, org: &SandboxOrg) -> Value {
    let user = &org.users[id];
    let workspaces: Vec<Value> = org
        .workspaces
        .iter()
        .filter(|(_, w)| !w.archived)
        .filter_map(|(wid, w)| {
            let roles = role_ids(&org.roles.workspace, w.members.get(id)?);
            Some(json!({"uuid": wid, "name": w.name, "is_default": w.is_default, "raw_role": roles.first(), "raw_roles": roles}))
        })
        .collect();
    let roles = role_ids(&org.roles.organization, &user.roles);
    json!({"uuid": id, "oid_id": null, "name": user.name(), "email": user.email, "is_sso_outsider": false,
           "workspaces": workspaces, "subscriptions": [], "raw_roles": roles, "raw_role": roles.first(),
           "subscription_types": null, "created_at": user.created_at})
}
