//! CDI specs (docs/containers.md): an engine gives a container `--device nvidia.com/gpu=UUID`
//! only if a spec in its spec directories names that device. NVIDIA's toolkit names the devices
//! that exist when it runs, so after migbench makes a MIG layout a spec written before names
//! none of the new MIG devices. Before a variant's container jobs start, every device they may
//! request is looked up here; one that no spec names fails the variant, unless the user allowed
//! migbench to regenerate the spec with NVIDIA's own tool (`run --cdi-refresh`).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use saphyr::{LoadableYamlNode, Scalar, Yaml};

/// Where podman, docker 25+ and NVIDIA's toolkit read CDI specs by default (the CDI package's
/// `/etc/cdi` and `/var/run/cdi`; podman 4.3 reads no other).
pub const SPEC_DIRS: [&str; 2] = ["/etc/cdi", "/var/run/cdi"];

/// The spec NVIDIA's `nvidia-cdi-refresh` service writes (toolkit 1.18+): a transient file
/// (`/var/run` is cleared at boot), and what `run --cdi-refresh` regenerates by default.
pub const REFRESH_SPEC: &str = "/var/run/cdi/nvidia.yaml";

/// NVIDIA's tool that writes specs.
pub const TOOL: &str = "nvidia-ctk";

/// How long `nvidia-ctk cdi generate` may take (it lists the driver's files; seconds at most).
const GENERATE_LIMIT: Duration = Duration::from_secs(120);

/// The command that writes the spec `path` for the devices that exist now: each device named by
/// index (the toolkit's default, as other users of the file expect) and by UUID (as migbench
/// asks for it). The format follows the file's extension.
pub fn generate_argv(path: &Path) -> Vec<String> {
    vec![
        TOOL.into(),
        "cdi".into(),
        "generate".into(),
        format!("--output={}", path.display()),
        "--device-name-strategy=index".into(),
        "--device-name-strategy=uuid".into(),
    ]
}

/// Runs [`generate_argv`]; why it failed, in the tool's own words.
pub fn generate(path: &Path) -> Result<(), String> {
    let argv = generate_argv(path);
    let out = crate::tool::output_within(
        std::process::Command::new(&argv[0]).args(&argv[1..]),
        GENERATE_LIMIT,
    )
    .map_err(|e| format!("cannot run {TOOL}: {e}"))?
    .ok_or_else(|| {
        format!(
            "`{}` did not return within {} s and was killed",
            argv.join(" "),
            GENERATE_LIMIT.as_secs()
        )
    })?;
    if out.status.success() {
        Ok(())
    } else {
        let says = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(format!("`{}` failed: {says}", argv.join(" ")))
    }
}

/// Checks the spec `run --cdi-refresh` is to write: in a directory engines read, a `.yaml`,
/// `.yml` or `.json` file (the toolkit picks the format by the extension).
pub fn check_refresh_spec(path: &Path) -> Result<(), String> {
    let dir_read = path
        .parent()
        .is_some_and(|d| SPEC_DIRS.iter().any(|s| Path::new(s) == d));
    let ext_ok = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    );
    if dir_read && ext_ok {
        Ok(())
    } else {
        Err(format!(
            "--cdi-refresh {}: the spec must be a .yaml, .yml or .json file directly in {} \
             (where engines read CDI specs); NVIDIA's refresh service writes {REFRESH_SPEC}",
            path.display(),
            SPEC_DIRS.join(" or ")
        ))
    }
}

/// The fully qualified device names (`KIND=NAME`) the specs in the spec directories give.
pub fn named_devices() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for dir in SPEC_DIRS {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for path in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
            let spec = matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            );
            // A spec the engine cannot read either names nothing.
            if let Some(text) = spec
                .then(|| crate::input::read_to_string(&path, crate::input::CDI_SPEC).ok())
                .flatten()
            {
                names.extend(names_in(&text));
            }
        }
    }
    names
}

/// The device names one spec (YAML or JSON) gives: its `kind`, `=`, each device's `name`.
pub fn names_in(text: &str) -> Vec<String> {
    let Ok(docs) = Yaml::load_from_str(text) else {
        return Vec::new();
    };
    let Some(spec) = docs.first() else {
        return Vec::new();
    };
    let Some(kind) = spec.as_mapping_get("kind").and_then(Yaml::as_str) else {
        return Vec::new();
    };
    let devices = spec.as_mapping_get("devices").and_then(Yaml::as_vec);
    devices
        .into_iter()
        .flatten()
        .filter_map(|d| match d.as_mapping_get("name")? {
            Yaml::Value(Scalar::String(s)) => Some(s.to_string()),
            // `name: 0`, unquoted, is a number to YAML.
            Yaml::Value(Scalar::Integer(i)) => Some(i.to_string()),
            _ => None,
        })
        .map(|name| format!("{kind}={name}"))
        .collect()
}

/// The CDI name a container asks for to be given device `uuid`.
pub fn device_name(uuid: &str) -> String {
    format!("nvidia.com/gpu={uuid}")
}

/// Of the devices `uuids`, those no spec names (by [`device_name`]).
pub fn unnamed(uuids: &[String]) -> Vec<String> {
    let named = named_devices();
    uuids
        .iter()
        .filter(|u| !named.contains(&device_name(u)))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_yaml_and_json_specs_as_nvidia_writes_them() {
        let yaml = "cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n- name: \"0\"\n  \
                    containerEdits: {}\n- name: 0:1\n  containerEdits: {}\n- name: 1\n- name: \
                    MIG-4f1e\n  containerEdits:\n    env: [A=1]\n";
        assert_eq!(
            names_in(yaml),
            [
                "nvidia.com/gpu=0",
                "nvidia.com/gpu=0:1",
                "nvidia.com/gpu=1",
                "nvidia.com/gpu=MIG-4f1e"
            ]
        );
        let json = r#"{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu","devices":[{"name":"GPU-1"}]}"#;
        assert_eq!(names_in(json), ["nvidia.com/gpu=GPU-1"]);
        for not_a_spec in ["", "devices: []", "kind: [x]", "{", "- a\n- b"] {
            assert!(names_in(not_a_spec).is_empty(), "{not_a_spec}");
        }
    }

    #[test]
    fn the_refreshed_spec_must_be_where_engines_read() {
        assert!(check_refresh_spec(Path::new(REFRESH_SPEC)).is_ok());
        assert!(check_refresh_spec(Path::new("/etc/cdi/nvidia.json")).is_ok());
        for bad in [
            "/tmp/nvidia.yaml",
            "/var/run/cdi/sub/nvidia.yaml",
            "/etc/cdi/nvidia",
            "nvidia.yaml",
        ] {
            let e = check_refresh_spec(Path::new(bad)).unwrap_err();
            assert!(e.contains("/etc/cdi or /var/run/cdi"), "{e}");
        }
    }
}
