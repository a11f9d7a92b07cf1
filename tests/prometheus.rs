//! `run --metrics-listen` and `report --openmetrics` against the real Prometheus tools: a
//! Prometheus server (Debian's `prometheus`) scrapes a simulated run, paced to last long enough,
//! and its HTTP API must hold the job VRAM series; `promtool check metrics` must pass on both the
//! endpoint's and the report's output.
//!
//! Needs `prometheus` and `promtool` on the PATH (`.ci/run` installs them). Without them the
//! tests say so and pass, unless `MIGBENCH_REQUIRE_PROMETHEUS` is set, as CI sets it.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, Daemon};

/// True when the tools are there; panics when they are not but are required.
fn tools(names: &[&'static str]) -> bool {
    let missing = common::missing(names);
    let why_not = if missing.is_empty() {
        String::new()
    } else {
        format!("{missing:?} not installed")
    };
    common::can_run(
        "MIGBENCH_REQUIRE_PROMETHEUS",
        &why_not,
        "apt-get install prometheus",
    )
}

/// The migbench metric names the Grafana dashboard queries, those of `report --openmetrics`
/// (`migbench_report_...`) or the others (the live endpoint's).
fn dashboard_names(report: bool) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/migbench.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut names: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().clone())
        .flat_map(|t| {
            t["expr"]
                .as_str()
                .unwrap()
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("migbench_"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|n| n.starts_with("migbench_report_") == report)
        .collect();
    names.sort();
    names.dedup();
    assert!(!names.is_empty());
    names
}

/// A GET over plain HTTP/1.0: the body, when the status is 200.
fn get(addr: &str, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    (head.split(' ').nth(1) == Some("200")).then(|| body.to_string())
}

fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two TI2V-5B jobs on a 2 × 3g.40gb H100, paced to about 5 simulated seconds per real second
/// (a job takes 410 simulated seconds there).
fn scenario(dir: &Path) -> std::path::PathBuf {
    let file = dir.join("metrics.toml");
    std::fs::write(
        &file,
        "[scenario]\nname = \"metrics\"\n[gpu]\nmodel = \"h100-80gb\"\n\n[[variants]]\nname = \"mig-2x3g\"\nmode = \"mig\"\nlayout = [\"3g.40gb\", \"3g.40gb\"]\njobs = [{ workload = \"ti2v-5b\", count = 2 }]\n",
    )
    .unwrap();
    file
}

#[test]
fn prometheus_scrapes_a_simulated_run() {
    if !tools(&["prometheus", "promtool"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let scenario = scenario(dir.path());
    // Port 0: the run says on stderr where it listens.
    let mut run = Command::new(env!("CARGO_BIN_EXE_migbench"));
    run.args(["run", "--sim", "--quiet", "--pace", "5"])
        .args(["--metrics-listen", "127.0.0.1:0", "--out"])
        .arg(dir.path().join("results"))
        .arg(&scenario)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut run = Daemon::spawn("migbench run", run);
    let stderr = run.child.stderr.take().unwrap();
    let mut stderr = BufReader::new(stderr);
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    // The rest of its stderr is read on, so that the run never writes to a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let endpoint = common::metrics_endpoint(&line);

    // The endpoint itself, in the Prometheus text format promtool reads.
    let deadline = Instant::now() + Duration::from_secs(120);
    let text = loop {
        let text = get(&endpoint, "/metrics").expect("the endpoint answers");
        if text.contains("migbench_job_memory_used_bytes{") {
            break text;
        }
        assert!(Instant::now() < deadline, "no job memory series:\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    };
    promtool_check(&text);
    assert!(text.contains("GPU_I_PROFILE=\"3g.40gb\""), "{text}");
    for name in dashboard_names(false) {
        assert!(
            text.contains(&format!("\n{name}{{")) || text.contains(&format!("\n{name} ")),
            "the dashboard queries {name}:\n{text}"
        );
    }
    assert!(text.contains("# TYPE migbench_mig_instance_memory_total_bytes gauge"));

    let web = format!("127.0.0.1:{}", free_port());
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: migbench\n    static_configs:\n      - targets: ['{endpoint}']\n"
        ),
    )
    .unwrap();
    let mut prometheus = Command::new("prometheus");
    prometheus
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={web}"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.path().join("prometheus.log")).unwrap(),
        ));
    let _prometheus = Daemon::spawn("prometheus", prometheus);

    // Prometheus' HTTP API: the job series, labelled as the endpoint labels them.
    let query = "/api/v1/query?query=migbench_job_memory_used_bytes";
    let deadline = Instant::now() + Duration::from_secs(180);
    let series = loop {
        if let Some(body) = get(&web, query) {
            let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
            let result = reply["data"]["result"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if !result.is_empty() {
                break result;
            }
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never stored the job series; its log:\n{}",
            std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let first = &series[0];
    let metric = &first["metric"];
    assert_eq!(metric["job"], "migbench", "the scrape's own label: {first}");
    assert!(
        metric.get("exported_job").is_none(),
        "no label clashes: {first}"
    );
    let index = metric["job_index"].as_str();
    assert!(index == Some("0") || index == Some("1"), "{first}");
    assert!(
        metric["mig_instance"]
            .as_str()
            .unwrap()
            .starts_with("3g.40gb@"),
        "{first}"
    );
    assert_eq!(metric["variant"], "mig-2x3g", "{first}");
    assert_eq!(metric["workload"], "ti2v-5b", "{first}");
    assert_eq!(metric["GPU_I_PROFILE"], "3g.40gb", "{first}");
    assert!(
        metric["UUID"].as_str().unwrap().starts_with("GPU-"),
        "{first}"
    );
    // A TI2V-5B job holds 21 to 33 GiB on the simulator (workload ti2v-5b), inside its 40 GB
    // instance.
    let bytes: f64 = first["value"][1].as_str().unwrap().parse().unwrap();
    let gib = bytes / (1u64 << 30) as f64;
    assert!(
        (0.0..=40.0).contains(&gib) && gib > 0.0,
        "{gib} GiB: {first}"
    );
}

#[test]
fn the_report_writes_openmetrics_that_promtool_accepts() {
    if !tools(&["promtool"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let status = Command::new(env!("CARGO_BIN_EXE_migbench"))
        .args(["run", "--sim", "--quiet", "--out"])
        .arg(&results)
        .arg("scenarios/h100-3x-ti2v.toml")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let file = dir.path().join("migbench.prom");
    let status = Command::new(env!("CARGO_BIN_EXE_migbench"))
        .arg("report")
        .arg(&results)
        .arg("--out")
        .arg(dir.path().join("report"))
        .arg("--openmetrics")
        .arg(&file)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&file).unwrap();
    promtool_check(&text);
    assert!(text.ends_with("# EOF\n"), "{text}");
    for name in dashboard_names(true) {
        assert!(
            text.contains(&format!("\n{name}{{")),
            "the dashboard queries {name}:\n{text}"
        );
    }
    // The README's figures of this scenario: 242 s a video one after another, 3 OOM-free jobs.
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("migbench_report_time_per_unit_seconds{")
                && l.contains("variant=\"full-sequential\"")
        })
        .unwrap_or_else(|| panic!("{text}"));
    let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((value - 242.0).abs() < 0.5, "{line}");
    assert!(
        text.contains("migbench_report_jobs{scenario=\"h100-3x-ti2v\",variant=\"mps-together\",mode=\"mps\",gpu_model=\"h100-80gb\",backend=\"sim\",outcome=\"oom\"} 1"),
        "{text}"
    );
    // Nothing was left beside it (the temporary file is renamed into place).
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
}
