use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use super::org::{LockArgs, OrgArgs};
use super::planning::{Planned, make_plan};
use super::show::read_plan;
use super::{ClockArgs, ColorChoice, CommandError, ExitStatus, PoliciesArg};
use tramontane::apply::audit::AuditLog;
use tramontane::apply::journal::Journal;
use tramontane::apply::{ApplyOptions, Status, apply_each, git_ignore};
use tramontane::plan::guard::{self, GuardOptions};
use tramontane::plan::{Plan, PolicyRef, review};
use tramontane::render::{apply as render_apply, plan as render, untrusted};
use tramontane::repository::RepositoryRoot;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A plan saved with `plan --out`; without one, tramontane plans afresh and asks.
    pub plan: Option<PathBuf>,

    #[command(flatten)]
    pub org: OrgArgs,

    #[command(flatten)]
    pub policies: PoliciesArg,

    /// Apply without asking (required when not on a terminal).
    #[arg(long)]
    pub auto_approve: bool,

    /// The plan a reviewer approved (the pull request's `plan --out`): apply stops, with
    /// exit code 3, when the plan made now would change anything else. Changes the calendar
    /// alone made due are not compared.
    #[arg(long, value_name = "FILE")]
    pub reviewed_plan: Option<PathBuf>,

    /// Apply only these changes and leave the rest for a reviewed apply: `rotations` is
    /// what the calendar made due (rotations, retiring a rotated key's predecessor,
    /// replacing an expired key), for a scheduled run.
    #[arg(long, value_name = "CHANGES", value_enum)]
    pub only: Option<Only>,

    /// Allow deleting objects of this kind, which a guard protects.
    #[arg(long, value_name = "KIND", value_enum)]
    pub allow_destroy: Vec<Destroyable>,

    /// The largest share of one kind's live objects the plan may delete.
    #[arg(long, default_value_t = 0.25)]
    pub max_delete_ratio: f64,

    /// Allow an empty policy to prune a populated organization.
    #[arg(long)]
    pub allow_empty: bool,

    /// Where every change attempted is appended, one JSON line each. Relative to the policy
    /// repository.
    #[arg(
        long,
        default_value = ".tramontane/audit.jsonl",
        env = "TRAMONTANE_AUDIT_LOG"
    )]
    pub audit_log: PathBuf,

    #[command(flatten)]
    pub lock: LockArgs,

    /// How long a secret sink's command may run before it is stopped (and the key deleted
    /// again, since its secret reached nobody).
    #[arg(long, default_value = "60s", env = "TRAMONTANE_SINK_TIMEOUT")]
    pub sink_timeout: jiff::SignedDuration,

    /// Print nothing on stderr while reading the organization.
    #[arg(long, short)]
    pub quiet: bool,

    #[command(flatten)]
    pub clock: ClockArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Destroyable {
    Workspace,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Only {
    /// Key rotations and expiries: what the calendar made due.
    Rotations,
}

/// Keeps only the changes `--only` selects, and says on stderr what waits.
fn narrow(plan: &mut Plan, only: Option<Only>) {
    let Some(Only::Rotations) = only else {
        return;
    };
    let before = plan.summary.applicable();
    plan.retain_changes(|plan, change| plan.is_due_to_calendar(change));
    let left = before - plan.summary.applicable();
    eprintln!(
        "--only rotations: {} change{} the calendar made due; {left} other change{} wait for a reviewed apply.",
        plan.summary.applicable(),
        if plan.summary.applicable() == 1 {
            ""
        } else {
            "s"
        },
        if left == 1 { "" } else { "s" }
    );
}

/// How a run ends when the answer at the confirmation prompt is not `yes`: declined, a
/// failure as in `terraform apply`, so `tramontane apply && next-step` never goes on.
/// `None` when the answer confirms.
pub(super) fn declined(answer: &str) -> Option<ExitStatus> {
    (answer.trim() != "yes").then_some(ExitStatus::Declined)
}

/// Asks `question` on `out` and reads the answer from stdin; what [`declined`] makes of it.
pub(super) fn ask(
    out: &mut impl Write,
    question: &str,
) -> Result<Option<ExitStatus>, CommandError> {
    write!(out, "{question}")?;
    out.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(declined(&answer))
}

fn refuse(message: String, help: &str) -> CommandError {
    CommandError::Usage {
        message,
        help: Some(help.into()),
    }
}

/// Where a plan's policies came from, for a message: `commit 1a2b3c4d5e6f`, with uncommitted
/// edits when there were any, or `outside git`.
fn describe_commit(policy: &PolicyRef) -> String {
    match &policy.commit {
        Some(commit) => format!(
            "commit {}{}",
            commit.get(..12).unwrap_or(commit),
            if policy.dirty {
                " with uncommitted edits"
            } else {
                ""
            }
        ),
        None => "outside git".into(),
    }
}

/// `label: address` for each address of each group, in order: how a refusal lists what two
/// plans differ in.
fn labelled_addresses<'a>(
    groups: [(&'a str, &'a [String]); 3],
) -> impl Iterator<Item = String> + 'a {
    groups.into_iter().flat_map(|(label, addresses)| {
        addresses
            .iter()
            .map(move |address| format!("{label}: {}", untrusted::terminal(address)))
    })
}

