//! Gateway keys: minting them, reading one a caller presents, and checking it against the
//! digests the policy holds.
//!
//! A key is `tmt_<public id>_<secret>`. The public id names the policy entry, so the gateway
//! finds the one digest to compare with instead of hashing against every entry; the secret is
//! 43 base62 characters from the operating system's randomness, just over 256 bits. The
//! policy keeps only the SHA-256 of the whole text (see [`KeyDigest`]).

pub mod policy_file;

use std::collections::BTreeMap;

use jiff::civil::Date;
use secrecy::SecretString;

use crate::model::gateway::GatewayKeyIdError;
use crate::model::{GatewayKey, GatewayKeyId, KeyDigest};

/// What every gateway key starts with, so that secret scanners and people recognise one.
pub const KEY_PREFIX: &str = "tmt_";
/// Characters of the secret part. 43 base62 characters carry log2(62) × 43 ≈ 256.03 bits.
pub const SECRET_LENGTH: usize = 43;
/// Characters of a minted public id: 26 × 36^11 ≈ 2^61, so two mints practically never
/// collide (and `issue` checks the policy anyway).
pub const MINTED_ID_LENGTH: usize = 12;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BASE36: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const LOWERCASE: &[u8; 26] = b"abcdefghijklmnopqrstuvwxyz";

/// The operating system could not provide randomness.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct MintError(getrandom::Error);

impl MintError {
    pub fn help(&self) -> &'static str {
        "no key was made; try again, and check that the system's entropy source (getrandom, /dev/urandom) is available"
    }
}

/// A new gateway key: its public id and the full key text `tmt_<id>_<secret>`, which exists
/// only in this value until it is delivered.
pub fn mint() -> Result<(GatewayKeyId, SecretString), MintError> {
    // A letter first: an id of digits (or `1e10`, `0x1f`) is a number to YAML, and a policy
    // file would need it quoted.
    let mut id = random_text(LOWERCASE, 1)?;
    id.push_str(&random_text(BASE36, MINTED_ID_LENGTH - 1)?);
    let id = GatewayKeyId::parse(&id).expect("a minted id is lowercase alphanumerics");
    let secret = random_text(BASE62, SECRET_LENGTH)?;
    let full = format!("{KEY_PREFIX}{id}_{secret}");
    Ok((id, SecretString::from(full)))
}

/// `length` characters drawn uniformly from `alphabet`. Bytes at or above the largest multiple
/// of the alphabet's size are thrown away, so no character is likelier than another.
fn random_text(alphabet: &[u8], length: usize) -> Result<String, MintError> {
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(length);
    let mut pool = [0u8; 64];
    while out.len() < length {
        getrandom::fill(&mut pool).map_err(MintError)?;
        for &byte in &pool {
            if usize::from(byte) < limit && out.len() < length {
                out.push(char::from(alphabet[usize::from(byte) % alphabet.len()]));
            }
        }
    }
    // The pool held secret material: clear it before it goes out of scope.
    pool.fill(0);
    std::hint::black_box(&pool);
    Ok(out)
}

/// The secret part of a presented key. Its Debug shows nothing of it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeySecret<'a>(&'a str);

impl<'a> KeySecret<'a> {
    pub fn expose(&self) -> &'a str {
        self.0
    }
}

impl std::fmt::Debug for KeySecret<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySecret([REDACTED])")
    }
}

/// Why a presented text is not a gateway key. Never carries the text itself.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    #[error("the key does not start with `tmt_`")]
    Prefix,
    #[error("the key has no `_` between its public id and its secret")]
    Separator,
    #[error("the key's public id is not valid: {0}")]
    Id(GatewayKeyIdError),
    #[error("the key's secret is not {SECRET_LENGTH} base62 characters")]
    Secret,
}

impl KeyFormatError {
    pub fn help(&self) -> &'static str {
        "a gateway key looks like `tmt_<id>_<secret>`, as `tramontane gateway issue` delivered it: check it was copied whole"
    }
}

