use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::ValueEnum;
use jiff::Timestamp;
use jiff::civil::Date;
use sha2::{Digest, Sha256};

use super::org::{Org, OrgArgs, runtime};
use super::{ColorChoice, CommandError, ExitStatus};
use tramontane::apply::runtime_record::{RuntimeRecord, RuntimeRecordError};
use tramontane::plan::{self, Plan, PlanInput, PolicyRef};
use tramontane::policy::{self, LoadOptions};
use tramontane::provider::Provider;
use tramontane::render::{diagnostics, plan as render};
use tramontane::repository::RepositoryRoot;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub org: OrgArgs,

    /// Directory of policy files.
    #[arg(long, short, default_value = "policies", env = "TRAMONTANE_POLICIES")]
    pub policies: PathBuf,

    /// Also save the plan as JSON here, for `tramontane apply` and `tramontane show`.
    #[arg(long)]
    pub out: Option<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    /// Exit 2 when the plan has changes to apply, 0 when it has none (as `terraform plan`
    /// does). Manual console steps alone exit 0: apply has nothing to do for them.
    #[arg(long)]
    pub detailed_exitcode: bool,

    /// With --detailed-exitcode, exit 2 also when the only entries are manual console steps
    /// (for a drift check that must see them).
    #[arg(long, requires = "detailed_exitcode")]
    pub count_manual: bool,

    /// Print nothing on stderr while reading the organization.
    #[arg(long, short)]
    pub quiet: bool,

    #[command(flatten)]
    pub clock: Clock,
}

/// The moment a plan is made at. Tests and demos pin it; otherwise it is the system clock.
#[derive(Debug, Clone, clap::Args)]
pub struct Clock {
    /// Count expiries, rotation windows and overlaps from this instant (RFC 3339).
    #[arg(long, env = "TRAMONTANE_NOW", hide = true)]
    pub now: Option<Timestamp>,

    /// Count from noon (UTC) of this day instead.
    #[arg(long, env = "TRAMONTANE_TODAY", hide = true)]
    pub today: Option<Date>,
}

impl Clock {
    pub fn now(&self) -> Timestamp {
        if let Some(now) = self.now {
            return now;
        }
        match self.today {
            Some(day) => day
                .at(12, 0, 0, 0)
                .to_zoned(jiff::tz::TimeZone::UTC)
                .map(|zoned| zoned.timestamp())
                .unwrap_or_else(|_| Timestamp::now()),
            None => Timestamp::now(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Colored `+ ~ - -/+` lines, as Terraform shows a plan.
    Human,
    /// A pull-request comment: summary table, destructive-change banner, details per resource.
    Markdown,
    /// The versioned plan contract (see the README).
    Json,
}

/// The UTC day of an instant: the day policy expiry dates are checked against.
pub fn day_of(now: Timestamp) -> Date {
    now.to_zoned(jiff::tz::TimeZone::UTC).date()
}

/// Everything a plan was made from, kept for apply.
pub struct Planned {
    pub desired: tramontane::model::DesiredOrg,
    pub org: Org,
    pub live: tramontane::model::LiveOrg,
    pub plan: Plan,
    pub runtime: tokio::runtime::Runtime,
}

/// Loads the policies and reads the org into a plan. `None` when the policies are invalid:
/// their diagnostics are already on stderr.
pub fn make_plan(
    policies: &std::path::Path,
    org_args: &OrgArgs,
    now: Timestamp,
    quiet: bool,
    color: ColorChoice,
) -> Result<Option<Planned>, CommandError> {
    let loaded = policy::load(policies, &LoadOptions::new(day_of(now)));
    if !loaded.is_valid() {
        let shown = policies.to_string_lossy();
        let text = diagnostics::human(
            &loaded,
            &shown,
            color.enabled(std::io::stderr().is_terminal()),
        );
        std::io::stderr().write_all(text.as_bytes())?;
        return Ok(None);
    }
    let root = RepositoryRoot::of_policies(policies);
    let (org, label) = Org::open(org_args, now, Some(&loaded.desired), &root)?;
    let runtime = runtime()?;
    let progress = Progress::start(quiet, &label);
    let live = runtime.block_on(org.read());
    progress.finish();
    let mut live = live.map_err(CommandError::Provider)?;
    org_args.mark_undelivered(&mut live, &root)?;

    let (commit, dirty) = policy::git::locate(policies);
    let digest = Sha256::digest(serde_json::to_vec(&loaded.desired).unwrap_or_default());
    let policy = PolicyRef {
        commit,
        dirty,
        digest: format!(
            "sha256:{}",
            digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ),
    };
    let recorded = match org_args.lock_identity(&root) {
        Some(identity) => runtime_record(org_args, &root)
            .read(&identity)
            .map_err(record_error)?,
        None => None,
    };
    let input = PlanInput {
        desired: &loaded.desired,
        live: &live,
        now,
        org: label,
        policy,
    };
    let plan = plan::diff_against(&input, recorded.as_ref());
    Ok(Some(Planned {
        desired: loaded.desired,
        org,
        live,
        plan,
        runtime,
    }))
}

/// Where the runtime the last apply put in force is recorded: beside the key journal.
pub fn runtime_record(org_args: &OrgArgs, root: &RepositoryRoot) -> RuntimeRecord {
    RuntimeRecord::at(org_args.journal_path(root).with_file_name("runtime.json"))
}

pub fn record_error(error: RuntimeRecordError) -> CommandError {
    CommandError::Usage {
        message: error.to_string(),
        help: Some(error.help().to_owned()),
    }
}

pub fn run(args: &Args, color: ColorChoice) -> Result<ExitStatus, CommandError> {
    let Some(planned) = make_plan(
        &args.policies,
        &args.org,
        args.clock.now(),
        args.quiet,
        color,
    )?
    else {
        return Ok(ExitStatus::Invalid);
    };
    let plan = planned.plan;
    if let Some(out) = &args.out {
        std::fs::write(out, render::json(&plan)).map_err(|source| CommandError::File {
            path: out.clone(),
            action: "write the plan to",
            source,
        })?;
    }
    print(&plan, args.format, color)?;
    Ok(status(&plan, args.detailed_exitcode, args.count_manual))
}

pub fn print(plan: &Plan, format: Format, color: ColorChoice) -> Result<(), CommandError> {
    let stdout = std::io::stdout();
    let text = match format {
        Format::Human => render::human(plan, color.enabled(stdout.is_terminal())),
        Format::Markdown => render::markdown(plan),
        Format::Json => render::json(plan),
    };
    stdout.lock().write_all(text.as_bytes())?;
    Ok(())
}

/// The exit code of a plan: with `detailed`, 2 when apply has something to do, and, with
/// `count_manual`, also when a person has a console step to take.
pub fn status(plan: &Plan, detailed: bool, count_manual: bool) -> ExitStatus {
    let counted = if count_manual {
        plan.summary.total()
    } else {
        plan.summary.applicable()
    };
    if detailed && counted > 0 {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    }
}

/// A spinner on stderr while the organization is read, only on a terminal.
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn start(quiet: bool, label: &str) -> Progress {
        if quiet || !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message(format!("reading {label}"));
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
        Progress(Some(bar))
    }

    fn finish(self) {
        if let Some(bar) = self.0 {
            bar.finish_and_clear();
        }
    }
}
