//! A stand-in CUDA job for tests: it runs on the device `CUDA_VISIBLE_DEVICES` names (a GPU or
//! MIG UUID of the stand-in driver, see `fake_driver/state.rs`), holds device memory as NVML
//! will report it, and fails as PyTorch does when the memory is not there.
//!
//! `fake_cuda_job --gib 4 --peak-gib 6 --seconds 1 [--child] [--exceed]`: hold 4 GiB, rise to 6
//! GiB in the middle fifth of the run; `--child` holds the memory in a child process (as vLLM's
//! engine core does); `--exceed` asks for more than the device has at the peak.
//! Like a CUDA program it first connects to the MPS control daemon's socket, `control` in
//! `CUDA_MPS_PIPE_DIRECTORY` (or in the default /tmp/nvidia-mps when that is unset): where
//! NVIDIA's nvidia-cuda-mps-control listens, the job is an MPS client, which NVML lists apart;
//! where none does, it runs on its own, silently, as CUDA does.
//!
//! It also takes `scripts/gpu_workload.py`'s arguments, so that the validation scenarios run on
//! the stand-in with only the program swapped: `--constant-gib` is `--gib`, `--peak-at` and
//! `--peak-for` place the peak (default: the middle fifth), and without `--seconds` the run lasts
//! a ten-thousandth of a second per 8192² product (`--iterations`, `--matrix`; 1 s by default).
//! At its end it prints, as gpu_workload.py does, `migbench-workload: {json}` with "PyTorch's"
//! figures: `max_memory_reserved_gib` is its peak less [`CONTEXT_GIB`], the CUDA context that
//! NVML counts in a process's memory and PyTorch does not.

#[path = "fake_driver/state.rs"]
mod state;

use std::time::{Duration, Instant};

use state::{FakeProc, Target};

/// What NVML counts in a process beyond PyTorch's reserved memory: the CUDA context.
const CONTEXT_GIB: f64 = 0.5;

fn arg(args: &[String], name: &str) -> Option<f64> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1)?.parse().ok()
}

fn fail(text: &str) -> ! {
    eprintln!("{text}");
    std::process::exit(1);
}

/// Connects to the MPS control daemon's socket as a CUDA client does (a UNIX seqpacket socket,
/// which std's UnixStream cannot open); true when the daemon accepted the connection.
fn connect_seqpacket(path: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: a zeroed sockaddr_un with the path copied in within its size, and a socket this
    // function opens and closes.
    unsafe {
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        if bytes.len() >= addr.sun_path.len() {
            return false;
        }
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (i, b) in bytes.iter().enumerate() {
            addr.sun_path[i] = *b as libc::c_char;
        }
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET, 0);
        if fd < 0 {
            return false;
        }
        let ok = libc::connect(
            fd,
            std::ptr::addr_of!(addr).cast(),
            std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
        ) == 0;
        libc::close(fd);
        ok
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--child") {
        let rest: Vec<&String> = args[1..].iter().filter(|a| *a != "--child").collect();
        let status = std::process::Command::new(&args[0])
            .args(rest)
            .status()
            .expect("the child starts");
        std::process::exit(status.code().unwrap_or(1));
    }
    let launched = Instant::now();
    let gib = arg(&args, "--gib")
        .or_else(|| arg(&args, "--constant-gib"))
        .unwrap_or(1.0);
    let peak = arg(&args, "--peak-gib").unwrap_or(gib);
    let peak_at = arg(&args, "--peak-at").unwrap_or(0.4);
    let peak_end = (peak_at + arg(&args, "--peak-for").unwrap_or(0.2)).min(1.0);
    let seconds = arg(&args, "--seconds").unwrap_or_else(|| match arg(&args, "--iterations") {
        Some(n) => n * (arg(&args, "--matrix").unwrap_or(8192.0) / 8192.0).powi(3) / 10_000.0,
        None => 1.0,
    });
    let exceed = args.iter().any(|a| a == "--exceed");

    let Some(node) = state::load() else {
        fail("RuntimeError: Found no NVIDIA driver on your system.");
    };
    let visible = std::env::var("CUDA_VISIBLE_DEVICES").unwrap_or_default();
    let found = node.target(visible.trim()).filter(|(g, t)| {
        // With MIG on, CUDA cannot use the GPU itself, only its MIG devices.
        !(*t == Target::Gpu && node.gpus[*g as usize].mig_current)
    });
    let Some((index, target)) = found else {
        fail("RuntimeError: No CUDA GPUs are available");
    };
    let gpu = &node.gpus[index as usize];
    // As CUDA does: join the MPS daemon of CUDA_MPS_PIPE_DIRECTORY, or of the default pipe
    // directory when it is unset, if one listens there; else run alone, without a word.
    let pipe = std::env::var_os("CUDA_MPS_PIPE_DIRECTORY")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            node.default_mps_pipe
                .clone()
                .unwrap_or_else(|| "/tmp/nvidia-mps".into())
                .into()
        });
    let mps = !gpu.mps_unreachable && connect_seqpacket(&pipe.join("control"));

    let pid = std::process::id();
    let (gi, ci) = match target {
        Target::Gpu => (None, None),
        Target::Mig { gi, ci } => (Some(gi), Some(ci)),
    };
    let capacity = gpu.capacity_mib(target);
    let me = FakeProc {
        pid,
        gpu: index,
        used_mib: 0,
        gi,
        ci,
        mps,
        ended_ms: None,
    };
    let hold = |mib: u64| {
        let others = gpu.used_mib(index, target, Some(pid));
        if others + mib > capacity {
            state::end_proc(&me);
            fail(&format!(
                "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate {:.2} GiB. GPU 0 has a total capacity of {:.2} GiB of which {:.2} GiB is free.",
                mib as f64 / 1024.0,
                capacity as f64 / 1024.0,
                capacity.saturating_sub(others) as f64 / 1024.0
            ));
        }
        state::set_proc(&FakeProc {
            used_mib: mib,
            ..me.clone()
        });
    };
    let mib = |g: f64| (g * 1024.0).round() as u64;
    let started = Instant::now();
    let at = |f: f64| Duration::from_secs_f64(seconds * f);
    hold(mib(gib));
    std::thread::sleep(at(peak_at).saturating_sub(started.elapsed()));
    hold(if exceed { capacity + 1 } else { mib(peak) });
    std::thread::sleep(at(peak_end).saturating_sub(started.elapsed()));
    hold(mib(gib));
    std::thread::sleep(at(1.0).saturating_sub(started.elapsed()));
    state::end_proc(&me);
    let elapsed = started.elapsed().as_secs_f64();
    println!("fake-cuda-job: done in {elapsed:.2} s");
    let reserved = (peak.max(gib) - CONTEXT_GIB).max(0.0);
    let report = serde_json::json!({
        "device": gpu.name,
        "pid": pid,
        "max_memory_reserved_gib": (reserved * 1000.0).round() / 1000.0,
        "elapsed_s": (elapsed * 1000.0).round() / 1000.0,
        "init_s": ((started - launched).as_secs_f64() * 1000.0).round() / 1000.0,
        "wall_s": (launched.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
    });
    println!("migbench-workload: {report}");
}
