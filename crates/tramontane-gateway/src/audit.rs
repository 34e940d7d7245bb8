//! One JSON line per request: who asked for what, what the gateway decided and why, what it
//! cost. Never a prompt, a completion, a key or a token: a caller is named by the public id
//! of their gateway key and its holder, or by its workload, issuer, the token's subject and
//! its `jti`.
//!
//! Lines are written off the request's path: a request queues its record ([`AuditLog`]) and
//! one task ([`AuditWriter`]) serializes and writes them in batches. A full queue drops the
//! line and counts it rather than make a request wait; at shutdown the writer empties the
//! queue before the process ends.

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use prometheus_client::metrics::counter::Counter;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

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
    /// The workload a verified token was (`workloads:`), its issuer (`issuers:`), the
    /// token's `sub` and its `jti`: never the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
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
    /// The name the caller's counted limits are metered under (see
    /// [`crate::access::Caller::meter_name`]); `None` before a caller is known.
    pub fn meter_name(&self) -> Option<Cow<'_, str>> {
        match (&self.key_id, &self.workload) {
            (Some(id), _) => Some(Cow::Borrowed(id)),
            (None, Some(name)) => Some(Cow::Owned(crate::access::workload_meter_name(name))),
            (None, None) => None,
        }
    }

    /// The record with every text field at most [`MAX_FIELD_BYTES`].
    fn bounded(&self) -> Cow<'_, AuditRecord> {
        let fields = [&self.time, &self.request_id, &self.method, &self.path];
        let optional = [
            &self.key_id,
            &self.holder,
            &self.workload,
            &self.issuer,
            &self.subject,
            &self.token_id,
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
            workload: cut_some(&self.workload),
            issuer: cut_some(&self.issuer),
            subject: cut_some(&self.subject),
            token_id: cut_some(&self.token_id),
            workspace: cut_some(&self.workspace),
            model_asked: cut_some(&self.model_asked),
            model_resolved: cut_some(&self.model_resolved),
            agent_id: cut_some(&self.agent_id),
            ..self.clone()
        })
    }
}

/// Lines waiting for the writer at most: past this a line is dropped and counted
/// (`tramontane_gateway_audit_lines_dropped_total`), never waited for by a request.
pub const QUEUE: usize = 16 * 1024;
/// Most lines one write to the sink takes.
const BATCH: usize = 512;
/// How long the writer waits after a write that was not a full batch before it looks for
/// lines again: at most this long before a line is written, and at most one wake-up of the
/// writer per this long whatever the rate. The queue holds far more than comes meanwhile.
const LINGER: std::time::Duration = std::time::Duration::from_millis(5);

/// One line on its way to the writer: serialized there, off the request's path.
enum Line {
    Request(Box<AuditRecord>),
    Alert(Box<crate::alerts::AlertAuditRecord>),
}

enum Sink {
    Stdout,
    File { path: PathBuf, file: File },
    Off,
}

/// The request path's end of the audit log: a bounded queue to [`AuditWriter`].
pub struct AuditLog {
    /// `None` when the log is off: nothing is queued.
    queue: Option<mpsc::Sender<Line>>,
    dropped: Counter,
}

/// The task's end of the audit log: takes the queued lines in batches, each batch one write
/// to the sink, until the log is closed; then writes what is left.
pub struct AuditWriter {
    lines: mpsc::Receiver<Line>,
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
    /// The log and its writer, which the caller runs ([`AuditWriter::run`]); `dropped`
    /// counts lines a full queue turned away.
    pub fn open(
        target: &AuditTarget,
        dropped: Counter,
    ) -> Result<(AuditLog, AuditWriter), AuditOpenError> {
        AuditLog::with_queue(target, dropped, QUEUE)
    }

    fn with_queue(
        target: &AuditTarget,
        dropped: Counter,
        queue: usize,
    ) -> Result<(AuditLog, AuditWriter), AuditOpenError> {
        let sink = match target {
            AuditTarget::Stdout => Sink::Stdout,
            AuditTarget::Off => Sink::Off,
            AuditTarget::File(path) => Sink::File {
                path: path.clone(),
                file: open_append(path)?,
            },
        };
        let (sender, lines) = mpsc::channel(queue);
        let queue = (!matches!(sink, Sink::Off)).then_some(sender);
        Ok((AuditLog { queue, dropped }, AuditWriter { lines, sink }))
    }

    pub fn write(&self, record: AuditRecord) {
        self.enqueue(Line::Request(Box::new(record)));
    }

    /// An alert that could not be delivered: a line of its own kind (`"kind": "alert"`), in
    /// the same log as the requests whose use it reports.
    pub fn write_alert(&self, record: crate::alerts::AlertAuditRecord) {
        self.enqueue(Line::Alert(Box::new(record)));
    }

