//! Running the command lines of [`super::commands`]: argv only (no shell), stdin written for the
//! MPS control language, and failures turned into messages that say which step failed and why.

use std::io::Write;
use std::process::{Command, Stdio};

use super::commands::{CommandLine, MPS_CONTROL, NVIDIA_SMI};
use super::smi_parse;
use crate::error::{Error, Result};

/// The program to run for a command name: `$MIGBENCH_NVIDIA_SMI` and `$MIGBENCH_MPS_CONTROL`
/// replace the tools on PATH, for a wrapper that runs the real tool through sudo, or for tests
/// that stand in for the driver. A replacement decides about permissions itself, so migbench's
/// own root check applies only to the real tools.
fn program(name: &str) -> (String, bool) {
    let var = match name {
        NVIDIA_SMI => "MIGBENCH_NVIDIA_SMI",
        MPS_CONTROL => "MIGBENCH_MPS_CONTROL",
        _ => return (name.to_string(), false),
    };
    match std::env::var(var) {
        Ok(replacement) => (replacement, true),
        Err(_) => (name.to_string(), false),
    }
}

/// Whether this process can make privileged changes.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Runs `line` and returns what it printed (stdout, then stderr).
pub fn run(line: &CommandLine) -> Result<String> {
    let (program, replaced) = program(&line.argv[0]);
    run_as(line, &program, replaced || is_root(), false)
}

/// What nvidia-smi says when the driver still holds an instance (NVML_ERROR_IN_USE).
const IN_USE: &str = "In use by another client";

/// The waits between tries of a teardown step the driver refuses as in use: 0.1 s doubling,
/// 6.3 s in all.
const IN_USE_BACKOFF_MS: [u64; 6] = [100, 200, 400, 800, 1600, 3200];

/// Runs a teardown step (`-dci`, `-dgi`), trying again while the driver answers "In use by
/// another client": for a moment after the last job ends the driver still holds the instance
/// while handles close (DCGM#95, #276: with no process listed). If it never frees, the error
/// names the processes that hold an NVIDIA device file, or says that none does.
pub fn run_while_in_use(line: &CommandLine) -> Result<String> {
    let mut waits = IN_USE_BACKOFF_MS.iter();
    loop {
        match run(line) {
            Err(e) if e.to_string().contains(IN_USE) => match waits.next() {
                Some(ms) => std::thread::sleep(std::time::Duration::from_millis(*ms)),
                None => {
                    let total: u64 = IN_USE_BACKOFF_MS.iter().sum();
                    return Err(Error::Harness(format!(
                        "{e} (still in use after {:.1} s of tries; {})",
                        total as f64 / 1000.0,
                        holders_of_nvidia_devices()
                    )));
                }
            },
            other => return other,
        }
    }
}

/// The processes with an NVIDIA device file (/dev/nvidia*) open, as "pid N (name)", or that no
/// readable process has one.
fn holders_of_nvidia_devices() -> String {
    let holders: Vec<String> = crate::procfs::pids()
        .into_iter()
        .filter(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
                fds.flatten().any(|fd| {
                    std::fs::read_link(fd.path())
                        .is_ok_and(|target| target.starts_with("/dev/nvidia"))
                })
            })
        })
        .map(|pid| format!("pid {pid} ({})", crate::procfs::name(pid)))
        .collect();
    if holders.is_empty() {
        "no process this user can see holds /dev/nvidia*".to_string()
    } else {
        format!("/dev/nvidia* held by {}", holders.join(", "))
    }
}

/// Runs a listing such as `nvidia-smi mig -lgi`. nvidia-smi exits non-zero when there is nothing
/// to list (`No GPU instances found: Not Found`, NVML's NOT_FOUND): that is an empty list, which
/// the parsers read as such, not a failure.
pub fn list(line: &CommandLine) -> Result<String> {
    let (program, replaced) = program(&line.argv[0]);
    run_as(line, &program, replaced || is_root(), true)
}

