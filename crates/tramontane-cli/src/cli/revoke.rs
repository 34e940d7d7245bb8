//! `tramontane revoke ADDRESS`: deletes a key now (a leaked one cannot wait for a pull
//! request), records it in the apply audit log, and says which policy line would bring the
//! key back on the next apply.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use super::org::{LockArgs, OrgArgs, runtime};
use super::{ColorChoice, CommandError, ExitStatus, PoliciesArg};
use tramontane::apply::audit::{AuditLog, OutsidePlan};
use tramontane::apply::lock;
use tramontane::clock::day_of;
use tramontane::hygiene::{PolicyLocator, key_address};
use tramontane::model::LiveKey;
use tramontane::provider::{Operation, Provider};
use tramontane::render::untrusted;
use tramontane::repository::RepositoryRoot;

#[derive(Debug, clap::Args)]
#[command(mut_arg("policies", |arg| arg.help(
    "Directory of policy files, to find the key's entry"
)))]
pub struct Args {
    /// The key: `workspace.WORKSPACE.key.NAME` (as `plan` and `audit` show it), by the live
    /// workspace and key names for a key no policy declares.
    pub address: String,

    /// Why the key is revoked, kept in the audit log.
    #[arg(long)]
    pub reason: Option<String>,

    /// Revoke without asking. Needed when not on a terminal.
    #[arg(long)]
    pub yes: bool,

    #[command(flatten)]
    pub org: OrgArgs,

    #[command(flatten)]
    pub policies: PoliciesArg,

    /// Where the revocation is appended, with apply's changes. Relative to the policy
    /// repository.
    #[arg(
        long,
        default_value = ".tramontane/audit.jsonl",
        env = "TRAMONTANE_AUDIT_LOG"
    )]
    pub audit_log: PathBuf,

    #[command(flatten)]
    pub lock: LockArgs,

    #[command(flatten)]
    pub clock: super::ClockArgs,
}

/// The organization's apply lock, when it has one (`--org` names it).
fn take_lock(args: &Args, root: &RepositoryRoot) -> Result<Option<lock::OrgLock>, CommandError> {
    let taken = args.lock.take(&args.org, root, "an apply");
    match taken {
        Ok(taken) => Ok(taken),
        Err(lock::LockError::Busy { org, path, holder }) => Err(CommandError::Usage {
            message: format!(
                "cannot revoke now: an apply against {org} holds its lock ({}){}; nothing was deleted",
                path.display(),
                holder.map(|h| format!(": {h}")).unwrap_or_default()
            ),
            help: Some(
                "wait for the apply to finish and run revoke again, or pass --lock-timeout 5m to wait for it".into(),
            ),
        }),
        Err(other) => Err(other.into()),
    }
}

/// Whether `address` has the shape of a key's address.
fn is_key_address(address: &str) -> bool {
    match address.strip_prefix("workspace.") {
        Some(rest) => rest
            .split_once(".key.")
            .is_some_and(|(workspace, name)| !workspace.is_empty() && !name.is_empty()),
        None => address
            .strip_prefix("key.")
            .is_some_and(|name| !name.is_empty()),
    }
}

