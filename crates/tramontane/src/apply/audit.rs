//! The audit log: one JSON line per change attempted, appended the moment it ends, so a
//! crash mid-apply keeps the record of what was done.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

use super::{ChangeReport, Status};
use crate::plan::{Change, Plan};

/// One line of the log. Never a secret: errors name calls and statuses, sinks show their
/// path or program only.
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    pub time: String,
    pub actor: &'a str,
    pub org: &'a str,
    pub commit: Option<&'a str>,
    pub address: &'a str,
    pub action: &'a str,
    pub result: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_delivered_to: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub request_ids: &'a [String],
    /// Why, for a change a person made outside a plan (`tramontane revoke --reason`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    /// The live key's id, for a change to one key of several that share an address
    /// (`tramontane revoke` of duplicates): the address alone does not say which went.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<&'a str>,
}

/// Opens `path` for appending, readable by its owner alone: the log names every key, sink
/// and request of the organization. Missing parent directories are created 0700, and a log
/// left readable by others is narrowed to 0600.
pub(crate) fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path)?;
        if file.metadata()?.permissions().mode() & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(file)
    }
    #[cfg(not(unix))]
    options.open(path)
}

#[derive(Debug, thiserror::Error)]
#[error("cannot append to the audit log {}: {source}", path.display())]
pub struct AuditError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl AuditError {
    /// What to do, for the line under the error.
    pub fn help(&self) -> Option<&'static str> {
        Some(
            "the changes were made; fix the log's path or permissions so the next apply can record",
        )
    }
}

/// A change made outside a plan, for [`AuditLog::record_outside_plan`].
pub struct OutsidePlan<'a> {
    pub org: &'a str,
    pub address: &'a str,
    pub action: &'a str,
    /// `ok` or `failed`, as for a planned change.
    pub result: &'a str,
    pub error: Option<String>,
    pub reason: Option<&'a str>,
    /// The live key acted on.
    pub key_id: Option<&'a str>,
}

pub struct AuditLog {
    path: PathBuf,
    file: Mutex<std::fs::File>,
    actor: String,
    /// The first write that failed; the apply goes on, and the command reports it.
    failure: Mutex<Option<std::io::Error>>,
}

impl AuditLog {
    /// Opens (creating) the log at `path` for appending. `actor` is who applies.
    pub fn open(path: &Path, actor: String) -> Result<AuditLog, AuditError> {
        let error = |source| AuditError {
            path: path.to_owned(),
            source,
        };
        let file = open_private(path).map_err(error)?;
        Ok(AuditLog {
            path: path.to_owned(),
            file: Mutex::new(file),
            actor,
            failure: Mutex::new(None),
        })
    }

    /// The person or CI identity applying: `GITHUB_ACTOR` in GitHub Actions, else the
    /// local user as the environment names it, else as the operating system knows it (a
    /// container or a cron job often has no `USER`).
    pub fn actor_from_env() -> String {
        ["GITHUB_ACTOR", "USER", "USERNAME"]
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
            .or_else(os_user)
            .unwrap_or_else(|| "unknown".into())
    }

    pub fn record(&self, plan: &Plan, change: &Change, report: &ChangeReport) {
        let error = match &report.status {
            Status::Failed(error) => Some(error.to_string()),
            _ => None,
        };
        let entry = Entry {
            time: crate::plan::timestamp(jiff::Timestamp::now()),
            actor: &self.actor,
            org: &plan.live.org,
            commit: plan.policy.commit.as_deref(),
            address: &change.address,
            action: change.action.as_str(),
            result: report.status.as_str(),
            error,
            secret_delivered_to: report.delivered_to.as_deref(),
            request_ids: &report.request_ids,
            reason: None,
            key_id: None,
        };
        self.append(&entry);
    }

    /// Records a change made outside a plan, such as `tramontane revoke`: no commit, the
    /// person's reason instead.
    pub fn record_outside_plan(&self, revoked: &OutsidePlan<'_>) {
        let entry = Entry {
            time: crate::plan::timestamp(jiff::Timestamp::now()),
            actor: &self.actor,
            org: revoked.org,
            commit: None,
            address: revoked.address,
            action: revoked.action,
            result: revoked.result,
            error: revoked.error.clone(),
            secret_delivered_to: None,
            request_ids: &[],
            reason: revoked.reason,
            key_id: revoked.key_id,
        };
        self.append(&entry);
    }

    fn append(&self, entry: &Entry<'_>) {
        // Serializing strings and slices cannot fail.
        let mut line = serde_json::to_string(entry).unwrap_or_default();
        line.push('\n');
        let written = self
            .file
            .lock()
            .map_err(|_| std::io::Error::other("the audit log's lock was poisoned"))
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(error) = written {
            let mut failure = self
                .failure
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            failure.get_or_insert(error);
        }
    }

    /// Whether every line reached the file.
    pub fn finish(self) -> Result<(), AuditError> {
        let failure = self
            .failure
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match failure {
            Some(source) => Err(AuditError {
                path: self.path,
                source,
            }),
            None => Ok(()),
        }
    }
}

/// The login name of the user this process runs as, from the password database; `uid N`
/// when the user has no entry there (an arbitrary uid in a container).
#[cfg(unix)]
fn os_user() -> Option<String> {
    // SAFETY: geteuid cannot fail and touches no memory.
    let uid = unsafe { libc::geteuid() };
    let mut buffer: Vec<libc::c_char> = vec![0; 1024];
    loop {
        // SAFETY: `entry` and `found` are written by getpwuid_r only; `buffer` outlives
        // every use of the strings it points `entry` into, and its length is passed along.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let status = unsafe {
            libc::getpwuid_r(
                uid,
                &mut entry,
                buffer.as_mut_ptr(),
                buffer.len(),
                &mut found,
            )
        };
        // A name longer than the buffer: grow it, within reason.
        if status == libc::ERANGE && buffer.len() < 1 << 20 {
            buffer.resize(buffer.len() * 4, 0);
            continue;
        }
        if status != 0 || found.is_null() || entry.pw_name.is_null() {
            return Some(format!("uid {uid}"));
        }
        // SAFETY: pw_name is a NUL-terminated string inside `buffer`, which is still alive.
        let name = unsafe { std::ffi::CStr::from_ptr(entry.pw_name) }
            .to_string_lossy()
            .into_owned();
        return Some(if name.is_empty() {
            format!("uid {uid}")
        } else {
            name
        });
    }
}

#[cfg(not(unix))]
fn os_user() -> Option<String> {
    None
}
