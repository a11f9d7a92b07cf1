//! A stand-in `nvidia-smi` for tests: the MIG commands migbench runs, with the messages, output
//! formats and exit statuses of docs/nvidia-smi.md, on the stand-in driver's state
//! (see `fake_driver/state.rs`). Use it with `MIGBENCH_NVIDIA_SMI=target/debug/examples/fake_nvidia_smi`.
//!
//! It keeps the driver's rules that a harness can get wrong: MIG commands need MIG mode on, an
//! instance needs a free valid placement, an instance in use (a compute instance with a process,
//! a GPU instance with compute instances) cannot be destroyed, and MIG mode cannot change while
//! instances or processes exist. Instance IDs are its own (from 5 up, never reused), so a caller
//! that predicts them instead of reading them back fails.
//!
//! It lists the profile tables (`mig -lgip`, `mig -lgipp`) from the catalog, with the values of
//! the state's `driver_profiles` where a test makes this driver differ from the catalog.
//!
//! Besides MIG it answers the two queries a record of the GPU is made with:
//! `--query-gpu=name,uuid,driver_version,memory.total,mig.mode.current,mig.mode.pending` and
//! `--query-compute-apps=pid,used_memory,gpu_uuid`, each with `--format=csv[,noheader][,nounits]`.

#[path = "fake_driver/state.rs"]
mod state;

use migbench::catalog::{Catalog, GiProfile, GpuModel};
use state::{FakeCi, FakeGi, FakeGpu};

/// NVML's status codes, which nvidia-smi exits with.
const INVALID_ARGUMENT: i32 = 2;
const NO_PERMISSION: i32 = 4;
const NOT_FOUND: i32 = 6;
const IN_USE: i32 = 19;

struct Failure(i32, String);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Every call, for tests to check what migbench ran and in which order.
    if let Some(dir) = state::dir() {
        if let Ok(mut log) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("calls.log"))
        {
            let _ = std::io::Write::write_all(&mut log, format!("{}\n", args.join(" ")).as_bytes());
        }
    }
    let Some(mut gpu) = state::load() else {
        println!("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.");
        std::process::exit(9);
    };
    let model = Catalog::builtin()
        .gpu(&gpu.name)
        .expect("the stand-in GPU is in the catalog");
    match run(&mut gpu, model, &args) {
        Ok((text, changed)) => {
            if changed {
                state::save(&gpu);
            }
            print!("{text}");
        }
        Err(Failure(code, text)) => {
            println!("{text}");
            std::process::exit(code);
        }
    }
}

/// What a command prints, and whether it changed the GPU.
fn run(gpu: &mut FakeGpu, model: &GpuModel, args: &[String]) -> Result<(String, bool), Failure> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let listing = matches!(a.as_slice(), ["-L"])
        || a.iter()
            .any(|x| x.starts_with("-l") || x.starts_with("--query-"));
    if gpu.not_root && !listing {
        return Err(Failure(
            NO_PERMISSION,
            "Unable to change the GPU: Insufficient Permissions".into(),
        ));
    }
    let bad = || {
        Failure(
            INVALID_ARGUMENT,
            format!("Invalid combination of input arguments: {}", a.join(" ")),
        )
    };
    match a.as_slice() {
        ["-L"] => Ok((list_devices(gpu), false)),
        [query, format] if query.starts_with("--query-") && format.starts_with("--format=csv") => {
            let (kind, fields) = query.split_once('=').ok_or_else(bad)?;
            let options = &format["--format=csv".len()..];
            self::query(gpu, kind, fields, options).map(|t| (t, false))
        }
        ["-i", "0", "-mig", mode] => set_mig_mode(gpu, *mode == "1").map(|t| (t, true)),
        ["mig", rest @ ..] => {
            let rest = match rest {
                ["-i", "0", rest @ ..] => rest,
                rest => rest,
            };
            if !gpu.mig_current {
                return Err(Failure(NOT_FOUND, "No MIG-enabled devices found.".into()));
            }
            match rest {
                ["-lgip"] => Ok((list_profiles(gpu, model), false)),
                ["-lgipp"] => Ok((list_placements(gpu, model), false)),
                ["-lgi"] => list_gpu_instances(gpu).map(|t| (t, false)),
                ["-lci"] => list_compute_instances(gpu).map(|t| (t, false)),
                ["-cgi", spec] => create_gi(gpu, model, spec).map(|t| (t, true)),
                ["-gi", gi, "-cci", profile] => {
                    create_ci(gpu, model, id(gi)?, profile).map(|t| (t, true))
                }
                ["-gi", gi, "-ci", ci, "-dci"] => {
                    destroy_ci(gpu, id(gi)?, id(ci)?).map(|t| (t, true))
                }
                ["-gi", gi, "-dgi"] => destroy_gi(gpu, id(gi)?).map(|t| (t, true)),
                _ => Err(bad()),
            }
        }
        _ => Err(bad()),
    }
}

