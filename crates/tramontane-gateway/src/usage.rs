//! What an answer says it used, read from the bytes as they pass through on their way to
//! the caller, never holding a whole answer: a JSON answer keeps its first and last few
//! kilobytes (where `model` and `usage` are), a stream is read event by event for the last
//! `usage` Mistral sends in its final chunk.

use serde::Deserialize;
use serde::de::IgnoredAny;

/// Bytes kept from each end of a JSON answer.
const WINDOW: usize = 64 * 1024;
/// Longest stream event line read; a longer one stops the reading (the request is then
/// charged its reservation).
const MAX_EVENT_LINE: usize = 1024 * 1024;

/// What the upstream says a request used: Mistral's `UsageInfo`, with the two fields money
/// depends on beyond the counts — the tier that served it, and the prompt tokens read from
/// the prompt cache (`prompt_tokens_details.cached_tokens`, as the official SDK reads it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
    /// `None` when the answer does not say.
    #[serde(default, deserialize_with = "served_tier")]
    pub service_tier: Option<ServedTier>,
    #[serde(default)]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct PromptTokensDetails {
    #[serde(default)]
    pub cached_tokens: u64,
}

/// The capacity that served a request, as `usage.service_tier` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServedTier {
    Standard,
    Priority,
    /// A tier this release does not know: priced as the dearest one.
    Other,
}

fn served_tier<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<ServedTier>, D::Error> {
    let text: Option<String> = Option::deserialize(deserializer)?;
    Ok(text.map(|text| match text.as_str() {
        "standard" => ServedTier::Standard,
        "priority" => ServedTier::Priority,
        _ => ServedTier::Other,
    }))
}

impl Usage {
    pub fn tokens(&self) -> u64 {
        self.total_tokens
            .max(self.prompt_tokens.saturating_add(self.completion_tokens))
    }

    /// Prompt tokens read from the cache, never more than the prompt.
    pub fn cached_tokens(&self) -> u64 {
        self.prompt_tokens_details
            .map_or(0, |details| details.cached_tokens)
            .min(self.prompt_tokens)
    }
}

/// What an answer told about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    pub usage: Option<Usage>,
    /// The model that answered, as the upstream names it (resolved from an alias).
    pub model: Option<String>,
    /// Stream events carrying choices: how far a stream got before it ended.
    pub chunks: u64,
}

/// Reads a JSON answer's `usage` and `model` from its two ends.
#[derive(Default)]
pub struct JsonScanner {
    head: Vec<u8>,
    tail: Vec<u8>,
    total: usize,
}

impl JsonScanner {
    pub fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len();
        let room = WINDOW.saturating_sub(self.head.len());
        self.head.extend_from_slice(&bytes[..room.min(bytes.len())]);
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > 2 * WINDOW {
            let cut = self.tail.len() - WINDOW;
            self.tail.drain(..cut);
        }
    }

    pub fn finish(&self) -> Observed {
        let whole = self.total <= WINDOW;
        let usage = if whole {
            find_usage(&self.head)
        } else {
            find_usage(&self.tail).or_else(|| find_usage(&self.head))
        };
        Observed {
            usage,
            model: find_model(&self.head),
            chunks: 0,
        }
    }
}

/// The object after the last `"usage":` key. Inside a JSON string a quote is always escaped,
/// so the bytes `"usage"` can only be a key or a whole string value.
fn find_usage(bytes: &[u8]) -> Option<Usage> {
    let needle = b"\"usage\"";
    let mut end = bytes.len();
    while let Some(at) = rfind(&bytes[..end], needle) {
        let rest = skip_ws(&bytes[at + needle.len()..]);
        if let Some(rest) = rest.strip_prefix(b":") {
            let rest = skip_ws(rest);
            if rest.first() == Some(&b'{') {
                let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<Usage>();
                if let Some(Ok(usage)) = values.next() {
                    return Some(usage);
                }
            }
        }
        end = at;
    }
    None
}

fn find_model(bytes: &[u8]) -> Option<String> {
    let needle = b"\"model\"";
    let at = find(bytes, needle)?;
    let rest = skip_ws(&bytes[at + needle.len()..]);
    let rest = skip_ws(rest.strip_prefix(b":")?);
    let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<String>();
    values.next()?.ok()
}

fn skip_ws(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|byte| !byte.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    &bytes[start..]
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .rposition(|window| window == needle)
}

#[derive(Deserialize)]
struct StreamChunk {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    choices: Vec<IgnoredAny>,
}

/// Reads server-sent events as they pass.
#[derive(Default)]
pub struct StreamScanner {
    line: Vec<u8>,
    observed: Observed,
    /// A line too long to read: nothing more is learnt from this stream.
    gave_up: bool,
    pub done: bool,
}

