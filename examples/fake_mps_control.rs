//! A stand-in `nvidia-cuda-mps-control` for tests. Link or copy it under that name (migbench finds
//! MPS processes by program name) and point `MIGBENCH_MPS_CONTROL` at it.
//!
//! Like the real one it works in the pipe directory of `CUDA_MPS_PIPE_DIRECTORY`, which it
//! requires (a test must never touch the machine's default /tmp/nvidia-mps):
//! - `-d` starts a control daemon in the background and returns at once; the daemon creates the
//!   `control` pipe a moment later, when it is ready, and logs to `$CUDA_MPS_LOG_DIRECTORY/control.log`;
//! - without `-d` it sends the commands on its stdin to the daemon (`quit`,
//!   `set_default_active_thread_percentage 50`, ...), failing when no daemon runs;
//! - the daemon starts an `nvidia-cuda-mps-server` when its first client connects, and on `quit`
//!   stops it and exits; the server takes a moment to go, as a real one does.

use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(pipe) = std::env::var_os("CUDA_MPS_PIPE_DIRECTORY").map(PathBuf::from) else {
        eprintln!("stand-in MPS control: CUDA_MPS_PIPE_DIRECTORY must be set");
        std::process::exit(1);
    };
    let log =
        std::env::var_os("CUDA_MPS_LOG_DIRECTORY").map_or_else(|| pipe.clone(), PathBuf::from);
    match args.get(1).map(String::as_str) {
        Some("-d") => start(&args[0], &pipe),
        Some("--daemon") => daemon(&args[0], &pipe, &log),
        Some("--server") => server(&pipe),
        _ => client(&pipe),
    }
}

// The daemon outlives this process, as the real one does; its new parent reaps it.
#[allow(clippy::zombie_processes)]
fn start(program: &str, pipe: &Path) {
    if pipe.join("control").exists() {
        eprintln!("An instance of this daemon is already running");
        std::process::exit(1);
    }
    Command::new(program)
        .arg("--daemon")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("the daemon starts");
}

fn log_line(log: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log.join("control.log"))
        .unwrap();
    let _ = writeln!(f, "[{:?}] {text}", std::time::SystemTime::now());
}

fn daemon(program: &str, pipe: &Path, log: &Path) {
    std::fs::create_dir_all(log).unwrap();
    log_line(log, "Startup");
    // Ready a moment after `-d` returned, so callers must wait for the pipe.
    std::thread::sleep(Duration::from_millis(150));
    std::fs::write(pipe.join("control"), "").unwrap();
    let mut seen = 0;
    let mut server: Option<std::process::Child> = None;
    loop {
        let commands = std::fs::read_to_string(pipe.join("commands")).unwrap_or_default();
        let lines: Vec<&str> = commands.lines().collect();
        for line in &lines[seen..] {
            if line.starts_with("client ") {
                log_line(log, &format!("{line} connected"));
                if server.is_none() {
                    server = Some(
                        Command::new(program)
                            .arg0("nvidia-cuda-mps-server")
                            .arg("--server")
                            .stdin(Stdio::null())
                            .spawn()
                            .expect("the server starts"),
                    );
                    log_line(log, "Server started");
                }
            } else {
                log_line(log, &format!("CMD: {line}"));
            }
            if *line == "quit" {
                let _ = std::fs::remove_file(pipe.join("control"));
                if let Some(mut s) = server.take() {
                    let _ = s.wait();
                    log_line(log, "Server exited");
                }
                log_line(log, "Shutdown");
                return;
            }
        }
        seen = lines.len();
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn server(pipe: &Path) {
    while pipe.join("control").exists() {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
}

fn client(pipe: &Path) {
    if !pipe.join("control").exists() {
        println!("Cannot find MPS control daemon process");
        std::process::exit(1);
    }
    let mut commands = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(pipe.join("commands"))
        .unwrap();
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        if !line.trim().is_empty() {
            writeln!(commands, "{}", line.trim()).unwrap();
        }
    }
}
