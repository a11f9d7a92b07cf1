//! Fitting the habits of GPU engineers: mig-parted files in and out, completions, the man page,
//! the JSON Schemas, `--version`, `--format json` on validate/run/restore, exit statuses in
//! `--help`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{migbench, succeeds};
use migbench::catalog::Catalog;
use migbench::layout::mig_parted::{self, MigPartedFile};
use migbench::layout::Layout;
use migbench::scenario::Scenario;
use serde_json::Value;

fn stdout(args: &[&str]) -> String {
    common::stdout_of(migbench().args(args))
}

fn parse_yaml(text: &str) -> Result<MigPartedFile, String> {
    MigPartedFile::parse(Path::new("mp.yaml"), text).map_err(|e| e.to_string())
}

/// Profile name → count of a placed layout's GPU instances (or split compute instances).
fn counts(gpu: &str, specs: &[migbench::layout::InstanceSpec]) -> BTreeMap<String, u32> {
    let gpu = Catalog::builtin().gpu(gpu).unwrap();
    mig_parted::mig_devices(&Layout::build(gpu, specs).unwrap())
}

// --- mig-parted: out ---------------------------------------------------------------------------

/// `migbench layouts ARGS` (`--gpu` first) as mig-parted and as JSON: the file holds one label
/// per set of devices the layouts make (placements are mig-parted's to choose), each reading
/// back as the same instances, and every layout listed has its label. Returns the file.
fn layouts_read_back(args: &[&str]) -> String {
    let gpu = args[2];
    let text = stdout(&[args, &["--format", "mig-parted"]].concat());
    let rows: Value =
        serde_json::from_str(&stdout(&[args, &["--format", "json"]].concat())).unwrap();
    let rows = rows.as_array().unwrap();
    let file = parse_yaml(&text).unwrap_or_else(|e| panic!("{gpu}: {e}\n{text}"));
    let written: Vec<BTreeMap<String, u32>> = rows
        .iter()
        .map(|row| {
            let specs: Vec<migbench::layout::InstanceSpec> =
                serde_json::from_value(row["layout"].clone()).unwrap();
            counts(gpu, &specs)
        })
        .collect();
    let distinct: std::collections::BTreeSet<_> = written.iter().collect();
    assert_eq!(
        file.configs.len(),
        distinct.len(),
        "{gpu}: one label per set of devices"
    );
    let model = Catalog::builtin().gpu(gpu).unwrap();
    let mut read_back = Vec::new();
    for (label, entries) in &file.configs {
        assert!(mig_parted::is_label_value(label), "{label}");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].devices, None, "devices: all");
        assert!(entries[0].mig_enabled);
        let read = counts(gpu, &file.specs(label, model, 0).unwrap());
        if read.len() == 1 {
            let (profile, _) = read.first_key_value().unwrap();
            assert_eq!(
                label,
                &mig_parted::operator_label(profile),
                "the operator's own label"
            );
        }
        read_back.push(read);
    }
    for layout in &written {
        assert!(
            read_back.contains(layout),
            "{gpu}: {layout:?} has no label\n{text}"
        );
    }
    text
}

#[test]
fn layouts_as_mig_parted_read_back_as_the_same_layouts() {
    for gpu in [
        "h100-80gb",
        "a100-40gb",
        "b200-180gb",
        "gb200-186gb",
        "rtx-pro-6000-96gb",
    ] {
        layouts_read_back(&["layouts", "--gpu", gpu]);
    }
}

#[test]
fn plan_as_mig_parted_has_one_label_per_chosen_layout() {
    let text = stdout(&[
        "plan",
        "--gpu",
        "h100-80gb",
        "--workload",
        "ti2v-5b",
        "--format",
        "mig-parted",
    ]);
    let file = parse_yaml(&text).unwrap();
    let labels = file.labels();
    assert!(labels.contains(&"h100-80gb-ti2v-5b-mig"), "{labels:?}");
    assert!(labels.contains(&"h100-80gb-ti2v-5b-mig-mps"), "{labels:?}");
    let gpu = Catalog::builtin().gpu("h100-80gb").unwrap();
    let mig = file.specs("h100-80gb-ti2v-5b-mig", gpu, 0).unwrap();
    // The plan's best MIG layout for TI2V-5B on an H100: 4g.40gb + 3g.40gb (README).
    let want = BTreeMap::from([("3g.40gb".to_string(), 1), ("4g.40gb".to_string(), 1)]);
    assert_eq!(counts("h100-80gb", &mig), want);
    assert!(labels.iter().all(|l| mig_parted::is_label_value(l)));
}