/// Why a saved plan no longer matches the policies: where each came from, and which
/// addresses the plan made now changes differently.
fn stale_policy_message(saved: &Plan, fresh: &Plan) -> String {
    let mut message = "stale plan: the policies changed since the plan was made".to_owned();
    if saved.policy.commit.is_some() || fresh.policy.commit.is_some() {
        message.push_str(&format!(
            " (made from {}, now {})",
            describe_commit(&saved.policy),
            describe_commit(&fresh.policy)
        ));
    }
    let difference = review::compare(saved, fresh);
    // `altered` words its detail for a review (`update reviewed, update now`): the address
    // alone says what a stale plan needs to.
    let altered: Vec<String> = difference
        .altered
        .iter()
        .map(|entry| {
            entry
                .split_once(" (")
                .map_or(entry.as_str(), |(address, _)| address)
                .to_owned()
        })
        .collect();
    for line in labelled_addresses([
        ("added since the plan", &difference.added),
        ("no longer in the plan", &difference.removed),
        ("changed since the plan", &altered),
    ]) {
        message.push_str(&format!("\n  {line}"));
    }
    message
}

pub fn run(args: &Args, color: ColorChoice) -> Result<ExitStatus, CommandError> {
    let saved = match &args.plan {
        Some(path) => Some(read_plan(path)?),
        None => None,
    };
    let reviewed = match &args.reviewed_plan {
        Some(path) => Some(read_plan(path)?),
        None => None,
    };
    let root = RepositoryRoot::of_policies(&args.policies.dir);
    // Held from before the organization is read until the last change ends, so the plan
    // checked for staleness is the one applied.
    let _lock = args.lock.take(&args.org, &root, "another apply")?;
    let Some(Planned {
        desired,
        org,
        live,
        plan: mut fresh,
        runtime,
    }) = make_plan(
        &args.policies.dir,
        &args.org,
        args.clock.now(),
        args.quiet,
        color,
    )?
    else {
        return Ok(ExitStatus::Invalid);
    };
    let replan = format!("tramontane plan --org {} --out plan.json", fresh.live.org);
    if let (Some(reviewed), Some(path)) = (&reviewed, &args.reviewed_plan) {
        if reviewed.live.org != fresh.live.org {
            return Err(refuse(
                format!(
                    "the reviewed plan was made against `{}`, not `{}`",
                    reviewed.live.org, fresh.live.org
                ),
                "pass the plan reviewed for this organization",
            ));
        }
        let difference = review::compare(reviewed, &fresh);
        if !difference.is_empty() {
            let mut stderr = std::io::stderr().lock();
            writeln!(
                stderr,
                "error: refused: the plan made now is not the plan reviewed in {}",
                path.display()
            )?;
            for line in labelled_addresses([
                ("added since the review", &difference.added),
                ("no longer in the plan", &difference.removed),
                ("changed since the review", &difference.altered),
            ]) {
                writeln!(stderr, "  {line}")?;
            }
            writeln!(
                stderr,
                "help: the policies or the organization changed after the review: plan again on the pull request (or a new one), review it, and merge that"
            )?;
            writeln!(stderr, "Nothing applied.")?;
            return Ok(ExitStatus::Refused);
        }
        eprintln!(
            "The plan made now is the plan reviewed in {} (changes {}).",
            path.display(),
            fresh.review_digest()
        );
    }
    let plan: Plan = match saved {
        Some(saved) => {
            if saved.live.org != fresh.live.org {
                return Err(refuse(
                    format!(
                        "the plan was made against `{}`, not `{}`",
                        saved.live.org, fresh.live.org
                    ),
                    "apply a plan to the organization it was made against",
                ));
            }
            if saved.live.fingerprint != fresh.live.fingerprint {
                return Err(refuse(
                    "stale plan: the organization changed since the plan was made".into(),
                    &format!("make a new plan and review it: `{replan}`"),
                ));
            }
            // The plan binds the policy's content, not where it was read from: a plan made
            // from another directory, another clone or before an unrelated commit applies
            // when the policies it was made from are the ones loaded now.
            if saved.policy.digest != fresh.policy.digest {
                return Err(refuse(
                    stale_policy_message(&saved, &fresh),
                    &format!("make a new plan and review it: `{replan}`"),
                ));
            }
            if saved.policy.commit != fresh.policy.commit {
                eprintln!(
                    "The plan was made from {}; the policies are now {}, with the same content.",
                    describe_commit(&saved.policy),
                    describe_commit(&fresh.policy)
                );
            }
            if saved.changes != fresh.changes {
                return Err(refuse(
                    "the plan file does not match what these policies and this organization give; it was edited, or a rotation's overlap or a key's expiry passed since it was made".into(),
                    &format!("make a new plan: `{replan}`"),
                ));
            }
            if !args.auto_approve
                && saved.summary.applicable() > 0
                && !std::io::stdin().is_terminal()
            {
                return Err(refuse(
                    "not on a terminal, so nothing can be confirmed".into(),
                    "pass --auto-approve to apply the saved plan",
                ));
            }
            // The fresh plan: the same changes, with where rotations stand now.
            narrow(&mut fresh, args.only);
            fresh
        }
        None => {
            narrow(&mut fresh, args.only);
            let stdout = std::io::stdout();
            stdout
                .lock()
                .write_all(render::human(&fresh, color.enabled(stdout.is_terminal())).as_bytes())?;
            if fresh.summary.applicable() > 0 && !args.auto_approve {
                if !std::io::stdin().is_terminal() {
                    return Err(refuse(
                        "not on a terminal, so nothing can be confirmed".into(),
                        "review the plan, then pass --auto-approve (or apply a saved plan with --auto-approve)",
                    ));
                }
                let question = format!(
                    "\nApply these changes to {}? Only `yes` is accepted: ",
                    fresh.live.org
                );
                if let Some(declined) = ask(&mut std::io::stdout(), &question)? {
                    eprintln!("Apply cancelled: only `yes` confirms. Nothing applied.");
                    return Ok(declined);
                }
            }
            fresh
        }
    };

    let options = GuardOptions {
        allow_workspace_destroy: args.allow_destroy.contains(&Destroyable::Workspace),
        max_delete_ratio: args.max_delete_ratio,
        allow_empty: args.allow_empty,
    };
    let tripped = guard::check(&plan, &desired, &live, &options);
    if !tripped.is_empty() {
        let mut stderr = std::io::stderr().lock();
        for guard in &tripped {
            writeln!(
                stderr,
                "error: refused: {}\nhelp: if this is intended, pass {}",
                untrusted::terminal(&guard.message),
                guard.flag
            )?;
        }
        writeln!(stderr, "Nothing applied.")?;
        return Ok(ExitStatus::Refused);
    }
    for file in git_ignore::unignored_secret_files(&desired, root.path()) {
        if let Some(link) = &file.through_link {
            eprintln!(
                "warning: the secret file `{}` lies behind the symbolic link `{}`; its secret will not be written there",
                untrusted::terminal(&file.path),
                untrusted::terminal(link)
            );
            continue;
        }
        eprintln!(
            "warning: the secret file `{}` is inside a git work tree and not ignored; add `{}` to .gitignore so it is never committed",
            untrusted::terminal(&file.path),
            untrusted::terminal(&file.ignore_line)
        );
    }
    // Put in force by an apply that completes and that was not narrowed to some changes.
    let record_runtime = |plan: &Plan| -> Result<(), CommandError> {
        match args.org.lock_identity(&root) {
            Some(identity) if args.only.is_none() => {
                tramontane::planning::runtime_record(&args.org.config(), &root)
                    .write(&identity, &plan.runtime.effective)
                    .map_err(|error| CommandError::Usage {
                        message: error.to_string(),
                        help: Some(error.help().to_owned()),
                    })
            }
            _ => Ok(()),
        }
    };
    if plan.summary.applicable() == 0 {
        record_runtime(&plan)?;
        println!("Nothing to apply.");
        return Ok(ExitStatus::Success);
    }

    let audit = AuditLog::open(&root.resolve(&args.audit_log), AuditLog::actor_from_env())?;
    let journal = Journal::open(
        &args.org.journal_path(&root),
        &args.org.lock_identity(&root).unwrap_or_default(),
        &live,
    )?;
    let options = ApplyOptions {
        root: root.path().to_owned(),
        concurrency: args.org.concurrency.max(1),
        sink_timeout: args.sink_timeout.unsigned_abs(),
        journal: Some(journal),
        now: args.clock.now(),
    };
    let report = runtime.block_on(apply_each(
        &plan,
        &desired,
        &live,
        &org,
        &options,
        &|change, result| audit.record(&plan, change, result),
    ));
    std::io::stdout()
        .lock()
        .write_all(render_apply::report(&plan, &report).as_bytes())?;
    audit.finish()?;
    if report.succeeded() {
        record_runtime(&plan)?;
        return Ok(ExitStatus::Success);
    }
    let mut stderr = std::io::stderr().lock();
    for result in &report.changes {
        if let Status::Failed(error) = &result.status {
            writeln!(
                stderr,
                "error: {}",
                untrusted::terminal_lines(&error.to_string())
            )?;
        }
    }
    writeln!(
        stderr,
        "help: fix the cause and run apply again; it carries on from where the organization now is"
    )?;
    Ok(ExitStatus::Failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_yes_confirms_and_anything_else_exits_1() {
        assert_eq!(declined("yes\n"), None);
        assert_eq!(declined("  yes \r\n"), None);
        for answer in ["no\n", "\n", "", "y\n", "YES\n", "yes please\n"] {
            assert_eq!(
                declined(answer).map(ExitStatus::code),
                Some(1),
                "{answer:?}"
            );
        }
    }
}
