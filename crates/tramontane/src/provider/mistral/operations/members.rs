//! Organization members: `/v1/admin/users`.

use serde_json::json;

use super::body;
use crate::provider::mistral::client::Client;
use crate::provider::{Outcome, ProviderError};

pub(super) async fn create(
    client: &Client,
    email: &str,
    first_name: &str,
    last_name: &str,
    roles: &[String],
) -> Result<Outcome, ProviderError> {
    let created = client
        .create_users(&[body(json!({
            "email": email,
            "first_name": first_name,
            "last_name": last_name,
            "role_names": roles,
        }))?])
        .await?;
    let id = created
        .email_to_user_id
        .iter()
        .find(|(address, _)| address.eq_ignore_ascii_case(email))
        .map(|(_, id)| id.clone());
    match id {
        Some(id) => Ok(Outcome::Created(id)),
        None => Err(ProviderError::Unexpected {
            call: "POST /v1/admin/users".into(),
            problem: format!(
                "no user id for `{email}` (invalid emails: {:?})",
                created.invalid_emails
            ),
        }),
    }
}

pub(super) async fn set_roles(
    client: &Client,
    user: &str,
    roles: &[String],
) -> Result<Outcome, ProviderError> {
    client
        .update_user(user, &body(json!({"role_names": roles}))?)
        .await?;
    Ok(Outcome::Done)
}

pub(super) async fn delete(client: &Client, user: &str) -> Result<Outcome, ProviderError> {
    client.delete_user(user).await?;
    Ok(Outcome::Done)
}
