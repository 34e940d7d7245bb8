//! The key journal: before each key is created, apply records the intent ("creating key N
//! in workspace W for address A") and forces it to disk; once the key's secret is in its
//! sink, it records the delivery. A run that died in between (`kill -9`, a lost runner, a
//! power cut) leaves an intent without its delivery, and the next plan finds the key it
//! made: one whose secret reached nobody, which is replaced rather than reported in sync.
//!
//! The journal is local state, beside the audit log: a CI runner that is thrown away after
//! each run must keep it (a cache or an artifact) for this to reach across runs.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::model::LiveOrg;

/// The largest journal read: it holds only intents not yet settled, so anything near this
/// is not a journal.
const MAX_JOURNAL_BYTES: u64 = 16 * 1024 * 1024;

/// One line of the journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Event {
    /// Written before the create is sent.
    Creating {
        intent: String,
        time: String,
        /// Which organization, as the apply lock names it.
        org: String,
        address: String,
        workspace: String,
        name: String,
        /// The keys of this name in this workspace before the create: a key not among
        /// them is the one the create made, should its answer never have arrived.
        known: Vec<String>,
    },
    /// The create answered with this key.
    Created { intent: String, key: String },
    /// The key's secret is in its sink.
    Delivered { intent: String, key: String },
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot {action} the key journal {}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the key journal {}:{line} is not a journal line ({problem}); it records keys whose secret may be undelivered, so it is not skipped: repair or move the file",
        path.display()
    )]
    Corrupt {
        path: PathBuf,
        line: usize,
        problem: String,
    },
    #[error(
        "the key journal {} is larger than {} MiB; it holds only unsettled keys, so this is not a journal: move it away",
        path.display(),
        MAX_JOURNAL_BYTES / (1024 * 1024)
    )]
    TooLarge { path: PathBuf },
}

impl JournalError {
    /// What to do, for the line under the error; `None` where the message already says.
    pub fn help(&self) -> Option<&'static str> {
        match self {
            JournalError::Io { .. } => {
                Some("check the journal's path (--journal) and that you may write there")
            }
            JournalError::Corrupt { .. } | JournalError::TooLarge { .. } => None,
        }
    }
}

/// Reads the journal's events; a missing file has none. A last line cut short is what a
/// crash while writing an intent leaves: that create was never sent, so the line is dropped.
fn read_events(path: &Path) -> Result<Vec<Event>, JournalError> {
    let io = |action, source| JournalError::Io {
        path: path.to_owned(),
        action,
        source,
    };
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(io("open", error)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_JOURNAL_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| io("read", error))?;
    if bytes.len() as u64 > MAX_JOURNAL_BYTES {
        return Err(JournalError::TooLarge {
            path: path.to_owned(),
        });
    }
    let text = String::from_utf8_lossy(&bytes);
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut events = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Event>(line) {
            Ok(event) => events.push(event),
            Err(_) if index + 1 == lines.len() && !complete => {}
            Err(error) => {
                return Err(JournalError::Corrupt {
                    path: path.to_owned(),
                    line: index + 1,
                    problem: error.to_string(),
                });
            }
        }
    }
    Ok(events)
}

/// An intent not followed by a delivery, with the key its create made where the answer
/// said.
struct Unsettled {
    creating: Event,
    key: Option<String>,
}

fn unsettled(events: &[Event]) -> (Vec<Unsettled>, BTreeSet<String>) {
    let mut intents: BTreeMap<&str, Unsettled> = BTreeMap::new();
    let mut order = Vec::new();
    let mut delivered_keys = BTreeSet::new();
    let mut delivered = BTreeSet::new();
    for event in events {
        match event {
            Event::Creating { intent, .. } => {
                order.push(intent.as_str());
                intents.insert(
                    intent,
                    Unsettled {
                        creating: event.clone(),
                        key: None,
                    },
                );
            }
            Event::Created { intent, key } => {
                if let Some(unsettled) = intents.get_mut(intent.as_str()) {
                    unsettled.key = Some(key.clone());
                }
            }
            Event::Delivered { intent, key } => {
                delivered.insert(intent.as_str());
                delivered_keys.insert(key.clone());
            }
        }
    }
    let pending = order
        .into_iter()
        .filter(|intent| !delivered.contains(intent))
        .filter_map(|intent| intents.remove(intent))
        .collect();
    (pending, delivered_keys)
}

