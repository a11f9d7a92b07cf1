//! Container workloads with real podman on the stand-in GPU (tests/common/fake_driver.rs): each
//! job a `podman run` pinned to its MIG device through a CDI spec (written for the stand-in by
//! `stand_in_gpu --cdi` after every nvidia-smi call, as NVIDIA's toolkit writes one for a GPU),
//! its VRAM attributed through the container's cgroup, an OOM read from its log, and no
//! container of migbench's left after a run, a SIGTERM, or kill -9 and `restore`.
//!
//! podman's state is private to each test: CONTAINERS_CONF and CONTAINERS_STORAGE_CONF point at
//! files in its temporary directory (runc, cgroupfs, vfs storage there). The CDI spec goes to
//! /var/run/cdi (podman 4.3 reads no other directory), one file per test naming only its own
//! stand-in GPU's UUIDs, removed at the end. Without podman and runc the tests say "skipped",
//! unless MIGBENCH_REQUIRE_PODMAN is set, as .ci/run sets it.
//!
//! The stand-in job runs with `--pid=host` (the workload's `engine_options`): the stand-in NVML
//! reads the PID the job writes for itself, which must be the host's, as a real driver reports.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

mod common;
use common::fake_driver::{nvidia_tool, FakeDriver};

/// A private podman: its configuration, storage and CDI spec, all removed on drop.
struct Podman {
    dir: tempfile::TempDir,
    cdi_spec: PathBuf,
}

fn podman_available() -> bool {
    let missing = common::missing(&["podman", "runc", "tar", "ldd"]);
    common::can_run(
        "MIGBENCH_REQUIRE_PODMAN",
        &if missing.is_empty() {
            String::new()
        } else {
            format!("{} not installed", missing.join(" and "))
        },
        "apt-get install podman runc",
    )
}

impl Podman {
    fn new() -> Podman {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        for d in ["root", "run", "tmp"] {
            std::fs::create_dir_all(p.join(d)).unwrap();
        }
        std::fs::write(
            p.join("containers.conf"),
            format!(
                "[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = \"cgroupfs\"\n\
                 runtime = \"runc\"\nevents_logger = \"file\"\ntmp_dir = \"{}\"\n",
                p.join("tmp").display()
            ),
        )
        .unwrap();
        std::fs::write(
            p.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
                p.join("root").display(),
                p.join("run").display()
            ),
        )
        .unwrap();
        std::fs::create_dir_all("/var/run/cdi").unwrap();
        let cdi_spec = PathBuf::from(format!(
            "/var/run/cdi/migbench-test-{}-{}.json",
            std::process::id(),
            p.file_name().unwrap().to_string_lossy()
        ));
        Podman { dir, cdi_spec }
    }

    /// A second spec of this test's, not there until a run writes it.
    fn new_spec(&self) -> PathBuf {
        self.cdi_spec.with_extension("new.json")
    }

    fn env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("CONTAINERS_CONF", self.dir.path().join("containers.conf")),
            (
                "CONTAINERS_STORAGE_CONF",
                self.dir.path().join("storage.conf"),
            ),
        ]
    }

    fn podman(&self, args: &[&str]) -> Output {
        Command::new("podman")
            .args(args)
            .envs(self.env())
            .output()
            .unwrap()
    }

    /// Every container this podman has, by name.
    fn containers(&self) -> Vec<String> {
        let out = self.podman(&["ps", "--all", "--format", "{{.Names}}"]);
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(String::from)
            .collect()
    }

    /// An image holding the stand-in job at /job with the libraries it loads.
    fn import_job_image(&self, job: &Path) -> String {
        let root = self.dir.path().join("rootfs");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::copy(job, root.join("job")).unwrap();
        let ldd = Command::new("ldd").arg(job).output().unwrap();
        for line in String::from_utf8_lossy(&ldd.stdout).lines() {
            let lib = line
                .split("=>")
                .last()
                .and_then(|l| l.split_whitespace().next())
                .filter(|l| l.starts_with('/'));
            if let Some(lib) = lib {
                let to = root.join(lib.trim_start_matches('/'));
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                std::fs::copy(lib, to).unwrap();
            }
        }
        let tar = self.dir.path().join("rootfs.tar");
        let out = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let image = "localhost/migbench-stand-in-job:test";
        let out = self.podman(&["import", tar.to_str().unwrap(), image]);
        assert!(out.status.success(), "podman import: {}", stderr(&out));
        image.to_string()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.podman(&["rm", "--all", "--force"]);
        let _ = std::fs::remove_file(&self.cdi_spec);
        let _ = std::fs::remove_file(self.new_spec());
    }
}

/// The stand-in GPU with podman: nvidia-smi, as migbench runs it, rewrites the CDI spec after
/// every call, so the spec names the MIG devices of the moment.
fn setup() -> Option<(FakeDriver, Podman, String)> {
    setup_with(true)
}