#[test]
fn plan_without_a_mig_layout_has_nothing_to_write() {
    // S2V-14B cannot share an H100 under MIG (README); no layout, so exit 2 with the reason.
    let out = migbench()
        .args([
            "plan",
            "--gpu",
            "h100-80gb",
            "--workload",
            "s2v-14b",
            "--format",
            "mig-parted",
        ])
        .output()
        .unwrap();
    if out.status.success() {
        // If the plan does find a layout, the file must still be valid.
        parse_yaml(&String::from_utf8(out.stdout).unwrap()).unwrap();
    } else {
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no mig-parted file to write"), "{err}");
    }
}

#[test]
fn label_values_follow_kubernetes_rules() {
    assert_eq!(
        mig_parted::label(&["h100-80gb", "mig+mps"]),
        "h100-80gb-mig-mps"
    );
    assert!(mig_parted::is_label_value("all-1g.10gb"));
    assert!(!mig_parted::is_label_value("mig+mps"));
    assert!(!mig_parted::is_label_value("-a"));
    assert!(!mig_parted::is_label_value(&"a".repeat(64)));
    assert_eq!(mig_parted::label(&[&"x".repeat(70)]).len(), 63);
}

// --- mig-parted: in, by the spec's rules ------------------------------------------------------

const BALANCED: &str = r#"version: v1
mig-configs:
  all-disabled:
    - devices: all
      mig-enabled: false
  all-enabled:
    - devices: all
      mig-enabled: true
      mig-devices: {}
  all-balanced:
    # A100 40GB
    - device-filter: ["0x20B010DE", "0x20B110DE"]
      devices: all
      mig-enabled: true
      mig-devices:
        "1g.5gb": 2
        "2g.10gb": 1
        "3g.20gb": 1
    # H100 80GB
    - device-filter: ["0x233010DE", "0x233110DE"]
      devices: all
      mig-enabled: true
      mig-devices:
        "1g.10gb": 2
        "2g.10gb": 0
        "2g.20gb": 1
        "3g.40gb": 1
  split:
    - devices: [0, 1]
      mig-enabled: true
      mig-devices:
        "1c.3g.40gb": 3
        "4g.40gb": 1
  too-big:
    - devices: all
      mig-enabled: true
      mig-devices:
        "4g.40gb": 2
  unknown-profile:
    - devices: all
      mig-enabled: true
      mig-devices:
        "2g.35gb": 1
  gpu-3-only:
    - devices: [3]
      mig-enabled: true
      mig-devices:
        "7g.80gb": 1
"#;

#[test]
fn a_label_gives_each_gpu_the_entry_that_applies_to_it() {
    let file = parse_yaml(BALANCED).unwrap();
    let h100 = Catalog::builtin().gpu("h100-80gb").unwrap();
    let a100 = Catalog::builtin().gpu("a100-40gb").unwrap();
    let b = file.specs("all-balanced", h100, 0).unwrap();
    let want = BTreeMap::from([
        ("1g.10gb".to_string(), 2),
        ("2g.20gb".to_string(), 1),
        ("3g.40gb".to_string(), 1),
    ]);
    assert_eq!(
        counts("h100-80gb", &b),
        want,
        "the H100's device-filter entry"
    );
    let a = file.specs("all-balanced", a100, 0).unwrap();
    assert_eq!(counts("a100-40gb", &a)["1g.5gb"], 2, "the A100's entry");
    // Three 1c.3g.40gb compute instances share one 3g.40gb GPU instance, as mig-parted packs them.
    let split = file.specs("split", h100, 1).unwrap();
    let gi: Vec<_> = split.iter().filter(|s| s.profile == "3g.40gb").collect();
    assert_eq!(gi.len(), 1, "{split:?}");
    assert_eq!(gi[0].compute, vec!["1c.3g.40gb"; 3]);
}