/// Splits a presented key into its public id and secret, checking each part's shape.
pub fn parse(presented: &str) -> Result<(GatewayKeyId, KeySecret<'_>), KeyFormatError> {
    let rest = presented
        .strip_prefix(KEY_PREFIX)
        .ok_or(KeyFormatError::Prefix)?;
    let (id, secret) = rest.split_once('_').ok_or(KeyFormatError::Separator)?;
    let id = GatewayKeyId::parse(id).map_err(KeyFormatError::Id)?;
    if secret.len() != SECRET_LENGTH || !secret.bytes().all(|byte| byte.is_ascii_alphanumeric()) {
        return Err(KeyFormatError::Secret);
    }
    Ok((id, KeySecret(secret)))
}

/// Why a presented key is refused. The gateway answers every one the same way (401), so a
/// caller learns nothing from it; the audit line says which.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Format(#[from] KeyFormatError),
    #[error("no gateway key `{0}` in the policy")]
    UnknownId(GatewayKeyId),
    #[error("the secret does not match gateway key `{0}`")]
    Mismatch(GatewayKeyId),
    #[error("gateway key `{id}` expired on {expires}")]
    Expired { id: GatewayKeyId, expires: Date },
}

/// Finds the policy entry a presented key belongs to: looked up by its public id, then its
/// digest compared in constant time. The public id is not secret, so that an unknown id fails
/// faster than a wrong secret tells a caller nothing they could not read in the policy.
pub fn verify<'a>(
    keys: &'a BTreeMap<GatewayKeyId, GatewayKey>,
    presented: &str,
    today: Date,
) -> Result<(&'a GatewayKeyId, &'a GatewayKey), VerifyError> {
    let (id, _) = parse(presented)?;
    let (id, entry) = keys.get_key_value(&id).ok_or(VerifyError::UnknownId(id))?;
    if !entry.digest.matches(presented) {
        return Err(VerifyError::Mismatch(id.clone()));
    }
    if !entry.is_valid_on(today) {
        return Err(VerifyError::Expired {
            id: id.clone(),
            expires: entry.expires,
        });
    }
    Ok((id, entry))
}

