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

use crate::body_scan::Scalar;
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

/// The most tokens one image can be billed as: Mistral's image encoders (mistral-common's
/// `ImageConfig`) resize an image to at most 1024 px a side in 16 px patches — 64 rows of 64
/// patch tokens, a row break after each and an end token — and the models with larger images
/// (1540 px in 14 px patches merged 2 × 2) come to fewer (55 × 56).
pub const IMAGE_TOKENS_MAX: u64 = 64 * (64 + 1) + 1;
/// Tokens of framing (role markers, separators, control tokens) counted for every object and
/// every array item in the request: the chat template adds a few per message or tool.
pub(crate) const TOKENS_PER_OBJECT: u64 = 8;

/// The capacity a request asks to be served on (`service_tier`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RequestedTier {
    /// `auto`, absent or `null`: priority capacity when the organization has it, so priced
    /// at the priority tier until the answer says otherwise.
    #[default]
    Auto,
    /// `standard_only`.
    StandardOnly,
}

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
    /// An upper bound on the prompt's tokens the gateway can see: a token is at least one
    /// byte of text, every string and key counts, an inline image at [`IMAGE_TOKENS_MAX`].
    pub prompt_estimate: u64,
    /// Items whose tokens the upstream fetches or expands where the gateway cannot see them:
    /// documents (by URL or `data:`), images by URL, stored files, an agent's own prompt.
    pub fetched_items: u64,
    pub tier: RequestedTier,
}

pub(crate) struct Entries<'a>(Vec<(String, &'a RawValue)>);

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

pub(crate) fn top_level(body: &[u8]) -> Result<Entries<'_>, Refusal> {
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

/// A field's value. The raw value is known to be JSON; this fails only where it nests deeper
/// than the parser's recursion limit, which no real request does.
#[cfg(test)]
pub(crate) fn parse_value(raw: &RawValue) -> Result<Value, Refusal> {
    serde_json::from_str(raw.get()).map_err(|error| Refusal::MalformedJson {
        detail: error.to_string(),
    })
}

/// A string field read by the scan, `None` when absent or `null`.
fn text_of(value: Option<Scalar<'_>>, name: &'static str) -> Result<Option<String>, Refusal> {
    match value {
        None | Some(Scalar::Null) => Ok(None),
        Some(Scalar::Text(text)) => Ok(Some(text.into_string())),
        Some(_) => Err(Refusal::InvalidField {
            field: name,
            detail: "must be a string".into(),
        }),
    }
}

/// A non-negative integer read by the scan, `None` when absent or `null`.
fn count_of(value: Option<Scalar<'_>>, name: &'static str) -> Result<Option<u64>, Refusal> {
    match value {
        None | Some(Scalar::Null) => Ok(None),
        Some(Scalar::Count(count)) => Ok(Some(count)),
        Some(_) => Err(Refusal::InvalidField {
            field: name,
            detail: "must be a non-negative integer".into(),
        }),
    }
}

