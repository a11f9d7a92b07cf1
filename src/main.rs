use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use migbench::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match migbench::commands::run(cli) {
        Ok(text) => {
            // A closed pipe (`migbench layouts | head`) is not an error worth reporting.
            let _ = std::io::stdout().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("migbench: error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
