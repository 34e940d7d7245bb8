use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use super::{CommandError, ExitStatus, PoliciesArg};
use tramontane::github::client::DEFAULT_API_URL;
use tramontane::github::comment::{self, Extras, Target};
use tramontane::github::{GitHub, GitHubError, RepoName, summary};

#[derive(Debug, clap::Args)]
#[command(mut_arg("policies", |arg| arg.help(
    "The policy directory the plan is of: each directory has its own comment"
)))]
pub struct Args {
    /// The repository, as OWNER/NAME.
    #[arg(long, env = "GITHUB_REPOSITORY")]
    pub repo: RepoName,

    /// The pull request's number.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub pr: u64,

    /// A plan saved with `tramontane plan --out`.
    #[arg(long, required_unless_present = "failed")]
    pub plan: Option<PathBuf>,

    /// Planning failed: replace the comment with a line saying so, so an out-of-date plan
    /// does not stay on the pull request looking current.
    #[arg(long, conflicts_with_all = ["plan", "append"])]
    pub failed: bool,

    #[command(flatten)]
    pub policies: PoliciesArg,

    /// A markdown file to show below the plan, such as `tramontane diff --format markdown`.
    /// May be repeated.
    #[arg(long, value_name = "FILE")]
    pub append: Vec<PathBuf>,

    /// Update and delete only comments written by this login (in GitHub Actions,
    /// `github-actions[bot]`), so no one else's comment can stand in for the plan's.
    #[arg(long)]
    pub author: Option<String>,

    /// A link to the run, shown in the comment as where the full plan is.
    #[arg(long)]
    pub details_url: Option<String>,

    /// Print the comment bodies instead of posting them; needs no token.
    #[arg(long)]
    pub dry_run: bool,

    /// First retry delay in milliseconds for GitHub's transient failures.
    #[arg(
        long,
        env = "TRAMONTANE_BACKOFF_MS",
        default_value_t = 1000,
        hide = true
    )]
    pub backoff_ms: u64,
}

pub fn run(args: &Args) -> Result<ExitStatus, CommandError> {
    let plan = args.plan.as_ref().map(super::show::read_plan).transpose()?;
    let appendices = args
        .append
        .iter()
        .map(|path| {
            std::fs::read_to_string(path).map_err(|source| CommandError::File {
                path: path.clone(),
                action: "read the markdown to append from",
                source,
            })
        })
        .collect::<Result<Vec<String>, CommandError>>()?;
    let dir = comment::comment_dir(&args.policies.dir.to_string_lossy());
    let extras = Extras {
        appendices: &appendices,
        details_url: args.details_url.as_deref(),
    };
    let bodies = match &plan {
        Some(plan) => comment::bodies(plan, &dir, &extras),
        None => vec![comment::failure_body(&dir, extras.details_url)],
    };

    let stdout = std::io::stdout();
    if args.dry_run {
        let mut out = stdout.lock();
        for (index, body) in bodies.iter().enumerate() {
            if index > 0 {
                writeln!(out, "\n---")?;
            }
            out.write_all(body.as_bytes())?;
        }
        return Ok(ExitStatus::Success);
    }

    // The run's page shows the whole plan even where the comment cannot be written (a fork).
    if let Some(plan) = &plan
        && let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty())
    {
        let mut markdown = tramontane::render::plan::markdown_body(plan);
        for appendix in &appendices {
            markdown.push('\n');
            markdown.push_str(appendix.trim_end());
            markdown.push('\n');
        }
        let path = PathBuf::from(path);
        summary::append(&path, &markdown).map_err(|source| CommandError::File {
            path,
            action: "append the plan to the job summary (GITHUB_STEP_SUMMARY)",
            source,
        })?;
    }

    let token = std::env::var("GITHUB_TOKEN")
        .ok()
        .filter(|token| !token.trim().is_empty())
        .map(SecretString::from)
        .ok_or(GitHubError::MissingToken)?;
    let api_url = std::env::var("GITHUB_API_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_API_URL.to_owned());
    let github = GitHub::new(&api_url, token, Duration::from_millis(args.backoff_ms))?;
    let target = Target {
        repo: &args.repo,
        number: args.pr,
        dir: &dir,
        author: args.author.as_deref(),
    };
    let report = super::org::runtime()?.block_on(comment::sync(&github, &target, &bodies))?;

    let mut out = stdout.lock();
    let place = format!("`{dir}` on {}#{}", args.repo, args.pr);
    match report.parts.as_slice() {
        [only] => writeln!(
            out,
            "Plan comment for {place}: {} {}",
            only.outcome.as_str(),
            only.url
        )?,
        parts => {
            writeln!(out, "Plan comment for {place}, in {} parts:", parts.len())?;
            for part in parts {
                writeln!(
                    out,
                    "  part {}: {} {}",
                    part.part,
                    part.outcome.as_str(),
                    part.url
                )?;
            }
        }
    }
    if report.deleted > 0 {
        writeln!(
            out,
            "Deleted {} stale plan comment(s): parts a shorter plan no longer needs, or duplicates.",
            report.deleted
        )?;
    }
    Ok(ExitStatus::Success)
}