#[test]
fn a_label_that_cannot_be_used_says_why() {
    let file = parse_yaml(BALANCED).unwrap();
    // (label, GPU, index, how the message starts, what else it says)
    let cases = [
        (
            "nope",
            "h100-80gb",
            0,
            "mp.yaml has no mig-config 'nope'",
            "all-balanced, split",
        ),
        (
            "all-balanced",
            "b200-180gb",
            0,
            "mig-config 'all-balanced' in mp.yaml",
            "no entry for GPU 0 (b200-180gb, PCI device 0x2901)",
        ),
        (
            "gpu-3-only",
            "h100-80gb",
            0,
            "mig-config 'gpu-3-only'",
            "no entry for GPU 0",
        ),
        (
            "all-disabled",
            "h100-80gb",
            0,
            "mp.yaml:4:7: ",
            "mig-enabled: false",
        ),
        (
            "all-enabled",
            "h100-80gb",
            0,
            "mp.yaml:9:20: ",
            "creates no MIG device",
        ),
        (
            "too-big",
            "h100-80gb",
            0,
            "mp.yaml:38:9: h100-80gb cannot take mig-config 'too-big'",
            "at most 1",
        ),
        (
            "unknown-profile",
            "h100-80gb",
            0,
            "mp.yaml:43:20: '2g.35gb' is not a MIG profile of h100-80gb",
            "1g.10gb, 1g.10gb+me",
        ),
    ];
    for (label, gpu, index, starts, says) in cases {
        let gpu = Catalog::builtin().gpu(gpu).unwrap();
        let m = match file.specs(label, gpu, index).unwrap_err() {
            mig_parted::Located::Unplaced(m) => m,
            mig_parted::Located::Placed(e) => e.to_string(),
        };
        assert!(m.starts_with(starts) && m.contains(says), "{label}: {m}");
    }
    // The ID the message names is the one `gpus --format json` lists.
    let gpus: Value = serde_json::from_str(&stdout(&["gpus", "--format", "json"])).unwrap();
    let b = gpus
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"] == "b200-180gb")
        .unwrap();
    assert_eq!(b["pci_device_ids"], serde_json::json!(["0x2901"]));
}

