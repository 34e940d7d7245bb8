//! Reading a request body just enough to enforce the policy, and editing it only where the
//! policy says: everything else is forwarded byte for byte.
//!
//! The top level is read as raw entries, so a key given twice is refused: parsers disagree on
//! which of two `max_tokens` wins, and a caller must not be able to show the gateway one
//! value and the upstream another.

use std::fmt;

use bytes::Bytes;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::refusal::Refusal;

/// The inference endpoints the gateway understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Fim,
    Embeddings,
    Agents,
    /// `/v1/moderations` and `/v1/chat/moderations`: a model reads the input, writes nothing.
    Moderations,
}

impl Endpoint {
    pub fn of(path: &str) -> Option<Endpoint> {
        match path {
            "/v1/chat/completions" => Some(Endpoint::Chat),
            "/v1/fim/completions" => Some(Endpoint::Fim),
            "/v1/embeddings" => Some(Endpoint::Embeddings),
            "/v1/agents/completions" => Some(Endpoint::Agents),
            "/v1/moderations" | "/v1/chat/moderations" => Some(Endpoint::Moderations),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat",
            Endpoint::Fim => "fim",
            Endpoint::Embeddings => "embeddings",
            Endpoint::Agents => "agents",
            Endpoint::Moderations => "moderations",
        }
    }

    /// Whether the endpoint generates tokens (and so takes `max_tokens`).
    pub fn generates(self) -> bool {
        !matches!(self, Endpoint::Embeddings | Endpoint::Moderations)
    }
}

/// Tokens one image is counted as before the upstream says what it cost.
pub const IMAGE_TOKEN_ESTIMATE: u64 = 4096;
/// Tokens of framing (role markers, separators) counted for every object in the request.
const TOKENS_PER_OBJECT: u64 = 8;

/// What enforcement needs from a request body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InferenceRequest {
    pub endpoint: Endpoint,
    /// `None` only for agents, whose model the agent decides.
    pub model: Option<String>,
    pub agent_id: Option<String>,
    /// `None` when absent or `null`.
    pub max_tokens: Option<u64>,
    max_tokens_is_null: bool,
    /// Completions asked for (`n`), 1 when absent.
    pub choices: u64,
    pub stream: bool,
    /// An upper bound on the prompt's tokens: a token is at least one byte of text.
    pub prompt_estimate: u64,
}

struct Entries<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Entries<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for EntriesVisitor<'a> {
            type Value = Entries<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Entries<'a>, M::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value: &'a RawValue = map.next_value()?;
                    entries.push((key, value));
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor(std::marker::PhantomData))
    }
}

fn top_level(body: &[u8]) -> Result<Entries<'_>, Refusal> {
    let entries: Entries<'_> =
        serde_json::from_slice(body).map_err(|error| Refusal::MalformedJson {
            detail: error.to_string(),
        })?;
    let mut seen = std::collections::HashSet::new();
    for (key, _) in &entries.0 {
        if !seen.insert(key.as_str()) {
            return Err(Refusal::DuplicateField { field: key.clone() });
        }
    }
    Ok(entries)
}

fn field<'a>(entries: &'a Entries<'_>, name: &str) -> Option<&'a RawValue> {
    entries
        .0
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| *value)
}

/// A field's value. The raw value is known to be JSON; this fails only where it nests deeper
/// than the parser's recursion limit, which no real request does.
fn parse_value(raw: &RawValue) -> Result<Value, Refusal> {
    serde_json::from_str(raw.get()).map_err(|error| Refusal::MalformedJson {
        detail: error.to_string(),
    })
}

fn string_field(entries: &Entries<'_>, name: &'static str) -> Result<Option<String>, Refusal> {
    match field(entries, name).map(parse_value).transpose()? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(Refusal::InvalidField {
            field: name,
            detail: "must be a string".into(),
        }),
    }
}

/// A non-negative integer, `None` when absent or `null`.
fn count_field(entries: &Entries<'_>, name: &'static str) -> Result<Option<u64>, Refusal> {
    match field(entries, name).map(parse_value).transpose()? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => number.as_u64().map(Some).ok_or(Refusal::InvalidField {
            field: name,
            detail: "must be a non-negative integer".into(),
        }),
        Some(_) => Err(Refusal::InvalidField {
            field: name,
            detail: "must be a non-negative integer".into(),
        }),
    }
}

