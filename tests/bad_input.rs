//! Bad input from the outside: files that are not regular files or too large, files of another
//! format named by mistake (nothing of them is quoted), and damaged run directories (named, left
//! out of a report, refused by `compare` and `calibrate`). Each case exits 2, never panics.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use predicates::prelude::*;
use predicates::str::contains;
use proptest::prelude::*;

use common::migbench;
use migbench::layout::mig_parted::MigPartedFile;
use migbench::loadgen::prompts::PromptFile;
use migbench::report::load::Damaged;
use migbench::report::ReportData;

/// Lines as /etc/shadow has them: valid YAML (`root:*:…::` ends in a mapping key), not TOML.
const SHADOW: &str = "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A scenario whose one MIG variant takes its layout from `mig_parted`.
fn mig_parted_scenario(dir: &Path, mig_parted: &str) -> PathBuf {
    write(
        dir,
        "s.toml",
        &format!(
            "[scenario]\nname = \"s\"\n[gpu]\nmodel = \"h100-80gb\"\n\n[[variants]]\nname = \"v\"\nmode = \"mig\"\nlayout = {{ mig_parted = \"{mig_parted}\", config = \"a\" }}\njobs = [{{ workload = \"ti2v-5b\" }}]\n"
        ),
    )
}

/// The shipped serving scenario, its load reading prompts from `prompts`.
fn prompts_scenario(dir: &Path, prompts: &str) -> PathBuf {
    let text = std::fs::read_to_string("scenarios/a100-qwen3.toml").unwrap();
    let text = text.replacen(
        "[load]\n",
        &format!("[load]\nprompts_file = \"{prompts}\"\n"),
        1,
    );
    write(dir, "serving.toml", &text)
}

/// `migbench ARGS` exits 2 within a minute (a FIFO used to block forever), saying `said`.
fn refused(args: &[&str], said: &str) -> String {
    let out = migbench()
        .args(args)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(said), "{args:?}: {stderr}");
    stderr
}

#[test]
fn every_input_file_is_a_regular_file_under_its_cap() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fifo = d.join("fifo");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let fifo = fifo.to_str().unwrap();
    let device = "a character device, not a regular file";
    refused(&["validate", "/dev/zero"], device);
    refused(&["validate", fifo], "a FIFO, not a regular file");
    refused(
        &["advise", "--gpu", "h100-80gb", "--workload", "/dev/zero"],
        device,
    );
    refused(
        &["advise", "--gpu", "h100-80gb", "--workload", fifo],
        "a FIFO",
    );
    let s = mig_parted_scenario(d, "/dev/zero");
    refused(&["validate", s.to_str().unwrap()], device);
    let s = prompts_scenario(d, "/dev/zero");
    refused(&["validate", s.to_str().unwrap()], device);
    let s = prompts_scenario(d, fifo);
    refused(&["validate", s.to_str().unwrap()], "a FIFO");

    // Too large: a scenario padded past 1 MiB, a mig-parted file of 200,000 labels (18.7 MB was
    // read whole in 2 s and 766 MB), a prompts file past 64 MiB.
    let big = format!(
        "{}{}",
        "# padding\n".repeat(110_000),
        std::fs::read_to_string("scenarios/h100-3x-ti2v.toml").unwrap()
    );
    let s = write(d, "big.toml", &big);
    refused(
        &["validate", s.to_str().unwrap()],
        "larger than the 1 MiB allowed for a scenario or workload file",
    );
    let mut labels = String::from("version: v1\nmig-configs:\n");
    for i in 0..200_000 {
        labels.push_str(&format!(
            "  l{i}:\n    - devices: all\n      mig-enabled: false\n"
        ));
    }
    write(d, "labels.yaml", &labels);
    let s = mig_parted_scenario(d, "labels.yaml");
    refused(
        &["validate", s.to_str().unwrap()],
        "labels.yaml: cannot read the mig-parted file: larger than the 1 MiB allowed for a mig-parted file",
    );
    let prompts = d.join("prompts.jsonl");
    let file = std::fs::File::create(&prompts).unwrap();
    file.set_len(64 * 1024 * 1024 + 1).unwrap();
    let s = prompts_scenario(d, prompts.to_str().unwrap());
    refused(
        &["validate", s.to_str().unwrap()],
        "larger than the 64 MiB allowed for a prompts file",
    );
}

#[test]
fn a_file_that_is_not_the_format_expected_is_not_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let shadow = write(d, "users", SHADOW);
    let (shadow, s) = (shadow.to_str().unwrap(), mig_parted_scenario(d, "users"));
    let cases: [(&[&str], &str); 4] = [
        // It parses as YAML, but it is no mig-parted file.
        (
            &["validate", s.to_str().unwrap()],
            "users:1:1: not a mig-parted file",
        ),
        // Not TOML: the parser's own message, without the line it stopped at.
        (&["validate", shadow], "users:1:5: "),
        (
            &["advise", "--gpu", "h100-80gb", "--workload", shadow],
            "users:1:5: ",
        ),
        (
            &[
                "advise",
                "--gpu",
                "a100-80gb",
                "--workload",
                "qwen3-4b",
                "--load",
                shadow,
            ],
            "users:1:5: ",
        ),
    ];
    for (args, said) in cases {
        let e = refused(args, said);
        assert!(!e.contains("root") && !e.contains("99999"), "{e}");
    }
}

