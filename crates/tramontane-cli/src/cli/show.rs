use std::path::PathBuf;

use super::plan::{Format, print};
use super::{ColorChoice, CommandError, ExitStatus};
use tramontane::plan::{FORMAT_VERSION, Plan};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A plan saved with `tramontane plan --out`.
    pub plan: PathBuf,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

pub fn run(args: &Args, color: ColorChoice) -> Result<ExitStatus, CommandError> {
    let plan = read_plan(&args.plan)?;
    print(&plan, args.format, color)?;
    Ok(ExitStatus::Success)
}

pub fn read_plan(path: &PathBuf) -> Result<Plan, CommandError> {
    let text = std::fs::read_to_string(path).map_err(|source| CommandError::File {
        path: path.clone(),
        action: "read the plan from",
        source,
    })?;
    let version: Option<String> = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|value| value.get("format_version")?.as_str().map(str::to_owned));
    if version.as_deref().is_some_and(|v| v != FORMAT_VERSION) {
        return Err(CommandError::Usage {
            message: format!(
                "{} is a plan of format {}, this tramontane reads {FORMAT_VERSION}",
                path.display(),
                version.unwrap_or_default()
            ),
            help: Some(
                "make the plan again with this version of tramontane (`tramontane plan --out`) and apply that one"
                    .into(),
            ),
        });
    }
    let plan: Plan = serde_json::from_str(&text).map_err(|error| CommandError::Usage {
        message: format!("{} is not a tramontane plan: {error}", path.display()),
        help: Some("pass a file written by `tramontane plan --out`".into()),
    })?;
    plan.check_summary()
        .map_err(|mismatch| CommandError::Usage {
            message: format!("{} was edited: {mismatch}", path.display()),
            help: Some(
                "make the plan again with `tramontane plan --out` and review it; a plan file is never edited by hand"
                    .into(),
            ),
        })?;
    Ok(plan)
}
