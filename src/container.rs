//! Jobs in containers: the second launcher of a job (docs/containers.md).
//!
//! A workload with an `image` runs as `ENGINE run ... IMAGE COMMAND...`: the engine's client
//! process is the job's process (its own process group, its output the job's log, its exit status
//! the container's), and the container is pinned to the job's device the way the engine expects
//! (CDI `--device nvidia.com/gpu=UUID`, or `--gpus device=UUID` with docker's NVIDIA runtime), so
//! that inside it the device is CUDA device 0. Every container carries the run and job in its name
//! and labels, is named in `events.jsonl` before it is created, and is stopped and removed when
//! its job ends, whatever ended it; `migbench restore` removes any a crashed run left.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backend::Device;
use crate::error::{Error, Result};

/// The label every migbench container carries: the run (its directory's name).
pub const RUN_LABEL: &str = "migbench.run";

/// Seconds a container gets to stop after SIGTERM before the engine kills it.
pub const STOP_GRACE_S: u32 = 3;

/// A container engine.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, schemars::JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    #[default]
    Podman,
    Docker,
}

/// Apptainer (Singularity) gets its own answer: it is asked for on HPC sites, and it is not an
/// engine migbench drives (docs/containers.md, "Apptainer").
impl<'de> Deserialize<'de> for Engine {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let name = String::deserialize(d)?;
        match name.as_str() {
            "podman" => Ok(Engine::Podman),
            "docker" => Ok(Engine::Docker),
            "apptainer" | "singularity" => Err(D::Error::custom(format!(
                "{name} is not an engine migbench drives (podman or docker): with --nv it passes \
                 the host's CUDA_VISIBLE_DEVICES (a MIG UUID) into the container unchanged instead \
                 of giving the device as device 0; run it as a host workload without `image`, \
                 command = [\"{name}\", \"exec\", \"--nv\", \"IMAGE.sif\", ...], for programs that \
                 accept a MIG UUID (docs/containers.md, Apptainer)"
            ))),
            other => Err(D::Error::unknown_variant(other, &["podman", "docker"])),
        }
    }
}

impl Engine {
    /// The engine's program.
    pub fn program(self) -> &'static str {
        match self {
            Engine::Podman => "podman",
            Engine::Docker => "docker",
        }
    }

    /// How the engine takes a GPU unless told otherwise: podman reads CDI specs; docker's
    /// `--gpus` goes through the NVIDIA container runtime (docker 25+ also reads CDI).
    pub fn default_gpu_request(self) -> GpuRequest {
        match self {
            Engine::Podman => GpuRequest::Cdi,
            Engine::Docker => GpuRequest::Gpus,
        }
    }
}

/// How a container is given its device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GpuRequest {
    /// `--device nvidia.com/gpu=UUID`: a CDI device, as NVIDIA's container toolkit names it
    /// (`nvidia-ctk cdi generate`); podman, and docker 25+ with CDI enabled.
    Cdi,
    /// `--gpus device=UUID`: docker with the NVIDIA container runtime.
    Gpus,
}

/// What a job's container is: its engine, image, and what the engine is told.
#[derive(Debug, Clone)]
pub struct ContainerSpec<'a> {
    pub engine: Engine,
    pub gpu_request: GpuRequest,
    pub image: &'a str,
    /// The image's arguments.
    pub command: &'a [String],
    pub ports: &'a [String],
    pub volumes: &'a [String],
    /// Engine options put before the image, as given.
    pub options: &'a [String],
}

/// Who a container belongs to: its run (the run directory's name), variant, repetition, job.
#[derive(Debug, Clone)]
pub struct Owner<'a> {
    pub run: &'a str,
    pub variant: &'a str,
    pub repetition: u32,
    pub job: usize,
    pub workload: &'a str,
}

impl Owner<'_> {
    /// The container's name: `migbench-RUN-VARIANT-rN-jN`, in the characters engines allow.
    pub fn name(&self) -> String {
        let raw = format!(
            "migbench-{}-{}-r{}-j{}",
            self.run, self.variant, self.repetition, self.job
        );
        raw.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }

    fn labels(&self) -> Vec<(String, String)> {
        vec![
            (RUN_LABEL.into(), self.run.into()),
            ("migbench.variant".into(), self.variant.into()),
            ("migbench.repetition".into(), self.repetition.to_string()),
            ("migbench.job".into(), self.job.to_string()),
            ("migbench.workload".into(), self.workload.into()),
        ]
    }
}

/// The environment a container is given, from a launch's: everything but
/// `CUDA_VISIBLE_DEVICES`, which names the device on the host; in the container the engine
/// exposes the device alone, as device 0.
fn container_env(env: &[(String, String)]) -> Vec<(String, String)> {
    env.iter()
        .filter(|(k, _)| k != "CUDA_VISIBLE_DEVICES")
        .cloned()
        .collect()
}

