//! `migbench slurm submit` against a real Slurm: a one-node cluster (munged, slurmctld and slurmd
//! with a minimal slurm.conf, all in a temporary directory, on ports of their own) runs two
//! shipped scenarios on the simulator, each as a job array on a node with the scenario's GPU
//! model as a feature, and the report job that depends on them; the report must hold both runs
//! with their host and Slurm job IDs. The daemons are stopped however the test ends.
//!
//! Needs Debian's `slurm-wlm` and `munge` (`.ci/run` installs them) and root (slurmd runs jobs as
//! their user). Without them the test says so and passes, unless `MIGBENCH_REQUIRE_SLURM` is set,
//! as CI sets it.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, Daemon};

const TOOLS: &[&str] = &[
    "munged",
    "slurmctld",
    "slurmd",
    "sbatch",
    "squeue",
    "scontrol",
];

fn available() -> bool {
    let missing = common::missing(TOOLS);
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let why_not = match (missing.is_empty(), root) {
        (true, true) => String::new(),
        _ => format!("missing {missing:?}, root: {root}"),
    };
    common::can_run(
        "MIGBENCH_REQUIRE_SLURM",
        &why_not,
        "apt-get install slurm-wlm munge, as root",
    )
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

/// A Slurm client command against the test's cluster.
fn slurm(dir: &Path, program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env("SLURM_CONF", dir.join("slurm.conf"))
        .output()
        .unwrap()
}

fn logs(dir: &Path) -> String {
    ["munged.log", "slurmctld.log", "slurmd.log"]
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            format!(
                "--- {f}\n{}\n",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )
        })
        .collect()
}

/// The cluster's daemons, stopped in reverse order when dropped (a passing test or a panic).
struct Cluster(Vec<Daemon>);

impl Drop for Cluster {
    fn drop(&mut self) {
        while let Some(daemon) = self.0.pop() {
            drop(daemon);
        }
    }
}

