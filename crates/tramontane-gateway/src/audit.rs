//! One JSON line per request: who asked for what, what the gateway decided and why, what it
//! cost. Never a prompt, a completion or a key: a caller is named by the public id of their
//! gateway key and its holder.

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
        let Ok(mut line) = serde_json::to_string(record) else {
            return;
        };
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
