//! The runtime record: the effective access the last successful apply put in force, per
//! organization. The platform has no runtime settings to read back, so this local record is
//! what a plan compares the policy's runtime with, to show each caller whose limits change.
//!
//! Like the key journal it is local state beside the audit log; without it a plan shows no
//! runtime change, and the next successful apply writes it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::runtime::Runtime;

/// The largest record read: far above the effective access of any real organization.
const MAX_RECORD_BYTES: u64 = 64 * 1024 * 1024;

/// This record's format; a record of another is not read.
const FORMAT: u32 = 1;

#[derive(Default, Serialize, Deserialize)]
struct Record {
    format: u32,
    /// By organization, as the apply lock names it.
    organizations: BTreeMap<String, Runtime>,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeRecordError {
    #[error("cannot {action} the runtime record {}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the runtime record {} is not one ({problem})", path.display())]
    Corrupt { path: PathBuf, problem: String },
}

impl RuntimeRecordError {
    pub fn help(&self) -> &'static str {
        match self {
            RuntimeRecordError::Io { .. } => {
                "check the permissions of the state directory (where the key journal is)"
            }
            RuntimeRecordError::Corrupt { .. } => {
                "move the file away: the next plan shows no runtime change, and the next successful apply writes it again"
            }
        }
    }
}

/// The record at `path`.
pub struct RuntimeRecord {
    path: PathBuf,
}

impl RuntimeRecord {
    pub fn at(path: impl Into<PathBuf>) -> RuntimeRecord {
        RuntimeRecord { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the last successful apply against `org` put in force; `None` before the first.
    pub fn read(&self, org: &str) -> Result<Option<Runtime>, RuntimeRecordError> {
        Ok(self.load()?.organizations.remove(org))
    }

    /// Records `runtime` as in force for `org`, replacing the file whole, so a reader never
    /// sees half of it.
    pub fn write(&self, org: &str, runtime: &Runtime) -> Result<(), RuntimeRecordError> {
        let mut record = self.load()?;
        record.format = FORMAT;
        record.organizations.insert(org.to_owned(), runtime.clone());
        let io = |action| {
            move |source| RuntimeRecordError::Io {
                path: self.path.clone(),
                action,
                source,
            }
        };
        if let Some(dir) = self.path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io("create the directory of"))?;
        }
        // Plain data: serializing cannot fail.
        let text = serde_json::to_vec_pretty(&record).unwrap_or_default();
        let partial = self.path.with_extension("json.partial");
        std::fs::write(&partial, text).map_err(io("write"))?;
        std::fs::rename(&partial, &self.path).map_err(io("replace"))
    }

    fn load(&self) -> Result<Record, RuntimeRecordError> {
        let io = |action| {
            move |source| RuntimeRecordError::Io {
                path: self.path.clone(),
                action,
                source,
            }
        };
        let size = match std::fs::metadata(&self.path) {
            Ok(metadata) => metadata.len(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Record::default());
            }
            Err(error) => return Err(io("read")(error)),
        };
        let corrupt = |problem: String| RuntimeRecordError::Corrupt {
            path: self.path.clone(),
            problem,
        };
        if size > MAX_RECORD_BYTES {
            return Err(corrupt(format!(
                "larger than {} MiB",
                MAX_RECORD_BYTES / (1024 * 1024)
            )));
        }
        let text = std::fs::read(&self.path).map_err(io("read"))?;
        let record: Record =
            serde_json::from_slice(&text).map_err(|error| corrupt(error.to_string()))?;
        if record.format != FORMAT {
            return Err(corrupt(format!(
                "format {}, this tramontane reads {FORMAT}",
                record.format
            )));
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DesiredOrg;
    use crate::policy::catalog::Catalog;

    #[test]
    fn a_record_keeps_each_organization_apart_and_refuses_what_is_not_one() {
        let dir = tempfile::tempdir().unwrap();
        let record = RuntimeRecord::at(dir.path().join("state/runtime.json"));
        assert_eq!(record.read("sandbox a").unwrap(), None);
        let desired: DesiredOrg = serde_json::from_value(serde_json::json!({
            "workspaces": {"dev": {"rpm": 60}}
        }))
        .unwrap();
        let runtime = Runtime::of(&desired, Catalog::bundled());
        record.write("sandbox a", &runtime).unwrap();
        record.write("sandbox b", &Runtime::default()).unwrap();
        assert_eq!(record.read("sandbox a").unwrap(), Some(runtime));
        assert_eq!(record.read("sandbox b").unwrap(), Some(Runtime::default()));
        assert_eq!(record.read("mistral x").unwrap(), None);

        std::fs::write(record.path(), "{\"format\": 7, \"organizations\": {}}").unwrap();
        let error = record.read("sandbox a").unwrap_err();
        assert!(error.to_string().contains("format 7"), "{error}");
        std::fs::write(record.path(), "not json").unwrap();
        assert!(matches!(
            record.read("sandbox a"),
            Err(RuntimeRecordError::Corrupt { .. })
        ));
    }
}
