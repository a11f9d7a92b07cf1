//! What Linux's /proc says about processes: their group, state, command line and environment.
//! migbench reads it to count a job's child processes as the job's, to tell its own MPS daemons
//! from anyone else's, and to find the jobs a crashed run left running.

use std::path::PathBuf;

/// The PIDs of every process now.
pub fn pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// From /proc/PID/stat: the state letter and the process group.
struct Stat {
    state: char,
    group: u32,
}

fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name in parentheses may hold spaces and parentheses itself: fields follow the last ')'.
    let mut fields = text[text.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let group = fields.nth(1)?.parse().ok()?;
    Some(Stat { state, group })
}

/// The process group of `pid`.
pub fn process_group(pid: u32) -> Option<u32> {
    stat(pid).map(|s| s.group)
}

/// Whether `pid` runs: it exists and is not a zombie waiting to be reaped.
pub fn is_running(pid: u32) -> bool {
    stat(pid).is_some_and(|s| s.state != 'Z')
}

/// The running processes of process group `group`.
pub fn group_members(group: u32) -> Vec<u32> {
    pids()
        .into_iter()
        .filter(|&pid| stat(pid).is_some_and(|s| s.group == group && s.state != 'Z'))
        .collect()
}

/// The command line of `pid`, as it was started.
pub fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// The program name of `pid` (its `comm`), or `?`.
pub fn name(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// `Some(value)` of variable `var` in the environment `pid` started with (`Some(None)` when it
/// was not set), or None when the environment cannot be read (another user's process).
pub fn env_var(pid: u32, var: &str) -> Option<Option<PathBuf>> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{var}=");
    Some(
        env.split(|b| *b == 0)
            .filter_map(|kv| std::str::from_utf8(kv).ok())
            .find_map(|kv| kv.strip_prefix(prefix.as_str()))
            .map(PathBuf::from),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn a_group_state_and_command_line_are_read() {
        // A child in a group of its own, and a grandchild that stays in that group.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 5 & echo $!; wait"])
            .stdout(std::process::Stdio::piped())
            .env("MIGBENCH_PROCFS_TEST", "/some/dir")
            .process_group(0)
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let grandchild: u32 = line.trim().parse().unwrap();
        let leader = child.id();
        assert_eq!(process_group(leader), Some(leader));
        assert_eq!(process_group(grandchild), Some(leader));
        assert_ne!(process_group(std::process::id()), Some(leader));
        let mut members = group_members(leader);
        members.sort_unstable();
        assert_eq!(members, vec![leader, grandchild]);
        // The shell prints the PID as soon as it has forked, maybe before the child has
        // exec'd `sleep`: until then the child's command line is still the shell's.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while cmdline(grandchild).unwrap() != ["sleep", "5"] && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(cmdline(grandchild).unwrap(), vec!["sleep", "5"]);
        assert_eq!(
            env_var(grandchild, "MIGBENCH_PROCFS_TEST"),
            Some(Some(PathBuf::from("/some/dir")))
        );
        assert_eq!(env_var(grandchild, "MIGBENCH_NOT_SET"), Some(None));
        assert!(is_running(grandchild));
        // SAFETY: signals the group this test created.
        unsafe { libc::kill(-(leader as i32), libc::SIGKILL) };
        child.wait().unwrap();
        assert!(!is_running(leader), "reaped");
    }
}