/// The engine's command line that runs `spec` for `owner` on `device` with environment `env`
/// (the launch's: the device's and the workload's, ports filled in). `cidfile`: where the
/// engine writes the container's ID (for VRAM attribution).
pub fn run_argv(
    spec: &ContainerSpec,
    owner: &Owner,
    device: &Device,
    env: &[(String, String)],
    cidfile: Option<&Path>,
) -> Vec<String> {
    let mut argv: Vec<String> = vec![spec.engine.program().into(), "run".into()];
    argv.extend(["--name".into(), owner.name()]);
    for (k, v) in owner.labels() {
        argv.extend(["--label".into(), format!("{k}={v}")]);
    }
    if let Some(file) = cidfile {
        argv.extend(["--cidfile".into(), file.display().to_string()]);
    }
    match spec.gpu_request {
        GpuRequest::Cdi => {
            argv.extend(["--device".into(), format!("nvidia.com/gpu={}", device.uuid)])
        }
        GpuRequest::Gpus => argv.extend(["--gpus".into(), format!("device={}", device.uuid)]),
    }
    // An MPS client reaches its daemon through the pipe directory and shared memory: the
    // directory at the same path, the host's IPC namespace (NVIDIA's MPS documentation).
    if let Some(pipe) = &device.mps_pipe_dir {
        let p = pipe.display();
        argv.extend(["--ipc=host".into(), "--volume".into(), format!("{p}:{p}")]);
    }
    for (k, v) in container_env(env) {
        argv.extend(["--env".into(), format!("{k}={v}")]);
    }
    for p in spec.ports {
        argv.extend(["--publish".into(), p.clone()]);
    }
    for v in spec.volumes {
        argv.extend(["--volume".into(), v.clone()]);
    }
    argv.extend(spec.options.iter().cloned());
    argv.push(spec.image.into());
    argv.extend(spec.command.iter().cloned());
    argv
}

/// A job's container, once its engine client was started: what stops and removes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Container {
    pub engine: Engine,
    pub name: String,
    /// Where the engine writes the container's ID.
    #[serde(skip)]
    pub cidfile: Option<PathBuf>,
}

