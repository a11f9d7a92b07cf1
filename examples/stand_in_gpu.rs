//! Prepares a stand-in GPU node in a directory and prints the `export` lines that point migbench
//! and NVIDIA's own nvidia-smi at it (scripts/stand-in-gpu.sh runs it; docs/validation.md).
//!
//! `stand_in_gpu MODEL DIR [--driver VERSION]`, where MODEL is a catalog GPU (`h100-80gb`), a
//! count of them (`8xh100-80gb`), or several, comma-separated (`2xh100-80gb,a100-40gb`). DIR gets:
//! - `node.json`: the driver and each GPU with its MIG profile table, made from the catalog as a
//!   driver knows its GPU (`fake_driver/state.rs`); MIG mode off, no instances;
//! - `lib/libnvidia-ml.so.1`: the stand-in NVML (`fake_nvml`), which nvidia-smi loads through
//!   `LD_LIBRARY_PATH`;
//! - `bin/stand-in-cuda-job`: the stand-in CUDA job (`fake_cuda_job`), for scenarios' commands.
//!
//! `stand_in_gpu --cdi DIR SPEC` writes, as NVIDIA's `nvidia-ctk cdi generate` does for a real
//! GPU, a CDI spec (`nvidia.com/gpu`) naming each GPU and MIG device of the node in DIR by its
//! UUID; a container given one (`podman run --device nvidia.com/gpu=UUID`) sees that device alone
//! (`CUDA_VISIBLE_DEVICES` set to it inside, as the stand-in job finds its device by it) and the
//! node's state, mounted at the same path. Run again after each MIG change (tests/containers.rs
//! runs it after every nvidia-smi call), as NVIDIA's toolkit regenerates its spec.
//!
//! The driver version defaults to the one NVIDIA's nvidia-smi 535.261.03 insists on: nvidia-smi
//! refuses an NVML of another version.

#[path = "fake_driver/state.rs"]
mod state;

use std::path::{Path, PathBuf};

use migbench::catalog::{Catalog, GiProfile, GpuModel, Variant};
use state::{DriverCiProfile, DriverProfile, FakeGpu, FakeNode};

/// The driver of Debian's nvidia-smi and nvidia-cuda-mps packages (bookworm non-free).
const DRIVER: &str = "535.261.03";
/// CUDA 12.2, which driver 535 supports.
const CUDA: i32 = 12020;

/// Bus IDs of the eight GPUs of an HGX H100 board, in NVML's order.
const BUS: [&str; 8] = ["18", "2A", "3A", "5D", "9A", "AB", "BA", "DB"];

fn fail(text: &str) -> ! {
    eprintln!("stand_in_gpu: {text}");
    std::process::exit(2);
}