/// Each rule of mig-parted's v1 spec (api/spec/v1/spec.go, pkg/types/mig_config.go), with the
/// place the error is reported at.
#[test]
fn the_spec_rules_are_checked_where_they_are_broken() {
    let entry = "version: v1\nmig-configs:\n  a:\n    - ";
    let cases: &[(&str, &str)] = &[
        ("", "mp.yaml:1:1: the file is empty"),
        ("- 1\n", "mp.yaml:1:1: not a mig-parted file: expected a mapping with version and mig-configs, found a list"),
        ("mig-configs: {}\n", "mp.yaml:1:1: not a mig-parted file: no 'version' field"),
        ("version: v2\n", "mp.yaml:1:10: unknown version the string \"v2\"; allowed: v1"),
        ("version: v1\nlabels: {}\n", "mp.yaml:2:9: unexpected field 'labels'"),
        ("version: v1\nmig-configs: {}\n", "mp.yaml:2:14: at least one entry in 'mig-configs' is required"),
        ("version: v1\nmig-configs:\n  a: []\n", "mp.yaml:3:6: at least one entry in 'a' is required"),
        ("version: v1\nmig-configs:\n  a: {}\n", "'a': expected a list of entries"),
        ("version: v1\nmig-configs:\n  a:\n    - mig-enabled: false\n", "mp.yaml:4:7: 'a': missing required field: devices"),
        ("version: v1\nmig-configs:\n  a:\n    - devices: all\n", "'a': missing required field: mig-enabled"),
        ("version: v1\nmig-configs:\n  a:\n    - devices: some\n      mig-enabled: false\n", "mp.yaml:4:16: 'a': invalid input for 'devices'"),
        ("version: v1\nmig-configs:\n  a:\n    - devices: [0, x]\n      mig-enabled: false\n", "mp.yaml:4:20: 'a': devices: expected GPU indices"),
        ("version: v1\nmig-configs:\n  a:\n    - devices: all\n      mig-enabled: yes\n", "mp.yaml:5:20: 'a': mig-enabled: expected true or false"),
        ("version: v1\nmig-configs:\n  a:\n    - devices: all\n      mig-enabled: true\n", "'a': missing required field 'mig-devices' when 'mig-enabled' is true"),
        ("version: v1\nmig-configs:\n  a:\n    - devices: all\n      mig-enabled: false\n      mig-devices: {\"1g.10gb\": 1}\n", "mp.yaml:6:20: 'a': MIG devices included when 'mig-enabled' is false"),
        ("version: v1\nmig-configs:\n  a:\n    - devices: all\n      mig-enabled: true\n      mig-devices: {\"1g.10gb\": 0}\n", "'a': error validating values in 'mig-devices' field: all counts for all MigProfiles are 0"),
        ("version: v1\nmig-configs:\n  a:\n    - devices: all\n      mig-enabled: true\n      mig-devices: {\"1g.10gb\": -1}\n", "mp.yaml:6:32: 'a': error validating values in 'mig-devices' field: invalid count for '1g.10gb'"),
        ("version: v1\nmig-configs:\n  a:\n    - devices: all\n      mig-enabled: true\n      mig-devices: {\"1g10gb\": 1}\n", "'a': error validating values in 'mig-devices' field: invalid format for '1g10gb'"),
        ("version: v1\nmig-configs:\n  a:\n    - devices: all\n      mig-enabled: true\n      mig-devices: {\"1g.10gb+me-x\": 1}\n", "invalid format for '1g.10gb+me-x'"),
        ("version: v1\nmig-configs:\n  a:\n    - devices: all\n      mig-enabled: true\n      mig-devices: {\"1g.10gb+me,me\": 1}\n", "invalid format for '1g.10gb+me,me'"),
        ("version: v1\nmig-configs:\n  a:\n    - devices: all\n      mig-enabled: false\n      hooks: []\n", "mp.yaml:6:14: 'a': unexpected field 'hooks'; allowed: device-filter, devices, mig-enabled, mig-devices"),
        ("version: v1\nmig-configs:\n  a:\n    - device-filter: 7\n      devices: all\n      mig-enabled: false\n", "mp.yaml:4:22: 'a': device-filter: expected a PCI device ID"),
        ("version: v1\nversion: v1\n", "mp.yaml:2:1: not YAML"),
        ("version: v1\nmig-configs:\n  a: [\n", "not YAML"),
    ];
    for (text, want) in cases {
        let e = parse_yaml(text).expect_err(text);
        assert!(e.contains(want), "{text:?}\n  got:  {e}\n  want: {want}");
        if !want.starts_with("mp.yaml") {
            assert!(e.starts_with("mp.yaml:"), "located: {e}");
        }
    }
    // What the spec allows: mig-devices {} with MIG on, mig-devices absent with it off, a
    // device-filter given as one string, counts of 0 beside others, attributes.
    let ok = "version: v1\nmig-configs:\n  a:\n    - devices: all\n      mig-enabled: true\n      mig-devices: {}\n  b:\n    - device-filter: \"0x233010DE\"\n      devices: [0]\n      mig-enabled: true\n      mig-devices: {\"1g.10gb+me\": 1, \"1g.10gb\": 0, \"3c.3g.40gb\": 1}\n  c:\n    - devices: all\n      mig-enabled: false\n";
    let file = parse_yaml(ok).unwrap();
    assert_eq!(file.labels(), ["a", "b", "c"]);
    let h100 = Catalog::builtin().gpu("h100-80gb").unwrap();
    let b = file.specs("b", h100, 0).unwrap();
    let profiles: Vec<&str> = b.iter().map(|s| s.profile.as_str()).collect();
    assert_eq!(
        profiles,
        ["3g.40gb", "1g.10gb+me"],
        "3c.3g.40gb fills its GPU instance"
    );
    assert!(b.iter().all(|s| s.compute.is_empty()));
    let _ = entry;
}