/// Runs the engine with `args`, never through a shell; its output, or why it failed in the
/// engine's own words.
fn engine(engine: Engine, args: &[&str]) -> std::result::Result<String, String> {
    let out = engine_output(engine, args)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// How long an engine command may take beyond the container's own stop grace: an engine that
/// hangs must not hang a teardown or a `restore`.
const ENGINE_LIMIT: Duration = Duration::from_secs(30);

/// Runs the engine with `args` within [`ENGINE_LIMIT`] (plus the stop grace for `stop`).
fn engine_output(engine: Engine, args: &[&str]) -> std::result::Result<Output, String> {
    let limit = ENGINE_LIMIT + Duration::from_secs(u64::from(STOP_GRACE_S));
    crate::tool::output_within(Command::new(engine.program()).args(args), limit)
        .map_err(|e| format!("cannot run {}: {e}", engine.program()))?
        .ok_or_else(|| {
            format!(
                "`{} {}` did not return within {} s and was killed",
                engine.program(),
                args.join(" "),
                limit.as_secs()
            )
        })
}

impl Container {
    /// What the journal records of it, in run `run`.
    pub fn made(&self, run: &str) -> crate::journal::Made {
        crate::journal::Made::Container {
            engine: self.engine,
            name: self.name.clone(),
            run: run.to_string(),
        }
    }

    /// Asks the engine to stop the container: SIGTERM, SIGKILL after [`STOP_GRACE_S`].
    pub fn stop(&self) {
        let _ = engine(
            self.engine,
            &["stop", "--time", &STOP_GRACE_S.to_string(), &self.name],
        );
    }

    /// The container's own log (what it wrote, as the engine kept it); empty if none.
    pub fn logs(&self) -> String {
        match engine_output(self.engine, &["logs", &self.name]) {
            Ok(o) if o.status.success() => {
                let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&o.stderr));
                text
            }
            _ => String::new(),
        }
    }

    /// Stops (if running) and removes the container; Ok when it is gone.
    pub fn remove(&self) -> std::result::Result<(), String> {
        match engine(self.engine, &["rm", "--force", &self.name]) {
            Ok(_) => Ok(()),
            Err(e) if e.contains("no such container") || e.contains("No such container") => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The containers of run `run` that `engine` still has (running or not), by name.
pub fn of_run(engine: Engine, run: &str) -> std::result::Result<Vec<String>, String> {
    let filter = format!("label={RUN_LABEL}={run}");
    let out = self::engine(
        engine,
        &["ps", "--all", "--filter", &filter, "--format", "{{.Names}}"],
    )?;
    Ok(out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

/// The engine's program on the PATH, if installed.
pub fn installed(engine: Engine) -> Option<PathBuf> {
    on_path(engine.program())
}

/// `program` on the PATH, if there.
pub fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// The container ID a process's cgroup names, if it runs in a container: podman's
/// `libpod-ID.scope` or `libpod-ID`, docker's `docker-ID.scope` or `/docker/ID`.
pub fn container_id_in_cgroup(cgroup: &str) -> Option<String> {
    for line in cgroup.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap_or(line);
        for part in path.split('/').rev() {
            let id = part
                .strip_prefix("libpod-")
                .or_else(|| part.strip_prefix("docker-"))
                .unwrap_or(part);
            let id = id.strip_suffix(".scope").unwrap_or(id);
            if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Some(id.to_ascii_lowercase());
            }
        }
    }
    None
}

/// The container ID a process runs in, from `/proc/PID/cgroup`.
pub fn container_of(pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    container_id_in_cgroup(&text)
}

/// Checks a `ports` entry (`[IP:]HOST:CONTAINER[/PROTO]`, HOST a number or `{port}`); the host
/// port when fixed.
pub fn parse_port(entry: &str) -> std::result::Result<Option<u16>, String> {
    let (spec, proto) = match entry.rsplit_once('/') {
        Some((s, p)) => (s, Some(p)),
        None => (entry, None),
    };
    if let Some(p) = proto {
        if !matches!(p, "tcp" | "udp" | "sctp") {
            return Err(format!(
                "'{entry}': the protocol is tcp, udp or sctp, found '{p}'"
            ));
        }
    }
    let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
    let number = |s: &str| s.parse::<u16>().ok().filter(|&p| p > 0);
    let usage = || {
        format!(
            "'{entry}': a port is HOST:CONTAINER or IP:HOST:CONTAINER (HOST a port number or \
             {{port}}, the port migbench picks for a server; CONTAINER a port number)"
        )
    };
    match parts.as_slice() {
        [container, host, ..] => {
            number(container).ok_or_else(usage)?;
            if *host == crate::workload::Workload::PORT {
                Ok(None)
            } else {
                number(host).map(Some).ok_or_else(usage)
            }
        }
        _ => Err(usage()),
    }
}

/// Checks a `volumes` entry: `SOURCE:TARGET[:OPTIONS]`, SOURCE an absolute host path or a named
/// volume, TARGET an absolute path in the container.
pub fn check_volume(entry: &str) -> std::result::Result<(), String> {
    let mut parts = entry.splitn(3, ':');
    let (source, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let named = !source.is_empty()
        && source
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !(source.starts_with('/') || named) || !target.starts_with('/') {
        return Err(format!(
            "'{entry}': a volume is SOURCE:TARGET[:OPTIONS], SOURCE an absolute host path (no ~ \
             or relative path: the engine would not expand it) or a volume name, TARGET an \
             absolute path in the container"
        ));
    }
    Ok(())
}

/// Whether a fixed host port can be bound now (nothing listens on it).
pub fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("0.0.0.0", port)).is_ok()
}

/// Refuses, as bad input, a run whose containers cannot start: an engine not installed, or a
/// fixed host port already taken. Checked before anything changes on the GPU.
pub fn preflight(needs: &[(Engine, Vec<u16>, String)]) -> Result<()> {
    for (engine, ports, workload) in needs {
        if installed(*engine).is_none() {
            return Err(Error::Input(format!(
                "workload {workload} runs in a container with {0}, but {0} is not installed (not \
                 on the PATH); install it, or choose the engine with `engine = \"podman\"` or \
                 `\"docker\"` in the workload or the scenario, or `run --engine`",
                engine.program()
            )));
        }
        for &p in ports {
            if !port_free(p) {
                return Err(Error::Input(format!(
                    "workload {workload}: host port {p} of its `ports` is already taken on this \
                     machine; free it or publish another"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_lines_name_podman_and_docker_containers() {
        let id = "a".repeat(64);
        for line in [
            format!("0::/machine.slice/libpod-{id}.scope"),
            format!("0::/libpod_parent/libpod-{id}"),
            format!("0::/system.slice/docker-{id}.scope"),
            format!("12:memory:/docker/{id}"),
        ] {
            assert_eq!(container_id_in_cgroup(&line), Some(id.clone()), "{line}");
        }
        assert_eq!(
            container_id_in_cgroup("0::/user.slice/session-1.scope"),
            None
        );
        assert_eq!(container_id_in_cgroup("0::/libpod-abc.scope"), None);
    }

    #[test]
    fn ports_and_volumes_are_checked() {
        assert_eq!(parse_port("{port}:8000"), Ok(None));
        assert_eq!(parse_port("127.0.0.1:{port}:8000"), Ok(None));
        assert_eq!(parse_port("8001:8000/tcp"), Ok(Some(8001)));
        for bad in ["8000", "x:8000", "8001:0", "8001:8000/xyz", "{port}:{port}"] {
            assert!(parse_port(bad).is_err(), "{bad}");
        }
        assert!(check_volume("/srv/hf:/root/.cache/huggingface:ro").is_ok());
        assert!(check_volume("hf-cache:/root/.cache/huggingface").is_ok());
        for bad in ["~/hf:/root", "hf:relative", "/only", "./x:/y"] {
            assert!(check_volume(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_keep_to_the_characters_engines_allow() {
        let owner = Owner {
            run: "s-20260101T000000Z",
            variant: "mig 2x",
            repetition: 1,
            job: 3,
            workload: "w",
        };
        assert_eq!(owner.name(), "migbench-s-20260101T000000Z-mig_2x-r1-j3");
    }
}
