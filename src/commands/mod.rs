//! One module per subcommand: turns parsed arguments into output text.

pub mod compare;
pub mod discover;
pub mod gpus;
pub mod layouts;
pub mod plan;
pub mod profiles;
pub mod report;
pub mod restore;
pub mod run;
pub mod sample_cost;
pub mod validate;

use crate::cli::{Cli, Command};
use crate::error::Result;

/// Runs a parsed command line and returns what to print.
pub fn run(cli: Cli) -> Result<String> {
    match cli.command {
        Command::Gpus(args) => gpus::run(&args),
        Command::Discover(args) => discover::run(&args),
        Command::Profiles(args) => profiles::run(&args),
        Command::Layouts(args) => layouts::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Validate(args) => validate::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Restore(args) => restore::run(&args),
        Command::Report(args) => report::run(&args),
        Command::Compare(args) => compare::run(&args),
        Command::SampleCost(args) => sample_cost::run(&args),
        Command::Synth(args) => std::process::exit(crate::synth::run(&args)),
        Command::SimServer(args) => std::process::exit(crate::serving::sim_server::run(&args)),
    }
}