    fn enqueue(&self, line: Line) {
        let Some(queue) = &self.queue else {
            return;
        };
        // A full queue (or a writer gone at shutdown) drops the line: a request never
        // waits on the audit log's disk.
        if queue.try_send(line).is_err() {
            self.dropped.inc();
        }
    }
}

impl AuditWriter {
    /// Writes lines as they come, in batches, until `stop`; then closes the queue, writes
    /// every line already in it, and returns.
    pub async fn run(mut self, stop: CancellationToken) {
        let mut batch = Vec::with_capacity(BATCH);
        // Reused for every batch: a line is serialized into it, not into a string of its own.
        let mut buffer = Vec::with_capacity(64 * 1024);
        loop {
            let received = tokio::select! {
                received = self.lines.recv_many(&mut batch, BATCH) => received,
                () = stop.cancelled() => break,
            };
            if received == 0 {
                return;
            }
            self.write(&mut batch, &mut buffer);
            // Lines that come meanwhile wait for this pause and go out in one write, instead
            // of waking this task (another thread than the requests') once each.
            if received < BATCH {
                tokio::select! {
                    () = tokio::time::sleep(LINGER) => {}
                    () = stop.cancelled() => break,
                }
            }
        }
        self.lines.close();
        while self.lines.recv_many(&mut batch, BATCH).await > 0 {
            self.write(&mut batch, &mut buffer);
        }
    }

    fn write(&mut self, batch: &mut Vec<Line>, buffer: &mut Vec<u8>) {
        buffer.clear();
        for line in batch.drain(..) {
            let written = match line {
                Line::Request(record) => serde_json::to_writer(&mut *buffer, &*record.bounded()),
                Line::Alert(record) => serde_json::to_writer(&mut *buffer, &*record),
            };
            if written.is_ok() {
                buffer.push(b'\n');
            }
        }
        match &mut self.sink {
            Sink::Off => {}
            Sink::Stdout => {
                let mut stdout = std::io::stdout().lock();
                let _ = stdout.write_all(buffer).and_then(|()| stdout.flush());
            }
            Sink::File { path, file } => {
                if let Err(error) = file.write_all(buffer) {
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

    /// What the writer puts in a file for `records` written with a queue of `queue`, once
    /// shut down; and how many lines were dropped.
    async fn written(records: &[AuditRecord], queue: usize) -> (String, u64) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let dropped = Counter::default();
        let (log, writer) =
            AuditLog::with_queue(&AuditTarget::File(path.clone()), dropped.clone(), queue).unwrap();
        // No writer runs yet: every write returns at once, queued or dropped.
        for record in records {
            log.write(record.clone());
        }
        let stop = CancellationToken::new();
        stop.cancel();
        writer.run(stop).await;
        (std::fs::read_to_string(&path).unwrap(), dropped.get())
    }

    fn record(id: usize) -> AuditRecord {
        AuditRecord {
            time: "2026-11-26T10:00:00Z".into(),
            request_id: format!("r{id}"),
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            decision: "admitted",
            reason: "completed",
            ..AuditRecord::default()
        }
    }

    #[tokio::test]
    async fn a_full_queue_drops_lines_and_counts_them_without_waiting() {
        let records: Vec<AuditRecord> = (0..5).map(record).collect();
        let (text, dropped) = written(&records, 2).await;
        assert_eq!(dropped, 3);
        let ids: Vec<String> = text
            .lines()
            .map(|line| {
                serde_json::from_str::<serde_json::Value>(line).unwrap()["request_id"].to_string()
            })
            .collect();
        assert_eq!(ids, [r#""r0""#, r#""r1""#]);
    }

    #[tokio::test]
    async fn shutdown_writes_every_queued_line_in_order() {
        let records: Vec<AuditRecord> = (0..2000).map(record).collect();
        let (text, dropped) = written(&records, QUEUE).await;
        assert_eq!(dropped, 0);
        assert_eq!(text.lines().count(), 2000);
        assert!(
            text.lines()
                .last()
                .unwrap()
                .contains(r#""request_id":"r1999""#)
        );
    }

    #[tokio::test]
    async fn a_running_writer_writes_lines_as_they_come() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let (log, writer) =
            AuditLog::open(&AuditTarget::File(path.clone()), Counter::default()).unwrap();
        let stop = CancellationToken::new();
        let running = tokio::spawn(writer.run(stop.clone()));
        log.write(record(1));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::fs::read_to_string(&path).unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "never written");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        stop.cancel();
        running.await.unwrap();
    }

    #[tokio::test]
    async fn every_text_field_is_bounded_with_a_marker() {
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
        let (text, _) = written(&[record], QUEUE).await;
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

    #[tokio::test]
    async fn a_record_is_one_json_line_without_empty_fields() {
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
        let (text, _) = written(&[record.clone(), record], QUEUE).await;
        assert_eq!(text.lines().count(), 2);
        let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(line["reason"], "model_not_allowed");
        assert!(line.get("cost_micros").is_none());
        assert!(line.get("charged_reservation").is_none());
    }
}
