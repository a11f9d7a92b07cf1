//! One module per subcommand: turns parsed arguments into output text.

pub mod advise;
pub mod calibrate;
pub mod check_catalog;
pub mod compare;
pub mod discover;
pub mod gpus;
pub mod history;
pub mod import;
pub mod layouts;
pub mod plan;
pub mod profiles;
pub mod report;
pub mod restore;
pub mod run;
pub mod sample_cost;
pub mod slurm;
pub mod validate;

use clap::CommandFactory;

use crate::cli::{Cli, Command};
use crate::error::{Error, Result};

/// Runs a parsed command line and returns what to print.
pub fn run(cli: Cli) -> Result<String> {
    match cli.command {
        Command::Gpus(args) => gpus::run(&args),
        Command::Discover(args) => discover::run(&args),
        Command::Profiles(args) => profiles::run(&args),
        Command::Layouts(args) => layouts::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Calibrate(args) => calibrate::run(&args),
        Command::Advise(args) => advise::run(&args),
        Command::Validate(args) => validate::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Restore(args) => restore::run(&args),
        Command::Report(args) => report::run(&args),
        Command::Compare(args) => compare::run(&args),
        Command::History(args) => history::run(&args),
        Command::Import(args) => import::run(&args),
        Command::Slurm(crate::cli::SlurmCommand::Submit(args)) => slurm::submit(&args),
        Command::Completions(args) => Ok(completions(args.shell)),
        Command::Man => man(),
        Command::Schema(args) => Ok(crate::schema::json(args.kind)),
        Command::SampleCost(args) => sample_cost::run(&args),
        Command::Synth(args) => std::process::exit(crate::backend::sim::synth::run(&args)),
        Command::SimServer(args) => std::process::exit(crate::backend::sim::server::run(&args)),
    }
}

/// The completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "migbench", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The manual page, in roff.
pub fn man() -> Result<String> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .map_err(|e| Error::Harness(format!("cannot write the manual page: {e}")))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}