impl InferenceRequest {
    pub fn parse(endpoint: Endpoint, body: &[u8]) -> Result<InferenceRequest, Refusal> {
        let entries = top_level(body)?;
        let model = string_field(&entries, "model")?;
        let agent_id = string_field(&entries, "agent_id")?;
        match endpoint {
            Endpoint::Agents if agent_id.is_none() => {
                return Err(Refusal::MissingField { field: "agent_id" });
            }
            Endpoint::Agents => {}
            _ if model.is_none() => return Err(Refusal::MissingField { field: "model" }),
            _ => {}
        }
        if model.as_deref() == Some("") {
            return Err(Refusal::InvalidField {
                field: "model",
                detail: "is empty".into(),
            });
        }
        let max_tokens = count_field(&entries, "max_tokens")?;
        let max_tokens_is_null = matches!(
            field(&entries, "max_tokens").map(parse_value).transpose()?,
            Some(Value::Null)
        );
        let choices = match count_field(&entries, "n")? {
            Some(0) => {
                return Err(Refusal::InvalidField {
                    field: "n",
                    detail: "must be at least 1".into(),
                });
            }
            Some(n) => n,
            None => 1,
        };
        let stream = match field(&entries, "stream").map(parse_value).transpose()? {
            None | Some(Value::Null) => false,
            Some(Value::Bool(stream)) => stream,
            Some(_) => {
                return Err(Refusal::InvalidField {
                    field: "stream",
                    detail: "must be true or false".into(),
                });
            }
        };
        let mut prompt_estimate = 0u64;
        for (key, raw) in &entries.0 {
            if matches!(key.as_str(), "model" | "agent_id") {
                continue;
            }
            prompt_estimate = prompt_estimate.saturating_add(estimate(&parse_value(raw)?));
        }
        Ok(InferenceRequest {
            endpoint,
            model,
            agent_id,
            max_tokens,
            max_tokens_is_null,
            choices,
            stream,
            prompt_estimate,
        })
    }

    /// The body to forward when the caller did not bound `max_tokens` and the policy does:
    /// the cap goes in, and every other byte stays as the caller sent it. `None` when the
    /// body needs no edit.
    pub fn inject_max_tokens(&self, body: &Bytes, cap: u64) -> Option<Bytes> {
        if self.max_tokens.is_some() || !self.endpoint.generates() {
            return None;
        }
        if self.max_tokens_is_null {
            // `"max_tokens": null` must be replaced, not shadowed: write the entries again.
            let entries = top_level(body).ok()?;
            let mut out = String::with_capacity(body.len() + 24);
            out.push('{');
            for (i, (key, raw)) in entries.0.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if key == "max_tokens" {
                    out.push_str(&cap.to_string());
                } else {
                    out.push_str(raw.get());
                }
            }
            out.push('}');
            return Some(Bytes::from(out));
        }
        let open = body.iter().position(|byte| !byte.is_ascii_whitespace())?;
        let rest = &body[open + 1..];
        let empty = rest
            .iter()
            .find(|byte| !byte.is_ascii_whitespace())
            .is_some_and(|&byte| byte == b'}');
        let mut out = Vec::with_capacity(body.len() + 24);
        out.extend_from_slice(&body[..=open]);
        out.extend_from_slice(format!("\"max_tokens\":{cap}").as_bytes());
        if !empty {
            out.push(b',');
        }
        out.extend_from_slice(rest);
        Some(Bytes::from(out))
    }
}

