//! Running the command lines of [`super::commands`]: argv only (no shell), stdin written for the
//! MPS control language, and failures turned into messages that say which step failed and why.

use std::io::Write;
use std::process::{Command, Stdio};

use super::commands::{CommandLine, MPS_CONTROL, NVIDIA_SMI};
use crate::error::{Error, Result};

/// The program to run for a command name: `$MIGBENCH_NVIDIA_SMI` and `$MIGBENCH_MPS_CONTROL`
/// replace the tools on PATH (tests use them to replay recorded outputs).
fn program(name: &str) -> String {
    let var = match name {
        NVIDIA_SMI => "MIGBENCH_NVIDIA_SMI",
        MPS_CONTROL => "MIGBENCH_MPS_CONTROL",
        _ => return name.to_string(),
    };
    std::env::var(var).unwrap_or_else(|_| name.to_string())
}

/// Whether this process can make privileged changes.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Runs `line` and returns what it printed (stdout, then stderr).
pub fn run(line: &CommandLine) -> Result<String> {
    if line.privileged && !is_root() {
        return Err(Error::Input(format!(
            "{} needs root, and migbench runs as an ordinary user: run it with sudo, or keep \
             to variants without MIG (the step was `{line}`)",
            line.purpose
        )));
    }
    let name = &line.argv[0];
    let mut cmd = Command::new(program(name));
    cmd.args(&line.argv[1..])
        .envs(line.env.iter().map(|(k, v)| (k, v)))
        .stdin(if line.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        Error::Harness(format!("cannot {}: cannot start {name}: {e}", line.purpose))
    })?;
    if let (Some(input), Some(mut stdin)) = (&line.stdin, child.stdin.take()) {
        // The MPS control tool reads one command per line.
        let _ = writeln!(stdin, "{input}");
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Harness(format!("cannot {}: {e}", line.purpose)))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && !text.contains("Insufficient Permissions") {
        return Ok(text);
    }
    let said = text.trim();
    if said.contains("Insufficient Permissions") || said.contains("No permission") {
        return Err(Error::Input(format!(
            "{} needs root: `{line}` said: {said}",
            line.purpose
        )));
    }
    Err(Error::Harness(format!(
        "cannot {}: `{line}` failed ({}): {said}",
        line.purpose, out.status
    )))
}