/// The live keys an unsettled intent may have made.
fn made_by<'a>(
    unsettled: &Unsettled,
    delivered: &BTreeSet<String>,
    live: &'a LiveOrg,
) -> Vec<&'a str> {
    let Event::Creating {
        workspace,
        name,
        known,
        ..
    } = &unsettled.creating
    else {
        return Vec::new();
    };
    live.keys
        .iter()
        .filter(|key| match &unsettled.key {
            Some(id) => key.id == *id,
            // The answer never came: any key of this name made since, whose delivery no
            // later intent recorded.
            None => {
                key.workspace.as_deref() == Some(workspace.as_str())
                    && key.name.as_deref() == Some(name.as_str())
                    && !known.contains(&key.id)
                    && !delivered.contains(&key.id)
            }
        })
        .map(|key| key.id.as_str())
        .collect()
}

fn org_of(event: &Event) -> Option<&str> {
    match event {
        Event::Creating { org, .. } => Some(org),
        _ => None,
    }
}

/// The ids of live keys of `org` that an apply created and whose secret it never
/// delivered, by the journal at `path`.
pub fn undelivered(
    path: &Path,
    org: &str,
    live: &LiveOrg,
) -> Result<BTreeSet<String>, JournalError> {
    let events = read_events(path)?;
    let (pending, delivered) = unsettled(&events);
    Ok(pending
        .iter()
        .filter(|unsettled| org_of(&unsettled.creating) == Some(org))
        .flat_map(|unsettled| made_by(unsettled, &delivered, live))
        .map(str::to_owned)
        .collect())
}

/// The journal, open for one apply (which holds the organization's lock).
pub struct Journal {
    path: PathBuf,
    org: String,
    file: Arc<std::fs::File>,
    /// The lines written, counted, and how many of them are known to be on disk. Lines are
    /// written one writer at a time; the flush that follows runs on a blocking thread, and
    /// one flush covers every line written before it began, so the concurrent changes of a
    /// wave share flushes instead of queueing for one each.
    written: Mutex<u64>,
    flushed: Arc<Mutex<u64>>,
}

/// A recorded intent to create one key.
pub struct Intent {
    id: String,
}

impl Journal {
    /// Opens the journal at `path` for an apply against `org`, whose live state is `live`.
    /// Settled intents, and this organization's intents whose keys are gone, are dropped
    /// first, so the journal stays as small as what is still in doubt.
    pub fn open(path: &Path, org: &str, live: &LiveOrg) -> Result<Journal, JournalError> {
        let io = |action, source| JournalError::Io {
            path: path.to_owned(),
            action,
            source,
        };
        let events = read_events(path)?;
        let (pending, delivered) = unsettled(&events);
        let mut kept = String::new();
        for unsettled in &pending {
            let ours = org_of(&unsettled.creating) == Some(org);
            if ours && made_by(unsettled, &delivered, live).is_empty() {
                continue;
            }
            let Event::Creating { intent, .. } = &unsettled.creating else {
                continue;
            };
            kept.push_str(&line(&unsettled.creating));
            if let Some(key) = &unsettled.key {
                kept.push_str(&line(&Event::Created {
                    intent: intent.clone(),
                    key: key.clone(),
                }));
            }
        }
        let file = if events.is_empty() {
            super::audit::open_private(path).map_err(|error| io("create", error))?
        } else {
            rewrite(path, &kept).map_err(|error| io("rewrite", error))?
        };
        Ok(Journal {
            path: path.to_owned(),
            org: org.to_owned(),
            file: Arc::new(file),
            written: Mutex::new(0),
            flushed: Arc::new(Mutex::new(0)),
        })
    }