fn start_cluster(dir: &Path) -> Cluster {
    use std::os::unix::fs::PermissionsExt;
    // munged refuses a key or socket directory others can read or write.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let key = dir.join("munge.key");
    std::fs::write(
        &key,
        (0..1024)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    for d in ["state", "spool"] {
        std::fs::create_dir(dir.join(d)).unwrap();
    }
    let at = |f: &str| dir.join(f).display().to_string();
    let mut munged = Command::new("munged");
    munged
        .args(["--foreground", "--force"])
        .arg(format!("--socket={}", at("munge.socket")))
        .arg(format!("--key-file={}", at("munge.key")))
        .arg(format!("--pid-file={}", at("munged.pid")))
        .arg(format!("--log-file={}", at("munged.log")))
        .arg(format!("--seed-file={}", at("munged.seed")))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut daemons = Cluster(vec![Daemon::spawn("munged", munged)]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.join("munge.socket").exists() {
        assert!(
            Instant::now() < deadline,
            "munged never made its socket\n{}",
            logs(dir)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let host = hostname();
    let conf = format!(
        "ClusterName=migbench\nSlurmctldHost={host}(127.0.0.1)\nSlurmUser=root\nSlurmdUser=root\n\
         SlurmctldPort={}\nSlurmdPort={}\nStateSaveLocation={}\nSlurmdSpoolDir={}\n\
         SlurmctldPidFile={}\nSlurmdPidFile={}\nSlurmctldLogFile={}\nSlurmdLogFile={}\n\
         AuthType=auth/munge\nAuthInfo=socket={}\nCredType=cred/munge\n\
         ProctrackType=proctrack/pgid\nTaskPlugin=task/none\nSelectType=select/cons_tres\n\
         SelectTypeParameters=CR_Core\nJobAcctGatherType=jobacct_gather/none\n\
         AccountingStorageType=accounting_storage/none\nReturnToService=2\nMpiDefault=none\n\
         NodeName={host} NodeAddr=127.0.0.1 CPUs=2 RealMemory=1000 Feature=h100-80gb,b200-180gb State=UNKNOWN\n\
         PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP\n",
        free_port(),
        free_port(),
        at("state"),
        at("spool"),
        at("slurmctld.pid"),
        at("slurmd.pid"),
        at("slurmctld.log"),
        at("slurmd.log"),
        at("munge.socket"),
    );
    std::fs::write(dir.join("slurm.conf"), conf).unwrap();
    for (name, program, extra) in [
        ("slurmctld", "slurmctld", vec![]),
        ("slurmd", "slurmd", vec!["-N".to_string(), host.clone()]),
    ] {
        let mut command = Command::new(program);
        command
            .arg("-D")
            .arg("-f")
            .arg(dir.join("slurm.conf"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        daemons.0.push(Daemon::spawn(name, command));
    }
    // Ready when the node is idle.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = slurm(dir, "sinfo", &["-h", "-o", "%t"]);
        if String::from_utf8_lossy(&out.stdout).trim() == "idle" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the node never came up\n{}",
            logs(dir)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    daemons
}

#[test]
fn two_scenarios_run_as_slurm_jobs_and_the_dependent_job_reports_them() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let _cluster = start_cluster(dir.path());
    let results = dir.path().join("results");
    let submit = Command::new(env!("CARGO_BIN_EXE_migbench"))
        .args(["slurm", "submit", "--sim", "--constraint", "{gpu}"])
        .args(["scenarios/h100-3x-ti2v.toml", "scenarios/b200-ti2v.toml"])
        .arg("--results")
        .arg(&results)
        .env("SLURM_CONF", dir.path().join("slurm.conf"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&submit.stdout).into_owned();
    assert!(
        submit.status.success(),
        "{said}{}\n{}",
        String::from_utf8_lossy(&submit.stderr),
        logs(dir.path())
    );
    // Two GPU models: two arrays, then the report job.
    let ids: Vec<String> = said
        .lines()
        .filter_map(|l| {
            l.strip_prefix("submitted job array ")
                .or(l.strip_prefix("submitted job "))
        })
        .map(|l| l.split(':').next().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3, "{said}");

    // Wait until the queue is empty (squeue), then ask each job how it ended (scontrol keeps
    // finished jobs for MinJobAge, 300 s by default; sacct needs slurmdbd, which this one-node
    // cluster does not run).
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let out = slurm(dir.path(), "squeue", &["-h", "-o", "%i %T"]);
        let queue = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && queue.trim().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "jobs still queued:\n{queue}\n{}",
            logs(dir.path())
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    for id in &ids {
        let out = slurm(dir.path(), "scontrol", &["show", "job", id]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("JobState=COMPLETED"), "job {id}:\n{text}");
    }
    let night = std::fs::read_dir(&results)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .expect("a night directory");
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(night.join("report/report.json")).unwrap_or_else(|e| {
            panic!(
                "no report ({e}); the report job said:\n{}",
                std::fs::read_to_string(night.join(format!("slurm/report-{}.out", ids[2])))
                    .unwrap_or_default()
            )
        }),
    )
    .unwrap();
    let runs = report["runs"].as_array().unwrap();
    let mut found: Vec<(String, String, String)> = runs
        .iter()
        .map(|r| {
            (
                r["scenario"].as_str().unwrap().to_string(),
                r["host"].as_str().unwrap().to_string(),
                r["slurm_job"].as_str().unwrap_or("none").to_string(),
            )
        })
        .collect();
    found.sort();
    let host = hostname();
    assert_eq!(
        found,
        vec![
            ("b200-ti2v".into(), host.clone(), format!("{}_0", ids[1])),
            ("h100-3x-ti2v".into(), host, format!("{}_0", ids[0])),
        ],
        "{report}"
    );
    // The history of the night and its OpenMetrics file came from the same job.
    assert!(night.join("history/history.html").is_file());
    assert!(night.join("report/migbench.prom").is_file());
}
