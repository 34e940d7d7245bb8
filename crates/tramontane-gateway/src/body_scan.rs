//! One pass over an inference request's body: the fields enforcement reads and the bound on
//! its prompt, taken as the parser goes, without building the body as a tree of values (a
//! string for every string, a map for every object) only to walk it and drop it.
//!
//! The bound is the one [`crate::request`] documents: every key and string counts its bytes,
//! every other scalar one token, every object and array item [`TOKENS_PER_OBJECT`] of
//! framing, an inline image (`"type": "image_url"` with a `data:image/…` URL) at
//! [`IMAGE_TOKENS_MAX`] instead of its encoding, and what the upstream fetches (a document, a
//! file, an image by URL) one fetched item. An object's kind is known only once all of it is
//! read (`type` may come last), so each object sums its fields as plain text and, when it
//! turns out to be an inline image, takes its URL's bytes back out.
//!
//! A key repeated inside an object (which JSON parsers resolve differently) is counted every
//! time it appears: the bound is never lower than the last value's alone.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::request::{IMAGE_TOKENS_MAX, TOKENS_PER_OBJECT};

/// A top-level key: borrowed from the body unless it was written with escapes.
#[derive(Debug)]
pub(crate) enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(text) => text,
            Key::Owned(text) => text,
        }
    }

    pub(crate) fn into_string(self) -> String {
        match self {
            Key::Borrowed(text) => text.to_owned(),
            Key::Owned(text) => text,
        }
    }
}

/// A top-level field enforcement reads, by its JSON type.
#[derive(Debug)]
pub(crate) enum Scalar<'de> {
    Null,
    Bool(bool),
    /// A non-negative integer.
    Count(u64),
    /// A negative or fractional number, or one too large for 64 bits.
    OtherNumber,
    Text(Key<'de>),
    /// An array or an object: never a valid value for these fields.
    Compound,
}

impl Scalar<'_> {
    /// What it adds to the prompt's bound.
    fn tokens(&self) -> u64 {
        match self {
            Scalar::Text(text) => text.as_str().len() as u64,
            Scalar::Compound => 0,
            _ => 1,
        }
    }
}

/// What one pass over a request body found.
#[derive(Debug, Default)]
pub(crate) struct Scanned<'de> {
    pub model: Option<Scalar<'de>>,
    pub agent_id: Option<Scalar<'de>>,
    pub max_tokens: Option<Scalar<'de>>,
    pub n: Option<Scalar<'de>>,
    pub stream: Option<Scalar<'de>>,
    pub service_tier: Option<Scalar<'de>>,
    /// The first top-level key given twice.
    pub duplicate: Option<String>,
    /// The prompt's bound over every field but `model`, `agent_id` and `service_tier`.
    pub tokens: u64,
    pub fetched_items: u64,
}

/// Scans `body`, a JSON object; the error is the parser's, for a body that is not one.
pub(crate) fn scan(body: &[u8]) -> Result<Scanned<'_>, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let scanned = deserializer.deserialize_map(TopLevel)?;
    deserializer.end()?;
    Ok(scanned)
}

struct TopLevel;

impl<'de> Visitor<'de> for TopLevel {
    type Value = Scanned<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Scanned<'de>, M::Error> {
        let mut scanned = Scanned::default();
        // A request has a handful of top-level keys: a list is cheaper than a set.
        let mut seen: Vec<Key<'de>> = Vec::with_capacity(8);
        while let Some(key) = map.next_key_seed(TopKey)? {
            if scanned.duplicate.is_none() && seen.iter().any(|s| s.as_str() == key.as_str()) {
                scanned.duplicate = Some(key.as_str().to_owned());
            }
            let slot = match key.as_str() {
                "model" => Some((&mut scanned.model, false)),
                "agent_id" => Some((&mut scanned.agent_id, false)),
                "service_tier" => Some((&mut scanned.service_tier, false)),
                "max_tokens" => Some((&mut scanned.max_tokens, true)),
                "n" => Some((&mut scanned.n, true)),
                "stream" => Some((&mut scanned.stream, true)),
                _ => None,
            };
            match slot {
                Some((slot, counted)) => {
                    let value = map.next_value_seed(ScalarSeed)?;
                    if counted {
                        scanned.tokens = scanned
                            .tokens
                            .saturating_add(key.as_str().len() as u64)
                            .saturating_add(value.tokens());
                    }
                    *slot = Some(value);
                }
                None => {
                    let value = map.next_value_seed(ValueSeed)?;
                    scanned.tokens = scanned
                        .tokens
                        .saturating_add(key.as_str().len() as u64)
                        .saturating_add(value.tokens);
                    scanned.fetched_items = scanned.fetched_items.saturating_add(value.fetched);
                }
            }
            seen.push(key);
        }
        Ok(scanned)
    }
}