/// An upper bound on the tokens a JSON value of the prompt can take.
fn estimate(value: &Value) -> u64 {
    match value {
        // An inline image is billed as an image, not by the length of its encoding.
        Value::String(text) if text.starts_with("data:") => 0,
        Value::String(text) => text.len() as u64,
        Value::Array(items) => items.iter().map(estimate).fold(0, u64::saturating_add),
        Value::Object(map) => {
            let image = matches!(map.get("type"), Some(Value::String(kind)) if kind == "image_url");
            map.values()
                .map(estimate)
                .fold(TOKENS_PER_OBJECT, u64::saturating_add)
                .saturating_add(if image { IMAGE_TOKEN_ESTIMATE } else { 0 })
        }
        Value::Number(_) | Value::Bool(_) => 1,
        Value::Null => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(body: &str) -> Result<InferenceRequest, Refusal> {
        InferenceRequest::parse(Endpoint::Chat, body.as_bytes())
    }

    #[test]
    fn reads_what_enforcement_needs() {
        let request = chat(
            r#"{"model":"mistral-small-latest","messages":[{"role":"user","content":"hello"}],"max_tokens":20,"n":2,"stream":true}"#,
        )
        .unwrap();
        assert_eq!(request.model.as_deref(), Some("mistral-small-latest"));
        assert_eq!(request.max_tokens, Some(20));
        assert_eq!(request.choices, 2);
        assert!(request.stream);
        // "user" + "hello" + two objects' framing + three numbers and a bool.
        assert!(request.prompt_estimate >= 9, "{}", request.prompt_estimate);
    }

    #[test]
    fn bad_bodies_are_refused_with_the_field_named() {
        assert!(matches!(
            chat("not json"),
            Err(Refusal::MalformedJson { .. })
        ));
        assert!(matches!(chat("[1,2]"), Err(Refusal::MalformedJson { .. })));
        assert_eq!(
            chat(r#"{"messages":[]}"#),
            Err(Refusal::MissingField { field: "model" })
        );
        assert!(matches!(
            chat(r#"{"model":3,"messages":[]}"#),
            Err(Refusal::InvalidField { field: "model", .. })
        ));
        assert!(matches!(
            chat(r#"{"model":"m","max_tokens":-1}"#),
            Err(Refusal::InvalidField {
                field: "max_tokens",
                ..
            })
        ));
        assert!(matches!(
            chat(r#"{"model":"m","max_tokens":1.5}"#),
            Err(Refusal::InvalidField {
                field: "max_tokens",
                ..
            })
        ));
        assert!(matches!(
            chat(r#"{"model":"m","n":0}"#),
            Err(Refusal::InvalidField { field: "n", .. })
        ));
        assert_eq!(
            chat(r#"{"model":"m","max_tokens":1,"max_tokens":99999}"#),
            Err(Refusal::DuplicateField {
                field: "max_tokens".into()
            })
        );
        // The same key spelt with an escape is still the same key.
        assert!(matches!(
            chat(r#"{"model":"m","model":"x"}"#),
            Err(Refusal::DuplicateField { .. })
        ));
        assert!(matches!(
            chat(r#"{"model":"m","\u006dodel":"x"}"#),
            Err(Refusal::DuplicateField { .. })
        ));
        let deep = format!(
            "{{\"model\":\"m\",\"x\":{}{}}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert!(matches!(chat(&deep), Err(Refusal::MalformedJson { .. })));
        assert_eq!(
            InferenceRequest::parse(Endpoint::Agents, br#"{"messages":[]}"#),
            Err(Refusal::MissingField { field: "agent_id" })
        );
    }

    #[test]
    fn the_cap_is_injected_and_every_other_byte_kept() {
        let body = Bytes::from_static(b" {\n  \"model\": \"m\",\n  \"messages\": []\n}");
        let request = chat(std::str::from_utf8(&body).unwrap()).unwrap();
        let edited = request.inject_max_tokens(&body, 500).unwrap();
        assert_eq!(
            &edited[..],
            b" {\"max_tokens\":500,\n  \"model\": \"m\",\n  \"messages\": []\n}"
        );
        let reread = chat(std::str::from_utf8(&edited).unwrap()).unwrap();
        assert_eq!(reread.max_tokens, Some(500));

        let null = Bytes::from_static(br#"{"model":"m","max_tokens":null}"#);
        let request = chat(std::str::from_utf8(&null).unwrap()).unwrap();
        let edited = request.inject_max_tokens(&null, 7).unwrap();
        assert_eq!(&edited[..], br#"{"model":"m","max_tokens":7}"#);

        let given = Bytes::from_static(br#"{"model":"m","max_tokens":3}"#);
        let request = chat(std::str::from_utf8(&given).unwrap()).unwrap();
        assert_eq!(request.inject_max_tokens(&given, 7), None);

        let embed = Bytes::from_static(br#"{"model":"e","input":"x"}"#);
        let request = InferenceRequest::parse(Endpoint::Embeddings, &embed).unwrap();
        assert_eq!(request.inject_max_tokens(&embed, 7), None);
    }

    #[test]
    fn images_count_as_images_not_as_their_encoding() {
        let image = format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":[{{"type":"image_url","image_url":"data:image/png;base64,{}"}}]}}]}}"#,
            "A".repeat(100_000)
        );
        let request = chat(&image).unwrap();
        assert!(request.prompt_estimate >= IMAGE_TOKEN_ESTIMATE);
        assert!(request.prompt_estimate < IMAGE_TOKEN_ESTIMATE + 200);
    }
}