/// A secret-looking word, in places of a YAML file: as a key, a value, a list item, a line of
/// /etc/shadow, a version.
fn yaml_line() -> impl Strategy<Value = String> {
    let secret = "S3CRET[a-z]{0,6}";
    (0..8usize, secret).prop_map(|(shape, s)| match shape {
        0 => s,
        1 => format!("{s}: {s}"),
        2 => format!("- {s}"),
        3 => format!("{s}:*:19000:0:99999:7:::"),
        4 => format!("  {s}: [{s}, 1]"),
        5 => format!("version: {s}"),
        6 => format!("mig-configs: {{{s}: {s}}}"),
        _ => format!("\"{s}\""),
    })
}

/// A prompts-file line with a secret-looking word that is no JSON object: plain text, a line of
/// /etc/shadow, a JSON string, list or number, cut JSON.
fn prompts_line() -> impl Strategy<Value = String> {
    (0..6usize, "S3CRET[a-z]{0,6}").prop_map(|(shape, s)| match shape {
        0 => s,
        1 => format!("{s}:*:19000:0:99999:7:::"),
        2 => format!("\"{s}\""),
        3 => format!("[\"{s}\", 1, 2]"),
        4 => format!("{{\"prompt\": \"{s}"),
        _ => format!("{{{s}: 1}}"),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A line of a prompts file that is not a JSON object is placed, never quoted.
    #[test]
    fn no_message_quotes_a_prompts_line_that_is_not_an_object(
        good in 0..3usize,
        bad in prompts_line(),
    ) {
        let mut text = "{\"prompt\": \"hello\"}\n".repeat(good);
        text.push_str(&bad);
        let e = PromptFile::parse(Path::new("p.jsonl"), &text).unwrap_err();
        let at = format!("p.jsonl:{}", good + 1);
        prop_assert!(e.starts_with(&at), "{}", e);
        prop_assert!(!e.contains("S3CRET") && !e.contains("99999"), "{}", e);
    }

    /// Until a file says `version: v1` it is no mig-parted file, and no message quotes it.
    #[test]
    fn no_message_quotes_a_file_that_is_not_a_mig_parted_file(
        lines in proptest::collection::vec(yaml_line(), 0..6)
    ) {
        let text = lines.join("\n");
        let e = MigPartedFile::parse(Path::new("f.yaml"), &text).unwrap_err().to_string();
        prop_assert!(e.starts_with("f.yaml:"), "{}", e);
        prop_assert!(!e.contains("S3CRET") && !e.contains("99999"), "{}", e);
    }
}

// --- damaged run directories --------------------------------------------------------------------

/// A JSON string holding a line of /etc/shadow.
const SHADOW_JSON: &[u8] = b"\"root:*:19000:0:99999:7:::\"";

/// One short simulated run, made once for every test of this file.
fn good_run() -> &'static Path {
    static RUN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    RUN.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bad_input-run");
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).unwrap();
        let scenario = write(
            &out,
            "s.toml",
            "[scenario]\nname = \"one\"\n[gpu]\nmodel = \"h100-80gb\"\n\n[[variants]]\nname = \"v\"\nmode = \"full\"\njobs = [{ workload = \"ti2v-5b\", count = 2 }]\n",
        );
        common::run_sim(&scenario, &out.join("runs"), common::SAMPLE_EVERY_SECOND)
    })
}

/// The good run's samples, one part (streamed tables are written part by part).
const SAMPLES: &str = "samples/part-00000.parquet";

/// A copy of the good run's files at `to`, its samples' parts among them.
fn copy(to: &Path) -> PathBuf {
    copy_files(good_run(), to);
    copy_files(&good_run().join("samples"), &to.join("samples"));
    to.to_path_buf()
}