/// The stand-in GPU with podman; unless `fresh_cdi`, its CDI spec is written once, before the
/// run, as NVIDIA's toolkit writes it when it is installed or the machine boots.
fn setup_with(fresh_cdi: bool) -> Option<(FakeDriver, Podman, String)> {
    if !podman_available() {
        return None;
    }
    let gpu = FakeDriver::h100()?;
    let podman = Podman::new();
    if fresh_cdi {
        let wrapper = gpu.dir.path().join("bin/nvidia-smi");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{calls}'\n'{smi}' \"$@\"\nrc=$?\n'{cdi}' --cdi '{dir}' '{spec}' >&2\nexit $rc\n",
                calls = gpu.gpu_dir().join("calls.log").display(),
                smi = nvidia_tool("nvidia-smi").display(),
                cdi = gpu.examples.join("stand_in_gpu").display(),
                dir = gpu.gpu_dir().display(),
                spec = podman.cdi_spec.display(),
            ),
        )
        .unwrap();
    }
    let out = Command::new(gpu.examples.join("stand_in_gpu"))
        .arg("--cdi")
        .arg(gpu.gpu_dir())
        .arg(&podman.cdi_spec)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let image = podman.import_job_image(Path::new(&gpu.job()));
    Some((gpu, podman, image))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// An image no engine has, nor can pull: there is no registry at localhost.
const NO_SUCH_IMAGE: &str = "localhost/migbench-no-such-image:test";

