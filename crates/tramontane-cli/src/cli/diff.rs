use std::io::{IsTerminal, Write};

use clap::ValueEnum;
use jiff::civil::Date;

use super::{ColorChoice, CommandError, ExitStatus, PoliciesArg};
use tramontane::access::{self, Access, AccessDiff, render};
use tramontane::model::DesiredOrg;
use tramontane::policy::git::PolicyRepository;
use tramontane::policy::{self, LoadOptions, LoadedPolicy};
use tramontane::render::diagnostics;
use tramontane::runtime::Runtime;

#[derive(Debug, clap::Args)]
#[command(mut_arg("policies", |arg| arg.help(
    "Directory of policy files, in the working tree; the same path is read at each \
     revision"
)))]
pub struct Args {
    /// The revision to compare from: a branch, tag, commit or expression such as `HEAD^1`.
    #[arg(long)]
    pub base: String,

    /// The revision to compare to; the working tree (including uncommitted changes) without it.
    #[arg(long)]
    pub head: Option<String>,

    #[command(flatten)]
    pub policies: PoliciesArg,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    /// Exit 2 when access changes, 0 when it does not.
    #[arg(long)]
    pub detailed_exitcode: bool,

    /// Check expiry dates against this day instead of today (UTC).
    #[arg(long, env = "TRAMONTANE_TODAY", hide = true)]
    pub today: Option<Date>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `+ ~ -` per key, team, member and workspace, as a plan shows changes.
    Human,
    /// A table for a pull-request comment (`tramontane comment --append`).
    Markdown,
    /// The diff as data.
    Json,
}

/// One side of the comparison.
struct Side {
    side: access::Side,
    /// `None`: the policy directory does not exist on this side.
    loaded: Option<LoadedPolicy>,
    /// What diagnostics call the directory on this side.
    shown: String,
}

pub fn run(args: &Args, color: ColorChoice) -> Result<ExitStatus, CommandError> {
    let today = args.today.unwrap_or_else(|| {
        jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date()
    });
    let options = LoadOptions::new(today);
    let repo = PolicyRepository::open(&args.policies.dir)?;
    let base = at_revision(&repo, &args.base, &options)?;
    let head = match &args.head {
        Some(rev) => at_revision(&repo, rev, &options)?,
        None => in_working_tree(&args.policies.dir, &options),
    };
    let policies = args.policies.dir.to_string_lossy().replace('\\', "/");
    if base.loaded.is_none() && head.loaded.is_none() {
        return Err(CommandError::Usage {
            message: format!(
                "`{policies}` exists on neither side: {} and {}",
                base.side.name(),
                head.side.name()
            ),
            help: Some("pass --policies with the directory that holds the policy files".into()),
        });
    }

    let stderr_color = color.enabled(std::io::stderr().is_terminal());
    let mut invalid = false;
    for side in [&base, &head] {
        if let Some(loaded) = side.loaded.as_ref().filter(|loaded| !loaded.is_valid()) {
            invalid = true;
            let text = diagnostics::human(loaded, &side.shown, stderr_color);
            std::io::stderr().write_all(text.as_bytes())?;
        }
    }
    if invalid {
        return Ok(ExitStatus::Invalid);
    }

    // A side without the policy directory grants nothing.
    let access = |side: &Side| {
        let empty = DesiredOrg::default();
        let desired = side
            .loaded
            .as_ref()
            .map_or(&empty, |loaded| &loaded.desired);
        Access::of(&Runtime::of(desired, options.catalog))
    };
    let diff = AccessDiff::between(
        &policies,
        (base.side.clone(), &access(&base)),
        (head.side.clone(), &access(&head)),
    );
    let stdout = std::io::stdout();
    let text = match args.format {
        Format::Human => render::human(&diff, color.enabled(stdout.is_terminal())),
        Format::Markdown => render::markdown(&diff),
        Format::Json => render::json(&diff),
    };
    stdout.lock().write_all(text.as_bytes())?;
    Ok(if args.detailed_exitcode && diff.has_changes() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}

fn at_revision(
    repo: &PolicyRepository,
    rev: &str,
    options: &LoadOptions<'_>,
) -> Result<Side, CommandError> {
    let found = repo.files_at(rev)?;
    let side = access::Side {
        revision: Some(rev.to_owned()),
        commit: Some(found.commit),
        has_policies: found.files.is_some(),
    };
    let relative = repo.relative_dir();
    let shown = if relative.is_empty() {
        format!("{rev}:")
    } else {
        format!("{rev}:{relative}")
    };
    Ok(Side {
        side,
        loaded: found
            .files
            .map(|files| policy::load_texts(&shown, files, options)),
        shown,
    })
}

fn in_working_tree(dir: &std::path::Path, options: &LoadOptions<'_>) -> Side {
    let shown = dir.to_string_lossy().into_owned();
    let loaded = dir.exists().then(|| policy::load(dir, options));
    Side {
        side: access::Side::working_tree(loaded.is_some()),
        loaded,
        shown,
    }
}
