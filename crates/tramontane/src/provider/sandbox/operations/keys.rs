//! API keys: the plaintext is handed out once and only its digest is kept.

use jiff::civil::Date;
use secrecy::SecretString;

use crate::provider::Outcome;
use crate::provider::sandbox::{Key, Result, SandboxError, SandboxOrg, secret_digest};

impl SandboxOrg {
    pub(super) fn create_key(
        &mut self,
        workspace: String,
        user: String,
        name: String,
        expiration: Option<Date>,
        now: &str,
    ) -> Result<Outcome> {
        self.workspace_mut(&workspace)?;
        let created_by = Some(self.user(&user)?.email.clone());
        let id = self.id();
        // Not a real secret: the sandbox hands out a random string of the real shape.
        let plaintext: String = {
            use rand::Rng;
            let mut rng = rand::rng();
            (0..32)
                .map(|_| rng.sample(rand::distr::Alphanumeric) as char)
                .collect()
        };
        let hidden_key = format!("{}…{}", &plaintext[..4], &plaintext[28..]);
        self.keys.insert(
            id.clone(),
            Key {
                name: Some(name),
                workspace: Some(workspace),
                user,
                created_by,
                created_at: now.into(),
                expiration,
                last_used: None,
                hidden_key,
                secret_sha256: Some(secret_digest(&plaintext)),
            },
        );
        Ok(Outcome::Key {
            id,
            secret: SecretString::from(plaintext),
        })
    }

    pub(super) fn delete_key(&mut self, key: String) -> Result<Outcome> {
        self.keys.remove(&key).ok_or(SandboxError::NotFound {
            kind: "API key",
            id: key,
        })?;
        Ok(Outcome::Done)
    }
}
