use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use super::org::{LockArgs, OrgArgs};
use super::planning::{Planned, make_plan};
use super::show::read_plan;
use super::{ClockArgs, ColorChoice, CommandError, ExitStatus, PoliciesArg};
use tramontane::apply::audit::AuditLog;
use tramontane::apply::journal::Journal;
use tramontane::apply::{ApplyOptions, ApplyReport, Status, apply_each, git_ignore};
use tramontane::model::{DesiredOrg, LiveOrg};
use tramontane::plan::Plan;
use tramontane::plan::guard::{self, GuardOptions};
use tramontane::plan::saved::{self, ReviewedPlanError, SavedPlanError};
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

/// A saved plan that no longer says what applying does is a mistake in what was passed,
/// as any other: exit code 1.
impl From<SavedPlanError> for CommandError {
    fn from(error: SavedPlanError) -> CommandError {
        CommandError::Usage {
            message: error.to_string(),
            help: Some(error.help()),
        }
    }
}

pub fn run(args: &Args, color: ColorChoice) -> Result<ExitStatus, CommandError> {
    let saved = args.plan.as_ref().map(read_plan).transpose()?;
    let reviewed = args.reviewed_plan.as_ref().map(read_plan).transpose()?;
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
    if let (Some(reviewed), Some(path)) = (&reviewed, &args.reviewed_plan)
        && let Some(refused) = check_reviewed(reviewed, path, &fresh)?
    {
        return Ok(refused);
    }
    let plan = match saved {
        Some(saved) => {
            check_saved(args, &saved, &fresh)?;
            // The fresh plan: the same changes, with where rotations stand now.
            narrow(&mut fresh, args.only);
            fresh
        }
        None => {
            narrow(&mut fresh, args.only);
            if let Some(declined) = confirm(args, &fresh, color)? {
                return Ok(declined);
            }
            fresh
        }
    };
    if refused_by_guards(args, &plan, &desired, &live)? {
        return Ok(ExitStatus::Refused);
    }
    warn_of_secret_files(&desired, &root);
    if plan.summary.applicable() == 0 {
        record_runtime(args, &root, &plan)?;
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
        record_runtime(args, &root, &plan)?;
        return Ok(ExitStatus::Success);
    }
    report_failures(&report)?;
    Ok(ExitStatus::Failed)
}

/// With `--reviewed-plan`: says the plan made now is the one reviewed, or why not.
/// `Some(Refused)` when it changes anything else, after saying what.
fn check_reviewed(
    reviewed: &Plan,
    path: &Path,
    fresh: &Plan,
) -> Result<Option<ExitStatus>, CommandError> {
    match saved::check_reviewed(reviewed, path, fresh) {
        Ok(()) => {
            eprintln!(
                "The plan made now is the plan reviewed in {} (changes {}).",
                path.display(),
                fresh.review_digest()
            );
            Ok(None)
        }
        Err(error @ ReviewedPlanError::NotReviewed { .. }) => {
            writeln!(
                std::io::stderr().lock(),
                "error: {error}\nhelp: {}\nNothing applied.",
                error.help()
            )?;
            Ok(Some(ExitStatus::Refused))
        }
        Err(error @ ReviewedPlanError::OtherOrganization { .. }) => {
            Err(refuse(error.to_string(), error.help()))
        }
    }
}

/// A saved plan is applied only when it still says what applying does, and, with changes
/// to make, only when confirmed (by `--auto-approve`: a saved plan is not asked about).
fn check_saved(args: &Args, saved: &Plan, fresh: &Plan) -> Result<(), CommandError> {
    if let Some(moved) = saved::check_saved(saved, fresh)? {
        eprintln!("{moved}");
    }
    if !args.auto_approve && saved.summary.applicable() > 0 && !std::io::stdin().is_terminal() {
        return Err(refuse(
            "not on a terminal, so nothing can be confirmed".into(),
            "pass --auto-approve to apply the saved plan",
        ));
    }
    Ok(())
}

/// Shows the plan made now and, with changes to make and no `--auto-approve`, asks;
/// `Some` when the answer declines.
fn confirm(
    args: &Args,
    fresh: &Plan,
    color: ColorChoice,
) -> Result<Option<ExitStatus>, CommandError> {
    let stdout = std::io::stdout();
    stdout
        .lock()
        .write_all(render::human(fresh, color.enabled(stdout.is_terminal())).as_bytes())?;
    if fresh.summary.applicable() == 0 || args.auto_approve {
        return Ok(None);
    }
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
    let declined = ask(&mut std::io::stdout(), &question)?;
    if declined.is_some() {
        eprintln!("Apply cancelled: only `yes` confirms. Nothing applied.");
    }
    Ok(declined)
}

/// Whether a safety guard refuses the plan, after saying which and how to allow it.
fn refused_by_guards(
    args: &Args,
    plan: &Plan,
    desired: &DesiredOrg,
    live: &LiveOrg,
) -> Result<bool, CommandError> {
    let options = GuardOptions {
        allow_workspace_destroy: args.allow_destroy.contains(&Destroyable::Workspace),
        max_delete_ratio: args.max_delete_ratio,
        allow_empty: args.allow_empty,
    };
    let tripped = guard::check(plan, desired, live, &options);
    if tripped.is_empty() {
        return Ok(false);
    }
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
    Ok(true)
}

/// Secret files apply would write where git could commit them, or not write at all.
fn warn_of_secret_files(desired: &DesiredOrg, root: &RepositoryRoot) {
    for file in git_ignore::unignored_secret_files(desired, root.path()) {
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
}

/// Puts the plan's runtime section in force: only by an apply that completes and that was
/// not narrowed to some changes.
fn record_runtime(args: &Args, root: &RepositoryRoot, plan: &Plan) -> Result<(), CommandError> {
    match args.org.lock_identity(root) {
        Some(identity) if args.only.is_none() => {
            tramontane::planning::runtime_record(&args.org.config(), root)
                .write(&identity, &plan.runtime.effective)
                .map_err(|error| CommandError::Usage {
                    message: error.to_string(),
                    help: Some(error.help().to_owned()),
                })
        }
        _ => Ok(()),
    }
}

fn report_failures(report: &ApplyReport) -> Result<(), CommandError> {
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
    Ok(())
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