/// Runs `line` with `program` in place of its argv[0], allowed privileged steps or not.
fn run_as(line: &CommandLine, program: &str, allowed: bool, listing: bool) -> Result<String> {
    if line.privileged && !allowed {
        return Err(Error::Input(format!(
            "{} needs root, and migbench runs as an ordinary user: run it with sudo, or keep \
             to variants without MIG (the step was `{line}`)",
            line.purpose
        )));
    }
    let name = &line.argv[0];
    let mut cmd = Command::new(program);
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
    let said = text.trim();
    let denied = said.contains("Insufficient Permissions") || said.contains("No permission");
    let nothing_listed = listing && smi_parse::lists_nothing(said);
    if (out.status.success() || nothing_listed) && !denied {
        return Ok(text);
    }
    if denied {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for nvidia-smi that prints `output`, copies its stdin and argv to files, and
    /// exits with `status`. A child shell writes it, so that no thread of this test process
    /// ever holds it open for writing: another test's fork would inherit that, and running the
    /// script would then fail with "Text file busy".
    fn fake(dir: &std::path::Path, output: &str, status: i32) -> String {
        let path = dir.join("fake-tool");
        let script = format!(
            "#!/bin/sh\necho \"$@\" > {0}/argv\ncat > {0}/stdin\nprintf '%s\\n' '{output}'\nexit {status}\n",
            dir.display()
        );
        let mut writer = Command::new("sh")
            .args(["-c", "cat > \"$0\" && chmod 755 \"$0\""])
            .arg(&path)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        writer
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        assert!(writer.wait().unwrap().success());
        path.display().to_string()
    }

    fn line(argv: &[&str], stdin: Option<&str>, privileged: bool) -> CommandLine {
        CommandLine {
            env: vec![("CUDA_MPS_PIPE_DIRECTORY".into(), "/p".into())],
            argv: argv.iter().map(|a| a.to_string()).collect(),
            stdin: stdin.map(str::to_string),
            purpose: "create GPU instance 3g.40gb at slice 4".into(),
            privileged,
        }
    }

    #[test]
    fn a_privileged_step_without_root_names_the_step_and_runs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let tool = fake(dir.path(), "ok", 0);
        let l = line(&["nvidia-smi", "mig", "-i", "0", "-cgi", "9:4"], None, true);
        let err = run_as(&l, &tool, false, false).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let said = err.to_string();
        assert!(
            said.contains("create GPU instance 3g.40gb at slice 4 needs root"),
            "{said}"
        );
        assert!(said.contains("nvidia-smi mig -i 0 -cgi 9:4`"), "{said}");
        assert!(!dir.path().join("argv").exists(), "nothing ran");
    }

    #[test]
    fn the_drivers_permission_refusal_is_reported_as_needing_root() {
        let dir = tempfile::tempdir().unwrap();
        let tool = fake(
            dir.path(),
            "Unable to create a GPU instance on GPU  0 using profile 9: Insufficient Permissions",
            4,
        );
        let l = line(&["nvidia-smi", "mig", "-i", "0", "-cgi", "9:4"], None, true);
        let err = run_as(&l, &tool, true, false).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("needs root"), "{err}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("argv"))
                .unwrap()
                .trim(),
            "mig -i 0 -cgi 9:4"
        );
    }

    #[test]
    fn a_failed_step_says_what_the_tool_said() {
        let dir = tempfile::tempdir().unwrap();
        let tool = fake(
            dir.path(),
            "Unable to create a GPU instance on GPU  0 using profile 9: Insufficient Resources",
            2,
        );
        let l = line(&["nvidia-smi", "mig", "-i", "0", "-cgi", "9:4"], None, true);
        let err = run_as(&l, &tool, true, false).unwrap_err();
        assert_eq!(err.exit_code(), 1);
        let said = err.to_string();
        assert!(
            said.contains("cannot create GPU instance 3g.40gb at slice 4"),
            "{said}"
        );
        assert!(said.contains("Insufficient Resources"), "{said}");
    }

    #[test]
    fn an_empty_listing_is_not_a_failure_but_other_errors_still_are() {
        let dir = tempfile::tempdir().unwrap();
        let l = line(&["nvidia-smi", "mig", "-i", "0", "-lgi"], None, false);
        let empty = fake(dir.path(), "No GPU instances found: Not Found", 6);
        let text = run_as(&l, &empty, false, true).unwrap();
        assert_eq!(smi_parse::parse_gpu_instances(&text).unwrap(), vec![]);
        // The same exit status for anything else is an error, and so is it outside a listing.
        assert!(run_as(&l, &empty, false, false).is_err());
        let broken = fake(
            dir.path(),
            "Failed to initialize NVML: Driver/library version mismatch",
            6,
        );
        let err = run_as(&l, &broken, false, true).unwrap_err();
        assert!(err.to_string().contains("version mismatch"), "{err}");
    }

    #[test]
    fn mps_commands_go_to_the_control_tools_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let tool = fake(dir.path(), "", 0);
        let l = line(&["nvidia-cuda-mps-control"], Some("quit"), false);
        run_as(&l, &tool, false, false).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("stdin")).unwrap(),
            "quit\n"
        );
    }
}
