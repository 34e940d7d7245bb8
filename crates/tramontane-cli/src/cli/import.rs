use std::io::Write;
use std::path::{Path, PathBuf};

use super::org::{OrgArgs, runtime};
use super::{CommandError, ExitStatus};
use tramontane::clock::day_of;
use tramontane::model::DesiredOrg;
use tramontane::model::import::desired_from_live;
use tramontane::policy::directory;
use tramontane::provider::Provider;
use tramontane::repository::RepositoryRoot;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub org: OrgArgs,

    /// Directory to write the policy files into; must not hold policy files already.
    #[arg(long)]
    pub out: PathBuf,

    #[command(flatten)]
    pub clock: super::ClockArgs,
}

pub fn run(args: &Args) -> Result<ExitStatus, CommandError> {
    let now = args.clock.now();
    let today = day_of(now);
    if directory::holds_policy_files(&args.out) {
        return Err(CommandError::Usage {
            message: format!("`{}` already holds policy files", args.out.display()),
            help: Some("import into an empty directory, so nothing is overwritten".into()),
        });
    }
    let (desired, notes) = read_live_as_policy(&args.org, now, &RepositoryRoot::current())?;
    let files = write_policy_files(&args.out, &desired, &notes, today)?;
    writeln!(
        std::io::stderr().lock(),
        "imported {} members, {} workspaces, {} teams and {} keys into `{}` ({} files)",
        desired.members.len(),
        desired.workspaces.len(),
        desired.teams.len(),
        desired
            .workspaces
            .values()
            .map(|w| w.keys.len())
            .sum::<usize>(),
        args.out.display(),
        files
    )?;
    Ok(ExitStatus::Success)
}

/// Reads the organization `args` name, whole, and turns it into the policy that describes
/// it, with notes on what a policy cannot say. `root` is where `sandbox:demo` lives.
pub fn read_live_as_policy(
    args: &OrgArgs,
    now: jiff::Timestamp,
    root: &RepositoryRoot,
) -> Result<(DesiredOrg, Vec<String>), CommandError> {
    let (org, _) = args.open(now, None, root)?;
    let live = runtime()?.block_on(org.read())?;
    let (desired, notes) = desired_from_live(&live, day_of(now));
    Ok((desired, notes))
}

/// Writes `desired` into `out` as policy files, prints the notes on stderr and returns how
/// many files were written.
pub fn write_policy_files(
    out: &Path,
    desired: &DesiredOrg,
    notes: &[String],
    today: jiff::civil::Date,
) -> Result<usize, CommandError> {
    let files = directory::write(out, desired, today)?;
    let mut stderr = std::io::stderr().lock();
    for note in notes {
        writeln!(stderr, "note: {note}")?;
    }
    Ok(files)
}