/// `--query-gpu` and `--query-compute-apps` in CSV: a header unless `noheader`, units (`MiB`)
/// unless `nounits`, an unknown field refused as the driver refuses it.
fn query(gpu: &FakeGpu, kind: &str, fields: &str, options: &str) -> Result<String, Failure> {
    let units = !options.contains("nounits");
    let mib = |v: u64| {
        if units {
            format!("{v} MiB")
        } else {
            v.to_string()
        }
    };
    let mode = |on: bool| if on { "Enabled" } else { "Disabled" }.to_string();
    let fields: Vec<&str> = fields.split(',').collect();
    let rows: Vec<Vec<String>> = match kind {
        "--query-gpu" => vec![fields
            .iter()
            .map(|f| match *f {
                "name" => Ok(gpu.name.clone()),
                "uuid" => Ok(gpu.uuid.clone()),
                "driver_version" => Ok(gpu.driver.clone()),
                "memory.total" => Ok(mib(gpu.memory_mib)),
                "mig.mode.current" => Ok(mode(gpu.mig_current)),
                "mig.mode.pending" => Ok(mode(gpu.mig_pending)),
                _ => Err(f),
            })
            .collect::<Result<_, _>>()
            .map_err(unknown_field)?],
        "--query-compute-apps" => state::procs()
            .iter()
            .map(|p| {
                fields
                    .iter()
                    .map(|f| match *f {
                        "pid" => Ok(p.pid.to_string()),
                        "used_memory" => Ok(mib(p.used_mib)),
                        "gpu_uuid" => Ok(gpu.uuid.clone()),
                        _ => Err(f),
                    })
                    .collect::<Result<_, _>>()
                    .map_err(unknown_field)
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(unknown_field(&kind)),
    };
    let mut out = String::new();
    if !options.contains("noheader") {
        let header: Vec<String> = fields
            .iter()
            .map(|f| match *f {
                "memory.total" | "used_memory" if units => format!("{f} [MiB]"),
                f => f.to_string(),
            })
            .collect();
        out += &(header.join(", ") + "\n");
    }
    for row in rows {
        out += &(row.join(", ") + "\n");
    }
    Ok(out)
}

fn unknown_field(field: &&str) -> Failure {
    Failure(
        INVALID_ARGUMENT,
        format!("Field \"{field}\" is not a valid field to query."),
    )
}

fn id(text: &str) -> Result<u32, Failure> {
    text.parse()
        .map_err(|_| Failure(INVALID_ARGUMENT, format!("Invalid instance ID: {text}")))
}

fn list_devices(gpu: &FakeGpu) -> String {
    let mut out = format!("GPU 0: {} (UUID: {})\n", gpu.name, gpu.uuid);
    for (i, (g, c)) in gpu.mig_devices().into_iter().enumerate() {
        let name = if c.name == g.name {
            g.name.clone()
        } else {
            c.name.clone()
        };
        out += &format!("  MIG {name:<12} Device {i:>2}: (UUID: {})\n", c.uuid);
    }
    out
}

fn set_mig_mode(gpu: &mut FakeGpu, on: bool) -> Result<String, Failure> {
    let word = if on { "Enabled" } else { "Disabled" };
    if !gpu.gis.is_empty() || !state::procs().is_empty() {
        return Err(Failure(
            IN_USE,
            format!(
                "Unable to {} MIG Mode for GPU 00000000:36:00.0: In use by another client",
                if on { "enable" } else { "disable" }
            ),
        ));
    }
    if gpu.mig_needs_reset {
        gpu.mig_pending = on;
        return Ok(format!(
            "Warning: MIG mode is in pending {} state for GPU 00000000:36:00.0:Not Supported\n\
             Reboot the system or try nvidia-smi --gpu-reset to make MIG mode effective on GPU 00000000:36:00.0\n\
             All done.\n",
            if on { "enable" } else { "disable" }
        ));
    }
    gpu.mig_current = on;
    gpu.mig_pending = on;
    Ok(format!(
        "{word} MIG Mode for GPU 00000000:36:00.0\nAll done.\n"
    ))
}

fn list_gpu_instances(gpu: &FakeGpu) -> Result<String, Failure> {
    if gpu.gis.is_empty() {
        return Err(Failure(
            NOT_FOUND,
            "No GPU instances found: Not Found".into(),
        ));
    }
    let rule = "+-------------------------------------------------------+\n";
    let mut out = format!(
        "{rule}| GPU instances:                                        |\n\
         | GPU   Name             Profile  Instance   Placement  |\n\
         |                          ID       ID       Start:Size |\n\
         |=======================================================|\n"
    );
    let mut gis: Vec<&FakeGi> = gpu.gis.iter().collect();
    gis.sort_by_key(|g| g.id);
    for g in gis {
        let name = format!("MIG {}", g.name);
        out += &format!(
            "|   0  {name:<16} {:>5}    {:>5}          {}:{}     |\n{rule}",
            g.profile_id, g.id, g.start, g.size
        );
    }
    Ok(out)
}

fn list_compute_instances(gpu: &FakeGpu) -> Result<String, Failure> {
    let devices = gpu.mig_devices();
    if devices.is_empty() {
        return Err(Failure(
            NOT_FOUND,
            "No compute instances found: Not Found".into(),
        ));
    }
    let rule = "+--------------------------------------------------------------------+\n";
    let mut out = format!(
        "{rule}| Compute instances:                                                 |\n\
         | GPU     GPU       Name             Profile   Instance   Placement  |\n\
         |       Instance                       ID        ID       Start:Size |\n\
         |         ID                                                         |\n\
         |====================================================================|\n"
    );
    for (g, c) in devices {
        let name = format!("MIG {}", c.name);
        let start = g
            .cis
            .iter()
            .take_while(|o| o.id != c.id)
            .map(|o| o.slices)
            .sum::<u8>();
        out += &format!(
            "|   0  {:>5}       {name:<16} {:>5}     {:>5}          {start}:{}     |\n{rule}",
            g.id, c.profile_id, c.id, c.slices
        );
    }
    Ok(out)
}

/// The memory slices the GPU instances hold, as a mask.
fn taken_slices(gpu: &FakeGpu, model: &GpuModel) -> u16 {
    gpu.gis
        .iter()
        .map(|g| {
            model
                .profile(&g.profile_id.to_string())
                .map_or(0, |q| q.mask_at(g.start))
        })
        .fold(0, |a, b| a | b)
}

/// The catalog's profiles as this driver lists them: its `driver_profiles` in place of the
/// catalog's values where it has them.
fn driver_profiles(gpu: &FakeGpu, model: &GpuModel) -> Vec<GiProfile> {
    model
        .profiles
        .iter()
        .filter_map(|p| {
            let mut p = p.clone();
            if let Some(o) = gpu.driver_profiles.get(&p.id) {
                if o.absent {
                    return None;
                }
                p.name = o.name.clone().unwrap_or(p.name);
                p.memory_gib = o.memory_gib.unwrap_or(p.memory_gib);
                p.placements = o.placements.clone().unwrap_or(p.placements);
            }
            Some(p)
        })
        .collect()
}

/// `nvidia-smi mig -lgip`: two rows a profile, Free counting the placements still free now.
fn list_profiles(gpu: &FakeGpu, model: &GpuModel) -> String {
    let rule = format!("+{}+\n", "-".repeat(77));
    let mut out = format!(
        "{rule}| GPU instance profiles:                                                      |\n\
         | GPU   Name             ID    Instances   Memory     P2P    SM    DEC   ENC  |\n\
         |                              Free/Total   GiB              CE    JPEG  OFA  |\n\
         |{}|\n",
        "=".repeat(77)
    );
    let taken = taken_slices(gpu, model);
    for p in driver_profiles(gpu, model) {
        // Placements still free, taken greedily in slice order (as the driver fills them).
        let mut claimed = taken;
        let mut free = 0;
        for s in &p.placements {
            if p.mask_at(*s) & claimed == 0 {
                claimed |= p.mask_at(*s);
                free += 1;
            }
        }
        let e = p.engines;
        let name = format!("MIG {}", p.name);
        let counts = format!("{}/{}", free.min(p.instances), p.instances);
        out += &format!(
            "|   0  {name:<16} {:>3}     {counts:<9}  {:<9}  No     {:<6} {:<5} {:<3} |\n\
             |{:>62}     {:<5} {:<3} |\n{rule}",
            p.id,
            format!("{:.2}", p.memory_gib),
            p.sm,
            e.dec,
            e.enc,
            e.ce,
            e.jpg,
            e.ofa,
        );
    }
    out
}

/// `nvidia-smi mig -lgipp`: one line a profile, `Placement :` where there is one.
fn list_placements(gpu: &FakeGpu, model: &GpuModel) -> String {
    driver_profiles(gpu, model)
        .iter()
        .map(|p| {
            let starts: Vec<String> = p.placements.iter().map(u8::to_string).collect();
            let label = if p.placements.len() == 1 {
                "Placement :"
            } else {
                "Placements:"
            };
            format!(
                "GPU  0 Profile ID {:>2} {label} {{{}}}:{}\n",
                p.id,
                starts.join(","),
                p.memory_slices
            )
        })
        .collect()
}

fn create_gi(gpu: &mut FakeGpu, model: &GpuModel, spec: &str) -> Result<String, Failure> {
    let (profile, start) = spec.split_once(':').unwrap_or((spec, ""));
    let unknown = || {
        Failure(INVALID_ARGUMENT, format!("Unable to create a GPU instance on GPU  0 using profile {profile}: Invalid Argument"))
    };
    let p = model.profile(profile).map_err(|_| unknown())?;
    let taken = taken_slices(gpu, model);
    let free = |s: u8| p.mask_at(s) & taken == 0;
    let start = match start {
        "" => p.placements.iter().copied().find(|s| free(*s)),
        s => Some(s.parse::<u8>().map_err(|_| unknown())?).filter(|s| p.placements.contains(s)),
    }
    .ok_or_else(unknown)?;
    if !free(start) {
        return Err(Failure(
            INVALID_ARGUMENT,
            format!("Unable to create a GPU instance on GPU  0 using profile {profile}: Insufficient Resources"),
        ));
    }
    gpu.created += 1;
    let id = 4 + gpu.created;
    gpu.gis.push(FakeGi {
        id,
        profile_id: p.id,
        name: p.name.clone(),
        start,
        size: p.memory_slices,
        memory_mib: (p.memory_gib * 1024.0) as u64,
        cis: Vec::new(),
    });
    Ok(format!(
        "Successfully created GPU instance ID {id:>2} on GPU  0 using profile MIG {} (ID {:>2})\n",
        p.name, p.id
    ))
}

fn create_ci(
    gpu: &mut FakeGpu,
    model: &GpuModel,
    gi_id: u32,
    profile: &str,
) -> Result<String, Failure> {
    let uuid_base = gpu.uuid.clone();
    gpu.created += 1;
    let serial = gpu.created;
    let g = gpu
        .gis
        .iter_mut()
        .find(|g| g.id == gi_id)
        .ok_or_else(|| Failure(NOT_FOUND, format!("Unable to create a compute instance on GPU  0 GPU instance ID {gi_id:>2}: Not Found")))?;
    let gp = model
        .profile(&g.profile_id.to_string())
        .expect("a catalog profile");
    let c = gp.compute_profile(profile).ok_or_else(|| {
        Failure(INVALID_ARGUMENT, format!("Unable to create a compute instance on GPU  0 GPU instance ID {gi_id:>2} using profile {profile}: Invalid Argument"))
    })?;
    let used: u8 = g.cis.iter().map(|c| c.slices).sum();
    if used + c.compute_slices > gp.compute_slices {
        return Err(Failure(
            INVALID_ARGUMENT,
            format!("Unable to create a compute instance on GPU  0 GPU instance ID {gi_id:>2} using profile {profile}: Insufficient Resources"),
        ));
    }
    let id = (0..)
        .find(|i| g.cis.iter().all(|c| c.id != *i))
        .expect("a free ID");
    // A fresh UUID for every instance created, as the driver gives.
    let uuid = format!(
        "MIG-{}-{serial:04x}-5{gi_id:03x}-8{id:03x}-{:012x}",
        &uuid_base[4..12],
        serial
    );
    g.cis.push(FakeCi {
        id,
        profile_id: c.id,
        name: if c.compute_slices == gp.compute_slices {
            gp.name.clone()
        } else {
            c.name.clone()
        },
        slices: c.compute_slices,
        uuid,
    });
    Ok(format!(
        "Successfully created compute instance ID {id:>2} on GPU  0 GPU instance ID {gi_id:>2} using profile MIG {} (ID {:>2})\n",
        c.name, c.id
    ))
}

fn destroy_ci(gpu: &mut FakeGpu, gi_id: u32, ci_id: u32) -> Result<String, Failure> {
    let g = gpu.gis.iter_mut().find(|g| g.id == gi_id);
    let Some(g) = g.filter(|g| g.cis.iter().any(|c| c.id == ci_id)) else {
        return Err(Failure(NOT_FOUND, format!("Unable to destroy compute instance ID {ci_id:>2} from GPU  0 GPU instance ID {gi_id:>2}: Not Found")));
    };
    if state::procs()
        .iter()
        .any(|p| p.gi == Some(gi_id) && p.ci == Some(ci_id))
    {
        return Err(Failure(IN_USE, format!("Unable to destroy compute instance ID {ci_id:>2} from GPU  0 GPU instance ID {gi_id:>2}: In use by another client")));
    }
    g.cis.retain(|c| c.id != ci_id);
    Ok(format!("Successfully destroyed compute instance ID {ci_id:>2} from GPU  0 GPU instance ID {gi_id:>2}\n"))
}

fn destroy_gi(gpu: &mut FakeGpu, gi_id: u32) -> Result<String, Failure> {
    let Some(g) = gpu.gis.iter().find(|g| g.id == gi_id) else {
        return Err(Failure(
            NOT_FOUND,
            format!("Unable to destroy GPU instance ID {gi_id:>2} from GPU  0: Not Found"),
        ));
    };
    if !g.cis.is_empty() {
        return Err(Failure(IN_USE, format!("Unable to destroy GPU instance ID {gi_id:>2} from GPU  0: In use by another client")));
    }
    gpu.gis.retain(|g| g.id != gi_id);
    Ok(format!(
        "Successfully destroyed GPU instance ID {gi_id:>2} from GPU  0\n"
    ))
}