/// Writes the CDI spec of the node in `dir` to `spec`, replacing it at once (a rename).
fn write_cdi(dir: &Path, spec: &Path) {
    let text = std::fs::read_to_string(dir.join("node.json"))
        .unwrap_or_else(|e| fail(&format!("{}: {e}", dir.display())));
    let node: FakeNode = serde_json::from_str(&text).unwrap_or_else(|e| fail(&e.to_string()));
    let mut uuids = Vec::new();
    for gpu in &node.gpus {
        uuids.push(gpu.uuid.clone());
        for gi in &gpu.gis {
            uuids.extend(gi.cis.iter().map(|c| c.uuid.clone()));
        }
    }
    let state = dir.display().to_string();
    let devices: Vec<serde_json::Value> = uuids
        .iter()
        .map(|uuid| {
            serde_json::json!({
                "name": uuid,
                "containerEdits": {
                    "env": [format!("CUDA_VISIBLE_DEVICES={uuid}"), format!("MIGBENCH_FAKE_GPU={state}")],
                    "mounts": [{ "hostPath": state, "containerPath": state, "options": ["rbind", "rw"] }],
                },
            })
        })
        .collect();
    let doc = serde_json::json!({
        "cdiVersion": "0.5.0",
        "kind": "nvidia.com/gpu",
        "devices": devices,
        "containerEdits": {},
    });
    // Its own temporary file: two nvidia-smi calls may write the spec at once.
    let tmp = spec.with_extension(format!("{}.tmp", std::process::id()));
    std::fs::write(&tmp, serde_json::to_string_pretty(&doc).unwrap())
        .and_then(|()| std::fs::rename(&tmp, spec))
        .unwrap_or_else(|e| fail(&format!("{}: {e}", spec.display())));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--cdi") {
        let [_, dir, spec] = args.as_slice() else {
            fail("usage: stand_in_gpu --cdi DIR SPEC");
        };
        write_cdi(Path::new(dir), Path::new(spec));
        return;
    }
    let mut driver = DRIVER.to_string();
    let mut positional = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--driver" => {
                driver = it
                    .next()
                    .cloned()
                    .unwrap_or_else(|| fail("--driver needs a version"))
            }
            "-h" | "--help" => {
                println!("usage: stand_in_gpu MODEL DIR [--driver VERSION]\n  MODEL: a catalog GPU (h100-80gb), N of them (8xh100-80gb), or several (2xh100-80gb,a100-40gb)");
                return;
            }
            _ => positional.push(a.clone()),
        }
    }
    let [spec, dir] = positional.as_slice() else {
        fail("usage: stand_in_gpu MODEL DIR [--driver VERSION] (--help for more)");
    };
    let catalog = Catalog::builtin();
    let models = parse_models(catalog, spec).unwrap_or_else(|e| fail(&e));
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", dir.display())));
    let dir = dir
        .canonicalize()
        .unwrap_or_else(|e| fail(&format!("{}: {e}", dir.display())));
    let node = FakeNode {
        driver,
        cuda: CUDA,
        gpus: models
            .iter()
            .enumerate()
            .map(|(i, m)| gpu(m, i, &dir))
            .collect(),
        default_mps_pipe: None,
    };
    install(&dir, &node)
        .unwrap_or_else(|e| fail(&format!("cannot prepare {}: {e}", dir.display())));
    let quoted = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
    println!("export MIGBENCH_FAKE_GPU={}", quoted(&dir));
    println!(
        "export LD_LIBRARY_PATH={}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}",
        quoted(&dir.join("lib"))
    );
    println!("export PATH={}:\"$PATH\"", quoted(&dir.join("bin")));
}

/// `8xh100-80gb,a100-40gb`: the models of the node's GPUs, in order.
fn parse_models<'a>(catalog: &'a Catalog, spec: &str) -> Result<Vec<&'a GpuModel>, String> {
    let mut models = Vec::new();
    for part in spec.split(',') {
        let (count, key) = match part.split_once('x') {
            Some((n, key)) if n.chars().all(|c| c.is_ascii_digit()) && !n.is_empty() => {
                (n.parse::<usize>().map_err(|e| format!("{part}: {e}"))?, key)
            }
            _ => (1, part),
        };
        let model = catalog.gpu(key).map_err(|e| e.to_string())?;
        models.extend(std::iter::repeat_n(model, count));
    }
    if models.is_empty() || models.len() > BUS.len() {
        return Err(format!("{spec}: from 1 to {} GPUs on a node", BUS.len()));
    }
    Ok(models)
}

