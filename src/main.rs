use std::process::ExitCode;

use clap::Parser;
use tramontane::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli::run(cli) {
        Ok(status) => ExitCode::from(status.code()),
        Err(error) => {
            eprint!("{}", error.report());
            error.exit_code()
        }
    }
}