pub fn run(args: &Args, color: ColorChoice) -> Result<ExitStatus, CommandError> {
    let address = args.address.trim();
    if !is_key_address(address) {
        return Err(CommandError::Usage {
            message: format!(
                "`{}` is not an API key's address: revoke deletes keys only",
                untrusted::terminal(address)
            ),
            help: Some(
                "name a key as `workspace.WORKSPACE.key.NAME` (`tramontane audit` lists them); to remove a member, team or workspace, change the policy and apply".into(),
            ),
        });
    }
    let now = args.clock.now();
    let loaded = args.policies.load_if_present(day_of(now), color)?;
    let desired = loaded.as_ref().map(|loaded| &loaded.desired);
    let root = RepositoryRoot::of_policies(&args.policies.dir);
    // apply's own lock, held from before the read until the last delete: an apply running
    // now could otherwise recreate the key, or act on a list this revoke is changing.
    let _lock = take_lock(args, &root)?;
    let (org, label) = args.org.open(now, desired, &root)?;
    let runtime = runtime()?;
    let live = runtime.block_on(org.read())?;

    let mut keys: Vec<&LiveKey> = live
        .keys
        .iter()
        .filter(|key| {
            !key.workspace
                .as_ref()
                .is_some_and(|w| live.archived_workspaces.contains(w))
                && key_address(key) == address
        })
        .collect();
    keys.sort_by(|a, b| a.created_at.cmp(&b.created_at));
    if keys.is_empty() {
        return Err(CommandError::Usage {
            message: format!(
                "{label} has no API key at `{}`",
                untrusted::terminal(address)
            ),
            help: Some("`tramontane audit` lists every key by its address".into()),
        });
    }

    let mut stderr = std::io::stderr().lock();
    writeln!(
        stderr,
        "Revoking {} key(s) at {} in {label}:",
        keys.len(),
        untrusted::terminal(address)
    )?;
    for key in &keys {
        writeln!(
            stderr,
            "  - id {}, created {}{}",
            untrusted::terminal(&key.id),
            key.created_at
                .as_deref()
                .map(untrusted::terminal)
                .unwrap_or("at an unknown time".into()),
            key.created_by
                .as_deref()
                .map(|by| format!(" by {}", untrusted::terminal(by)))
                .unwrap_or_default()
        )?;
    }
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(CommandError::Usage {
                message: "not on a terminal, so the revocation cannot be confirmed".into(),
                help: Some("pass --yes to revoke without asking".into()),
            });
        }
        if let Some(declined) = super::apply::ask(
            &mut stderr,
            "Delete now? Whatever uses it stops working. Only `yes` is accepted: ",
        )? {
            writeln!(
                stderr,
                "Revoke cancelled: only `yes` confirms. Nothing deleted."
            )?;
            return Ok(declined);
        }
    }

    let log = AuditLog::open(&root.resolve(&args.audit_log), AuditLog::actor_from_env())?;
    let mut failure = None;
    for key in &keys {
        let result = runtime.block_on(org.perform(Operation::DeleteKey {
            key: key.id.clone(),
        }));
        log.record_outside_plan(&OutsidePlan {
            org: &label,
            address,
            action: "revoke",
            result: if result.is_ok() { "ok" } else { "failed" },
            error: result.as_ref().err().map(ToString::to_string),
            reason: args.reason.as_deref(),
            key_id: Some(&key.id),
        });
        if let Err(error) = result {
            failure = Some(error);
            break;
        }
        writeln!(stderr, "Revoked key id {}.", untrusted::terminal(&key.id))?;
    }
    log.finish()?;
    if let Some(error) = failure {
        return Err(error.into());
    }

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let declared = match (&keys[0].workspace, &keys[0].name) {
        (Some(workspace), Some(name)) => desired
            .and_then(|d| d.workspaces.get(workspace))
            .is_some_and(|w| w.keys.contains_key(name))
            .then(|| {
                let locator = loaded
                    .as_ref()
                    .map(|loaded| PolicyLocator::new(&loaded.sources))
                    .unwrap_or_default();
                (name.clone(), locator.key(workspace, name))
            }),
        _ => None,
    };
    match declared {
        Some((name, Some(source))) => {
            let lines = if source.end_line > source.line {
                format!("lines {}-{}", source.line, source.end_line)
            } else {
                format!("line {}", source.line)
            };
            writeln!(
                out,
                "The policy still declares this key at {}: the next apply creates it again, with a new secret.\n\
                 To keep it revoked, remove the `{}:` entry ({lines}) from {} in a pull request.\n\
                 To replace it instead, keep the entry: the next apply creates a new key and delivers its secret.",
                untrusted::terminal(&source.to_string()),
                untrusted::terminal(&name),
                untrusted::terminal(&source.file),
            )?;
        }
        Some((name, None)) => writeln!(
            out,
            "The policy declares key `{}`: the next apply creates it again. Remove its entry to keep it revoked.",
            untrusted::terminal(&name)
        )?,
        None => writeln!(
            out,
            "No policy declares this key: nothing to change for it to stay revoked."
        )?,
    }
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_key_addresses_are_accepted() {
        assert!(is_key_address("workspace.dev.key.ci"));
        assert!(is_key_address("key.loose"));
        for not_a_key in [
            "workspace.dev",
            "member.bob@x.example",
            "team.devs",
            "workspace..key.ci",
            "workspace.dev.key.",
            "key.",
        ] {
            assert!(!is_key_address(not_a_key), "{not_a_key}");
        }
    }
}