fn scenario(gpu: &FakeDriver, image: &str, variants: &str) -> PathBuf {
    let workload = |name: &str, image: &str, args: &str, peak: u32, timeout: u32| {
        format!(
            r#"
[workloads.{name}]
name = "{name}"
title = "the stand-in job in a container"
kind = "batch"
unit = "job"
image = "{image}"
command = ["/job", {args}]
engine_options = ["--pid=host"]
timeout_s = {timeout}
memory = {{ constant_gib = 4, peak_gib = {peak}, source = "its arguments" }}
sim = {{ alpha = 1.0, peak_at = 0.4, peak_for = 0.2, source = "its arguments" }}
"#
        )
    };
    let text = format!(
        r#"
[scenario]
name = "containers"
engine = "podman"

[gpu]
model = "h100-80gb"
{}{}{}{}{}{variants}"#,
        workload(
            "probe",
            image,
            r#""--gib", "4", "--peak-gib", "6", "--seconds", "2""#,
            6,
            120
        ),
        workload(
            "greedy",
            image,
            r#""--gib", "4", "--seconds", "1", "--exceed""#,
            6,
            120
        ),
        workload("long", image, r#""--gib", "4", "--seconds", "60""#, 4, 120),
        workload("overdue", image, r#""--gib", "4", "--seconds", "60""#, 4, 3),
        workload("missing", NO_SUCH_IMAGE, r#""--gib", "4""#, 4, 120),
    );
    let path = gpu.dir.path().join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `migbench run --quiet EXTRA... --out OUT SCENARIO` on the stand-in GPU with this podman; the
/// caller adds what else its run needs.
fn migbench_run(
    gpu: &FakeDriver,
    podman: &Podman,
    path: &Path,
    extra: &[&str],
) -> assert_cmd::Command {
    let mut cmd = gpu.migbench();
    cmd.envs(podman.env())
        .args(["run", "--quiet"])
        .args(extra)
        .arg("--out")
        .arg(gpu.out())
        .arg(path);
    cmd
}

/// One `[[variants]]` table: named after its `mode`, with `layout` and `jobs` (TOML).
fn variant(mode: &str, layout: &str, jobs: &str) -> String {
    let name = mode.replace('+', "-");
    format!(
        "\n[[variants]]\nname = \"{name}\"\nmode = \"{mode}\"\nlayout = {layout}\njobs = {jobs}\n"
    )
}

/// No container of this podman is left, and the GPU is as found.
fn assert_clean(gpu: &FakeDriver, podman: &Podman) {
    assert_eq!(podman.containers(), Vec::<String>::new());
    gpu.assert_as_found();
}

struct Job {
    workload: String,
    outcome: String,
    uuid: String,
    peak: Option<f64>,
    reason: String,
}

fn jobs(run: &Path) -> Vec<Job> {
    let df = common::table(run, "jobs");
    let s = |c: &str| common::strs(&df, c);
    let peak = common::floats(&df, "vram_peak_gib");
    let (workload, outcome, uuid, reason) =
        (s("workload"), s("outcome"), s("instance_uuid"), s("reason"));
    (0..df.height())
        .map(|i| Job {
            workload: workload.get(i).unwrap().to_string(),
            outcome: outcome.get(i).unwrap().to_string(),
            uuid: uuid.get(i).unwrap_or("").to_string(),
            peak: peak.get(i),
            reason: reason.get(i).unwrap_or("").to_string(),
        })
        .collect()
}

/// The engine command line a `job_start` event records for its container.
fn container_argv(start: &serde_json::Value) -> Vec<&str> {
    start["container"]["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}

fn events(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn container_jobs_run_pinned_to_their_mig_devices_with_vram_and_oom_recorded() {
    let Some((gpu, podman, image)) = setup() else {
        return;
    };
    let path = scenario(
        &gpu,
        &image,
        r#"
[[variants]]
name = "mig"
mode = "mig"
layout = ["3g.40gb", "3g.40gb"]
jobs = [{ workload = "probe", count = 2 }, { workload = "greedy" }]

[[variants]]
name = "mps"
mode = "mps"
jobs = [{ workload = "probe" }]
"#,
    );
    let out = migbench_run(&gpu, &podman, &path, &["--sample-ms", "20"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let run = gpu.run_dir();
    let jobs = jobs(&run);
    assert_eq!(jobs.len(), 4);
    for j in jobs.iter().filter(|j| j.workload == "probe") {
        assert_eq!(j.outcome, "ok", "{}", j.reason);
        // NVML listed the container's process (not a child of podman's client): its memory
        // counts towards the job through the container's cgroup. 6 GiB at its peak.
        let peak = j.peak.expect("the container's VRAM attributed to its job");
        assert!((peak - 6.0).abs() < 0.01, "peak {peak}");
    }
    let greedy = jobs.iter().find(|j| j.workload == "greedy").unwrap();
    assert_eq!(greedy.outcome, "oom", "{}", greedy.reason);
    assert!(
        greedy.reason.contains("CUDA out of memory"),
        "{}",
        greedy.reason
    );

    // Each MIG container was given its device as a CDI device, and nothing else names it.
    let events = events(&run);
    let starts: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "job_start" && e["variant"] == "mig")
        .collect();
    assert_eq!(starts.len(), 3);
    for s in &starts {
        let argv = container_argv(s);
        let device = s["device"].as_str().unwrap();
        assert!(device.starts_with("MIG-"), "{device}");
        let at = argv.iter().position(|a| *a == "--device").unwrap();
        assert_eq!(argv[at + 1], format!("nvidia.com/gpu={device}"));
        assert!(!argv.iter().any(|a| a.starts_with("CUDA_VISIBLE_DEVICES")));
        assert_eq!(s["argv"][0], "podman");
        assert!(events
            .iter()
            .any(|e| e["event"] == "container_create" && e["name"] == s["container"]["name"]));
    }
    let mig_uuids: Vec<&str> = jobs
        .iter()
        .filter(|j| j.uuid.starts_with("MIG-"))
        .map(|j| j.uuid.as_str())
        .collect();
    assert_eq!(mig_uuids.len(), 3);
    // The MPS job's container got the daemon's pipe directory and the host's IPC.
    let mps = events
        .iter()
        .find(|e| e["event"] == "job_start" && e["variant"] == "mps")
        .unwrap();
    let argv = container_argv(mps);
    assert!(argv.contains(&"--ipc=host"), "{argv:?}");
    let pipe = argv
        .iter()
        .find_map(|a| a.strip_prefix("CUDA_MPS_PIPE_DIRECTORY="))
        .unwrap();
    assert!(
        argv.contains(&format!("{pipe}:{pipe}").as_str()),
        "{argv:?}"
    );

    assert_clean(&gpu, &podman);
}

/// Starts a run of one minute-long container job on a MIG device; returns it and its run
/// directory once the container runs.
fn start_long_run(gpu: &FakeDriver, podman: &Podman, image: &str) -> std::process::Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_migbench"));
    cmd.arg("run");
    start_long_run_with(gpu, podman, image, cmd)
}

/// [`start_long_run`] with `cmd`, a migbench with what else the run needs.
fn start_long_run_with(
    gpu: &FakeDriver,
    podman: &Podman,
    image: &str,
    mut cmd: Command,
) -> std::process::Child {
    let path = scenario(
        gpu,
        image,
        r#"
[[variants]]
name = "long"
mode = "mig"
layout = ["3g.40gb"]
jobs = [{ workload = "long" }]
"#,
    );
    let child = cmd
        .envs(gpu.env())
        .envs(podman.env())
        .args(["--quiet", "--out"])
        .arg(gpu.out())
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let procs = gpu.gpu_dir().join("procs");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_dir(&procs).map_or(0, |d| d.count()) < 1 {
        assert!(Instant::now() < deadline, "the container never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(podman.containers().len(), 1);
    child
}

#[test]
fn sigterm_stops_and_removes_the_containers() {
    let Some((gpu, podman, image)) = setup() else {
        return;
    };
    let mut run = start_long_run(&gpu, &podman, &image);
    // SAFETY: signals the migbench this test started.
    unsafe { libc::kill(run.id() as i32, libc::SIGTERM) };
    assert_eq!(run.wait().unwrap().code(), Some(130));
    assert_clean(&gpu, &podman);
    let jobs = jobs(&gpu.run_dir());
    assert_eq!(jobs[0].outcome, "interrupted");
}

#[test]
fn after_kill_9_restore_removes_the_containers_and_a_second_restore_does_nothing() {
    let Some((gpu, podman, image)) = setup() else {
        return;
    };
    let mut run = start_long_run(&gpu, &podman, &image);
    run.kill().unwrap();
    run.wait().unwrap();
    // The container outlives migbench, and holds its MIG device.
    let left = podman.containers();
    assert_eq!(left.len(), 1);
    assert!(left[0].starts_with("migbench-containers-"), "{left:?}");
    // The journal named it before it was created; restore finds it there even without the
    // events of older runs (`container_create`), taken out here.
    let run_dir = gpu.run_dir();
    assert_eq!(journaled_containers(&run_dir), (left.clone(), vec![]));
    let events_file = run_dir.join("events.jsonl");
    let kept: String = std::fs::read_to_string(&events_file)
        .unwrap()
        .lines()
        .filter(|l| !l.contains("\"container_create\""))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&events_file, kept).unwrap();

    let restore = || {
        let out = gpu
            .migbench()
            .envs(podman.env())
            .arg("restore")
            .arg(gpu.run_dir())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let said = restore();
    assert!(
        said.contains("stopped and removed 1 container(s)") && said.contains(&left[0]),
        "{said}"
    );
    assert_clean(&gpu, &podman);
    assert_eq!(journaled_containers(&run_dir), (left.clone(), left.clone()));

    let said = restore();
    assert!(said.contains("nothing to do"), "{said}");
    assert!(!said.contains("removed"), "{said}");
}

/// The shipped scenario whose servers are vLLM containers runs under --sim: each simulated
/// server stands for its container, whose engine command line the run records.
#[test]
fn a100_qwen3_containers_runs_under_sim_with_each_container_recorded() {
    let out = tempfile::tempdir().unwrap();
    let run = common::run_sim(
        "scenarios/a100-qwen3-containers.toml",
        out.path(),
        common::SAMPLE_EVERY_SECOND,
    );
    let jobs = jobs(&run);
    // 1 + 2 + 4 + 2 + 4 + 3 servers, every one served its load.
    assert_eq!(jobs.len(), 16);
    assert!(
        jobs.iter().all(|j| j.outcome == "ok"),
        "{:?}",
        jobs.iter()
            .map(|j| (&j.outcome, &j.reason))
            .collect::<Vec<_>>()
    );
    let events = events(&run);
    let starts: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "job_start")
        .collect();
    assert_eq!(starts.len(), 16);
    for s in &starts {
        let c = &s["container"];
        assert_eq!(c["simulated"], json!(true));
        assert_eq!(c["engine"], "podman");
        let argv = container_argv(s);
        let device = s["device"].as_str().unwrap();
        assert!(
            argv.contains(&format!("nvidia.com/gpu={device}").as_str()),
            "{argv:?}"
        );
        assert!(argv.contains(&"vllm/vllm-openai:v0.20.1"), "{argv:?}");
        // The port the server was given is published on 127.0.0.1, to the container's 8000.
        assert!(
            argv.iter()
                .any(|a| a.starts_with("127.0.0.1:") && a.ends_with(":8000") && !a.contains('{')),
            "{argv:?}"
        );
        let mps = s["variant"].as_str().unwrap().starts_with("mps");
        assert_eq!(argv.contains(&"--ipc=host"), mps, "{argv:?}");
    }
    // Nothing was created for real: no container event.
    assert!(!events.iter().any(|e| e["event"] == "container_create"));
}

#[test]
fn dry_run_prints_each_engines_command_lines() {
    let out = common::stdout_of(common::migbench().args([
        "run",
        "--dry-run",
        "scenarios/a100-qwen3-containers.toml",
    ]));
    let podman: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("podman run "))
        .collect();
    assert_eq!(podman.len(), 16, "{out}");
    assert!(
        out.contains("--device 'nvidia.com/gpu=<MIG UUID of GI 3 CI 0>'"),
        "{out}"
    );
    let mps = podman
        .iter()
        .find(|l| l.contains("migbench.variant=mps-2x4b"))
        .unwrap();
    let pipe = mps
        .split_whitespace()
        .find_map(|a| a.strip_prefix("CUDA_MPS_PIPE_DIRECTORY="))
        .unwrap();
    assert!(
        mps.contains(&format!("--ipc=host --volume {pipe}:{pipe} ")),
        "{mps}"
    );
    // Jobs outside MPS get a pipe directory no daemon can be in.
    let full = podman
        .iter()
        .find(|l| l.contains("migbench.variant=full-1x4b"))
        .unwrap();
    assert!(
        full.contains("CUDA_MPS_PIPE_DIRECTORY=/dev/null/") && !full.contains("--ipc=host"),
        "{full}"
    );
    assert!(podman.iter().all(|l| !l.contains("CUDA_VISIBLE_DEVICES")));

    let docker = common::stdout_of(common::migbench().args([
        "run",
        "--dry-run",
        "--engine",
        "docker",
        "scenarios/a100-qwen3-containers.toml",
    ]));
    assert!(docker.contains("docker run --name"), "{docker}");
    assert!(
        docker.contains("--gpus 'device=<MIG UUID of GI 3 CI 0>'"),
        "{docker}"
    );
    assert!(!docker.contains("podman run"));
}

/// A copy of the containers scenario with `from` replaced by `to`.
fn edited(dir: &Path, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string("scenarios/a100-qwen3-containers.toml").unwrap();
    assert!(text.contains(from), "{from}");
    let path = dir.join("edited.toml");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    path
}

#[test]
fn bad_container_input_exits_2_naming_what_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "engine = \"podman\"\n",
            "engine = \"containerd\"\n",
            "unknown variant `containerd`, expected `podman` or `docker`",
        ),
        (
            "engine = \"podman\"\n",
            "engine = \"apptainer\"\n",
            "apptainer is not an engine migbench drives (podman or docker): with --nv",
        ),
        (
            "image = \"vllm/vllm-openai:v0.20.1\"",
            "image = \"\"",
            "image must name an image",
        ),
        (
            "ports = [\"127.0.0.1:{port}:8000\"]",
            "ports = [\"8000\"]",
            "a port is HOST:CONTAINER",
        ),
        (
            "volumes = [\"migbench-hf-cache:/root/.cache/huggingface\"]",
            "volumes = [\"~/hf:/root/.cache/huggingface\"]",
            "SOURCE an absolute host path",
        ),
        (
            "image = \"vllm/vllm-openai:v0.20.1\"",
            "image = \"vllm/vllm-openai:v0.20.1\"\ngpu_request = \"gpus\"",
            "gpu_request = \"gpus\" is docker's --gpus",
        ),
    ];
    for (from, to, says) in cases {
        let path = edited(dir.path(), from, to);
        let out = common::migbench()
            .args(["run", "--dry-run"])
            .arg(&path)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{to}: {err}");
        assert!(err.contains(says), "{to}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // `{port}` is filled for servers only: a batch workload's is refused where it is written.
    let path = edited(
        dir.path(),
        "[workloads.qwen3-4b-vllm]",
        "[workloads.batch]\nname = \"batch\"\ntitle = \"t\"\nkind = \"batch\"\nunit = \"job\"\nimage = \"busybox\"\ncommand = [\"true\"]\nports = [\"{port}:80\"]\nmemory = { constant_gib = 1, peak_gib = 1, source = \"s\" }\nsim = { alpha = 1.0, peak_at = 0.0, peak_for = 0.0, source = \"s\" }\n\n[workloads.qwen3-4b-vllm]",
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let line = 1 + text
        .lines()
        .position(|l| l == "ports = [\"{port}:80\"]")
        .unwrap();
    let err = exits_2(common::migbench().arg("validate").arg(&path));
    assert!(
        err.contains(&format!("edited.toml:{line}:"))
            && err.contains("{port} is the port migbench picks for a server")
            && err.contains("a batch workload publishes fixed ports"),
        "{err}"
    );
    // --cdi-refresh writes a spec only where engines read specs.
    let err = exits_2(
        common::migbench()
            .args(["run", "--dry-run", "--cdi-refresh=/tmp/nvidia.yaml"])
            .arg("scenarios/a100-qwen3-containers.toml"),
    );
    assert!(
        err.contains(
            "--cdi-refresh /tmp/nvidia.yaml: the spec must be a .yaml, .yml or .json \
                      file directly in /etc/cdi or /var/run/cdi"
        ),
        "{err}"
    );
    // A key of containers on a host workload is placed in the file.
    let path = edited(
        dir.path(),
        "[workloads.qwen3-4b-vllm]",
        "[workloads.host]\nname = \"host\"\ntitle = \"t\"\nkind = \"batch\"\nunit = \"job\"\ncommand = [\"true\"]\nports = [\"1:2\"]\nmemory = { constant_gib = 1, peak_gib = 1, source = \"s\" }\nsim = { alpha = 1.0, peak_at = 0.0, peak_for = 0.0, source = \"s\" }\n\n[workloads.qwen3-4b-vllm]",
    );
    let err = exits_2(common::migbench().arg("validate").arg(&path));
    assert!(
        err.contains("edited.toml:") && err.contains("ports is for a container workload"),
        "{err}"
    );
}

/// Runs `cmd`, which must exit with status 2 without a panic: its standard error.
fn exits_2(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// `migbench run` of `scenario` on a machine whose PATH is `bin` alone and with no GPU: its
/// exit status and standard error.
fn run_without_gpu(dir: &Path, scenario: &Path) -> (Option<i32>, String) {
    let out = common::migbench()
        .env("PATH", dir.join("bin"))
        .env("MIGBENCH_NVML_LIB", dir.join("no-such-libnvidia-ml.so"))
        .args(["run", "--out"])
        .arg(dir.join("results"))
        .arg(scenario)
        .output()
        .unwrap();
    (out.status.code(), stderr(&out))
}

#[test]
fn an_engine_not_installed_or_a_port_taken_exits_2_before_the_gpu_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let path = edited(dir.path(), "engine = \"podman\"\n", "engine = \"docker\"\n");
    // No GPU here either: the engine is checked first.
    let (code, err) = run_without_gpu(dir.path(), &path);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("docker is not installed"), "{err}");

    let taken = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    std::fs::write(bin.join("podman"), "#!/bin/sh\nexit 0\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("podman"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = edited(
        dir.path(),
        "ports = [\"127.0.0.1:{port}:8000\"]",
        &format!("ports = [\"{port}:8000\"]"),
    );
    let (code, err) = run_without_gpu(dir.path(), &path);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&format!("host port {port}")), "{err}");
    assert!(
        !dir.path().join("results").exists(),
        "no run directory made"
    );
    drop(taken);
}

fn journal(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The containers the journal says were made, and those it says were cleared, by name.
fn journaled_containers(run: &Path) -> (Vec<String>, Vec<String>) {
    let names = |record: &str| {
        journal(run)
            .iter()
            .filter(|r| r["record"] == record && r["made"]["kind"] == "container")
            .map(|r| r["made"]["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    (names("made"), names("cleared"))
}

fn variant_status(run: &Path) -> Vec<String> {
    let df = common::table(run, "variants");
    common::strs(&df, "status")
        .into_iter()
        .map(|s| s.unwrap_or_default().to_string())
        .collect()
}

fn one_mig_probe() -> String {
    variant("mig", r#"["3g.40gb"]"#, r#"[{ workload = "probe" }]"#)
}

/// A spec written before the run names no MIG device of the layout migbench makes: without
/// --cdi-refresh the variant fails before any container is created, naming the device and the
/// command that fixes it, and the GPU is put back.
#[test]
fn a_cdi_spec_that_does_not_name_the_mig_device_fails_the_variant_before_its_jobs_start() {
    let Some((gpu, podman, image)) = setup_with(false) else {
        return;
    };
    let path = scenario(&gpu, &image, &one_mig_probe());
    let out = migbench_run(&gpu, &podman, &path, &[]).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no CDI spec in /etc/cdi or /var/run/cdi names nvidia.com/gpu=MIG-"),
        "{err}"
    );
    assert!(
        err.contains("run with --cdi-refresh")
            && err.contains(
                "nvidia-ctk cdi generate --output=/var/run/cdi/nvidia.yaml \
                 --device-name-strategy=index --device-name-strategy=uuid"
            ),
        "{err}"
    );
    let run = gpu.run_dir();
    assert_eq!(variant_status(&run), ["setup_failed"]);
    let jobs = jobs(&run);
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].outcome, "not_run");
    assert_eq!(journaled_containers(&run), (vec![], vec![]));
    assert!(!events(&run).iter().any(|e| e["event"] == "job_start"));
    assert_clean(&gpu, &podman);
}

/// A stand-in `nvidia-ctk` (the PATH to run it with, and the file it logs its arguments to):
/// `cdi generate --output=SPEC` writes the stand-in GPU's spec, as NVIDIA's writes a GPU's.
fn fake_nvidia_ctk(gpu: &FakeDriver) -> (String, PathBuf) {
    let bin = gpu.dir.path().join("ctk");
    std::fs::create_dir_all(&bin).unwrap();
    let calls = gpu.dir.path().join("ctk.log");
    std::fs::write(
        bin.join("nvidia-ctk"),
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{calls}'\nfor a in \"$@\"; do case $a in \
             --output=*) out=${{a#--output=}};; esac; done\nexec '{cdi}' --cdi '{dir}' \"$out\"\n",
            calls = calls.display(),
            cdi = gpu.examples.join("stand_in_gpu").display(),
            dir = gpu.gpu_dir().display(),
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        bin.join("nvidia-ctk"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let search = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (search, calls)
}

/// Runs `variants` with `--cdi-refresh=SPEC` and the stand-in `nvidia-ctk`, which must succeed:
/// the run directory, its jobs, and the file `nvidia-ctk` logs its calls to.
fn run_refreshing(
    gpu: &FakeDriver,
    podman: &Podman,
    image: &str,
    variants: &str,
    spec: &Path,
) -> (PathBuf, Vec<Job>, PathBuf) {
    let (search, calls) = fake_nvidia_ctk(gpu);
    let path = scenario(gpu, image, variants);
    let refresh = format!("--cdi-refresh={}", spec.display());
    let out = migbench_run(gpu, podman, &path, &[&refresh])
        .env("PATH", search)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let run = gpu.run_dir();
    let jobs = jobs(&run);
    (run, jobs, calls)
}

/// The `nvidia-ctk` command lines logged in `calls`.
fn ctk_calls(calls: &Path) -> Vec<String> {
    std::fs::read_to_string(calls)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// The journal's records of CDI specs: `made` or `cleared`, and whether the spec was there.
fn journaled_specs(run: &Path) -> Vec<(String, bool)> {
    journal(run)
        .iter()
        .filter(|r| r["made"]["kind"] == "cdi_spec")
        .map(|r| {
            let record = r["record"].as_str().unwrap().to_string();
            (record, r["made"]["existed"].as_bool().unwrap())
        })
        .collect()
}

/// With --cdi-refresh=SPEC, the spec is regenerated through `nvidia-ctk cdi generate` (here a
/// stand-in on the PATH that writes the stand-in GPU's spec, as NVIDIA's writes a GPU's) once
/// the layout is made, the job runs on its MIG device, and once the GPU is put back the spec
/// is generated again: it names the GPU and no MIG device that is gone.
#[test]
fn cdi_refresh_regenerates_the_spec_after_the_layout_and_again_after_the_run() {
    let Some((gpu, podman, image)) = setup_with(false) else {
        return;
    };
    let (run, jobs, calls) =
        run_refreshing(&gpu, &podman, &image, &one_mig_probe(), &podman.cdi_spec);
    assert_eq!(jobs[0].outcome, "ok", "{}", jobs[0].reason);
    assert!(jobs[0].uuid.starts_with("MIG-"), "{}", jobs[0].uuid);
    // Twice: after the layout, and after the GPU was put back.
    let generate = format!(
        "cdi generate --output={} --device-name-strategy=index --device-name-strategy=uuid",
        podman.cdi_spec.display()
    );
    assert_eq!(ctk_calls(&calls), [generate.clone(), generate]);
    let spec = std::fs::read_to_string(&podman.cdi_spec).unwrap();
    assert!(!spec.contains(&jobs[0].uuid), "{spec}");
    let gpu_uuid = gpu.state()["uuid"].as_str().unwrap().to_string();
    assert!(spec.contains(&gpu_uuid), "{spec}");
    // The journal says the spec was made and put back, and closes.
    assert_eq!(
        journaled_specs(&run),
        [("made".to_string(), true), ("cleared".to_string(), true)]
    );
    assert_eq!(journal(&run).last().unwrap()["record"], "closed");
    assert_clean(&gpu, &podman);
}

/// A spec that was not there before the run is regenerated for each variant that needs it,
/// journaled once, and removed once the GPU is put back: nothing is left in /var/run/cdi.
#[test]
fn cdi_refresh_of_a_new_spec_for_two_variants_removes_it_after_the_run() {
    let Some((gpu, podman, image)) = setup_with(false) else {
        return;
    };
    let variants = one_mig_probe()
        + &variant(
            "mig",
            r#"["3g.40gb", "3g.40gb"]"#,
            r#"[{ workload = "probe", count = 2 }]"#,
        )
        .replace("name = \"mig\"", "name = \"mig-2\"");
    let spec = podman.new_spec();
    let (run, jobs, calls) = run_refreshing(&gpu, &podman, &image, &variants, &spec);
    assert_eq!(jobs.len(), 3);
    assert!(jobs.iter().all(|j| j.outcome == "ok"));
    // Once after each variant's layout; none at the end, where it is removed.
    assert_eq!(ctk_calls(&calls).len(), 2);
    assert!(!spec.exists());
    assert_eq!(
        journaled_specs(&run),
        [("made".to_string(), false), ("cleared".to_string(), false)]
    );
    assert_clean(&gpu, &podman);
}

/// A container job past its timeout is stopped and removed by its engine and recorded
/// `timeout`; the journal says its container was made and cleared.
#[test]
fn a_container_job_past_its_timeout_is_stopped_removed_and_recorded_timeout() {
    let Some((gpu, podman, image)) = setup() else {
        return;
    };
    let path = scenario(
        &gpu,
        &image,
        &variant("mig", r#"["3g.40gb"]"#, r#"[{ workload = "overdue" }]"#),
    );
    let out = migbench_run(&gpu, &podman, &path, &[]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let run = gpu.run_dir();
    let jobs = jobs(&run);
    assert_eq!(jobs[0].outcome, "timeout", "{}", jobs[0].reason);
    assert!(
        jobs[0].reason.contains("timeout of 3 s"),
        "{}",
        jobs[0].reason
    );
    let (made, cleared) = journaled_containers(&run);
    assert_eq!(made.len(), 1);
    assert_eq!(made, cleared);
    assert_clean(&gpu, &podman);
}

/// A panic while a container job runs (MIGBENCH_FAULT=panic:job-started) leaves no container:
/// the unwinding orchestrator stops and removes it, and the run's end clears it in the journal,
/// which closes.
#[test]
fn a_panic_while_a_container_runs_leaves_no_container() {
    let Some((gpu, podman, image)) = setup() else {
        return;
    };
    let path = scenario(&gpu, &image, &one_mig_probe());
    let out = migbench_run(&gpu, &podman, &path, &[])
        .env("MIGBENCH_FAULT", "panic:job-started")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("injected panic (job-started"), "{err}");
    assert_clean(&gpu, &podman);
    let run = gpu.run_dir();
    let (made, cleared) = journaled_containers(&run);
    assert_eq!(made.len(), 1);
    assert_eq!(made, cleared);
    assert_eq!(journal(&run).last().unwrap()["record"], "closed");
}

/// mig+mps with containers: each instance's daemon pipe directory is mounted at its own path in
/// the containers of its jobs, with the host's IPC, and their VRAM is attributed.
#[test]
fn mig_mps_containers_get_their_instances_pipe_directory_and_host_ipc() {
    let Some((gpu, podman, image)) = setup() else {
        return;
    };
    let path = scenario(
        &gpu,
        &image,
        &variant(
            "mig+mps",
            r#"["3g.40gb", "3g.40gb"]"#,
            r#"[{ workload = "probe", count = 2 }]"#,
        ),
    );
    let out = migbench_run(&gpu, &podman, &path, &["--sample-ms", "20"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let run = gpu.run_dir();
    for j in jobs(&run) {
        assert_eq!(j.outcome, "ok", "{}", j.reason);
        let peak = j.peak.expect("the container's VRAM attributed to its job");
        assert!((peak - 6.0).abs() < 0.01, "peak {peak}");
    }
    let events = events(&run);
    let mut pipes = Vec::new();
    let mut devices = Vec::new();
    for s in events.iter().filter(|e| e["event"] == "job_start") {
        let argv = container_argv(s);
        assert!(argv.contains(&"--ipc=host"), "{argv:?}");
        let pipe = argv
            .iter()
            .find_map(|a| a.strip_prefix("CUDA_MPS_PIPE_DIRECTORY="))
            .unwrap()
            .to_string();
        assert!(
            argv.contains(&format!("{pipe}:{pipe}").as_str()),
            "{argv:?}"
        );
        pipes.push(pipe);
        devices.push(s["device"].as_str().unwrap().to_string());
    }
    // One job on each instance, each with its own daemon's pipes.
    assert_eq!(pipes.len(), 2);
    assert_ne!(pipes[0], pipes[1]);
    assert_ne!(devices[0], devices[1]);
    assert!(devices.iter().all(|d| d.starts_with("MIG-")), "{devices:?}");
    assert_clean(&gpu, &podman);
}

/// An image the engine cannot find (nor pull) fails its job, recorded `failed` with the
/// engine's own last line: only the engine knows, when it runs, which images it has or can
/// pull. The variant's other jobs run.
#[test]
fn an_image_the_engine_cannot_find_fails_its_job_with_the_engines_words() {
    let Some((gpu, podman, image)) = setup() else {
        return;
    };
    let path = scenario(
        &gpu,
        &image,
        &variant(
            "mig",
            r#"["3g.40gb", "3g.40gb"]"#,
            r#"[{ workload = "missing" }, { workload = "probe" }]"#,
        ),
    );
    let out = migbench_run(&gpu, &podman, &path, &[]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let run = gpu.run_dir();
    let jobs = jobs(&run);
    let missing = jobs.iter().find(|j| j.workload == "missing").unwrap();
    assert_eq!(missing.outcome, "failed");
    assert!(
        missing.reason.starts_with("Error: ") && missing.reason.contains(NO_SUCH_IMAGE),
        "{}",
        missing.reason
    );
    let probe = jobs.iter().find(|j| j.workload == "probe").unwrap();
    assert_eq!(probe.outcome, "ok", "{}", probe.reason);
    assert_clean(&gpu, &podman);
}

/// After kill -9 of a run that regenerated the CDI spec, `restore` removes the container, puts
/// the GPU back, and only then generates the spec again, which then names no MIG device.
#[test]
fn after_kill_9_restore_regenerates_the_refreshed_cdi_spec_once_the_gpu_is_back() {
    let Some((gpu, podman, image)) = setup_with(false) else {
        return;
    };
    let (search, calls) = fake_nvidia_ctk(&gpu);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_migbench"));
    cmd.env("PATH", &search)
        .arg("run")
        .arg(format!("--cdi-refresh={}", podman.cdi_spec.display()));
    let mut run = start_long_run_with(&gpu, &podman, &image, cmd);
    run.kill().unwrap();
    run.wait().unwrap();
    assert_eq!(ctk_calls(&calls).len(), 1);
    let mig = |spec: &str| spec.contains("\"MIG-");
    assert!(mig(&std::fs::read_to_string(&podman.cdi_spec).unwrap()));

    let out = gpu
        .migbench()
        .envs(podman.env())
        .env("PATH", &search)
        .arg("restore")
        .arg(gpu.run_dir())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_clean(&gpu, &podman);
    assert_eq!(ctk_calls(&calls).len(), 2);
    assert!(!mig(&std::fs::read_to_string(&podman.cdi_spec).unwrap()));
    assert_eq!(
        journaled_specs(&gpu.run_dir()),
        [("made".to_string(), true), ("cleared".to_string(), true)]
    );
}
