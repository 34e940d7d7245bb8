use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::ValueEnum;

use super::org::OrgArgs;
use super::planning::make_plan;
use super::{ClockArgs, ColorChoice, CommandError, ExitStatus, PoliciesArg};
use tramontane::plan::Plan;
use tramontane::render::plan as render;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub org: OrgArgs,

    #[command(flatten)]
    pub policies: PoliciesArg,

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
    pub clock: ClockArgs,
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

pub fn run(args: &Args, color: ColorChoice) -> Result<ExitStatus, CommandError> {
    let Some(planned) = make_plan(
        &args.policies.dir,
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