fn copy_files(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// A copy of the good run at `to`, with `file` replaced by `bytes`.
fn damaged(to: &Path, file: &str, bytes: &[u8]) -> PathBuf {
    copy(to);
    std::fs::write(to.join(file), bytes).unwrap();
    to.to_path_buf()
}

fn manifest_with_version(version: u64) -> Vec<u8> {
    let text = std::fs::read_to_string(good_run().join("manifest.json")).unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
    m["schema_version"] = version.into();
    m.to_string().into_bytes()
}

#[test]
fn a_damaged_run_is_named_left_out_of_a_report_and_refused_by_compare_and_calibrate() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let good = copy(&runs.join("a-good"));
    let samples = std::fs::read(good_run().join(SAMPLES)).unwrap();
    let pages = pages_flipped(&good_run().join("jobs.parquet"));
    let cases: Vec<(PathBuf, &str)> = vec![
        (damaged(&runs.join("b-old"), "manifest.json", &manifest_with_version(0)), "schema_version 0; this migbench (0.1.0) reads run directories of schema versions 1 to 2"),
        (damaged(&runs.join("c-new"), "manifest.json", &manifest_with_version(99999)), "schema_version 99999; this migbench (0.1.0) reads run directories of schema versions 1 to 2 (a newer migbench wrote it"),
        (damaged(&runs.join("d-garbage"), "jobs.parquet", b"\x00\xffgarbage"), "d-garbage/jobs.parquet: not a readable Parquet file"),
        (damaged(&runs.join("e-cut"), SAMPLES, &samples[..samples.len() / 2]), "e-cut/samples/part-00000.parquet: not a readable Parquet file"),
        (damaged(&runs.join("f-empty"), "variants.parquet", b""), "f-empty/variants.parquet: not a readable Parquet file"),
        (damaged(&runs.join("g-pages"), "jobs.parquet", &pages), "g-pages: its tables cannot be read"),
        // Of a file that is not even a JSON object, nothing is quoted.
        (damaged(&runs.join("h-string"), "manifest.json", SHADOW_JSON), "h-string/manifest.json: not a migbench manifest (line 1 column 27: found a string, not an object)"),
    ];
    // The report goes on without them, naming each.
    let out = dir.path().join("report");
    let mut report = migbench();
    report.arg("report").arg(&runs).arg("--out").arg(&out);
    let mut assert = report.assert().success();
    for (_, said) in &cases {
        assert = assert.stdout(contains(*said));
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(
        json["runs"].as_array().unwrap().len(),
        1,
        "only the good run"
    );
    migbench()
        .arg("compare")
        .args([&good, &good])
        .assert()
        .success();
    for (run, said) in &cases {
        // Alone, the reason comes with "no runs found".
        migbench()
            .arg("report")
            .arg(run)
            .arg("--out")
            .arg(dir.path().join("alone"))
            .assert()
            .code(2)
            .stderr(contains("no runs found below"))
            .stderr(contains(*said))
            .stderr(contains("panicked").not())
            .stderr(contains("19000").not());
        // A damaged side is bad input, not a regression.
        migbench()
            .arg("compare")
            .args([&good, run])
            .assert()
            .code(2)
            .stderr(contains("candidate: "))
            .stderr(contains(*said));
        migbench()
            .arg("calibrate")
            .args([&good, run])
            .args(["--workload", "ti2v-5b"])
            .assert()
            .code(2)
            .stderr(contains(*said));
    }
}

/// Every byte of a Parquet file's data pages flipped, its footer kept: the schema reads, the
/// rows do not.
fn pages_flipped(file: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(file).unwrap();
    let n = bytes.len();
    let footer = u32::from_le_bytes(bytes[n - 8..n - 4].try_into().unwrap()) as usize;
    for b in &mut bytes[4..n - 8 - footer] {
        *b = !*b;
    }
    bytes
}

/// Samples whose pages cannot be read failed the whole report at its plots (exit 1, no file
/// named): the run keeps its tables, loses its VRAM plots, and a warning names the file.
#[test]
fn a_run_whose_samples_cannot_be_read_loses_only_its_vram_plots() {
    let dir = tempfile::tempdir().unwrap();
    let samples = pages_flipped(&good_run().join(SAMPLES));
    let bad = damaged(&dir.path().join("bad"), SAMPLES, &samples);
    let out = dir.path().join("report");
    migbench()
        .arg("report")
        .arg(&bad)
        .arg("--out")
        .arg(&out)
        .assert()
        .success()
        .stdout(contains("bad/samples: its VRAM samples cannot be read"))
        .stdout(contains("its VRAM plots are left out"));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["runs"].as_array().unwrap().len(), 1);
    assert_eq!(
        json["variants"].as_array().unwrap().len(),
        1,
        "its tables are read"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever a run's manifest or tables hold (cut anywhere, bytes changed anywhere), a
    /// report beside a good run leaves it out or reads it, and never fails or panics.
    #[test]
    fn a_report_survives_any_damage_to_a_run_directory(
        file in prop::sample::select(vec!["manifest.json", "jobs.parquet", "variants.parquet", "instances.parquet", SAMPLES]),
        cut in 0.0..1.0f64,
        flips in proptest::collection::vec((0.0..1.0f64, any::<u8>()), 0..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let good = copy(&dir.path().join("good"));
        let mut bytes = std::fs::read(good_run().join(file)).unwrap();
        bytes.truncate((bytes.len() as f64 * cut) as usize);
        let len = bytes.len();
        for (at, value) in flips {
            if len > 0 {
                bytes[((len as f64 * at) as usize).min(len - 1)] = value;
            }
        }
        let bad = damaged(&dir.path().join("bad"), file, &bytes);
        let paths = [dir.path().to_path_buf()];
        let read = std::panic::catch_unwind(|| ReportData::from_runs(&paths, Damaged::Skip));
        let (data, _) = read.map_err(|_| TestCaseError::fail("panicked"))?.map_err(|e| TestCaseError::fail(e.to_string()))?;
        let bad_named = data.warnings.iter().any(|w| w.contains(&*bad.to_string_lossy()));
        prop_assert!(data.runs.len() == 2 || bad_named, "{:?}", data.warnings);
        prop_assert!(data.runs.iter().any(|r| r.dir == good.to_string_lossy()));
    }
}