impl StreamScanner {
    pub fn push(&mut self, bytes: &[u8]) {
        if self.gave_up {
            return;
        }
        let mut rest = bytes;
        while let Some(newline) = rest.iter().position(|&byte| byte == b'\n') {
            self.line.extend_from_slice(&rest[..newline]);
            let line = std::mem::take(&mut self.line);
            self.event_line(&line);
            rest = &rest[newline + 1..];
        }
        self.line.extend_from_slice(rest);
        if self.line.len() > MAX_EVENT_LINE {
            self.gave_up = true;
            self.line = Vec::new();
        }
    }

    fn event_line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        let data = skip_ws(data);
        if data == b"[DONE]" {
            self.done = true;
            return;
        }
        if let Ok(chunk) = serde_json::from_slice::<StreamChunk>(data) {
            if !chunk.choices.is_empty() {
                self.observed.chunks += 1;
            }
            if chunk.usage.is_some() {
                self.observed.usage = chunk.usage;
            }
            if self.observed.model.is_none() {
                self.observed.model = chunk.model;
            }
        }
    }

    pub fn finish(&mut self) -> Observed {
        if !self.line.is_empty() && !self.gave_up {
            let line = std::mem::take(&mut self.line);
            self.event_line(&line);
        }
        self.observed.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_answer_gives_its_usage_and_model_however_it_is_cut() {
        let body = br#"{"id":"x","model":"mistral-small-2506","choices":[{"message":{"content":"the \"usage\": {\"prompt_tokens\": 999}"}}],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}"#;
        for size in [1, 3, 17, body.len()] {
            let mut scanner = JsonScanner::default();
            for piece in body.chunks(size) {
                scanner.push(piece);
            }
            let observed = scanner.finish();
            assert_eq!(
                observed.usage,
                Some(Usage {
                    prompt_tokens: 12,
                    completion_tokens: 5,
                    total_tokens: 17,
                    ..Usage::default()
                })
            );
            assert_eq!(observed.model.as_deref(), Some("mistral-small-2506"));
        }
    }

    #[test]
    fn the_tier_and_the_cached_tokens_are_read() {
        let mut scanner = JsonScanner::default();
        scanner.push(br#"{"model":"m","usage":{"prompt_tokens":100,"completion_tokens":5,"total_tokens":105,"prompt_tokens_details":{"cached_tokens":60},"service_tier":"priority"}}"#);
        let usage = scanner.finish().usage.unwrap();
        assert_eq!(usage.service_tier, Some(ServedTier::Priority));
        assert_eq!(usage.cached_tokens(), 60);
        let mut scanner = JsonScanner::default();
        scanner.push(br#"{"usage":{"prompt_tokens":10,"completion_tokens":0,"total_tokens":10,"prompt_tokens_details":{"cached_tokens":99},"service_tier":"flex"}}"#);
        let usage = scanner.finish().usage.unwrap();
        assert_eq!(usage.service_tier, Some(ServedTier::Other));
        // Never more cached than the prompt.
        assert_eq!(usage.cached_tokens(), 10);
        let mut scanner = JsonScanner::default();
        scanner.push(br#"{"usage":{"prompt_tokens":1,"completion_tokens":0,"total_tokens":1,"service_tier":null}}"#);
        assert_eq!(scanner.finish().usage.unwrap().service_tier, None);
    }

    #[test]
    fn a_large_answer_keeps_only_its_ends() {
        let mut scanner = JsonScanner::default();
        scanner.push(br#"{"model":"mistral-embed","data":["#);
        for _ in 0..10_000 {
            scanner.push(b"0.123456789,");
        }
        scanner.push(br#"0],"usage":{"prompt_tokens":3,"completion_tokens":0,"total_tokens":3}}"#);
        assert!(scanner.tail.len() <= 2 * WINDOW && scanner.head.len() <= WINDOW);
        assert_eq!(scanner.finish().usage.unwrap().total_tokens, 3);
        assert_eq!(scanner.finish().model.as_deref(), Some("mistral-embed"));
    }

    #[test]
    fn a_stream_gives_the_usage_of_its_last_chunk() {
        let stream = "data: {\"id\":\"1\",\"model\":\"m-2506\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\r\n\r\n\
data: {\"id\":\"1\",\"model\":\"m-2506\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"}}]}\n\n\
data: {\"id\":\"1\",\"model\":\"m-2506\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":3,\"total_tokens\":7}}\n\n\
data: [DONE]\n\n";
        for size in [1, 5, stream.len()] {
            let mut scanner = StreamScanner::default();
            for piece in stream.as_bytes().chunks(size) {
                scanner.push(piece);
            }
            let observed = scanner.finish();
            assert!(scanner.done);
            assert_eq!(observed.chunks, 3);
            assert_eq!(observed.usage.unwrap().tokens(), 7);
            assert_eq!(observed.model.as_deref(), Some("m-2506"));
        }
    }

    #[test]
    fn an_endless_line_is_given_up_on_without_growing() {
        let mut scanner = StreamScanner::default();
        let junk = vec![b'x'; 64 * 1024];
        for _ in 0..40 {
            scanner.push(&junk);
        }
        assert!(scanner.line.capacity() <= 2 * MAX_EVENT_LINE);
        assert_eq!(scanner.finish().usage, None);
    }
}