fn gpu(model: &GpuModel, index: usize, dir: &Path) -> FakeGpu {
    // A UUID of its own for every stand-in GPU, as tests run side by side and migbench locks a
    // GPU by UUID.
    use sha2::Digest;
    let seed = format!(
        "{}|{index}|{:?}",
        dir.display(),
        std::time::SystemTime::now()
    );
    let h = hex(&sha2::Sha256::digest(seed.as_bytes())[..16]);
    let uuid = format!(
        "GPU-{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    );
    let min_1g_memory = model
        .profiles
        .iter()
        .filter(|p| p.compute_slices == 1)
        .map(|p| p.memory_slices)
        .min()
        .unwrap_or(1);
    FakeGpu {
        name: model
            .nvml_names
            .first()
            .cloned()
            .unwrap_or_else(|| format!("NVIDIA {}", model.name)),
        uuid,
        memory_mib: model.memory_mib,
        pci_device_id: model
            .pci_device_ids
            .first()
            .and_then(|id| u32::from_str_radix(id.trim_start_matches("0x"), 16).ok())
            .unwrap_or(0),
        bus_id: format!("00000000:{}:00.0", BUS[index]),
        sm_count: model.sm_count,
        board_w: model.power.board_w,
        idle_w: model.power.idle_w,
        energy_mj: 0.0,
        energy_at_ms: 0,
        // GPU Performance Monitoring came with Hopper: every catalog GPU but the Ampere ones.
        gpm: !needs_reset(model),
        busy_sm_ms: 0.0,
        gi_busy_sm_ms: Default::default(),
        mig_current: false,
        mig_pending: false,
        mig_needs_reset: needs_reset(model),
        not_root: false,
        profiles: model
            .profiles
            .iter()
            .map(|p| DriverProfile {
                nvml_profile: nvml_profile(p, min_1g_memory),
                id: p.id,
                name: p.name.clone(),
                instances: u32::from(p.instances),
                memory_mib: (p.memory_gib * 1024.0).round() as u64,
                sm: p.sm,
                compute_slices: u32::from(p.compute_slices),
                ce: u32::from(p.engines.ce),
                dec: u32::from(p.engines.dec),
                enc: u32::from(p.engines.enc),
                jpg: u32::from(p.engines.jpg),
                ofa: u32::from(p.engines.ofa),
                placements: p.placements.iter().map(|s| u32::from(*s)).collect(),
                size: u32::from(p.memory_slices),
                compute_profiles: p
                    .compute_profiles
                    .iter()
                    .map(|c| DriverCiProfile {
                        id: c.id,
                        name: c.name.clone(),
                        compute_slices: u32::from(c.compute_slices),
                        instances: u32::from(c.instances),
                        sm: p.ci_sm(c),
                    })
                    .collect(),
            })
            .collect(),
        gis: Vec::new(),
        created: 0,
        compute_mode: 0,
        linger_ms: 0,
        pid_offset: 0,
        mps_unreachable: false,
        nvml_lag: 0,
    }
}

/// On Ampere (A100, A30, A800) a MIG mode change takes effect only after a GPU reset; Hopper
/// and later change at once (NVIDIA MIG User Guide, "Enable MIG Mode"; docs/mig.md).
fn needs_reset(model: &GpuModel) -> bool {
    ["a100", "a30", "a800"]
        .iter()
        .any(|p| model.key.starts_with(p))
}

/// NVML's profile enum (NVML_GPU_INSTANCE_PROFILE_* in nvml.h) for a catalog profile: by its
/// compute slices, with the media-extension (`+me`: REV1), double-memory one-slice (REV2),
/// graphics (`+gfx`), no-media (`-me`) and all-media (`+me.all`) variants apart.
fn nvml_profile(p: &GiProfile, min_1g_memory: u8) -> u32 {
    let by_slices = |one, two, four| match p.compute_slices {
        1 => one,
        2 => two,
        _ => four,
    };
    match p.variant {
        Variant::AllMedia => return by_slices(15, 16, 16),
        Variant::NoMedia => return by_slices(13, 14, 14),
        Variant::Graphics => return by_slices(10, 11, 12),
        Variant::MediaExtensions => return by_slices(7, 8, 8),
        Variant::Plain => {}
    }
    match p.compute_slices {
        1 if p.memory_slices > min_1g_memory => 9,
        1 => 0,
        2 => 1,
        3 => 2,
        4 => 3,
        7 => 4,
        8 => 5,
        _ => 6,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes the node and puts the stand-in's library and job program beside it.
fn install(dir: &Path, node: &FakeNode) -> std::io::Result<()> {
    let examples = std::env::current_exe()?
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| std::io::Error::other("no directory of its own"))?;
    for sub in ["lib", "bin", "procs"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    for old in std::fs::read_dir(dir.join("procs"))?.flatten() {
        std::fs::remove_file(old.path())?;
    }
    // Copies, not links: the directory stays usable while `cargo` rebuilds the examples.
    for (from, to) in [
        ("libfake_nvml.so", "lib/libnvidia-ml.so.1"),
        ("fake_cuda_job", "bin/stand-in-cuda-job"),
    ] {
        let from = examples.join(from);
        if !from.exists() {
            return Err(std::io::Error::other(format!(
                "{} is not built: `cargo build --examples`",
                from.display()
            )));
        }
        let tmp = dir.join(format!("{to}.tmp"));
        std::fs::copy(&from, &tmp)?;
        std::fs::rename(tmp, dir.join(to))?;
    }
    let text = serde_json::to_string_pretty(node).map_err(std::io::Error::other)?;
    let tmp = dir.join("node.json.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, dir.join("node.json"))
}