/// The digest a policy entry records for a full key.
pub fn digest_of(full_key: &SecretString) -> KeyDigest {
    use secrecy::ExposeSecret;
    KeyDigest::of(full_key.expose_secret())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Holder;
    use proptest::prelude::*;
    use secrecy::ExposeSecret;

    fn entry_for(full: &str, expires: Date) -> GatewayKey {
        GatewayKey {
            digest: KeyDigest::of(full),
            holder: Holder::Member("ada@acme.example".into()),
            workspace: "prod".into(),
            expires,
            description: None,
        }
    }

    #[test]
    fn minted_keys_have_the_documented_shape_and_parse_back() {
        let (id, key) = mint().unwrap();
        let full = key.expose_secret();
        assert_eq!(id.as_str().len(), MINTED_ID_LENGTH);
        assert!(
            id.as_str()
                .starts_with(|first: char| first.is_ascii_lowercase())
        );
        assert!(full.starts_with(&format!("tmt_{id}_")));
        assert_eq!(full.len(), 4 + MINTED_ID_LENGTH + 1 + SECRET_LENGTH);
        let (parsed, secret) = parse(full).unwrap();
        assert_eq!(parsed, id);
        assert_eq!(secret.expose().len(), SECRET_LENGTH);
        // Neither the SecretString nor the parsed part shows the secret when debugged.
        assert!(!format!("{key:?}").contains(secret.expose()));
        assert!(!format!("{secret:?}").contains(secret.expose()));
    }

    #[test]
    fn mints_differ() {
        let keys: std::collections::HashSet<String> = (0..200)
            .map(|_| mint().unwrap().1.expose_secret().to_owned())
            .collect();
        assert_eq!(keys.len(), 200);
    }

    #[test]
    fn every_character_of_the_alphabet_is_drawn() {
        // 62 symbols in 4,300 draws: a biased or truncated alphabet would miss some.
        let text = random_text(BASE62, 4_300).unwrap();
        for symbol in BASE62 {
            assert!(text.as_bytes().contains(symbol), "{}", char::from(*symbol));
        }
    }

    #[test]
    fn malformed_keys_are_refused_without_echoing_them() {
        let secret = "A".repeat(SECRET_LENGTH);
        assert_eq!(parse("sk-abc").unwrap_err(), KeyFormatError::Prefix);
        assert_eq!(parse("tmt_abcdef").unwrap_err(), KeyFormatError::Separator);
        assert!(matches!(
            parse(&format!("tmt_AB_{secret}")).unwrap_err(),
            KeyFormatError::Id(_)
        ));
        assert_eq!(parse("tmt_abcd_short").unwrap_err(), KeyFormatError::Secret);
        assert_eq!(
            parse(&format!("tmt_abcd_{secret}_")).unwrap_err(),
            KeyFormatError::Secret
        );
        let error = parse(&format!("tmt_abcd_{}", "ß".repeat(20))).unwrap_err();
        assert!(!error.to_string().contains('ß'));
    }

    #[test]
    fn verification_finds_the_entry_and_checks_digest_and_expiry() {
        let (id, key) = mint().unwrap();
        let full = key.expose_secret();
        let today = Date::constant(2026, 6, 1);
        let mut keys = BTreeMap::new();
        keys.insert(id.clone(), entry_for(full, Date::constant(2026, 7, 1)));

        let (found, _) = verify(&keys, full, today).unwrap();
        assert_eq!(found, &id);

        let mut wrong = full.to_owned();
        let last = wrong.pop().unwrap();
        wrong.push(if last == 'a' { 'b' } else { 'a' });
        assert_eq!(
            verify(&keys, &wrong, today),
            Err(VerifyError::Mismatch(id.clone()))
        );

        let (other, other_key) = mint().unwrap();
        assert_eq!(
            verify(&keys, other_key.expose_secret(), today),
            Err(VerifyError::UnknownId(other))
        );

        // An entry is valid until the day it expires.
        assert!(verify(&keys, full, Date::constant(2026, 6, 30)).is_ok());
        assert_eq!(
            verify(&keys, full, Date::constant(2026, 7, 1)),
            Err(VerifyError::Expired {
                id: id.clone(),
                expires: Date::constant(2026, 7, 1)
            })
        );
    }

    #[test]
    fn an_entry_copied_under_another_id_matches_nothing() {
        let (id, key) = mint().unwrap();
        let secret = parse(key.expose_secret()).unwrap().1.expose().to_owned();
        let mut keys = BTreeMap::new();
        let other = GatewayKeyId::parse("other-id").unwrap();
        keys.insert(
            other.clone(),
            entry_for(key.expose_secret(), Date::constant(2030, 1, 1)),
        );
        // The same secret presented under the copied entry's id: the digest covers the id.
        let forged = format!("tmt_{other}_{secret}");
        assert_eq!(
            verify(&keys, &forged, Date::constant(2026, 1, 1)),
            Err(VerifyError::Mismatch(other))
        );
        assert_ne!(id.as_str(), "other-id");
    }

    proptest! {
        #[test]
        fn any_well_formed_key_parses_to_its_parts(
            id in "[a-z0-9][a-z0-9-]{2,38}[a-z0-9]",
            secret in "[A-Za-z0-9]{43}",
        ) {
            let full = format!("tmt_{id}_{secret}");
            let (parsed_id, parsed_secret) = parse(&full).unwrap();
            prop_assert_eq!(parsed_id.as_str(), id.as_str());
            prop_assert_eq!(parsed_secret.expose(), secret.as_str());
            let digest = KeyDigest::of(&full);
            prop_assert!(digest.matches(&full));
            prop_assert_eq!(KeyDigest::parse(&digest.to_string()), Ok(digest));
        }

        #[test]
        fn parsing_never_panics_and_never_echoes(text in "\\PC{0,120}") {
            if let Err(error) = parse(&text) {
                let shown = error.to_string();
                prop_assert!(text.len() < 8 || !shown.contains(text.as_str()));
            }
        }

        #[test]
        fn a_changed_character_never_matches(
            secret in "[A-Za-z0-9]{43}",
            at in 0usize..43,
            replacement in "[A-Za-z0-9]",
        ) {
            let full = format!("tmt_abcd_{secret}");
            let mut changed: Vec<char> = secret.chars().collect();
            let replacement = replacement.chars().next().unwrap();
            prop_assume!(changed[at] != replacement);
            changed[at] = replacement;
            let changed: String = changed.into_iter().collect();
            let presented = format!("tmt_abcd_{changed}");
            prop_assert!(!KeyDigest::of(&full).matches(&presented));
        }
    }
}