struct TopKey;

impl<'de> DeserializeSeed<'de> for TopKey {
    type Value = Key<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key<'de>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for TopKey {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Key<'de>, E> {
        Ok(Key::Borrowed(text))
    }

    fn visit_str<E>(self, text: &str) -> Result<Key<'de>, E> {
        Ok(Key::Owned(text.to_owned()))
    }

    fn visit_string<E>(self, text: String) -> Result<Key<'de>, E> {
        Ok(Key::Owned(text))
    }
}

struct ScalarSeed;

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Scalar<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Scalar<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScalarSeed {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }

    fn visit_none<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }

    fn visit_bool<E>(self, value: bool) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Bool(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Count(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Scalar<'de>, E> {
        Ok(u64::try_from(value).map_or(Scalar::OtherNumber, Scalar::Count))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::OtherNumber)
    }

    fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Text(Key::Borrowed(text)))
    }

    fn visit_str<E>(self, text: &str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Text(Key::Owned(text.to_owned())))
    }

    fn visit_string<E>(self, text: String) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Text(Key::Owned(text)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Compound)
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Scalar<'de>, M::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Compound)
    }
}

/// A content chunk's `type`, as far as the bound cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChunkType {
    ImageUrl,
    /// `document_url`, `file`, `input_file`: the upstream reads these itself.
    Fetched,
    Other,
}

/// What a value inside the body adds to the bound, and what its enclosing object needs to
/// know about it to tell an inline image.
#[derive(Clone, Copy, Debug, Default)]
struct Bound {
    tokens: u64,
    fetched: u64,
    /// A string: the chunk type it names when it is a `type`.
    chunk_type: Option<ChunkType>,
    /// A string that is an inline image URL: its bytes.
    inline_image: Option<u64>,
    /// An object whose (last) `url` is an inline image: that URL's bytes.
    inline_url: Option<u64>,
    /// An object read as plain fields (its framing, keys and values), before its own kind
    /// adjusted it: how an inline image's `image_url` object counts.
    plain: Option<(u64, u64)>,
}

impl Bound {
    fn scalar() -> Bound {
        Bound {
            tokens: 1,
            ..Bound::default()
        }
    }

    fn text(text: &str) -> Bound {
        let chunk_type = match text {
            "image_url" => ChunkType::ImageUrl,
            "document_url" | "file" | "input_file" => ChunkType::Fetched,
            _ => ChunkType::Other,
        };
        Bound {
            tokens: text.len() as u64,
            chunk_type: Some(chunk_type),
            inline_image: text.starts_with("data:image/").then_some(text.len() as u64),
            ..Bound::default()
        }
    }
}

