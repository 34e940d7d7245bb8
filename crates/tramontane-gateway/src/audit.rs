//! One JSON line per request: who asked for what, what the gateway decided and why, what it
//! cost. Never a prompt, a completion or a key: a caller is named by the public id of their
//! gateway key and its holder.

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::{LineWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

use crate::config::AuditTarget;

/// One request, as the audit log records it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AuditRecord {
    pub time: String,
    pub request_id: String,
    pub method: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_asked: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_resolved: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    pub stream: bool,
    /// `admitted`, `refused` or `failed`.
    pub decision: &'static str,
    pub reason: &'static str,
    /// The id of the counted limit that refused the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    /// Prompt tokens the upstream read from its prompt cache (billed at a tenth).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    /// The tier the request was charged at: `standard` or `priority`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<&'static str>,
    /// True when the answer proved nothing (no `usage`, or a model without a price) and the
    /// whole reservation was charged: the tokens and cost are the request's worst case.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub charged_reservation: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_micros: Option<u64>,
    /// Milliseconds the gateway spent before forwarding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added_ms: Option<f64>,
    /// Milliseconds from arrival to the last byte sent.
    pub duration_ms: f64,
}

/// Longest a text field of an audit line may be: a caller chooses the path and the model
/// name, and nobody may fill the log with one request.
pub const MAX_FIELD_BYTES: usize = 256;

/// `text` cut to at most `max` bytes on a character boundary, followed by a marker saying
/// how many bytes were left out; unchanged when it fits.
pub fn bounded(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…[{} bytes cut]", &text[..end], text.len() - end))
}

impl AuditRecord {
    /// The record with every text field at most [`MAX_FIELD_BYTES`].
    fn bounded(&self) -> Cow<'_, AuditRecord> {
        let fields = [&self.time, &self.request_id, &self.method, &self.path];
        let optional = [
            &self.key_id,
            &self.holder,
            &self.workspace,
            &self.model_asked,
            &self.model_resolved,
            &self.agent_id,
        ];
        let fits = fields.iter().all(|field| field.len() <= MAX_FIELD_BYTES)
            && optional.iter().all(|field| {
                field
                    .as_ref()
                    .is_none_or(|field| field.len() <= MAX_FIELD_BYTES)
            });
        if fits {
            return Cow::Borrowed(self);
        }
        let cut = |text: &String| bounded(text, MAX_FIELD_BYTES).into_owned();
        let cut_some = |text: &Option<String>| text.as_ref().map(cut);
        Cow::Owned(AuditRecord {
            time: cut(&self.time),
            request_id: cut(&self.request_id),
            method: cut(&self.method),
            path: cut(&self.path),
            key_id: cut_some(&self.key_id),
            holder: cut_some(&self.holder),
            workspace: cut_some(&self.workspace),
            model_asked: cut_some(&self.model_asked),
            model_resolved: cut_some(&self.model_resolved),
            agent_id: cut_some(&self.agent_id),
            ..self.clone()
        })
    }
}

enum Sink {
    Stdout,
    File {
        path: PathBuf,
        writer: Mutex<LineWriter<File>>,
    },
    Off,
}

pub struct AuditLog {
    sink: Sink,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot open the audit log `{}`: {source}", path.display())]
pub struct AuditOpenError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

impl AuditOpenError {
    pub fn help(&self) -> &'static str {
        "pass --audit with a path the gateway may create and append to, `stdout`, or `off`"
    }
}

impl AuditLog {
    pub fn open(target: &AuditTarget) -> Result<AuditLog, AuditOpenError> {
        let sink = match target {
            AuditTarget::Stdout => Sink::Stdout,
            AuditTarget::Off => Sink::Off,
            AuditTarget::File(path) => Sink::File {
                path: path.clone(),
                writer: Mutex::new(LineWriter::new(open_append(path)?)),
            },
        };
        Ok(AuditLog { sink })
    }

    pub fn write(&self, record: &AuditRecord) {
        let Ok(line) = serde_json::to_string(&*record.bounded()) else {
            return;
        };
        self.write_line(line);
    }

    /// An alert that could not be delivered: a line of its own kind (`"kind": "alert"`), in
    /// the same log as the requests whose use it reports.
    pub fn write_alert(&self, record: &crate::alerts::AlertAuditRecord) {
        if let Ok(line) = serde_json::to_string(record) {
            self.write_line(line);
        }
    }

    fn write_line(&self, mut line: String) {
        line.push('\n');
        match &self.sink {
            Sink::Off => {}
            Sink::Stdout => {
                let mut stdout = std::io::stdout().lock();
                let _ = stdout.write_all(line.as_bytes());
                let _ = stdout.flush();
            }
            Sink::File { path, writer } => {
                let written = writer
                    .lock()
                    .map_err(|_| std::io::Error::other("poisoned"))
                    .and_then(|mut writer| writer.write_all(line.as_bytes()));
                if let Err(error) = written {
                    tracing::error!(path = %path.display(), %error, "cannot write the audit log");
                }
            }
        }
    }
}

fn open_append(path: &Path) -> Result<File, AuditOpenError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| AuditOpenError {
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_field_is_bounded_with_a_marker() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&AuditTarget::File(path.clone())).unwrap();
        let long = "é".repeat(30_000);
        let record = AuditRecord {
            time: "2026-11-26T10:00:00Z".into(),
            request_id: "r1".into(),
            method: "GET".into(),
            path: format!("/v1/{long}"),
            model_asked: Some(long.clone()),
            model_resolved: Some(long.clone()),
            agent_id: Some(long.clone()),
            holder: Some(long.clone()),
            decision: "refused",
            reason: "missing_key",
            ..AuditRecord::default()
        };
        log.write(&record);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.len() < 6 * (MAX_FIELD_BYTES + 40),
            "{} bytes",
            text.len()
        );
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        let path = line["path"].as_str().unwrap();
        assert!(path.starts_with("/v1/é"), "{path}");
        assert!(path.ends_with("bytes cut]"), "{path}");
        assert!(line["model_asked"].as_str().unwrap().contains("bytes cut"));
        assert_eq!(line["request_id"], "r1");
    }

    #[test]
    fn a_record_is_one_json_line_without_empty_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&AuditTarget::File(path.clone())).unwrap();
        let record = AuditRecord {
            time: "2026-11-26T10:00:00Z".into(),
            request_id: "r1".into(),
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            key_id: Some("abcd".into()),
            decision: "refused",
            reason: "model_not_allowed",
            status: Some(403),
            ..AuditRecord::default()
        };
        log.write(&record);
        log.write(&record);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(line["reason"], "model_not_allowed");
        assert!(line.get("cost_micros").is_none());
        assert!(line.get("charged_reservation").is_none());
    }
}
