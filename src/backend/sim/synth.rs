//! `migbench synth`: a simulated GPU job. A real OS process that asks the simulated GPU how far
//! its work has come, holds the memory its workload's profile says for that point of the run,
//! and fails exactly as PyTorch does when an allocation does not fit.

use crate::backend::sim::protocol::{Connection, Reply, Request, Until};
use crate::workload::MemoryCurve;
use clap::Args;

/// Progress lines printed over a run, like a diffusion pipeline's denoising steps.
const STEPS: u32 = 50;

/// Runs the simulated job; returns its exit status.
pub fn run(args: &SynthArgs) -> i32 {
    match follow_profile(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("migbench synth: lost the simulated GPU: {e}");
            2
        }
    }
}

/// Takes a turn at each point of the profile where something happens (a step line, the start
/// and end of the peak, the crash, the end) and holds the memory the profile says there.
fn follow_profile(args: &SynthArgs) -> std::io::Result<i32> {
    let mut gpu = Connection::connect(&args.socket)?;
    let mut fraction = match gpu.ask(&Request::Hello {
        job: args.job,
        pid: std::process::id(),
    })? {
        Reply::Turn { fraction, .. } => fraction,
        Reply::Error { message } => {
            eprintln!("migbench synth: {message}");
            return Ok(2);
        }
        other => {
            eprintln!("migbench synth: unexpected reply {other:?}");
            return Ok(2);
        }
    };
    let curve = match &args.memory_trace {
        Some(json) => match serde_json::from_str(json) {
            Ok(trace) => MemoryCurve::Trace(trace),
            Err(e) => {
                eprintln!("migbench synth: --memory-trace: {e}");
                return Ok(2);
            }
        },
        None => MemoryCurve::Levels {
            constant: args.constant_gib,
            peak: args.peak_gib,
            peak_at: args.peak_at,
            peak_for: args.peak_for,
        },
    };
    let mut held = 0.0;
    let mut step = 0;
    loop {
        if args.fail_at.is_some_and(|f| fraction >= f) {
            eprintln!(
                "RuntimeError: simulated crash at {:.0}% of the run (sim.fail_at)",
                fraction * 100.0
            );
            return Ok(3);
        }
        if fraction >= 1.0 {
            println!("job {}: done", args.job);
            return Ok(0);
        }
        let want = curve.at(fraction);
        if want != held {
            if !gpu.allocate(want)? {
                return Ok(1);
            }
            held = want;
        }
        let now_step = (fraction * f64::from(STEPS)) as u32;
        if now_step > step {
            step = now_step;
            println!("step {step}/{STEPS}: {held:.2} GiB held");
        }
        // The next point of the profile where something happens.
        let next_step = f64::from(step + 1) / f64::from(STEPS);
        let next = [curve.next_change(fraction), args.fail_at, Some(next_step)]
            .into_iter()
            .flatten()
            .filter(|&f| f > fraction)
            .fold(1.0_f64, f64::min);
        fraction = gpu.wait(Until::Fraction { fraction: next }, 0)?.fraction;
    }
}

/// `migbench synth`'s arguments: the profile of one simulated job (hidden: migbench starts it).
#[derive(Debug, Args)]
pub struct SynthArgs {
    #[arg(long)]
    pub socket: std::path::PathBuf,
    #[arg(long)]
    pub job: u64,
    #[arg(long)]
    pub constant_gib: f64,
    #[arg(long)]
    pub peak_gib: f64,
    #[arg(long)]
    pub peak_at: f64,
    #[arg(long)]
    pub peak_for: f64,
    /// Crash with exit status 3 at this fraction of the run.
    #[arg(long)]
    pub fail_at: Option<f64>,
    /// A measured memory trace, `[[fraction, GiB], ...]` as JSON, replayed instead of the
    /// constant and peak levels.
    #[arg(long)]
    pub memory_trace: Option<String>,
}