impl InferenceRequest {
    /// Reads what enforcement needs and bounds the prompt, in one pass over the body
    /// ([`crate::body_scan`]).
    pub fn parse(endpoint: Endpoint, body: &[u8]) -> Result<InferenceRequest, Refusal> {
        let scanned = crate::body_scan::scan(body).map_err(|error| Refusal::MalformedJson {
            detail: error.to_string(),
        })?;
        if let Some(field) = scanned.duplicate {
            return Err(Refusal::DuplicateField { field });
        }
        let model = text_of(scanned.model, "model")?;
        let agent_id = text_of(scanned.agent_id, "agent_id")?;
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
        let max_tokens_is_null = matches!(scanned.max_tokens, Some(Scalar::Null));
        let max_tokens = count_of(scanned.max_tokens, "max_tokens")?;
        let choices = match count_of(scanned.n, "n")? {
            Some(0) => {
                return Err(Refusal::InvalidField {
                    field: "n",
                    detail: "must be at least 1".into(),
                });
            }
            Some(n) => n,
            None => 1,
        };
        let stream = match scanned.stream {
            None | Some(Scalar::Null) => false,
            Some(Scalar::Bool(stream)) => stream,
            Some(_) => {
                return Err(Refusal::InvalidField {
                    field: "stream",
                    detail: "must be true or false".into(),
                });
            }
        };
        let tier = match scanned.service_tier {
            Some(Scalar::Text(tier)) if tier.as_str() == "standard_only" => {
                RequestedTier::StandardOnly
            }
            None | Some(Scalar::Null | Scalar::Text(_)) => RequestedTier::Auto,
            Some(_) => {
                return Err(Refusal::InvalidField {
                    field: "service_tier",
                    detail: "must be a string".into(),
                });
            }
        };
        let mut fetched_items = scanned.fetched_items;
        // An agent's instructions and tools are kept upstream and billed as prompt.
        if endpoint == Endpoint::Agents {
            fetched_items += 1;
        }
        Ok(InferenceRequest {
            endpoint,
            model,
            agent_id,
            max_tokens,
            max_tokens_is_null,
            choices,
            stream,
            prompt_estimate: scanned.tokens,
            fetched_items,
            tier,
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

/// The bound as it was taken before the one-pass scan, over a tree of values: what the
/// property tests hold the scan to.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct PromptBound {
    tokens: u64,
    fetched_items: u64,
}

#[cfg(test)]
impl PromptBound {
    /// The old parse's bound of a body: its tokens and fetched items, `None` where it refused.
    pub(crate) fn of(endpoint: Endpoint, body: &[u8]) -> Option<(u64, u64)> {
        let entries = top_level(body).ok()?;
        let mut bound = PromptBound::default();
        for (key, raw) in &entries.0 {
            if matches!(key.as_str(), "model" | "agent_id" | "service_tier") {
                continue;
            }
            bound.key(key);
            bound.value(&parse_value(raw).ok()?);
        }
        if endpoint == Endpoint::Agents {
            bound.fetched_items += 1;
        }
        Some((bound.tokens, bound.fetched_items))
    }

    fn add(&mut self, tokens: u64) {
        self.tokens = self.tokens.saturating_add(tokens);
    }

    /// A key can be rendered into the prompt too (a tool's parameter names, a schema's
    /// properties).
    fn key(&mut self, key: &str) {
        self.add(key.len() as u64);
    }

    fn value(&mut self, value: &Value) {
        match value {
            Value::String(text) => self.add(text.len() as u64),
            Value::Number(_) | Value::Bool(_) | Value::Null => self.add(1),
            Value::Array(items) => {
                for item in items {
                    self.add(TOKENS_PER_OBJECT);
                    self.value(item);
                }
            }
            Value::Object(map) => {
                self.add(TOKENS_PER_OBJECT);
                match map.get("type").and_then(Value::as_str) {
                    Some("image_url") => self.image_chunk(map),
                    // The upstream reads these itself: a document by URL or `data:`, a file
                    // uploaded earlier. Their text is not in the request.
                    Some("document_url" | "file" | "input_file") => {
                        self.fetched_items += 1;
                        self.fields(map);
                    }
                    _ => self.fields(map),
                }
            }
        }
    }

    fn fields(&mut self, map: &serde_json::Map<String, Value>) {
        for (key, value) in map {
            self.key(key);
            self.value(value);
        }
    }

    /// An image chunk: an inline `data:image/…` picture is billed as an image whatever its
    /// encoded length; one by URL is fetched upstream. Every other field counts as text.
    fn image_chunk(&mut self, map: &serde_json::Map<String, Value>) {
        let url = match map.get("image_url") {
            Some(Value::String(url)) => Some(url.as_str()),
            Some(Value::Object(inner)) => inner.get("url").and_then(Value::as_str),
            _ => None,
        };
        match url {
            Some(url) if url.starts_with("data:image/") => {
                self.add(IMAGE_TOKENS_MAX);
                for (key, value) in map {
                    self.key(key);
                    match (key.as_str(), value) {
                        ("image_url", Value::String(_)) => {}
                        ("image_url", Value::Object(inner)) => {
                            for (key, value) in inner {
                                self.key(key);
                                if key != "url" {
                                    self.value(value);
                                }
                            }
                        }
                        _ => self.value(value),
                    }
                }
            }
            _ => {
                // By URL (or something that is not an image): fetched upstream, and its
                // bytes count as text besides, in case they are read as such.
                self.fetched_items += 1;
                self.fields(map);
            }
        }
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
        assert!(request.prompt_estimate >= IMAGE_TOKENS_MAX);
        assert!(request.prompt_estimate < IMAGE_TOKENS_MAX + 200);
        assert_eq!(request.fetched_items, 0);
        let nested = image.replace(r#""image_url":"data"#, r#""image_url":{"url":"data"#);
        let nested = nested.replace(r#""}]}]}"#, r#""}}]}]}"#);
        let request = chat(&nested).unwrap();
        assert!(request.prompt_estimate < IMAGE_TOKENS_MAX + 200, "{nested}");
    }

    #[test]
    fn every_other_string_counts_whole_wherever_it_stands() {
        let text = "x".repeat(100_000);
        for body in [
            // Text that merely starts like an inline image.
            format!(r#"{{"model":"m","messages":[{{"role":"user","content":"data:{text}"}}]}}"#),
            format!(
                r#"{{"model":"m","messages":[],"tools":[{{"type":"function","function":{{"name":"f","description":"{text}"}}}}]}}"#
            ),
            format!(
                r#"{{"model":"m","messages":[],"response_format":{{"type":"json_schema","json_schema":{{"schema":{{"properties":{{"{text}":{{}}}}}}}}}}}}"#
            ),
            format!(
                r#"{{"model":"m","messages":[],"prediction":{{"type":"content","content":"{text}"}}}}"#
            ),
            format!(
                r#"{{"model":"m","messages":[{{"role":"user","content":[{{"type":"image_url","image_url":"data:text/plain,{text}"}}]}}]}}"#
            ),
        ] {
            let request = chat(&body).unwrap();
            assert!(request.prompt_estimate >= 100_000, "{}", &body[..120]);
        }
    }

    #[test]
    fn what_the_upstream_fetches_is_counted_as_fetched() {
        for body in [
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"document_url","document_url":"https://example.com/a.pdf"}]}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"document_url","document_url":"data:application/pdf;base64,AAAA"}]}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":"https://example.com/a.png"}]}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"file","file_id":"f-1"}]}]}"#,
        ] {
            assert_eq!(chat(body).unwrap().fetched_items, 1, "{body}");
        }
        let agents =
            InferenceRequest::parse(Endpoint::Agents, br#"{"agent_id":"a","messages":[]}"#)
                .unwrap();
        assert_eq!(agents.fetched_items, 1);
        assert_eq!(
            chat(r#"{"model":"m","messages":[]}"#)
                .unwrap()
                .fetched_items,
            0
        );
    }

    #[test]
    fn the_tier_asked_for_is_read() {
        assert_eq!(chat(r#"{"model":"m"}"#).unwrap().tier, RequestedTier::Auto);
        assert_eq!(
            chat(r#"{"model":"m","service_tier":"auto"}"#).unwrap().tier,
            RequestedTier::Auto
        );
        assert_eq!(
            chat(r#"{"model":"m","service_tier":"standard_only"}"#)
                .unwrap()
                .tier,
            RequestedTier::StandardOnly
        );
        assert!(matches!(
            chat(r#"{"model":"m","service_tier":1}"#),
            Err(Refusal::InvalidField {
                field: "service_tier",
                ..
            })
        ));
    }
}
