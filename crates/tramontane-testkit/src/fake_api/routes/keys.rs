//! API keys: `/api-keys`, whose create answers with the secret once.

use std::sync::atomic::Ordering;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tramontane::provider::sandbox::SandboxOrg;
use tramontane::provider::{Operation, Outcome};

use super::{Call, not_found, outcome, refused, text};

pub(super) fn route(call: &Call, org: &mut SandboxOrg, segments: &[&str]) -> Response {
    match (call.method.as_str(), segments) {
        ("GET", ["api-keys"]) => {
            let limit: usize = call
                .query
                .get("limit")
                .and_then(|v| v.parse().ok())
                .unwrap_or(100);
            let offset: usize = call
                .query
                .get("offset")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            // The API's `name` filter: a case-insensitive substring.
            let wanted = call.query.get("name").map(|name| name.to_lowercase());
            let keys: Vec<Value> = org.keys.iter()
                .filter(|(_, key)| wanted.as_ref().is_none_or(|wanted| {
                    key.name.as_deref().unwrap_or("").to_lowercase().contains(wanted.as_str())
                }))
                .skip(offset).take(limit).map(|(id, key)| {
                let workspace_name = key.workspace.as_ref().and_then(|w| org.workspaces.get(w)).map(|w| w.name.clone());
                json!({"key_id": id, "key": null, "name": key.name, "hidden_key": key.hidden_key, "created_at": key.created_at,
                       "expiration_date": key.expiration.map(|d| d.to_string()), "actions": {}, "workspace_id": key.workspace,
                       "workspace_name": workspace_name, "created_by": key.created_by, "product": null,
                       "last_used": key.last_used.map(|d| d.to_string()), "can_delete": true})
            }).collect();
            axum::Json(json!({"keys": keys})).into_response()
        }
        ("POST", ["api-keys"]) => {
            let expiration = call
                .body
                .get("expiration")
                .and_then(Value::as_str)
                .and_then(|d| d.parse().ok());
            match call.perform(
                org,
                Operation::CreateKey {
                    workspace: text(call.body, "workspace_uuid"),
                    user: text(call.body, "user_id"),
                    name: text(call.body, "name"),
                    expiration,
                    known: Vec::new(),
                },
            ) {
                Ok(Outcome::Key { id, secret }) => {
                    use secrecy::ExposeSecret;
                    let key = &org.keys[&id];
                    if call.state.secrets.malformed.load(Ordering::SeqCst) {
                        let plaintext = secret.expose_secret().to_owned();
                        call.state
                            .secrets
                            .handed_out
                            .lock()
                            .unwrap()
                            .push(plaintext.clone());
                        return axum::Json(json!({"key_id": 12345, "key": plaintext, "hidden_key": key.hidden_key}))
                            .into_response();
                    }
                    if call.state.secrets.without_key.load(Ordering::SeqCst) {
                        return axum::Json(json!({"key_id": id, "key": null, "name": key.name, "hidden_key": key.hidden_key,
                                                 "created_at": key.created_at, "actions": {}}))
                            .into_response();
                    }
                    axum::Json(json!({"key_id": id, "key": secret.expose_secret(), "name": key.name, "hidden_key": key.hidden_key,
                                      "created_at": key.created_at, "expiration_date": key.expiration.map(|d| d.to_string()), "actions": {}})).into_response()
                }
                Ok(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                Err(e) => refused(e),
            }
        }
        ("DELETE", ["api-keys", id]) => outcome(
            call.perform(org, Operation::DeleteKey { key: (*id).into() }),
            json!({"detail": "deleted"}),
        ),
        _ => not_found(),
    }
}