// --- mig-parted: in a scenario ----------------------------------------------------------------

fn scenario_dir(layout: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mig-parted.yaml"), BALANCED).unwrap();
    std::fs::write(
        dir.path().join("s.toml"),
        format!(
            "[scenario]\nname = \"mp\"\n[gpu]\nmodel = \"h100-80gb\"\n\n[[variants]]\nname = \"balanced\"\nmode = \"mig\"\nlayout = {layout}\njobs = [{{ workload = \"ti2v-5b\", count = 2 }}]\n"
        ),
    )
    .unwrap();
    dir
}

#[test]
fn a_scenario_layout_can_name_a_mig_parted_label() {
    let dir = scenario_dir(r#"{ mig_parted = "mig-parted.yaml", config = "all-balanced" }"#);
    let s = Scenario::load(&dir.path().join("s.toml")).unwrap();
    let layout = s.layout(&s.file.variants[0]).unwrap();
    assert_eq!(layout.summary(), "3g.40gb + 2g.20gb + 1g.10gb + 1g.10gb");
    // And it runs on the simulated GPU like a layout written out.
    let out = succeeds(
        migbench()
            .args(["run", "--sim", "--quiet", "--format", "json", "--out"])
            .arg(dir.path().join("results"))
            .arg(dir.path().join("s.toml")),
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["variants"][0]["status"], "ran");
    // Both jobs ran (on the first instances, 1g.10gb ones, where TI2V-5B runs out of memory:
    // an outcome like any other).
    assert_eq!(v["variants"][0]["jobs"], 2);
    assert_eq!(
        v["jobs_not_ok"].as_array().unwrap().len(),
        2 - v["variants"][0]["jobs_ok"].as_u64().unwrap() as usize
    );
    assert!(v["variants"][0]["layout"]
        .as_str()
        .unwrap()
        .contains("3g.40gb"));
    // The run keeps a copy of the mig-parted file in a folder of its own (scenario-files/), so
    // that the report reads the scenario (and draws its layout) from the run alone.
    let run = std::fs::read_dir(dir.path().join("results"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(
        std::fs::read(run.join("scenario-files/mig-parted.yaml")).unwrap(),
        std::fs::read(dir.path().join("mig-parted.yaml")).unwrap()
    );
    let text = std::fs::read_to_string(run.join("scenario.toml")).unwrap();
    assert!(Scenario::parse_in(
        &run.join("scenario.toml"),
        text,
        &run.join("scenario-files")
    )
    .is_ok());
}

#[test]
fn a_bad_mig_parted_layout_is_reported_in_its_file_and_named_by_the_scenario() {
    let cases = [
        (
            r#"{ mig_parted = "mig-parted.yaml", config = "nope" }"#,
            "s.toml:9:10: ",
            "has no mig-config 'nope'; its labels: all-disabled, all-enabled, all-balanced",
        ),
        (
            r#"{ mig_parted = "mig-parted.yaml", config = "too-big" }"#,
            "mig-parted.yaml:38:9: h100-80gb cannot take mig-config 'too-big' as a layout",
            "(named by ",
        ),
        (
            r#"{ mig_parted = "missing.yaml", config = "a" }"#,
            "missing.yaml: cannot read the mig-parted file",
            "(named by ",
        ),
        (
            r#"{ mig_parted = "mig-parted.yaml", label = "a" }"#,
            "s.toml:9:",
            "unknown field `label`, expected `mig_parted` or `config`",
        ),
        (
            r#""3g.40gb""#,
            "s.toml:9:10: ",
            "a list of MIG instances such as",
        ),
    ];
    for (layout, at, says) in cases {
        let dir = scenario_dir(layout);
        let out = migbench()
            .current_dir(dir.path())
            .args(["validate", "s.toml"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{layout}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(at) && err.contains(says), "{layout}: {err}");
    }
}

// --- completions, man page, schema, version, help ---------------------------------------------

const SUBCOMMANDS: &[&str] = &[
    "gpus",
    "discover",
    "profiles",
    "layouts",
    "plan",
    "validate",
    "run",
    "restore",
    "report",
    "compare",
    "completions",
    "schema",
];

#[test]
fn completions_for_each_shell_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let text = stdout(&["completions", shell]);
        for sub in SUBCOMMANDS {
            assert!(text.contains(sub), "{shell} completions lack {sub}");
        }
        assert!(text.contains("mig-parted"), "{shell}: --format values");
    }
    migbench().args(["completions", "tcsh"]).assert().code(2);
}

#[test]
fn the_man_page_is_roff_naming_the_subcommands() {
    let text = stdout(&["man"]);
    assert!(
        text.starts_with(".ie \\n(.g .ds Aq") || text.contains(".TH migbench"),
        "{text}"
    );
    for sub in SUBCOMMANDS {
        assert!(text.contains(sub), "man page lacks {sub}");
    }
    assert!(text.contains("Exit status"));
}

#[test]
fn the_shipped_schemas_are_what_migbench_writes() {
    for (kind, path) in [
        ("scenario", "schema/scenario.schema.json"),
        ("workload", "schema/workload.schema.json"),
    ] {
        let shipped = std::fs::read_to_string(path).unwrap();
        assert_eq!(
            stdout(&["schema", kind]),
            shipped,
            "{path} is stale: run `migbench schema {kind} > {path}`"
        );
    }
}

#[test]
fn the_scenario_schema_says_what_the_parser_takes() {
    let s: Value = serde_json::from_str(&stdout(&["schema"])).unwrap();
    assert_eq!(
        s["required"],
        serde_json::json!(["scenario", "gpu", "variants"])
    );
    assert_eq!(s["additionalProperties"], false);
    let defs = &s["$defs"];
    let variant = &defs["Variant"]["properties"];
    for key in [
        "name",
        "mode",
        "layout",
        "mps",
        "jobs",
        "load",
        "repetitions",
    ] {
        assert!(variant.get(key).is_some(), "Variant.{key}");
    }
    let modes: Vec<&str> = defs["SharingMode"]["oneOf"]
        .as_array()
        .map(|v| v.iter().filter_map(|m| m["const"].as_str()).collect())
        .or_else(|| {
            defs["SharingMode"]["enum"]
                .as_array()
                .map(|v| v.iter().filter_map(Value::as_str).collect())
        })
        .unwrap();
    assert_eq!(modes, ["full", "timeslice", "mps", "mig", "mig+mps"]);
    let mp = &defs["MigPartedRef"];
    assert_eq!(mp["required"], serde_json::json!(["mig_parted", "config"]));
    assert!(
        mp["properties"].get("resolved").is_none(),
        "not written by people"
    );
    // No nulls: TOML has none.
    assert!(!serde_json::to_string(&s).unwrap().contains("null"));
    // The workload schema requires what a workload file must say.
    let w: Value = serde_json::from_str(&stdout(&["schema", "workload"])).unwrap();
    for key in ["name", "title", "kind", "unit", "command", "memory", "sim"] {
        assert!(
            w["required"].as_array().unwrap().iter().any(|r| r == key),
            "workload requires {key}"
        );
    }
}

#[test]
fn version_names_the_commit_and_whether_the_tree_was_dirty() {
    let text = stdout(&["--version"]);
    assert!(
        text.starts_with(&format!("migbench {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(
        text.contains(", clean)")
            || text.contains(", dirty: uncommitted changes)")
            || text.contains("tree state unknown"),
        "{text}"
    );
    assert_eq!(
        migbench::version::long(),
        text.trim().trim_start_matches("migbench ")
    );
    let git = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output();
    if let Some(out) = git.ok().filter(|o| o.status.success()) {
        let head = String::from_utf8(out.stdout).unwrap();
        // The binary may have been built before the last commit; it names a 40-hex commit.
        let commit = migbench::version::git_commit();
        assert_eq!(commit.len(), 40, "{commit}");
        assert!(commit.chars().all(|c| c.is_ascii_hexdigit()), "{commit}");
        assert_eq!(head.trim().len(), 40);
        assert!(migbench::version::git_dirty().is_some());
    }
}

#[test]
fn every_command_lists_its_exit_statuses_in_help() {
    for sub in SUBCOMMANDS.iter().chain(&["man"]) {
        let text = stdout(&[sub, "--help"]);
        assert!(text.contains("Exit status:"), "{sub} --help");
        assert!(text.contains("  2    bad input"), "{sub} --help");
    }
    assert!(stdout(&["run", "--help"]).contains("  130  stopped by Ctrl-C or SIGTERM"));
    assert!(stdout(&["compare", "--help"]).contains("  1    also when a variant regressed"));
    assert!(stdout(&["validate", "--help"]).contains("file:line:column"));
}

// --- --format json on validate, run, restore --------------------------------------------------

#[test]
fn validate_json_reports_each_file_and_where_a_bad_one_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[scenario]\nname = \"b\"\n[gpu]\nmodel = \"h100-80gb\"\n[[variants]]\nname = \"a\"\nmode = \"mig\"\nlayout = [\"9g.99gb\"]\njobs = [{ workload = \"ti2v-5b\" }]\n",
    )
    .unwrap();
    let out = migbench()
        .args([
            "validate",
            "--format",
            "json",
            "scenarios/h100-3x-ti2v.toml",
        ])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["ok"], true);
    assert_eq!(rows[0]["scenario"], "h100-3x-ti2v");
    assert_eq!(rows[0]["gpu"], "h100-80gb");
    assert_eq!(rows[0]["variants"].as_array().unwrap().len(), 4);
    assert_eq!(rows[0]["variants"][3]["mode"], "mig");
    assert_eq!(rows[1]["ok"], false);
    assert_eq!(rows[1]["error"]["line"], 8);
    assert_eq!(rows[1]["error"]["column"], 10);
    assert!(rows[1]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("9g.99gb"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.toml:8:10:"));
}

#[test]
fn run_and_restore_json_carry_the_key_facts() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = succeeds(
        migbench()
            .env("MIGBENCH_STATE_DIR", state.path())
            .args(["run", "--sim", "--quiet", "--format", "json", "--out"])
            .arg(dir.path())
            .arg("scenarios/h100-3x-ti2v.toml"),
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["backend"], "sim");
    assert_eq!(v["simulated"], true);
    assert_eq!(v["interrupted"], false);
    let variants: Vec<&str> = v["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["variant"].as_str().unwrap())
        .collect();
    assert_eq!(
        variants,
        [
            "full-sequential",
            "mps-together",
            "mps-staggered",
            "mig-2x3g"
        ]
    );
    // Three videos at once under MPS: one runs out of memory (README).
    assert_eq!(v["variants"][1]["jobs_oom"], 1);
    assert_eq!(v["jobs_not_ok"][0]["outcome"], "oom");
    assert!(v["variants"][0]["makespan_s"].as_f64().unwrap() > 0.0);
    let run_dir = Path::new(v["dir"].as_str().unwrap()).to_path_buf();
    assert!(run_dir.join("manifest.json").is_file());

    // The run closed its journal; restoring it again is a no-op, said in JSON.
    let out = succeeds(
        migbench()
            .env("MIGBENCH_STATE_DIR", state.path())
            .args(["restore", "--format", "json"])
            .arg(&run_dir),
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r[0]["status"], "already_restored");
    assert!(r[0]["path"].as_str().unwrap().ends_with("journal.jsonl"));
    assert!(r[0]["gpu_uuid"].as_str().unwrap().starts_with("GPU-"));

    // --dry-run's command lines as a JSON list.
    let lines: Value = serde_json::from_str(&stdout(&[
        "run",
        "--dry-run",
        "--format",
        "json",
        "scenarios/h100-3x-ti2v.toml",
    ]))
    .unwrap();
    assert!(lines
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l.as_str().unwrap().contains("-cgi")));
}

// --- mig-parted's default labels on every catalog GPU (issue 25) -------------------------------

fn default_config() -> MigPartedFile {
    MigPartedFile::load(Path::new("tests/data/mig-parted-default.yaml")).unwrap()
}

#[test]
fn all_balanced_of_every_gpu_is_a_valid_layout() {
    let file = default_config();
    for gpu in Catalog::builtin().gpus() {
        let found = file.specs("all-balanced", gpu, 0);
        if gpu.pci_device_ids.is_empty() {
            // Known by name only (RTX PRO 5000, 4500): no device-filter can pick them.
            assert!(
                matches!(&found, Err(mig_parted::Located::Unplaced(m)) if m.contains("has no entry for GPU 0")),
                "{}: {found:?}",
                gpu.key
            );
            continue;
        }
        let specs = found.unwrap_or_else(|e| panic!("{}: {e:?}", gpu.key));
        let layout = Layout::build(gpu, &specs).unwrap();
        // 2 × 1g + 2g + 3g (A30 and RTX PRO: 2 × 1g + 2g): every compute slice in use.
        assert_eq!(
            layout.figures().compute_slices_unused,
            0,
            "{}: {layout}",
            gpu.key
        );
        let total: u32 = mig_parted::mig_devices(&layout).values().sum();
        assert_eq!(
            total,
            if gpu.compute_slices == 4 { 3 } else { 4 },
            "{}",
            gpu.key
        );
    }
}

#[test]
fn the_operators_variant_labels_name_their_profile_and_fit_the_rtx_pro_6000() {
    let file = default_config();
    let rtx = Catalog::builtin().gpu("rtx-pro-6000-96gb").unwrap();
    let mut checked = 0;
    for (label, entries) in &file.configs {
        if label == "all-balanced" {
            continue;
        }
        let [(profile, ..)] = entries[0].mig_devices.as_slice() else {
            panic!("{label}: one profile");
        };
        assert_eq!(&mig_parted::operator_label(profile), label);
        assert!(mig_parted::is_label_value(label), "{label}");
        let specs = file
            .specs(label, rtx, 0)
            .unwrap_or_else(|e| panic!("{label}: {e:?}"));
        assert_eq!(specs[0].profile, *profile, "{label}");
        checked += 1;
    }
    assert_eq!(checked, 7);
    // `+me` and `-me` would both become `-me` under the Kubernetes character rule alone.
    assert_ne!(
        mig_parted::operator_label("1g.24gb+me"),
        mig_parted::operator_label("1g.24gb-me")
    );
}

#[test]
fn variant_layouts_as_mig_parted_read_back_as_the_same_layouts() {
    let args = [
        "layouts",
        "--gpu",
        "rtx-pro-6000-96gb",
        "--profiles",
        "1g.24gb+me.all,1g.24gb-me,2g.48gb-me,2g.48gb+gfx",
    ];
    let text = layouts_read_back(&args);
    assert!(text.contains("\"1g.24gb+me.all\": 1"), "{text}");
    assert!(text.contains("\"2g.48gb-me\": 1"), "{text}");
}

#[test]
fn gpus_lists_every_model_with_its_source() {
    let table = stdout(&["gpus"]);
    let json: Value = serde_json::from_str(&stdout(&["gpus", "--format", "json"])).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), Catalog::builtin().gpus().len());
    for g in Catalog::builtin().gpus() {
        let row = rows.iter().find(|r| r["key"] == g.key.as_str()).unwrap();
        assert_eq!(row["source"], g.source.as_str());
        assert!(
            table.contains(&format!("\n{}: {}", g.key, g.source)),
            "{}: {table}",
            g.key
        );
    }
    // A shared table says whose it is; the 12-unit grid shows as such.
    let h800 = rows.iter().find(|r| r["key"] == "h800-80gb").unwrap();
    assert_eq!(h800["profiles_from"], "h100-80gb");
    assert!(table.contains("7 (as h100-80gb)"), "{table}");
    let rtx = rows
        .iter()
        .find(|r| r["key"] == "rtx-pro-6000-96gb")
        .unwrap();
    assert_eq!(
        (
            rtx["compute_slices"].as_u64(),
            rtx["memory_slices"].as_u64()
        ),
        (Some(4), Some(12))
    );
}