    /// Appends one line; with `durable`, returns once it is on disk.
    async fn append(&self, event: &Event, durable: bool) -> Result<(), JournalError> {
        let error = |source| JournalError::Io {
            path: self.path.clone(),
            action: "write to",
            source,
        };
        let line_number = {
            let mut written = self
                .written
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            (&*self.file)
                .write_all(line(event).as_bytes())
                .map_err(error)?;
            *written += 1;
            *written
        };
        if !durable {
            return Ok(());
        }
        let (file, flushed) = (self.file.clone(), self.flushed.clone());
        let written_so_far = self.written_so_far();
        tokio::task::spawn_blocking(move || {
            let mut flushed = flushed
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            // Another flush, begun after this line was written, covered it.
            if *flushed >= line_number {
                return Ok(());
            }
            file.sync_data()?;
            *flushed = written_so_far.max(line_number);
            Ok(())
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|flushed| flushed)
        .map_err(error)
    }

    fn written_so_far(&self) -> u64 {
        *self
            .written
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records, on disk, that a key is about to be created. Nothing is created unless this
    /// succeeds.
    pub async fn creating(
        &self,
        address: &str,
        workspace: &str,
        name: &str,
        known: &[String],
    ) -> Result<Intent, JournalError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.append(
            &Event::Creating {
                intent: id.clone(),
                time: crate::plan::timestamp(jiff::Timestamp::now()),
                org: self.org.clone(),
                address: address.to_owned(),
                workspace: workspace.to_owned(),
                name: name.to_owned(),
                known: known.to_vec(),
            },
            true,
        )
        .await?;
        Ok(Intent { id })
    }

    /// Records which key the create made. Not forced to disk: lost, the intent still
    /// singles the key out by its name and the keys that were there before.
    pub async fn created(&self, intent: &Intent, key: &str) -> Result<(), JournalError> {
        self.append(
            &Event::Created {
                intent: intent.id.clone(),
                key: key.to_owned(),
            },
            false,
        )
        .await
    }

    /// Records that the key's secret is in its sink.
    pub async fn delivered(&self, intent: &Intent, key: &str) -> Result<(), JournalError> {
        self.append(
            &Event::Delivered {
                intent: intent.id.clone(),
                key: key.to_owned(),
            },
            true,
        )
        .await
    }
}

fn line(event: &Event) -> String {
    // Serializing strings and vectors cannot fail.
    let mut line = serde_json::to_string(event).unwrap_or_default();
    line.push('\n');
    line
}

/// Replaces the journal with `text` atomically (a crash leaves the old one or the new one),
/// and opens it for appending.
fn rewrite(path: &Path, text: &str) -> std::io::Result<std::fs::File> {
    let temporary = path.with_extension(format!("{}.tmp", uuid::Uuid::new_v4().simple()));
    let written = (|| {
        let mut file = super::audit::open_private(&temporary)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(error);
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(directory) = std::fs::File::open(parent)
    {
        let _ = directory.sync_all();
    }
    super::audit::open_private(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LiveKey;

    fn key(id: &str, name: &str) -> LiveKey {
        LiveKey {
            id: id.into(),
            name: Some(name.into()),
            workspace: Some("dev".into()),
            created_by: None,
            created_at: Some("2026-06-01T12:00:00Z".into()),
            expires: None,
            last_used: None,
        }
    }

    fn live(keys: &[(&str, &str)]) -> LiveOrg {
        LiveOrg {
            keys: keys.iter().map(|(id, name)| key(id, name)).collect(),
            ..LiveOrg::default()
        }
    }

    #[tokio::test]
    async fn an_intent_without_its_delivery_marks_the_key_it_made() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/journal.jsonl");
        let before = live(&[("old", "ci")]);
        let journal = Journal::open(&path, "org-a", &before).unwrap();
        // Delivered: settled.
        let first = journal
            .creating("workspace.dev.key.ci", "dev", "ci", &["old".into()])
            .await
            .unwrap();
        journal.created(&first, "k1").await.unwrap();
        journal.delivered(&first, "k1").await.unwrap();
        // Created, never delivered.
        let second = journal
            .creating("workspace.dev.key.bot", "dev", "bot", &[])
            .await
            .unwrap();
        journal.created(&second, "k2").await.unwrap();
        // Sent, its answer never read.
        journal
            .creating("workspace.dev.key.lost", "dev", "lost", &["l0".into()])
            .await
            .unwrap();
        drop(journal);

        let now = live(&[
            ("old", "ci"),
            ("k1", "ci"),
            ("k2", "bot"),
            ("l0", "lost"),
            ("l1", "lost"),
        ]);
        let found = undelivered(&path, "org-a", &now).unwrap();
        assert_eq!(found, BTreeSet::from(["k2".into(), "l1".into()]));
        assert!(undelivered(&path, "org-b", &now).unwrap().is_empty());

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        // Once those keys are gone, the next apply drops their intents.
        let after = live(&[("old", "ci"), ("k1", "ci"), ("l0", "lost")]);
        drop(Journal::open(&path, "org-a", &after).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    }

    #[test]
    fn a_torn_last_line_is_an_unsent_create_and_a_torn_middle_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        std::fs::write(&path, "{\"event\":\"creating\",\"intent\":\"x\",\"ti").unwrap();
        assert!(
            undelivered(&path, "org", &LiveOrg::default())
                .unwrap()
                .is_empty()
        );
        std::fs::write(&path, "{\"event\":\"creat\n{}\n").unwrap();
        let error = undelivered(&path, "org", &LiveOrg::default()).unwrap_err();
        assert!(error.to_string().contains("journal.jsonl:1"), "{error}");
    }
}
