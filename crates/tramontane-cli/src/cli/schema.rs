use std::io::Write;

use super::{CommandError, ExitStatus};
use tramontane::policy::schema::SCHEMA;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: &Args) -> Result<ExitStatus, CommandError> {
    std::io::stdout().lock().write_all(SCHEMA.as_bytes())?;
    Ok(ExitStatus::Success)
}
