//! scripts/nightly.sh on the simulator: the first night accepts itself, a night without a
//! regression becomes the baseline, a regressing night fails and leaves the baseline alone.

use std::path::Path;
use std::process::{Command, Output};

/// One TI2V-5B video in variant `v`: alone on the whole GPU, or three at once under MPS (where
/// one runs out of memory: a regression the simulator makes every time).
fn scenario(dir: &Path, together: bool) -> std::path::PathBuf {
    let variant = if together {
        "mode = \"mps\"\njobs = [{ workload = \"ti2v-5b\", count = 3 }]"
    } else {
        "mode = \"full\"\njobs = [{ workload = \"ti2v-5b\" }]"
    };
    let file = dir.join(if together { "worse.toml" } else { "good.toml" });
    std::fs::write(
        &file,
        format!(
            "[scenario]\nname = \"nightly\"\n[gpu]\nmodel = \"h100-80gb\"\n\n[[variants]]\nname = \"v\"\n{variant}\n"
        ),
    )
    .unwrap();
    file
}

fn night(history: &Path, scenario: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg("scripts/nightly.sh")
        .arg(scenario)
        .env("MIGBENCH", assert_cmd::cargo::cargo_bin("migbench"))
        .env("NIGHTLY_HISTORY", history)
        // Simulated time advances by events: two nights of one scenario agree exactly, so even
        // a 1% threshold sees no regression between them.
        .env("NIGHTLY_THRESHOLD", "1%");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn baseline(history: &Path) -> String {
    std::fs::read_link(history.join("baseline"))
        .unwrap()
        .display()
        .to_string()
}

fn nights(history: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(history)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "baseline")
        .collect();
    names.sort();
    names
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn nights_are_accepted_until_one_regresses() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history");
    let (good, worse) = (scenario(dir.path(), false), scenario(dir.path(), true));

    let first = night(&history, &good, &[]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    assert!(text(&first.stdout).contains("no baseline yet"));
    let listed = nights(&history);
    assert_eq!(listed.len(), 1);
    assert_eq!(baseline(&history), listed[0]);
    assert!(history
        .join(&listed[0])
        .join("report/report.json")
        .is_file());
    assert!(history
        .join(&listed[0])
        .join("report/report.html")
        .is_file());

    let second = night(&history, &good, &[]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second.stderr));
    assert!(text(&second.stdout).contains("no regression"));
    let listed = nights(&history);
    assert_eq!(listed.len(), 2);
    assert_eq!(
        baseline(&history),
        listed[1],
        "a passing night becomes the baseline"
    );
    assert!(history.join(&listed[1]).join("compare.md").is_file());

    // A changed scenario file is a different experiment: refused, saying so, baseline kept.
    let changed = night(&history, &worse, &[]);
    assert_eq!(changed.status.code(), Some(2), "{}", text(&changed.stderr));
    assert!(
        text(&changed.stderr).contains("nightly: scenario file sha256"),
        "{}",
        text(&changed.stderr)
    );
    assert_eq!(baseline(&history), listed[1], "the baseline stays");
    assert_eq!(nights(&history).len(), 3, "the refused night is kept");

    let third = night(&history, &worse, &[("NIGHTLY_ALLOW_DIFFERENT", "1")]);
    assert_eq!(third.status.code(), Some(1), "{}", text(&third.stderr));
    assert!(text(&third.stderr).contains(&format!(
        "regression against the median of the nights before (history.md); the baseline stays at {}",
        listed[1]
    )));
    let listed = nights(&history);
    assert_eq!(listed.len(), 4, "the regressing night is kept");
    assert_eq!(baseline(&history), listed[1], "the baseline stays");
    let compare = std::fs::read_to_string(history.join(&listed[3]).join("compare.md")).unwrap();
    assert!(
        compare.contains("regressed")
            && compare.contains("OOMs 0 → 1")
            && compare.find("scenario file sha256").unwrap() < compare.find("regressed").unwrap(),
        "{compare}"
    );
    let judged = std::fs::read_to_string(history.join(&listed[2]).join("history.md")).unwrap();
    assert!(
        judged.contains("regressed") && judged.contains("OOM jobs 1 of 3 jobs"),
        "{judged}"
    );
    let night3 = history.join(&listed[2]);
    assert!(night3.join("history/history.html").is_file());
    let prom = std::fs::read_to_string(night3.join("report/migbench.prom")).unwrap();
    assert!(prom.contains("migbench_report_jobs{scenario=\"nightly\",variant=\"v\",mode=\"mps\",gpu_model=\"h100-80gb\",backend=\"sim\",outcome=\"oom\"} 1"), "{prom}");

    // A good night after the odd ones: against the median of the nights before (two good, two
    // worse) it is no regression, so it passes and becomes the baseline.
    let fourth = night(&history, &good, &[]);
    assert_eq!(fourth.status.code(), Some(0), "{}", text(&fourth.stdout));
    let listed = nights(&history);
    assert_eq!(listed.len(), 5);
    assert_eq!(baseline(&history), listed[4]);
}

#[test]
fn bad_settings_exit_2_before_running_anything() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history");
    let good = scenario(dir.path(), false);
    let out = night(&history, &good, &[("NIGHTLY_BACKEND", "cloud")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("NIGHTLY_BACKEND must be sim or gpu"));
    let out = night(&history, Path::new("missing.toml"), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("scenario 'missing.toml' does not exist"));
    assert!(!history.exists(), "nothing ran");
}