struct ValueSeed;

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Bound;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Bound, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = Bound;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Bound, E> {
        Ok(Bound::scalar())
    }

    fn visit_none<E>(self) -> Result<Bound, E> {
        Ok(Bound::scalar())
    }

    fn visit_bool<E>(self, _: bool) -> Result<Bound, E> {
        Ok(Bound::scalar())
    }

    fn visit_u64<E>(self, _: u64) -> Result<Bound, E> {
        Ok(Bound::scalar())
    }

    fn visit_i64<E>(self, _: i64) -> Result<Bound, E> {
        Ok(Bound::scalar())
    }

    fn visit_f64<E>(self, _: f64) -> Result<Bound, E> {
        Ok(Bound::scalar())
    }

    fn visit_str<E>(self, text: &str) -> Result<Bound, E> {
        Ok(Bound::text(text))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bound, A::Error> {
        let mut bound = Bound::default();
        while let Some(item) = seq.next_element_seed(ValueSeed)? {
            bound.tokens = bound
                .tokens
                .saturating_add(TOKENS_PER_OBJECT)
                .saturating_add(item.tokens);
            bound.fetched = bound.fetched.saturating_add(item.fetched);
        }
        Ok(bound)
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Bound, M::Error> {
        // Summed as plain fields first; the object's kind, known at its end, adjusts it.
        let mut tokens = TOKENS_PER_OBJECT;
        let mut fetched = 0u64;
        // The last value of each key that decides the kind, as a parser that keeps the last
        // of a repeated key reads it.
        let mut chunk_type = None;
        let mut image_url: Option<Bound> = None;
        let mut url: Option<Bound> = None;
        while let Some(key) = map.next_key_seed(NestedKey)? {
            let value = map.next_value_seed(ValueSeed)?;
            tokens = tokens.saturating_add(key.len).saturating_add(value.tokens);
            fetched = fetched.saturating_add(value.fetched);
            match key.role {
                KeyRole::Type => chunk_type = value.chunk_type,
                KeyRole::ImageUrl => image_url = Some(value),
                KeyRole::Url => url = Some(value),
                KeyRole::Other => {}
            }
        }
        let plain = Some((tokens, fetched));
        match chunk_type {
            Some(ChunkType::ImageUrl) => {
                // An inline picture is billed as an image whatever its encoded length: its
                // URL's bytes (and, given as an object, that object's framing) come out.
                let inline = image_url.and_then(|value| match value.plain {
                    // Its fields count as plain fields (it is no chunk of its own), less
                    // its framing and its URL.
                    Some((plain, plain_fetched)) => value.inline_url.map(|bytes| {
                        let kept = plain
                            .saturating_sub(TOKENS_PER_OBJECT)
                            .saturating_sub(bytes);
                        (value.tokens, value.fetched, kept, plain_fetched)
                    }),
                    None => value.inline_image.map(|bytes| (bytes, 0, 0, 0)),
                });
                match inline {
                    Some((counted, counted_fetched, kept, kept_fetched)) => {
                        tokens = tokens
                            .saturating_sub(counted)
                            .saturating_add(kept)
                            .saturating_add(IMAGE_TOKENS_MAX);
                        fetched = fetched
                            .saturating_sub(counted_fetched)
                            .saturating_add(kept_fetched);
                    }
                    // By URL, or not an image: fetched upstream, and its bytes count as text
                    // besides, in case they are read as such.
                    None => fetched = fetched.saturating_add(1),
                }
            }
            Some(ChunkType::Fetched) => fetched = fetched.saturating_add(1),
            _ => {}
        }
        Ok(Bound {
            tokens,
            fetched,
            inline_url: url.and_then(|value| value.inline_image),
            plain,
            ..Bound::default()
        })
    }
}

/// The keys that tell an inline image apart.
#[derive(Clone, Copy)]
enum KeyRole {
    Type,
    ImageUrl,
    Url,
    Other,
}

struct NestedKeyRead {
    len: u64,
    role: KeyRole,
}

struct NestedKey;

impl<'de> DeserializeSeed<'de> for NestedKey {
    type Value = NestedKeyRead;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<NestedKeyRead, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for NestedKey {
    type Value = NestedKeyRead;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E>(self, key: &str) -> Result<NestedKeyRead, E> {
        let role = match key {
            "type" => KeyRole::Type,
            "image_url" => KeyRole::ImageUrl,
            "url" => KeyRole::Url,
            _ => KeyRole::Other,
        };
        Ok(NestedKeyRead {
            len: key.len() as u64,
            role,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::request::{Endpoint, InferenceRequest, PromptBound};

    /// A JSON value as text is written: an object may repeat a key.
    #[derive(Clone, Debug)]
    enum Json {
        Leaf(String),
        Array(Vec<Json>),
        Object(Vec<(String, Json)>),
    }

    impl Json {
        fn render(&self, out: &mut String) {
            match self {
                Json::Leaf(text) => out.push_str(text),
                Json::Array(items) => {
                    out.push('[');
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        item.render(out);
                    }
                    out.push(']');
                }
                Json::Object(fields) => {
                    out.push('{');
                    for (i, (key, value)) in fields.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(&serde_json::Value::String(key.clone()).to_string());
                        out.push(':');
                        value.render(out);
                    }
                    out.push('}');
                }
            }
        }

        fn repeats_a_key(&self) -> bool {
            match self {
                Json::Leaf(_) => false,
                Json::Array(items) => items.iter().any(Json::repeats_a_key),
                Json::Object(fields) => {
                    let mut keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
                    keys.sort_unstable();
                    keys.windows(2).any(|pair| pair[0] == pair[1])
                        || fields.iter().any(|(_, value)| value.repeats_a_key())
                }
            }
        }
    }

    /// Strings that decide a chunk's kind, and others, some with escapes.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("image_url".to_owned()),
            Just("document_url".to_owned()),
            Just("file".to_owned()),
            Just("input_file".to_owned()),
            Just("text".to_owned()),
            Just("data:image/png;base64,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned()),
            Just("data:image/".to_owned()),
            Just("data:text/plain,xx".to_owned()),
            Just("https://example.com/a.png".to_owned()),
            r#"[a-z "\\\u{e9}\u{1F600}\n]{0,24}"#,
        ]
    }

    fn leaf() -> impl Strategy<Value = Json> {
        prop_oneof![
            text().prop_map(|text| Json::Leaf(serde_json::Value::String(text).to_string())),
            any::<i64>().prop_map(|n| Json::Leaf(n.to_string())),
            Just(Json::Leaf("1.5".into())),
            Just(Json::Leaf("true".into())),
            Just(Json::Leaf("null".into())),
        ]
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("type".to_owned()),
            Just("image_url".to_owned()),
            Just("url".to_owned()),
            Just("role".to_owned()),
            Just("content".to_owned()),
            Just("document_url".to_owned()),
            "[a-z\u{e9}]{0,6}",
        ]
    }

    fn json() -> impl Strategy<Value = Json> {
        leaf().prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
                prop::collection::vec((key(), inner.clone()), 0..6).prop_map(Json::Object),
                chunk(inner),
            ]
        })
    }

    /// A content chunk with a `type` and an `image_url`, a string or an object with a `url`,
    /// among other fields, in any order: the shapes that decide an inline image.
    fn chunk(inner: impl Strategy<Value = Json> + Clone) -> impl Strategy<Value = Json> {
        let url = || {
            prop_oneof![
                2 => Just("data:image/png;base64,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned()),
                1 => text(),
            ]
            .prop_map(|text| Json::Leaf(serde_json::Value::String(text).to_string()))
        };
        let kind = prop_oneof![3 => Just("image_url".to_owned()), 1 => text()];
        let image_url = prop_oneof![
            url(),
            (url(), prop::collection::vec((key(), inner.clone()), 0..3)).prop_map(
                |(url, mut fields)| {
                    fields.push(("url".to_owned(), url));
                    fields.reverse();
                    Json::Object(fields)
                }
            ),
        ];
        (
            kind,
            image_url,
            prop::collection::vec((key(), inner), 0..3),
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>(),
        )
            .prop_map(|(kind, image_url, mut fields, at, type_at)| {
                let kind = Json::Leaf(serde_json::Value::String(kind).to_string());
                fields.insert(
                    at.index(fields.len() + 1),
                    ("image_url".to_owned(), image_url),
                );
                fields.insert(type_at.index(fields.len() + 1), ("type".to_owned(), kind));
                Json::Object(fields)
            })
    }

    /// A request body: a model, then top-level fields with distinct keys.
    fn body() -> impl Strategy<Value = (Json, String)> {
        let top = prop_oneof![
            6 => Just("messages".to_owned()),
            2 => Just("tools".to_owned()),
            1 => Just("max_tokens".to_owned()),
            1 => Just("n".to_owned()),
            1 => Just("stream".to_owned()),
            1 => Just("service_tier".to_owned()),
            1 => Just("agent_id".to_owned()),
            1 => "[a-z]{1,8}".prop_map(String::from),
        ];
        prop::collection::vec((top, json()), 0..6).prop_map(|fields| {
            let mut object = vec![("model".to_owned(), Json::Leaf("\"m\"".into()))];
            for (key, value) in fields {
                if object.iter().all(|(seen, _)| *seen != key) {
                    object.push((key, value));
                }
            }
            let body = Json::Object(object);
            let mut text = String::new();
            body.render(&mut text);
            (body, text)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The scan bounds every body exactly as the walk over a tree of values did, and
        /// never lower where an object repeats a key.
        #[test]
        fn the_scan_bounds_a_body_as_the_tree_walk_did((body, text) in body()) {
            for endpoint in [Endpoint::Chat, Endpoint::Agents, Endpoint::Embeddings] {
                let old = PromptBound::of(endpoint, text.as_bytes());
                let scanned = InferenceRequest::parse(endpoint, text.as_bytes());
                let Ok(request) = scanned else {
                    continue;
                };
                let (tokens, fetched) = old.expect("the tree walk read what the scan did");
                if body.repeats_a_key() {
                    prop_assert!(request.prompt_estimate >= tokens, "{text}");
                    prop_assert!(request.fetched_items >= fetched, "{text}");
                } else {
                    prop_assert_eq!(request.prompt_estimate, tokens, "{}", text);
                    prop_assert_eq!(request.fetched_items, fetched, "{}", text);
                }
            }
        }

        /// What the scan refuses as malformed, serde_json refuses too, and the other way.
        #[test]
        fn the_scan_and_serde_json_agree_on_what_is_json(text in "[\\[\\]{}\":,0-9a-z ]{0,40}") {
            let scanned = crate::body_scan::scan(text.as_bytes()).is_ok();
            let parsed = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text).is_ok();
            prop_assert_eq!(scanned, parsed, "{}", text);
        }
    }

    #[test]
    fn an_image_object_that_names_its_own_type_counts_as_plain_fields() {
        // The inner object is no chunk of its own: its `image_url` text counts whole.
        let big = "A".repeat(50_000);
        let body = format!(
            r#"{{"model":"m","messages":[{{"type":"image_url","image_url":{{"url":"data:image/png;base64,AA","type":"image_url","image_url":"data:image/png;base64,{big}"}}}}]}}"#
        );
        let request = InferenceRequest::parse(Endpoint::Chat, body.as_bytes()).unwrap();
        assert_eq!(
            Some((request.prompt_estimate, request.fetched_items)),
            PromptBound::of(Endpoint::Chat, body.as_bytes())
        );
        assert!(request.prompt_estimate > 50_000);
    }
}
